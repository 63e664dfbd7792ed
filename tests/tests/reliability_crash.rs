//! Crash safety of the embedded store: a real sender process (`crash_sender`) is killed
//! with SIGKILL twice in the middle of 10,000 deliveries and restarted on the same redb
//! file. Every event reaches the receiver at least once, the receiver's dedup makes it
//! exactly once at the handler, and the redeliveries a crash causes are counted, bounded
//! and reported.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use webhook_e2e::crash::{self, Acked, Backend, CrashSender, LEASE, PUBLISHERS, WORKERS};
use webhook_e2e::process::ChildProcess;
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::store::{ClaimRequest, HistoryStore as _, QueueStore as _, RedbStore};
use webhook_sender::{DeliveryId, DeliveryStatus};

const EVENTS: usize = 10_000;
const SECRET: &str = "crash-test-organization-secret";
/// Every wait of this test is bounded by this.
const PHASE_LIMIT: Duration = Duration::from_secs(90);

/// Reads the child's output until `done` holds, for at most [`PHASE_LIMIT`].
fn run_until(
    child: &ChildProcess,
    acked: &mut Acked,
    what: &str,
    mut done: impl FnMut(&Acked) -> bool,
) {
    let deadline = Instant::now() + PHASE_LIMIT;
    while !done(acked) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        if let Some(line) = child.next_line(Duration::from_millis(20)) {
            crash::record(&line, acked);
        }
    }
}

fn unacknowledged(acked: &Acked) -> Vec<u64> {
    (0..EVENTS as u64)
        .filter(|i| !acked.contains_key(i))
        .collect()
}

