//! `vitals-trainer`: Vitals' offline CLI.
//!
//! ```text
//! vitals-trainer [--data-dir DIR] [--database-url URL] [--log-format text|json] \
//!     import <customers|events|telco|cdnow> FILE [--as-of YYYY-MM-DD] [--json]
//! ```
//!
//! The database settings are the server's (`--data-dir`, `--database-url`, and the
//! `VITALS_*` environment variables), so with defaults both use the same database.
//! Pending migrations are applied before importing, as the server does at start.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use vitals_store::{DataArgs, DatabaseUrl, Store, redact_url};
use vitals_trainer::import::ImportOptions;
use vitals_trainer::{ImportSummary, import_cdnow, import_customers, import_events, import_telco};

/// Rejected rows listed on stderr after an import.
const SHOWN_REJECTIONS: usize = 20;

#[derive(Debug, Parser)]
#[command(
    name = "vitals-trainer",
    version,
    about = "Vitals' offline CLI: import history into the database"
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,

    /// Log format (logs go to stderr; the level comes from RUST_LOG, default `info`).
    #[arg(
        long,
        env = "VITALS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import customers or events from a file. Rows that fail validation are reported and
    /// skipped; re-importing the same file changes nothing.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Print the summary as one JSON object (keys: kind, read, created, updated,
    /// unchanged, accepted, duplicates, rejected, seconds).
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    source: ImportSource,
}

#[derive(Debug, Subcommand)]
enum ImportSource {
    /// Customers from a CSV file with a header: external_id (required), display_name,
    /// email, phone, region, acquisition_channel, status, contractual, signup_time,
    /// churn_time; every other column becomes an attribute.
    Customers {
        /// The CSV file.
        file: PathBuf,
    },
    /// Events from a CSV file with a header: event_key, customer_external_id (or
    /// customer_id), time, kind, and the columns of each kind.
    Events {
        /// The CSV file.
        file: PathBuf,
    },
    /// The IBM Telco customer churn sample (telco_customer_churn.csv).
    Telco {
        /// The CSV file.
        file: PathBuf,
        /// The date the snapshot describes (YYYY-MM-DD): signups are `tenure` months
        /// before it, churns in the month after it. At least 31 days ago.
        #[arg(long, value_parser = parse_as_of)]
        as_of: NaiveDate,
    },
    /// The CDNOW transactions sample (cdnow_sample.txt): customers, then purchases.
    Cdnow {
        /// The whitespace-separated text file.
        file: PathBuf,
    },
}

fn parse_as_of(s: &str) -> Result<NaiveDate, String> {
    vitals_trainer::time::parse_date(s)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.data.database_url()?;
    let shown = match &url {
        DatabaseUrl::Postgres(u) => redact_url(u),
        DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    let store =
        Store::open(&url, &cli.data.pool_options()).with_context(|| format!("opening {shown}"))?;
    let applied = store
        .migrate()
        .with_context(|| format!("migrating {shown}"))?;
    tracing::info!(database = %shown, applied = applied.len(), "database ready");

    let Command::Import(args) = cli.command;
    let options = ImportOptions { progress: true };
    let summary = match &args.source {
        ImportSource::Customers { file } => import_customers(&store, file, &options),
        ImportSource::Events { file } => import_events(&store, file, &options),
        ImportSource::Telco { file, as_of } => import_telco(&store, file, *as_of, &options),
        ImportSource::Cdnow { file } => import_cdnow(&store, file, &options),
    }?;
    report(&summary, args.json);
    Ok(())
}

/// The summary on stdout, the first rejected rows on stderr.
fn report(summary: &ImportSummary, json: bool) {
    if !summary.rejections.is_empty() {
        eprintln!(
            "{} row(s) rejected{}:",
            summary.rejected,
            if summary.rejected > SHOWN_REJECTIONS as u64 {
                format!(", the first {SHOWN_REJECTIONS}")
            } else {
                String::new()
            }
        );
        for r in summary.rejections.iter().take(SHOWN_REJECTIONS) {
            eprintln!("  {r}");
        }
    }
    if json {
        println!("{}", summary.to_json_string());
    } else {
        println!("{summary}");
    }
}
