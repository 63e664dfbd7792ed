//! Delivery state: one event on its way to one endpoint, with every attempt made so far.
//!
//! [`Sender::delivery`](crate::Sender::delivery) returns a [`Delivery`], a view of the
//! store's [`DeliveryRecord`].
//!
//! ```
//! use webhook_sender::{AttemptRecord, AttemptResult};
//!
//! let attempt = AttemptRecord {
//!     number: 1,
//!     at_ms: 1_700_000_000_000,
//!     latency_ms: 12,
//!     result: AttemptResult::Response { status: 503, body: "busy".into() },
//! };
//! assert_eq!(attempt.status(), Some(503));
//! assert!(!attempt.is_timeout());
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
use crate::store::DeliveryRecord;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for an earlier delivery about the same resource).
    Pending,
    /// An attempt is running under a lease.
    InFlight,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed, or the endpoint answered with an error that is not retried.
    Failed,
    /// Its endpoint was deleted before it was delivered; it will never be sent.
    Cancelled,
}

impl DeliveryStatus {
    /// Whether the delivery is finished (delivered, failed or cancelled).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Cancelled)
    }

    /// The lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status named by [`as_str`](DeliveryStatus::as_str).
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "in_flight" => Self::InFlight,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt got no HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptErrorKind {
    /// The endpoint did not answer within its timeout.
    Timeout,
    /// The TCP connection could not be made (refused, unreachable, reset).
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// Every address of the host is forbidden by the SSRF guard.
    Forbidden,
    /// The connection broke or the peer spoke something other than HTTP.
    Protocol,
    /// The request could not be signed or built (a configuration problem).
    Request,
}

impl AttemptErrorKind {
    /// The lowercase name, as used in metrics labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Forbidden => "forbidden",
            Self::Protocol => "protocol",
            Self::Request => "request",
        }
    }
}

/// What one attempt got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttemptResult {
    /// An HTTP response.
    Response {
        /// The status code.
        status: u16,
        /// The start of the response body (lossy UTF-8, at most 1 KiB), for debugging.
        body: String,
    },
    /// No response.
    Error {
        /// Why.
        kind: AttemptErrorKind,
        /// A short description (never contains secrets).
        message: String,
    },
}

/// One attempt in a delivery's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based, counted over the delivery's whole life (redrives continue the count).
    pub number: u32,
    /// When the attempt started, Unix milliseconds.
    pub at_ms: i64,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// What came back.
    pub result: AttemptResult,
}

impl AttemptRecord {
    /// The HTTP status, if a response arrived.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self.result {
            AttemptResult::Response { status, .. } => Some(status),
            AttemptResult::Error { .. } => None,
        }
    }

    /// The error kind, if no response arrived.
    #[must_use]
    pub fn error_kind(&self) -> Option<AttemptErrorKind> {
        match self.result {
            AttemptResult::Response { .. } => None,
            AttemptResult::Error { kind, .. } => Some(kind),
        }
    }

    /// Whether the attempt timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.error_kind() == Some(AttemptErrorKind::Timeout)
    }

    /// Whether no connection could be made (including DNS failures).
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(
            self.error_kind(),
            Some(AttemptErrorKind::Connect | AttemptErrorKind::Dns)
        )
    }

    /// Whether the SSRF guard refused every address of the host.
    #[must_use]
    pub fn is_forbidden(&self) -> bool {
        self.error_kind() == Some(AttemptErrorKind::Forbidden)
    }

    /// When the attempt started.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        from_millis(self.at_ms)
    }
}

/// A delivery and its history, as [`Sender::delivery`](crate::Sender::delivery) and the
/// history queries return it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// This delivery.
    pub id: DeliveryId,
    /// The event it carries ([`Sender::message`](crate::Sender::message) has it).
    pub event: EventId,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// The endpoint's organization.
    pub organization: OrganizationId,
    /// The event type (event and standard styles) or domain (domain style).
    pub kind: String,
    /// What ordering is kept per: the entity id or resource id. Per endpoint, deliveries
    /// with the same key go out in publish order and never two at once.
    pub resource_key: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Pending: when the next attempt is due. In flight: when the lease ends. Unix ms.
    pub due_at_ms: i64,
    /// Attempts since the delivery was created or last redriven; the retry policy counts these.
    pub round_attempts: u32,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// When it was published, Unix ms.
    pub created_at_ms: i64,
    /// When it was delivered, failed or cancelled, Unix ms.
    pub finished_at_ms: Option<i64>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
}

impl Delivery {
    /// When it was published.
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        from_millis(self.created_at_ms)
    }

    /// When it was delivered, failed or cancelled.
    #[must_use]
    pub fn finished_at(&self) -> Option<OffsetDateTime> {
        self.finished_at_ms.map(from_millis)
    }

    /// The last attempt, if any.
    #[must_use]
    pub fn last_attempt(&self) -> Option<&AttemptRecord> {
        self.attempts.last()
    }
}

impl From<DeliveryRecord> for Delivery {
    fn from(record: DeliveryRecord) -> Self {
        Self {
            id: record.id,
            event: record.event,
            endpoint: record.endpoint,
            organization: record.organization,
            kind: record.kind,
            resource_key: record.resource_key,
            status: record.status,
            due_at_ms: record.due_at_ms,
            round_attempts: record.round_attempts,
            attempts: record.attempts,
            created_at_ms: record.created_at_ms,
            finished_at_ms: record.finished_at_ms,
            cancel_reason: record.cancel_reason,
        }
    }
}

/// Unix milliseconds of a time (saturating).
pub(crate) fn to_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds (the epoch if out of range).
pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Milliseconds of a duration (saturating).
pub(crate) fn duration_millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
