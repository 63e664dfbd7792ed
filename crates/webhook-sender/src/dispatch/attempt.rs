//! One attempt: sign afresh, send, classify, record, and decide what comes next.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;
use webhook_core::domain::Domain;
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SigningKeys, Style};

use super::Engine;
use crate::delivery::{AttemptErrorKind, AttemptRecord, AttemptResult, duration_millis, to_millis};
use crate::endpoint::Endpoint;
use crate::ids::DeliveryId;
use crate::outcome::{Outcome, OutcomeStatus};
use crate::retry::{Verdict, parse_retry_after};
use crate::store::{Claimed, Finish};

/// Marks the attempt's end in the engine however its task ends: recorded, or aborted
/// (a deleted endpoint, shutdown) before it could record.
struct Ended<'a> {
    engine: &'a Engine,
    id: DeliveryId,
    recorded: bool,
}

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.engine.attempt_ended(self.id, self.recorded);
        self.engine.wake();
    }
}

/// Runs one attempt of a claimed delivery and records its result.
pub(super) async fn run(engine: Arc<Engine>, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let mut ended = Ended {
        engine: &engine,
        id: claimed.record.id,
        recorded: false,
    };
    let span = tracing::info_span!(
        "webhook.attempt",
        delivery.id = %claimed.record.id,
        endpoint.id = %claimed.record.endpoint,
        event.id = %claimed.record.event,
        attempt = claimed.record.attempts.len() + 1,
    );
    attempt(&engine, claimed).instrument(span).await;
    ended.recorded = true;
    drop(ended);
    drop(permit);
}

