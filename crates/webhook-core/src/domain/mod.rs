//! Domain style (SPEC §2): the `{domain, timestamp, payload}` envelope, the typed
//! Transaction, Wallet and Approval resources it carries, and their status machines with
//! the rule for updates that arrive out of order ([`lifecycle`]: [`Supersedes`]).
//!
//! ```
//! use webhook_core::domain::{Domain, Envelope, Resource};
//!
//! let resource = br#"{"id":"w1","status":"PROVISIONED","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z"}"#;
//! let envelope = Envelope::new(Domain::Wallet, time::macros::datetime!(2025-05-08 14:15:37 UTC), resource);
//! assert_eq!(envelope.timestamp, "2025-05-08T14:15:37Z");
//! let Resource::Wallet(wallet) = envelope.decode_resource()? else { unreachable!() };
//! assert!(wallet.status.is_terminal());
//! # Ok::<(), webhook_core::VerifyError>(())
//! ```

mod approval;
pub mod lifecycle;
mod quantity;
mod transaction;
mod wallet;

pub use approval::{Approval, ApprovalSet, ApprovalSetStatus, ApprovalStatus};
pub use lifecycle::{Lifecycle, Revision, Step, Supersedes};
pub use quantity::Quantity;
pub use transaction::{Asset, Destination, Transaction, TransactionStatus};
pub use wallet::{Wallet, WalletStatus};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::VerifyError;
use crate::string_enum::string_enum;
use crate::timestamp::parse_utc_seconds;

string_enum! {
    /// The subscription domain of a domain-style webhook.
    pub enum Domain {
        /// Transaction status changes; payload is a [`Transaction`].
        Transaction => "TRANSACTION",
        /// Wallet status changes; payload is a [`Wallet`].
        Wallet => "WALLET",
        /// Approval request updates; payload is an [`ApprovalSet`].
        Approval => "APPROVAL",
    }
}

/// The domain-style request body. The `Signature` header signs `payload` as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Which kind of resource `payload` holds.
    pub domain: Domain,
    /// RFC 3339 UTC, whole seconds, `Z` suffix: when this attempt was sent.
    pub timestamp: String,
    /// Standard base64 (with padding) of the resource's JSON object.
    pub payload: String,
}

impl Envelope {
    /// Wraps a resource's JSON bytes for sending at `at`.
    #[must_use]
    pub fn new(domain: Domain, at: OffsetDateTime, resource_json: &[u8]) -> Self {
        Self {
            domain,
            timestamp: format_timestamp(at),
            payload: STANDARD.encode(resource_json),
        }
    }

    /// The envelope timestamp as Unix seconds.
    ///
    /// # Errors
    /// [`VerifyError::MalformedTimestamp`] when it is not exactly `YYYY-MM-DDTHH:MM:SSZ`
    /// (see [`parse_utc_seconds`]).
    pub fn unix_timestamp(&self) -> Result<i64, VerifyError> {
        parse_utc_seconds(&self.timestamp)
    }

    /// The decoded payload bytes (the resource's JSON).
    ///
    /// # Errors
    /// [`VerifyError::MalformedBody`] when the payload is not standard base64.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, VerifyError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|_| VerifyError::MalformedBody("payload is not standard base64".into()))
    }

    /// Decodes the payload into the typed resource of this envelope's domain.
    ///
    /// # Errors
    /// [`VerifyError::MalformedBody`] when the payload is not base64 of the expected JSON.
    pub fn decode_resource(&self) -> Result<Resource, VerifyError> {
        Resource::from_json(&self.domain, &self.payload_bytes()?)
    }
}

/// Formats a time the way envelopes carry it: RFC 3339 UTC, whole seconds, `Z`.
#[must_use]
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let whole = utc.replace_nanosecond(0).unwrap_or(utc);
    whole
        .format(&Rfc3339)
        .unwrap_or_else(|_| whole.unix_timestamp().to_string())
}

/// A decoded domain-style resource.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Resource {
    /// A transaction (domain `TRANSACTION`).
    Transaction(Box<Transaction>),
    /// A wallet (domain `WALLET`).
    Wallet(Box<Wallet>),
    /// An approval set (domain `APPROVAL`).
    Approval(Box<ApprovalSet>),
    /// A resource of a domain this version does not know, kept as JSON.
    Unknown(serde_json::Value),
}

impl Resource {
    /// Parses a resource's JSON according to its domain.
    ///
    /// # Errors
    /// [`VerifyError::MalformedBody`] when the JSON does not fit the domain's type.
    pub fn from_json(domain: &Domain, json: &[u8]) -> Result<Self, VerifyError> {
        let malformed = |e: serde_json::Error| {
            VerifyError::malformed_body(&format!("{} resource", domain.as_str()), &e)
        };
        Ok(match domain {
            Domain::Transaction => {
                Self::Transaction(serde_json::from_slice(json).map_err(malformed)?)
            }
            Domain::Wallet => Self::Wallet(serde_json::from_slice(json).map_err(malformed)?),
            Domain::Approval => Self::Approval(serde_json::from_slice(json).map_err(malformed)?),
            Domain::Unknown(_) => Self::Unknown(serde_json::from_slice(json).map_err(malformed)?),
        })
    }

    /// The resource's `id` (for a resource of an unknown domain, its string `id` field,
    /// if any): what a receiver keys the update it holds by.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Transaction(transaction) => Some(&transaction.id),
            Self::Wallet(wallet) => Some(&wallet.id),
            Self::Approval(approval) => Some(&approval.id),
            Self::Unknown(json) => json.get("id").and_then(serde_json::Value::as_str),
        }
    }
}

/// The receiver's dedup key for a domain-style resource: its `id` and `updatedAt`, as
/// seed 001 advises. Read from the raw JSON so that the key never depends on how a
/// timestamp is re-formatted.
///
/// # Errors
/// [`VerifyError::MalformedBody`] when the JSON lacks a string `id` or `updatedAt`.
pub fn dedup_key(resource_json: &[u8]) -> Result<String, VerifyError> {
    #[derive(Deserialize)]
    struct Identity<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
        #[serde(rename = "updatedAt", borrow)]
        updated_at: std::borrow::Cow<'a, str>,
    }
    let identity: Identity<'_> = serde_json::from_slice(resource_json)
        .map_err(|e| VerifyError::malformed_body("resource (string id and updatedAt)", &e))?;
    Ok(format!("{}@{}", identity.id, identity.updated_at))
}
