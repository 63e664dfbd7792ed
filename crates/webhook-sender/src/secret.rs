//! Signing secrets and their rotation: a [`KeyRing`] holds the current secret and, during
//! a rotation's overlap, the previous ones until they expire.
//!
//! HMAC schemes (event style, Standard Webhooks `v1`) and Ed25519 (`v1a`) sign with every
//! active secret at once, so a receiver that knows either the old or the new one accepts
//! the request. The domain style's `Signature` header carries one ECDSA signature, so there
//! the *old* key keeps signing until the overlap ends and the new key takes over after it;
//! customers add the new public key during the overlap.
//!
//! ```
//! use webhook_core::keys::HmacSecret;
//! use webhook_sender::Secret;
//!
//! let secret: Secret = HmacSecret::from_utf8("org-secret")?.into();
//! assert_eq!(format!("{secret:?}"), "Hmac(HmacSecret(HMAC-SHA256))"); // never the bytes
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{KeyError, Style};

/// A secret or private key an endpoint signs with.
#[derive(Debug, Clone)]
pub enum Secret {
    /// HMAC-SHA256: event style, Standard Webhooks `v1`.
    Hmac(HmacSecret),
    /// ECDSA P-256: domain style.
    Ecdsa(Box<EcdsaSigningKey>),
    /// Ed25519: Standard Webhooks `v1a`.
    Ed25519(Box<Ed25519SigningKey>),
}

impl Secret {
    /// The algorithm's name.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Hmac(_) => "HMAC-SHA256",
            Self::Ecdsa(_) => "ECDSA-P256",
            Self::Ed25519(_) => "Ed25519",
        }
    }

    /// Whether this secret can sign for an endpoint of `style`: HMAC for the event style,
    /// ECDSA for the domain style, HMAC or Ed25519 for Standard Webhooks.
    pub(crate) fn fits(&self, style: Style) -> bool {
        matches!(
            (style, self),
            (Style::Event, Self::Hmac(_))
                | (Style::Domain, Self::Ecdsa(_))
                | (Style::Standard, Self::Hmac(_) | Self::Ed25519(_))
        )
    }

    pub(crate) fn as_hmac(&self) -> Option<&HmacSecret> {
        match self {
            Self::Hmac(secret) => Some(secret),
            _ => None,
        }
    }

    pub(crate) fn as_ecdsa(&self) -> Option<&EcdsaSigningKey> {
        match self {
            Self::Ecdsa(key) => Some(key),
            _ => None,
        }
    }

    pub(crate) fn as_standard(&self) -> Option<StandardSigningKey> {
        match self {
            Self::Hmac(secret) => Some(StandardSigningKey::Symmetric(secret.clone())),
            Self::Ed25519(key) => Some(StandardSigningKey::Asymmetric((**key).clone())),
            Self::Ecdsa(_) => None,
        }
    }
}

impl From<HmacSecret> for Secret {
    fn from(secret: HmacSecret) -> Self {
        Self::Hmac(secret)
    }
}

impl From<EcdsaSigningKey> for Secret {
    fn from(key: EcdsaSigningKey) -> Self {
        Self::Ecdsa(Box::new(key))
    }
}

impl From<Ed25519SigningKey> for Secret {
    fn from(key: Ed25519SigningKey) -> Self {
        Self::Ed25519(Box::new(key))
    }
}

impl From<StandardSigningKey> for Secret {
    fn from(key: StandardSigningKey) -> Self {
        match key {
            StandardSigningKey::Symmetric(secret) => Self::Hmac(secret),
            StandardSigningKey::Asymmetric(key) => Self::Ed25519(Box::new(key)),
        }
    }
}

/// The current secret and, during rotations, the previous ones with their expiry.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRing {
    /// Oldest first; the last has no expiry.
    keys: Vec<(Secret, Option<i64>)>,
}

