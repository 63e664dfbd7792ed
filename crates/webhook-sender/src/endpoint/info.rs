//! What an endpoint looks like from outside: [`EndpointInfo`] and [`EndpointState`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use webhook_core::Style;

use super::config::RateLimit;
use crate::ids::{EndpointId, OrganizationId};
use crate::retry::RetryPolicy;

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EndpointState {
    /// Deliveries are queued and sent.
    Active,
    /// Paused by an operator: deliveries are queued and none is sent until it is resumed.
    Paused,
    /// Disabled by the sender (the endpoint answered `410 Gone`): new events are not
    /// queued for it; what was queued before waits, and is sent once it is resumed.
    Disabled {
        /// Why.
        reason: String,
    },
}

impl EndpointState {
    /// The lowercase name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled { .. } => "disabled",
        }
    }
}

/// What [`Endpoints::get`](crate::Endpoints::get) tells about an endpoint (no secrets).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// The endpoint.
    pub id: EndpointId,
    /// Its organization.
    pub organization: OrganizationId,
    /// Where it receives.
    pub url: String,
    /// Its wire style.
    pub style: Style,
    /// Event types or domains it subscribes to.
    pub subscriptions: Vec<String>,
    /// Whether it receives deliveries.
    pub state: EndpointState,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Its per-attempt timeout.
    pub timeout: Duration,
    /// Its concurrency cap.
    pub max_concurrency: u32,
    /// Its rate cap.
    pub rate_limit: Option<RateLimit>,
    /// How many signing secrets it holds (more than one during a rotation).
    pub signing_keys: usize,
    /// The public keys receivers verify with, oldest first: base64 SPKI DER for the domain
    /// style (`MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…`), `whpk_…` for Standard Webhooks
    /// `v1a`; empty for HMAC secrets, which are never shown.
    pub public_keys: Vec<String>,
    /// When it was created, Unix ms.
    pub created_at_ms: i64,
    /// What the operator wrote about it (empty when nothing).
    pub description: String,
    /// The names of its custom headers (their values may be credentials and are not
    /// shown).
    pub header_names: Vec<String>,
}
