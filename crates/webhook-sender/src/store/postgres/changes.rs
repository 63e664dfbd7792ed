//! Changes to records and index entries, computed by the record keeping every backend
//! shares ([`tables`](crate::store::tables)) on rows read (and locked) beforehand, then
//! written in batches inside the same transaction.
//!
//! The shared record keeping is synchronous; Postgres is not. So a change reads the rows
//! it may touch first ([`Changes::read_deliveries`], [`Changes::read_messages`], with
//! `FOR UPDATE`), lets the shared functions run on them in memory, and
//! [`Changes::write`] sends the outcome: only the final state of each record and entry.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sqlx::PgConnection;

use super::{DeliveryRow, Names, backend, delivery_from_row};
use crate::ids::{DeliveryId, EventId, OrganizationId};
use crate::store::StoreError;
use crate::store::index::IndexEntry;
use crate::store::record::{DeliveryRecord, MessageRecord};
use crate::store::tables;

/// A message's key: organization and event id, as stored.
type MessageKey = (String, String);

fn message_key(organization: &OrganizationId, event: EventId) -> MessageKey {
    (organization.as_str().to_owned(), event.to_string())
}

/// Records read for a change and what the change did to them.
#[derive(Debug, Default)]
pub(super) struct Changes {
    deliveries: HashMap<DeliveryId, DeliveryRecord>,
    messages: HashMap<MessageKey, MessageRecord>,
    put_deliveries: Vec<DeliveryId>,
    deleted_deliveries: Vec<DeliveryId>,
    put_messages: Vec<MessageKey>,
    deleted_messages: Vec<MessageKey>,
    /// Each entry touched, and whether it is present afterwards.
    entries: BTreeMap<IndexEntry, bool>,
}

impl Changes {
    /// Reads (with `FOR UPDATE`) the deliveries of `ids` that exist.
    pub(super) async fn read_deliveries(
        &mut self,
        connection: &mut PgConnection,
        names: &Names,
        ids: &[DeliveryId],
    ) -> Result<(), StoreError> {
        for record in read_deliveries(connection, names, ids, true).await? {
            self.deliveries.insert(record.id, record);
        }
        Ok(())
    }

    /// Reads (with `FOR UPDATE`) the messages of `keys` that exist.
    pub(super) async fn read_messages(
        &mut self,
        connection: &mut PgConnection,
        names: &Names,
        keys: &[(OrganizationId, EventId)],
    ) -> Result<(), StoreError> {
        for message in read_messages(connection, names, keys, true).await? {
            let key = message_key(&message.organization, message.event);
            self.messages.insert(key, message);
        }
        Ok(())
    }

    /// The deliveries read, as changed so far.
    pub(super) fn deliveries(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.deliveries.values()
    }

