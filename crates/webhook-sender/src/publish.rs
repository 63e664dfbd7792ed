//! Publishing: redaction, the idempotency key (SPEC §1), fan-out to subscribed endpoints
//! of the event's organization, and a durable enqueue before returning.
//!
//! Event publishes ([`Publish::event`]) go to event-style and Standard Webhooks endpoints
//! subscribed to the event type; domain publishes ([`Publish::domain`]) go to domain-style
//! endpoints subscribed to the domain. Only endpoints of the event's own organization are
//! considered; paused endpoints queue, disabled ones do not.
//!
//! ```
//! use serde_json::json;
//! use webhook_core::domain::Domain;
//! use webhook_core::event::EventType;
//! use webhook_sender::Publish;
//!
//! let event = Publish::event("org-1", EventType::WalletCreated, "w-42", json!({"id": "w-42"}));
//! let update = Publish::domain("org-1", Domain::Wallet, json!({"id": "w-42", "status": "PROVISIONED"}));
//! # drop((event, update));
//! ```

#[cfg(feature = "postgres")]
mod in_transaction;

use serde_json::Value;
use time::OffsetDateTime;
use webhook_core::domain::Domain;
use webhook_core::event::{Event, EventType};
use webhook_core::idempotency::IdempotencyKey;

use crate::delivery::{duration_millis, to_millis};
use crate::error::Error;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
use crate::sender::Sender;
use crate::store::{DeliveryRecord, Enqueued, MessageRecord, Payload};

/// Entity and resource ids longer than this are refused.
const MAX_ENTITY_LEN: usize = 512;

/// Something to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    organization: OrganizationId,
    body: Body,
    event_id: Option<EventId>,
}

#[derive(Debug, Clone)]
enum Body {
    Event {
        event_type: EventType,
        entity: String,
        data: Value,
    },
    Domain {
        domain: Domain,
        resource: Value,
    },
}

impl Publish {
    /// An event-style event about `entity` (whose id, with the organization and type,
    /// derives the idempotency key). `data` is the entity; it is redacted before sending.
    #[must_use]
    pub fn event(
        organization: impl Into<OrganizationId>,
        event_type: EventType,
        entity: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            organization: organization.into(),
            body: Body::Event {
                event_type,
                entity: entity.into(),
                data,
            },
            event_id: None,
        }
    }

    /// A domain-style resource update. `resource` must be a JSON object with a string `id`
    /// (the entity for idempotency and ordering); it is redacted before sending.
    #[must_use]
    pub fn domain(
        organization: impl Into<OrganizationId>,
        domain: Domain,
        resource: Value,
    ) -> Self {
        Self {
            organization: organization.into(),
            body: Body::Domain { domain, resource },
            event_id: None,
        }
    }

    /// Uses this event id instead of a new one. The id is the event's `id` and the
    /// Standard Webhooks `webhook-id`, which receivers deduplicate on: give the same id
    /// when retrying a publish whose answer was lost, and Standard Webhooks receivers
    /// handle the event once (event-style receivers already do, through the idempotency
    /// key). Default is a new UUIDv7.
    #[must_use]
    pub fn with_event_id(mut self, id: EventId) -> Self {
        self.event_id = Some(id);
        self
    }
}

/// What a publish did: the event's id and idempotency key, and one delivery per endpoint
/// it fanned out to (empty when no endpoint subscribes). Every delivery is durably queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// The event's id (the event JSON's `id`, the Standard Webhooks `webhook-id`).
    pub event_id: EventId,
    /// The idempotency key (the event JSON's `idempotencyKey`).
    pub idempotency_key: String,
    /// The deliveries, one per endpoint.
    pub deliveries: Vec<QueuedDelivery>,
}

impl PublishReceipt {
    /// The deliveries' ids, in the receipt's order.
    #[must_use]
    pub fn delivery_ids(&self) -> Vec<DeliveryId> {
        self.deliveries.iter().map(|d| d.id).collect()
    }
}

/// One delivery a publish queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// The endpoint it goes to.
    pub endpoint: EndpointId,
}

impl Sender {
    /// Publishes an event: redacts it, derives its idempotency key, stores it once as a
    /// message, fans it out to every subscribed endpoint of its organization (paused ones
    /// included: they queue), and returns once the message and every delivery are durably
    /// stored (at-least-once from then on).
    ///
    /// Publishing an event id the organization already has ([`Publish::with_event_id`])
    /// stores nothing and returns the first publish's receipt, so a publish retried after a
    /// lost answer is sent once.
    ///
    /// To publish inside your own database transaction, see `Sender::publish_in` (feature
    /// `postgres`).
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad organization, entity or resource;
    /// [`Error::is_shutdown`]; [`Error::is_store`] when the message could not be stored
    /// (then none of it was).
    pub async fn publish(&self, publish: Publish) -> Result<PublishReceipt, Error> {
        let prepared = self.prepare(publish).await?;
        let store = &self.engine().store;
        let (message, deliveries, pending) = prepared.into_parts();
        let existing = match store.enqueue(message, deliveries).await? {
            Enqueued::Stored => None,
            Enqueued::Existing(existing) => {
                // Deliveries retention already removed are left out.
                let deliveries = store.deliveries(existing.deliveries.clone()).await?;
                Some((existing, deliveries))
            }
        };
        Ok(self.published(pending, existing))
    }

