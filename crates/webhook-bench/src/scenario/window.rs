//! The warm-up and measured window the closed-loop scenarios share ([`Window`]), and a
//! run of one side with its progress lines ([`Run`]): `start` begins the warm-up,
//! `finish` sleeps through the window and waits for the load tasks, `stop` ends the
//! progress lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinHandle, JoinSet};

use super::{Measurement, Phase, Settings, progress};
use crate::http::Tracker;
use crate::system;

/// The warm-up and measured window of a run, on its tracker's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// When the warm-up ends and the measured window begins.
    pub(crate) from_ns: u64,
    /// When the measured window ends.
    pub(crate) end_ns: u64,
    length: Duration,
}

impl Window {
    pub(crate) fn starting_now(tracker: &Tracker, settings: &Settings) -> Self {
        let now = tracker.now_ns();
        let from_ns = now + nanos(settings.warmup);
        Self {
            from_ns,
            end_ns: from_ns + nanos(settings.measure),
            length: settings.measure,
        }
    }

    /// What `tracker` received inside the window, as a measurement.
    pub(crate) fn measure(
        &self,
        tracker: &Tracker,
        errors: u64,
        cpu_cores: Option<f64>,
    ) -> Measurement {
        let (count, histogram) = tracker.received_between(self.from_ns, self.end_ns);
        Measurement {
            ops_per_sec: self.rate(count),
            p50_ms: histogram.percentile_ms(50.0),
            p99_ms: histogram.percentile_ms(99.0),
            errors,
            count,
            cpu_cores,
            commits_per_delivery: None,
        }
    }

    /// Whether the tracker reading `ns` falls inside the measured window.
    pub(crate) fn contains(&self, ns: u64) -> bool {
        (self.from_ns..self.end_ns).contains(&ns)
    }

    /// Per second of the window, `count` is this rate.
    pub(crate) fn rate(&self, count: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let count = count as f64;
        count / self.length.as_secs_f64()
    }
}

/// One run's window and its progress lines on stderr, shared by the baseline and the
/// sender: [`Run::start`] begins the warm-up, [`Run::finish`] waits through the window
/// and for the load tasks, [`Run::stop`] ends the progress lines.
#[derive(Debug)]
pub(crate) struct Run {
    /// The run's window.
    pub(crate) window: Window,
    phase: Arc<Phase>,
    ticker: JoinHandle<()>,
}

impl Run {
    /// Starts the warm-up now and the progress lines of `label`.
    pub(crate) fn start(label: &str, tracker: &Arc<Tracker>, settings: &Settings) -> Self {
        let phase = Arc::new(Phase::default());
        phase.set("warm-up");
        let window = Window::starting_now(tracker, settings);
        eprintln!(
            "[{label}] warm-up {:?}, then measuring {:?}",
            settings.warmup, settings.measure
        );
        let ticker = progress(label.to_owned(), Arc::clone(tracker), Arc::clone(&phase));
        Self {
            window,
            phase,
            ticker,
        }
    }

    /// Sleeps through warm-up and the window, updating the progress phase (`after` once the
    /// window is over), then waits up to `limit` for `tasks`; returns the CPU cores the
    /// process kept busy during the window and whether the tasks finished in time.
    pub(crate) async fn finish(
        &self,
        tracker: &Tracker,
        tasks: &mut JoinSet<()>,
        after: &'static str,
        limit: Duration,
    ) -> (Option<f64>, bool) {
        let until = |ns: u64| Duration::from_nanos(ns.saturating_sub(tracker.now_ns()));
        tokio::time::sleep(until(self.window.from_ns)).await;
        self.phase.set("measuring");
        let (cpu_from, wall_from) = (system::cpu_time(None), Instant::now());
        tokio::time::sleep(until(self.window.end_ns)).await;
        let (cpu_to, wall) = (system::cpu_time(None), wall_from.elapsed());
        self.phase.set(after);
        let cores = cpu_to
            .zip(cpu_from)
            .map(|(to, from)| (to - from).as_secs_f64() / wall.as_secs_f64());
        let joined =
            tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
        (cores, joined.is_ok())
    }

    /// Ends the progress lines.
    pub(crate) fn stop(self) {
        self.ticker.abort();
    }
}

/// How long the queue may take to drain after a window.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Waits up to 60 s for `tracker` to have `expected` distinct receipts, after a window;
/// the error says how many of the `what` (e.g. "published events") arrived.
pub(crate) async fn drain(tracker: &Tracker, expected: u64, what: &str) -> Result<(), String> {
    if tracker.wait_for(expected, DRAIN_LIMIT).await {
        return Ok(());
    }
    Err(format!(
        "only {} of {expected} {what} arrived within {} s of the window's end",
        tracker.unique(),
        DRAIN_LIMIT.as_secs()
    ))
}

/// Embedded-store commits per delivery, when the store counts its commits.
pub(crate) fn per_delivery(commits: Option<u64>, deliveries: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    commits.map(|commits| commits as f64 / deliveries.max(1) as f64)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
