//! A real receiver on 127.0.0.1: `WebhookLayer` (verification and dedup) in front of a
//! handler that counts its calls per label, with every HTTP request counted before the layer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use webhook_e2e::receiver::CountingReceiver;
//! use webhook_receiver::{Verifier, WebhookLayer};
//!
//! let layer = WebhookLayer::new(Verifier::event_secrets(["org-secret"])?);
//! let receiver = CountingReceiver::start(layer, |webhook| webhook.dedup_key().to_owned()).await;
//! println!("POST to {}", receiver.url());
//! // … deliver …
//! assert!(receiver.tally().max_calls_per_label() <= 1, "dedup held");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::service::TowerToHyperService;
use tower::{Layer as _, Service, ServiceExt as _};
use webhook_receiver::{Observation, VerifiedWebhook, WebhookLayer};

use crate::server::HttpServer;

/// A function naming what a handler call is about (an event's entity, a dedup key).
pub type Labeler = dyn Fn(&VerifiedWebhook) -> String + Send + Sync;

/// What a [`CountingReceiver`] has seen so far.
#[derive(Debug, Default)]
pub struct Tally {
    requests: AtomicUsize,
    duplicates: AtomicUsize,
    rejected: AtomicUsize,
    handled: Mutex<HashMap<String, usize>>,
    calls: AtomicUsize,
    started: AtomicUsize,
    delay_ms: AtomicU64,
}

impl Tally {
    /// Every HTTP request that reached the server: the sender's delivery attempts.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests answered as duplicates (dedup hit, handler not called).
    #[must_use]
    pub fn duplicates(&self) -> usize {
        self.duplicates.load(Ordering::SeqCst)
    }

    /// Requests the layer rejected (bad signature, stale, too large, in progress…).
    #[must_use]
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::SeqCst)
    }

    /// Handler calls that ran to completion (answered 200), in all.
    #[must_use]
    pub fn handler_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Handler calls started, including those cancelled because the sender's connection
    /// went away while they ran (hyper then drops the request).
    #[must_use]
    pub fn handler_starts(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// From now on, each handler call takes `delay` before it completes (and counts).
    pub fn set_handler_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// How many distinct labels reached the handler.
    #[must_use]
    pub fn distinct(&self) -> usize {
        self.handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The most handler calls any one label got (1 means exactly once).
    #[must_use]
    pub fn max_calls_per_label(&self) -> usize {
        self.handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Handler calls per label.
    #[must_use]
    pub fn per_label(&self) -> HashMap<String, usize> {
        self.handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A hyper HTTP/1.1 server on 127.0.0.1:0 running `WebhookLayer` and a counting handler.
/// Stopped when dropped.
#[derive(Debug)]
pub struct CountingReceiver {
    server: HttpServer,
    tally: Arc<Tally>,
}

impl CountingReceiver {
    /// Starts the receiver; `label` names each handler call.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(
        layer: WebhookLayer,
        label: impl Fn(&VerifiedWebhook) -> String + Send + Sync + 'static,
    ) -> Self {
        let tally = Arc::new(Tally::default());
        let service = counting_service(layer, Arc::new(label), Arc::clone(&tally));
        let server = HttpServer::start(TowerToHyperService::new(service)).await;
        Self { server, tally }
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:<port>/webhook`.
    #[must_use]
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// What it has seen.
    #[must_use]
    pub fn tally(&self) -> &Tally {
        &self.tally
    }
}

/// The service stack of a [`CountingReceiver`], usable behind other servers (such as
/// [`FaultyServer`](crate::faults::FaultyServer)): counts the request, runs the layer, counts
/// handler calls by `label`.
pub fn counting_service<B>(
    layer: WebhookLayer,
    label: Arc<Labeler>,
    tally: Arc<Tally>,
) -> impl Service<
    Request<B>,
    Response = Response<webhook_receiver::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<webhook_receiver::BoxError>,
{
    let observed = Arc::clone(&tally);
    let layer = layer.observe(move |seen| match seen {
        Observation::Duplicate(_) => {
            observed.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        Observation::Rejected(_) => {
            observed.rejected.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    });
    let handled = Arc::clone(&tally);
    let handler = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let handled = Arc::clone(&handled);
        let label = Arc::clone(&label);
        async move {
            if let Some(webhook) = request.extensions().get::<VerifiedWebhook>() {
                handled.started.fetch_add(1, Ordering::SeqCst);
                let delay = handled.delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                // Counted last, so that a call cancelled while it waited does not count:
                // the count moves together with the dedup key's completion.
                let name = label(webhook);
                *handled
                    .handled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(name)
                    .or_default() += 1;
                handled.calls.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"handled"))))
        }
    });
    let inner = layer.layer(handler);
    tower::service_fn(move |request: Request<B>| {
        tally.requests.fetch_add(1, Ordering::SeqCst);
        inner.clone().oneshot(request)
    })
}

/// The entity an event-style delivery is about: `data.n` of the event (as published by the
/// crash and fault tests), else its dedup key.
#[must_use]
pub fn event_entity(webhook: &VerifiedWebhook) -> String {
    webhook
        .event()
        .and_then(|event| event.data.get("n"))
        .map_or_else(|| webhook.dedup_key().to_owned(), ToString::to_string)
}
