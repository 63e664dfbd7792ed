//! The store contract as a public test suite (feature `testing`): every backend, in this
//! crate or another, runs the same named cases.
//!
//! ```no_run
//! # async fn demo() {
//! use webhook_sender::store::MemoryStore;
//!
//! // One fresh store per case; a backend in another crate does the same with its own.
//! webhook_sender::testing::run(|_case| async { MemoryStore::new() }).await;
//! # }
//! ```
//!
//! Each case panics with its name and what failed. The cases drive time through the
//! store's own arguments (claims' `now_ms`, finish times), never by sleeping.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::delivery::DeliveryStatus;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
use crate::store::fixture::{self, endpoint};
use crate::store::index::{self, RetentionClass, Scan, StatusGroup};
use crate::store::{
    ClaimRequest, Claimed, DeliveryRecord, Enqueued, Finish, MessageRecord, Store, StoredEndpoint,
};

/// One case of the suite.
pub type Case = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Every case, by name.
#[must_use]
pub fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("claims_heads_in_order_with_payloads", |s| {
            Box::pin(claims_heads_in_order_with_payloads(s))
        }),
        ("expired_leases_are_claimed_again", |s| {
            Box::pin(expired_leases_are_claimed_again(s))
        }),
        ("enqueue_is_idempotent_per_organization_and_event", |s| {
            Box::pin(enqueue_is_idempotent_per_organization_and_event(s))
        }),
        ("messages_are_stored_once_with_their_deliveries", |s| {
            Box::pin(messages_are_stored_once_with_their_deliveries(s))
        }),
        ("index_entries_follow_status_changes", |s| {
            Box::pin(index_entries_follow_status_changes(s))
        }),
        ("redrive_reopens_failed_deliveries_only", |s| {
            Box::pin(redrive_reopens_failed_deliveries_only(s))
        }),
        ("cancel_open_cancels_pending_and_leased", |s| {
            Box::pin(cancel_open_cancels_pending_and_leased(s))
        }),
        (
            "retention_removes_finished_records_and_their_messages",
            |s| Box::pin(retention_removes_finished_records_and_their_messages(s)),
        ),
        ("unrouted_messages_are_kept_then_removed", |s| {
            Box::pin(unrouted_messages_are_kept_then_removed(s))
        }),
        ("unclaimable_and_removed_endpoints_keep_or_stop", |s| {
            Box::pin(unclaimable_and_removed_endpoints_keep_or_stop(s))
        }),
        ("config_is_versioned_and_loaded", |s| {
            Box::pin(config_is_versioned_and_loaded(s))
        }),
        ("idempotency_windows_are_shared", |s| {
            Box::pin(idempotency_windows_are_shared(s))
        }),
        ("last_pruned_is_kept", |s| Box::pin(last_pruned_is_kept(s))),
    ]
}

