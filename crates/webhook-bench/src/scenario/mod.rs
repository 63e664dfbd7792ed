//! The load benchmark's scenarios, each measured next to its baseline in the same run.
//!
//! | scenario | module | measures | baseline |
//! |---|---|---|---|
//! | `e2e-memory`, `e2e-redb`, `e2e-redis`, `e2e-redis-aof`, `e2e-postgres` | [`e2e`] | deliveries/s from `publish` to the receiver's 2xx | a plain hyper client posting the same bodies to the same server at the same concurrency |
//! | `txn-postgres` | [`outbox`] | what `publish_in` adds to the caller's Postgres transaction, per transaction, one client | what one more single-row `INSERT` adds to the same transaction (goal: publish ≤ 2×) |
//! | `serve-redb` | [`serve`] | messages/s published over the HTTP API (`POST …/messages`, 32 keep-alive connections) and delivered to the receiver's 2xx; 202 latency | the same plain hyper client as e2e, posting the same bodies to the same server at 32 connections |
//! | `receiver` | [`receiver`] | requests/s through `WebhookLayer` (verify + dedup); also with handlers reading `data` as `Value` and decoding it typed | the bare hyper handler, same load generator and requests |
//! | `receiver-dedup` | [`receiver::run_sustained`] | distinct deliveries at 1,000/s (simulated clock) through the default memory dedup store, far past its capacity: `dedup_full` answers, RSS | none (absolute goals: 0 `dedup_full`, RSS growth ≤ 256 MiB) |
//! | `backlog-enqueue`, `backlog-drain` | [`backlog`] | 1,000,000 deliveries for a dead endpoint: enqueue rate, peak RSS, drain time | none (absolute goals) |
//!
//! ```
//! use webhook_bench::scenario::{Mode, Settings};
//!
//! let quick = Settings::new(Mode::Quick);
//! assert_eq!(quick.backlog, 50_000);
//! assert_eq!(quick.api_connections, 32);
//! assert_eq!(Settings::new(Mode::Full).backlog, 1_000_000);
//! ```

pub mod backlog;
pub mod e2e;
pub mod history;
pub mod outbox;
pub mod receiver;
pub mod serve;
mod window;

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::http::Tracker;
use crate::report::Row;

/// How much work a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// CI smoke: every scenario, scaled down, well under 2 minutes on 2 cores.
    Quick,
    /// The numbers for `BENCHMARKS.md`: longer windows, 1,000,000 queued deliveries.
    Full,
    /// A few seconds in all, for the crate's own tests.
    Smoke,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::Smoke => "smoke",
        })
    }
}

/// Every knob of a run. [`Settings::new`] gives each mode's values.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The mode these values came from.
    pub mode: Mode,
    /// HTTP concurrency: the endpoint's `max_concurrency` and the baseline's client tasks.
    pub concurrency: usize,
    /// The sender's worker slots.
    pub workers: usize,
    /// End-to-end: events published but not yet received, at most (the publishers wait
    /// for a receipt before publishing more).
    pub window: usize,
    /// End-to-end: concurrent publisher tasks.
    pub publishers: usize,
    /// HTTP service: keep-alive client connections posting messages to the API (and the
    /// baseline's client tasks in that scenario). Default 32.
    pub api_connections: usize,
    /// End-to-end: time before the measured window.
    pub warmup: Duration,
    /// End-to-end: the measured window.
    pub measure: Duration,
    /// Measurements per side; the best one counts (noise only ever slows a run down).
    pub rounds: usize,
    /// Receiver: unmeasured requests first.
    pub receiver_warmup: usize,
    /// Receiver: measured requests.
    pub receiver_requests: usize,
    /// Backlog: deliveries queued for the dead endpoint.
    pub backlog: usize,
    /// Backlog: concurrent publisher tasks.
    pub backlog_publishers: usize,
    /// Backlog: how long the drain may take before the scenario gives up.
    pub drain_timeout: Duration,
    /// The executable that runs the backlog's sender process (`load backlog-sender`).
    pub exe: Option<PathBuf>,
    /// Where temporary store files go (the workspace's `target/bench`).
    pub scratch: PathBuf,
}

impl Settings {
    /// The values of `mode`.
    #[must_use]
    pub fn new(mode: Mode) -> Self {
        let base = Self {
            mode,
            concurrency: 16,
            workers: 64,
            window: 64,
            publishers: 64,
            api_connections: 32,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            rounds: 1,
            receiver_warmup: 2_000,
            receiver_requests: 30_000,
            backlog: 50_000,
            backlog_publishers: 256,
            drain_timeout: Duration::from_secs(60),
            exe: None,
            scratch: std::env::temp_dir(),
        };
        match mode {
            Mode::Quick => base,
            Mode::Full => Self {
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(10),
                rounds: 2,
                receiver_warmup: 5_000,
                receiver_requests: 150_000,
                backlog: 1_000_000,
                drain_timeout: Duration::from_secs(1800),
                ..base
            },
            Mode::Smoke => Self {
                warmup: Duration::from_millis(200),
                measure: Duration::from_millis(500),
                receiver_warmup: 100,
                receiver_requests: 1_000,
                backlog: 2_000,
                backlog_publishers: 32,
                drain_timeout: Duration::from_secs(30),
                ..base
            },
        }
    }

    /// How many sequence numbers an end-to-end run may use: far more than 2 cores deliver.
    #[must_use]
    pub fn e2e_capacity(&self) -> usize {
        let secs = (self.warmup + self.measure).as_secs_f64();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let capacity = (secs * 100_000.0) as usize;
        capacity.max(10_000)
    }
}

