//! What stores keep: [`DeliveryRecord`] and [`MessageRecord`], and their versioned byte
//! form.
//!
//! These are storage records, not the public views ([`Delivery`](crate::Delivery),
//! [`Message`](crate::Message)): a backend keeps [`DeliveryRecord::encode`]'s bytes and
//! reads them back with [`DeliveryRecord::decode`], which refuses a record written by a
//! newer format instead of misreading it. The byte form starts with a format version
//! ([`RECORD_VERSION`]); what follows is private to this crate and may change with the
//! version.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::delivery::{AttemptRecord, DeliveryStatus};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// The format version of encoded records this build writes and the newest it reads.
pub const RECORD_VERSION: u8 = 1;

/// One event on its way to one endpoint, as stored, with every attempt made so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// This delivery.
    pub id: DeliveryId,
    /// The event it carries; with the organization, the key of its [`MessageRecord`].
    pub event: EventId,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// The endpoint's organization.
    pub organization: OrganizationId,
    /// The event type (event and standard styles) or domain (domain style).
    pub kind: String,
    /// What ordering is kept per: the entity id or resource id.
    pub resource_key: String,
    /// Position in publish order, assigned by the store.
    pub seq: u64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Pending: when the next attempt is due. In flight: when the lease ends. Unix ms.
    pub due_at_ms: i64,
    /// The current lease's token (0 when none); finishing with another token is refused.
    pub lease: u64,
    /// Attempts since the delivery was created or last redriven.
    pub round_attempts: u32,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// When it was published, Unix ms.
    pub created_at_ms: i64,
    /// When it was delivered, failed or cancelled, Unix ms.
    pub finished_at_ms: Option<i64>,
    /// Why it was cancelled (the endpoint was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl DeliveryRecord {
    /// A new pending delivery of `message` to `endpoint`, due at `due_at_ms`; the store
    /// assigns `seq` when it enqueues it.
    #[must_use]
    pub fn new(message: &MessageRecord, endpoint: EndpointId, due_at_ms: i64) -> Self {
        Self {
            id: DeliveryId::generate(),
            event: message.event,
            endpoint,
            organization: message.organization.clone(),
            kind: message.kind.clone(),
            resource_key: message.resource_key.clone(),
            seq: 0,
            status: DeliveryStatus::Pending,
            due_at_ms,
            lease: 0,
            round_attempts: 0,
            attempts: Vec::new(),
            created_at_ms: message.created_at_ms,
            finished_at_ms: None,
            cancel_reason: None,
        }
    }

    /// Whether it is still open (pending or in flight): in its chain of the queue.
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.status.is_terminal()
    }

    /// The versioned byte form.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Reads [`DeliveryRecord::encode`]'s bytes.
    ///
    /// # Errors
    /// [`StoreError::is_incompatible`] for a newer format, a corrupt-record error for bytes
    /// that do not decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_versioned(bytes)
    }
}

/// What is sent: the same bytes for every attempt and endpoint, signed afresh each time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payload {
    /// The event JSON (event and standard styles) or the resource JSON (domain style),
    /// after redaction.
    #[serde(with = "base64_bytes")]
    pub content: Bytes,
    /// The domain, for domain style.
    pub domain: Option<String>,
}

impl Payload {
    /// A payload; `domain` is set for domain-style resources.
    #[must_use]
    pub fn new(content: impl Into<Bytes>, domain: Option<String>) -> Self {
        Self {
            content: content.into(),
            domain,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("content_len", &self.content.len())
            .field("domain", &self.domain)
            .finish()
    }
}

/// A published event, stored once however many endpoints it fans out to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRecord {
    /// The event id; unique within the organization.
    pub event: EventId,
    /// Whose event it is.
    pub organization: OrganizationId,
    /// The event type or domain.
    pub kind: String,
    /// The entity or resource id.
    pub resource_key: String,
    /// The event's idempotency key (SPEC §1).
    pub idempotency_key: String,
    /// What every delivery sends.
    pub payload: Payload,
    /// When it was published, Unix ms.
    pub created_at_ms: i64,
    /// One delivery per endpoint it fanned out to; a delivery removed by retention leaves
    /// this list, and the message goes with its last delivery.
    pub deliveries: Vec<DeliveryId>,
}

impl MessageRecord {
    /// A message without deliveries yet.
    #[must_use]
    pub fn new(
        event: EventId,
        organization: OrganizationId,
        kind: impl Into<String>,
        resource_key: impl Into<String>,
        idempotency_key: impl Into<String>,
        payload: Payload,
        created_at_ms: i64,
    ) -> Self {
        Self {
            event,
            organization,
            kind: kind.into(),
            resource_key: resource_key.into(),
            idempotency_key: idempotency_key.into(),
            payload,
            created_at_ms,
            deliveries: Vec::new(),
        }
    }

    /// The versioned byte form.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Reads [`MessageRecord::encode`]'s bytes.
    ///
    /// # Errors
    /// As [`DeliveryRecord::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_versioned(bytes)
    }
}

/// Payload bytes as base64 text inside the JSON record.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Bytes,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

/// The versioned byte form of a stored record (also endpoint and organization specs).
pub(crate) fn encode_versioned<T: Serialize>(record: &T) -> Vec<u8> {
    let mut bytes = vec![RECORD_VERSION];
    // Serializing these plain structs to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, record);
    bytes
}

/// Reads [`encode_versioned`]'s bytes, refusing newer formats.
pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => serde_json::from_slice(body).map_err(StoreError::corrupt),
        Some((&version, _)) if version > RECORD_VERSION => Err(StoreError::incompatible(format!(
            "record format {version} is newer than this build's {RECORD_VERSION}"
        ))),
        _ => Err(StoreError::corrupt("unknown record format")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_newer_formats_are_refused() {
        let message = MessageRecord::new(
            EventId::generate(),
            OrganizationId::from("org"),
            "wallet.created",
            "w-1",
            "key",
            Payload::new(&b"{}"[..], None),
            5,
        );
        let delivery = DeliveryRecord::new(&message, EndpointId::generate(), 7);
        assert_eq!(
            DeliveryRecord::decode(&delivery.encode()).unwrap(),
            delivery
        );
        assert_eq!(MessageRecord::decode(&message.encode()).unwrap(), message);
        let mut newer = delivery.encode();
        newer[0] = RECORD_VERSION + 1;
        assert!(
            DeliveryRecord::decode(&newer)
                .unwrap_err()
                .is_incompatible()
        );
        assert!(!DeliveryRecord::decode(b"").unwrap_err().is_incompatible());
    }
}
