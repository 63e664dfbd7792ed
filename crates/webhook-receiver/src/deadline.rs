//! A deadline for reading a whole request body, as a tower layer: a client that trickles
//! its body byte by byte is cut off when the deadline passes, however steadily it sends.
//!
//! [`BodyDeadlineLayer`] wraps each request body in a [`DeadlineBody`] whose clock starts
//! when the request reaches the layer (right after its head was read). Once the deadline
//! has passed, the next read of the body fails with [`BodyDeadlineElapsed`]; the
//! [`WebhookLayer`](crate::WebhookLayer) answers that with `408 Request Timeout`
//! (`body_timeout`), and hyper closes the connection, since the rest of the body was not
//! read. This differs from tower-http's `RequestBodyTimeoutLayer`, which limits the wait
//! for each frame: a body sent one byte a second never trips a per-frame timeout.
//!
//! `server::serve` (feature `server`) installs it for you; with your own hyper or
//! axum server, add it outside the webhook layer:
//!
#![cfg_attr(feature = "axum", doc = "```")]
#![cfg_attr(not(feature = "axum"), doc = "```text")]
//! use std::time::Duration;
//! use axum::{Router, routing::post};
//! use webhook_receiver::deadline::BodyDeadlineLayer;
//! use webhook_receiver::{Verifier, VerifiedWebhook, WebhookLayer};
//!
//! async fn handle(_webhook: VerifiedWebhook) -> &'static str { "ok" }
//!
//! let app: Router = Router::new()
//!     .route("/webhook", post(handle))
//!     .layer(WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?))
//!     // Added last, so it runs first: the body's clock starts before verification.
//!     .layer(BodyDeadlineLayer::new(Duration::from_secs(20)));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::BoxError;

/// The whole-body deadline unless configured otherwise: 20 s, enough for the default
/// 1 MiB body limit at about 50 KiB/s, and above seed 001's "answer within 5 s".
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A layer that gives every request body one deadline for its whole reading.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadlineLayer {
    timeout: Duration,
}

impl BodyDeadlineLayer {
    /// Bodies must be read completely within `timeout` of the request reaching the layer.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// The deadline's length.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for BodyDeadlineLayer {
    /// [`DEFAULT_BODY_READ_TIMEOUT`].
    fn default() -> Self {
        Self::new(DEFAULT_BODY_READ_TIMEOUT)
    }
}

impl<S> Layer<S> for BodyDeadlineLayer {
    type Service = BodyDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyDeadline {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service made by [`BodyDeadlineLayer`]: passes `Request<DeadlineBody<B>>` inward.
#[derive(Debug, Clone)]
pub struct BodyDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for BodyDeadline<S>
where
    S: Service<Request<DeadlineBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let timeout = self.timeout;
        self.inner
            .call(request.map(|body| DeadlineBody::new(body, timeout)))
    }
}

pin_project_lite::pin_project! {
    /// A body that fails with [`BodyDeadlineElapsed`] when it is read past its deadline.
    pub struct DeadlineBody<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: Sleep,
    }
}

impl<B> DeadlineBody<B> {
    /// `body`, to be read completely within `timeout` from now.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the deadline is a Tokio timer).
    #[must_use]
    pub fn new(body: B, timeout: Duration) -> Self {
        let deadline = Instant::now()
            .checked_add(timeout)
            // A timeout too large for the clock: a deadline 30 years away is none.
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365 * 30));
        Self {
            body,
            deadline: tokio::time::sleep_until(deadline),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> fmt::Debug for DeadlineBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineBody")
            .field("deadline", &self.deadline.deadline())
            .finish_non_exhaustive()
    }
}

/// The error of a [`DeadlineBody`] read after its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request body not received within its deadline")]
pub struct BodyDeadlineElapsed;

impl BodyDeadlineElapsed {
    /// Whether `error`, or any error in its `source()` chain, is a [`BodyDeadlineElapsed`]
    /// (frameworks such as axum wrap body errors in their own type).
    #[must_use]
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<Self>())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};

    #[tokio::test(start_paused = true)]
    async fn a_body_arriving_in_time_is_read_and_a_trickled_one_is_cut_off() {
        let body = DeadlineBody::new(Full::new(Bytes::from_static(b"abc")), Duration::ZERO);
        // Frames already there are read even at the deadline.
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");

        // One byte every 100 ms for 3 s, against a 1 s deadline for the whole body.
        let trickle = Trickle::new(30, Duration::from_millis(100));
        let body = DeadlineBody::new(trickle, Duration::from_secs(1));
        let started = Instant::now();
        let error = body.collect().await.unwrap_err();
        assert!(BodyDeadlineElapsed::is_in(&*error), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    /// `left` one-byte frames, one every `every`.
    struct Trickle {
        left: usize,
        every: Duration,
        sleep: Pin<Box<Sleep>>,
    }

    impl Trickle {
        fn new(left: usize, every: Duration) -> Self {
            Self {
                left,
                every,
                sleep: Box::pin(tokio::time::sleep(every)),
            }
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            std::task::ready!(self.sleep.as_mut().poll(cx));
            let next = Instant::now() + self.every;
            self.sleep.as_mut().reset(next);
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }
}