/// Runs every case, each on a store from `new_store` (given the case's name).
pub async fn run<F, Fut, S>(mut new_store: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = S>,
    S: Store,
{
    for (name, case) in cases() {
        let store = new_store(name).await;
        eprintln!("store case {name}");
        case(&store).await;
        store.close().await.unwrap();
    }
}

const LEASE: Duration = Duration::from_millis(100);

/// Publishes one message about `key` to each of `endpoints`, due at `due_at_ms`.
async fn publish(
    store: &dyn Store,
    org: &str,
    key: &str,
    endpoints: &[EndpointId],
    due_at_ms: i64,
) -> (MessageRecord, Vec<DeliveryId>) {
    let message = fixture::message(org, key, due_at_ms, key.as_bytes());
    let deliveries: Vec<DeliveryRecord> = endpoints
        .iter()
        .map(|e| DeliveryRecord::new(&message, *e, due_at_ms))
        .collect();
    let ids = deliveries.iter().map(|d| d.id).collect();
    let stored = store.enqueue(message.clone(), deliveries).await.unwrap();
    assert_eq!(stored, Enqueued::Stored);
    (message, ids)
}

async fn claim(store: &dyn Store, now_ms: i64) -> Vec<Claimed> {
    claim_with(store, now_ms, HashMap::new()).await
}

async fn claim_with(
    store: &dyn Store,
    now_ms: i64,
    overrides: HashMap<EndpointId, usize>,
) -> Vec<Claimed> {
    let request = ClaimRequest::new(now_ms, 100, LEASE).overrides(overrides);
    store.claim(request).await.unwrap().deliveries
}

fn ids(claimed: &[Claimed]) -> Vec<DeliveryId> {
    let mut ids: Vec<_> = claimed.iter().map(|c| c.record.id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<DeliveryId>) -> Vec<DeliveryId> {
    ids.sort();
    ids
}

async fn finish(store: &dyn Store, claimed: &Claimed, finish: Finish) {
    store
        .finish(claimed.record.id, claimed.record.lease, finish)
        .await
        .unwrap();
}

fn ok(at_ms: i64) -> Finish {
    Finish::Delivered(fixture::response(200, at_ms, 0))
}

fn failed(at_ms: i64) -> Finish {
    Finish::Failed(fixture::response(400, at_ms, 0))
}

async fn members(store: &dyn Store, set: Vec<u8>) -> Vec<Vec<u8>> {
    store
        .scan(Scan {
            set,
            start: None,
            end: None,
            limit: 1_000,
        })
        .await
        .unwrap()
}

async fn delivery_ids_in(store: &dyn Store, set: Vec<u8>) -> Vec<DeliveryId> {
    let members = members(store, set).await;
    sorted(
        members
            .iter()
            .filter_map(|m| index::member_id(m).map(DeliveryId::from_u128))
            .collect(),
    )
}

async fn claims_heads_in_order_with_payloads(store: &dyn Store) {
    let e = endpoint(store, 2).await;
    let (_, a1) = publish(store, "org", "a", &[e], 0).await;
    let (_, a2) = publish(store, "org", "a", &[e], 0).await;
    let (_, b) = publish(store, "org", "b", &[e], 0).await;
    let (_, later) = publish(store, "org", "c", &[e], 50).await;

    let first = claim(store, 0).await;
    assert_eq!(
        ids(&first),
        sorted(vec![a1[0], b[0]]),
        "heads only, due only"
    );
    let a = first.iter().find(|c| c.record.id == a1[0]).unwrap();
    assert_eq!(&a.payload.content[..], b"a", "the message's payload");
    assert_eq!(a.record.status, DeliveryStatus::InFlight);
    assert!(claim(store, 60).await.is_empty(), "the cap (2) is full");
    let wrong = store.finish(a1[0], a.record.lease + 1000, Finish::Release { at_ms: 0 });
    assert!(wrong.await.unwrap_err().is_lease_lost());

    let retry = Finish::Retry {
        attempt: fixture::response(503, 1, 0),
        at_ms: 70,
    };
    finish(store, a, retry).await;
    let b_claim = first.iter().find(|c| c.record.id == b[0]).unwrap();
    finish(store, b_claim, failed(2)).await;
    assert_eq!(
        ids(&claim(store, 60).await),
        vec![later[0]],
        "a waits for 70"
    );
    let again = claim(store, 70).await;
    assert_eq!(ids(&again), vec![a1[0]]);
    assert_eq!(again[0].record.round_attempts, 1);
    finish(store, &again[0], ok(71)).await;
    let after = claim(store, 160).await;
    assert_eq!(
        ids(&after),
        sorted(vec![a2[0], later[0]]),
        "a2 is the head now; later's lease ended"
    );
    let delivered = store.delivery(a1[0]).await.unwrap().unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.attempts.len(), 2);
    assert_eq!(delivered.finished_at_ms, Some(71));
}

async fn expired_leases_are_claimed_again(store: &dyn Store) {
    let e = endpoint(store, 1).await;
    let (_, d) = publish(store, "org", "r", &[e], 0).await;
    let first = claim(store, 0).await;
    assert_eq!(ids(&first), d);
    assert!(claim(store, 99).await.is_empty(), "leased");
    let second = claim(store, 100).await;
    assert_eq!(ids(&second), d, "the lease ran out");
    assert_ne!(first[0].record.lease, second[0].record.lease);
    let stale = store.finish(d[0], first[0].record.lease, ok(101));
    assert!(stale.await.unwrap_err().is_lease_lost());
    finish(store, &second[0], ok(101)).await;
    let again = store.finish(d[0], second[0].record.lease, ok(102));
    assert!(
        again.await.unwrap_err().is_lease_lost(),
        "a lease ends once"
    );
}

async fn enqueue_is_idempotent_per_organization_and_event(store: &dyn Store) {
    let e = endpoint(store, 4).await;
    let (message, first) = publish(store, "org-a", "r", &[e], 0).await;
    let again = DeliveryRecord::new(&message, e, 0);
    match store.enqueue(message.clone(), vec![again]).await.unwrap() {
        Enqueued::Existing(existing) => assert_eq!(existing.deliveries, first),
        Enqueued::Stored => panic!("the same event id was stored twice"),
    }
    assert_eq!(claim(store, 0).await.len(), 1, "queued once");
    let mut other_org = message.clone();
    other_org.organization = OrganizationId::from("org-b");
    let theirs = DeliveryRecord::new(&other_org, e, 0);
    let stored = store.enqueue(other_org, vec![theirs]).await.unwrap();
    assert_eq!(stored, Enqueued::Stored, "event ids are per organization");
}

async fn messages_are_stored_once_with_their_deliveries(store: &dyn Store) {
    let (e1, e2) = (endpoint(store, 4).await, endpoint(store, 4).await);
    let (message, deliveries) = publish(store, "org", "w-1", &[e1, e2], 5).await;
    let org = OrganizationId::from("org");
    let stored = store
        .message(org.clone(), message.event)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.deliveries, deliveries);
    assert_eq!(stored.payload, message.payload);
    assert_eq!(stored.idempotency_key, message.idempotency_key);
    assert!(
        store
            .message(OrganizationId::from("other"), message.event)
            .await
            .unwrap()
            .is_none(),
        "another organization's id is not found"
    );
    let found = store.deliveries(deliveries.clone()).await.unwrap();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|d| d.event == message.event));
    let listed = store
        .messages(org.clone(), vec![EventId::generate(), message.event])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "only those that exist");
    let newest = members(
        store,
        index::messages_of(&org, Some("wallet.created"), None),
    )
    .await;
    assert_eq!(newest.len(), 1);
    let by_resource = members(store, index::messages_of(&org, None, Some("w-1"))).await;
    assert_eq!(by_resource, newest);
    assert!(
        members(store, index::messages_of(&org, None, Some("w-2")))
            .await
            .is_empty()
    );
}

