//! Records for the store tests, built one way for every backend's tests and for the public
//! test suite ([`crate::testing`]).

#[cfg(test)]
use super::record::DeliveryRecord;
use super::record::{MessageRecord, Payload};
use super::{Store, StoredEndpoint};
use crate::delivery::{AttemptRecord, AttemptResult};
use crate::ids::{EndpointId, EventId, OrganizationId};

/// A message of organization `org` about resource `key`, published at `created_at_ms`.
pub(crate) fn message(org: &str, key: &str, created_at_ms: i64, content: &[u8]) -> MessageRecord {
    MessageRecord::new(
        EventId::generate(),
        OrganizationId::from(org),
        "wallet.created",
        key,
        format!("idem-{key}"),
        Payload::new(content.to_vec(), None),
        created_at_ms,
    )
}

/// A new pending delivery to `endpoint` about resource `key`, due at `due_at_ms`, as
/// `publish` makes it (the store sets `seq`), of a fresh message of organization "org".
#[cfg(test)]
pub(crate) fn delivery(endpoint: EndpointId, key: &str, due_at_ms: i64) -> DeliveryRecord {
    DeliveryRecord::new(&message("org", key, 0, key.as_bytes()), endpoint, due_at_ms)
}

/// A claimable endpoint with concurrency cap `cap`, stored in `store`.
pub(crate) async fn endpoint(store: &dyn Store, cap: u32) -> EndpointId {
    let id = EndpointId::generate();
    store
        .put_endpoint(StoredEndpoint::new(id, cap, true, b"{}".to_vec()))
        .await
        .expect("store the endpoint");
    id
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
