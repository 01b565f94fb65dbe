//! `vitals-trainer`: Vitals' offline CLI.
//!
//! ```text
//! vitals-trainer [--data-dir DIR] [--database-url URL] [--registry DIR] [--log-format text|json]
//!     import <customers|events|telco|cdnow> FILE [--as-of YYYY-MM-DD] [--json]
//!     generate --customers N --seed S [--start DATE] [--end DATE] [--json]
//!              [--campaign NAME [--campaign-effect E] [--campaign-holdout H] [--campaign-horizon-days D]]
//!     train [--as-of DATE] [--cutoffs N --step DURATION] [--horizon DURATION]
//!           [--churn-model auto|logistic|mlp|forest] [--segments auto|K] [--seed S]
//!           [--activate | --activate-if-better] [--json]
//!     score --as-of DATE --out FILE.csv [--json]
//!     models list | show KIND VERSION [--json] | activate KIND VERSION | rollback KIND
//!     review --campaign NAME [--as-of DATE] [--json]
//!     review --actions [--kind K] --start DATE --end DATE [--horizon-days N] [--as-of DATE] [--json]
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
use vitals_domain::time::{Micros, now_micros};
use vitals_engine::models::churn::Algorithm;
use vitals_store::{DataArgs, DatabaseUrl, Store, redact_url};
use vitals_trainer::import::ImportOptions;
use vitals_trainer::score::{ScoreConfig, score};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};
use vitals_trainer::{ImportSummary, import_cdnow, import_customers, import_events, import_telco};

/// Training and bulk loads allocate many small strings (rows, keys); mimalloc does that
/// markedly faster than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rejected rows listed on stderr after an import.
const SHOWN_REJECTIONS: usize = 20;

#[derive(Debug, Parser)]
#[command(
    name = "vitals-trainer",
    version,
    about = "Vitals' offline CLI: import history, train, score, manage models, review retention campaigns"
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,

    /// The model registry: a directory, or an object store URL (`s3://bucket/prefix`,
    /// `gs://`, `az://`; credentials and endpoint from the standard AWS_*, GOOGLE_*,
    /// AZURE_* variables). Default: `<data-dir>/models`, where the server looks too.
    #[arg(long, global = true, env = "VITALS_REGISTRY")]
    registry: Option<String>,

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
    /// Generate synthetic customers and histories with a known churn process (for
    /// benchmarks, load tests and model checks); re-running it changes nothing.
    Generate(vitals_trainer::generate::GenerateArgs),
    /// Build a point-in-time training set, fit churn and segment models, measure them on
    /// held-out customers, write a report and publish new model versions.
    Train(TrainArgs),
    /// Score every customer eligible at a date with the active models into a CSV file.
    Score(ScoreArgs),
    /// List, inspect, activate and roll back model versions.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The audit trail: who wrote what or read whose personal data, newest first.
    Audit(AuditArgs),
    /// Whether retention actions worked: a campaign's treated members against its
    /// held-out control group, or actions without a campaign against untreated customers.
    Review(vitals_trainer::review::ReviewArgs),
    /// Rewrite the event tables in customer order (PostgreSQL `CLUSTER`), so training
    /// reads each chunk of customers from its own pages: about twice as fast after large
    /// loads of events in arrival order. Locks each table while it runs (seconds per
    /// million events); SQLite needs nothing.
    Cluster,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// The (last) cutoff: features use what was known before it, labels the horizon
    /// after it. Default: the latest date whose horizon has fully passed.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<NaiveDate>,
    /// Number of cutoffs, `--step` apart, ending at `--as-of`. With more than one, the
    /// last cutoff is the (out-of-time) validation set.
    #[arg(long, default_value_t = 1)]
    cutoffs: usize,
    /// Distance between cutoffs, e.g. `30d`, `4w`.
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    step: Micros,
    /// How far ahead churn is predicted, e.g. `30d`, `26w`, `90d`.
    #[arg(long, value_parser = parse_duration, default_value = "90d")]
    horizon: Micros,
    /// The churn algorithm; `auto` fits all three and keeps the best validation ROC-AUC.
    #[arg(long, default_value = "logistic", value_parser = ["auto", "logistic", "mlp", "forest"])]
    churn_model: String,
    /// Number of segments, or `auto` (3 to 8, by silhouette).
    #[arg(long, default_value = "auto")]
    segments: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of customers held out for validation with a single cutoff.
    #[arg(long, default_value_t = 0.2)]
    validation_share: f64,
    /// Activate the new versions.
    #[arg(long, conflicts_with = "activate_if_better")]
    activate: bool,
    /// Activate only if the new churn model beats the active one on this run's validation rows.
    #[arg(long)]
    activate_if_better: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// Fit the churn, segment and lifetime-value models on at most about this many
    /// customers: with more stored, one chunk of 2,000 customers in every k, in id order (a
    /// systematic sample across the order they came in), is read, the rest not. 0 reads
    /// everyone.
    #[arg(long, default_value_t = vitals_trainer::train::DEFAULT_SAMPLE_CUSTOMERS)]
    sample_customers: usize,
    /// Fit and publish only the comment text model (sentiment and topics), from the newest
    /// stored comments: no churn, segment or lifetime-value model, no cutoff needed.
    #[arg(long, conflicts_with = "activate_if_better")]
    text_only: bool,
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// Only this caller (the API key's name).
    #[arg(long)]
    actor: Option<String>,
    /// Only methods containing this, e.g. `DeleteCustomer`.
    #[arg(long)]
    method: Option<String>,
    /// Only this record, e.g. a customer id.
    #[arg(long)]
    record: Option<String>,
    /// At or after this date.
    #[arg(long, value_parser = parse_as_of)]
    since: Option<NaiveDate>,
    /// Before this date.
    #[arg(long, value_parser = parse_as_of)]
    until: Option<NaiveDate>,
    /// Most entries shown.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["out", "store"])))]
