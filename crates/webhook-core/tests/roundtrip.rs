//! Property tests: for every scheme, sign-then-verify succeeds, and any change to the
//! body, timestamp, signature or key makes verification fail.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;
use std::time::Duration;

use http::HeaderMap;
use proptest::prelude::*;
use webhook_core::domain::Domain;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SignedRequest, SigningKeys, Style, TrustedKeys, VerifyError};

const TOLERANCE: Duration = Duration::from_secs(300);

static ECDSA: LazyLock<EcdsaSigningKey> = LazyLock::new(|| EcdsaSigningKey::generate().unwrap().0);
static ECDSA_OTHER: LazyLock<EcdsaSigningKey> =
    LazyLock::new(|| EcdsaSigningKey::generate().unwrap().0);

/// The schemes under test, built from a generated secret.
fn signing_keys(style: Style, secret: &[u8], asymmetric_standard: bool) -> SigningKeys {
    match style {
        Style::Event => SigningKeys::Event(vec![HmacSecret::from_bytes(secret).unwrap()]),
        Style::Domain => SigningKeys::Domain(Box::new(ECDSA.clone())),
        Style::Standard if asymmetric_standard => {
            let mut seed = [0u8; 32];
            for (i, b) in secret.iter().enumerate() {
                seed[i % 32] ^= b;
            }
            SigningKeys::Standard(vec![StandardSigningKey::Asymmetric(
                Ed25519SigningKey::from_seed(&seed).unwrap(),
            )])
        }
        Style::Standard => SigningKeys::Standard(vec![StandardSigningKey::Symmetric(
            HmacSecret::from_bytes(secret).unwrap(),
        )]),
    }
}

/// A different key of the same scheme.
fn other_keys(style: Style, secret: &[u8], asymmetric_standard: bool) -> SigningKeys {
    if style == Style::Domain {
        return SigningKeys::Domain(Box::new(ECDSA_OTHER.clone()));
    }
    let mut other = secret.to_vec();
    other[0] ^= 0x80;
    signing_keys(style, &other, asymmetric_standard)
}

/// A body of the right shape for the style, carrying arbitrary text.
fn content(style: Style, text: &str) -> Vec<u8> {
    match style {
        Style::Domain => serde_json::to_vec(&serde_json::json!({
            "id": text, "status": "CREATED", "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-01-01T00:00:01Z"
        })),
        _ => serde_json::to_vec(&serde_json::json!({
            "id": "e1", "type": "wallet.created", "idempotencyKey": text, "organizationId": "o",
            "createdAt": "2025-01-01T00:00:00Z", "data": {"note": text}
        })),
    }
    .unwrap()
}

fn sign(keys: &SigningKeys, body: &[u8], at: i64) -> SignedRequest {
    let at = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
    keys.sign(
        &Outgoing::new("msg_1", body).with_domain(&Domain::Wallet),
        at,
    )
    .unwrap()
}

fn header_map(request: &SignedRequest) -> HeaderMap {
    request.headers.iter().cloned().collect()
}

/// The header holding the signature (domain style) or the timestamp for each style.
fn signature_header(style: Style) -> &'static str {
    match style {
        Style::Event => "x-webhook-signature",
        Style::Domain => "signature",
        Style::Standard => "webhook-signature",
    }
}

