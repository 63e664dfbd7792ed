//! Quick acknowledgement: answer 200 as soon as a delivery is verified and new, and do the
//! handler's work afterwards from a bounded in-memory queue.
//!
//! Seed 001 asks receivers to answer within 5 s. [`QuickAck`] is a handler service to put
//! under the [`WebhookLayer`](crate::WebhookLayer): it pushes the
//! [`VerifiedWebhook`] onto a bounded [`tokio::sync::mpsc`] queue and answers
//! `200 {"status":"accepted"}` at once; a worker drains the queue.
//!
//! **Back-pressure.** The queue holds at most `capacity` events. When it is full the
//! answer is `503` with `Retry-After: 5`; the middleware releases the delivery's dedup key,
//! and the sender retries later under its retry policy. So a slow worker slows the sender
//! down instead of growing memory without bound. Pick the capacity as the worker's
//! throughput times the delay you accept.
//!
//! **The trade-off, plainly.** An acknowledged event lives only in this process's memory
//! until the worker has handled it. If the process dies first (crash, kill, deploy
//! without draining), the event is lost: the sender got its 200 and will not retry, and the
//! dedup store marked the key done at acknowledgement time, so even a redelivery would be
//! answered as a duplicate. Quick-ack trades at-least-once processing for a fast answer.
//! Use it when losing an event on a crash is acceptable or repaired otherwise (for
//! example by reconciling with the platform's API); else answer after the work is done,
//! or have the handler write the event to a durable queue before it answers.
//! A failing or panicking worker job is logged and not retried, for the same reason.
//!
//! **Shutdown.** Dropping every clone of the [`QuickAck`] service (stop the server) closes
//! the queue; the worker then handles what is left and ends, so await its join handle
//! before exiting.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tower::Layer;
//! use webhook_receiver::{QuickAck, Verifier, WebhookLayer};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let handled = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&handled);
//! let (quick_ack, worker) = QuickAck::spawn(1024, move |webhook| {
//!     let counter = Arc::clone(&counter);
//!     async move {
//!         // Heavy work here, after the sender already has its 200.
//!         let _ = webhook.dedup_key();
//!         counter.fetch_add(1, Ordering::SeqCst);
//!     }
//! });
//! let service = WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?).layer(quick_ack);
//! // … serve `service` with hyper, or as an axum route service …
//! drop(service); // closes the queue
//! worker.await.unwrap();
//! # Ok::<(), webhook_core::KeyError>(())
//! # }).unwrap();
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tower::Service;

use crate::rejection::json_response;
use crate::{Rejection, VerifiedWebhook, telemetry};

/// A handler service that acknowledges verified deliveries at once and queues them for a
/// worker (see the [module docs](self) for back-pressure and the trade-off). Cheap to clone.
#[derive(Clone)]
pub struct QuickAck {
    sender: mpsc::Sender<VerifiedWebhook>,
}

/// The receiving end of a [`QuickAck`] queue, for running your own worker.
pub struct AckQueue {
    receiver: mpsc::Receiver<VerifiedWebhook>,
}

impl QuickAck {
    /// A service and its queue of at most `capacity` events (at least 1). Run a worker
    /// that calls [`AckQueue::recv`] until it returns `None`.
    #[must_use]
    pub fn new(capacity: usize) -> (Self, AckQueue) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, AckQueue { receiver })
    }

    /// A service and a spawned worker task that runs `handler` on each event, one at a
    /// time, in arrival order. A panicking job is logged and the worker goes on. The task
    /// ends once every clone of the service is dropped and the queue is drained.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn spawn<F, Fut>(capacity: usize, mut handler: F) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: FnMut(VerifiedWebhook) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (service, mut queue) = Self::new(capacity);
        let worker = tokio::spawn(async move {
            while let Some(webhook) = queue.recv().await {
                // Each job in its own task, so that a panic is caught and logged
                // instead of ending the worker.
                if let Err(error) = tokio::spawn(handler(webhook)).await {
                    tracing::error!(%error, "quick-ack job failed; the event is not retried");
                }
            }
        });
        (service, worker)
    }

    /// Free places in the queue now.
    #[must_use]
    pub fn available(&self) -> usize {
        self.sender.capacity()
    }

    fn enqueue(&self, webhook: Option<VerifiedWebhook>) -> Response<Full<Bytes>> {
        let rejection = match webhook.map(|webhook| self.sender.try_send(webhook)) {
            Some(Ok(())) => return json_response(StatusCode::OK, r#"{"status":"accepted"}"#),
            Some(Err(TrySendError::Full(_))) => Rejection::QueueFull,
            Some(Err(TrySendError::Closed(_))) => Rejection::QueueClosed,
            None => Rejection::NotVerified,
        };
        telemetry::rejected(&rejection);
        rejection.to_response()
    }
}

impl<B> Service<Request<B>> for QuickAck {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Never waits: a full queue is answered with 503 so the sender backs off.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let webhook = request.extensions_mut().remove::<VerifiedWebhook>();
        ready(Ok(self.enqueue(webhook)))
    }
}

impl AckQueue {
    /// The next event, or `None` once every [`QuickAck`] clone is dropped and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<VerifiedWebhook> {
        self.receiver.recv().await
    }

    /// Events waiting now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Whether no event is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// Stops accepting: further deliveries get 503 `queue_closed`; events already queued
    /// can still be received.
    pub fn close(&mut self) {
        self.receiver.close();
    }
}

impl fmt::Debug for QuickAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickAck")
            .field("capacity", &self.sender.max_capacity())
            .field("available", &self.sender.capacity())
            .finish()
    }
}

impl fmt::Debug for AckQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckQueue")
            .field("len", &self.receiver.len())
            .finish()
    }
}
