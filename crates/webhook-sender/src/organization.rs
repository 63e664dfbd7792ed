//! Organizations (tenants) and their webhook secrets, managed through
//! [`Organizations`](crate::Organizations). In event style an organization's
//! secret signs for all of its endpoints, unless an endpoint has its own (seed 000).
//!
//! ```no_run
//! # async fn demo(sender: webhook_sender::Sender) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use webhook_core::keys::HmacSecret;
//!
//! sender.organizations().set_secret("org-1", HmacSecret::from_utf8("first")?).await?;
//! // Both secrets sign for a day; receivers that know either one accept.
//! sender.organizations()
//!     .rotate_secret("org-1", HmacSecret::from_utf8("second")?, Duration::from_secs(86_400))
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::ids::OrganizationId;
use crate::secret::{KeyRing, StoredKey};
use crate::store::StoredOrganization;
use crate::store::record::{decode_versioned, encode_versioned};

/// Organization names longer than this are refused.
pub const MAX_NAME_LEN: usize = 256;

/// An organization holds at most this many API tokens.
pub const MAX_TOKENS: usize = 100;

/// What the API tokens of an issued token start with.
const TOKEN_PREFIX: &str = "whtok_";

/// A live organization.
pub(crate) struct Organization {
    pub(crate) id: OrganizationId,
    pub(crate) secrets: KeyRing,
    pub(crate) profile: Profile,
}

/// What an organization is besides its secrets: a name, when it was created and the
/// hashes of its API tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) created_at_ms: i64,
    #[serde(default)]
    pub(crate) tokens: Vec<StoredToken>,
}

/// An API token as stored: its id and the SHA-256 of its text, never the text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredToken {
    pub(crate) id: String,
    /// Base64url SHA-256 of the token's text.
    pub(crate) hash: String,
    pub(crate) created_at_ms: i64,
}

impl fmt::Debug for Organization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Organization")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct OrganizationSpec {
    secrets: Vec<StoredKey>,
    #[serde(default)]
    profile: Profile,
}

impl Organization {
    pub(crate) fn to_stored(&self) -> Result<StoredOrganization, Error> {
        let spec = OrganizationSpec {
            secrets: self.secrets.to_stored(),
            profile: self.profile.clone(),
        };
        Ok(StoredOrganization::new(
            self.id.clone(),
            encode_versioned(&spec),
        ))
    }

    pub(crate) fn from_stored(stored: &StoredOrganization) -> Result<Self, Error> {
        let spec: OrganizationSpec = decode_versioned(&stored.data)?;
        Ok(Self {
            id: stored.id.clone(),
            secrets: KeyRing::from_stored(&spec.secrets)
                .map_err(|e| Error::config(format!("stored secret: {e}")))?,
            profile: spec.profile,
        })
    }

    pub(crate) fn info(&self) -> OrganizationInfo {
        OrganizationInfo {
            id: self.id.clone(),
            name: self.profile.name.clone(),
            created_at_ms: self.profile.created_at_ms,
            has_secret: !self.secrets.is_empty(),
            tokens: self
                .profile
                .tokens
                .iter()
                .map(|token| TokenInfo {
                    id: token.id.clone(),
                    created_at_ms: token.created_at_ms,
                })
                .collect(),
        }
    }
}

/// What [`Organizations::get`](crate::Organizations::get) tells about an organization (no
/// secrets, no token texts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrganizationInfo {
    /// The organization.
    pub id: OrganizationId,
    /// Its display name.
    pub name: Option<String>,
    /// When it was created, Unix ms.
    pub created_at_ms: i64,
    /// Whether it has a webhook secret (event style signs with it).
    pub has_secret: bool,
    /// Its API tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// One API token of an organization, without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The token's id (`tok_…`), which revokes it.
    pub id: String,
    /// When it was issued, Unix ms.
    pub created_at_ms: i64,
}

/// A token just issued: its id and its text, which exists only here (the store keeps a
/// hash). `Debug` leaves the text out.
pub struct IssuedToken {
    /// The token's id.
    pub id: String,
    /// The bearer token, `whtok_` and 43 base64url characters (256 random bits).
    pub token: Zeroizing<String>,
    /// When it was issued, Unix ms.
    pub created_at_ms: i64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    /// A new random token, issued at `now_ms`, and what the store keeps of it.
    pub(crate) fn generate(now_ms: i64) -> Result<(Self, StoredToken), Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| Error::internal("the system random generator failed"))?;
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes)));
        let id = format!("tok_{}", uuid::Uuid::now_v7().simple());
        let stored = StoredToken {
            id: id.clone(),
            hash: token_hash(&token),
            created_at_ms: now_ms,
        };
        Ok((
            Self {
                id,
                token,
                created_at_ms: now_ms,
            },
            stored,
        ))
    }
}

/// The base64url SHA-256 of a token's text: what is stored and looked up. A lookup by
/// hash compares no secret bytes, so it leaks nothing through timing.
pub(crate) fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}
