//! The Transaction resource (domain `TRANSACTION`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Quantity;
use super::lifecycle::{Lifecycle, Step};
use crate::string_enum::string_enum;

string_enum! {
    /// Where a transaction is in its lifecycle.
    pub enum TransactionStatus {
        /// Transaction created.
        Requested => "REQUESTED",
        /// Validating against policies.
        PolicyCheckPending => "POLICY_CHECK_PENDING",
        /// Policy checks passed.
        PolicyCheckPassed => "POLICY_CHECK_PASSED",
        /// Waiting for approvals.
        ApprovalCheckPending => "APPROVAL_CHECK_PENDING",
        /// Approvals complete.
        ApprovalCheckPassed => "APPROVAL_CHECK_PASSED",
        /// Preparing for the blockchain.
        CompilationPending => "COMPILATION_PENDING",
        /// Ready for signing.
        Compiled => "COMPILED",
        /// Waiting for a signature.
        SignaturePending => "SIGNATURE_PENDING",
        /// Signed.
        Signed => "SIGNED",
        /// Submitting to the network.
        PublishPending => "PUBLISH_PENDING",
        /// Submitted to the blockchain.
        Published => "PUBLISHED",
        /// Awaiting block confirmation.
        ConfirmationPending => "CONFIRMATION_PENDING",
        /// Confirmed on the blockchain (terminal).
        Confirmed => "CONFIRMED",
        /// Rejected by policy or approval (terminal).
        Rejected => "REJECTED",
        /// Technical failure (terminal).
        Failed => "FAILED",
    }
}

impl TransactionStatus {
    /// Whether no further status follows. Unknown statuses are not terminal.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.step().is_some_and(|step| step.terminal)
    }
}

impl Lifecycle for TransactionStatus {
    fn known() -> &'static [Self] {
        Self::KNOWN
    }

    /// REQUESTED (0) through CONFIRMATION_PENDING (11), then CONFIRMED, REJECTED and
    /// FAILED, terminal, at 12 (SPEC §2).
    fn step(&self) -> Option<Step> {
        Some(match self {
            Self::Requested => Step::active(0),
            Self::PolicyCheckPending => Step::active(1),
            Self::PolicyCheckPassed => Step::active(2),
            Self::ApprovalCheckPending => Step::active(3),
            Self::ApprovalCheckPassed => Step::active(4),
            Self::CompilationPending => Step::active(5),
            Self::Compiled => Step::active(6),
            Self::SignaturePending => Step::active(7),
            Self::Signed => Step::active(8),
            Self::PublishPending => Step::active(9),
            Self::Published => Step::active(10),
            Self::ConfirmationPending => Step::active(11),
            Self::Confirmed | Self::Rejected | Self::Failed => Step::terminal(12),
            Self::Unknown(_) => return None,
        })
    }
}

/// Where a transaction sends funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The destination address.
    pub address: String,
}

/// The asset a transaction moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// The asset's ticker symbol, e.g. `ETH`.
    pub symbol: String,
}

/// A transaction, as carried by domain-style webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Transaction id.
    pub id: String,
    /// The vault the wallet belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    /// The wallet the transaction belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// The owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Current status.
    pub status: TransactionStatus,
    /// Blockchain name, e.g. `ETHEREUM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockchain: Option<String>,
    /// On-chain hash, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Where funds go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// What is moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<Asset>,
    /// How much, as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qty: Option<Quantity>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change; with `id`, the receiver's dedup key.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Compliance freeze details on inbound transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_info: Option<serde_json::Value>,
    /// Fields this version does not name, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
