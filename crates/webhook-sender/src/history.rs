//! History queries: deliveries, messages and failures of one organization, a page at a
//! time.
//!
//! ```no_run
//! # async fn demo(sender: webhook_sender::Sender) -> Result<(), webhook_sender::Error> {
//! use webhook_sender::history::{DeliveryFilter, PageRequest, StatusFilter};
//! use webhook_sender::OrganizationId;
//!
//! let org = OrganizationId::from("org-1");
//! let filter = DeliveryFilter::default().status(StatusFilter::Failed);
//! let mut page = PageRequest::new(50)?;
//! loop {
//!     let deliveries = sender.deliveries(&org, &filter, &page).await?;
//!     for delivery in &deliveries.items {
//!         println!("{} {} attempts", delivery.id, delivery.attempts.len());
//!     }
//!     match deliveries.next_cursor {
//!         Some(cursor) => page = page.after(cursor),
//!         None => break,
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Every query is scoped to one organization: an id of another organization's endpoint,
//! delivery or message answers not-found (or an empty page), never the record.
//!
//! **Pages.** `limit` is 1 to 250; a page's [`Page::next_cursor`] resumes strictly after
//! its last item. Listings are newest first (failures: oldest first, since `since`), in
//! an order fixed when a record is created, so a walk that began before new messages were
//! published neither repeats nor skips a record, and new records never appear in it. A
//! status filter reads each record's status when its page is read: a delivery that
//! changes status during the walk (a pending one delivered) appears or not according to
//! its status then. Each page reads one index range of at most `limit + 1` members and
//! the records they name, whatever the size of the store (ARCHITECTURE.md, "History
//! indexes").

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::delivery::{Delivery, to_millis};
use crate::error::Error;
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
use crate::message::Message;
use crate::store::index::{self, Scan, StatusGroup};
use crate::store::{DeliveryRecord, Store};

/// The largest page.
pub const MAX_LIMIT: usize = 250;

/// Which deliveries a status filter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusFilter {
    /// Not finished yet: pending or in flight.
    Pending,
    /// Delivered.
    Delivered,
    /// Failed for good.
    Failed,
    /// Cancelled (its endpoint was deleted).
    Cancelled,
}

impl StatusFilter {
    fn group(self) -> StatusGroup {
        match self {
            Self::Pending => StatusGroup::Pending,
            Self::Delivered => StatusGroup::Delivered,
            Self::Failed => StatusGroup::Failed,
            Self::Cancelled => StatusGroup::Cancelled,
        }
    }
}

/// An opaque position in a listing, from [`Page::next_cursor`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Vec<u8>);

impl Cursor {
    /// The cursor's text form (URL-safe).
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Reads [`Cursor::encode`]'s text.
    ///
    /// # Errors
    /// [`Error::is_invalid`] for text that no listing issued.
    pub fn decode(text: &str) -> Result<Self, Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::config("cursor is not one this server issued"))?;
        // Every listing's members are an 8-byte time and a 16-byte id.
        if bytes.len() != 24 {
            return Err(Error::config("cursor is not one this server issued"));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.encode())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// How much of a listing to read, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: usize,
    after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    ///
    /// # Errors
    /// [`Error::is_invalid`] unless `limit` is 1 to [`MAX_LIMIT`].
    pub fn new(limit: usize) -> Result<Self, Error> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::config(format!(
                "limit must be 1 to {MAX_LIMIT}, not {limit}"
            )));
        }
        Ok(Self { limit, after: None })
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The page size.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// A time range: `from` inclusive, `until` exclusive; either may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    from_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl TimeRange {
    /// From `from` on (inclusive).
    #[must_use]
    pub fn from(mut self, from: OffsetDateTime) -> Self {
        self.from_ms = Some(to_millis(from));
        self
    }

    /// Before `until` (exclusive).
    #[must_use]
    pub fn until(mut self, until: OffsetDateTime) -> Self {
        self.until_ms = Some(to_millis(until));
        self
    }

    /// Bounds of a newest-first set: `start` at the newest allowed time.
    fn newest_first_bounds(self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let start = self
            .until_ms
            .map(|until| index::newest_first_from(until.saturating_sub(1)));
        let end = self
            .from_ms
            .and_then(|from| from.checked_sub(1))
            .map(index::newest_first_from);
        (start, end)
    }
}

/// Which deliveries of an organization to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    endpoint: Option<EndpointId>,
    status: Option<StatusFilter>,
    created: TimeRange,
}

impl DeliveryFilter {
    /// Only deliveries to this endpoint (which must belong to the organization).
    #[must_use]
    pub fn endpoint(mut self, endpoint: EndpointId) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Only deliveries in this status.
    #[must_use]
    pub fn status(mut self, status: StatusFilter) -> Self {
        self.status = Some(status);
        self
    }

    /// Only deliveries published in this range.
    #[must_use]
    pub fn created(mut self, range: TimeRange) -> Self {
        self.created = range;
        self
    }

    /// The endpoint filter, if any.
    #[must_use]
    pub fn endpoint_id(&self) -> Option<EndpointId> {
        self.endpoint
    }
}

/// Which messages of an organization to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    kind: Option<String>,
    resource: Option<String>,
    created: TimeRange,
}

impl MessageFilter {
    /// Only messages of this event type or domain (as its wire name, e.g.
    /// `transaction.confirmed` or `TRANSACTION`).
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only messages about this entity or resource id.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Only messages published in this range.
    #[must_use]
    pub fn created(mut self, range: TimeRange) -> Self {
        self.created = range;
        self
    }
}