async fn attempt(engine: &Engine, claimed: Claimed) {
    let record = &claimed.record;
    // Taken before the endpoint is looked up: a delete cancels it first, then removes the
    // endpoint, so an attempt either sees the endpoint gone or the cancellation.
    let deleted = engine.deletion(record.endpoint);
    let Some(endpoint) = engine
        .config
        .endpoint(record.endpoint)
        .filter(|_| deleted.as_ref().is_none_or(|d| !d.is_cancelled()))
    else {
        // Deleted, or not yet loaded by this node: its deliveries are not ours to send.
        tracing::debug!("delivery for an endpoint this node does not have; releasing it");
        let at_ms = engine.now_ms().saturating_add(60_000);
        finish(engine, &claimed, Finish::Release { at_ms }).await;
        return;
    };
    let started = engine.now();
    let at_ms = to_millis(started);
    let number = u32::try_from(record.attempts.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let clock = Instant::now();
    let result = match build_request(engine, &endpoint, &claimed, started) {
        Ok(request) => {
            let send = engine.client.send(request, endpoint.timeout);
            match deleted {
                Some(deleted) => tokio::select! {
                    result = send => result,
                    () = deleted.cancelled() => return,
                },
                None => send.await,
            }
        }
        Err(message) => Err(crate::http::SendError {
            kind: AttemptErrorKind::Request,
            message,
        }),
    };
    let latency = clock.elapsed();
    metrics::histogram!(crate::metrics::ATTEMPT_LATENCY).record(latency.as_secs_f64());

    let (verdict, retry_after, result) = match result {
        Ok(response) => {
            let retry_after = Verdict::honours_retry_after(response.status)
                .then(|| {
                    response
                        .retry_after
                        .as_deref()
                        .and_then(|value| parse_retry_after(value, engine.now()))
                })
                .flatten();
            (
                Verdict::of_status(response.status),
                retry_after,
                AttemptResult::Response {
                    status: response.status,
                    body: response.body,
                },
            )
        }
        Err(error) => (
            Verdict::of_error(error.kind),
            None,
            AttemptResult::Error {
                kind: error.kind,
                message: error.message,
            },
        ),
    };
    let attempt = AttemptRecord {
        number,
        at_ms,
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        result,
    };
    let now_ms = engine.now_ms();
    let end = match verdict {
        Verdict::Delivered => Finish::Delivered(attempt),
        Verdict::Fail | Verdict::FailAndDisable => Finish::Failed(attempt),
        Verdict::Retry => {
            let made = record.round_attempts.saturating_add(1);
            match endpoint.spec.retry.next_delay(made, retry_after) {
                Some(delay) => {
                    metrics::histogram!(crate::metrics::RETRY_DELAY).record(delay.as_secs_f64());
                    Finish::Retry {
                        attempt,
                        at_ms: now_ms.saturating_add(duration_millis(delay)),
                    }
                }
                None => Finish::Failed(attempt),
            }
        }
    };
    let label = match &end {
        Finish::Delivered(_) => "delivered",
        Finish::Retry { .. } => "retry",
        _ => "failed",
    };
    metrics::counter!(crate::metrics::ATTEMPTS, "result" => label).increment(1);
    tracing::debug!(
        result = label,
        latency_ms = latency.as_millis(),
        "attempt finished"
    );

    if engine.record_breaker(endpoint.spec.id, verdict == Verdict::Retry, now_ms) {
        metrics::counter!(crate::metrics::BREAKER_OPENED).increment(1);
        tracing::warn!(endpoint.id = %endpoint.spec.id, "circuit breaker opened; endpoint paused");
    }
    if verdict == Verdict::FailAndDisable {
        tracing::warn!(endpoint.id = %endpoint.spec.id, "410 Gone: disabling the endpoint");
        if let Err(error) = engine
            .config
            .disable(engine.store.as_ref(), endpoint.spec.id, "410 Gone")
            .await
        {
            tracing::warn!(%error, "disabling the endpoint failed");
        }
    }
    finish(engine, &claimed, end).await;
}

/// Records the result; announces final outcomes.
async fn finish(engine: &Engine, claimed: &Claimed, finish: Finish) {
    let record = &claimed.record;
    let outcome = match &finish {
        Finish::Delivered(attempt) => Some((OutcomeStatus::Delivered, attempt.status())),
        Finish::Failed(attempt) => Some((OutcomeStatus::Failed, attempt.status())),
        _ => None,
    };
    let attempts = u32::try_from(record.attempts.len())
        .unwrap_or(u32::MAX)
        .saturating_add(u32::from(outcome.is_some()));
    match engine.store.finish(record.id, record.lease, finish).await {
        Ok(()) => {
            if let Some((status, last_status)) = outcome {
                let name = match status {
                    OutcomeStatus::Delivered => crate::metrics::DELIVERED,
                    OutcomeStatus::Failed => crate::metrics::FAILED,
                };
                metrics::counter!(name).increment(1);
                engine.announce(Outcome {
                    delivery: record.id,
                    event: record.event,
                    endpoint: record.endpoint,
                    organization: record.organization.clone(),
                    status,
                    attempts,
                    last_status,
                });
            }
        }
        Err(error) if error.is_lease_lost() => {
            tracing::warn!("lease lost before the result was recorded; another worker has it");
        }
        Err(error) => {
            // The lease runs out and the delivery is attempted again: at-least-once.
            tracing::warn!(%error, "recording the attempt failed");
        }
    }
}

/// Signs the payload for this attempt, at `at`, and builds the request.
fn build_request(
    engine: &Engine,
    endpoint: &Endpoint,
    claimed: &Claimed,
    at: time::OffsetDateTime,
) -> Result<Request<Full<Bytes>>, String> {
    let now_ms = to_millis(at);
    let keys = signing_keys(engine, endpoint, now_ms)?;
    let event_id = claimed.record.event.to_string();
    let domain = claimed.payload.domain.as_deref().map(Domain::from);
    let mut outgoing = Outgoing::new(&event_id, &claimed.payload.content);
    if let Some(domain) = &domain {
        outgoing = outgoing.with_domain(domain);
    }
    let signed = keys
        .sign(&outgoing, at)
        .map_err(|e| format!("signing failed: {e}"))?;
    let mut request = Request::post(endpoint.uri.clone())
        .body(Full::new(Bytes::from(signed.body)))
        .map_err(|e| format!("request does not build: {e}"))?;
    let headers = request.headers_mut();
    headers.extend(endpoint.headers.clone());
    headers.insert(http::header::USER_AGENT, crate::http::user_agent());
    for (name, value) in signed.headers {
        headers.insert(name, value);
    }
    Ok(request)
}

/// The keys that sign now: the endpoint's active secrets (or, for event style without
/// its own, its organization's).
fn signing_keys(engine: &Engine, endpoint: &Endpoint, now_ms: i64) -> Result<SigningKeys, String> {
    Ok(match endpoint.spec.style {
        Style::Event => {
            let mut secrets: Vec<_> = endpoint
                .keys
                .active(now_ms)
                .filter_map(|s| s.as_hmac().cloned())
                .collect();
            if secrets.is_empty() {
                if let Some(org) = engine.config.organization(&endpoint.spec.organization) {
                    secrets = org
                        .secrets
                        .active(now_ms)
                        .filter_map(|s| s.as_hmac().cloned())
                        .collect();
                }
            }
            if secrets.is_empty() {
                return Err("no active secret for this endpoint or its organization".into());
            }
            SigningKeys::Event(secrets)
        }
        Style::Domain => {
            // One signature per request: the oldest active key (the old key during an
            // overlap, the new one after it).
            let key = endpoint
                .keys
                .active(now_ms)
                .find_map(|s| s.as_ecdsa().cloned())
                .ok_or("no active ECDSA key for this endpoint")?;
            SigningKeys::Domain(Box::new(key))
        }
        Style::Standard => {
            let keys: Vec<StandardSigningKey> = endpoint
                .keys
                .active(now_ms)
                .filter_map(crate::secret::Secret::as_standard)
                .collect();
            if keys.is_empty() {
                return Err("no active key for this endpoint".into());
            }
            SigningKeys::Standard(keys)
        }
    })
}
