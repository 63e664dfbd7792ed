//! The payloads every benchmark sends: a typical transaction event, tagged with a sequence
//! number that the load benchmark's server reads back.
//!
//! ```
//! use webhook_bench::payload;
//!
//! let data = payload::transaction(42);
//! let body = serde_json::to_vec(&data).unwrap();
//! assert_eq!(payload::find_seq(&body), Some(42));
//! assert!(body.len() > 900, "a typical transaction is about 1 KiB");
//! ```

use std::sync::LazyLock;

use serde_json::{Value, json};
use time::OffsetDateTime;
use webhook_core::event::{Event, EventType};
use webhook_core::redaction::Redactor;

/// The organization every benchmark publishes for.
pub const ORGANIZATION: &str = "21c81319-5b83-45f9-b648-42055084af15";

/// The event type every benchmark publishes.
pub const EVENT_TYPE: EventType = EventType::TransactionConfirmed;

/// The organization's webhook secret (event style, HMAC-SHA256).
pub const SECRET: &str = "bench-organization-secret-0123456789";

/// The field of the payload that carries the sequence number.
pub const SEQ_FIELD: &str = "benchSeq";

/// The entity id of event `seq` (every event is about a different transaction, so no
/// per-resource ordering holds deliveries back).
#[must_use]
pub fn entity(seq: u64) -> String {
    format!("tx-{seq:010}")
}

