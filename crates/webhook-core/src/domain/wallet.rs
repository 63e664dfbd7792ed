//! The Wallet resource (domain `WALLET`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lifecycle::{Lifecycle, Step};
use crate::string_enum::string_enum;

string_enum! {
    /// Where a wallet is in its setup.
    pub enum WalletStatus {
        /// Wallet record created.
        Created => "CREATED",
        /// Wallet being set up.
        Provisioning => "PROVISIONING",
        /// Wallet ready for use (terminal).
        Provisioned => "PROVISIONED",
        /// Setup failed (terminal).
        ProvisioningFailed => "PROVISIONING_FAILED",
    }
}

impl WalletStatus {
    /// Whether no further status follows. Unknown statuses are not terminal.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.step().is_some_and(|step| step.terminal)
    }
}

impl Lifecycle for WalletStatus {
    fn known() -> &'static [Self] {
        Self::KNOWN
    }

    /// CREATED (0), PROVISIONING (1), then PROVISIONED and PROVISIONING_FAILED, terminal,
    /// at 2 (SPEC §2).
    fn step(&self) -> Option<Step> {
        Some(match self {
            Self::Created => Step::active(0),
            Self::Provisioning => Step::active(1),
            Self::Provisioned | Self::ProvisioningFailed => Step::terminal(2),
            Self::Unknown(_) => return None,
        })
    }
}

/// A wallet, as carried by domain-style webhooks (seed 001's example decodes into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// Wallet id.
    pub id: String,
    /// The vault the wallet belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    /// The owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The signing quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_id: Option<String>,
    /// Who created the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change; with `id`, the receiver's dedup key.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// On-chain address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Public key, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Where the key lives, e.g. `HSM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<String>,
    /// Blockchain name, e.g. `ARBITRUM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockchain: Option<String>,
    /// Wallet settings, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// Current status.
    pub status: WalletStatus,
    /// Fields this version does not name, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
