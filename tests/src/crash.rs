//! The protocol between the crash tests and their child program, `crash_sender` (see its
//! documentation in `src/bin/crash_sender.rs`): the settings both sides share, starting a
//! child and waiting for its `ready`, reading its `acked` lines, killing it and stopping it
//! gracefully.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::path::Path;
//! use std::time::Duration;
//! use webhook_e2e::crash::{self, Backend, CrashSender};
//!
//! let dir = Path::new("/tmp/crash-demo");
//! let launcher = CrashSender {
//!     program: "target/debug/crash_sender", // env!("CARGO_BIN_EXE_crash_sender") in a test
//!     dir,
//!     url: "http://127.0.0.1:8080/webhook",
//!     secret: "org-secret",
//!     limit: Duration::from_secs(60),
//! };
//! let store = dir.join("webhooks.redb");
//! let mut child = launcher.start(&Backend::Redb(&store), "run-1", &[0, 1, 2], true);
//! let mut acked = HashMap::new();
//! crash::kill(&mut child, &mut acked); // every `acked` line printed before the SIGKILL
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use webhook_sender::DeliveryId;

use crate::process::ChildProcess;
use crate::receiver::Tally;

/// Attempts in flight at once in a child (its sender's workers, and its endpoint's
/// concurrency): `crash_sender`'s default for `--workers`.
pub const WORKERS: usize = 64;
/// Concurrent `publish` calls in a child: `crash_sender`'s default for `--publishers`.
pub const PUBLISHERS: usize = 16;
/// How long a child's sender leases a delivery: `crash_sender`'s default for `--lease-ms`.
pub const LEASE: Duration = Duration::from_secs(3);

/// Publishes acknowledged by the children so far: event index → delivery.
pub type Acked = HashMap<u64, DeliveryId>;

/// The runtime of a crash test (the children have their own).
///
/// # Panics
/// When the runtime cannot be built.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The store a child runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'a> {
    /// An embedded redb file (`--store`).
    Redb(&'a Path),
    /// A Redis store shared with other children (`--redis`, `--prefix`, `--consumer`).
    Redis {
        /// `redis://…`
        url: &'a str,
        /// The key prefix, the same for every child sharing the store.
        prefix: &'a str,
        /// This child's consumer name.
        consumer: &'a str,
    },
    /// A Postgres store shared with other children (`--postgres`, `--schema`).
    Postgres {
        /// `postgres://…`
        url: &'a str,
        /// The schema, the same for every child sharing the store.
        schema: &'a str,
    },
}

/// What every child of one test shares.
#[derive(Debug)]
pub struct CrashSender<'a> {
    /// The `crash_sender` program: `env!("CARGO_BIN_EXE_crash_sender")`.
    pub program: &'a str,
    /// Where the lists of indices to publish are written.
    pub dir: &'a Path,
    /// The receiver's URL.
    pub url: &'a str,
    /// The organization's secret.
    pub secret: &'a str,
    /// How long a child may take to say `ready`.
    pub limit: Duration,
}

impl CrashSender<'_> {
    /// Starts a child on `backend` publishing `indices` ([`WORKERS`], [`PUBLISHERS`] and
    /// [`LEASE`] passed on explicitly), storing the secret and creating the endpoint first
    /// when `setup` is true; returns once it said `ready`. `name` names it in failures.
    ///
    /// # Panics
    /// When the list cannot be written, or the child does not say `ready` in time.
    #[must_use]
    pub fn start(
        &self,
        backend: &Backend<'_>,
        name: &str,
        indices: &[u64],
        setup: bool,
    ) -> ChildProcess {
        static LISTS: AtomicUsize = AtomicUsize::new(0);
        let list = self.dir.join(format!(
            "indices-{name}-{}.txt",
            LISTS.fetch_add(1, Ordering::Relaxed)
        ));
        let text: String = indices.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(&list, text).expect("write the list of indices");
        let mut command = Command::new(self.program);
        match backend {
            Backend::Redb(path) => {
                command.arg("--store").arg(path);
            }
            Backend::Redis {
                url,
                prefix,
                consumer,
            } => {
                command.args(["--redis", url, "--prefix", prefix, "--consumer", consumer]);
            }
            Backend::Postgres { url, schema } => {
                command.args(["--postgres", url, "--schema", schema]);
            }
        }
        command
            .args(["--url", self.url, "--secret", self.secret, "--indices"])
            .arg(&list)
            .args(["--workers", &WORKERS.to_string()])
            .args(["--publishers", &PUBLISHERS.to_string()])
            .args(["--lease-ms", &LEASE.as_millis().to_string()]);
        if setup {
            command.arg("--setup");
        }
        let child = ChildProcess::spawn(command);
        assert_eq!(
            child.next_line(self.limit).as_deref(),
            Some("ready"),
            "{name} did not start"
        );
        child
    }
}