    /// Everything a publish does before it enqueues, shared by every way to publish:
    /// validation, redaction, the idempotency window (and the configuration version read
    /// with it), the message and one delivery per subscribed endpoint.
    pub(crate) async fn prepare(&self, publish: Publish) -> Result<Prepared, Error> {
        let engine = self.engine();
        engine.check_open()?;
        let Publish {
            organization,
            body,
            event_id,
        } = publish;
        if !organization.is_valid() {
            return Err(Error::config(
                "organization id must be 1 to 256 bytes without control characters",
            ));
        }
        let (kind, entity, mut value, domain) = match body {
            Body::Event {
                event_type,
                entity,
                data,
            } => (event_type.as_str().to_owned(), entity, data, None),
            Body::Domain { domain, resource } => {
                let id = resource
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::config("a domain resource needs a string `id`"))?
                    .to_owned();
                (domain.as_str().to_owned(), id, resource, Some(domain))
            }
        };
        if entity.is_empty() || entity.len() > MAX_ENTITY_LEN {
            return Err(Error::config("entity id must be 1 to 512 bytes"));
        }
        self.redactor().redact(&kind, &mut value);

        let now = engine.now();
        let (window, version) = engine
            .store
            .claim_idempotency_window_and_config_version(
                organization.as_str(),
                &kind,
                &entity,
                now.unix_timestamp(),
            )
            .await?;
        // Another node may have added an endpoint of this organization.
        if engine
            .config
            .sync_from(engine.store.as_ref(), version)
            .await?
        {
            engine.wake();
        }
        let key = IdempotencyKey::derive(organization.as_str(), &kind, &entity, window);
        let event_id = event_id.unwrap_or_else(EventId::generate);

        let content = match &domain {
            Some(_) => serde_json::to_vec(&value),
            None => serde_json::to_vec(&Event {
                id: event_id.to_string(),
                event_type: EventType::from(kind.as_str()),
                idempotency_key: key.as_str().to_owned(),
                organization_id: organization.as_str().to_owned(),
                created_at: whole_seconds(now),
                data: value,
            }),
        }
        .map_err(|e| Error::config(format!("payload does not serialize: {e}")))?;
        let now_ms = to_millis(now);
        let message = MessageRecord::new(
            event_id,
            organization.clone(),
            kind.as_str(),
            entity.as_str(),
            key.as_str(),
            Payload::new(content, domain.as_ref().map(|d| d.as_str().to_owned())),
            now_ms,
        );
        let deliveries: Vec<DeliveryRecord> = engine
            .config
            .endpoints_of(&message.organization)
            .iter()
            .filter(|endpoint| endpoint.wants(domain.is_some(), &kind))
            .map(|endpoint| {
                let first_delay = endpoint.spec.retry.delay_before(1).unwrap_or_default();
                let due = now_ms.saturating_add(duration_millis(first_delay));
                DeliveryRecord::new(&message, endpoint.spec.id, due)
            })
            .collect();
        let receipt = PublishReceipt {
            event_id,
            idempotency_key: key.into_string(),
            deliveries: queued(&deliveries),
        };
        Ok(Prepared {
            message,
            deliveries,
            pending: Pending {
                receipt,
                family: if domain.is_some() { "domain" } else { "event" },
                organization,
                kind,
            },
        })
    }

    /// The receipt of an enqueued publish, shared by every way to publish: the prepared
    /// one when it was stored (waking the scheduler), the first publish's when the event
    /// id existed (`existing`, with its deliveries that are left).
    pub(crate) fn published(
        &self,
        pending: Pending,
        existing: Option<(MessageRecord, Vec<DeliveryRecord>)>,
    ) -> PublishReceipt {
        let Pending {
            receipt,
            family,
            organization,
            kind,
        } = pending;
        if let Some((existing, deliveries)) = existing {
            tracing::debug!(event.id = %receipt.event_id, "event id already published; not queued again");
            return PublishReceipt {
                event_id: receipt.event_id,
                idempotency_key: existing.idempotency_key,
                deliveries: queued(&deliveries),
            };
        }
        if !receipt.deliveries.is_empty() {
            self.engine().wake();
        }
        metrics::counter!(crate::metrics::PUBLISHED, "style_family" => family).increment(1);
        tracing::debug!(
            event.id = %receipt.event_id,
            organization = %organization,
            kind = %kind,
            deliveries = receipt.deliveries.len(),
            "published"
        );
        receipt
    }
}

/// A publish ready to enqueue ([`Sender::prepare`]).
#[derive(Debug)]
pub(crate) struct Prepared {
    message: MessageRecord,
    deliveries: Vec<DeliveryRecord>,
    pending: Pending,
}

impl Prepared {
    /// What to enqueue, and what the receipt is made from.
    pub(crate) fn into_parts(self) -> (MessageRecord, Vec<DeliveryRecord>, Pending) {
        (self.message, self.deliveries, self.pending)
    }
}

/// The receipt of a prepared publish, until it is known whether it was stored.
#[derive(Debug)]
pub(crate) struct Pending {
    receipt: PublishReceipt,
    family: &'static str,
    organization: OrganizationId,
    kind: String,
}

/// What a receipt says of these deliveries.
fn queued(deliveries: &[DeliveryRecord]) -> Vec<QueuedDelivery> {
    deliveries
        .iter()
        .map(|d| QueuedDelivery {
            id: d.id,
            endpoint: d.endpoint,
        })
        .collect()
}

fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}
