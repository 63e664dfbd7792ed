//! The Approval resource (domain `APPROVAL`).
//!
//! Seed 001 names the statuses but not the full schema; the fields below are the ones an
//! approval request needs in any design (id, status, the individual approvals), and every
//! other field is kept in `extra`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lifecycle::{Lifecycle, Step};
use crate::string_enum::string_enum;

string_enum! {
    /// The overall status of an approval request.
    pub enum ApprovalSetStatus {
        /// Waiting for approvers to respond.
        Pending => "PENDING",
        /// Required approvals received (terminal).
        Met => "MET",
        /// Approval rejected (terminal).
        NotMet => "NOT_MET",
        /// Timed out before requirements were met (terminal).
        Expired => "EXPIRED",
        /// Technical failure during processing (terminal).
        Failed => "FAILED",
    }
}

impl ApprovalSetStatus {
    /// Whether no further status follows. Unknown statuses are not terminal.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.step().is_some_and(|step| step.terminal)
    }
}

impl Lifecycle for ApprovalSetStatus {
    fn known() -> &'static [Self] {
        Self::KNOWN
    }

    /// PENDING (0), then MET, NOT_MET, EXPIRED and FAILED, terminal, at 1 (SPEC §2).
    fn step(&self) -> Option<Step> {
        Some(match self {
            Self::Pending => Step::active(0),
            Self::Met | Self::NotMet | Self::Expired | Self::Failed => Step::terminal(1),
            Self::Unknown(_) => return None,
        })
    }
}

string_enum! {
    /// One approver's response.
    pub enum ApprovalStatus {
        /// The approver is reviewing the request.
        Processing => "PROCESSING",
        /// The approver approved.
        Approved => "APPROVED",
        /// The approver rejected.
        Rejected => "REJECTED",
    }
}

/// One approver's response within an approval set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Who is asked to approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_id: Option<String>,
    /// Their response.
    pub status: ApprovalStatus,
    /// Fields this version does not name, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An approval request, as carried by domain-style webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSet {
    /// Approval request id.
    pub id: String,
    /// The owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The transaction this request is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Overall status.
    pub status: ApprovalSetStatus,
    /// The individual responses.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change; with `id`, the receiver's dedup key.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Fields this version does not name, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
