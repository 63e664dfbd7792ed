//! The load benchmark: `cargo xtask bench [--quick]`, or
//! `cargo run --release -p webhook-bench --bin load -- [--quick] [--only e2e-redb,receiver]`.
//!
//! Progress goes to stderr, the markdown table to stdout, and the JSON report to
//! `target/bench/report.json` (or `--out`). Exits non-zero when a scenario failed to run
//! (a missed target is reported, not an error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use webhook_bench::report::{Report, Row, Status};
use webhook_bench::scenario::backlog::{self, Backlogged, ChildArgs};
use webhook_bench::scenario::e2e::{self, Store};
use webhook_bench::scenario::{Mode, Settings, history, outbox, receiver, serve};
use webhook_bench::system;

/// Every scenario, in run order.
const SCENARIOS: [&str; 14] = [
    "e2e-memory",
    "e2e-redb",
    "e2e-redis",
    "e2e-redis-aof",
    "e2e-postgres",
    outbox::SCENARIO,
    serve::SCENARIO,
    "receiver",
    "receiver-dedup",
    "backlog",
    "backlog-postgres",
    "history",
    "history-postgres",
    "retention-soak",
];

#[derive(Debug, Parser)]
#[command(
    name = "load",
    about = "Load benchmarks of the webhook toolkit, each next to its baseline"
)]
struct Cli {
    /// CI smoke mode: every scenario scaled down (under 2 minutes on 2 cores).
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// A few seconds in all (the crate's own tests).
    #[arg(long, hide = true)]
    smoke: bool,
    /// Run only these scenarios (comma-separated): e2e-memory, e2e-redb, e2e-redis,
    /// e2e-redis-aof, e2e-postgres, txn-postgres, serve-redb, receiver, receiver-dedup, backlog, backlog-postgres, history, history-postgres,
    /// retention-soak.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the JSON report. Default is target/bench/report.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measurements per side (the best counts). Default: 1 quick, 2 full.
    #[arg(long)]
    rounds: Option<usize>,
    /// Deliveries queued in the backlog scenario. Default: 50,000 quick, 1,000,000 full.
    #[arg(long)]
    backlog: Option<usize>,
    /// HTTP concurrency: the endpoint's cap and the baselines' client tasks. Default 16.
    #[arg(long)]
    concurrency: Option<usize>,
    /// End-to-end: events published but not yet received, at most. Default 4 × the
    /// concurrency.
    #[arg(long)]
    window: Option<usize>,
    /// HTTP service: keep-alive client connections publishing to the API (and the
    /// baseline's client tasks in that scenario). Default 32.
    #[arg(long)]
    connections: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The backlog scenario's sender process (started by the benchmark itself).
    #[command(hide = true)]
    BacklogSender(ChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::BacklogSender(args)) = cli.command {
        return match runtime.block_on(backlog::child(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "message": error.to_string()})
                );
                eprintln!("error: backlog sender: {error}");
                ExitCode::FAILURE
            }
        };
    }
    for name in &cli.only {
        if !SCENARIOS.contains(&name.as_str()) {
            eprintln!(
                "error: unknown scenario `{name}`; known: {}",
                SCENARIOS.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let mode = if cli.smoke {
        Mode::Smoke
    } else if cli.quick {
        Mode::Quick
    } else {
        Mode::Full
    };
    let mut settings = Settings::new(mode);
    settings.exe = std::env::current_exe().ok();
    settings.scratch = webhook_bench::bench_dir();
    if let Some(rounds) = cli.rounds {
        settings.rounds = rounds.max(1);
    }
    if let Some(concurrency) = cli.concurrency {
        settings.concurrency = concurrency.max(1);
        settings.window = settings.concurrency * 4;
        settings.publishers = settings.window;
    }
    if let Some(window) = cli.window {
        settings.window = window.max(1);
        settings.publishers = settings.window;
    }
    if let Some(connections) = cli.connections {
        settings.api_connections = connections.max(1);
    }
    if let Some(backlog) = cli.backlog {
        settings.backlog = backlog.max(1);
    }
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| settings.scratch.join("report.json"));
    let wanted = |name: &str| cli.only.is_empty() || cli.only.iter().any(|n| n == name);

    let started = std::time::Instant::now();
    let machine = system::Machine::detect();
    eprintln!(
        "load benchmark, mode {mode}: {} CPUs ({}), {} MiB; load average {}",
        machine.cpus,
        machine.cpu_model,
        machine.memory_mib,
        system::load_average().map_or_else(|| "?".to_owned(), |l| format!("{l:.2}")),
    );
    let mut report = Report::new(mode.to_string(), Vec::new());
    report.fsync_ms = system::fsync_latency(&settings.scratch, 50).ok();
    let rows = runtime.block_on(async {
        let mut rows: Vec<Row> = Vec::new();
        for store in [
            Store::Memory,
            Store::Redb,
            Store::Redis,
            Store::RedisAof,
            Store::Postgres,
        ] {
            if wanted(store.scenario()) {
                rows.push(e2e::run(&settings, store).await);
            }
        }
        if wanted(outbox::SCENARIO) {
            rows.push(outbox::run(&settings).await);
        }
        if wanted(serve::SCENARIO) {
            rows.push(serve::run(&settings).await);
        }
        if wanted("receiver") {
            rows.push(receiver::run(&settings).await);
        }
        if wanted("receiver-dedup") {
            rows.push(receiver::run_sustained(&settings).await);
        }
        for store in [Backlogged::Redb, Backlogged::Postgres] {
            if wanted(store.names()[0]) {
                rows.extend(backlog::run(&settings, store).await);
            }
        }
        rows.extend(
            history::run(
                &settings,
                wanted("history"),
                wanted("history-postgres"),
                wanted("retention-soak"),
            )
            .await,
        );
        rows
    });
    report.rows = rows;
    report.load_after = system::load_average();
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    print!("{}", report.markdown());
    if let Err(error) = report.write_json(&out) {
        eprintln!("error: cannot write {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("report written to {}", out.display());
    let failed: Vec<&str> = report
        .rows
        .iter()
        .filter(|row| matches!(row.status, Status::Failed(_)))
        .map(|row| row.name.as_str())
        .collect();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: scenarios failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
