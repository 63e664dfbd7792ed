//! Ed25519 keys for Standard Webhooks `v1a` (`whsk_` / `whpk_`).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use super::{decode_base64, strip_prefix};
use crate::KeyError;

const WHSK_PREFIX: &str = "whsk_";
const WHPK_PREFIX: &str = "whpk_";
const SEED_LEN: usize = 32;
const PUBLIC_LEN: usize = 32;

/// An Ed25519 signing key. `Debug` prints only the algorithm; the seed is zeroized on drop.
/// Cheap to clone: clones share the derived key pair.
#[derive(Clone)]
pub struct Ed25519SigningKey {
    seed: Arc<Zeroizing<[u8; SEED_LEN]>>,
    key_pair: Arc<Ed25519KeyPair>,
}

impl Ed25519SigningKey {
    /// Loads a key from its 32-byte private seed.
    ///
    /// # Errors
    /// [`KeyError::InvalidLength`] when the seed is not 32 bytes.
    pub fn from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let seed: [u8; SEED_LEN] = seed.try_into().map_err(|_| KeyError::InvalidLength {
            what: "Ed25519 private key",
            expected: "32 bytes",
            actual: seed.len(),
        })?;
        let key_pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::InvalidEncoding {
                what: "Ed25519 private key",
                encoding: "32-byte seed",
            })?;
        Ok(Self {
            seed: Arc::new(Zeroizing::new(seed)),
            key_pair: Arc::new(key_pair),
        })
    }

    /// Loads a key from `whsk_` + base64 of the 32-byte seed.
    ///
    /// # Errors
    /// [`KeyError`] when the prefix, base64 or length is wrong.
    pub fn from_whsk(text: &str) -> Result<Self, KeyError> {
        const WHAT: &str = "Ed25519 private key";
        let encoded = strip_prefix(text, WHSK_PREFIX, WHAT)?;
        let seed = Zeroizing::new(decode_base64(encoded, WHAT)?);
        Self::from_seed(&seed)
    }

    /// Generates a new random key.
    ///
    /// # Errors
    /// [`KeyError::Generation`] when the system random number generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), seed.as_mut())
            .map_err(|_| KeyError::Generation)?;
        Self::from_seed(seed.as_ref())
    }

    /// The key in `whsk_` form, for storing it. Handle with care.
    #[must_use]
    pub fn to_whsk(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{WHSK_PREFIX}{}",
            STANDARD.encode(self.seed.as_ref())
        ))
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> Ed25519PublicKey {
        let mut bytes = [0u8; PUBLIC_LEN];
        bytes.copy_from_slice(self.key_pair.public_key().as_ref());
        Ed25519PublicKey { bytes }
    }

    /// Signs the concatenation of `parts`.
    pub(crate) fn sign_parts(&self, parts: &[&[u8]]) -> [u8; 64] {
        let message = parts.concat();
        let mut out = [0u8; 64];
        out.copy_from_slice(self.key_pair.sign(&message).as_ref());
        out
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519SigningKey(Ed25519)")
    }
}

/// An Ed25519 public key (`whpk_` + base64 of 32 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    bytes: [u8; PUBLIC_LEN],
}

impl Ed25519PublicKey {
    /// Loads a key from its 32 raw bytes.
    ///
    /// # Errors
    /// [`KeyError::InvalidLength`] when it is not 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; PUBLIC_LEN] = bytes.try_into().map_err(|_| KeyError::InvalidLength {
            what: "Ed25519 public key",
            expected: "32 bytes",
            actual: bytes.len(),
        })?;
        Ok(Self { bytes })
    }

    /// Loads a key from `whpk_` + base64.
    ///
    /// # Errors
    /// [`KeyError`] when the prefix, base64 or length is wrong.
    pub fn from_whpk(text: &str) -> Result<Self, KeyError> {
        const WHAT: &str = "Ed25519 public key";
        let encoded = strip_prefix(text, WHPK_PREFIX, WHAT)?;
        Self::from_bytes(&decode_base64(encoded, WHAT)?)
    }

    /// The key in `whpk_` form.
    #[must_use]
    pub fn to_whpk(&self) -> String {
        format!("{WHPK_PREFIX}{}", STANDARD.encode(self.bytes))
    }

    /// Whether `signature` is a valid signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
            .verify(message, signature_bytes)
            .is_ok()
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", self.to_whpk())
    }
}
