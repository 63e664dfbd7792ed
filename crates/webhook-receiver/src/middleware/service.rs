//! [`Webhook`]: the service that verifies and deduplicates before calling the handler.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tower::Service;
use tracing::Instrument as _;

use super::ResponseFuture;
use super::layer::Config;
use crate::body::BoxError;
use crate::deadline::BodyDeadlineElapsed;
use crate::dedup::{Begin, Claim, DedupStore};
use crate::observer::Observation;
use crate::rejection::json_response;
use crate::{Rejection, ResponseBody, VerifiedWebhook, telemetry};

/// The webhook middleware around a handler service `S`; made by
/// [`WebhookLayer`](super::WebhookLayer).
///
/// The handler receives `Request<Full<Bytes>>` with the verified body and a
/// [`VerifiedWebhook`] extension. Its answer decides the dedup key's fate: 2xx marks the
/// delivery done, anything else (or an error) releases the key for the sender's retry.
#[derive(Debug, Clone)]
pub struct Webhook<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S> Webhook<S> {
    /// The wrapped handler service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Webhook<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays behind for
        // the next `poll_ready` (tower-service's "be careful when cloning").
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let span = tracing::debug_span!("webhook", style = %config.verifier.style());
        ResponseFuture::new(handle(config, ready, request).instrument(span))
    }
}

async fn handle<S, ReqBody, ResBody>(
    config: Arc<Config>,
    mut inner: S,
    request: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let webhook = match verify(&config, &parts.method, &parts.headers, body).await {
        Ok(verified) => verified,
        Err(rejection) => return Ok(reject(&config, &rejection)),
    };

    let claim = match config.store.begin(webhook.dedup_key(), config.lease).await {
        Ok(Begin::New(claim)) => claim,
        Ok(Begin::Done) => {
            metrics::counter!(telemetry::DUPLICATES).increment(1);
            tracing::debug!(
                dedup_key = webhook.dedup_key(),
                "duplicate webhook acknowledged"
            );
            if let Some(observer) = &config.observer {
                observer.notify(Observation::Duplicate(&webhook));
            }
            return Ok(
                json_response(StatusCode::OK, r#"{"status":"duplicate"}"#).map(ResponseBody::full)
            );
        }
        Ok(Begin::InProgress) => return Ok(reject(&config, &Rejection::InProgress)),
        Err(error) => {
            tracing::warn!(%error, "dedup store failed to claim a key");
            let rejection = if error.is_full() {
                Rejection::DedupFull
            } else {
                Rejection::DedupUnavailable
            };
            return Ok(reject(&config, &rejection));
        }
    };
    let guard = ClaimGuard {
        store: Arc::clone(&config.store),
        webhook: webhook.clone(),
        claim: Some(claim),
    };

    metrics::counter!(telemetry::ACCEPTED).increment(1);
    tracing::debug!(
        kind = webhook.kind(),
        dedup_key = webhook.dedup_key(),
        "webhook accepted"
    );
    let mut request = Request::from_parts(parts, Full::new(webhook.body().clone()));
    request.extensions_mut().insert(webhook);

    let result = inner.call(request).await;
    // Only the status crosses the awaits below (`ResBody` need not be `Sync`).
    let outcome = result.as_ref().map(Response::status).ok();
    match outcome {
        Some(status) if status.is_success() => {
            guard
                .complete(config.effective_ttl(), config.replay_safe_age())
                .await;
        }
        Some(status) => {
            metrics::counter!(telemetry::HANDLER_FAILURES).increment(1);
            tracing::debug!(
                status = status.as_u16(),
                "handler failed; dedup key released"
            );
            guard.release().await;
        }
        None => {
            metrics::counter!(telemetry::HANDLER_FAILURES).increment(1);
            tracing::debug!("handler returned an error; dedup key released");
            guard.release().await;
        }
    }
    result.map(|response| response.map(ResponseBody::inner))
}

/// Method, size limit, body, signature: everything before dedup.
async fn verify<B>(
    config: &Config,
    method: &Method,
    headers: &HeaderMap,
    body: B,
) -> Result<VerifiedWebhook, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if method != Method::POST {
        return Err(Rejection::MethodNotAllowed);
    }
    let limit = config.verifier.get_max_body_size();
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared_length(headers)?.is_some_and(|length| length > limit_u64)
        || body.size_hint().lower() > limit_u64
    {
        return Err(Rejection::PayloadTooLarge);
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(Rejection::PayloadTooLarge),
        Err(error) if BodyDeadlineElapsed::is_in(&*error) => return Err(Rejection::BodyTimeout),
        Err(_) => return Err(Rejection::BodyUnreadable),
    };

    let started = Instant::now();
    let verified = config.verifier.verify_request(headers, bytes);
    metrics::histogram!(telemetry::VERIFY_SECONDS).record(started.elapsed().as_secs_f64());
    verified
}

/// The declared `Content-Length`, if any (the largest, if several).
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Rejection> {
    let mut largest = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let length = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or(Rejection::InvalidContentLength)?;
        largest = largest.max(Some(length));
    }
    Ok(largest)
}

fn reject<B>(config: &Config, rejection: &Rejection) -> Response<ResponseBody<B>> {
    telemetry::rejected(rejection);
    if let Some(observer) = &config.observer {
        observer.notify(Observation::Rejected(rejection));
    }
    rejection.to_response().map(ResponseBody::full)
}

/// Holds a claimed key until the handler's outcome is known. Dropped without an outcome
/// (the connection went away, the handler panicked), it releases the key in a spawned
/// task so the sender's retry is handled; without a Tokio runtime the lease frees it.
struct ClaimGuard {
    store: Arc<dyn DedupStore>,
    /// Holds the dedup key (a reference count, not a copy of the text).
    webhook: VerifiedWebhook,
    claim: Option<Claim>,
}

impl ClaimGuard {
    async fn complete(mut self, ttl: Duration, replay_safe_age: Option<Duration>) {
        if let Some(claim) = &self.claim {
            let completed = match replay_safe_age {
                Some(age) => {
                    self.store
                        .complete_evictable(self.webhook.dedup_key(), claim, ttl, age)
                }
                None => self.store.complete(self.webhook.dedup_key(), claim, ttl),
            };
            if let Err(error) = completed.await {
                // The handler succeeded and the sender gets its 2xx; the key frees
                // itself after the lease, so a later replay is still stopped by the
                // timestamp window.
                tracing::warn!(%error, "dedup store failed to mark a key done");
            }
        }
        self.claim = None;
    }

    async fn release(mut self) {
        if let Some(claim) = &self.claim {
            if let Err(error) = self.store.release(self.webhook.dedup_key(), claim).await {
                tracing::warn!(%error, "dedup store failed to release a key; it frees itself after the lease");
            }
        }
        self.claim = None;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = Arc::clone(&self.store);
        let webhook = self.webhook.clone();
        tracing::debug!("webhook request dropped before the handler answered; releasing its key");
        runtime.spawn(async move {
            if let Err(error) = store.release(webhook.dedup_key(), &claim).await {
                tracing::warn!(%error, "dedup store failed to release a key; it frees itself after the lease");
            }
        });
    }
}
