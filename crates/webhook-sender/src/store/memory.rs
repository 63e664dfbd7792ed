//! An in-memory store for tests and examples: everything is lost when it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use webhook_core::idempotency::{WindowStarts, triple_key};

use super::index::{IndexEntry, Scan};
use super::members::MemberSets;
use super::queue::Queue;
use super::record::{DeliveryRecord, MessageRecord};
use super::tables::{self, NewMessage, Tables};
use super::{
    Claim, ClaimRequest, Claimed, ConfigStore, Enqueued, Finish, HistoryStore, QueueStore,
    Snapshot, StoreError, StoreFuture, StoredEndpoint, StoredOrganization, WindowStore,
};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// A store that keeps everything in memory. Cheap to clone; clones share the same state,
/// so a test can hand one clone to a sender and keep another, or restart a sender on it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    queue: Queue,
    records: Records,
    endpoints: HashMap<EndpointId, StoredEndpoint>,
    organizations: HashMap<OrganizationId, StoredOrganization>,
    windows: WindowStarts,
    config_version: u64,
    last_pruned: Option<i64>,
}

#[derive(Debug, Default)]
struct Records {
    deliveries: HashMap<DeliveryId, DeliveryRecord>,
    /// By event id, then organization (event ids are unique per organization).
    messages: HashMap<EventId, HashMap<OrganizationId, MessageRecord>>,
    /// Index sets by name, each an ordered set of members.
    index: MemberSets,
}

impl Records {
    fn get_message(&self, organization: &OrganizationId, event: EventId) -> Option<&MessageRecord> {
        self.messages.get(&event)?.get(organization)
    }
}

impl Tables for Records {
    fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(self.deliveries.get(&id).cloned())
    }

    fn put_delivery(&mut self, record: DeliveryRecord, _: Option<bool>) -> Result<(), StoreError> {
        self.deliveries.insert(record.id, record);
        Ok(())
    }

    fn delete_delivery(&mut self, record: &DeliveryRecord) -> Result<(), StoreError> {
        self.deliveries.remove(&record.id);
        Ok(())
    }

    fn message(
        &self,
        organization: &OrganizationId,
        event: EventId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.get_message(organization, event).cloned())
    }

    fn put_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        self.messages
            .entry(record.event)
            .or_default()
            .insert(record.organization.clone(), record.clone());
        Ok(())
    }

    fn delete_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        if let Some(by_organization) = self.messages.get_mut(&record.event) {
            by_organization.remove(&record.organization);
            if by_organization.is_empty() {
                self.messages.remove(&record.event);
            }
        }
        Ok(())
    }

    fn insert_entry(&mut self, entry: IndexEntry) -> Result<(), StoreError> {
        self.index.insert(entry);
        Ok(())
    }

    fn remove_entry(&mut self, entry: &IndexEntry) -> Result<(), StoreError> {
        self.index.remove(entry);
        Ok(())
    }
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

impl ConfigStore for MemoryStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.with(|state| {
            Ok(Snapshot::new(
                state.endpoints.values().cloned().collect(),
                state.organizations.values().cloned().collect(),
            ))
        })
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state
                .queue
                .set_endpoint(endpoint.id, endpoint.max_concurrency, endpoint.claimable);
            state.endpoints.insert(endpoint.id, endpoint);
            state.config_version += 1;
            Ok(())
        })
    }

    fn remove_endpoint(&self, id: EndpointId) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state.queue.remove_endpoint(id);
            state.endpoints.remove(&id);
            state.config_version += 1;
            Ok(())
        })
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state
                .organizations
                .insert(organization.id.clone(), organization);
            state.config_version += 1;
            Ok(())
        })
    }

    fn config_version(&self) -> StoreFuture<'_, u64> {
        self.with(|state| Ok(state.config_version))
    }
}

impl WindowStore for MemoryStore {
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
}

