//! Faults at the receiver: random 503s (some with `Retry-After`), answers held past the
//! sender's timeout, connections reset before, after and in the middle of answering, and a
//! receiver that is down for a while and comes back. Everything is delivered, exactly once
//! at the handler; the waits between attempts follow the retry policy (read back from each
//! delivery's attempt history); the circuit breaker opens while the receiver is down and
//! closes once it is back.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use webhook_core::event::EventType;
use webhook_e2e::SplitMix64;
use webhook_e2e::faults::{Fault, FaultyServer};
use webhook_e2e::receiver::{Tally, counting_service, event_entity};
use webhook_e2e::sender::loopback_sender;
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::store::MemoryStore;
use webhook_sender::{
    AttemptRecord, BreakerConfig, Delivery, DeliveryId, DeliveryStatus, EndpointConfig, Publish,
    RetryPolicy, Sender,
};

const SECRET: &str = "faults-test-organization-secret";
const ORGANIZATION: &str = "org-faults";
/// Clock readings are whole milliseconds: allow that much rounding per comparison.
const ROUNDING_MS: i64 = 2;

async fn sender(breaker: BreakerConfig) -> Sender {
    loopback_sender(ORGANIZATION, SECRET, |builder| {
        builder
            .store(MemoryStore::new())
            .workers(32)
            .breaker(breaker)
    })
    .await
}

fn receiver(
    tally: Arc<Tally>,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<webhook_receiver::ResponseBody<http_body_util::Full<bytes::Bytes>>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    counting_service(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        Arc::new(event_entity),
        tally,
    )
}

async fn publish(sender: &Sender, range: std::ops::Range<u64>) -> Vec<DeliveryId> {
    let mut ids = Vec::new();
    for n in range {
        let receipt = sender
            .publish(Publish::event(
                ORGANIZATION,
                EventType::TransactionConfirmed,
                format!("tx-{n}"),
                json!({ "n": n }),
            ))
            .await
            .unwrap();
        ids.push(receipt.deliveries[0].id);
    }
    ids
}