async fn index_entries_follow_status_changes(store: &dyn Store) {
    let e = endpoint(store, 8).await;
    let org = OrganizationId::from("org");
    let (_, ok_id) = publish(store, "org", "a", &[e], 0).await;
    let (_, bad_id) = publish(store, "org", "b", &[e], 0).await;
    let pending = index::deliveries_of_endpoint(e, Some(StatusGroup::Pending));
    assert_eq!(
        delivery_ids_in(store, pending.clone()).await,
        sorted(vec![ok_id[0], bad_id[0]])
    );
    for claimed in claim(store, 0).await {
        let end = if claimed.record.id == ok_id[0] {
            ok(10)
        } else {
            failed(20)
        };
        finish(store, &claimed, end).await;
    }
    assert!(delivery_ids_in(store, pending).await.is_empty());
    let delivered = index::deliveries_of_organization(&org, Some(StatusGroup::Delivered));
    assert_eq!(delivery_ids_in(store, delivered).await, ok_id);
    assert_eq!(
        delivery_ids_in(store, index::failed_of(&org, Some(e))).await,
        bad_id
    );
    assert_eq!(
        delivery_ids_in(store, index::failed_of(&org, None)).await,
        bad_id
    );
    assert_eq!(
        delivery_ids_in(store, index::deliveries_of_endpoint(e, None)).await,
        sorted(vec![ok_id[0], bad_id[0]]),
        "the unfiltered index keeps both"
    );
    let since = Scan {
        set: index::failed_of(&org, None),
        start: Some(index::oldest_first_from(21)),
        end: None,
        limit: 10,
    };
    assert!(store.scan(since).await.unwrap().is_empty(), "failed at 20");
    let inverted = Scan {
        set: index::failed_of(&org, None),
        start: Some(index::oldest_first_from(30)),
        end: Some(index::oldest_first_from(10)),
        limit: 10,
    };
    assert!(
        store.scan(inverted).await.unwrap().is_empty(),
        "a start past the end is an empty scan, not a panic"
    );
}

