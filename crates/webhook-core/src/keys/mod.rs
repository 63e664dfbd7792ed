//! Secrets and keys: HMAC secrets, ECDSA P-256 key pairs, Ed25519 key pairs.
//!
//! Each type is built once from its wire form and then used many times. `Debug`
//! prints only the algorithm; private material is zeroized on drop.
//!
//! ```
//! use webhook_core::keys::{EcdsaSigningKey, HmacSecret};
//!
//! let secret = HmacSecret::from_utf8("my-org-secret")?;
//! assert_eq!(format!("{secret:?}"), "HmacSecret(HMAC-SHA256)");
//!
//! let (key, _pkcs8) = EcdsaSigningKey::generate()?;
//! assert!(key.public_key().to_spki_base64().starts_with("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

mod ecdsa;
mod ed25519;
mod hmac;

pub use ecdsa::{EcdsaPublicKey, EcdsaSigningKey};
pub use ed25519::{Ed25519PublicKey, Ed25519SigningKey};
pub(crate) use hmac::ExpectedTags;
pub use hmac::HmacSecret;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::KeyError;

/// Decodes standard base64 (with padding), naming `what` in the error.
pub(crate) fn decode_base64(text: &str, what: &'static str) -> Result<Vec<u8>, KeyError> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError::InvalidBase64 { what })
}

/// Strips a required prefix such as `whsec_`.
pub(crate) fn strip_prefix<'a>(
    text: &'a str,
    prefix: &'static str,
    what: &'static str,
) -> Result<&'a str, KeyError> {
    text.trim()
        .strip_prefix(prefix)
        .ok_or(KeyError::MissingPrefix { what, prefix })
}
