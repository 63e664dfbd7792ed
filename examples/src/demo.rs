//! The product in one minute: a wallet platform's story delivered to three receivers, one
//! per wire style, over the embedded durable store.
//!
//! [`run`] starts three receivers on 127.0.0.1 (event style with HMAC, domain style with
//! ECDSA P-256, Standard Webhooks), opens a sender on a redb file in a temporary directory,
//! registers one endpoint per style for one organization, and replays a realistic story
//! per customer: customer created, PIN set, wallet CREATED → PROVISIONING → PROVISIONED, a
//! transaction from REQUESTED through an approval to CONFIRMED, one REJECTED, a customer
//! locked out and recovered. The receivers fail some first attempts so that retries show;
//! one event is published twice within a minute so dedup swallows the second; one forged
//! request is refused; and per customer one transaction update stamped before the
//! transaction's CONFIRMED arrives after it, as when an older update's retries outlast a
//! newer one's: the domain receiver holds the latest update of each resource and skips
//! the late one because it does not supersede what it holds
//! ([`Supersedes`](webhook_core::domain::Supersedes)). The [`Summary`] has per-endpoint
//! numbers, and `published = delivered + failed` holds for each.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tower::Layer as _;
use webhook_core::domain::{Domain, Resource, Supersedes as _};
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, HmacSecret};
use webhook_core::{Style, TrustedKeys};
use webhook_receiver::{Observation, VerifiedWebhook, Verifier, WebhookLayer};
use webhook_sender::store::RedbStore;
use webhook_sender::{
    AllowList, DeliveryId, DeliveryStatus, EndpointConfig, EndpointId, Publish, RetryPolicy, Sender,
};

/// How the demo runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How many customers live through the story. Default is 3.
    pub scale: usize,
    /// Print progress lines on stderr while running.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scale: 3,
            progress: true,
        }
    }
}

/// One endpoint's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSummary {
    /// The endpoint's wire style.
    pub style: &'static str,
    /// Deliveries queued for it.
    pub published: u64,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// Deliveries that needed more than one attempt.
    pub retried: u64,
    /// Verified requests the receiver answered as duplicates without calling the handler.
    pub deduplicated: u64,
    /// Requests the receiver's handler accepted (2xx).
    pub handled: u64,
    /// Requests the receiver refused (bad signature, stale, malformed).
    pub rejected: u64,
    /// Handled domain updates older than the update of the same resource the receiver
    /// already held: acknowledged but not applied (seed 001: do not rely on order).
    pub stale: u64,
    /// Median publish-to-2xx time, milliseconds.
    pub p50_ms: u64,
    /// 99th percentile publish-to-2xx time, milliseconds.
    pub p99_ms: u64,
}

/// The demo's result.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One row per endpoint: event, domain, standard.
    pub endpoints: Vec<EndpointSummary>,
    /// Events published (each fans out to the endpoints that subscribe).
    pub events: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Summary {
    /// Whether, for every endpoint, `published = delivered + failed` (the sender's
    /// records) and `delivered = handled + deduplicated` (what the sender counted as
    /// delivered is what the receiver answered with 2xx: its handler, or its dedup).
    #[must_use]
    pub fn adds_up(&self) -> bool {
        self.endpoints.iter().all(|e| {
            e.published == e.delivered + e.failed && e.delivered == e.handled + e.deduplicated
        })
    }

    /// The summary as a markdown table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| endpoint | published | delivered | failed | retried | deduplicated | rejected | stale, skipped | p50 ms | p99 ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for e in &self.endpoints {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                e.style,
                e.published,
                e.delivered,
                e.failed,
                e.retried,
                e.deduplicated,
                e.rejected,
                e.stale,
                e.p50_ms,
                e.p99_ms
            ));
        }
        out
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct ReceiverStats {
    handled: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    /// Domain updates skipped as older than the one held.
    stale: AtomicU64,
    /// Dedup keys this receiver has seen.
    seen_keys: Mutex<HashSet<String>>,
    /// The latest update of each domain resource, by `DOMAIN:id`: what a customer's
    /// database would hold.
    held: Mutex<HashMap<String, Resource>>,
}