/// A typical `transaction.confirmed` payload (about 1 KiB of JSON) before redaction: the
/// fields seed 001 names, nested objects, e-mail addresses in three places, and the
/// `internal*`/`metadata` fields the default redaction drops.
#[must_use]
pub fn transaction(seq: u64) -> Value {
    json!({
        "id": entity(seq),
        "vaultId": "0196152d-5294-739d-9945-2a499f9e3989",
        "walletId": "0196153b-67bc-7cd3-b511-354373d28131",
        "organizationId": ORGANIZATION,
        "status": "CONFIRMED",
        "direction": "OUTBOUND",
        "blockchain": "ETHEREUM",
        "hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
        "source": { "address": "0x9f2c1b5d6e8a7c4b3a2918f7e6d5c4b3a2918f7e", "walletId": "0196153b-67bc-7cd3-b511-354373d28131" },
        "destination": { "address": "0x4644320f31D6958Ed8603Eb666044950Aa69702e", "label": "treasury payout" },
        "asset": { "symbol": "USDC", "decimals": 6, "contract": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48" },
        "qty": "1250.000000",
        "fee": { "qty": "0.000412318", "symbol": "ETH" },
        "confirmations": 12,
        "blockNumber": 19_827_331,
        "createdBy": "jane.doe@example.com",
        "customer": { "id": "c-88213", "email": "customer.one@example.org", "name": "Customer One" },
        "note": "payout batch 42; questions to ops-team@example.com",
        "internalRiskScore": 12,
        "internalNotes": "manual review skipped: below threshold",
        "metadata": { "batch": "2025-05-08-a", "source": "api", "trace": "7f3a9c" },
        "createdAt": "2025-05-08T14:29:41.120Z",
        "updatedAt": "2025-05-08T14:30:00.000Z",
        SEQ_FIELD: seq,
    })
}

/// The event JSON the sender would send for event `seq`, redacted with the default rules,
/// with its `idempotencyKey` and `id` made unique by `seq` (so a receiver's dedup sees a
/// new delivery every time).
#[must_use]
pub fn event_body(seq: u64, created_at: OffsetDateTime) -> Vec<u8> {
    let mut data = transaction(seq);
    Redactor::default().redact(EVENT_TYPE.as_str(), &mut data);
    let event = Event {
        id: format!(
            "0196153b-67bc-7cd3-{:04x}-{:012x}",
            seq >> 48,
            seq & 0xffff_ffff_ffff
        ),
        event_type: EVENT_TYPE,
        idempotency_key: format!("bench-{seq:016x}"),
        organization_id: ORGANIZATION.to_owned(),
        created_at: created_at.replace_nanosecond(0).unwrap_or(created_at),
        data,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Bodies that differ only in their sequence number, rendered by concatenation: the load
/// generator's cost per body stays far below a request's.
#[derive(Debug, Clone)]
pub struct Template {
    /// The body split at every place the sequence number goes.
    parts: Vec<Vec<u8>>,
}

/// The number a template is made with: it stands wherever the sequence number goes.
const SENTINEL: u64 = 987_654_321_987_654_321;

impl Template {
    /// The template of [`event_body`] (its `id` and `idempotencyKey` stay fixed; the
    /// sequence number and the entity id change).
    #[must_use]
    pub fn event() -> Self {
        Self::of(&event_body(SENTINEL, OffsetDateTime::now_utc()))
    }

    /// The body of a `POST /v1/organizations/{org}/messages` publishing event `seq` over
    /// the HTTP API: `{"type", "entity_id", "data"}` with [`transaction`] as the data
    /// (about 1 KiB).
    ///
    /// ```
    /// use webhook_bench::payload::{self, Template};
    ///
    /// let body = Template::publish_request().render(7);
    /// let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(request["type"], "transaction.confirmed");
    /// assert_eq!(request["entity_id"], "tx-7");
    /// assert_eq!(payload::find_seq(&body), Some(7));
    /// ```
    #[must_use]
    pub fn publish_request() -> Self {
        let request = json!({
            "type": EVENT_TYPE.as_str(),
            "entity_id": entity(SENTINEL),
            "data": transaction(SENTINEL),
        });
        Self::of(&serde_json::to_vec(&request).unwrap_or_default())
    }

    fn of(body: &[u8]) -> Self {
        let needle = SENTINEL.to_string();
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(at) = find(rest, needle.as_bytes()) {
            parts.push(rest[..at].to_vec());
            rest = &rest[at + needle.len()..];
        }
        parts.push(rest.to_vec());
        Self { parts }
    }

    /// The body for `seq`.
    #[must_use]
    pub fn render(&self, seq: u64) -> Vec<u8> {
        let digits = seq.to_string();
        let length =
            self.parts.iter().map(Vec::len).sum::<usize>() + digits.len() * (self.parts.len() - 1);
        let mut body = Vec::with_capacity(length);
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(digits.as_bytes());
            }
            body.extend_from_slice(part);
        }
        body
    }
}

/// The sequence number in a body: the digits after the first `"benchSeq":` (the
/// [`SEQ_FIELD`] key).
#[must_use]
pub fn find_seq(body: &[u8]) -> Option<u64> {
    static NEEDLE: LazyLock<String> = LazyLock::new(|| format!("\"{SEQ_FIELD}\":"));
    let start = find(body, NEEDLE.as_bytes())? + NEEDLE.len();
    let digits = body[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&body[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(offset) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_what_event_body_would_with_its_seq() {
        let template = Template::event();
        for seq in [0, 7, 123_456_789, u64::MAX] {
            let body = template.render(seq);
            assert_eq!(find_seq(&body), Some(seq));
            let event: Event = serde_json::from_slice(&body).unwrap();
            assert_eq!(event.data[SEQ_FIELD], seq);
        }
    }

    #[test]
    fn bodies_are_redacted_and_about_one_kib() {
        let body = event_body(3, OffsetDateTime::now_utc());
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains("jane.doe@"), "{text}");
        assert!(text.contains("j***@example.com"), "{text}");
        assert!(!text.contains("internalRiskScore"));
        assert!(!text.contains("\"metadata\""));
        assert!((700..1400).contains(&body.len()), "{}", body.len());
        assert_eq!(find_seq(&body), Some(3));
    }

    #[test]
    fn find_seq_refuses_bodies_without_a_number() {
        assert_eq!(find_seq(b"{}"), None);
        assert_eq!(find_seq(br#"{"benchSeq":"x"}"#), None);
        assert_eq!(find_seq(br#"{"benchSeq":}"#), None);
        assert_eq!(find_seq(br#"{"a":"benchSeq","benchSeq":5}"#), Some(5));
    }
}
