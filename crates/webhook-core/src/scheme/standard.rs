//! Standard Webhooks (SPEC §3): `webhook-id`, `webhook-timestamp`, `webhook-signature`
//! with space-separated `v1,<base64 HMAC-SHA256>` and `v1a,<base64 Ed25519>` entries over
//! `"{id}.{timestamp}.{body}"`. Entries of other versions are ignored, as the spec asks.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};

use super::{
    SignedRequest, StandardSigningKey, StandardVerifyingKey, Style, Verified, VerifiedMessage,
    header,
};
use crate::keys::ExpectedTags;
use crate::timestamp::{check_window, parse_unix_seconds};
use crate::{SignError, VerifyError};

/// `webhook-id`.
pub const ID: &str = "webhook-id";
/// `webhook-timestamp`.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature`.
pub const SIGNATURE: &str = "webhook-signature";
static ID_NAME: HeaderName = HeaderName::from_static(ID);
static TIMESTAMP_NAME: HeaderName = HeaderName::from_static(TIMESTAMP);
static SIGNATURE_NAME: HeaderName = HeaderName::from_static(SIGNATURE);

/// Longest `webhook-id` accepted.
const MAX_ID_LEN: usize = 256;
const HMAC_LEN: usize = 32;
const ED25519_LEN: usize = 64;

/// Ids go into the signed content before a `.`, so they must not contain one.
fn id_is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

pub(super) fn sign(
    keys: &[StandardSigningKey],
    id: &str,
    body: &[u8],
    unix: i64,
) -> Result<SignedRequest, SignError> {
    if keys.is_empty() {
        return Err(SignError::NoKeys);
    }
    if !id_is_valid(id) {
        return Err(SignError::InvalidMessageId);
    }
    let timestamp = unix.to_string();
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    let entries: Vec<String> = keys
        .iter()
        .map(|key| match key {
            StandardSigningKey::Symmetric(secret) => {
                format!("v1,{}", STANDARD.encode(secret.sign_parts(&signed)))
            }
            StandardSigningKey::Asymmetric(key) => {
                format!("v1a,{}", STANDARD.encode(key.sign_parts(&signed)))
            }
        })
        .collect();
    Ok(SignedRequest {
        headers: vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (ID_NAME.clone(), header::value(id.to_owned())?),
            (TIMESTAMP_NAME.clone(), header::value(timestamp)?),
            (SIGNATURE_NAME.clone(), header::value(entries.join(" "))?),
        ],
        body: body.to_vec(),
    })
}

pub(super) fn authenticate(
    keys: &[StandardVerifyingKey],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, VerifyError> {
    if keys.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let id = header::required(headers, &ID_NAME)?;
    if !id_is_valid(id) {
        return Err(VerifyError::MalformedHeader(ID));
    }
    let timestamp_text = header::required(headers, &TIMESTAMP_NAME)?;
    let timestamp = parse_unix_seconds(timestamp_text)?;
    check_window(timestamp, now, tolerance)?;

    let signature_list = header::signature(headers, &SIGNATURE_NAME)?;
    let mut entries = header::split_list(signature_list, ' ', &SIGNATURE_NAME)?;
    let signed = [id.as_bytes(), b".", timestamp_text.as_bytes(), b".", body];
    let mut hmacs = ExpectedTags::new(
        keys.iter().filter_map(|key| match key {
            StandardVerifyingKey::Symmetric(secret) => Some(secret),
            StandardVerifyingKey::Asymmetric(_) => None,
        }),
        &signed,
    );
    // Ed25519 verifies one contiguous message: joined once, on the first `v1a` entry.
    let mut message: Option<Vec<u8>> = None;
    let matched = entries.any(|entry| {
        let Some((version, encoded)) = entry.split_once(',') else {
            return false;
        };
        let expected_len = match version {
            "v1" => HMAC_LEN,
            "v1a" => ED25519_LEN,
            _ => return false,
        };
        // Decoding into a fixed buffer refuses longer input; shorter input is checked here.
        let mut buffer = [0u8; ED25519_LEN];
        let Some(signature) = STANDARD
            .decode_slice(encoded, &mut buffer)
            .ok()
            .filter(|&len| len == expected_len)
            .map(|len| &buffer[..len])
        else {
            return false;
        };
        if version == "v1" {
            return hmacs.matches(signature);
        }
        let message = message.get_or_insert_with(|| signed.concat());
        keys.iter().any(|key| match key {
            StandardVerifyingKey::Asymmetric(public) => public.verify(message, signature),
            StandardVerifyingKey::Symmetric(_) => false,
        })
    });
    if !matched {
        return Err(VerifyError::NoMatchingSignature);
    }
    Ok(timestamp)
}

pub(super) fn decode(
    headers: &HeaderMap,
    body: &[u8],
    timestamp: i64,
) -> Result<Verified, VerifyError> {
    let id = header::required(headers, &ID_NAME)?;
    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| VerifyError::malformed_body("body", &e))?;
    Ok(Verified {
        style: Style::Standard,
        timestamp,
        dedup_key: id.to_owned(),
        message: VerifiedMessage::Standard {
            id: id.to_owned(),
            payload,
        },
    })
}
