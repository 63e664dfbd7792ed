//! 1,000,000 deliveries queued for a dead endpoint: the enqueue rate, the sender's peak
//! RSS, and the time to drain once the endpoint comes back.
//!
//! **Process layout.** The sender runs in a child process (the load binary's hidden
//! `backlog-sender` subcommand), so its peak RSS (`VmHWM`, read by the parent from
//! `/proc/<pid>/status`) holds the sender alone, not the load generator's buffers or the
//! receiving server. The child talks to the parent in JSON lines on stdout; closing its
//! stdin tells it to shut down.
//!
//! **The dead endpoint.** The parent binds a port on 127.0.0.1 without listening, so
//! every connection is refused at once (the port stays reserved). The child queues the
//! deliveries in the embedded durable store (redb, the production default) with
//! `backlog_publishers` concurrent publish tasks; meanwhile the engine keeps trying the
//! endpoint, its circuit breaker opens, and refused attempts are rescheduled. Then the
//! parent starts listening on that port with the counting server, and the drain time runs
//! from then until every delivery has arrived.
//!
//! **Settings that shape the drain.** The endpoint's retry policy is exponential with a
//! 100 ms base and 1 s cap, and the breaker cools down for 1 s, so the drain measures the
//! engine's delivery throughput rather than the production backoff (whose waits of up to
//! an hour would make "drain time" mean "the longest backoff"). Everything else is the
//! default: 64 workers, an endpoint concurrency of 16 (the other scenarios' value).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::{PostgresConfig, PostgresStore, RedbStore};
use webhook_sender::{
    AllowList, BreakerConfig, EndpointConfig, OutcomeStatus, Publish, RetryPolicy, Sender,
};

use super::{BoxError, Settings};
use crate::http::{Tracker, counting_server};
use crate::payload::{self, ORGANIZATION, SECRET};
use crate::report::{Row, Target};
use crate::stats::Histogram;
use crate::system;

/// The memory goal.
const RSS_LIMIT_MIB: f64 = 300.0;
const KIB_PER_MIB: f64 = 1024.0;

/// Arguments of the child process (`load backlog-sender …`): the load binary parses them
/// with clap, and [`ChildArgs::to_args`] writes them back as the same flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ChildArgs {
    /// The dead endpoint's port on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
    /// Deliveries to queue.
    #[arg(long)]
    pub count: usize,
    /// Directory for the redb file.
    #[arg(long)]
    pub dir: PathBuf,
    /// Concurrent publish tasks.
    #[arg(long)]
    pub publishers: usize,
    /// The endpoint's concurrency cap.
    #[arg(long)]
    pub concurrency: usize,
    /// The sender's worker slots.
    #[arg(long)]
    pub workers: usize,
    /// Queue in this PostgreSQL database instead of a redb file in `dir`.
    #[arg(long)]
    pub postgres: Option<String>,
}

impl ChildArgs {
    /// The command-line arguments after the subcommand.
    #[must_use]
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--publishers".into(),
            self.publishers.to_string(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--workers".into(),
            self.workers.to_string(),
        ];
        if let Some(url) = &self.postgres {
            args.extend(["--postgres".into(), url.clone()]);
        }
        args
    }
}

/// Where the backlog is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlogged {
    /// A redb file (the production default).
    Redb,
    /// A PostgreSQL server the scenario starts.
    Postgres,
}

impl Backlogged {
    /// The names of the scenario and of its two rows.
    #[must_use]
    pub fn names(self) -> [&'static str; 3] {
        match self {
            Self::Redb => ["backlog", "backlog-enqueue", "backlog-drain"],
            Self::Postgres => [
                "backlog-postgres",
                "backlog-enqueue-postgres",
                "backlog-drain-postgres",
            ],
        }
    }
}

/// Runs the scenario; returns the `backlog-enqueue` and `backlog-drain` rows (with a
/// `-postgres` suffix on Postgres).
pub async fn run(settings: &Settings, store: Backlogged) -> Vec<Row> {
    let [_, enqueue, drain] = store.names();
    match run_inner(settings, store).await {
        Ok(rows) => rows,
        Err(error) => vec![
            Row::failed(
                enqueue,
                enqueue_description(settings, store),
                error.to_string(),
            ),
            Row::failed(drain, drain_description(settings), error.to_string()),
        ],
    }
}

fn enqueue_description(settings: &Settings, store: Backlogged) -> String {
    let backend = match store {
        Backlogged::Redb => "redb",
        Backlogged::Postgres => "Postgres",
    };
    format!(
        "{} deliveries queued for a dead endpoint ({backend}): publishes/s, sender peak RSS",
        settings.backlog
    )
}

fn drain_description(settings: &Settings) -> String {
    format!(
        "{} queued deliveries drained once the endpoint is back: deliveries/s",
        settings.backlog
    )
}