fn style_strategy() -> impl Strategy<Value = (Style, bool)> {
    prop_oneof![
        Just((Style::Event, false)),
        Just((Style::Domain, false)),
        Just((Style::Standard, false)),
        Just((Style::Standard, true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips(
        (style, asym) in style_strategy(),
        secret in proptest::collection::vec(any::<u8>(), 24..64),
        text in ".{0,200}",
        at in 0i64..4_102_444_800,
        skew in -300i64..=300,
    ) {
        let keys = signing_keys(style, &secret, asym);
        let request = sign(&keys, &content(style, &text), at);
        let verified = keys.trusted_keys().verify(&header_map(&request), &request.body, at + skew, TOLERANCE).unwrap();
        prop_assert_eq!(verified.style, style);
        prop_assert_eq!(verified.timestamp, at);
        let expected_key = match style {
            Style::Event => text.clone(),
            Style::Domain => format!("{text}@2025-01-01T00:00:01Z"),
            Style::Standard => "msg_1".to_owned(),
        };
        prop_assert_eq!(verified.dedup_key, expected_key);
    }

    #[test]
    fn any_change_breaks_verification(
        (style, asym) in style_strategy(),
        secret in proptest::collection::vec(any::<u8>(), 24..64),
        text in "[a-z]{1,40}",
        at in 1_000i64..4_102_444_800,
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let keys = signing_keys(style, &secret, asym);
        let request = sign(&keys, &content(style, &text), at);
        let headers = header_map(&request);
        let trusted = keys.trusted_keys();
        prop_assert!(trusted.verify(&headers, &request.body, at, TOLERANCE).is_ok());

        // The body (for the domain style: the signed payload inside the envelope).
        let mut body = request.body.clone();
        if style == Style::Domain {
            let mut envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let payload = envelope["payload"].as_str().unwrap().to_owned();
            let other = content(style, &format!("{text}x"));
            use base64::Engine as _;
            let replaced = base64::engine::general_purpose::STANDARD.encode(other);
            prop_assert_ne!(&payload, &replaced);
            envelope["payload"] = replaced.into();
            body = serde_json::to_vec(&envelope).unwrap();
        } else {
            let i = position.index(body.len());
            body[i] ^= 1 << bit;
        }
        let result = trusted.verify(&headers, &body, at, TOLERANCE);
        // The signature is checked before the body is parsed, so this is always a mismatch.
        prop_assert_eq!(result, Err(VerifyError::NoMatchingSignature));

        // The timestamp (event and standard sign it; the domain envelope's is unsigned by design).
        if style != Style::Domain {
            let mut moved = headers.clone();
            let name = if style == Style::Event { "x-webhook-timestamp" } else { "webhook-timestamp" };
            moved.insert(name, (at + 1).to_string().parse().unwrap());
            prop_assert_eq!(trusted.verify(&moved, &request.body, at, TOLERANCE), Err(VerifyError::NoMatchingSignature));
        }

        // The signature: flip one bit of one character.
        let mut tampered = headers.clone();
        let original = headers[signature_header(style)].to_str().unwrap().to_owned();
        let mut chars = original.into_bytes();
        let i = position.index(chars.len());
        chars[i] ^= 1 << (bit % 5);
        if let Ok(value) = http::HeaderValue::from_bytes(&chars) {
            tampered.insert(signature_header(style), value);
            let result = trusted.verify(&tampered, &request.body, at, TOLERANCE);
            prop_assert!(result.is_err(), "tampered signature accepted");
        }

        // The key.
        let other = other_keys(style, &secret, asym).trusted_keys();
        prop_assert_eq!(other.verify(&headers, &request.body, at, TOLERANCE), Err(VerifyError::NoMatchingSignature));

        // Outside the window, whichever direction.
        let too_old = matches!(trusted.verify(&headers, &request.body, at + 301, TOLERANCE), Err(VerifyError::TimestampTooOld { .. }));
        prop_assert!(too_old);
        let too_new = matches!(trusted.verify(&headers, &request.body, at - 301, TOLERANCE), Err(VerifyError::TimestampTooNew { .. }));
        prop_assert!(too_new);
    }
}

#[test]
fn rotation_signs_with_every_secret() {
    let old = HmacSecret::from_utf8("old-secret").unwrap();
    let new = HmacSecret::from_utf8("new-secret").unwrap();
    let body = content(Style::Event, "k");
    let request = sign(
        &SigningKeys::Event(vec![old.clone(), new.clone()]),
        &body,
        1_000,
    );
    for receiver in [vec![old], vec![new]] {
        assert!(
            TrustedKeys::Event(receiver)
                .verify(&header_map(&request), &body, 1_000, TOLERANCE)
                .is_ok()
        );
    }
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let secret = HmacSecret::from_utf8("super-secret-value").unwrap();
    let (ecdsa, pkcs8) = EcdsaSigningKey::generate().unwrap();
    let ed = Ed25519SigningKey::generate().unwrap();
    let keys = SigningKeys::Standard(vec![
        StandardSigningKey::Symmetric(secret.clone()),
        StandardSigningKey::Asymmetric(ed.clone()),
    ]);
    let debug = format!(
        "{secret:?} {ecdsa:?} {ed:?} {keys:?} {:?}",
        keys.trusted_keys()
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    for needle in [
        "super-secret-value".to_owned(),
        hex::encode("super-secret-value"),
        b64.encode("super-secret-value"),
        b64.encode(&*pkcs8),
        ed.to_whsk().to_string(),
        ed.to_whsk()["whsk_".len()..].to_owned(),
    ] {
        assert!(
            !debug.contains(&needle),
            "Debug output leaks a secret: {debug}"
        );
    }
    let err = HmacSecret::from_whsec("whsec_not*base64").unwrap_err();
    assert!(!err.to_string().contains("not*base64"));
}
