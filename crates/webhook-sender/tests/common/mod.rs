//! Shared test helpers: a recording hyper server on 127.0.0.1 with programmable replies,
//! sender builders, signature verification and bounded waits.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::JoinHandle;
use webhook_core::{TrustedKeys, Verified};
use webhook_sender::store::MemoryStore;
use webhook_sender::{AllowList, Builder, Outcome, Sender};

/// How long any bounded wait in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the server answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub gate: Option<Arc<Semaphore>>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            gate: None,
            body: String::new(),
        }
    }

    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Answers only after this long.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Never answers (until the server stops).
    pub fn hang() -> Self {
        Self::ok().after(Duration::from_secs(3600))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    /// Waits for a permit of `gate` before answering.
    pub fn gated(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub index: usize,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub unix: i64,
}

type Responder = dyn Fn(&Recorded) -> Reply + Send + Sync;

struct State {
    requests: Mutex<Vec<Recorded>>,
    arrived: Notify,
    responder: Box<Responder>,
    count: AtomicUsize,
}

/// A hyper server (HTTP/1.1 and HTTP/2) on 127.0.0.1 that records every request.
/// Stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server answering every request with `responder(request)`.
    pub async fn start(responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_inner(Box::new(responder), None).await
    }

    /// A server that always answers 200.
    pub async fn ok() -> Self {
        Self::start(|_| Reply::ok()).await
    }

    /// A server answering with `replies[i]` to the i-th request, then 200.
    pub async fn sequence(replies: Vec<Reply>) -> Self {
        Self::start(move |r| replies.get(r.index).cloned().unwrap_or_else(Reply::ok)).await
    }

    /// As [`TestServer::start`], over TLS.
    pub async fn start_tls(
        responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self::start_inner(Box::new(responder), Some(tls)).await
    }

    async fn start_inner(
        responder: Box<Responder>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            responder,
            count: AtomicUsize::new(0),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Waits (at most [`WAIT`]) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.state.arrived.notified();
            if self.len() >= n {
                return self.requests();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} requests, got {}",
                self.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let index = state.count.fetch_add(1, Ordering::SeqCst);
    let recorded = Recorded {
        index,
        version: parts.version,
        headers: parts.headers,
        body,
        started: Instant::now(),
        finished: None,
        unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let reply = (state.responder)(&recorded);
    state.requests.lock().unwrap().push(recorded);
    state.arrived.notify_waiters();
    if let Some(gate) = &reply.gate {
        let _ = gate.acquire().await.map(|permit| permit.forget());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    {
        let mut requests = state.requests.lock().unwrap();
        if let Some(r) = requests.iter_mut().find(|r| r.index == index) {
            r.finished = Some(Instant::now());
        }
    }
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            http::HeaderName::try_from(name).unwrap(),
            http::HeaderValue::try_from(value).unwrap(),
        );
    }
    Ok(response)
}

/// A builder for tests: memory store, loopback allowed, quick polling, short shutdown.
pub fn builder() -> Builder {
    Sender::builder()
        .store(MemoryStore::new())
        .allow_private_networks(AllowList::loopback())
        .idle_poll(Duration::from_millis(50))
        .shutdown_timeout(Duration::from_secs(2))
}

/// A two-worker multi-thread runtime, for tests that drop a runtime (and every task on
/// it) to kill a sender, or keep a server on its own runtime so it outlives one.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Verifies a recorded request as a receiver would, now.
pub fn verify(
    trusted: &TrustedKeys,
    request: &Recorded,
) -> Result<Verified, webhook_core::VerifyError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    trusted.verify(
        &request.headers,
        &request.body,
        now,
        webhook_core::timestamp::DEFAULT_TOLERANCE,
    )
}

/// Receives `n` outcomes (at most [`WAIT`]).
pub async fn outcomes(receiver: &mut broadcast::Receiver<Outcome>, n: usize) -> Vec<Outcome> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, receiver.recv()).await {
            Ok(Ok(outcome)) => got.push(outcome),
            Ok(Err(error)) => panic!("outcome stream: {error}"),
            Err(_) => panic!("timed out waiting for {n} outcomes, got {got:?}"),
        }
    }
    got
}

/// Polls `check` every 10 ms until it is true (at most [`WAIT`]).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Counts requests by the value of a JSON field of the body (`data.id` style paths).
pub fn count_by(requests: &[Recorded], pointer: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in requests {
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let key = json
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        *counts.entry(key).or_default() += 1;
    }
    counts
}