impl KeyRing {
    pub(crate) fn new(secrets: Vec<Secret>) -> Self {
        Self {
            keys: secrets.into_iter().map(|secret| (secret, None)).collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds `new` as the current secret; the others expire at `overlap_end_ms` (or keep an
    /// earlier expiry they already had). Expired secrets are dropped.
    pub(crate) fn rotate(&mut self, new: Secret, now_ms: i64, overlap_end_ms: i64) {
        for (_, expiry) in &mut self.keys {
            *expiry = Some(expiry.map_or(overlap_end_ms, |at| at.min(overlap_end_ms)));
        }
        self.keys
            .retain(|(_, expiry)| expiry.is_none_or(|at| at > now_ms));
        self.keys.push((new, None));
    }

    /// Every secret still valid at `now_ms`, oldest first.
    pub(crate) fn active(&self, now_ms: i64) -> impl Iterator<Item = &Secret> {
        self.keys
            .iter()
            .filter(move |(_, expiry)| expiry.is_none_or(|at| at > now_ms))
            .map(|(secret, _)| secret)
    }

    /// What receivers verify with, for the keys that have one: base64 SPKI for ECDSA
    /// (domain style), `whpk_…` for Ed25519 (`v1a`); HMAC secrets have none.
    pub(crate) fn public_keys(&self) -> Vec<String> {
        self.all()
            .filter_map(|secret| match secret {
                Secret::Hmac(_) => None,
                Secret::Ecdsa(key) => Some(key.public_key().to_spki_base64()),
                Secret::Ed25519(key) => Some(key.public_key().to_whpk()),
            })
            .collect()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Secret> {
        self.keys.iter().map(|(secret, _)| secret)
    }

    pub(crate) fn to_stored(&self) -> Vec<StoredKey> {
        self.keys
            .iter()
            .map(|(secret, expiry)| StoredKey::new(secret, *expiry))
            .collect()
    }

    pub(crate) fn from_stored(stored: &[StoredKey]) -> Result<Self, KeyError> {
        let keys = stored
            .iter()
            .map(|key| Ok((key.secret()?, key.expires_at_ms)))
            .collect::<Result<_, KeyError>>()?;
        Ok(Self { keys })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeyKind {
    Hmac,
    Ecdsa,
    Ed25519,
}

/// A secret as persisted in the store (base64 of its bytes). `Debug` shows only the kind.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    kind: KeyKind,
    material: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kind", &self.kind)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    fn new(secret: &Secret, expires_at_ms: Option<i64>) -> Self {
        let (kind, material) = match secret {
            Secret::Hmac(secret) => (KeyKind::Hmac, STANDARD.encode(secret.expose_bytes())),
            Secret::Ecdsa(key) => (KeyKind::Ecdsa, STANDARD.encode(key.pkcs8_der())),
            Secret::Ed25519(key) => (KeyKind::Ed25519, key.to_whsk().to_string()),
        };
        Self {
            kind,
            material,
            expires_at_ms,
        }
    }

    fn secret(&self) -> Result<Secret, KeyError> {
        Ok(match self.kind {
            KeyKind::Hmac => {
                let bytes =
                    zeroize::Zeroizing::new(STANDARD.decode(&self.material).map_err(|_| {
                        KeyError::InvalidBase64 {
                            what: "stored HMAC secret",
                        }
                    })?);
                Secret::Hmac(HmacSecret::from_bytes(&bytes)?)
            }
            KeyKind::Ecdsa => Secret::Ecdsa(Box::new(EcdsaSigningKey::from_pkcs8_base64(
                &self.material,
            )?)),
            KeyKind::Ed25519 => {
                Secret::Ed25519(Box::new(Ed25519SigningKey::from_whsk(&self.material)?))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hmac(text: &str) -> Secret {
        HmacSecret::from_utf8(text).unwrap().into()
    }

    #[test]
    fn rotation_overlaps_then_expires() {
        let mut ring = KeyRing::new(vec![hmac("old")]);
        ring.rotate(hmac("new"), 1_000, 5_000);
        assert_eq!(ring.active(4_999).count(), 2);
        assert_eq!(ring.active(5_000).count(), 1);
        // A second rotation during the overlap does not extend the first secret's life.
        ring.rotate(hmac("newer"), 2_000, 9_000);
        assert_eq!(ring.active(4_000).count(), 3);
        assert_eq!(ring.active(6_000).count(), 2);
        ring.rotate(hmac("newest"), 10_000, 10_000);
        assert_eq!(ring.active(10_000).count(), 1);
        assert_eq!(ring.all().count(), 1, "expired secrets are dropped");
    }

    #[test]
    fn stored_round_trip_and_debug_hides_material() {
        let (ecdsa, _) = EcdsaSigningKey::generate().unwrap();
        let mut ring = KeyRing::new(vec![hmac("s3cret-value")]);
        ring.rotate(ecdsa.into(), 0, 100);
        ring.rotate(Ed25519SigningKey::generate().unwrap().into(), 0, 100);
        let stored = ring.to_stored();
        let json = serde_json::to_string(&stored).unwrap();
        let back: Vec<StoredKey> = serde_json::from_str(&json).unwrap();
        let restored = KeyRing::from_stored(&back).unwrap();
        let kinds: Vec<&str> = restored.all().map(Secret::algorithm).collect();
        assert_eq!(kinds, ["HMAC-SHA256", "ECDSA-P256", "Ed25519"]);
        let debug = format!("{stored:?} {restored:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains(&STANDARD.encode("s3cret-value")), "{debug}");
    }
}