impl ReceiverStats {
    /// Applies a verified domain update unless it is older than the one held; returns
    /// whether it was applied. Either way the request is acknowledged: an old update is
    /// not an error, and answering 4xx/5xx would only make the sender retry it.
    fn apply(&self, kind: &str, resource: &Resource) -> bool {
        let Some(id) = resource.id() else {
            return true;
        };
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let key = format!("{kind}:{id}");
        if held
            .get(&key)
            .is_some_and(|current| !resource.supersedes(current))
        {
            self.stale.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        held.insert(key, resource.clone());
        true
    }
}

/// A receiver on 127.0.0.1 that verifies and dedups, and fails the first attempt of one
/// delivery in four with a 503, so that the sender's retries show.
async fn start_receiver(keys: TrustedKeys) -> std::io::Result<(SocketAddr, Arc<ReceiverStats>)> {
    let stats = Arc::new(ReceiverStats::default());
    let observed = Arc::clone(&stats);
    let layer = WebhookLayer::new(Verifier::new(keys)).observe(move |seen| match seen {
        Observation::Duplicate(_) => {
            observed.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        // 4xx only: a 503 for a copy that arrived while the first was being handled is
        // back-pressure, not a refusal.
        Observation::Rejected(rejection) if rejection.status().is_client_error() => {
            observed.rejected.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    });
    let handler_stats = Arc::clone(&stats);
    let handler = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let stats = Arc::clone(&handler_stats);
        async move {
            let webhook = request.extensions().get::<VerifiedWebhook>();
            let key = webhook
                .map(|w| w.dedup_key().to_owned())
                .unwrap_or_default();
            // The first attempt of every fourth new delivery fails (the first one included).
            let first_time = {
                let mut seen = stats
                    .seen_keys
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                seen.insert(key) && seen.len() % 4 == 1
            };
            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
            if first_time {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            } else {
                if let Some((envelope, resource)) = webhook.and_then(VerifiedWebhook::domain) {
                    stats.apply(envelope.domain.as_str(), resource);
                }
                stats.handled.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let service = layer.layer(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, stats))
}

/// Resource timestamps with microseconds that never repeat, so that each status update
/// has its own `updatedAt` (the domain style's dedup key is `id@updatedAt`).
struct UpdateClock(AtomicU64);

impl UpdateClock {
    fn next(&self) -> time::OffsetDateTime {
        let step = self.0.fetch_add(1, Ordering::Relaxed);
        time::OffsetDateTime::now_utc() + Duration::from_micros(step)
    }
}

/// Publishes events and remembers which deliveries went where.
struct Publisher<'a> {
    sender: &'a Sender,
    org: &'a str,
    deliveries: Vec<DeliveryId>,
    events: u64,
    clock: UpdateClock,
}

impl Publisher<'_> {
    async fn event(
        &mut self,
        event_type: EventType,
        entity: &str,
        data: Value,
    ) -> Result<(), webhook_sender::Error> {
        let receipt = self
            .sender
            .publish(Publish::event(self.org, event_type, entity, data))
            .await?;
        self.deliveries
            .extend(receipt.deliveries.iter().map(|d| d.id));
        self.events += 1;
        Ok(())
    }

    /// Publishes a resource update stamped now; returns its `updatedAt`.
    async fn resource(
        &mut self,
        domain: Domain,
        resource: Value,
    ) -> Result<time::OffsetDateTime, webhook_sender::Error> {
        let updated_at = self.clock.next();
        self.resource_at(domain, resource, updated_at).await?;
        Ok(updated_at)
    }

    /// Publishes a resource update stamped `updated_at`.
    async fn resource_at(
        &mut self,
        domain: Domain,
        mut resource: Value,
        updated_at: time::OffsetDateTime,
    ) -> Result<(), webhook_sender::Error> {
        resource["updatedAt"] = Value::from(
            updated_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        );
        let receipt = self
            .sender
            .publish(Publish::domain(self.org, domain, resource))
            .await?;
        self.deliveries
            .extend(receipt.deliveries.iter().map(|d| d.id));
        self.events += 1;
        Ok(())
    }
}

const CREATED_AT: &str = "2025-05-08T14:25:00Z";

/// One customer's story.
async fn story(p: &mut Publisher<'_>, n: usize) -> Result<(), webhook_sender::Error> {
    let customer = format!("cus-{n}");
    let wallet = format!("wal-{n}");
    let email = format!("customer{n}@example.com");
    p.event(EventType::CustomerCreated, &customer, json!({"id": customer, "email": email, "internalRiskScore": 12, "metadata": {"source": "signup"}})).await?;
    p.event(
        EventType::CustomerPinSetup,
        &customer,
        json!({"id": customer}),
    )
    .await?;

    for status in ["CREATED", "PROVISIONING", "PROVISIONED"] {
        let resource = json!({"id": wallet, "organizationId": p.org, "status": status, "blockchain": "ETHEREUM", "createdAt": CREATED_AT});
        p.resource(Domain::Wallet, resource).await?;
    }
    p.event(
        EventType::WalletCreated,
        &wallet,
        json!({"id": wallet, "customerId": customer, "blockchain": "ETHEREUM"}),
    )
    .await?;

    let tx = format!("tx-{n}-1");
    let transaction = |status: &str| {
        json!({"id": tx, "walletId": wallet, "status": status, "blockchain": "ETHEREUM",
               "destination": {"address": "0x742d35Cc6634C0532925a3b844Bc9e7595f2E8Ba"},
               "asset": {"symbol": "ETH"}, "qty": "1.500000000000000000", "createdAt": CREATED_AT})
    };
    p.event(
        EventType::TransactionCreated,
        &tx,
        json!({"id": tx, "qty": "1.500000000000000000"}),
    )
    .await?;
    for status in [
        "REQUESTED",
        "POLICY_CHECK_PENDING",
        "POLICY_CHECK_PASSED",
        "APPROVAL_CHECK_PENDING",
    ] {
        p.resource(Domain::Transaction, transaction(status)).await?;
    }
    let approval = format!("apr-{n}");
    for (set, answer) in [("PENDING", "PROCESSING"), ("MET", "APPROVED")] {
        let resource = json!({"id": approval, "transactionId": tx, "status": set, "createdAt": CREATED_AT,
                              "approvals": [{"approverId": "officer-1", "status": answer}]});
        p.resource(Domain::Approval, resource).await?;
    }
    for status in [
        "APPROVAL_CHECK_PASSED",
        "COMPILATION_PENDING",
        "COMPILED",
        "SIGNATURE_PENDING",
        "SIGNED",
    ] {
        p.resource(Domain::Transaction, transaction(status)).await?;
    }
    p.event(EventType::TransactionSigned, &tx, json!({"id": tx}))
        .await?;
    for status in ["PUBLISH_PENDING", "PUBLISHED"] {
        p.resource(Domain::Transaction, transaction(status)).await?;
    }
    p.event(
        EventType::TransactionBroadcast,
        &tx,
        json!({"id": tx, "hash": "0x8a4c5e9f"}),
    )
    .await?;
    let pending_at = p
        .resource(Domain::Transaction, transaction("CONFIRMATION_PENDING"))
        .await?;
    p.resource(Domain::Transaction, transaction("CONFIRMED"))
        .await?;
    // A late, older update: stamped after CONFIRMATION_PENDING but before CONFIRMED
    // (their stamps are at least 1 µs apart), delivered after CONFIRMED. The receiver
    // holds CONFIRMED, recognises the update as older and skips it.
    p.resource_at(
        Domain::Transaction,
        transaction("CONFIRMATION_PENDING"),
        pending_at + Duration::from_nanos(1),
    )
    .await?;
    p.event(
        EventType::TransactionConfirmed,
        &tx,
        json!({"id": tx, "hash": "0x8a4c5e9f"}),
    )
    .await?;

    let rejected = format!("tx-{n}-2");
    p.event(
        EventType::TransactionCreated,
        &rejected,
        json!({"id": rejected, "qty": "250000.0"}),
    )
    .await?;
    for status in ["REQUESTED", "POLICY_CHECK_PENDING", "REJECTED"] {
        let resource = json!({"id": rejected, "walletId": wallet, "status": status, "qty": "250000.0", "createdAt": CREATED_AT});
        p.resource(Domain::Transaction, resource).await?;
    }
    p.event(
        EventType::TransactionFailed,
        &rejected,
        json!({"id": rejected, "reason": "policy: amount over limit"}),
    )
    .await?;

    p.event(
        EventType::CustomerLockedOut,
        &customer,
        json!({"id": customer, "failedAttempts": 5}),
    )
    .await?;
    p.event(
        EventType::CustomerRecoveryInitiated,
        &customer,
        json!({"id": customer}),
    )
    .await?;
    p.event(
        EventType::CustomerRecoveryCompleted,
        &customer,
        json!({"id": customer}),
    )
    .await?;
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs the demo.
///
/// # Errors
/// When a server cannot bind, the store cannot open, or the deliveries do not finish
/// within two minutes.
pub async fn run(options: Options) -> Result<Summary, Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let say = |line: String| {
        if options.progress {
            eprintln!("{line}");
        }
    };
    let org = "org-acme";
    let event_secret = HmacSecret::from_utf8("acme-webhook-secret")?;
    let (domain_key, _) = EcdsaSigningKey::generate()?;
    let standard_secret = HmacSecret::generate()?;

    let receivers = [
        start_receiver(TrustedKeys::Event(vec![event_secret.clone()])).await?,
        start_receiver(TrustedKeys::Domain(vec![domain_key.public_key()])).await?,
        start_receiver(TrustedKeys::parse(
            Style::Standard,
            [standard_secret.to_whsec().as_str()],
        )?)
        .await?,
    ];
    say(format!(
        "receivers: event http://{} · domain http://{} · standard http://{}",
        receivers[0].0, receivers[1].0, receivers[2].0
    ));

    let dir = tempfile::tempdir()?;
    let store = RedbStore::open(dir.path().join("webhooks.redb"))?;
    let sender = Sender::builder()
        .store(store)
        .allow_private_networks(AllowList::loopback())
        .workers(32)
        .build()
        .await?;
    say(format!(
        "sender: embedded store at {}",
        dir.path().join("webhooks.redb").display()
    ));
    // The seed 001 schedule (0, 60, 120 … 5400 s) scaled down 600x so the demo is short.
    let retry =
        RetryPolicy::schedule([0, 100, 200, 300, 530, 800, 1400, 2500].map(Duration::from_millis));
    sender.organizations().set_secret(org, event_secret).await?;
    let url = |addr: SocketAddr| format!("http://{addr}/webhooks");
    let all_types: Vec<EventType> = EventType::KNOWN.to_vec();
    let endpoints: [EndpointId; 3] = [
        sender
            .endpoints()
            .create(
                EndpointConfig::event(org, url(receivers[0].0), all_types.clone())
                    .retry(retry.clone()),
            )
            .await?,
        sender
            .endpoints()
            .create(
                EndpointConfig::domain(
                    org,
                    url(receivers[1].0),
                    domain_key,
                    Domain::KNOWN.to_vec(),
                )
                .retry(retry.clone()),
            )
            .await?,
        sender
            .endpoints()
            .create(
                EndpointConfig::standard(org, url(receivers[2].0), standard_secret, all_types)
                    .retry(retry),
            )
            .await?,
    ];

    let mut publisher = Publisher {
        sender: &sender,
        org,
        deliveries: Vec::new(),
        events: 0,
        clock: UpdateClock(AtomicU64::new(0)),
    };
    for n in 1..=options.scale.max(1) {
        story(&mut publisher, n).await?;
        say(format!(
            "published customer {n}/{}: {} events so far",
            options.scale.max(1),
            publisher.events
        ));
    }
    // The same event again within a minute: same idempotency key, so the event-style
    // receiver answers it as a duplicate without calling its handler.
    publisher
        .event(
            EventType::WalletCreated,
            "wal-1",
            json!({"id": "wal-1", "customerId": "cus-1", "blockchain": "ETHEREUM"}),
        )
        .await?;
    // A forged request: signed with a secret the platform never had.
    let refused = post_forged(receivers[0].0).await?;
    say(format!("forged request answered {refused}"));

    let deadline = Instant::now() + Duration::from_secs(120);
    let total = publisher.deliveries.len();
    let mut records = Vec::with_capacity(total);
    loop {
        records.clear();
        for id in &publisher.deliveries {
            if let Some(delivery) = sender.delivery(&org.into(), *id).await? {
                records.push(delivery);
            }
        }
        let done = records.iter().filter(|d| d.status.is_terminal()).count();
        let retrying = records
            .iter()
            .filter(|d| !d.status.is_terminal() && !d.attempts.is_empty())
            .count();
        say(format!(
            "deliveries: {done}/{total} finished, {retrying} waiting to retry"
        ));
        if done == total {
            break;
        }
        if Instant::now() > deadline {
            return Err(
                format!("only {done} of {total} deliveries finished within two minutes").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sender.shutdown().await?;

    let mut summary = Summary {
        events: publisher.events,
        elapsed: started.elapsed(),
        ..Summary::default()
    };
    for ((endpoint, (_, stats)), style) in endpoints
        .iter()
        .zip(&receivers)
        .zip(["event", "domain", "standard"])
    {
        let mine: Vec<_> = records.iter().filter(|d| d.endpoint == *endpoint).collect();
        let mut latencies: Vec<u64> = mine
            .iter()
            .filter(|d| d.status == DeliveryStatus::Delivered)
            .filter_map(|d| {
                d.finished_at_ms
                    .map(|end| u64::try_from(end - d.created_at_ms).unwrap_or(0))
            })
            .collect();
        latencies.sort_unstable();
        summary.endpoints.push(EndpointSummary {
            style,
            published: mine.len() as u64,
            delivered: mine
                .iter()
                .filter(|d| d.status == DeliveryStatus::Delivered)
                .count() as u64,
            failed: mine
                .iter()
                .filter(|d| d.status == DeliveryStatus::Failed)
                .count() as u64,
            retried: mine.iter().filter(|d| d.attempts.len() > 1).count() as u64,
            deduplicated: stats.duplicates.load(Ordering::Relaxed),
            handled: stats.handled.load(Ordering::Relaxed),
            rejected: stats.rejected.load(Ordering::Relaxed),
            stale: stats.stale.load(Ordering::Relaxed),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        });
    }
    Ok(summary)
}

/// Posts a request signed with a secret the receiver does not trust; returns its status.
async fn post_forged(addr: SocketAddr) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = r#"{"id":"evt-forged","type":"transaction.confirmed","idempotencyKey":"forged","organizationId":"org-acme","createdAt":"2025-05-08T14:30:00Z","data":{"id":"tx-999","qty":"1000000"}}"#;
    let keys = webhook_core::SigningKeys::Event(vec![
        HmacSecret::from_utf8("attacker").map_err(std::io::Error::other)?,
    ]);
    let signed = keys
        .sign(
            &webhook_core::Outgoing::new("evt-forged", body.as_bytes()),
            time::OffsetDateTime::now_utc(),
        )
        .map_err(std::io::Error::other)?;
    let mut request = format!(
        "POST /webhooks HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in &signed.headers {
        request.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}
