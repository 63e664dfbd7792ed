//! Identifiers: endpoints, deliveries and events are UUID v7 (time-ordered); organizations
//! are the platform's own strings.
//!
//! ```
//! use webhook_sender::{EndpointId, OrganizationId};
//!
//! let id: EndpointId = "0196153b-67bc-7cd3-b511-354373d28130".parse()?;
//! assert_eq!(id.to_string(), "0196153b-67bc-7cd3-b511-354373d28130");
//! assert_eq!(OrganizationId::from("org-1").as_str(), "org-1");
//! # Ok::<(), uuid::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// The nil id, the smallest in sort order (for range bounds).
            #[allow(dead_code)]
            pub(crate) const MIN: Self = Self(Uuid::nil());

            /// A new, time-ordered (UUID v7) id.
            #[must_use]
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            #[must_use]
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The UUID as a 128-bit integer, the form stores use as a key.
            #[must_use]
            pub fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            /// The id from its 128-bit integer form.
            #[must_use]
            pub fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }
    };
}

uuid_id! {
    /// Identifies a webhook endpoint.
    EndpointId
}

uuid_id! {
    /// Identifies one delivery: one event to one endpoint, with all its attempts.
    DeliveryId
}

uuid_id! {
    /// Identifies a published event; the same for every endpoint it fans out to. It is the
    /// event's `id` field and the Standard Webhooks `webhook-id`.
    EventId
}

/// An organization (tenant). Every endpoint belongs to exactly one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Wraps the platform's organization id. Validation (non-empty, at most 256 bytes, no
    /// control characters) happens where the id is used.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the id is usable: non-empty, at most 256 bytes, no control characters.
    pub(crate) fn is_valid(&self) -> bool {
        !self.0.is_empty() && self.0.len() <= 256 && !self.0.chars().any(char::is_control)
    }
}

impl From<&str> for OrganizationId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for OrganizationId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrganizationId({:?})", self.0)
    }
}
