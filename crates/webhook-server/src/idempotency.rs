//! The `Idempotency-Key` request header of `POST …/messages`.
//!
//! The key (1 to 255 visible ASCII characters) and the organization derive the event id
//! (a UUIDv8 from their SHA-256), and the sender stores an organization's event id once:
//! a publish retried with the same key returns the first answer and queues nothing new.
//! This holds for as long as the message is kept (retention: 7 days after its last
//! delivery by default, so well over the 24 hours clients can count on), on every node
//! of the store and across restarts, with no second table to keep in step. A body with
//! its own `event_id` is deduplicated on that id instead; the key is then not used.
//! As with Svix, a reused key returns the first answer whatever the new body says.

use http::HeaderMap;
use webhook_sender::EventId;

use crate::error::{ApiError, ApiResult};

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// The longest key.
pub const MAX_LEN: usize = 255;

/// The event id the request's key derives, if it has one.
pub(crate) fn event_id(headers: &HeaderMap, organization: &str) -> ApiResult<Option<EventId>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::invalid("`Idempotency-Key` must be 1 to 255 visible ASCII characters")
        })?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"webhook-server idempotency-key v1\0");
    context.update(
        &u64::try_from(organization.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    context.update(organization.as_bytes());
    context.update(key.as_bytes());
    let digest = context.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    Ok(Some(EventId::from_uuid(
        uuid::Builder::from_custom_bytes(bytes).into_uuid(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, key.parse().expect("header"));
        headers
    }

    #[test]
    fn a_key_derives_one_id_per_organization() {
        let a = event_id(&with_key("k-1"), "org-a").expect("ok");
        assert_eq!(a, event_id(&with_key("k-1"), "org-a").expect("ok"));
        assert_ne!(a, event_id(&with_key("k-1"), "org-b").expect("ok"));
        assert_ne!(a, event_id(&with_key("k-2"), "org-a").expect("ok"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            event_id(&with_key("c"), "ab").expect("ok"),
            event_id(&with_key("bc"), "a").expect("ok")
        );
        assert_eq!(event_id(&HeaderMap::new(), "org-a").expect("ok"), None);
    }

    #[test]
    fn keys_outside_the_limits_are_refused() {
        assert!(event_id(&with_key(&"k".repeat(256)), "o").is_err());
        assert!(event_id(&with_key("has space"), "o").is_err());
        assert!(event_id(&with_key(&"k".repeat(255)), "o").is_ok());
    }
}
