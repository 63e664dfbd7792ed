//! The secondary indexes every backend keeps beside its records, defined once here.
//!
//! An index is a set of byte-string *members* kept in byte order, under a byte-string set
//! name; a backend needs nothing more than "insert", "remove" and "the members of a set
//! from one byte string to another, at most n" ([`Scan`]): a `BTreeSet` in memory, a redb
//! table keyed by `(set, member)`, a Redis sorted set read with `ZRANGE … BYLEX`. What is
//! indexed, in which order, and which index answers which query is decided here and in
//! [`crate::history`], so no backend repeats it. ARCHITECTURE.md lists the indexes.
//!
//! A member starts with an 8-byte big-endian time (order-preserving; inverted for the
//! newest-first indexes) followed by the 16-byte id, so members are unique, a page walk
//! can resume strictly after the last member it saw, and a time range is a byte range.
//! Set names join length-prefixed parts, so no organization id, event type or resource
//! key can make two sets collide.

use super::record::{DeliveryRecord, MessageRecord};
use crate::delivery::DeliveryStatus;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// One entry of an index: `member` in set `set`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    /// The set's name.
    pub set: Vec<u8>,
    /// The member, ordered bytewise within the set.
    pub member: Vec<u8>,
}

/// Read the members of `set` in byte order from `start` (inclusive) to `end`
/// (exclusive), at most `limit` of them. `None` bounds are open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The set's name.
    pub set: Vec<u8>,
    /// The first member that may be returned.
    pub start: Option<Vec<u8>>,
    /// Members from here on are not returned.
    pub end: Option<Vec<u8>>,
    /// At most this many members.
    pub limit: usize,
}

impl Scan {
    /// Whether `member` lies within the scan's bounds.
    #[must_use]
    pub fn contains(&self, member: &[u8]) -> bool {
        self.start.as_deref().is_none_or(|start| member >= start)
            && self.end.as_deref().is_none_or(|end| member < end)
    }
}

/// Which delivery statuses an index groups: open (pending or in flight) deliveries share
/// one, so that only finishing, cancelling and redriving move entries, never a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusGroup {
    Pending,
    Delivered,
    Failed,
    Cancelled,
}

impl StatusGroup {
    pub(crate) fn of(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending | DeliveryStatus::InFlight => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::Cancelled => Self::Cancelled,
        }
    }

    fn tag(self) -> &'static [u8] {
        match self {
            Self::Pending => b"pending",
            Self::Delivered => b"delivered",
            Self::Failed => b"failed",
            Self::Cancelled => b"cancelled",
        }
    }
}

/// Retention classes: how long a finished delivery is kept depends on its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetentionClass {
    /// Delivered deliveries.
    Delivered,
    /// Failed and cancelled deliveries.
    Failed,
    /// Messages that fanned out to no endpoint (kept as long as delivered ones).
    Unrouted,
}

/// A set name from length-prefixed parts.
fn set(parts: &[&[u8]]) -> Vec<u8> {
    let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        name.extend_from_slice(&len.to_be_bytes());
        name.extend_from_slice(part);
    }
    name
}

/// Maps an i64 to a u64 with the same order.
fn ordered(t: i64) -> u64 {
    u64::from_ne_bytes(t.to_ne_bytes()) ^ (1 << 63)
}

/// A member sorting oldest first.
pub(crate) fn oldest_first(t: i64, id: u128) -> Vec<u8> {
    let mut member = Vec::with_capacity(24);
    member.extend_from_slice(&ordered(t).to_be_bytes());
    member.extend_from_slice(&id.to_be_bytes());
    member
}

/// A member sorting newest first.
pub(crate) fn newest_first(t: i64, id: u128) -> Vec<u8> {
    let mut member = Vec::with_capacity(24);
    member.extend_from_slice(&(!ordered(t)).to_be_bytes());
    member.extend_from_slice(&id.to_be_bytes());
    member
}

/// The first member of times at or after `t` in an oldest-first set.
pub(crate) fn oldest_first_from(t: i64) -> Vec<u8> {
    ordered(t).to_be_bytes().to_vec()
}

