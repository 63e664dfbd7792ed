//! Record keeping shared by the in-process backends ([`MemoryStore`](super::MemoryStore)
//! and [`RedbStore`](super::RedbStore)): how a change to a delivery or message is written
//! with its index entries, written once over [`Tables`], which each backend implements
//! on its own maps or its write transaction.

use super::index::{self, IndexEntry};
use super::queue::{Queue, reopen, settle};
use super::record::{DeliveryRecord, MessageRecord};
use super::{Enqueued, Finish, StoreError};
use crate::delivery::DeliveryStatus;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// Records and index entries, as one backend holds them.
pub(crate) trait Tables {
    fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError>;
    /// Writes the record; `was_open` is whether its previous version (if any) was open,
    /// for a backend that keeps open and finished records apart.
    fn put_delivery(
        &mut self,
        record: DeliveryRecord,
        was_open: Option<bool>,
    ) -> Result<(), StoreError>;
    fn delete_delivery(&mut self, record: &DeliveryRecord) -> Result<(), StoreError>;
    fn message(
        &self,
        organization: &OrganizationId,
        event: EventId,
    ) -> Result<Option<MessageRecord>, StoreError>;
    fn put_message(&mut self, record: &MessageRecord) -> Result<(), StoreError>;
    fn delete_message(&mut self, record: &MessageRecord) -> Result<(), StoreError>;
    fn insert_entry(&mut self, entry: IndexEntry) -> Result<(), StoreError>;
    fn remove_entry(&mut self, entry: &IndexEntry) -> Result<(), StoreError>;
}

/// Writes `after` over `before` (absent for a new delivery) and moves its index entries:
/// all of them for a new delivery, the status-dependent ones when its status group or
/// finish time changed, none otherwise.
pub(crate) fn write_delivery(
    tables: &mut impl Tables,
    before: Option<&DeliveryRecord>,
    after: DeliveryRecord,
) -> Result<(), StoreError> {
    match before {
        None => {
            for entry in index::delivery_entries(&after) {
                tables.insert_entry(entry)?;
            }
        }
        Some(before) if index::status_changed(before, &after) => {
            for entry in index::delivery_status_entries(before) {
                tables.remove_entry(&entry)?;
            }
            for entry in index::delivery_status_entries(&after) {
                tables.insert_entry(entry)?;
            }
        }
        Some(_) => {}
    }
    tables.put_delivery(after, before.map(DeliveryRecord::is_open))
}

/// The organization's message with this event id, if it exists already.
pub(crate) fn existing(
    tables: &impl Tables,
    message: &MessageRecord,
) -> Result<Option<MessageRecord>, StoreError> {
    tables.message(&message.organization, message.event)
}

/// A message and its deliveries about to be stored, with every index entry computed
/// beforehand (outside the store's lock or writer thread).
#[derive(Debug)]
pub(crate) struct NewMessage {
    pub(crate) message: MessageRecord,
    pub(crate) deliveries: Vec<DeliveryRecord>,
    entries: Vec<IndexEntry>,
}

impl NewMessage {
    pub(crate) fn new(mut message: MessageRecord, deliveries: Vec<DeliveryRecord>) -> Self {
        message.deliveries = deliveries.iter().map(|d| d.id).collect();
        let mut entries = index::message_entries(&message);
        for delivery in &deliveries {
            entries.extend(index::delivery_entries(delivery));
        }
        Self {
            message,
            deliveries,
            entries,
        }
    }
}

/// Stores a new message and its deliveries (already given their `seq`).
pub(crate) fn insert_message(
    tables: &mut impl Tables,
    new: NewMessage,
) -> Result<Enqueued, StoreError> {
    let NewMessage {
        message,
        deliveries,
        entries,
    } = new;
    for entry in entries {
        tables.insert_entry(entry)?;
    }
    tables.put_message(&message)?;
    for delivery in deliveries {
        tables.put_delivery(delivery, None)?;
    }
    Ok(Enqueued::Stored)
}