    /// Writes the outcome: updated and removed deliveries and messages, removed and added
    /// index entries.
    pub(super) async fn write(
        self,
        connection: &mut PgConnection,
        names: &Names,
    ) -> Result<(), StoreError> {
        let (added, removed): (Vec<_>, Vec<_>) =
            self.entries.into_iter().partition(|(_, present)| *present);
        if !removed.is_empty() {
            let (sets, members): (Vec<_>, Vec<_>) =
                removed.into_iter().map(|(e, _)| (e.set, e.member)).unzip();
            sqlx::query(&names.sql(
                "DELETE FROM {s}.index_entries i USING unnest($1::bytea[], $2::bytea[]) \
                 AS u(set, member) WHERE i.set = u.set AND i.member = u.member",
            ))
            .bind(sets)
            .bind(members)
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        }
        if !added.is_empty() {
            let entries = added.into_iter().map(|(e, _)| e).collect();
            insert_entries(connection, names, entries).await?;
        }
        let mut updated: Vec<&DeliveryRecord> = self
            .put_deliveries
            .iter()
            .filter(|id| !self.deleted_deliveries.contains(id))
            .filter_map(|id| self.deliveries.get(id))
            .collect();
        updated.sort_by_key(|d| d.id);
        updated.dedup_by_key(|d| d.id);
        if !updated.is_empty() {
            update_deliveries(connection, names, &updated).await?;
        }
        if !self.deleted_deliveries.is_empty() {
            let ids: Vec<String> = self
                .deleted_deliveries
                .iter()
                .map(ToString::to_string)
                .collect();
            sqlx::query(&names.sql("DELETE FROM {s}.deliveries WHERE id = ANY($1)"))
                .bind(ids)
                .execute(&mut *connection)
                .await
                .map_err(backend)?;
        }
        let mut put: Vec<&MessageRecord> = self
            .put_messages
            .iter()
            .filter(|key| !self.deleted_messages.contains(key))
            .filter_map(|key| self.messages.get(key))
            .collect();
        put.sort_by_key(|m| (m.organization.as_str().to_owned(), m.event));
        put.dedup_by_key(|m| (m.organization.as_str().to_owned(), m.event));
        if !put.is_empty() {
            let organizations: Vec<&str> = put.iter().map(|m| m.organization.as_str()).collect();
            let events: Vec<String> = put.iter().map(|m| m.event.to_string()).collect();
            let recs: Vec<Vec<u8>> = put.iter().map(|m| message_rec(m)).collect();
            sqlx::query(&names.sql(
                "UPDATE {s}.messages m SET rec = u.rec \
                 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(organization, event, rec) \
                 WHERE m.organization = u.organization AND m.event = u.event",
            ))
            .bind(organizations)
            .bind(events)
            .bind(recs)
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        }
        if !self.deleted_messages.is_empty() {
            let (organizations, events): (Vec<String>, Vec<String>) =
                self.deleted_messages.into_iter().unzip();
            sqlx::query(&names.sql(
                "DELETE FROM {s}.messages m USING unnest($1::text[], $2::text[]) \
                 AS u(organization, event) \
                 WHERE m.organization = u.organization AND m.event = u.event",
            ))
            .bind(organizations)
            .bind(events)
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }
}

impl tables::Tables for Changes {
    fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(self.deliveries.get(&id).cloned())
    }

    fn put_delivery(
        &mut self,
        record: DeliveryRecord,
        _was_open: Option<bool>,
    ) -> Result<(), StoreError> {
        self.put_deliveries.push(record.id);
        self.deliveries.insert(record.id, record);
        Ok(())
    }

    fn delete_delivery(&mut self, record: &DeliveryRecord) -> Result<(), StoreError> {
        self.deliveries.remove(&record.id);
        self.deleted_deliveries.push(record.id);
        Ok(())
    }

    fn message(
        &self,
        organization: &OrganizationId,
        event: EventId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self
            .messages
            .get(&message_key(organization, event))
            .cloned())
    }

    fn put_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        let key = message_key(&record.organization, record.event);
        self.put_messages.push(key.clone());
        self.messages.insert(key, record.clone());
        Ok(())
    }

    fn delete_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        let key = message_key(&record.organization, record.event);
        self.messages.remove(&key);
        self.deleted_messages.push(key);
        Ok(())
    }

    fn insert_entry(&mut self, entry: IndexEntry) -> Result<(), StoreError> {
        self.entries.insert(entry, true);
        Ok(())
    }

    fn remove_entry(&mut self, entry: &IndexEntry) -> Result<(), StoreError> {
        self.entries.insert(entry.clone(), false);
        Ok(())
    }
}

/// A message's record as stored in `rec`: without the payload's content (kept in `body`).
pub(super) fn message_rec(message: &MessageRecord) -> Vec<u8> {
    let mut stored = message.clone();
    stored.payload.content = Bytes::new();
    stored.encode()
}

