//! The operable sender through its public API, on every backend: message lookup, every
//! filter of every listing, a page walk under concurrent publishing, tenancy, delete,
//! pause and resume, partial updates, retention across a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Reply, TestServer, eventually};
use serde_json::json;
use time::OffsetDateTime;
use webhook_core::clock::ManualClock;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_core::{TrustedKeys, scheme};
use webhook_sender::store::{MemoryStore, RedbStore};
use webhook_sender::{
    AllowList, Builder, DeliveryFilter, DeliveryId, DeliveryStatus, EndpointConfig, EndpointUpdate,
    MessageFilter, OrganizationId, PageRequest, Publish, Retention, RetryPolicy, Sender,
    StatusFilter, TimeRange,
};

/// Which store a scenario runs on; holds what keeps it alive (a directory, a server).
enum Backend {
    Memory(MemoryStore),
    Redb(tempfile::TempDir),
    #[cfg(feature = "redis")]
    Redis(webhook_testkit::RedisServer, String),
    #[cfg(feature = "postgres")]
    Postgres(webhook_testkit::PostgresServer),
}

impl Backend {
    async fn memory() -> Self {
        Self::Memory(MemoryStore::new())
    }

    async fn redb() -> Self {
        Self::Redb(tempfile::tempdir().unwrap())
    }

    #[cfg(feature = "redis")]
    async fn redis() -> Self {
        let server = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
            .await
            .unwrap();
        let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        Self::Redis(server, prefix)
    }

    #[cfg(feature = "postgres")]
    async fn postgres() -> Self {
        let server = tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start)
            .await
            .unwrap();
        Self::Postgres(server)
    }

    /// A builder on this backend's store (the same data each time it is called, after the
    /// previous sender shut down).
    async fn builder(&self) -> Builder {
        let builder = Sender::builder()
            .allow_private_networks(AllowList::loopback())
            .idle_poll(Duration::from_millis(20))
            .shutdown_timeout(Duration::from_secs(2));
        match self {
            Self::Memory(store) => builder.store(store.clone()),
            Self::Redb(dir) => builder.store(RedbStore::open(dir.path().join("s.redb")).unwrap()),
            #[cfg(feature = "redis")]
            Self::Redis(server, prefix) => {
                let config =
                    webhook_sender::store::RedisConfig::new(server.url()).prefix(prefix.clone());
                let store = webhook_sender::store::RedisStore::connect(&config)
                    .await
                    .unwrap();
                builder.store(store)
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(server) => {
                let config = webhook_sender::store::PostgresConfig::new(server.url());
                let store = webhook_sender::store::PostgresStore::connect(&config)
                    .await
                    .unwrap();
                builder.store(store)
            }
        }
    }
}

macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Backend::memory().await).await; })*
        }
        mod redb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Backend::redb().await).await; })*
        }
        #[cfg(feature = "redis")]
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Backend::redis().await).await; })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Backend::postgres().await).await; })*
        }
    };
}

on_every_backend!(
    messages_and_every_filter_of_every_listing,
    a_page_walk_under_concurrent_publishing_sees_each_record_once,
    another_organizations_ids_are_not_found,
    delete_cancels_open_deliveries_and_nothing_is_sent_after_it,
    pause_loses_nothing_and_resume_sends_in_order,
    a_partial_update_keeps_the_rotation_overlap,
    retention_removes_old_records_and_keeps_the_rest_across_a_restart,
    organizations_and_api_tokens_survive_a_restart_and_revoke_at_once,
);

fn org(name: &str) -> OrganizationId {
    OrganizationId::from(name)
}

fn secret(text: &str) -> HmacSecret {
    HmacSecret::from_utf8(text).unwrap()
}

fn quick() -> RetryPolicy {
    RetryPolicy::schedule(vec![Duration::ZERO]).with_max_attempts(1)
}

fn event(org: &str, kind: EventType, entity: &str, n: usize) -> Publish {
    Publish::event(org, kind, entity, json!({"id": entity, "n": n}))
}

