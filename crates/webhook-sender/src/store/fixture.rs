//! Records for the store tests, built one way for every backend's tests.

use super::{NewDelivery, Payload};
use crate::delivery::{AttemptRecord, AttemptResult, Delivery, DeliveryStatus};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// A new pending delivery to `endpoint` about resource `key`, due at `due_at_ms`, as
/// `publish` makes it (the store sets `seq`).
pub(crate) fn delivery(endpoint: EndpointId, key: &str, due_at_ms: i64) -> Delivery {
    Delivery {
        id: DeliveryId::generate(),
        event: EventId::generate(),
        endpoint,
        organization: OrganizationId::from("org"),
        kind: "wallet.created".into(),
        resource_key: key.into(),
        seq: 0,
        status: DeliveryStatus::Pending,
        due_at_ms,
        lease: 0,
        round_attempts: 0,
        attempts: Vec::new(),
        created_at_ms: 0,
        finished_at_ms: None,
    }
}

/// [`delivery`] with a payload to enqueue.
pub(crate) fn new_delivery(
    endpoint: EndpointId,
    key: &str,
    due_at_ms: i64,
    content: &[u8],
    domain: Option<&str>,
) -> NewDelivery {
    NewDelivery {
        record: delivery(endpoint, key, due_at_ms),
        payload: Payload {
            content: content.to_vec(),
            domain: domain.map(str::to_owned),
        },
    }
}

/// An attempt that got `status` with an empty body, started at `at_ms`.
pub(crate) fn response(status: u16, at_ms: i64, latency_ms: u64) -> AttemptRecord {
    AttemptRecord {
        number: 1,
        at_ms,
        latency_ms,
        result: AttemptResult::Response {
            status,
            body: String::new(),
        },
    }
}
