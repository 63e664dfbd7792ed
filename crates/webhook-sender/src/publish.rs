//! Publishing: redaction, the idempotency key (SPEC §1), fan-out to subscribed endpoints
//! of the event's organization, and a durable enqueue before returning.
//!
//! Event publishes ([`Publish::event`]) go to event-style and Standard Webhooks endpoints
//! subscribed to the event type; domain publishes ([`Publish::domain`]) go to domain-style
//! endpoints subscribed to the domain. Only endpoints of the event's own organization are
//! considered, and only enabled ones.
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

use serde_json::Value;
use time::OffsetDateTime;
use webhook_core::domain::Domain;
use webhook_core::event::{Event, EventType};
use webhook_core::idempotency::IdempotencyKey;

use crate::delivery::{Delivery, DeliveryStatus, duration_millis, to_millis};
use crate::error::Error;
use crate::ids::{DeliveryId, EventId, OrganizationId};
use crate::sender::Sender;
use crate::store::{NewDelivery, Payload};

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
    pub deliveries: Vec<DeliveryId>,
}

impl Sender {
    /// Publishes an event: redacts it, derives its idempotency key, fans it out to every
    /// subscribed endpoint of its organization, and returns once every delivery is durably
    /// stored (at-least-once from then on).
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad organization, entity or resource;
    /// [`Error::is_shutdown`]; [`Error::is_store`] when the deliveries could not be stored
    /// (then none of them was).
    pub async fn publish(&self, publish: Publish) -> Result<PublishReceipt, Error> {
        let shared = &self.shared;
        shared.check_open()?;
        // Another node may have added an endpoint of this organization.
        shared.sync_config().await?;
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
        shared.redactor.redact(&kind, &mut value);

        let now = shared.now();
        let window = shared
            .store
            .claim_idempotency_window(organization.as_str(), &kind, &entity, now.unix_timestamp())
            .await?;
        let key = IdempotencyKey::derive(organization.as_str(), &kind, &entity, window);
        let event_id = event_id.unwrap_or_else(EventId::generate);

        let targets: Vec<_> = {
            let registry = shared
                .registry
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            registry
                .of_organization(&organization)
                .filter(|endpoint| endpoint.wants(domain.is_some(), &kind))
                .cloned()
                .collect()
        };

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
        let payload = Payload {
            content,
            domain: domain.as_ref().map(|d| d.as_str().to_owned()),
        };

        let now_ms = to_millis(now);
        let deliveries: Vec<NewDelivery> = targets
            .iter()
            .map(|endpoint| {
                let first_delay = endpoint.spec.retry.delay_before(1).unwrap_or_default();
                NewDelivery {
                    record: Delivery {
                        id: DeliveryId::generate(),
                        event: event_id,
                        endpoint: endpoint.spec.id,
                        organization: organization.clone(),
                        kind: kind.clone(),
                        resource_key: entity.clone(),
                        seq: 0,
                        status: DeliveryStatus::Pending,
                        due_at_ms: now_ms.saturating_add(duration_millis(first_delay)),
                        lease: 0,
                        round_attempts: 0,
                        attempts: Vec::new(),
                        created_at_ms: now_ms,
                        finished_at_ms: None,
                    },
                    payload: payload.clone(),
                }
            })
            .collect();
        let ids: Vec<DeliveryId> = deliveries.iter().map(|d| d.record.id).collect();
        if !deliveries.is_empty() {
            shared.store.enqueue(deliveries).await?;
            shared.wake.notify_one();
        }
        let family = if domain.is_some() { "domain" } else { "event" };
        metrics::counter!(crate::metrics::PUBLISHED, "style_family" => family).increment(1);
        tracing::debug!(
            event.id = %event_id,
            organization = %organization,
            kind = %kind,
            deliveries = ids.len(),
            "published"
        );
        Ok(PublishReceipt {
            event_id,
            idempotency_key: key.into_string(),
            deliveries: ids,
        })
    }
}

fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}