struct ScoreArgs {
    /// Score as of this date (features from what was known before it). Default: now.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<NaiveDate>,
    /// The CSV file to write.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Store every customer's evaluation snapshot in the database, as the server's
    /// RefreshEvaluations does (for ListAtRisk and ListSegments).
    #[arg(long)]
    store: bool,
    /// Factors listed per customer.
    #[arg(long, default_value_t = 3)]
    top_factors: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Every kind and version, with the active one marked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One version's manifest; VERSION is a number, `active` or `latest`.
    Show {
        kind: String,
        version: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a version the one the servers use (after verifying its files).
    Activate { kind: String, version: String },
    /// Re-activate the version that was active before the current one.
    Rollback { kind: String },
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

/// The active text model, which analyses imported comments as the server would. Without
/// one, or when it cannot be loaded (said in the log), the built-in lexicons do; each
/// analysis records which version made it.
fn text_in_service(
    registry: &str,
) -> Option<std::sync::Arc<vitals_engine::evaluation::LoadedText>> {
    let registry = match vitals_trainer::open_registry(registry) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the registry: comments are analysed with the built-in lexicons");
            return None;
        }
    };
    let kind = vitals_engine::text::TEXT_KIND;
    let version = match registry.active(kind) {
        Ok(Some(v)) => v,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the active text model: comments are analysed with the built-in lexicons");
            return None;
        }
    };
    match vitals_engine::evaluation::load_text(registry.as_ref(), version) {
        Ok(t) => Some(std::sync::Arc::new(t)),
        Err(e) => {
            tracing::warn!(version, error = %e, "the active text model cannot be loaded: comments are analysed with the built-in lexicons");
            None
        }
    }
}

fn parse_as_of(s: &str) -> Result<NaiveDate, String> {
    vitals_trainer::time::parse_date(s)
}

fn parse_duration(s: &str) -> Result<Micros, String> {
    vitals_trainer::time::parse_duration(s)
}