/// A boxed error for scenario plumbing.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Prints `[label] …` progress lines to stderr every second until aborted.
pub(crate) fn progress(label: String, tracker: Arc<Tracker>, phase: Arc<Phase>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = tracker.unique();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = tracker.unique();
            eprintln!(
                "[{label}] {:>5.1} s {}: {now} received ({}/s)",
                started.elapsed().as_secs_f64(),
                phase.get(),
                now - last,
            );
            last = now;
        }
    })
}

/// The phase a progress line names (warm-up, measuring, draining).
#[derive(Debug, Default)]
pub(crate) struct Phase(std::sync::Mutex<&'static str>);

impl Phase {
    pub(crate) fn set(&self, phase: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = phase;
    }

    fn get(&self) -> &'static str {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Operations per second in the measured window.
    pub ops_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Operations that failed (errors, non-2xx answers).
    pub errors: u64,
    /// Operations counted in the window.
    pub count: u64,
    /// CPU cores this process kept busy during the window (CPU time ÷ wall time): close to
    /// the machine's CPU count means CPU-bound, well below means waiting (fsync, wake-ups).
    pub cpu_cores: Option<f64>,
    /// Embedded store only: write transactions (each one fsync) committed per delivery
    /// over the whole run, warm-up and drain included.
    pub commits_per_delivery: Option<f64>,
}

/// The best of several measurements (highest rate).
#[must_use]
pub fn best(measurements: &[Measurement]) -> Option<Measurement> {
    measurements
        .iter()
        .copied()
        .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))
}

/// Measures the baseline, then ours, `rounds` times, alternating; returns the best of each
/// side as `(baseline, ours)`.
///
/// `baseline(round)` and `ours(round)` measure one round (numbered from 1); a side may
/// return more than a [`Measurement`] (anything that borrows as one), and the best is its
/// whole result. When one fails, the error is the failed row's reason,
/// `"{side}: {error}"` with that side's name.
pub(crate) async fn best_of_rounds<TB, TO, B, O>(
    rounds: usize,
    baseline_side: &str,
    mut baseline: impl FnMut(usize) -> B,
    our_side: &str,
    mut ours: impl FnMut(usize) -> O,
) -> Result<(TB, TO), String>
where
    TB: Borrow<Measurement>,
    TO: Borrow<Measurement>,
    B: Future<Output = Result<TB, BoxError>>,
    O: Future<Output = Result<TO, BoxError>>,
{
    let mut baselines = Vec::new();
    let mut measured = Vec::new();
    for round in 1..=rounds {
        baselines.push(
            baseline(round)
                .await
                .map_err(|e| format!("{baseline_side}: {e}"))?,
        );
        measured.push(ours(round).await.map_err(|e| format!("{our_side}: {e}"))?);
    }
    fastest(baselines)
        .zip(fastest(measured))
        .ok_or_else(|| "no measurement".to_owned())
}

/// The result with the highest rate, as [`best`] for results that carry more.
fn fastest<T: Borrow<Measurement>>(results: Vec<T>) -> Option<T> {
    results
        .into_iter()
        .max_by(|a, b| a.borrow().ops_per_sec.total_cmp(&b.borrow().ops_per_sec))
}

/// A CPU-cores figure for a note: two decimals, `?` when unknown.
pub(crate) fn cores(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"))
}

/// Failed operations of a run, counted by every load task, and the first one's reason
/// (printed once at the end rather than once per failure).
#[derive(Debug, Default)]
pub(crate) struct Failures {
    count: AtomicU64,
    first: std::sync::Mutex<Option<String>>,
}

impl Failures {
    /// Counts one failure; keeps its reason if it is the first.
    pub(crate) fn record(&self, reason: impl fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| reason.to_string());
    }

    /// How many failed so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Prints `[label] N {what} failed; the first: …` on stderr when any failed.
    pub(crate) fn report(&self, label: &str, what: &str) {
        if let Some(first) = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            eprintln!(
                "[{label}] {} {what} failed; the first: {first}",
                self.count()
            );
        }
    }
}

/// Adds what every side-by-side row of a closed-loop scenario reports about both sides: to
/// the JSON the baseline's latency, the window, the rounds, CPU busy, redb commits per
/// delivery and the errors of both sides; to the notes "CPU busy {ours} vs {baseline}
/// cores".
pub(crate) fn both_sides(
    row: Row,
    settings: &Settings,
    ours: &Measurement,
    base: &Measurement,
) -> Row {
    row.extra("baseline_p50_ms", base.p50_ms)
        .extra("baseline_p99_ms", base.p99_ms)
        .extra("measured_secs", settings.measure.as_secs_f64())
        .extra("rounds", settings.rounds)
        .extra("cpu_cores", ours.cpu_cores)
        .extra("commits_per_delivery", ours.commits_per_delivery)
        .extra("baseline_cpu_cores", base.cpu_cores)
        .extra("errors", ours.errors)
        .extra("baseline_errors", base.errors)
        .note(format!(
            "CPU busy {} vs {} cores",
            cores(ours.cpu_cores),
            cores(base.cpu_cores)
        ))
}

/// Adds the notes a comparison's row ends with: "best of N rounds" when there were several,
/// and the errors of both sides when there were any, as
/// `"{ours.errors} {our_errors}, {base.errors} {baseline_errors}"`.
pub(crate) fn closing_notes(
    mut row: Row,
    rounds: usize,
    (ours, our_errors): (&Measurement, &str),
    (base, baseline_errors): (&Measurement, &str),
) -> Row {
    if rounds > 1 {
        row = row.note(format!("best of {rounds} rounds"));
    }
    if ours.errors + base.errors > 0 {
        row = row.note(format!(
            "{} {our_errors}, {} {baseline_errors}",
            ours.errors, base.errors
        ));
    }
    row
}