/// The first member of times at or before `t` in a newest-first set.
pub(crate) fn newest_first_from(t: i64) -> Vec<u8> {
    (!ordered(t)).to_be_bytes().to_vec()
}

/// The id in a member (bytes 8 to 24).
#[must_use]
pub fn member_id(member: &[u8]) -> Option<u128> {
    let bytes: [u8; 16] = member.get(8..24)?.try_into().ok()?;
    Some(u128::from_be_bytes(bytes))
}

/// The smallest member strictly after `member`.
pub(crate) fn after(member: &[u8]) -> Vec<u8> {
    let mut next = member.to_vec();
    next.push(0);
    next
}

pub(crate) fn deliveries_of_organization(
    organization: &OrganizationId,
    status: Option<StatusGroup>,
) -> Vec<u8> {
    match status {
        None => set(&[b"do", organization.as_str().as_bytes()]),
        Some(status) => set(&[b"dos", organization.as_str().as_bytes(), status.tag()]),
    }
}

pub(crate) fn deliveries_of_endpoint(endpoint: EndpointId, status: Option<StatusGroup>) -> Vec<u8> {
    let id = endpoint.as_u128().to_be_bytes();
    match status {
        None => set(&[b"de", &id]),
        Some(status) => set(&[b"des", &id, status.tag()]),
    }
}

/// Failed deliveries by failure time, oldest first: of an organization, or of one
/// endpoint.
pub(crate) fn failed_of(organization: &OrganizationId, endpoint: Option<EndpointId>) -> Vec<u8> {
    match endpoint {
        None => set(&[b"fo", organization.as_str().as_bytes()]),
        Some(endpoint) => set(&[b"fe", &endpoint.as_u128().to_be_bytes()]),
    }
}

/// The set of an organization's messages by type or by resource (a resource set serves
/// both filters together: a resource has few messages).
pub(crate) fn messages_of(
    organization: &OrganizationId,
    kind: Option<&str>,
    resource: Option<&str>,
) -> Vec<u8> {
    let org = organization.as_str().as_bytes();
    match (kind, resource) {
        (None, None) => set(&[b"mo", org]),
        (Some(kind), None) => set(&[b"mk", org, kind.as_bytes()]),
        (_, Some(resource)) => set(&[b"mr", org, resource.as_bytes()]),
    }
}

pub(crate) fn retention(class: RetentionClass) -> Vec<u8> {
    let tag: &[u8] = match class {
        RetentionClass::Delivered => b"delivered",
        RetentionClass::Failed => b"failed",
        RetentionClass::Unrouted => b"unrouted",
    };
    set(&[b"r", tag])
}

/// Every index entry of a delivery in its current state: [`delivery_fixed_entries`] and
/// [`delivery_status_entries`].
#[must_use]
pub fn delivery_entries(record: &DeliveryRecord) -> Vec<IndexEntry> {
    let mut entries = delivery_fixed_entries(record);
    entries.extend(delivery_status_entries(record));
    entries
}

/// The entries a delivery keeps all its life: the unfiltered listings of its organization
/// and its endpoint.
#[must_use]
pub fn delivery_fixed_entries(record: &DeliveryRecord) -> Vec<IndexEntry> {
    let created = newest_first(record.created_at_ms, record.id.as_u128());
    vec![
        IndexEntry {
            set: deliveries_of_organization(&record.organization, None),
            member: created.clone(),
        },
        IndexEntry {
            set: deliveries_of_endpoint(record.endpoint, None),
            member: created,
        },
    ]
}

