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
use vitals_trainer::generate::{GenerateOptions, generate};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};
use vitals_trainer::{ImportOptions, import_telco};

/// The generated retailer: its size and seed (its customers are `gen-1-<n>`).
const GENERATED_CUSTOMERS: u64 = 3_000;
const GENERATED_SEED: u64 = 1;
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
        /// The customer's external id, e.g. 7590-VHVEG (Telco) or gen-1-17 (the generated retailer).
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
    let model_cache = registry.with_file_name("model-cache");
    let defaults = ServerConfig::default();
    ServerConfig {
        max_message_bytes: defaults.max_message_bytes,
        request_timeout: defaults.request_timeout,
        max_concurrent_per_connection: defaults.max_concurrent_per_connection,
        registry: registry.display().to_string(),
        model_cache,
        refresh_lease: defaults.refresh_lease,
        refresh_chunk_customers: defaults.refresh_chunk_customers,
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

    step("1. Load two companies' customers (a second run changes nothing)");
    let as_of = demo_as_of(data_dir)?;
    let fixtures = Path::new(FIXTURES);
    let telco = import_telco(
        &store,
        &fixtures.join("telco_customer_churn.csv"),
        as_of,
        &ImportOptions::default(),
    )?;
    println!(
        "IBM Telco churn (real, {} subscription customers): {} rows read, {} rejected, \
         {:.1} s; placed in time at {as_of}",
        telco.read - telco.rejected,
        telco.read,
        telco.rejected,
        telco.seconds
    );
    let first_generated = format!("gen-{GENERATED_SEED}-1");
    if store.get_customer_by_external_id(&first_generated).is_ok() {
        println!("A generated retailer: already loaded");
    } else {
        let generated = generate(
            &store,
            &GenerateOptions::new(GENERATED_CUSTOMERS, GENERATED_SEED),
        )?;
        println!(
            "A generated retailer (synthetic, every channel): {} customers ({} on \
             subscriptions, the rest buying in its shop), {} events: {} purchases, {} \
             invoices, {} survey answers, {} contacts and complaints; {:.1} s",
            generated.customers,
            generated.contractual,
            generated.events,
            generated.transactions,
            generated.payments,
            generated.feedback,
            generated.interactions,
            generated.seconds
        );
    }

    step("2. Train churn, segment and lifetime-value models and activate them");
    let cutoff = as_of
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros();
    let registry = data_dir.join("models");
    let outcome = train(
        &store,
        &TrainConfig {
            registry: registry.display().to_string(),
            cutoffs: vec![cutoff],
            horizon: 30 * MICROS_PER_DAY,
            churn: ChurnChoice::Only(Algorithm::Logistic),
            segments: SegmentChoice::Auto,
            seed: 1,
            activation: Activation::Always,
            validation_share: 0.2,
            progress: false,
            actor: "vitals-demo".into(),
            sample_customers: vitals_trainer::train::DEFAULT_SAMPLE_CUSTOMERS,
        },
    )?;
    println!(
        "churn model v{} ({}), trained on who left in the 30 days after {as_of}:",
        outcome.churn_version, outcome.churn_algorithm,
    );
    for p in &outcome.populations {
        println!(
            "  {:<26} ROC-AUC {:.3} on {} held-out customers ({:.1}% of them left)",
            p.population,
            p.roc_auc,
            p.validation_rows,
            p.base_rate * 100.0
        );
    }
    match outcome.text_version {
        Some(v) => println!("comment text model v{v}: {}", outcome.text_note),
        None => println!("{}", outcome.text_note),
    }
    if let Some(topics) = text_topics(&registry, outcome.text_version) {
        println!("topics customers write about (named by their top words):");
        for t in topics {
            println!(
                "  {:<8} {:<40} {:>4.1}% of the language's comments",
                t.0,
                t.1,
                t.2 * 100.0
            );
        }
    }
    println!(
        "{} segments (v{}); lifetime-value model: {}\nreport: {}",
        outcome.segments.unwrap_or(0),
        outcome.segments_version.unwrap_or(0),
        match outcome.clv_version {
            Some(v) => format!("v{v}"),
            None => outcome.clv_note.clone(),
        },
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

        step("5. Who is most likely to leave, as ListAtRisk answers (customers still with us)");
        let at_risk = client
            .list_at_risk(pb::ListAtRiskRequest {
                page_size: 5,
                ..Default::default()
            })
            .await?
            .into_inner();
        print!("{}", render::at_risk_table(&at_risk.evaluations));
        let Some(top) = at_risk.evaluations.first() else {
            println!("No customer has a churn probability: nothing is at risk.");
            return finish(no_serve, stop, server, listen, started, None).await;
        };

        step(&format!(
            "6. The customer most at risk, {}, as EvaluateCustomer answers",
            render::name(top)
        ));
        let e = evaluate(&mut client, &top.external_id).await?;
        println!("{}", render::evaluation(&e));

        step("7. Where the most value is at stake (ListAtRisk by expected loss)");
        let by_loss = client
            .list_at_risk(pb::ListAtRiskRequest {
                page_size: 5,
                order_by: pb::AtRiskOrder::ExpectedLoss as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        print!("{}", render::at_risk_table(&by_loss.evaluations));
        let another = by_loss
            .evaluations
            .iter()
            .map(|e| e.external_id.clone())
            .find(|id| *id != top.external_id);

        step("8. Whom to win back (ListWinBack: lapsed or churned, by the value lost)");
        let win_back = client
            .list_win_back(pb::ListWinBackRequest {
                page_size: 5,
                ..Default::default()
            })
            .await?
            .into_inner();
        print!("{}", render::win_back_table(&win_back.evaluations));

        step("9. What customers wrote that reads negative (ListComments, newest first)");
        let negative = client_comments(listen)
            .await?
            .list_comments(pb::ListCommentsRequest {
                page_size: 6,
                sentiment_at_most: Some(-0.3),
                ..Default::default()
            })
            .await?
            .into_inner();
        print!("{}", render::comments_table(&negative.comments));
        finish(no_serve, stop, server, listen, started, another).await
    })
}

/// The topics of text model `version`, as (language family, name, share).
fn text_topics(
    registry: &std::path::Path,
    version: Option<u64>,
) -> Option<Vec<(&'static str, String, f64)>> {
    let registry = vitals_trainer::open_registry(&registry.display().to_string()).ok()?;
    let text = vitals_engine::evaluation::load_text(registry.as_ref(), version?).ok()?;
    Some(
        text.model
            .topics()
            .iter()
            .map(|t| (t.family.as_str(), t.name.clone(), t.share))
            .collect(),
    )
}

async fn client_comments(
    listen: SocketAddr,
) -> anyhow::Result<
    vitals_proto::v1::event_service_client::EventServiceClient<tonic::transport::Channel>,
> {
    Ok(
        vitals_proto::v1::event_service_client::EventServiceClient::connect(format!(
            "http://{listen}"
        ))
        .await?,
    )
}

/// Prints how to ask for another customer, then serves until Ctrl-C (or stops).
async fn finish(
    no_serve: bool,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    listen: SocketAddr,
    started: Instant,
    another: Option<String>,
) -> anyhow::Result<()> {
    println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    if let Some(another) = another {
        println!(
            "Ask for another customer (in a second terminal):\n\n    \
             target/release/vitals-demo --listen {listen} evaluate {another}\n"
        );
    }
    if no_serve {
        let _ = stop.send(());
    } else {
        println!("Serving on {listen}; Ctrl-C stops.");
    }
    server.await??;
    Ok(())
}

/// The demo's point in time: the Telco snapshot is placed there, and the churn models
/// learn from who left in the 30 days after it. 45 days before the first run (so those
/// 30 days have passed), kept in the data directory so that later runs see the same.
fn demo_as_of(data_dir: &Path) -> anyhow::Result<chrono::NaiveDate> {
    let path = data_dir.join("demo-as-of.txt");
    match std::fs::read_to_string(&path) {
        Ok(text) => vitals_trainer::time::parse_date(text.trim())
            .map_err(|e| anyhow::anyhow!("{}: {e}; delete it to start over", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let date = chrono::Utc::now().date_naive() - chrono::Days::new(45);
            std::fs::write(&path, date.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(date)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    }
}