async fn redrive_reopens_failed_deliveries_only(store: &dyn Store) {
    let e = endpoint(store, 8).await;
    let (_, a) = publish(store, "org", "r", &[e], 0).await;
    let (_, b) = publish(store, "org", "s", &[e], 0).await;
    for claimed in claim(store, 0).await {
        let end = if claimed.record.id == a[0] {
            failed(1)
        } else {
            ok(1)
        };
        finish(store, &claimed, end).await;
    }
    assert!(!store.redrive(b[0], 10).await.unwrap(), "not failed");
    assert!(store.redrive(a[0], 10).await.unwrap());
    assert!(!store.redrive(a[0], 10).await.unwrap(), "only once");
    let org = OrganizationId::from("org");
    assert!(
        delivery_ids_in(store, index::failed_of(&org, None))
            .await
            .is_empty()
    );
    let record = store.delivery(a[0]).await.unwrap().unwrap();
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert_eq!(record.round_attempts, 0);
    assert_eq!(record.attempts.len(), 1, "history kept");
    let again = claim(store, 10).await;
    assert_eq!(ids(&again), a);
}

async fn cancel_open_cancels_pending_and_leased(store: &dyn Store) {
    let e = endpoint(store, 1).await;
    let other = endpoint(store, 1).await;
    let (_, first) = publish(store, "org", "r", &[e], 0).await;
    let (_, second) = publish(store, "org", "r", &[e], 0).await;
    let (_, third) = publish(store, "org", "s", &[e], 0).await;
    let (_, kept) = publish(store, "org", "r", &[other], 0).await;
    let leased: Vec<_> = claim(store, 0)
        .await
        .into_iter()
        .filter(|c| c.record.endpoint == e)
        .collect();
    assert_eq!(leased.len(), 1);
    let mut cancelled = 0;
    loop {
        let n = store
            .cancel_open(e, "endpoint deleted".into(), 5, 2)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 2, "bounded by the limit");
        cancelled += n;
    }
    assert_eq!(cancelled, 3);
    for id in [first[0], second[0], third[0]] {
        let record = store.delivery(id).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Cancelled);
        assert_eq!(record.finished_at_ms, Some(5));
        assert_eq!(record.cancel_reason.as_deref(), Some("endpoint deleted"));
    }
    let late = store.finish(leased[0].record.id, leased[0].record.lease, ok(6));
    assert!(late.await.unwrap_err().is_lease_lost(), "its lease ended");
    assert!(
        claim(store, 1_000)
            .await
            .iter()
            .all(|c| c.record.endpoint != e)
    );
    assert_eq!(
        store.delivery(kept[0]).await.unwrap().unwrap().status,
        DeliveryStatus::InFlight,
        "another endpoint's delivery is untouched"
    );
    let org = OrganizationId::from("org");
    let set = index::deliveries_of_organization(&org, Some(StatusGroup::Cancelled));
    assert_eq!(delivery_ids_in(store, set).await.len(), 3);
}

