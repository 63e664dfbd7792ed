//! Support for the tests of several nodes on one shared store: throwaway `redis-server`s,
//! sender nodes on a shared store ([`Cluster`]: Redis, or Postgres with the `postgres`
//! feature), and a real receiver (`webhook_receiver::WebhookLayer`) that records what its
//! handler saw after verification and dedup.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::{Layer as _, ServiceExt as _};
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_receiver::dedup::{Begin, Claim, DedupFuture, DedupStore};
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};
use webhook_redis::RedisConfig;
use webhook_sender::store::RedisStore;
use webhook_sender::{
    Builder, EndpointConfig, EndpointId, OutcomeStatus, Publish, PublishReceipt, Sender,
};
use webhook_testkit::RedisServer;

/// The organization's webhook secret in these tests.
pub const SECRET: &str = "redis-test-org-secret";

/// Starts a throwaway `redis-server` (with the append-only file when `aof`).
pub async fn redis_server(aof: bool) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        if aof {
            RedisServer::start_with_aof()
        } else {
            RedisServer::start()
        }
    })
    .await
    .unwrap()
}

/// Quick timeouts and reconnection, so outages show within a second.
pub fn redis_config(server: &RedisServer, prefix: &str) -> RedisConfig {
    RedisConfig::new(server.url())
        .prefix(prefix)
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(1_000))
        .reconnect_max_delay(Duration::from_millis(100))
}

/// Where several nodes share one store.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// One Redis and key prefix.
    Redis(RedisConfig),
    /// One Postgres database and schema.
    #[cfg(feature = "postgres")]
    Postgres { url: String, schema: String },
}

impl From<&RedisConfig> for Cluster {
    fn from(config: &RedisConfig) -> Self {
        Self::Redis(config.clone())
    }
}

/// Connects a store to `cluster` (as `consumer` in Redis's ready stream's group) and
/// starts a node on it.
pub async fn start_node(cluster: impl Into<Cluster>, consumer: &str, lease: Duration) -> Sender {
    start_node_with(cluster, consumer, lease, |builder| builder).await
}

/// As [`start_node`], with `tune` applied to the node's builder (`common::builder` with
/// the store, the lease and room for every outcome).
pub async fn start_node_with(
    cluster: impl Into<Cluster>,
    consumer: &str,
    lease: Duration,
    tune: impl FnOnce(Builder) -> Builder,
) -> Sender {
    let builder = crate::common::builder();
    let builder = match cluster.into() {
        Cluster::Redis(config) => builder.store(
            RedisStore::connect(&config)
                .await
                .unwrap()
                .consumer(consumer),
        ),
        #[cfg(feature = "postgres")]
        Cluster::Postgres { url, schema } => {
            let config = webhook_sender::store::PostgresConfig::new(url).schema(schema);
            let store = webhook_sender::store::PostgresStore::connect(&config);
            builder.store(store.await.unwrap())
        }
    };
    let builder = builder.lease(lease).outcome_capacity(1 << 16);
    tune(builder).build().await.unwrap()
}

/// Nodes `a` and `b`: `endpoint` is configured through A before B starts (B loads it).
pub async fn two_nodes(
    cluster: impl Into<Cluster>,
    lease: Duration,
    endpoint: EndpointConfig,
) -> (Sender, Sender) {
    let cluster = cluster.into();
    let a = start_node(cluster.clone(), "a", lease).await;
    configure(&a, endpoint).await;
    let b = start_node(cluster, "b", lease).await;
    (a, b)
}

/// Sets the organization's secret to [`SECRET`] (which the [`Receiver`] trusts) and
/// creates `endpoint`.
pub async fn configure(sender: &Sender, endpoint: EndpointConfig) -> EndpointId {
    sender
        .organizations()
        .set_secret("org", HmacSecret::from_utf8(SECRET).unwrap())
        .await
        .unwrap();
    sender.endpoints().create(endpoint).await.unwrap()
}

/// The `i`-th event: a confirmed transaction `tx-{i}`.
pub fn event(i: usize) -> Publish {
    Publish::event(
        "org",
        EventType::TransactionConfirmed,
        format!("tx-{i}"),
        json!({"i": i}),
    )
}