/// Midnight UTC of a date, in microseconds.
fn date_micros(d: NaiveDate) -> Micros {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
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
    let registry = cli
        .registry
        .clone()
        .unwrap_or_else(|| cli.data.data_dir.join("models").display().to_string());
    if let Command::Models(cmd) = &cli.command {
        return models_command(&registry, cmd);
    }
    let url = cli.data.database_url()?;
    let shown = match &url {
        DatabaseUrl::Postgres(u) => redact_url(u),
        DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    let store = cli
        .data
        .open_store()
        .with_context(|| format!("opening {shown}"))?;
    let applied = store
        .migrate()
        .with_context(|| format!("migrating {shown}"))?;
    tracing::info!(database = %shown, applied = applied.len(), "database ready");

    let progress = std::io::stderr().is_terminal();
    let args = match cli.command {
        Command::Import(args) => args,
        Command::Generate(args) => {
            return vitals_trainer::generate::run_command(&store, &args, progress);
        }
        Command::Train(args) => return train_command(&store, registry, args, progress),
        Command::Score(args) => return score_command(&store, registry, args, progress),
        Command::Models(_) => return Ok(()),
        Command::Audit(args) => return audit_command(&store, &args),
        Command::Review(args) => return vitals_trainer::review::run_command(&store, &args),
        Command::Cluster => return cluster_command(&store),
    };
    let text = match &args.source {
        ImportSource::Events { .. } => text_in_service(&registry),
        _ => None,
    };
    let options = ImportOptions {
        progress: true,
        text,
    };
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
        vitals_trainer::outln!("{}", summary.to_json_string());
    } else {
        vitals_trainer::outln!("{summary}");
    }
}

fn cluster_command(store: &Store) -> anyhow::Result<()> {
    let clustered = store
        .cluster_histories(|table, seconds| println!("{table}: clustered in {seconds:.1} s"))
        .context("clustering the event tables")?;
    if !clustered {
        println!("SQLite: nothing to cluster");
    }
    Ok(())
}

