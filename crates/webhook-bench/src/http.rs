//! The HTTP side of the load benchmark: hyper 1 servers on 127.0.0.1, a plain hyper client,
//! and the [`Tracker`] that records when each numbered request was sent and first received.
//!
//! ```
//! use webhook_bench::http::Tracker;
//!
//! let tracker = Tracker::new(10);
//! tracker.mark_sent(3);
//! assert!(tracker.mark_received(3));
//! assert!(!tracker.mark_received(3), "the second copy is a duplicate");
//! assert_eq!((tracker.unique(), tracker.duplicates()), (1, 1));
//! ```

use std::convert::Infallible;
use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::payload;
use crate::stats::Histogram;

/// When numbered requests were sent and first received, on one monotonic clock.
///
/// Sequence numbers index fixed arrays (allocated up front, 16 bytes per number), so
/// marking is two atomic operations. A window semaphore, when set, gets a permit back for
/// every first receipt: the end-to-end scenario's publishers keep a bounded number of
/// events outstanding that way.
#[derive(Debug)]
pub struct Tracker {
    epoch: Instant,
    sent: Box<[AtomicU64]>,
    received: Box<[AtomicU64]>,
    unique: AtomicU64,
    duplicates: AtomicU64,
    window: Option<Arc<Semaphore>>,
}

impl Tracker {
    /// A tracker for sequence numbers `0..capacity`.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::build(capacity, None)
    }

    /// A tracker that returns a permit to `window` on every first receipt.
    #[must_use]
    pub fn with_window(capacity: usize, window: Arc<Semaphore>) -> Self {
        Self::build(capacity, Some(window))
    }

    fn build(capacity: usize, window: Option<Arc<Semaphore>>) -> Self {
        let zeros = || (0..capacity).map(|_| AtomicU64::new(0)).collect();
        Self {
            epoch: Instant::now(),
            sent: zeros(),
            received: zeros(),
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            window,
        }
    }

    /// Nanoseconds since the tracker was made (never 0, which means "not yet").
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Records that `seq` is being sent now.
    pub fn mark_sent(&self, seq: u64) {
        if let Some(slot) = slot(&self.sent, seq) {
            slot.store(self.now_ns(), Ordering::Relaxed);
        }
    }

    /// Records that `seq` arrived now; true the first time (false for a number beyond
    /// the capacity).
    pub fn mark_received(&self, seq: u64) -> bool {
        let Some(slot) = slot(&self.received, seq) else {
            return false;
        };
        let first = slot
            .compare_exchange(0, self.now_ns(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if first {
            self.unique.fetch_add(1, Ordering::Release);
            if let Some(window) = &self.window {
                window.add_permits(1);
            }
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        first
    }

    /// Distinct sequence numbers received.
    #[must_use]
    pub fn unique(&self) -> u64 {
        self.unique.load(Ordering::Acquire)
    }

    /// Repeated receipts (at-least-once redeliveries).
    #[must_use]
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Waits until at least `count` distinct numbers arrived, or `timeout` passed; returns
    /// whether they did.
    ///
    /// It polls every 10 ms rather than being notified, so that receiving costs the
    /// server nothing beyond two atomic operations.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.unique() < count {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The tracker reading of the latest first receipt (0 when nothing arrived).
    #[must_use]
    pub fn last_receipt_ns(&self) -> u64 {
        self.received
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Numbers first received in `[from_ns, to_ns)`, and the histogram of their
    /// sent-to-received latencies.
    #[must_use]
    pub fn received_between(&self, from_ns: u64, to_ns: u64) -> (u64, Histogram) {
        let histogram = Histogram::new();
        let mut count = 0;
        for (sent, received) in self.sent.iter().zip(self.received.iter()) {
            let received = received.load(Ordering::Relaxed);
            if received >= from_ns && received < to_ns && received != 0 {
                count += 1;
                let sent = sent.load(Ordering::Relaxed);
                if sent != 0 && sent <= received {
                    histogram.record_nanos(received - sent);
                }
            }
        }
        (count, histogram)
    }
}

fn slot(slots: &[AtomicU64], seq: u64) -> Option<&AtomicU64> {
    slots.get(usize::try_from(seq).ok()?)
}

/// A server on a background task; stops (with every connection) when dropped.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// The URL of its `/webhook` path.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }
}

/// Serves HTTP/1.1 with `service` on `listener` until the returned [`Server`] is dropped.
///
/// # Panics
/// When the listener has no local address (it always has once bound).
pub fn serve<S, B>(listener: TcpListener, service: S) -> Server
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    #[allow(clippy::expect_used)]
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let task = tokio::spawn(async move {
        // Dropping the set (when this task is aborted) aborts every connection.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Server { addr, task }
}

/// A server that reads each body, records its sequence number (if it has one) in `tracker`
/// and answers 200 with an empty body: the receiver of the end-to-end and backlog scenarios, the same
/// for the sender and for its baseline.
#[must_use]
pub fn counting_server(listener: TcpListener, tracker: Arc<Tracker>) -> Server {
    let service = service_fn(move |request: Request<Incoming>| {
        let tracker = Arc::clone(&tracker);
        async move {
            if let Ok(body) = request.into_body().collect().await {
                if let Some(seq) = payload::find_seq(&body.to_bytes()) {
                    tracker.mark_received(seq);
                }
            }
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    serve(listener, service)
}

/// A listener on 127.0.0.1 with a free port.
///
/// # Errors
/// When no port can be bound.
pub async fn loopback_listener() -> std::io::Result<TcpListener> {
    TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await
}

/// The load generator's client: a plain hyper-util pooled HTTP/1.1 client.
pub type PlainClient = Client<HttpConnector, Full<Bytes>>;

/// A plain hyper client keeping up to `connections` idle connections per host.
#[must_use]
pub fn plain_client(connections: usize) -> PlainClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build(connector)
}

/// A `POST` of `body` to `uri` as `application/json`, as every load generator sends it.
#[must_use]
pub fn json_post(uri: &http::Uri, body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request
}

/// Sends `request`, reads the whole response and returns its status.
///
/// # Errors
/// When the request fails or the body breaks.
pub async fn exchange(
    client: &PlainClient,
    request: Request<Full<Bytes>>,
) -> Result<http::StatusCode, Box<dyn StdError + Send + Sync>> {
    Ok(fetch(client, request).await?.0)
}

/// Sends `request` and returns the status and the whole body.
///
/// # Errors
/// When the request fails or the body breaks.
pub async fn fetch(
    client: &PlainClient,
    request: Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes), Box<dyn StdError + Send + Sync>> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
