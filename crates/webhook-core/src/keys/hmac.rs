//! HMAC-SHA256 secrets, used by the event style and Standard Webhooks `v1`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use zeroize::Zeroizing;

use super::{decode_base64, strip_prefix};
use crate::KeyError;

/// The `whsec_` prefix of Standard Webhooks secrets.
const WHSEC_PREFIX: &str = "whsec_";
/// Standard Webhooks asks for at least 24 bytes of key and at most 64.
const WHSEC_MIN_LEN: usize = 24;
const WHSEC_MAX_LEN: usize = 64;

/// An HMAC-SHA256 secret. `Debug` prints only the algorithm; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct HmacSecret {
    bytes: Zeroizing<Vec<u8>>,
    key: hmac::Key,
}

impl HmacSecret {
    /// An event-style organization secret: its UTF-8 bytes are the HMAC key (SPEC §1).
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty secret.
    pub fn from_utf8(secret: &str) -> Result<Self, KeyError> {
        Self::from_bytes(secret.as_bytes())
    }

    /// A Standard Webhooks secret: `whsec_` followed by base64 of 24 to 64 key bytes.
    ///
    /// # Errors
    /// [`KeyError`] when the prefix is missing, the base64 is invalid or the length is wrong.
    pub fn from_whsec(secret: &str) -> Result<Self, KeyError> {
        const WHAT: &str = "Standard Webhooks secret";
        let encoded = strip_prefix(secret, WHSEC_PREFIX, WHAT)?;
        let bytes = Zeroizing::new(decode_base64(encoded, WHAT)?);
        if !(WHSEC_MIN_LEN..=WHSEC_MAX_LEN).contains(&bytes.len()) {
            return Err(KeyError::InvalidLength {
                what: WHAT,
                expected: "24 to 64 bytes",
                actual: bytes.len(),
            });
        }
        Self::from_bytes(&bytes)
    }

    /// A secret from raw key bytes.
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::Empty {
                what: "HMAC secret",
            });
        }
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// A new random 32-byte secret.
    ///
    /// # Errors
    /// [`KeyError::Generation`] when the system random number generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes.as_mut())
            .map_err(|_| KeyError::Generation)?;
        Self::from_bytes(bytes.as_ref())
    }

    /// The secret in Standard Webhooks form (`whsec_` + base64). Handle with care.
    #[must_use]
    pub fn to_whsec(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{WHSEC_PREFIX}{}", STANDARD.encode(&*self.bytes)))
    }

    /// The raw key bytes, for storing the secret. Handle with care.
    #[must_use]
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// HMAC-SHA256 of the concatenation of `parts`.
    pub(crate) fn sign_parts(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(part);
        }
        context.sign()
    }
}

/// The HMACs of one message under each of several secrets, computed on first use, that
/// candidate signatures are compared with in constant time. A request with several
/// signature entries (rotation) then costs one HMAC of its body per secret, not one per
/// entry and secret.
pub(crate) struct ExpectedTags<'a> {
    secrets: Vec<&'a HmacSecret>,
    parts: &'a [&'a [u8]],
    tags: Option<Vec<hmac::Tag>>,
}

impl<'a> ExpectedTags<'a> {
    /// The HMACs of the concatenation of `parts` under `secrets`, not computed yet.
    pub(crate) fn new(
        secrets: impl IntoIterator<Item = &'a HmacSecret>,
        parts: &'a [&'a [u8]],
    ) -> Self {
        Self {
            secrets: secrets.into_iter().collect(),
            parts,
            tags: None,
        }
    }

    /// Whether `tag` equals one of the HMACs, compared in constant time.
    pub(crate) fn matches(&mut self, tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        let (secrets, parts) = (&self.secrets, self.parts);
        self.tags
            .get_or_insert_with(|| secrets.iter().map(|s| s.sign_parts(parts)).collect())
            .iter()
            .any(|expected| bool::from(expected.as_ref().ct_eq(tag)))
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret(HMAC-SHA256)")
    }
}