fn audit_command(store: &Store, args: &AuditArgs) -> anyhow::Result<()> {
    let filter = vitals_store::AuditFilter {
        actor: args.actor.clone(),
        method: args.method.clone(),
        record: args.record.clone(),
        since: args.since.map(date_micros),
        until: args.until.map(date_micros),
    };
    let entries = store.list_audit(&filter, args.limit)?;
    let time = |m: Micros| {
        chrono::DateTime::from_timestamp_micros(m)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    if args.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "time": time(e.time),
                    "actor": e.actor,
                    "method": e.method,
                    "record": e.record,
                    "outcome": e.outcome,
                })
            })
            .collect();
        return print_json(&rows);
    }
    for e in &entries {
        vitals_trainer::outln!(
            "{}  {:<20} {:<46} {:<38} {}",
            time(e.time),
            e.actor,
            e.method,
            e.record,
            e.outcome
        );
    }
    if entries.is_empty() {
        vitals_trainer::outln!("no audit entries match");
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    vitals_trainer::outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn train_command(
    store: &Store,
    registry: String,
    args: TrainArgs,
    progress: bool,
) -> anyhow::Result<()> {
    if args.text_only {
        let registry = vitals_trainer::open_registry(&registry)?;
        let step = vitals_trainer::train::text::run(
            store,
            registry.as_ref(),
            &serde_json::json!({ "text_only": true }),
            args.seed,
        )?;
        if let (true, Some(v)) = (args.activate, step.version) {
            let actor = std::env::var("USER").unwrap_or_else(|_| "vitals-trainer".into());
            registry.activate(
                vitals_engine::text::TEXT_KIND,
                v,
                &actor,
                "train --text-only --activate",
            )?;
        }
        if args.json {
            vitals_trainer::outln!("{}", serde_json::to_string_pretty(&step)?);
        } else {
            match step.version {
                Some(v) => vitals_trainer::outln!(
                    "comment text v{v} from {} comments ({} scored){}: {}",
                    step.comments,
                    step.labelled,
                    if args.activate { ", activated" } else { "" },
                    step.note
                ),
                None => vitals_trainer::outln!("{}", step.note),
            }
        }
        return Ok(());
    }
    let churn = match args.churn_model.as_str() {
        "auto" => ChurnChoice::Auto,
        other => ChurnChoice::Only(
            Algorithm::parse(other).with_context(|| format!("unknown churn model {other:?}"))?,
        ),
    };
    let segments = match args.segments.as_str() {
        "auto" => SegmentChoice::Auto,
        k => match k.parse::<usize>() {
            Ok(k) if (2..=50).contains(&k) => SegmentChoice::K(k),
            _ => anyhow::bail!("--segments takes `auto` or a number from 2 to 50, got {k:?}"),
        },
    };
    if args.cutoffs == 0 || args.cutoffs > 52 {
        anyhow::bail!("--cutoffs takes 1 to 52, got {}", args.cutoffs);
    }
    if !(0.05..=0.5).contains(&args.validation_share) {
        anyhow::bail!("--validation-share takes 0.05 to 0.5");
    }
    let last = match args.as_of {
        Some(d) => date_micros(d),
        None => now_micros() - args.horizon,
    };
    let cutoffs: Vec<Micros> = (0..args.cutoffs)
        .rev()
        .map(|i| last - i as i64 * args.step)
        .collect();
    let config = TrainConfig {
        registry,
        cutoffs,
        horizon: args.horizon,
        churn,
        segments,
        seed: args.seed,
        activation: if args.activate {
            Activation::Always
        } else if args.activate_if_better {
            Activation::IfBetter
        } else {
            Activation::No
        },
        validation_share: args.validation_share,
        progress,
        actor: std::env::var("USER").unwrap_or_else(|_| "vitals-trainer".into()),
        sample_customers: args.sample_customers,
    };
    let outcome = train(store, &config)?;
    if args.json {
        return print_json(&outcome);
    }
    vitals_trainer::outln!(
        "churn model v{} ({}), every validation row scored by its population's model (the populations' \
         different base rates flatter this; read each population's line below): ROC-AUC {:.4}, PR-AUC {:.4}, \
         log loss {:.4}, Brier {:.4}, base rate {:.3} \
         ({} training / {} validation rows from {} customers{}, {} events, {:.1} s)",
        outcome.churn_version,
        outcome.churn_algorithm,
        outcome.roc_auc,
        outcome.pr_auc,
        outcome.log_loss,
        outcome.brier,
        outcome.base_rate,
        outcome.training_rows,
        outcome.validation_rows,
        outcome.customers_read,
        if outcome.customers_total > outcome.customers_read as u64 {
            format!(
                " (a sample of the {} stored; --sample-customers 0 reads everyone)",
                outcome.customers_total
            )
        } else {
            String::new()
        },
        outcome.events_read,
        outcome.seconds
    );
    for p in &outcome.populations {
        vitals_trainer::outln!(
            "  {}: {} ROC-AUC {:.4}, base rate {:.3} ({} training / {} validation rows)",
            p.population,
            p.algorithm,
            p.roc_auc,
            p.base_rate,
            p.training_rows,
            p.validation_rows
        );
    }
    if let (Some(v), Some(k)) = (outcome.segments_version, outcome.segments) {
        vitals_trainer::outln!("segments v{v}: {k} segments");
    }
    match outcome.clv_version {
        Some(v) => vitals_trainer::outln!("lifetime value (BG/NBD + Gamma-Gamma) v{v}"),
        None => vitals_trainer::outln!("{}", outcome.clv_note),
    }
    match outcome.text_version {
        Some(v) => vitals_trainer::outln!("comment text v{v}: {}", outcome.text_note),
        None => vitals_trainer::outln!("{}", outcome.text_note),
    }
    vitals_trainer::outln!("{}", outcome.activation_note);
    vitals_trainer::outln!("report: {}", outcome.report);
    Ok(())
}

fn score_command(
    store: &Store,
    registry: String,
    args: ScoreArgs,
    progress: bool,
) -> anyhow::Result<()> {
    let as_of = args
        .as_of
        .map_or_else(vitals_domain::time::now_micros, date_micros);
    let mut outcomes = serde_json::Map::new();
    if let Some(out) = args.out {
        let config = ScoreConfig {
            registry: registry.clone(),
            as_of,
            out,
            top_factors: args.top_factors,
            progress,
        };
        let outcome = score(store, &config)?;
        if !args.json {
            vitals_trainer::outln!(
                "scored {} of {} customers with churn v{}{} into {} ({:.1} s)",
                outcome.scored,
                outcome.customers_read,
                outcome.churn_version,
                outcome
                    .segments_version
                    .map(|v| format!(" and segments v{v}"))
                    .unwrap_or_default(),
                outcome.out,
                outcome.seconds
            );
        }
        outcomes.insert("csv".into(), serde_json::to_value(&outcome)?);
    }
    if args.store {
        let outcome = vitals_trainer::score::store_snapshots(store, &registry, as_of, progress)?;
        if !args.json {
            vitals_trainer::outln!(
                "stored {} evaluations of {} customers (churn v{}, segments v{}, lifetime value v{}, scheme v{}) in {:.1} s",
                outcome.stored,
                outcome.customers,
                outcome.churn_version.unwrap_or(0),
                outcome.segments_version.unwrap_or(0),
                outcome.clv_version.unwrap_or(0),
                outcome.scheme_version,
                outcome.seconds
            );
        }
        outcomes.insert("store".into(), serde_json::to_value(&outcome)?);
    }
    if args.json {
        return print_json(&outcomes);
    }
    Ok(())
}

fn models_command(location: &str, cmd: &ModelsCommand) -> anyhow::Result<()> {
    let registry = vitals_trainer::open_registry(location)?;
    let actor = std::env::var("USER").unwrap_or_else(|_| "vitals-trainer".into());
    match cmd {
        ModelsCommand::List { json } => {
            let mut rows = Vec::new();
            for kind in registry.kinds()? {
                let active = registry.active(&kind)?;
                for version in registry.versions(&kind)? {
                    let m = registry.manifest(&kind, version)?;
                    rows.push(serde_json::json!({
                        "kind": kind,
                        "version": version,
                        "active": active == Some(version),
                        "created": m.created,
                        "algorithm": m.algorithm,
                        "roc_auc": m.metrics.get("roc_auc"),
                    }));
                }
            }
            if *json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                vitals_trainer::outln!("no models in {location}");
            }
            for r in rows {
                vitals_trainer::outln!(
                    "{} {:<10} v{:<4} {:<9} {:<22} {}",
                    if r["active"] == true { "*" } else { " " },
                    r["kind"].as_str().unwrap_or_default(),
                    r["version"],
                    r["algorithm"].as_str().unwrap_or_default(),
                    r["created"].as_str().unwrap_or_default(),
                    r["roc_auc"]
                        .as_f64()
                        .map(|a| format!("ROC-AUC {a:.4}"))
                        .unwrap_or_default()
                );
            }
        }
        ModelsCommand::Show {
            kind,
            version,
            json,
        } => {
            let v = registry.resolve(kind, version)?;
            let m = registry.manifest(kind, v)?;
            if *json {
                return print_json(&m);
            }
            vitals_trainer::outln!("{kind} v{v} ({}), created {}", m.algorithm, m.created);
            vitals_trainer::outln!("active: {}", registry.active(kind)? == Some(v));
            vitals_trainer::outln!("training: {}", m.training);
            vitals_trainer::outln!("metrics: {}", serde_json::to_string_pretty(&m.metrics)?);
            vitals_trainer::outln!("files:");
            for (name, f) in &m.files {
                vitals_trainer::outln!("  {name} ({} bytes, sha256 {})", f.bytes, f.sha256);
            }
            if let Some(report) = m.extra.get("report").and_then(|r| r.as_str()) {
                vitals_trainer::outln!(
                    "report: {}",
                    registry.verified(kind, v)?.1.join(report).display()
                );
            }
        }
        ModelsCommand::Activate { kind, version } => {
            let v = registry.resolve(kind, version)?;
            let previous = registry.activate(kind, v, &actor, "activate")?;
            vitals_trainer::outln!(
                "{kind} v{v} is active{}",
                previous.map(|p| format!(" (was v{p})")).unwrap_or_default()
            );
        }
        ModelsCommand::Rollback { kind } => {
            let v = registry.rollback(kind, &actor)?;
            vitals_trainer::outln!("{kind} rolled back: v{v} is active");
        }
    }
    Ok(())
}