/// Ends a lease in the record: the attempt, the new status, and the index entries that
/// move when it finished (delivered or failed).
pub(crate) fn finish(
    tables: &mut impl Tables,
    mut record: DeliveryRecord,
    finish: Finish,
) -> Result<(), StoreError> {
    let before = matches!(finish, Finish::Delivered(_) | Finish::Failed(_))
        .then(|| index::delivery_status_entries(&record));
    settle(&mut record, finish);
    if let Some(before) = before {
        for entry in &before {
            tables.remove_entry(entry)?;
        }
        for entry in index::delivery_status_entries(&record) {
            tables.insert_entry(entry)?;
        }
    }
    tables.put_delivery(record, Some(true))
}

/// Marks an open delivery cancelled. Returns false when it is not open any more.
pub(crate) fn cancel(
    tables: &mut impl Tables,
    id: DeliveryId,
    reason: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let Some(before) = tables.delivery(id)? else {
        return Ok(false);
    };
    if !before.is_open() {
        return Ok(false);
    }
    let mut after = before.clone();
    after.status = DeliveryStatus::Cancelled;
    after.lease = 0;
    after.finished_at_ms = Some(now_ms);
    after.cancel_reason = Some(reason.to_owned());
    write_delivery(tables, Some(&before), after)?;
    Ok(true)
}

/// Takes a failed delivery out of the finished records for a redrive: the record, due at
/// `now_ms` with a fresh round, given its new `seq` by `queue`. `None` when it is not
/// failed. The caller queues it (at once, or once the change is durable).
pub(crate) fn redrive(
    tables: &mut impl Tables,
    queue: &mut Queue,
    id: DeliveryId,
    now_ms: i64,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let Some(before) = tables.delivery(id)? else {
        return Ok(None);
    };
    if before.status != DeliveryStatus::Failed {
        return Ok(None);
    }
    let mut after = before.clone();
    reopen(&mut after, now_ms);
    queue.prepare(&mut after);
    write_delivery(tables, Some(&before), after.clone())?;
    Ok(Some(after))
}

/// Retention: removes finished deliveries and their index entries; a message goes with
/// its last delivery.
pub(crate) fn remove_finished(
    tables: &mut impl Tables,
    ids: &[DeliveryId],
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for &id in ids {
        let Some(record) = tables.delivery(id)? else {
            continue;
        };
        if record.is_open() {
            continue;
        }
        for entry in index::delivery_entries(&record) {
            tables.remove_entry(&entry)?;
        }
        tables.delete_delivery(&record)?;
        removed += 1;
        if let Some(stored) = tables.message(&record.organization, record.event)? {
            let mut message = stored.clone();
            message.deliveries.retain(|d| *d != id);
            if message.deliveries.is_empty() {
                drop_message(tables, &stored)?;
            } else {
                tables.put_message(&message)?;
            }
        }
    }
    Ok(removed)
}

/// Retention: removes messages that have no deliveries.
pub(crate) fn remove_unrouted(
    tables: &mut impl Tables,
    keys: &[(OrganizationId, EventId)],
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for (organization, event) in keys {
        if let Some(message) = tables.message(organization, *event)? {
            if message.deliveries.is_empty() {
                drop_message(tables, &message)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes a message as stored (its index entries follow from that version).
fn drop_message(tables: &mut impl Tables, stored: &MessageRecord) -> Result<(), StoreError> {
    for entry in index::message_entries(stored) {
        tables.remove_entry(&entry)?;
    }
    tables.delete_message(stored)
}

/// Cancels up to `limit` open deliveries of `endpoint`, taking them out of `queue`;
/// returns how many left the queue.
pub(crate) fn cancel_open(
    tables: &mut impl Tables,
    queue: &mut Queue,
    endpoint: EndpointId,
    reason: &str,
    now_ms: i64,
    limit: usize,
) -> Result<u64, StoreError> {
    let removed = queue.remove_open(endpoint, limit);
    for &id in &removed {
        cancel(tables, id, reason, now_ms)?;
    }
    Ok(u64::try_from(removed.len()).unwrap_or(u64::MAX))
}
