//! Event style (SPEC §1): `X-Webhook-Timestamp` and `X-Webhook-Signature`, the latter
//! lowercase hex of HMAC-SHA256(secret, `"{timestamp}.{body}"`), comma-separated during
//! a secret rotation.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};

use super::{SignedRequest, Style, Verified, VerifiedMessage, header};
use crate::keys::ExpectedTags;
use crate::keys::HmacSecret;
use crate::timestamp::{check_window, parse_unix_seconds};
use crate::{SignError, VerifyError};

/// `X-Webhook-Timestamp` (lowercase, as `http` stores names).
pub const TIMESTAMP: &str = "x-webhook-timestamp";
/// `X-Webhook-Signature`.
pub const SIGNATURE: &str = "x-webhook-signature";
static TIMESTAMP_NAME: HeaderName = HeaderName::from_static(TIMESTAMP);
static SIGNATURE_NAME: HeaderName = HeaderName::from_static(SIGNATURE);

const TAG_LEN: usize = 32;

pub(super) fn sign(
    secrets: &[HmacSecret],
    body: &[u8],
    unix: i64,
) -> Result<SignedRequest, SignError> {
    if secrets.is_empty() {
        return Err(SignError::NoKeys);
    }
    let timestamp = unix.to_string();
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| hex::encode(secret.sign_parts(&[timestamp.as_bytes(), b".", body])))
        .collect();
    Ok(SignedRequest {
        headers: vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (TIMESTAMP_NAME.clone(), header::value(timestamp)?),
            (SIGNATURE_NAME.clone(), header::value(signatures.join(","))?),
        ],
        body: body.to_vec(),
    })
}

pub(super) fn authenticate(
    secrets: &[HmacSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let timestamp_text = header::required(headers, &TIMESTAMP_NAME)?;
    let timestamp = parse_unix_seconds(timestamp_text)?;
    check_window(timestamp, now, tolerance)?;

    let signature_list = header::signature(headers, &SIGNATURE_NAME)?;
    let mut candidates = header::split_list(signature_list, ',', &SIGNATURE_NAME)?;
    let signed = [timestamp_text.as_bytes(), b".", body];
    let mut expected = ExpectedTags::new(secrets, &signed);
    let matched = candidates.any(|entry| {
        let mut tag = [0u8; TAG_LEN];
        hex::decode_to_slice(entry, &mut tag).is_ok() && expected.matches(&tag)
    });
    if !matched {
        return Err(VerifyError::NoMatchingSignature);
    }
    Ok(timestamp)
}

pub(super) fn decode(body: &[u8], timestamp: i64) -> Result<Verified, VerifyError> {
    let event: crate::event::Event =
        serde_json::from_slice(body).map_err(|e| VerifyError::malformed_body("event", &e))?;
    Ok(Verified {
        style: Style::Event,
        timestamp,
        dedup_key: event.idempotency_key.clone(),
        message: VerifiedMessage::Event(Box::new(event)),
    })
}