/// Waits (bounded) until every delivery is delivered; returns them with their histories.
async fn all_delivered(sender: &Sender, ids: &[DeliveryId], limit: Duration) -> Vec<Delivery> {
    let deadline = Instant::now() + limit;
    loop {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            let delivery = sender
                .delivery(&ORGANIZATION.into(), *id)
                .await
                .unwrap()
                .unwrap();
            assert_ne!(
                delivery.status,
                DeliveryStatus::Failed,
                "a delivery failed: {delivery:?}"
            );
            if delivery.status == DeliveryStatus::Delivered {
                done.push(delivery);
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} delivered after {limit:?}",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `Retry-After` an injected 503 carried, read from the body kept in the history.
fn retry_after_of(attempt: &AttemptRecord) -> Option<Duration> {
    let webhook_sender::AttemptResult::Response { body, .. } = &attempt.result else {
        return None;
    };
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json["retryAfter"].as_u64().map(Duration::from_secs)
}

/// The wait the policy asks for after `attempt` (the `number`-th), honouring its hint.
fn policy_wait(policy: &RetryPolicy, attempt: &AttemptRecord) -> Duration {
    let hint = retry_after_of(attempt).filter(|_| matches!(attempt.status(), Some(429 | 503)));
    policy.next_delay(attempt.number, hint).unwrap()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_503s_slow_answers_and_resets_lose_nothing_and_retries_follow_the_policy() {
    const EVENTS: u64 = 300;
    const TIMEOUT: Duration = Duration::from_millis(300);
    let tally = Arc::new(Tally::default());
    let rng = Mutex::new(SplitMix64::new(0x5eed_0003));
    let server = FaultyServer::start(receiver(Arc::clone(&tally)), move |_| {
        let mut rng = rng.lock().unwrap();
        if rng.chance(0.30) {
            // A third of the 503s ask for 30 s, far beyond the policy's longest wait.
            let retry_after = rng.chance(1.0 / 3.0).then_some(30);
            return Fault::Status {
                status: 503,
                retry_after,
            };
        }
        let roll = rng.next_u64() % 100;
        match roll {
            0..5 => Fault::SlowAnswer(TIMEOUT * 3),
            5..9 => Fault::ResetAfterHandling,
            9..12 => Fault::ResetMidResponse,
            12..15 => Fault::ResetBeforeHandling,
            _ => Fault::Pass,
        }
    })
    .await;

    // Breakers off: this test is about retries; the next one is about the breaker.
    let sender = sender(BreakerConfig {
        threshold: 0,
        cooldown: Duration::from_secs(1),
    })
    .await;
    let policy = RetryPolicy::schedule((0..25).map(|n| Duration::from_millis(20 * n)));
    sender
        .endpoints()
        .create(
            EndpointConfig::event(
                ORGANIZATION,
                server.url(),
                [EventType::TransactionConfirmed],
            )
            .timeout(TIMEOUT)
            .max_concurrency(16)
            .retry(policy.clone()),
        )
        .await
        .unwrap();

    let started = Instant::now();
    let ids = publish(&sender, 0..EVENTS).await;
    let deliveries = all_delivered(&sender, &ids, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();

    // Nothing lost, nothing handled twice.
    assert_eq!(tally.distinct() as u64, EVENTS);
    assert_eq!(tally.max_calls_per_label(), 1, "an event was handled twice");

    // Every wait between two attempts of a delivery is at least what the policy asks for
    // (with `Retry-After` honoured but capped by the longest wait), counted from the end of
    // the failed attempt, and not much more.
    let longest = policy.longest_delay();
    let (mut waits, mut capped_hints, mut late) = (0, 0, Duration::ZERO);
    for delivery in &deliveries {
        for pair in delivery.attempts.windows(2) {
            let (failed, next) = (&pair[0], &pair[1]);
            let wanted = policy_wait(&policy, failed);
            let waited = next.at_ms - (failed.at_ms + i64::try_from(failed.latency_ms).unwrap());
            assert!(
                waited + ROUNDING_MS >= ms(wanted),
                "attempt {} of {} came {waited} ms after attempt {}, policy wants {wanted:?}",
                next.number,
                delivery.id,
                failed.number
            );
            if retry_after_of(failed).is_some() {
                capped_hints += 1;
                assert!(
                    waited < ms(Duration::from_secs(5)),
                    "Retry-After: 30 was not capped by the policy's longest wait ({longest:?})"
                );
            }
            late = late.max(Duration::from_millis(
                u64::try_from(waited - ms(wanted)).unwrap_or(0),
            ));
            waits += 1;
        }
    }

    let applied = server.applied();
    let attempts: usize = deliveries.iter().map(|d| d.attempts.len()).sum();
    let timeouts = deliveries
        .iter()
        .flat_map(|d| &d.attempts)
        .filter(|a| a.is_timeout())
        .count();
    let broken = deliveries
        .iter()
        .flat_map(|d| &d.attempts)
        .filter(|a| a.error_kind().is_some() && !a.is_timeout())
        .count();
    println!(
        "receiver faults: {EVENTS} events in {elapsed:?}; {} requests, faults applied {applied:?}\n\
         sender: {attempts} attempts ({} max for one delivery), {timeouts} timeouts, \
         {broken} broken connections, {waits} waits checked ({capped_hints} after a capped \
         Retry-After), at most {late:?} later than the policy\n\
         receiver: {} handler calls, {} duplicates answered",
        server.requests(),
        deliveries
            .iter()
            .map(|d| d.attempts.len())
            .max()
            .unwrap_or(0),
        tally.handler_calls(),
        tally.duplicates(),
    );
    for fault in [
        "status",
        "status+retry-after",
        "slow",
        "reset-before",
        "reset-after",
        "reset-mid-response",
        "pass",
    ] {
        assert!(
            applied.get(fault).copied().unwrap_or(0) > 0,
            "{fault} never happened"
        );
    }
    assert!(timeouts > 0, "slow answers caused timeouts");
    assert!(broken > 0, "resets broke connections");
    assert!(capped_hints > 0);
    // A handled request whose answer was lost (slow, reset after handling, reset mid-answer)
    // came back and was answered as a duplicate.
    assert!(tally.duplicates() > 0);
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_and_the_breaker_opens_and_closes() {
    const COOLDOWN: Duration = Duration::from_millis(300);
    const THRESHOLD: u32 = 3;
    const CONCURRENCY: u32 = 4;
    const DOWN_FOR: Duration = Duration::from_millis(1500);
    let tally = Arc::new(Tally::default());
    let server = FaultyServer::start(receiver(Arc::clone(&tally)), |_| Fault::Pass).await;
    let sender = sender(BreakerConfig {
        threshold: THRESHOLD,
        cooldown: COOLDOWN,
    })
    .await;
    // Without a breaker this policy would retry every 50 ms: 4 × 30 attempts while down.
    let policy = RetryPolicy::schedule(
        std::iter::once(Duration::ZERO).chain(std::iter::repeat_n(Duration::from_millis(50), 199)),
    );
    sender
        .endpoints()
        .create(
            EndpointConfig::event(
                ORGANIZATION,
                server.url(),
                [EventType::TransactionConfirmed],
            )
            .timeout(Duration::from_millis(500))
            .max_concurrency(CONCURRENCY)
            .retry(policy.clone()),
        )
        .await
        .unwrap();

    let mut ids = publish(&sender, 0..20).await;
    all_delivered(&sender, &ids, Duration::from_secs(30)).await;

    // Down: the listener and every connection close; connections are refused.
    server.down().await;
    let down_at = now_ms();
    let down = Instant::now();
    ids.extend(publish(&sender, 20..60).await);
    tokio::time::sleep(DOWN_FOR.saturating_sub(down.elapsed())).await;
    // Back, with a slower handler so that requests overlap when the breaker is closed.
    tally.set_handler_delay(Duration::from_millis(30));
    server.up().await;
    let up_at = now_ms();
    let deliveries = all_delivered(&sender, &ids, Duration::from_secs(30)).await;

    assert_eq!(tally.distinct(), 60);
    assert_eq!(tally.max_calls_per_label(), 1);

    let mut attempts: Vec<&AttemptRecord> = deliveries.iter().flat_map(|d| &d.attempts).collect();
    attempts.sort_by_key(|a| a.at_ms);
    let while_down: Vec<&&AttemptRecord> = attempts
        .iter()
        .filter(|a| a.at_ms >= down_at && a.at_ms < up_at)
        .collect();
    let failed_while_down = while_down.iter().filter(|a| a.is_connect()).count();
    // Opens: after THRESHOLD failures only the attempts already running finish, then one
    // probe per cool-down, instead of CONCURRENCY attempts every 50 ms.
    let down_ms = up_at - down_at;
    let probes = usize::try_from(down_ms / ms(COOLDOWN)).unwrap() + 1;
    let bound = CONCURRENCY as usize + THRESHOLD as usize + probes;
    let longest_pause = while_down
        .windows(2)
        .map(|pair| pair[1].at_ms - pair[0].at_ms)
        .max()
        .unwrap_or(0);
    // Closes: once back, attempts run side by side again (a half-open breaker lets one through).
    let after: Vec<&&AttemptRecord> = attempts.iter().filter(|a| a.at_ms >= up_at).collect();
    let overlap = after
        .iter()
        .map(|a| {
            // How many attempts were running when `a` started.
            after
                .iter()
                .filter(|b| {
                    b.at_ms <= a.at_ms && a.at_ms < b.at_ms + i64::try_from(b.latency_ms).unwrap()
                })
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "receiver down for {down_ms} ms: {} attempts while down ({failed_while_down} refused; \
         bound {bound}; without a breaker about {}), longest pause {longest_pause} ms; \
         after coming back: {} attempts, up to {overlap} at once",
        while_down.len(),
        ms(DOWN_FOR) / 50 * i64::from(CONCURRENCY),
        after.len()
    );
    assert!(
        failed_while_down >= THRESHOLD as usize,
        "the receiver was down: attempts must have failed"
    );
    assert!(
        while_down.len() <= bound,
        "{} attempts while down: the breaker did not pause the endpoint",
        while_down.len()
    );
    assert!(
        longest_pause + ROUNDING_MS >= ms(COOLDOWN),
        "no pause of a cool-down between attempts"
    );
    assert!(overlap >= 2, "the breaker did not close again");
    // Connection failures are retried by the policy too: never sooner than it says.
    for delivery in &deliveries {
        for pair in delivery.attempts.windows(2) {
            let wanted = policy_wait(&policy, &pair[0]);
            let waited =
                pair[1].at_ms - (pair[0].at_ms + i64::try_from(pair[0].latency_ms).unwrap());
            assert!(waited + ROUNDING_MS >= ms(wanted), "{delivery:?}");
        }
    }
    sender.shutdown().await.unwrap();
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}