/// Publishes through `sender`, retrying (for at most `common::WAIT`) while the store is
/// unreachable: Redis or Postgres restarting, or the node reconnecting. Any other error
/// fails.
pub async fn publish_until_reachable(sender: &Sender, publish: Publish) -> PublishReceipt {
    let deadline = Instant::now() + crate::common::WAIT;
    loop {
        match sender.publish(publish.clone()).await {
            Ok(receipt) => return receipt,
            Err(error) => {
                assert!(error.is_store(), "{error}");
                assert!(Instant::now() < deadline, "store unreachable: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Counts a node's delivered outcomes in the background.
pub fn count_delivered(sender: &Sender) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let mut outcomes = sender.outcomes();
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok(outcome) = outcomes.recv().await {
            if outcome.status == OutcomeStatus::Delivered {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    count
}

/// A dedup store that remembers nothing, so that the handler sees every delivery
/// (identical events within a minute share an idempotency key, which a real store would
/// deduplicate: tests of ordering want to see each of them).
#[derive(Debug)]
pub struct NoDedup;

impl DedupStore for NoDedup {
    fn begin<'a>(&'a self, _key: &'a str, _lease: Duration) -> DedupFuture<'a, Begin> {
        Box::pin(std::future::ready(Ok(Begin::New(Claim::new("-")))))
    }

    fn complete<'a>(&'a self, _: &'a str, _: &'a Claim, _: Duration) -> DedupFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, _: &'a str, _: &'a Claim) -> DedupFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What the receiver's handler saw: one verified, deduplicated delivery.
#[derive(Debug, Clone)]
pub struct Handled {
    pub key: String,
    pub data: serde_json::Value,
    pub started: Instant,
    pub finished: Instant,
}

/// How the handler answers a delivery (by its event data), and after how long.
pub type Answer = dyn Fn(&serde_json::Value) -> (StatusCode, Duration) + Send + Sync;

struct State {
    handled: Mutex<Vec<Handled>>,
    requests: AtomicUsize,
    arrived: Notify,
    answer: Box<Answer>,
}

/// A receiver on 127.0.0.1: hyper serving `WebhookLayer` (event style, [`SECRET`]) in
/// front of a recording handler. Stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver deduplicating with `dedup`, answering with `answer`.
    pub async fn start(
        dedup: impl DedupStore,
        answer: impl Fn(&serde_json::Value) -> (StatusCode, Duration) + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(State {
            handled: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            arrived: Notify::new(),
            answer: Box::new(answer),
        });
        let handler_state = Arc::clone(&state);
        let handler = tower::service_fn(move |request: Request<Full<Bytes>>| {
            let state = Arc::clone(&handler_state);
            async move {
                let started = Instant::now();
                let webhook = request.extensions().get::<VerifiedWebhook>().cloned();
                let webhook = webhook.expect("the layer hands verified webhooks only");
                let data = webhook.event().map(|e| e.data.clone()).unwrap_or_default();
                let (status, delay) = (state.answer)(&data);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if status.is_success() {
                    state.handled.lock().unwrap().push(Handled {
                        key: webhook.dedup_key().to_owned(),
                        data,
                        started,
                        finished: Instant::now(),
                    });
                    state.arrived.notify_waiters();
                }
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        });
        let verifier = Verifier::event_secrets([SECRET]).unwrap();
        let service = WebhookLayer::new(verifier)
            .dedup_store(dedup)
            .layer(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                let state = Arc::clone(&accept_state);
                connections.spawn(async move {
                    let hyper_service =
                        hyper::service::service_fn(move |request: Request<Incoming>| {
                            state.requests.fetch_add(1, Ordering::SeqCst);
                            service.clone().oneshot(request)
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), hyper_service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// Every delivery the handler accepted, in order.
    pub fn handled(&self) -> Vec<Handled> {
        self.state.handled.lock().unwrap().clone()
    }

    /// How many the handler accepted.
    pub fn handled_len(&self) -> usize {
        self.state.handled.lock().unwrap().len()
    }

    /// Every HTTP request that arrived, duplicates and rejections included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Accepted deliveries per dedup key.
    pub fn per_key(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for handled in self.state.handled.lock().unwrap().iter() {
            *counts.entry(handled.key.clone()).or_default() += 1;
        }
        counts
    }

    /// Waits until the handler accepted `n` deliveries, at most `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            if self.handled_len() >= n {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} handled deliveries, got {} ({} requests)",
                self.handled_len(),
                self.requests()
            );
            // Bounded: woken by every accepted delivery, and at least every 100 ms.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), arrived).await;
        }
    }
}