/// What the child reported.
#[derive(Debug, Default)]
struct ChildReport {
    enqueued: Option<Value>,
    last_outcomes: Option<Value>,
    done: Option<Value>,
}

#[allow(clippy::too_many_lines)]
async fn run_inner(settings: &Settings, store: Backlogged) -> Result<Vec<Row>, BoxError> {
    let [_, enqueue_name, drain_name] = store.names();
    let postgres = match store {
        Backlogged::Redb => None,
        Backlogged::Postgres => Some(super::e2e::start_postgres().await?),
    };
    let exe = match &settings.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    // Bound but not listening: connections are refused, and the port stays ours.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
    let port = socket.local_addr()?.port();
    std::fs::create_dir_all(&settings.scratch)?;
    let dir = tempfile::Builder::new()
        .prefix("webhook-bench-backlog-")
        .tempdir_in(&settings.scratch)?;
    let args = ChildArgs {
        port,
        count: settings.backlog,
        dir: dir.path().to_path_buf(),
        publishers: settings.backlog_publishers,
        concurrency: settings.concurrency,
        workers: settings.workers,
        postgres: postgres.as_ref().map(webhook_testkit::PostgresServer::url),
    };
    let mut child: Child = Command::new(&exe)
        .arg("backlog-sender")
        .args(args.to_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {} backlog-sender: {e}", exe.display()))?;
    let pid = child.id().ok_or("the sender process exited at once")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let (lines, mut messages) = mpsc::unbounded_channel::<Value>();
    let reader = tokio::spawn(async move {
        let mut stdout = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                if lines.send(value).is_err() {
                    break;
                }
            }
        }
    });
    let label = format!("backlog {}", settings.backlog);
    let mut report = ChildReport::default();

    // Phase 1: enqueue, the endpoint dead.
    let enqueue_limit = Duration::from_secs(120 + settings.backlog as u64 / 1_000);
    let started = Instant::now();
    while report.enqueued.is_none() {
        let remaining = enqueue_limit.saturating_sub(started.elapsed());
        let Ok(Some(message)) = tokio::time::timeout(remaining, messages.recv()).await else {
            return Err(
                format!("the sender did not finish enqueueing within {enqueue_limit:?}").into(),
            );
        };
        match message["event"].as_str() {
            Some("progress") => eprintln!(
                "[{label}] enqueue {:>6.1} s: {} queued, sender RSS {} MiB",
                message["secs"].as_f64().unwrap_or(0.0),
                message["enqueued"],
                mib(system::rss_kib(Some(pid))),
            ),
            Some("enqueued") => report.enqueued = Some(message),
            Some("error") => return Err(format!("sender: {}", message["message"]).into()),
            _ => {}
        }
    }
    let enqueued = report.enqueued.clone().unwrap_or_default();
    let peak_after_enqueue = system::peak_rss_kib(Some(pid));
    eprintln!(
        "[{label}] queued {} in {:.1} s; sender peak RSS so far {} MiB; endpoint comes back",
        enqueued["count"],
        enqueued["secs"].as_f64().unwrap_or(0.0),
        mib(peak_after_enqueue)
    );

    // Phase 2: the endpoint comes back; drain.
    let tracker = Arc::new(Tracker::new(settings.backlog));
    let listener = socket.listen(1024)?;
    let back_ns = tracker.now_ns();
    let back = Instant::now();
    let child_cpu_from = system::cpu_time(Some(pid));
    let server = counting_server(listener, Arc::clone(&tracker));
    let total = settings.backlog as u64;
    let mut last = 0;
    let mut interval = tokio::time::interval(Duration::from_secs(2));
    interval.tick().await;
    let drained = loop {
        if tracker.unique() >= total {
            break true;
        }
        if back.elapsed() > settings.drain_timeout {
            break false;
        }
        tokio::select! {
            _ = interval.tick() => {
                let now = tracker.unique();
                eprintln!(
                    "[{label}] drain {:>6.1} s: {now}/{total} delivered ({}/s), sender RSS {} MiB",
                    back.elapsed().as_secs_f64(),
                    (now - last) / 2,
                    mib(system::rss_kib(Some(pid))),
                );
                last = now;
            }
            message = messages.recv() => match message {
                Some(message) if message["event"] == "outcomes" => report.last_outcomes = Some(message),
                Some(_) => {}
                None => break false,
            },
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let last_receipt_ns = tracker.last_receipt_ns();
    let drain_secs = Duration::from_nanos(last_receipt_ns.saturating_sub(back_ns)).as_secs_f64();
    let peak = system::peak_rss_kib(Some(pid));
    let child_cores = system::cpu_time(Some(pid))
        .zip(child_cpu_from)
        .map(|(to, from)| (to - from).as_secs_f64() / back.elapsed().as_secs_f64());

    // Phase 3: stop the child and collect its final counts.
    drop(stdin);
    let finish = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(message) = messages.recv().await {
            if message["event"] == "done" {
                return Some(message);
            }
        }
        None
    })
    .await;
    report.done = finish.ok().flatten();
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            let _ = child.kill().await;
        }
    }
    reader.abort();
    drop(server);
    drop(dir);

    let peak_mib = peak.map(|kib| kib as f64 / KIB_PER_MIB);
    let final_counts = report
        .done
        .clone()
        .or(report.last_outcomes.clone())
        .unwrap_or_default();
    let failed = final_counts["failed"].as_u64();
    let lagged = final_counts["lagged"].as_u64().unwrap_or(0);
    let publish_errors = enqueued["errors"].as_u64().unwrap_or(0);
    let missing = total.saturating_sub(tracker.unique());
    let scaled = if settings.backlog == 1_000_000 {
        String::new()
    } else {
        format!(
            "scaled down to {} (the full run queues 1,000,000)",
            settings.backlog
        )
    };

    let rss_met = peak_mib.is_some_and(|mib| mib < RSS_LIMIT_MIB);
    let mut enqueue = Row::measured(enqueue_name, enqueue_description(settings, store))
        .latency(enqueued["p50_ms"].as_f64(), enqueued["p99_ms"].as_f64())
        .target(Target::checked(
            format!("peak RSS < {RSS_LIMIT_MIB:.0} MiB"),
            rss_met,
        ))
        .note(format!("sender peak RSS {} MiB", mib(peak)))
        .extra("count", settings.backlog)
        .extra("publishers", settings.backlog_publishers)
        .extra("enqueue_secs", enqueued["secs"].clone())
        .extra("publish_errors", publish_errors)
        .extra("peak_rss_mib", peak_mib)
        .extra(
            "peak_rss_mib_after_enqueue",
            peak_after_enqueue.map(|kib| kib as f64 / KIB_PER_MIB),
        )
        .extra(
            "rss_mib_after_enqueue",
            enqueued["rss_kib"].as_f64().map(|kib| kib / KIB_PER_MIB),
        )
        .extra(
            "store_file_mib",
            enqueued["store_file_bytes"]
                .as_f64()
                .map(|b| b / KIB_PER_MIB / KIB_PER_MIB),
        );
    if let Some(rate) = enqueued["rate"].as_f64() {
        enqueue = enqueue.ops(rate);
    }
    if publish_errors > 0 {
        enqueue = enqueue.note(format!("{publish_errors} publishes failed"));
    }
    if !scaled.is_empty() {
        enqueue = enqueue.note(scaled.clone());
    }

    let clean = drained && missing == 0 && failed == Some(0) && publish_errors == 0;
    #[allow(clippy::cast_precision_loss)]
    let drain_rate = (drain_secs > 0.0).then(|| tracker.unique() as f64 / drain_secs);
    let mut drain = Row::measured(drain_name, drain_description(settings))
        .target(Target::checked("drains without errors", clean))
        .note(format!("drain {drain_secs:.1} s"))
        .extra("drain_secs", drain_secs)
        .extra("delivered", tracker.unique())
        .extra("missing", missing)
        .extra("duplicates", tracker.duplicates())
        .extra("failed_outcomes", failed)
        .extra("outcomes_lagged", lagged)
        .extra("peak_rss_mib", peak_mib)
        .extra("sender_cpu_cores", child_cores);
    if let Some(cores) = child_cores {
        drain = drain.note(format!("sender process CPU busy {cores:.2} cores"));
    }
    if let Some(rate) = drain_rate {
        drain = drain.ops(rate);
    }
    if missing > 0 {
        drain = drain.note(format!(
            "{missing} not delivered within {:?}",
            settings.drain_timeout
        ));
    }
    match failed {
        Some(0) => {}
        Some(n) => drain = drain.note(format!("{n} deliveries failed")),
        None => drain = drain.note("failed-outcome count unknown (the sender did not report)"),
    }
    if lagged > 0 {
        drain = drain.note(format!(
            "outcome stream lagged by {lagged}: failed count is a lower bound"
        ));
    }
    if tracker.duplicates() > 0 {
        drain = drain.note(format!(
            "{} redelivered (at-least-once)",
            tracker.duplicates()
        ));
    }
    if !scaled.is_empty() {
        drain = drain.note(scaled);
    }
    Ok(vec![enqueue, drain])
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |kib| format!("{:.0}", kib as f64 / KIB_PER_MIB),
    )
}

