//! `vitals-demo`: Vitals end to end on a bare machine. Creates the embedded database,
//! imports the shipped samples (IBM Telco churn and CDNOW, see fixtures/datasets),
//! trains and activates the models, starts the server, refreshes every customer's
//! evaluation, prints one real evaluation, and keeps serving until Ctrl-C.
//!
//! `vitals-demo evaluate EXTERNAL_ID` asks a running server for another.

mod render;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_stream::StreamExt;
use vitals_domain::time::MICROS_PER_DAY;
use vitals_engine::models::churn::Algorithm;
use vitals_proto::v1 as pb;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_server::logging::{self, LogFormat};
use vitals_server::{ServerConfig, serve};
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};
use vitals_trainer::{ImportOptions, import_cdnow, import_telco};

/// The Telco snapshot is placed in time at this date (its churners leave within 30 days
/// after it), and the churn model is trained at it.
const TELCO_AS_OF: &str = "2025-10-01";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/datasets");

#[derive(Debug, Parser)]
#[command(
    name = "vitals-demo",
    about = "Vitals end to end on the shipped sample data"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory for the embedded database and the model registry.
    #[arg(
        long,
        env = "VITALS_DATA_DIR",
        default_value = "./vitals-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Where the server listens (and where `evaluate` asks).
    #[arg(
        long,
        env = "VITALS_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import, train, serve and print an evaluation (the default).
    Run {
        /// Exit after printing instead of serving until Ctrl-C.
        #[arg(long)]
        no_serve: bool,
    },
    /// Ask the running server for one customer's evaluation.
    Evaluate {
        /// The customer's external id, e.g. 7590-VHVEG (Telco) or cdnow-0001 (CDNOW).
        external_id: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init_with_default(LogFormat::Text, "warn");
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command.unwrap_or(Command::Run { no_serve: false }) {
        Command::Evaluate { external_id } => runtime.block_on(async {
            let mut client = connect(cli.listen).await?;
            let e = evaluate(&mut client, &external_id).await?;
            print!("{}", render::evaluation(&e));
            Ok(())
        }),
        Command::Run { no_serve } => run(&cli.data_dir, cli.listen, no_serve, &runtime),
    }
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<EvaluationServiceClient<tonic::transport::Channel>> {
    EvaluationServiceClient::connect(format!("http://{addr}"))
        .await
        .with_context(|| {
            format!(
                "no Vitals server at {addr}: start one with `cargo run --release -p vitals-demo`"
            )
        })
}

async fn evaluate(
    client: &mut EvaluationServiceClient<tonic::transport::Channel>,
    external_id: &str,
) -> anyhow::Result<pb::Evaluation> {
    let request = pb::EvaluateCustomerRequest {
        lookup: Some(pb::evaluate_customer_request::Lookup::ExternalId(
            external_id.to_owned(),
        )),
        as_of: None,
    };
    Ok(client
        .evaluate_customer(request)
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner())
}

/// The demo's server: every setting named, the server's defaults except a registry in
/// the demo's data directory and a quicker model poll. No API keys, so `run` listens on
/// loopback only.
fn server_config(registry: PathBuf) -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        max_message_bytes: defaults.max_message_bytes,
        request_timeout: defaults.request_timeout,
        max_concurrent_per_connection: defaults.max_concurrent_per_connection,
        registry,
        model_poll_interval: std::time::Duration::from_secs(1),
        health_probe_interval: defaults.health_probe_interval,
        api_keys: vitals_server::auth::KeyRing::default(),
        tls: None,
        history_cache_bytes: defaults.history_cache_bytes,
        metrics_listen: None,
    }
}

fn step(what: &str) {
    println!("\n== {what}");
}

