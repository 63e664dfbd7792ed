//! The event style's body-shape check without building the event: it accepts exactly the
//! bodies that decode as core's [`Event`](webhook_core::event::Event), and keeps only
//! what the middleware needs (the idempotency key and the event type).
//!
//! Decoding `data` into a `serde_json::Value` tree was the largest part of the
//! middleware's cost, and a handler that reads only the body never looks at it. So the
//! middleware checks the shape with [`EventShape`]: the same field names and types as
//! `Event` (strings as strings, `createdAt` through the same RFC 3339 parser, unknown
//! fields ignored the same way), with `data` walked by [`ValidJson`], which makes the
//! parser visit every value exactly as `Value`'s own `Deserialize` does
//! (`deserialize_any`, so the same nesting limit, the same number parsing and range
//! errors, the same string and escape checks) and keeps nothing. Because it runs inside
//! the same deserializer as the envelope, the depth limit and the error positions are
//! those of decoding the whole `Event`. The full event is decoded from the verified
//! bytes when a handler first asks for it (see [`VerifiedWebhook`](crate::VerifiedWebhook)),
//! and cannot fail then: the tests below check both decoders against each other on
//! every kind of body that either could refuse.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use time::OffsetDateTime;
use webhook_core::event::EventType;

/// What the middleware keeps of a well-formed event-style body.
#[derive(Debug)]
pub(crate) struct EventHead {
    /// `idempotencyKey`: the dedup key.
    pub(crate) dedup_key: String,
    /// `type`.
    pub(crate) event_type: EventType,
}

/// Checks that `body` decodes as an `Event` and returns its head.
pub(crate) fn event_head(body: &[u8]) -> Result<EventHead, serde_json::Error> {
    let shape: EventShape<'_> = parse(body)?;
    Ok(EventHead {
        dedup_key: shape.idempotency_key,
        event_type: EventType::from(shape.event_type.as_ref()),
    })
}

/// `serde_json::from_slice(body)`, faster: a body that is valid UTF-8 throughout (every
/// well-formed one) is checked once as a whole and then parsed as text, so the parser
/// does not check each string again; any other body is parsed as bytes, so that the
/// error (its category and position) is exactly the one `from_slice` reports.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// `Event`'s fields, in its order and with its names and types; only the two the
/// middleware needs are kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Fields that are only checked, never read.
struct EventShape<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    /// `EventType` deserializes from a `Cow<str>` too.
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    idempotency_key: String,
    #[serde(borrow)]
    organization_id: Cow<'a, str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    data: ValidJson,
}

/// Any JSON value `serde_json::Value` accepts, walked and dropped.
pub(crate) struct ValidJson;

impl<'de> Deserialize<'de> for ValidJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As `Value::deserialize`: the parser decides what comes next.
        deserializer.deserialize_any(ValidJsonVisitor)
    }
}

struct ValidJsonVisitor;

impl<'de> Visitor<'de> for ValidJsonVisitor {
    type Value = ValidJson;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_i64<E>(self, _: i64) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_u64<E>(self, _: u64) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_f64<E>(self, _: f64) -> Result<ValidJson, E> {
        // `Value` maps a non-finite number to `null` rather than failing; so do we.
        Ok(ValidJson)
    }

