//! Outcomes: what the platform hears when a delivery is delivered or fails for good,
//! through [`Sender::outcomes`](crate::Sender::outcomes).
//!
//! ```
//! use webhook_sender::OutcomeStatus;
//!
//! assert_eq!(OutcomeStatus::Delivered.as_str(), "delivered");
//! ```

use std::fmt;

use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeStatus {
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed, or the answer was not retryable.
    Failed,
}

impl OutcomeStatus {
    /// The lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery that has just been delivered or has failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The delivery; [`Sender::delivery`](crate::Sender::delivery) has its history.
    pub delivery: DeliveryId,
    /// The event it carried.
    pub event: EventId,
    /// Where it went.
    pub endpoint: EndpointId,
    /// The endpoint's organization.
    pub organization: OrganizationId,
    /// How it ended.
    pub status: OutcomeStatus,
    /// Attempts made over its whole life.
    pub attempts: u32,
    /// The last attempt's HTTP status, if it got a response.
    pub last_status: Option<u16>,
}
