//! Messages: a published event as stored once, whatever the number of endpoints it fans
//! out to. [`Sender::message`](crate::Sender::message) looks one up by event id with its
//! deliveries; [`Sender::messages`](crate::Sender::messages) lists them.

use bytes::Bytes;
use time::OffsetDateTime;

use crate::delivery::{Delivery, from_millis};
use crate::ids::{DeliveryId, EventId, OrganizationId};
use crate::store::MessageRecord;

/// A published event: what was sent (after redaction) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The event id (the event's `id`, the Standard Webhooks `webhook-id`).
    pub event_id: EventId,
    /// Whose event it is.
    pub organization: OrganizationId,
    /// The event type or domain.
    pub kind: String,
    /// The entity or resource id.
    pub resource_key: String,
    /// The idempotency key (SPEC §1).
    pub idempotency_key: String,
    /// The redacted payload every delivery sends: the event JSON, or for the domain style
    /// the resource JSON (before base64 wrapping).
    pub payload: Bytes,
    /// When it was published, Unix ms.
    pub created_at_ms: i64,
    /// Its deliveries, one per endpoint (those not yet removed by retention).
    pub deliveries: Vec<DeliveryId>,
}

impl Message {
    /// When it was published.
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        from_millis(self.created_at_ms)
    }
}

impl From<MessageRecord> for Message {
    fn from(record: MessageRecord) -> Self {
        Self {
            event_id: record.event,
            organization: record.organization,
            kind: record.kind,
            resource_key: record.resource_key,
            idempotency_key: record.idempotency_key,
            payload: record.payload.content,
            created_at_ms: record.created_at_ms,
            deliveries: record.deliveries,
        }
    }
}

/// A message with its deliveries and their statuses, from
/// [`Sender::message`](crate::Sender::message).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageWithDeliveries {
    /// The message.
    pub message: Message,
    /// Its deliveries.
    pub deliveries: Vec<Delivery>,
}