impl QueueStore for MemoryStore {
    fn enqueue(
        &self,
        message: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
    ) -> StoreFuture<'_, Enqueued> {
        let mut new = NewMessage::new(message, deliveries);
        self.with(move |state| {
            if let Some(existing) = tables::existing(&state.records, &new.message)? {
                return Ok(Enqueued::Existing(existing));
            }
            for record in &mut new.deliveries {
                state.queue.push(record);
            }
            tables::insert_message(&mut state.records, new)
        })
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        self.with(move |state| {
            let (leases, next_due_ms) = state.queue.claim(&request);
            let open = u64::try_from(state.queue.len()).unwrap_or(u64::MAX);
            let records = &mut state.records;
            let mut deliveries = Vec::with_capacity(leases.len());
            for leased in &leases {
                let Some(record) = records.deliveries.get_mut(&leased.id) else {
                    continue;
                };
                leased.apply(record);
                let record = record.clone();
                let Some(message) = records.get_message(&record.organization, record.event) else {
                    return Err(StoreError::corrupt(format!(
                        "delivery {} has no message",
                        record.id
                    )));
                };
                let payload = message.payload.clone();
                deliveries.push(Claimed::new(record, payload));
            }
            Ok(Claim::new(deliveries, next_due_ms, open))
        })
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state.queue.finish(id, lease, &finish)?;
            let Some(record) = state.records.deliveries.get(&id).cloned() else {
                return Err(StoreError::corrupt(format!("delivery {id} has no record")));
            };
            tables::finish(&mut state.records, record, finish)
        })
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        self.with(move |state| {
            let State { queue, records, .. } = state;
            match tables::redrive(records, queue, id, now_ms)? {
                Some(record) => {
                    let entry = queue.entry(&record);
                    queue.insert(entry);
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    fn cancel_open(
        &self,
        endpoint: EndpointId,
        reason: String,
        now_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, u64> {
        self.with(move |state| {
            let State { queue, records, .. } = state;
            tables::cancel_open(records, queue, endpoint, &reason, now_ms, limit)
        })
    }

    /// Does nothing: the state lives as long as any clone, so a test can start a new
    /// sender on a clone after shutting the first one down.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl HistoryStore for MemoryStore {
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryRecord>> {
        self.with(move |state| state.records.delivery(id))
    }

    fn deliveries(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, Vec<DeliveryRecord>> {
        self.with(move |state| {
            Ok(ids
                .iter()
                .filter_map(|id| state.records.deliveries.get(id).cloned())
                .collect())
        })
    }

    fn message(
        &self,
        organization: OrganizationId,
        event: EventId,
    ) -> StoreFuture<'_, Option<MessageRecord>> {
        self.with(move |state| state.records.message(&organization, event))
    }

    fn messages(
        &self,
        organization: OrganizationId,
        events: Vec<EventId>,
    ) -> StoreFuture<'_, Vec<MessageRecord>> {
        self.with(move |state| {
            Ok(events
                .into_iter()
                .filter_map(|event| state.records.get_message(&organization, event).cloned())
                .collect())
        })
    }

    fn scan(&self, scan: Scan) -> StoreFuture<'_, Vec<Vec<u8>>> {
        self.with(move |state| Ok(state.records.index.scan(&scan)))
    }

    fn remove_finished(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, u64> {
        self.with(move |state| tables::remove_finished(&mut state.records, &ids))
    }

    fn remove_unrouted(&self, messages: Vec<(OrganizationId, EventId)>) -> StoreFuture<'_, u64> {
        self.with(move |state| tables::remove_unrouted(&mut state.records, &messages))
    }

    fn last_pruned(&self) -> StoreFuture<'_, Option<i64>> {
        self.with(|state| Ok(state.last_pruned))
    }

    fn set_last_pruned(&self, at_ms: i64) -> StoreFuture<'_, ()> {
        self.with(move |state| {
            state.last_pruned = Some(at_ms);
            Ok(())
        })
    }
}