    fn visit_str<E>(self, _: &str) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_none<E>(self) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<ValidJson, D::Error> {
        ValidJson::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValidJson, A::Error> {
        while seq.next_element::<ValidJson>()?.is_some() {}
        Ok(ValidJson)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ValidJson, A::Error> {
        // `Value` reads keys as strings; a JSON object's keys always are.
        while map.next_key::<KeyText>()?.is_some() {
            map.next_value::<ValidJson>()?;
        }
        Ok(ValidJson)
    }
}

/// An object key, read as `Value` reads it (`deserialize_str`) and dropped.
struct KeyText;

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string key")
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<KeyText, E> {
                Ok(KeyText)
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use webhook_core::event::Event;

    use super::*;

    const GOOD: &str = r#"{"id":"e1","type":"transaction.confirmed","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{"id":"tx-1","qty":"1.5","n":[1,-2,3.5e10,true,null,{"a":"\u00e9\n"}]}}"#;

    fn event_with_data(data: &str) -> String {
        format!(
            r#"{{"id":"e1","type":"wallet.created","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{data}}}"#
        )
    }

    /// Bodies each decoder could refuse or accept, and some that only a lax check would
    /// let through.
    fn cases() -> Vec<String> {
        let mut cases: Vec<String> = [
            GOOD,
            "",
            "{",
            "null",
            "[]",
            "{}",
            r#"{"id":"e1"}"#,
            // Missing, null and wrongly typed fields.
            r#"{"id":"e1","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z"}"#,
            r#"{"id":1,"type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":7,"idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":null,"organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":["o"],"createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"yesterday","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":1746714600,"data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00+02:00","data":{}}"#,
            // Duplicate and unknown fields, escapes, trailing bytes.
            r#"{"id":"e","id":"f","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{},"extra":[1e999]}"#,
            r#"{"id":"e\"1","type":"t\u0041","idempotencyKey":"k\\","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e\x","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}} x"#,
            r#"{"id":"e","type":"t","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}  "#,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // `data` of every kind, including what only a skip-over check would accept.
        for data in [
            "null",
            "true",
            "0",
            "-0",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1e308",
            "1e309",
            "-1e400",
            "1.5e-400",
            "01",
            "1.",
            "[1,2,]",
            "{\"a\":1,}",
            "{\"a\":1,\"a\":2}",
            "\"\\ud800\"",
            "\"\\uZZZZ\"",
            "\"\u{1}\"",
            "{1:2}",
            "[[[[]]]]",
            "\"x\"",
            "NaN",
        ] {
            cases.push(event_with_data(data));
        }
        // Nesting around serde_json's limit of 128, counting the envelope's own object.
        for depth in [125, 126, 127, 128, 129, 200] {
            cases.push(event_with_data(&format!(
                "{}{}",
                "[".repeat(depth),
                "]".repeat(depth)
            )));
            cases.push(event_with_data(&format!(
                "{}1{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            )));
        }
        cases
    }

    #[test]
    fn accepts_exactly_what_event_decodes_with_the_same_error() {
        for case in cases() {
            let full = serde_json::from_slice::<Event>(case.as_bytes());
            let head = event_head(case.as_bytes());
            match (&full, &head) {
                (Ok(event), Ok(head)) => {
                    assert_eq!(head.dedup_key, event.idempotency_key, "{case}");
                    assert_eq!(head.event_type, event.event_type, "{case}");
                }
                (Err(full), Err(head)) => {
                    // The rejection quotes category and position only: both must agree.
                    assert_eq!(full.classify(), head.classify(), "{case}");
                    assert_eq!(
                        (full.line(), full.column()),
                        (head.line(), head.column()),
                        "{case}"
                    );
                }
                _ => panic!(
                    "decoders disagree on {case:?}: Event {:?}, shape check {:?}",
                    full.as_ref().err(),
                    head.as_ref().err()
                ),
            }
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_good_body_is_judged_alike() {
        let good = GOOD.as_bytes();
        let mut bodies: Vec<Vec<u8>> = (0..good.len()).map(|cut| good[..cut].to_vec()).collect();
        for i in 0..good.len() {
            for replacement in [b'"', b'{', b'}', b'[', b',', b':', b'1', b'\\', b'x', 0xff] {
                let mut flipped = good.to_vec();
                flipped[i] = replacement;
                bodies.push(flipped);
            }
        }
        for body in bodies {
            let full = serde_json::from_slice::<Event>(&body).map(|_| ());
            let head = event_head(&body).map(|_| ());
            assert_eq!(
                full.as_ref()
                    .map_err(|e| (e.classify(), e.line(), e.column())),
                head.as_ref()
                    .map_err(|e| (e.classify(), e.line(), e.column())),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn text_and_byte_parsing_agree_also_on_invalid_utf8() {
        let mut bodies: Vec<Vec<u8>> = cases().into_iter().map(String::into_bytes).collect();
        let good = GOOD.as_bytes();
        for i in [0, 1, 8, good.len() / 2, good.len() - 3] {
            let mut broken = good.to_vec();
            broken[i] = 0xc3; // a lead byte without its continuation
            bodies.push(broken);
        }
        for body in bodies {
            let sliced = serde_json::from_slice::<Event>(&body)
                .map_err(|e| (e.classify(), e.line(), e.column()));
            let parsed = parse::<Event>(&body).map_err(|e| (e.classify(), e.line(), e.column()));
            assert_eq!(sliced, parsed, "{}", String::from_utf8_lossy(&body));
            assert_eq!(
                event_head(&body)
                    .map(|_| ())
                    .map_err(|e| (e.classify(), e.line(), e.column())),
                sliced.map(|_| ()),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn keeps_the_idempotency_key_and_type() {
        let head = event_head(GOOD.as_bytes()).unwrap();
        assert_eq!(head.dedup_key, "k1");
        assert_eq!(head.event_type, EventType::TransactionConfirmed);
        let unknown = event_head(
            event_with_data("{}")
                .replace("wallet.created", "payout.sent")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(unknown.event_type, EventType::Unknown("payout.sent".into()));
    }
}