async fn retention_removes_finished_records_and_their_messages(store: &dyn Store) {
    let (e1, e2) = (endpoint(store, 8).await, endpoint(store, 8).await);
    let (message, both) = publish(store, "org", "m", &[e1, e2], 0).await;
    let (_, open) = publish(store, "org", "o", &[e1], 1_000_000).await;
    for claimed in claim(store, 0).await {
        let end = if claimed.record.endpoint == e1 {
            ok(10)
        } else {
            failed(20)
        };
        finish(store, &claimed, end).await;
    }
    let delivered = index::retention(RetentionClass::Delivered);
    let old = store
        .scan(Scan {
            set: delivered.clone(),
            start: None,
            end: Some(index::oldest_first_from(11)),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(old.len(), 1);
    let ok_id = index::member_delivery(&old[0]).unwrap();
    let removed = store
        .remove_finished(vec![ok_id, open[0], DeliveryId::generate()])
        .await
        .unwrap();
    assert_eq!(removed, 1, "open and unknown deliveries are skipped");
    assert!(store.delivery(ok_id).await.unwrap().is_none());
    assert!(store.delivery(open[0]).await.unwrap().is_some());
    assert!(members(store, delivered).await.is_empty());
    let org = OrganizationId::from("org");
    let left = store.message(org.clone(), message.event).await.unwrap();
    assert_eq!(
        left.unwrap().deliveries.len(),
        1,
        "the message stays while a delivery has it"
    );
    let failed_id = both.iter().copied().find(|id| *id != ok_id).unwrap();
    assert_eq!(store.remove_finished(vec![failed_id]).await.unwrap(), 1);
    assert!(
        store
            .message(org.clone(), message.event)
            .await
            .unwrap()
            .is_none(),
        "the message goes with its last delivery"
    );
    assert!(
        members(store, index::messages_of(&org, None, Some("m")))
            .await
            .is_empty(),
        "and its index entries"
    );
    assert!(
        members(store, index::failed_of(&org, None))
            .await
            .is_empty()
    );
}

async fn unrouted_messages_are_kept_then_removed(store: &dyn Store) {
    let (message, none) = publish(store, "org", "nobody", &[], 7).await;
    assert!(none.is_empty());
    let org = OrganizationId::from("org");
    assert!(
        store
            .message(org.clone(), message.event)
            .await
            .unwrap()
            .is_some()
    );
    let set = index::retention(RetentionClass::Unrouted);
    let found = members(store, set.clone()).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        index::unrouted_message(&found[0]),
        Some((org.clone(), message.event))
    );
    assert_eq!(
        store
            .remove_unrouted(vec![(org.clone(), message.event)])
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .message(org.clone(), message.event)
            .await
            .unwrap()
            .is_none()
    );
    assert!(members(store, set).await.is_empty());
    assert!(
        members(store, index::messages_of(&org, None, None))
            .await
            .is_empty()
    );
}

async fn unclaimable_and_removed_endpoints_keep_or_stop(store: &dyn Store) {
    let e = endpoint(store, 2).await;
    let paused = StoredEndpoint::new(e, 2, false, b"{}".to_vec());
    store.put_endpoint(paused).await.unwrap();
    let (_, queued) = publish(store, "org", "r", &[e], 0).await;
    assert!(claim(store, 0).await.is_empty(), "not claimable: it waits");
    let active = StoredEndpoint::new(e, 2, true, b"{}".to_vec());
    store.put_endpoint(active).await.unwrap();
    assert_eq!(ids(&claim(store, 1).await), queued, "claimable again");
    let paused_by_override: HashMap<_, _> = [(e, 0)].into();
    let (_, more) = publish(store, "org", "s", &[e], 0).await;
    assert!(claim_with(store, 2, paused_by_override).await.is_empty());
    store.remove_endpoint(e).await.unwrap();
    assert!(
        claim(store, 10_000).await.is_empty(),
        "a removed endpoint's deliveries are not claimed"
    );
    assert!(store.load().await.unwrap().endpoints.is_empty());
    assert_eq!(
        store.delivery(more[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
}

async fn config_is_versioned_and_loaded(store: &dyn Store) {
    let before = store.config_version().await.unwrap();
    let e = endpoint(store, 3).await;
    let after = store.config_version().await.unwrap();
    assert_ne!(before, after, "a change moves the version");
    let organization = crate::store::StoredOrganization::new(OrganizationId::from("o"), vec![1]);
    store.put_organization(organization).await.unwrap();
    assert_ne!(store.config_version().await.unwrap(), after);
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.endpoints.len(), 1);
    assert_eq!(snapshot.endpoints[0].id, e);
    assert_eq!(snapshot.endpoints[0].max_concurrency, 3);
    assert_eq!(snapshot.organizations.len(), 1);
    assert_eq!(snapshot.organizations[0].data, vec![1]);
}

async fn idempotency_windows_are_shared(store: &dyn Store) {
    let claim = |now| store.claim_idempotency_window("o", "t", "e", now);
    assert_eq!(claim(100).await.unwrap(), 100);
    assert_eq!(claim(159).await.unwrap(), 100);
    assert_eq!(claim(160).await.unwrap(), 160);
    let other = store.claim_idempotency_window("o", "t", "f", 160);
    assert_eq!(other.await.unwrap(), 160);
}

async fn last_pruned_is_kept(store: &dyn Store) {
    assert_eq!(store.last_pruned().await.unwrap(), None);
    store.set_last_pruned(1_234).await.unwrap();
    assert_eq!(store.last_pruned().await.unwrap(), Some(1_234));
}