/// Adds index entries (present ones are left as they are).
pub(super) async fn insert_entries(
    connection: &mut PgConnection,
    names: &Names,
    entries: Vec<IndexEntry>,
) -> Result<(), StoreError> {
    let (sets, members): (Vec<_>, Vec<_>) = entries.into_iter().map(|e| (e.set, e.member)).unzip();
    sqlx::query(&names.sql(
        "INSERT INTO {s}.index_entries (set, member) \
         SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING",
    ))
    .bind(sets)
    .bind(members)
    .execute(&mut *connection)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Writes the changing fields of `records`; a delivery that closed stops being a head.
async fn update_deliveries(
    connection: &mut PgConnection,
    names: &Names,
    records: &[&DeliveryRecord],
) -> Result<(), StoreError> {
    let mut attempts = Vec::with_capacity(records.len());
    for record in records {
        attempts.push(serde_json::to_vec(&record.attempts).map_err(StoreError::corrupt)?);
    }
    let ids: Vec<String> = records.iter().map(|d| d.id.to_string()).collect();
    let seqs: Vec<i64> = records
        .iter()
        .map(|d| i64::try_from(d.seq).unwrap_or(i64::MAX))
        .collect();
    let statuses: Vec<&str> = records.iter().map(|d| d.status.as_str()).collect();
    let dues: Vec<i64> = records.iter().map(|d| d.due_at_ms).collect();
    let leases: Vec<i64> = records
        .iter()
        .map(|d| i64::try_from(d.lease).unwrap_or(i64::MAX))
        .collect();
    let rounds: Vec<i32> = records
        .iter()
        .map(|d| i32::try_from(d.round_attempts).unwrap_or(i32::MAX))
        .collect();
    let finished: Vec<Option<i64>> = records.iter().map(|d| d.finished_at_ms).collect();
    let reasons: Vec<Option<&str>> = records.iter().map(|d| d.cancel_reason.as_deref()).collect();
    sqlx::query(&names.sql(
        "UPDATE {s}.deliveries d SET seq = u.seq, status = u.status, \
         head = d.head AND u.status IN ('pending', 'in_flight'), due_at_ms = u.due, \
         lease = u.lease, round_attempts = u.round, attempts = u.attempts, \
         finished_at_ms = u.fin, cancel_reason = u.why \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], \
         $6::integer[], $7::bytea[], $8::bigint[], $9::text[]) \
         AS u(id, seq, status, due, lease, round, attempts, fin, why) WHERE d.id = u.id",
    ))
    .bind(ids)
    .bind(seqs)
    .bind(statuses)
    .bind(dues)
    .bind(leases)
    .bind(rounds)
    .bind(attempts)
    .bind(finished)
    .bind(reasons)
    .execute(&mut *connection)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The deliveries of `ids` that exist, in no particular order.
pub(super) async fn read_deliveries(
    connection: &mut PgConnection,
    names: &Names,
    ids: &[DeliveryId],
    lock: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let sql = names.sql(if lock {
        "SELECT rec, seq, status, due_at_ms, lease, round_attempts, attempts, finished_at_ms, \
         cancel_reason FROM {s}.deliveries WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    } else {
        "SELECT rec, seq, status, due_at_ms, lease, round_attempts, attempts, finished_at_ms, \
         cancel_reason FROM {s}.deliveries WHERE id = ANY($1)"
    });
    let rows: Vec<DeliveryRow> = sqlx::query_as(&sql)
        .bind(ids)
        .fetch_all(&mut *connection)
        .await
        .map_err(backend)?;
    rows.into_iter().map(delivery_from_row).collect()
}

/// The messages of `keys` that exist, in no particular order.
pub(super) async fn read_messages(
    connection: &mut PgConnection,
    names: &Names,
    keys: &[(OrganizationId, EventId)],
    lock: bool,
) -> Result<Vec<MessageRecord>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let organizations: Vec<&str> = keys.iter().map(|(o, _)| o.as_str()).collect();
    let events: Vec<String> = keys.iter().map(|(_, e)| e.to_string()).collect();
    let sql = names.sql(if lock {
        "SELECT m.rec, m.body FROM {s}.messages m \
         JOIN unnest($1::text[], $2::text[]) AS u(organization, event) \
         ON m.organization = u.organization AND m.event = u.event \
         ORDER BY m.organization, m.event FOR UPDATE OF m"
    } else {
        "SELECT m.rec, m.body FROM {s}.messages m \
         JOIN unnest($1::text[], $2::text[]) AS u(organization, event) \
         ON m.organization = u.organization AND m.event = u.event"
    });
    let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(&sql)
        .bind(organizations)
        .bind(events)
        .fetch_all(&mut *connection)
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|(rec, body)| {
            let mut message = MessageRecord::decode(&rec)?;
            message.payload.content = Bytes::from(body);
            Ok(message)
        })
        .collect()
}