/// Where a scan starts: after the cursor, or at the range's start.
fn start_after(range_start: Option<Vec<u8>>, page: &PageRequest) -> Option<Vec<u8>> {
    match (&page.after, range_start) {
        (Some(cursor), Some(start)) => Some(index::after(&cursor.0).max(start)),
        (Some(cursor), None) => Some(index::after(&cursor.0)),
        (None, start) => start,
    }
}

/// Reads a page of members: one more than the page, to know whether another follows.
async fn members(
    store: &dyn Store,
    set: Vec<u8>,
    (start, end): (Option<Vec<u8>>, Option<Vec<u8>>),
    page: &PageRequest,
) -> Result<(Vec<Vec<u8>>, Option<Cursor>), Error> {
    let scan = Scan {
        set,
        start: start_after(start, page),
        end,
        limit: page.limit + 1,
    };
    let mut members = store.scan(scan).await?;
    let next = if members.len() > page.limit {
        members.truncate(page.limit);
        members.last().cloned().map(Cursor)
    } else {
        None
    };
    Ok((members, next))
}

/// Records named by members, of `organization` only.
async fn records_of(
    store: &dyn Store,
    organization: &OrganizationId,
    members: &[Vec<u8>],
) -> Result<Vec<DeliveryRecord>, Error> {
    let ids: Vec<DeliveryId> = members
        .iter()
        .filter_map(|m| index::member_delivery(m))
        .collect();
    let records = store.deliveries(ids).await?;
    Ok(records
        .into_iter()
        .filter(|record| record.organization == *organization)
        .collect())
}

/// A page of an organization's deliveries.
pub(crate) async fn deliveries(
    store: &dyn Store,
    organization: &OrganizationId,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> Result<Page<Delivery>, Error> {
    let group = filter.status.map(StatusFilter::group);
    let set = match filter.endpoint {
        Some(endpoint) => index::deliveries_of_endpoint(endpoint, group),
        None => index::deliveries_of_organization(organization, group),
    };
    let (members, next_cursor) =
        members(store, set, filter.created.newest_first_bounds(), page).await?;
    let mut records = records_of(store, organization, &members).await?;
    if let Some(status) = filter.status {
        // A record read after the index (it changed status in between) is left out.
        records.retain(|record| StatusGroup::of(record.status) == status.group());
    }
    Ok(Page {
        items: records.into_iter().map(Delivery::from).collect(),
        next_cursor,
    })
}

/// A page of failed deliveries of an organization (or one of its endpoints) that failed
/// at or after `since_ms`, oldest first.
pub(crate) async fn failed_since(
    store: &dyn Store,
    organization: &OrganizationId,
    endpoint: Option<EndpointId>,
    since_ms: i64,
    page: &PageRequest,
) -> Result<Page<Delivery>, Error> {
    let set = index::failed_of(organization, endpoint);
    let range = (Some(index::oldest_first_from(since_ms)), None);
    let (members, next_cursor) = members(store, set, range, page).await?;
    let records = records_of(store, organization, &members).await?;
    Ok(Page {
        items: records.into_iter().map(Delivery::from).collect(),
        next_cursor,
    })
}

/// A page of an organization's messages. Type and resource together are served by the
/// resource's set, filtered by type: the cost is bounded by the resource's messages.
pub(crate) async fn messages(
    store: &dyn Store,
    organization: &OrganizationId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>, Error> {
    let set = index::messages_of(
        organization,
        filter.kind.as_deref(),
        filter.resource.as_deref(),
    );
    let bounds = filter.created.newest_first_bounds();
    let kind = filter.kind.as_deref().filter(|_| filter.resource.is_some());
    let mut request = page.clone();
    let mut items = Vec::new();
    loop {
        let (members, next_cursor) = members(store, set.clone(), bounds.clone(), &request).await?;
        let events: Vec<EventId> = members
            .iter()
            .filter_map(|m| index::member_id(m).map(EventId::from_u128))
            .collect();
        let records = store.messages(organization.clone(), events).await?;
        let Some(kind) = kind else {
            return Ok(Page {
                items: records.into_iter().map(Message::from).collect(),
                next_cursor,
            });
        };
        for record in records {
            if record.kind != kind {
                continue;
            }
            let member = index::newest_first(record.created_at_ms, record.event.as_u128());
            items.push(Message::from(record));
            if items.len() == page.limit {
                return Ok(Page {
                    items,
                    next_cursor: Some(Cursor(member)),
                });
            }
        }
        match next_cursor {
            Some(cursor) => request = page.clone().after(cursor),
            None => {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert!(PageRequest::new(0).unwrap_err().is_invalid());
        assert!(PageRequest::new(251).unwrap_err().is_invalid());
        assert_eq!(PageRequest::new(250).unwrap().limit(), 250);
        let cursor = Cursor(index::newest_first(5, 7));
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!", "AAAA", &"A".repeat(1000)] {
            assert!(Cursor::decode(bad).unwrap_err().is_invalid(), "{bad}");
        }
    }

    #[test]
    fn time_ranges_are_inclusive_from_and_exclusive_until() {
        let at = |ms: i64| index::newest_first(ms, 1);
        let range = TimeRange {
            from_ms: Some(10),
            until_ms: Some(20),
        };
        let (start, end) = range.newest_first_bounds();
        let scan = Scan {
            set: Vec::new(),
            start,
            end,
            limit: 1,
        };
        assert!(scan.contains(&at(10)));
        assert!(scan.contains(&at(19)));
        assert!(!scan.contains(&at(20)));
        assert!(!scan.contains(&at(9)));
        let open = TimeRange::default().newest_first_bounds();
        assert_eq!(open, (None, None));
    }
}