/// The entries that depend on a delivery's status group and finish time (the listings by
/// status, failures, retention); they move only when one of those changes
/// ([`status_changed`]).
#[must_use]
pub fn delivery_status_entries(record: &DeliveryRecord) -> Vec<IndexEntry> {
    let group = StatusGroup::of(record.status);
    let id = record.id.as_u128();
    let created = newest_first(record.created_at_ms, id);
    let mut entries = vec![
        IndexEntry {
            set: deliveries_of_organization(&record.organization, Some(group)),
            member: created.clone(),
        },
        IndexEntry {
            set: deliveries_of_endpoint(record.endpoint, Some(group)),
            member: created,
        },
    ];
    if let Some(finished) = record.finished_at_ms {
        let by_finish = oldest_first(finished, id);
        let class = match group {
            StatusGroup::Delivered => Some(RetentionClass::Delivered),
            StatusGroup::Failed | StatusGroup::Cancelled => Some(RetentionClass::Failed),
            StatusGroup::Pending => None,
        };
        if let Some(class) = class {
            entries.push(IndexEntry {
                set: retention(class),
                member: by_finish.clone(),
            });
        }
        if group == StatusGroup::Failed {
            entries.push(IndexEntry {
                set: failed_of(&record.organization, None),
                member: by_finish.clone(),
            });
            entries.push(IndexEntry {
                set: failed_of(&record.organization, Some(record.endpoint)),
                member: by_finish,
            });
        }
    }
    entries
}

/// Whether going from `before` to `after` moves index entries: the status group or the
/// finish time changed (a claim, a retry or a release never does).
#[must_use]
pub fn status_changed(before: &DeliveryRecord, after: &DeliveryRecord) -> bool {
    StatusGroup::of(before.status) != StatusGroup::of(after.status)
        || before.finished_at_ms != after.finished_at_ms
}

/// Every index entry of a message. A message without deliveries is kept for the
/// delivered retention (its member then carries the organization, to find the record).
#[must_use]
pub fn message_entries(record: &MessageRecord) -> Vec<IndexEntry> {
    let member = newest_first(record.created_at_ms, record.event.as_u128());
    let (kind, resource) = (record.kind.as_str(), record.resource_key.as_str());
    let org = &record.organization;
    let mut entries: Vec<IndexEntry> = [
        messages_of(org, None, None),
        messages_of(org, Some(kind), None),
        messages_of(org, None, Some(resource)),
    ]
    .into_iter()
    .map(|set| IndexEntry {
        set,
        member: member.clone(),
    })
    .collect();
    if record.deliveries.is_empty() {
        let mut member = oldest_first(record.created_at_ms, record.event.as_u128());
        member.extend_from_slice(org.as_str().as_bytes());
        entries.push(IndexEntry {
            set: retention(RetentionClass::Unrouted),
            member,
        });
    }
    entries
}

/// The message an unrouted-retention member names.
pub(crate) fn unrouted_message(member: &[u8]) -> Option<(OrganizationId, EventId)> {
    let event = EventId::from_u128(member_id(member)?);
    let org = std::str::from_utf8(member.get(24..)?).ok()?;
    Some((OrganizationId::from(org), event))
}

/// The delivery a delivery-index member names.
pub(crate) fn member_delivery(member: &[u8]) -> Option<DeliveryId> {
    member_id(member).map(DeliveryId::from_u128)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn members_order_by_time_then_id_and_sets_never_collide() {
        assert!(oldest_first(-1, 5) < oldest_first(0, 0));
        assert!(oldest_first(i64::MIN, u128::MAX) < oldest_first(i64::MAX, 0));
        assert!(newest_first(10, 0) < newest_first(9, u128::MAX));
        assert!(newest_first(i64::MAX, 0) < newest_first(i64::MIN, 0));
        assert!(oldest_first_from(7) <= oldest_first(7, 0));
        assert!(newest_first_from(7) <= newest_first(7, 0));
        assert!(newest_first(8, u128::MAX) < newest_first_from(7));
        assert_eq!(member_id(&newest_first(3, 42)), Some(42));
        assert!(after(&oldest_first(1, 1)) > oldest_first(1, 1));
        assert!(after(&oldest_first(1, 1)) < oldest_first(1, 2));

        let a = OrganizationId::from("a");
        let tricky = OrganizationId::from("a\u{0}\u{0}\u{0}\u{3}dos");
        assert_ne!(
            deliveries_of_organization(&a, Some(StatusGroup::Failed)),
            deliveries_of_organization(&tricky, None)
        );
        assert_ne!(
            messages_of(&a, Some("x.y"), None),
            messages_of(&a, None, Some("x.y"))
        );
    }
}