#[test]
fn a_sender_killed_twice_mid_stream_loses_nothing_and_dedup_makes_it_exactly_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let rt = crash::runtime();
    let receiver = rt.block_on(CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        event_entity,
    ));
    let url = receiver.url();
    let tally = receiver.tally();
    let mut acked = Acked::new();
    let launcher = CrashSender {
        program: env!("CARGO_BIN_EXE_crash_sender"),
        dir: dir.path(),
        url: &url,
        secret: SECRET,
        limit: PHASE_LIMIT,
    };
    let redb_file = dir.path().join("webhooks.redb");
    let redb = Backend::Redb(&redb_file);

    // Run 1 sets up the endpoint and starts publishing; it is killed while publishing.
    let all: Vec<u64> = (0..EVENTS as u64).collect();
    let mut first = launcher.start(&redb, "run 1", &all, true);
    run_until(
        &first,
        &mut acked,
        "2,500 acknowledged publishes",
        |acked| acked.len() >= 2_500,
    );
    crash::kill(&mut first, &mut acked);
    let kill_1 = (acked.len(), tally.distinct(), started.elapsed());

    // Run 2 publishes what was not acknowledged (the caller's duty: at-least-once
    // publishing). The receiver is slowed down meanwhile, so a backlog builds up and every
    // worker has a request inside the handler when the process is killed, after publishing.
    tally.set_handler_delay(Duration::from_millis(100));
    let mut second = launcher.start(&redb, "run 2", &unacknowledged(&acked), false);
    let mut published = false;
    let deadline = Instant::now() + PHASE_LIMIT;
    while !published || tally.handler_starts() < tally.handler_calls() + WORKERS / 2 {
        assert!(Instant::now() < deadline, "run 2 did not finish publishing");
        if let Some(line) = second.next_line(Duration::from_millis(20)) {
            published |= line == "published";
            crash::record(&line, &mut acked);
        }
    }
    crash::kill(&mut second, &mut acked);
    let kill_2 = (acked.len(), tally.distinct(), started.elapsed());
    assert!(
        tally.distinct() < EVENTS,
        "run 2 was meant to die with a backlog"
    );
    tally.set_handler_delay(Duration::ZERO);

    // Run 3 publishes anything still unacknowledged, delivers the rest and stops gracefully.
    let mut third = launcher.start(&redb, "run 3", &unacknowledged(&acked), false);
    crash::wait_all_handled(&[&third], &mut acked, tally, EVENTS, PHASE_LIMIT);
    crash::stop(&mut third, &mut acked, PHASE_LIMIT);
    let elapsed = started.elapsed();

    // The store agrees: nothing is open, every acknowledged delivery was delivered.
    let store = RedbStore::open(&redb_file).unwrap();
    let (open, attempts, failed_attempts) = rt.block_on(async {
        let claim = store
            .claim(ClaimRequest::new(i64::MAX / 2, 0, LEASE))
            .await
            .unwrap();
        // Many reads at once: the store's writer thread answers them in batches.
        let mut checks = tokio::task::JoinSet::new();
        let ids: Vec<(u64, DeliveryId)> = acked.iter().map(|(i, id)| (*i, *id)).collect();
        for chunk in ids.chunks(EVENTS / 32) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            checks.spawn(async move {
                let (mut attempts, mut failed) = (0, 0);
                for (index, id) in chunk {
                    let delivery = store.delivery(id).await.unwrap().unwrap();
                    assert_eq!(
                        delivery.status,
                        DeliveryStatus::Delivered,
                        "event {index}: {delivery:?}"
                    );
                    attempts += delivery.attempts.len();
                    failed += delivery
                        .attempts
                        .iter()
                        .filter(|a| a.status() != Some(200))
                        .count();
                }
                (attempts, failed)
            });
        }
        let (mut attempts, mut failed) = (0, 0);
        while let Some(result) = checks.join_next().await {
            let (a, f) = result.unwrap();
            attempts += a;
            failed += f;
        }
        (claim.open, attempts, failed)
    });

    let deliveries = tally.requests();
    let redeliveries = deliveries - EVENTS;
    println!(
        "crash test: {EVENTS} events, 2 SIGKILLs, {elapsed:?} in all\n\
         kill 1 at {:?}: {} publishes acknowledged, {} events handled\n\
         kill 2 at {:?}: {} publishes acknowledged, {} events handled\n\
         receiver: {deliveries} deliveries, {} handler calls completed ({} started, the rest cancelled by the kill), {} answered as duplicates, {} rejected\n\
         redeliveries (deliveries - events): {redeliveries}\n\
         store: {open} open, {attempts} recorded attempts ({failed_attempts} not 200)",
        kill_1.2,
        kill_1.0,
        kill_1.1,
        kill_2.2,
        kill_2.0,
        kill_2.1,
        tally.handler_calls(),
        tally.handler_starts(),
        tally.duplicates(),
        tally.rejected(),
    );

    // At least once: every event reached the handler. Exactly once: dedup held.
    assert_eq!(tally.distinct(), EVENTS);
    assert_eq!(tally.max_calls_per_label(), 1, "an event was handled twice");
    assert_eq!(tally.handler_calls(), EVENTS);
    assert_eq!(open, 0, "deliveries left open in the store");
    // A kill can duplicate what was in flight (attempts sent, result not yet committed: at
    // most one per worker) and publishes committed but not yet acknowledged to the caller
    // (at most one per concurrent publisher), which the caller publishes again. Attempts
    // that failed (timeouts) may have been handled too.
    let bound = 2 * (WORKERS + PUBLISHERS) + failed_attempts;
    assert!(
        redeliveries <= bound,
        "{redeliveries} redeliveries, more than the {bound} two crashes can explain"
    );
    // Each redelivery met one of: a completed first copy (answered as a duplicate), a first
    // copy still running (503 in progress), or a first copy whose handler was cancelled when
    // the killed sender's connection went away (its key was released, so the redelivery ran
    // the handler to completion instead).
    let cancelled = tally.handler_starts() - tally.handler_calls();
    assert_eq!(
        tally.duplicates() + tally.rejected() + cancelled,
        redeliveries,
        "a redelivery is unaccounted for"
    );
}