fn run(
    data_dir: &Path,
    listen: SocketAddr,
    no_serve: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo serves without API keys, so it listens on loopback only, not {listen}; \
             for more, run vitals-server with --api-keys"
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let url = DatabaseUrl::default_in(data_dir);
    let store = Store::open(&url, &PoolOptions::default())?;
    store.migrate()?;
    println!(
        "Vitals demo: embedded database {}",
        data_dir.join("vitals.db").display()
    );

    step("1. Import the shipped samples (a second run changes nothing)");
    let as_of = vitals_trainer::time::parse_date(TELCO_AS_OF).map_err(anyhow::Error::msg)?;
    let fixtures = Path::new(FIXTURES);
    let telco = import_telco(
        &store,
        &fixtures.join("telco_customer_churn.csv"),
        as_of,
        &ImportOptions::default(),
    )?;
    println!(
        "IBM Telco churn: {} rows read, {} rejected, {:.1} s",
        telco.read, telco.rejected, telco.seconds
    );
    let cdnow = import_cdnow(
        &store,
        &fixtures.join("cdnow_sample.txt"),
        &ImportOptions::default(),
    )?;
    println!(
        "CDNOW purchases: {} lines read, {} rejected, {:.1} s",
        cdnow.read, cdnow.rejected, cdnow.seconds
    );

    step("2. Train churn and segment models and activate them");
    let cutoff = as_of
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros();
    let registry = data_dir.join("models");
    let outcome = train(
        &store,
        &TrainConfig {
            registry: registry.clone(),
            cutoffs: vec![cutoff],
            horizon: 30 * MICROS_PER_DAY,
            churn: ChurnChoice::Only(Algorithm::Logistic),
            segments: SegmentChoice::Auto,
            seed: 1,
            activation: Activation::Always,
            validation_share: 0.2,
            progress: false,
            actor: "vitals-demo".into(),
        },
    )?;
    println!(
        "churn model v{} ({}): ROC-AUC {:.3} on {} held-out customers; {} segments (v{})\n\
         (CDNOW's customers last bought in 1998, so at this cutoff they are long lapsed and easy\n\
         to call: Telco alone scores 0.84-0.86, see BENCHMARKS.md)\nreport: {}",
        outcome.churn_version,
        outcome.churn_algorithm,
        outcome.roc_auc,
        outcome.validation_rows,
        outcome.segments.unwrap_or(0),
        outcome.segments_version.unwrap_or(0),
        outcome.report,
    );

    step(&format!("3. Serve on {listen} (gRPC and gRPC-Web)"));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}: is another server running there?"))?;
        // The address actually bound (the port may have been 0: any free port).
        let listen = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = server_config(registry);
        let server = tokio::spawn(serve(store, config, listener, async move {
            tokio::select! {
                _ = stopped => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }));
        let mut client = connect(listen).await?;

        step("4. Refresh every customer's stored evaluation");
        let mut progress = client
            .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
            .await?
            .into_inner();
        while let Some(p) = progress.next().await {
            let p = p?;
            if p.finished {
                println!(
                    "{} evaluations stored in {:.1} s; {} follow-up tasks opened \
                     (churn risk crossing 0.5, invoices overdue: FollowUpService.ListFollowUps)",
                    p.evaluations_stored, p.seconds, p.follow_ups_opened
                );
            }
        }

        step(
            "5. The customer most at risk who has not already lapsed, as EvaluateCustomer answers",
        );
        // CDNOW's customers have been dormant since 1998: certain to "leave", and nothing
        // to act on. The first one still active is the one worth a call.
        let at_risk = client
            .list_at_risk(pb::ListAtRiskRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut active = at_risk
            .evaluations
            .iter()
            .filter(|e| e.lifecycle_stage != "dormant")
            .map(|e| e.external_id.clone());
        let external_id = active.next().unwrap_or_else(|| "7590-VHVEG".to_owned());
        let another = active.next().unwrap_or_else(|| "cdnow-0001".to_owned());
        let e = evaluate(&mut client, &external_id).await?;
        println!("{}", render::evaluation(&e));
        println!(
            "Done in {:.1} s. Ask for another customer (in a second terminal):\n\n    \
             cargo run --release -p vitals-demo -- --listen {listen} evaluate {another}\n",
            started.elapsed().as_secs_f64()
        );
        if no_serve {
            let _ = stop.send(());
        } else {
            println!("Serving on {listen}; Ctrl-C stops.");
        }
        server.await??;
        Ok(())
    })
}