/// Records a child's line: an `acked <index> <delivery>` in `acked`; true for `stopped`.
///
/// # Panics
/// On a line the protocol does not have.
pub fn record(line: &str, acked: &mut Acked) -> bool {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("acked"), Some(index), Some(delivery)) => {
            let index = index.parse().expect("an event index");
            let delivery = delivery.parse().expect("a delivery id");
            acked.insert(index, delivery);
            false
        }
        (Some("published"), None, None) => false,
        (Some("stopped"), None, None) => true,
        _ => panic!("unexpected line from crash_sender: {line:?}"),
    }
}

/// Records every line the child printed so far, without waiting; true when one was
/// `stopped`.
pub fn drain(child: &ChildProcess, acked: &mut Acked) -> bool {
    let mut stopped = false;
    for line in child.drain_lines() {
        stopped |= record(&line, acked);
    }
    stopped
}

/// Records the children's lines until every one of `events` events was handled by the
/// receiver and acknowledged to a publisher, polling every 20 ms.
///
/// # Panics
/// When that has not happened within `limit`.
pub fn wait_all_handled(
    children: &[&ChildProcess],
    acked: &mut Acked,
    tally: &Tally,
    events: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        for child in children {
            drain(child, acked);
        }
        if tally.distinct() == events && acked.len() == events {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {} of {events} events handled, {} acknowledged",
            tally.distinct(),
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs the child and records every line it printed before dying.
pub fn kill(child: &mut ChildProcess, acked: &mut Acked) {
    child.kill();
    // The pipe is closed now: read what is left until end of file.
    while let Some(line) = child.next_line(Duration::from_secs(5)) {
        record(&line, acked);
    }
}

/// Stops the child gracefully (closes its stdin), records its lines until `stopped` and
/// checks that it exits cleanly; each of the two waits is bounded by `limit`.
///
/// # Panics
/// When it does not stop in time or exits with an error.
pub fn stop(child: &mut ChildProcess, acked: &mut Acked, limit: Duration) {
    child.close_stdin();
    let deadline = Instant::now() + limit;
    while !drain(child, acked) {
        assert!(Instant::now() < deadline, "no graceful stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait(limit);
    assert!(status.success(), "crash_sender exited with {status}");
}

/// What [`two_nodes_one_killed`] saw.
#[derive(Debug)]
pub struct TwoNodeRun {
    /// Every acknowledged publish.
    pub acked: Acked,
    /// Publishes acknowledged and events handled when node A was killed, and when.
    pub at_kill: (usize, usize, Duration),
    /// How long the whole run took.
    pub elapsed: Duration,
}

/// The two-node crash scenario on a store that several nodes share: node A (which
/// configures the endpoint) and node B publish half of `events` each; once a third has
/// been handled, A is killed with SIGKILL and restarted under the same name, publishing
/// what it had not acknowledged; both are stopped gracefully once every event was handled
/// and acknowledged. `node(name)` is the backend of the node called `name`.
///
/// # Panics
/// When a phase does not finish within the launcher's `limit`.
pub fn two_nodes_one_killed<'b>(
    launcher: &CrashSender<'_>,
    node: &dyn Fn(&'static str) -> Backend<'b>,
    tally: &Tally,
    events: usize,
) -> TwoNodeRun {
    let started = Instant::now();
    let half = (events / 2) as u64;
    let a_indices: Vec<u64> = (0..half).collect();
    let b_indices: Vec<u64> = (half..events as u64).collect();
    let mut acked = Acked::new();

    // Node A configures the endpoint; node B starts after it, so it loads the endpoint.
    let mut a = launcher.start(&node("node-a"), "node-a", &a_indices, true);
    let mut b = launcher.start(&node("node-b"), "node-b", &b_indices, false);
    let deadline = Instant::now() + launcher.limit;
    while tally.distinct() < events / 3 {
        assert!(
            Instant::now() < deadline,
            "nodes stalled at {}",
            tally.distinct()
        );
        drain(&a, &mut acked);
        drain(&b, &mut acked);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Lines printed before the kill are still in the pipe: recorded too.
    kill(&mut a, &mut acked);
    let at_kill = (acked.len(), tally.distinct(), started.elapsed());

    // Node A comes back under the same name and publishes what it had not acknowledged.
    let missing: Vec<u64> = a_indices
        .iter()
        .copied()
        .filter(|i| !acked.contains_key(i))
        .collect();
    let mut a = launcher.start(&node("node-a"), "node-a (restarted)", &missing, false);
    wait_all_handled(&[&a, &b], &mut acked, tally, events, launcher.limit);
    stop(&mut a, &mut acked, launcher.limit);
    stop(&mut b, &mut acked, launcher.limit);
    TwoNodeRun {
        acked,
        at_kill,
        elapsed: started.elapsed(),
    }
}

/// Checks a finished [`two_nodes_one_killed`] run against the store the nodes shared:
/// every acknowledged delivery is delivered, nothing is open, every event was handled
/// exactly once, and every redelivery is explained (a duplicate dropped by the receiver's
/// dedup, a rejected or cancelled request) and bounded by what was in flight at the kill
/// plus the failed attempts. Prints a summary headed `name`.
///
/// # Panics
/// When one of those does not hold.
pub async fn check_two_node_run(
    name: &str,
    store: &dyn webhook_sender::store::Store,
    run: &TwoNodeRun,
    tally: &Tally,
    events: usize,
) {
    let claim = store
        .claim(webhook_sender::store::ClaimRequest::new(0, 0, LEASE))
        .await
        .expect("claim nothing");
    let mut failed_attempts = 0;
    for (index, id) in &run.acked {
        let delivery = store
            .delivery(*id)
            .await
            .expect("read a delivery")
            .expect("an acknowledged delivery exists");
        assert_eq!(
            delivery.status,
            webhook_sender::DeliveryStatus::Delivered,
            "event {index}"
        );
        failed_attempts += delivery
            .attempts
            .iter()
            .filter(|a| a.status() != Some(200))
            .count();
    }
    let deliveries = tally.requests();
    let redeliveries = deliveries - events;
    let cancelled = tally.handler_starts() - tally.handler_calls();
    println!(
        "{name}: {events} events over 2 nodes, node A SIGKILLed at {:?} \
         ({} acknowledged, {} handled) and restarted; {:?} in all\n\
         receiver: {deliveries} deliveries, {} handler calls ({cancelled} cancelled), \
         {} duplicates, {} rejected; redeliveries: {redeliveries}; store: {} open",
        run.at_kill.2,
        run.at_kill.0,
        run.at_kill.1,
        run.elapsed,
        tally.handler_calls(),
        tally.duplicates(),
        tally.rejected(),
        claim.open,
    );
    assert_eq!(tally.distinct(), events);
    assert_eq!(tally.max_calls_per_label(), 1, "an event was handled twice");
    assert_eq!(claim.open, 0);
    assert!(redeliveries <= WORKERS + PUBLISHERS + failed_attempts);
    assert_eq!(
        tally.duplicates() + tally.rejected() + cancelled,
        redeliveries
    );
}