fn page(limit: usize) -> PageRequest {
    PageRequest::new(limit).unwrap()
}

/// Every item of a listing, page by page.
async fn walk<T: Clone, F, Fut>(limit: usize, mut read: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = webhook_sender::Page<T>>,
{
    let mut request = page(limit);
    let mut all = Vec::new();
    for _ in 0..10_000 {
        let got = read(request.clone()).await;
        assert!(got.items.len() <= limit);
        all.extend(got.items);
        match got.next_cursor {
            Some(cursor) => request = page(limit).after(cursor),
            None => return all,
        }
    }
    panic!("the walk never ended");
}

async fn wait_finished(sender: &Sender, org: &OrganizationId, ids: &[DeliveryId]) {
    eventually("deliveries finished", || async {
        for id in ids {
            let delivery = sender.delivery(org, *id).await.unwrap().unwrap();
            if !delivery.status.is_terminal() {
                return false;
            }
        }
        true
    })
    .await;
}

async fn messages_and_every_filter_of_every_listing(backend: Backend) {
    let ok = TestServer::ok().await;
    let bad = TestServer::sequence(vec![Reply::status(400)]).await;
    let sender = backend.builder().await.build().await.unwrap();
    let o = org("org-f");
    sender
        .organizations()
        .set_secret("org-f", secret("s"))
        .await
        .unwrap();
    let types = [EventType::WalletCreated, EventType::TransactionConfirmed];
    let good = sender
        .endpoints()
        .create(EndpointConfig::event("org-f", ok.url("/"), types).retry(quick()))
        .await
        .unwrap();
    let failing = sender
        .endpoints()
        .create(
            EndpointConfig::event("org-f", bad.url("/"), [EventType::WalletCreated]).retry(quick()),
        )
        .await
        .unwrap();

    let wallet = sender
        .publish(event("org-f", EventType::WalletCreated, "w-1", 1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let between = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let tx = sender
        .publish(event("org-f", EventType::TransactionConfirmed, "t-1", 2))
        .await
        .unwrap();
    let mut all_ids = wallet.delivery_ids();
    all_ids.extend(tx.delivery_ids());
    wait_finished(&sender, &o, &all_ids).await;

    // The message by event id, with its deliveries and their statuses.
    let found = sender.message(&o, wallet.event_id).await.unwrap().unwrap();
    assert_eq!(found.message.kind, "wallet.created");
    assert_eq!(found.message.resource_key, "w-1");
    assert_eq!(found.message.idempotency_key, wallet.idempotency_key);
    let payload: serde_json::Value = serde_json::from_slice(&found.message.payload).unwrap();
    assert_eq!(payload["data"]["n"], 1);
    let mut statuses: Vec<_> = found
        .deliveries
        .iter()
        .map(|d| (d.endpoint, d.status))
        .collect();
    statuses.sort_by_key(|(e, _)| *e == failing);
    assert_eq!(
        statuses,
        vec![
            (good, DeliveryStatus::Delivered),
            (failing, DeliveryStatus::Failed)
        ]
    );

    // Messages: by type, by resource, by both, by time; newest first.
    let messages = |filter: MessageFilter| {
        let sender = sender.clone();
        let o = o.clone();
        async move {
            let page = sender.messages(&o, &filter, &page(10)).await.unwrap();
            page.items.iter().map(|m| m.event_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        messages(MessageFilter::default()).await,
        vec![tx.event_id, wallet.event_id]
    );
    assert_eq!(
        messages(MessageFilter::default().kind("wallet.created")).await,
        vec![wallet.event_id]
    );
    assert_eq!(
        messages(MessageFilter::default().resource("t-1")).await,
        vec![tx.event_id]
    );
    assert!(
        messages(
            MessageFilter::default()
                .kind("wallet.created")
                .resource("t-1")
        )
        .await
        .is_empty()
    );
    assert_eq!(
        messages(MessageFilter::default().created(TimeRange::default().from(between))).await,
        vec![tx.event_id]
    );
    assert_eq!(
        messages(MessageFilter::default().created(TimeRange::default().until(between))).await,
        vec![wallet.event_id]
    );

    // Deliveries: by endpoint, status, time, and combinations.
    let deliveries = |filter: DeliveryFilter| {
        let sender = sender.clone();
        let o = o.clone();
        async move {
            let page = sender.deliveries(&o, &filter, &page(10)).await.unwrap();
            page.items.iter().map(|d| d.id).collect::<HashSet<_>>()
        }
    };
    let set = |ids: &[DeliveryId]| ids.iter().copied().collect::<HashSet<_>>();
    assert_eq!(deliveries(DeliveryFilter::default()).await, set(&all_ids));
    let failed_set = deliveries(DeliveryFilter::default().status(StatusFilter::Failed)).await;
    assert_eq!(failed_set.len(), 1);
    let failed = sender
        .delivery(&o, *failed_set.iter().next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.endpoint, failing);
    assert!(wallet.delivery_ids().contains(&failed.id));
    assert_eq!(
        deliveries(DeliveryFilter::default().status(StatusFilter::Delivered))
            .await
            .len(),
        2
    );
    assert!(
        deliveries(DeliveryFilter::default().status(StatusFilter::Pending))
            .await
            .is_empty()
    );
    assert!(
        deliveries(DeliveryFilter::default().status(StatusFilter::Cancelled))
            .await
            .is_empty()
    );
    assert_eq!(
        deliveries(DeliveryFilter::default().endpoint(failing)).await,
        set(&[failed.id])
    );
    assert_eq!(
        deliveries(
            DeliveryFilter::default()
                .endpoint(good)
                .status(StatusFilter::Delivered)
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        deliveries(DeliveryFilter::default().created(TimeRange::default().from(between))).await,
        set(&tx.delivery_ids())
    );
    let page_of_one = sender
        .deliveries(&o, &DeliveryFilter::default(), &page(1))
        .await
        .unwrap();
    assert_eq!(page_of_one.items[0].id, tx.deliveries[0].id, "newest first");
    assert!(page_of_one.next_cursor.is_some());

    // Failures since a time, of one endpoint or of the organization.
    let epoch = OffsetDateTime::UNIX_EPOCH;
    let since = |endpoint| {
        let sender = sender.clone();
        let o = o.clone();
        async move {
            let page = sender
                .failed_since(&o, endpoint, epoch, &page(10))
                .await
                .unwrap();
            page.items.iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(since(None).await, vec![failed.id]);
    assert_eq!(since(Some(failing)).await, vec![failed.id]);
    assert!(since(Some(good)).await.is_empty());
    let later = sender
        .failed_since(
            &o,
            None,
            OffsetDateTime::now_utc() + Duration::from_secs(1),
            &page(10),
        )
        .await
        .unwrap();
    assert!(later.items.is_empty());
    sender.shutdown().await.unwrap();
}

async fn a_page_walk_under_concurrent_publishing_sees_each_record_once(backend: Backend) {
    let server = TestServer::ok().await;
    let sender = backend.builder().await.build().await.unwrap();
    let o = org("org-w");
    sender
        .organizations()
        .set_secret("org-w", secret("s"))
        .await
        .unwrap();
    let config =
        EndpointConfig::event("org-w", server.url("/"), [EventType::WalletCreated]).paused();
    let endpoint = sender.endpoints().create(config).await.unwrap();
    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..100 {
                let receipt = sender
                    .publish(event(
                        "org-w",
                        EventType::WalletCreated,
                        &format!("w-{chunk}-{n}"),
                        n,
                    ))
                    .await
                    .unwrap();
                ids.extend(receipt.deliveries.iter().map(|d| d.id));
            }
            ids
        }));
    }
    let mut before = HashSet::new();
    for task in tasks {
        before.extend(task.await.unwrap());
    }
    assert_eq!(before.len(), 1_000);

    // Publish more while walking: the walk sees each of the first 1,000 once.
    let publisher = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for n in 0..200 {
                sender
                    .publish(event(
                        "org-w",
                        EventType::WalletCreated,
                        &format!("late-{n}"),
                        n,
                    ))
                    .await
                    .unwrap();
            }
        })
    };
    let filter = DeliveryFilter::default().endpoint(endpoint);
    let seen = walk(7, |request| {
        let (sender, o, filter) = (sender.clone(), o.clone(), filter.clone());
        async move { sender.deliveries(&o, &filter, &request).await.unwrap() }
    })
    .await;
    publisher.await.unwrap();
    let mut counts: HashMap<DeliveryId, usize> = HashMap::new();
    for delivery in &seen {
        *counts.entry(delivery.id).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "no record twice");
    assert!(
        before.iter().all(|id| counts.contains_key(id)),
        "none skipped"
    );
    let times: Vec<i64> = seen.iter().map(|d| d.created_at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(server.len(), 0, "a paused endpoint received nothing");
    sender.shutdown().await.unwrap();
}

async fn another_organizations_ids_are_not_found(backend: Backend) {
    let server = TestServer::sequence(vec![Reply::status(400)]).await;
    let sender = backend.builder().await.build().await.unwrap();
    let (mine, theirs) = (org("org-a"), org("org-b"));
    for name in ["org-a", "org-b"] {
        sender
            .organizations()
            .set_secret(name, secret("s"))
            .await
            .unwrap();
    }
    let config =
        EndpointConfig::event("org-a", server.url("/"), [EventType::WalletCreated]).retry(quick());
    let endpoint = sender.endpoints().create(config).await.unwrap();
    let receipt = sender
        .publish(event("org-a", EventType::WalletCreated, "w", 0))
        .await
        .unwrap();
    let delivery = receipt.deliveries[0].id;
    wait_finished(&sender, &mine, &[delivery]).await;

    let endpoints = sender.endpoints();
    assert!(endpoints.get(&theirs, endpoint).is_none());
    assert!(endpoints.get(&mine, endpoint).is_some());
    assert!(endpoints.list(&theirs).is_empty());
    let update = EndpointUpdate::default().timeout(Duration::from_secs(1));
    assert!(
        endpoints
            .update(&theirs, endpoint, update)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        endpoints
            .pause(&theirs, endpoint)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        endpoints
            .resume(&theirs, endpoint)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let rotate = endpoints.rotate_secret(&theirs, endpoint, secret("x"), Duration::ZERO);
    assert!(rotate.await.unwrap_err().is_not_found());
    assert!(
        endpoints
            .delete(&theirs, endpoint)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(sender.delivery(&theirs, delivery).await.unwrap().is_none());
    assert!(
        sender
            .message(&theirs, receipt.event_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sender
            .redrive(&theirs, delivery)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let by_endpoint = DeliveryFilter::default().endpoint(endpoint);
    let listed = sender.deliveries(&theirs, &by_endpoint, &page(10)).await;
    assert!(listed.unwrap_err().is_not_found());
    let failed = sender
        .failed_since(
            &theirs,
            Some(endpoint),
            OffsetDateTime::UNIX_EPOCH,
            &page(10),
        )
        .await;
    assert!(failed.unwrap_err().is_not_found());
    let redrive = sender
        .redrive_failed_since(&theirs, None, OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert!(redrive.is_empty(), "their failures are not mine");
    let all = sender
        .deliveries(&theirs, &DeliveryFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(all.items.is_empty());
    let messages = sender
        .messages(&theirs, &MessageFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(messages.items.is_empty());
    // And the owner still sees everything.
    assert!(sender.delivery(&mine, delivery).await.unwrap().is_some());
    assert_eq!(
        endpoints.get(&mine, endpoint).unwrap().timeout,
        Duration::from_secs(15)
    );
    sender.shutdown().await.unwrap();
}

async fn delete_cancels_open_deliveries_and_nothing_is_sent_after_it(backend: Backend) {
    let server = TestServer::start(|_| Reply::hang()).await;
    let sender = backend.builder().await.build().await.unwrap();
    let o = org("org-d");
    sender
        .organizations()
        .set_secret("org-d", secret("s"))
        .await
        .unwrap();
    let config = EndpointConfig::event("org-d", server.url("/"), [EventType::WalletCreated])
        .timeout(Duration::from_secs(30))
        .max_concurrency(1);
    let endpoint = sender.endpoints().create(config).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        let receipt = sender
            .publish(event(
                "org-d",
                EventType::WalletCreated,
                &format!("w-{}", n % 3),
                n,
            ))
            .await
            .unwrap();
        ids.extend(receipt.deliveries.iter().map(|d| d.id));
    }
    server.wait_for(1).await; // one attempt hangs in flight
    sender.endpoints().delete(&o, endpoint).await.unwrap();
    let at_delete = server.len();
    for id in &ids {
        let delivery = sender.delivery(&o, *id).await.unwrap().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Cancelled, "{id}");
        assert_eq!(delivery.cancel_reason.as_deref(), Some("endpoint deleted"));
    }
    let cancelled = sender
        .deliveries(
            &o,
            &DeliveryFilter::default().status(StatusFilter::Cancelled),
            &page(50),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.items.len(), 20, "history stays");
    assert!(sender.endpoints().get(&o, endpoint).is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.len(),
        at_delete,
        "nothing reaches the endpoint after the delete"
    );
    let again = sender
        .publish(event("org-d", EventType::WalletCreated, "w-0", 99))
        .await
        .unwrap();
    assert!(
        again.deliveries.is_empty(),
        "nothing is queued for a deleted endpoint"
    );
    sender.shutdown().await.unwrap();
}

async fn pause_loses_nothing_and_resume_sends_in_order(backend: Backend) {
    let server = TestServer::ok().await;
    let sender = backend.builder().await.build().await.unwrap();
    let o = org("org-p");
    sender
        .organizations()
        .set_secret("org-p", secret("s"))
        .await
        .unwrap();
    let config = EndpointConfig::event("org-p", server.url("/"), [EventType::WalletCreated]);
    let endpoint = sender.endpoints().create(config).await.unwrap();
    sender.endpoints().pause(&o, endpoint).await.unwrap();
    assert_eq!(
        sender.endpoints().get(&o, endpoint).unwrap().state,
        webhook_sender::EndpointState::Paused
    );
    let start = std::time::Instant::now();
    for n in 0..100 {
        sender
            .publish(event(
                "org-p",
                EventType::WalletCreated,
                &format!("w-{}", n % 5),
                n,
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.len(), 0, "nothing is sent while paused");
    let pending = sender
        .deliveries(
            &o,
            &DeliveryFilter::default().status(StatusFilter::Pending),
            &page(250),
        )
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 100, "all queued");
    sender.endpoints().resume(&o, endpoint).await.unwrap();
    let requests = server.wait_for(100).await;
    assert_eq!(requests.len(), 100);
    let mut last: HashMap<String, i64> = HashMap::new();
    for request in &requests {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let entity = body["data"]["id"].as_str().unwrap().to_owned();
        let n = body["data"]["n"].as_i64().unwrap();
        let previous = last.insert(entity.clone(), n);
        assert!(
            previous.is_none_or(|p| p < n),
            "{entity}: {previous:?} then {n}"
        );
    }
    assert_eq!(last.len(), 5);
    sender.shutdown().await.unwrap();
}

async fn a_partial_update_keeps_the_rotation_overlap(backend: Backend) {
    let server = TestServer::ok().await;
    let sender = backend.builder().await.build().await.unwrap();
    let o = org("org-u");
    let config = EndpointConfig::event("org-u", server.url("/"), [EventType::WalletCreated])
        .secret(secret("old-secret"))
        .header("X-Kept", "yes");
    let endpoint = sender.endpoints().create(config).await.unwrap();
    sender
        .endpoints()
        .rotate_secret(
            &o,
            endpoint,
            secret("new-secret"),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let info = sender
        .endpoints()
        .update(
            &o,
            endpoint,
            EndpointUpdate::default().timeout(Duration::from_secs(7)),
        )
        .await
        .unwrap();
    assert_eq!(info.signing_keys, 2, "both keys of the overlap kept");
    assert_eq!(info.timeout, Duration::from_secs(7));
    sender
        .publish(event("org-u", EventType::WalletCreated, "w", 0))
        .await
        .unwrap();
    let request = server.wait_for(1).await.remove(0);
    assert_eq!(
        request.headers["x-kept"], "yes",
        "headers not named are kept"
    );
    let signatures = request.headers[scheme::EVENT_SIGNATURE_HEADER]
        .to_str()
        .unwrap();
    assert_eq!(signatures.split(',').count(), 2, "{signatures}");
    for key in ["old-secret", "new-secret"] {
        let trusted = TrustedKeys::Event(vec![secret(key)]);
        common::verify(&trusted, &request).unwrap();
    }
    sender.shutdown().await.unwrap();
}

async fn retention_removes_old_records_and_keeps_the_rest_across_a_restart(backend: Backend) {
    let ok = TestServer::ok().await;
    let bad = TestServer::start(|_| Reply::status(400)).await;
    let clock = Arc::new(ManualClock::at_unix(
        OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let retention = Retention::default()
        .delivered(Duration::from_secs(3600))
        .failed(Duration::from_secs(3 * 3600))
        .interval(Duration::from_secs(600));
    let start = |builder: Builder| builder.clock(clock.clone()).retention(retention).build();
    let sender = start(backend.builder().await).await.unwrap();
    let o = org("org-r");
    sender
        .organizations()
        .set_secret("org-r", secret("s"))
        .await
        .unwrap();
    let good = EndpointConfig::event("org-r", ok.url("/"), [EventType::WalletCreated]);
    let failing =
        EndpointConfig::event("org-r", bad.url("/"), [EventType::WalletCreated]).retry(quick());
    sender.endpoints().create(good).await.unwrap();
    sender.endpoints().create(failing).await.unwrap();
    let old = sender
        .publish(event("org-r", EventType::WalletCreated, "w-old", 0))
        .await
        .unwrap();
    wait_finished(&sender, &o, &old.delivery_ids()).await;
    let unrouted = sender
        .publish(event("org-r", EventType::CustomerCreated, "c-1", 0))
        .await
        .unwrap();
    assert!(unrouted.deliveries.is_empty());

    // 90 minutes on: the delivered delivery goes, the failed one stays.
    clock.advance(Duration::from_secs(90 * 60));
    let fresh = sender
        .publish(event("org-r", EventType::WalletCreated, "w-new", 1))
        .await
        .unwrap();
    wait_finished(&sender, &o, &fresh.delivery_ids()).await;
    let statuses = |ids: Vec<DeliveryId>| {
        let sender = sender.clone();
        let o = o.clone();
        async move {
            let mut found = Vec::new();
            for id in ids {
                found.push(sender.delivery(&o, id).await.unwrap().map(|d| d.status));
            }
            found
        }
    };
    eventually("the delivered delivery is pruned", || async {
        statuses(old.delivery_ids()).await.contains(&None)
    })
    .await;
    let kept = statuses(old.delivery_ids()).await;
    assert!(kept.contains(&Some(DeliveryStatus::Failed)), "{kept:?}");
    assert!(
        sender.message(&o, old.event_id).await.unwrap().is_some(),
        "the message stays while a delivery has it"
    );
    // The same retention run removes unrouted messages after the deliveries.
    eventually("the unrouted message is pruned", || async {
        sender
            .message(&o, unrouted.event_id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    assert!(
        statuses(fresh.delivery_ids())
            .await
            .iter()
            .all(Option::is_some),
        "young records stay"
    );
    sender.shutdown().await.unwrap();

    // A restart, then past the failed age: the failed delivery and the message go too.
    let sender = start(backend.builder().await).await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    eventually(
        "the failed delivery is pruned after the restart",
        || async { sender.message(&o, old.event_id).await.unwrap().is_none() },
    )
    .await;
    for id in &old.delivery_ids() {
        assert!(sender.delivery(&o, *id).await.unwrap().is_none());
    }
    let remaining = sender
        .deliveries(&o, &DeliveryFilter::default(), &page(50))
        .await
        .unwrap();
    assert!(
        remaining
            .items
            .iter()
            .all(|d| fresh.delivery_ids().contains(&d.id)),
        "only the young ones' failed delivery may stay"
    );
    assert!(
        remaining
            .items
            .iter()
            .any(|d| d.status == DeliveryStatus::Failed),
        "the fresh failure (1.5 h old) is younger than the failed age"
    );
    sender.shutdown().await.unwrap();
}

async fn organizations_and_api_tokens_survive_a_restart_and_revoke_at_once(backend: Backend) {
    let sender = backend.builder().await.build().await.unwrap();
    let orgs = sender.organizations();
    let created = orgs
        .create("org-b", Some("Bravo Ltd".to_owned()))
        .await
        .unwrap();
    assert_eq!(created.name.as_deref(), Some("Bravo Ltd"));
    assert!(!created.has_secret);
    orgs.create("org-a", None).await.unwrap();
    let again = orgs
        .create("org-a", Some("other".to_owned()))
        .await
        .unwrap_err();
    assert!(again.is_conflict(), "{again}");
    assert!(orgs.create("", None).await.unwrap_err().is_invalid());
    let long = "n".repeat(257);
    assert!(
        orgs.create("org-c", Some(long))
            .await
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        orgs.get(&org("org-c")).is_none(),
        "a refused create stores nothing"
    );

    let first = orgs.issue_token(&org("org-a")).await.unwrap();
    let second = orgs.issue_token(&org("org-a")).await.unwrap();
    assert!(first.token.starts_with("whtok_") && first.token.len() == 6 + 43);
    assert_ne!(first.token.as_str(), second.token.as_str());
    assert!(
        !format!("{first:?}").contains(first.token.as_str()),
        "Debug hides the text"
    );
    assert!(
        orgs.issue_token(&org("nobody"))
            .await
            .unwrap_err()
            .is_not_found(),
        "no token for an organization that does not exist"
    );
    let owner = orgs.authenticate(&first.token).await.unwrap();
    assert_eq!(owner, Some((org("org-a"), first.id.clone())));
    assert_eq!(orgs.authenticate("whtok_guess").await.unwrap(), None);
    assert_eq!(orgs.authenticate("").await.unwrap(), None);

    orgs.revoke_token(&org("org-a"), &first.id).await.unwrap();
    assert_eq!(
        orgs.authenticate(&first.token).await.unwrap(),
        None,
        "revoked at once"
    );
    assert!(
        orgs.revoke_token(&org("org-b"), &second.id)
            .await
            .unwrap_err()
            .is_not_found(),
        "another organization's token id is not found"
    );
    assert!(
        orgs.revoke_token(&org("org-a"), &first.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let listed: Vec<_> = orgs.list().into_iter().map(|o| o.id).collect();
    assert_eq!(listed, vec![org("org-a"), org("org-b")], "by id");
    sender.shutdown().await.unwrap();

    // What the store kept: the organizations, the live token, not the revoked one.
    let sender = backend.builder().await.build().await.unwrap();
    let orgs = sender.organizations();
    let a = orgs.get(&org("org-a")).unwrap();
    assert_eq!(a.tokens.len(), 1);
    assert_eq!(a.tokens[0].id, second.id);
    assert_eq!(
        orgs.get(&org("org-b")).unwrap().name.as_deref(),
        Some("Bravo Ltd")
    );
    assert_eq!(
        orgs.authenticate(&second.token).await.unwrap(),
        Some((org("org-a"), second.id.clone()))
    );
    assert_eq!(orgs.authenticate(&first.token).await.unwrap(), None);
    sender.shutdown().await.unwrap();
}
