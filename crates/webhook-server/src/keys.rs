//! Secrets and keys as the API takes and shows them.
//!
//! An HMAC secret is given either as a Standard Webhooks `whsec_…` string or as plain
//! text (the event style's organization secret, SPEC §1), 16 to 512 bytes. An Ed25519
//! key for Standard Webhooks `v1a` is given as `whsk_…`. Generated secrets are returned
//! once, in the answer that created them, and never again.

use webhook_core::keys::{Ed25519SigningKey, HmacSecret};
use webhook_sender::Secret;

use crate::error::{ApiError, ApiResult};

const MIN_TEXT_SECRET: usize = 16;
const MAX_TEXT_SECRET: usize = 512;

/// An HMAC secret from its API form.
pub(crate) fn hmac(text: &str) -> ApiResult<HmacSecret> {
    if text.starts_with("whsec_") {
        return HmacSecret::from_whsec(text).map_err(|e| ApiError::invalid(format!("secret: {e}")));
    }
    if !(MIN_TEXT_SECRET..=MAX_TEXT_SECRET).contains(&text.len()) {
        return Err(ApiError::invalid(
            "secret must be `whsec_…` or 16 to 512 bytes of text",
        ));
    }
    HmacSecret::from_utf8(text).map_err(|e| ApiError::invalid(format!("secret: {e}")))
}

/// A Standard Webhooks signing secret: `whsk_…` (Ed25519, `v1a`) or an HMAC secret (`v1`).
pub(crate) fn standard(text: &str) -> ApiResult<Secret> {
    if text.starts_with("whsk_") {
        return Ed25519SigningKey::from_whsk(text)
            .map(|key| Secret::Ed25519(Box::new(key)))
            .map_err(|e| ApiError::invalid(format!("secret: {e}")));
    }
    hmac(text).map(Secret::Hmac)
}

/// A new HMAC secret and its `whsec_…` form.
pub(crate) fn generate_hmac() -> ApiResult<(HmacSecret, String)> {
    let secret = HmacSecret::generate().map_err(|_| ApiError::invalid("no random secret"))?;
    let text = secret.to_whsec().to_string();
    Ok((secret, text))
}