/// The child process: queue `count` deliveries for the dead endpoint, report, then let
/// the engine drain until stdin closes; shut down and report the final counts.
///
/// # Errors
/// When the store or the sender cannot be set up.
#[allow(clippy::too_many_lines)]
pub async fn child(args: ChildArgs) -> Result<(), BoxError> {
    let path = args.dir.join("backlog.redb");
    let builder = match &args.postgres {
        None => Sender::builder().store(RedbStore::open(&path)?),
        Some(url) => Sender::builder()
            .store(PostgresStore::connect(&PostgresConfig::new(url).schema("backlog")).await?),
    };
    let sender = builder
        .allow_private_networks(AllowList::loopback())
        .workers(args.workers)
        .breaker(BreakerConfig {
            threshold: 5,
            cooldown: Duration::from_secs(1),
        })
        .outcome_capacity(16_384)
        .build()
        .await?;
    sender
        .organizations()
        .set_secret(ORGANIZATION, HmacSecret::from_utf8(SECRET)?)
        .await?;
    let url = format!("http://127.0.0.1:{}/webhook", args.port);
    sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, url, [payload::EVENT_TYPE])
                .max_concurrency(u32::try_from(args.concurrency).unwrap_or(u32::MAX))
                .timeout(Duration::from_secs(5))
                .retry(RetryPolicy::Exponential {
                    base: Duration::from_millis(100),
                    max_delay: Duration::from_secs(1),
                    max_attempts: 100_000,
                }),
        )
        .await?;

    // Outcomes, counted as they come.
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let lagged = Arc::new(AtomicU64::new(0));
    let counter = {
        let mut outcomes = sender.outcomes();
        let (delivered, failed, lagged) = (
            Arc::clone(&delivered),
            Arc::clone(&failed),
            Arc::clone(&lagged),
        );
        tokio::spawn(async move {
            loop {
                match outcomes.recv().await {
                    Ok(outcome) if outcome.status == OutcomeStatus::Delivered => {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    };

    // Enqueue.
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Histogram::new());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let count = args.count as u64;
    for _ in 0..args.publishers {
        let (sender, next, errors, histogram) = (
            sender.clone(),
            Arc::clone(&next),
            Arc::clone(&errors),
            Arc::clone(&histogram),
        );
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= count {
                    break;
                }
                let publish = Publish::event(
                    ORGANIZATION,
                    payload::EVENT_TYPE,
                    payload::entity(seq),
                    payload::transaction(seq),
                );
                let at = Instant::now();
                let result = sender.publish(publish).await;
                histogram.record(at.elapsed());
                if result.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let mut interval = tokio::time::interval(Duration::from_secs(2));
    interval.tick().await;
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = interval.tick() => emit(&json!({
                "event": "progress",
                "secs": started.elapsed().as_secs_f64(),
                "enqueued": histogram.count(),
            })),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = histogram.count() as f64 / secs;
    emit(&json!({
        "event": "enqueued",
        "count": histogram.count(),
        "errors": errors.load(Ordering::Relaxed),
        "secs": secs,
        "rate": rate,
        "p50_ms": histogram.percentile_ms(50.0),
        "p99_ms": histogram.percentile_ms(99.0),
        "rss_kib": system::rss_kib(None),
        "store_file_bytes": std::fs::metadata(&path).map(|m| m.len()).ok(),
    }));

    // Drain until told to stop (stdin closes), reporting outcome counts.
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(_)) => {}
                _ => break,
            },
            _ = interval.tick() => emit(&json!({
                "event": "outcomes",
                "delivered": delivered.load(Ordering::Relaxed),
                "failed": failed.load(Ordering::Relaxed),
                "lagged": lagged.load(Ordering::Relaxed),
            })),
        }
    }
    let shutdown = sender.shutdown().await;
    counter.abort();
    emit(&json!({
        "event": "done",
        "delivered": delivered.load(Ordering::Relaxed),
        "failed": failed.load(Ordering::Relaxed),
        "lagged": lagged.load(Ordering::Relaxed),
        "hwm_kib": system::peak_rss_kib(None),
        "shutdown_error": shutdown.err().map(|e| e.to_string()),
    }));
    Ok(())
}

/// One JSON line to the parent.
fn emit(value: &Value) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
    let _ = stdout.flush();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::ChildArgs;

    /// What the load binary's `backlog-sender` subcommand parses.
    #[derive(Debug, Parser)]
    struct Child {
        #[command(flatten)]
        args: ChildArgs,
    }

    #[test]
    fn the_child_parses_back_the_flags_it_is_started_with() {
        for postgres in [None, Some("postgres://u@127.0.0.1:5/db".to_owned())] {
            let args = ChildArgs {
                port: 40_123,
                count: 2_000,
                dir: "/tmp/webhook-bench-backlog-x".into(),
                publishers: 32,
                concurrency: 16,
                workers: 64,
                postgres,
            };
            let command_line = std::iter::once("backlog-sender".to_owned()).chain(args.to_args());
            assert_eq!(Child::try_parse_from(command_line).unwrap().args, args);
        }
    }
}
