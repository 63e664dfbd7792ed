//! An in-memory [`Store`](super::Store) for tests and examples: everything is lost when it
//! is dropped.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use webhook_core::idempotency::{WindowStarts, triple_key};

use super::queue::{Leased, Queue, reopen, settle};
use super::{
    Claim, ClaimRequest, Claimed, Finish, NewDelivery, Payload, Snapshot, Store, StoreError,
    StoreFuture, StoredEndpoint, StoredOrganization,
};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::ids::{DeliveryId, EndpointId, OrganizationId};

/// A store that keeps everything in memory. Cheap to clone; clones share the same state,
/// so a test can hand one clone to a sender and keep another, or restart a sender on it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    queue: Queue,
    open: HashMap<DeliveryId, Delivery>,
    finished: HashMap<DeliveryId, Delivery>,
    failed: BTreeSet<(EndpointId, i64, DeliveryId)>,
    payloads: HashMap<DeliveryId, Payload>,
    endpoints: HashMap<EndpointId, StoredEndpoint>,
    organizations: HashMap<OrganizationId, StoredOrganization>,
    windows: WindowStarts,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every change is applied
        // whole under the lock), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> StoreFuture<'_, T> {
        let result = f(&mut self.lock());
        Box::pin(std::future::ready(result))
    }
}

impl Store for MemoryStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.with(|state| {
            Ok(Snapshot {
                endpoints: state.endpoints.values().cloned().collect(),
                organizations: state.organizations.values().cloned().collect(),
            })
        })
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state
                .queue
                .set_endpoint(endpoint.id, endpoint.max_concurrency, endpoint.enabled);
            state.endpoints.insert(endpoint.id, endpoint);
            Ok(())
        })
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state
                .organizations
                .insert(organization.id.clone(), organization);
            Ok(())
        })
    }

    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64> {
        let triple = triple_key(organization, kind, entity);
        self.with(move |state| Ok(state.windows.claim(&triple, now)))
    }

    fn enqueue(&self, deliveries: Vec<NewDelivery>) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            for mut new in deliveries {
                state.queue.push(&mut new.record);
                state.payloads.insert(new.record.id, new.payload);
                state.open.insert(new.record.id, new.record);
            }
            Ok(())
        })
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        self.with(move |state| {
            let (leases, next_due_ms) = state.queue.claim(&request);
            let open = u64::try_from(state.queue.len()).unwrap_or(u64::MAX);
            let deliveries = leases
                .iter()
                .filter_map(|leased: &Leased| {
                    let record = state.open.get_mut(&leased.id)?;
                    leased.apply(record);
                    let payload = state.payloads.get(&leased.id)?.clone();
                    Some(Claimed {
                        record: record.clone(),
                        payload,
                    })
                })
                .collect();
            Ok(Claim {
                deliveries,
                next_due_ms,
                open,
            })
        })
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            let left = state.queue.finish(id, lease, &finish)?;
            let Some(record) = state.open.get_mut(&id) else {
                return Err(StoreError::corrupt(format!("delivery {id} has no record")));
            };
            settle(record, finish);
            if !left {
                return Ok(());
            }
            if let Some(record) = state.open.remove(&id) {
                if record.status == DeliveryStatus::Failed {
                    let at = record.finished_at_ms.unwrap_or_default();
                    state.failed.insert((record.endpoint, at, record.id));
                }
                state.finished.insert(record.id, record);
            }
            Ok(())
        })
    }

    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        self.with(move |state| {
            let open = state.open.get(&id).cloned();
            Ok(open.or_else(|| state.finished.get(&id).cloned()))
        })
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        self.with(move |state| {
            let mut record = match state.finished.entry(id) {
                Entry::Occupied(entry) if entry.get().status == DeliveryStatus::Failed => {
                    entry.remove()
                }
                _ => return Ok(false),
            };
            let failed_at = record.finished_at_ms.unwrap_or_default();
            state.failed.remove(&(record.endpoint, failed_at, id));
            reopen(&mut record, now_ms);
            state.queue.push(&mut record);
            state.open.insert(id, record);
            Ok(true)
        })
    }

    fn failed_since(
        &self,
        endpoint: EndpointId,
        since_ms: i64,
    ) -> StoreFuture<'_, Vec<DeliveryId>> {
        self.with(move |state| {
            Ok(state
                .failed
                .range((endpoint, since_ms, DeliveryId::MIN)..)
                .take_while(|(e, _, _)| *e == endpoint)
                .map(|(_, _, id)| *id)
                .collect())
        })
    }

    fn prune_delivered(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.with(move |state| {
            let old: Vec<DeliveryId> = state
                .finished
                .values()
                .filter(|r| r.status == DeliveryStatus::Delivered)
                .filter(|r| r.finished_at_ms.unwrap_or_default() < before_ms)
                .map(|r| r.id)
                .collect();
            for id in &old {
                state.finished.remove(id);
                state.payloads.remove(id);
            }
            Ok(u64::try_from(old.len()).unwrap_or(u64::MAX))
        })
    }

    /// Does nothing: the state lives as long as any clone, so a test can start a new
    /// sender on a clone after shutting the first one down.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
