//! Event style (SPEC §1): the JSON event object and its 13 event types.
//!
//! ```
//! use webhook_core::event::{Event, EventType};
//!
//! let json = r#"{"id":"0196153b-67bc-7cd3-b511-354373d28130","type":"wallet.created",
//!   "idempotencyKey":"k","organizationId":"org","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;
//! let event: Event = serde_json::from_str(json)?;
//! assert_eq!(event.event_type, EventType::WalletCreated);
//!
//! // Types added later are kept, not rejected.
//! assert_eq!(EventType::from("payout.sent"), EventType::Unknown("payout.sent".into()));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::string_enum::string_enum;

string_enum! {
    /// The type of an event-style webhook.
    pub enum EventType {
        /// A new transaction has been initiated and is awaiting signing.
        TransactionCreated => "transaction.created",
        /// The MPC ceremony is complete and the transaction is signed.
        TransactionSigned => "transaction.signed",
        /// The signed transaction has been submitted to the network.
        TransactionBroadcast => "transaction.broadcast",
        /// The transaction has been included in a block.
        TransactionConfirmed => "transaction.confirmed",
        /// The transaction failed to sign, broadcast, or was rejected by the network.
        TransactionFailed => "transaction.failed",
        /// A replace-by-fee operation was triggered.
        TransactionAccelerated => "transaction.accelerated",
        /// A pending transaction was cancelled.
        TransactionCancelled => "transaction.cancelled",
        /// A new multi-chain wallet has been generated.
        WalletCreated => "wallet.created",
        /// A new customer identity has been registered.
        CustomerCreated => "customer.created",
        /// A customer configured their self-custody PIN.
        CustomerPinSetup => "customer.pin_setup",
        /// Multiple failed PIN attempts were detected for a customer.
        CustomerLockedOut => "customer.locked_out",
        /// A security-question recovery flow has started.
        CustomerRecoveryInitiated => "customer.recovery_initiated",
        /// A customer recovered their wallet access.
        CustomerRecoveryCompleted => "customer.recovery_completed",
    }
}

/// One event-style webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id of this event (the same for every endpoint it fans out to).
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Identical events within 60 s share this key (see [`crate::idempotency`]).
    pub idempotency_key: String,
    /// The organization (tenant) the event belongs to.
    pub organization_id: String,
    /// When the event was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The entity, after redaction.
    pub data: serde_json::Value,
}
