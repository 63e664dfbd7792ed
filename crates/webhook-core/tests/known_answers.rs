//! Known-answer tests: every vector in `tests/data/` was computed by openssl or Python
//! (`hmac`, `hashlib`, `cryptography`) — see `tests/data/generate.py` — never by this crate.
//! Each case is checked as given (signature and window only: `authenticate`; vectors include
//! non-JSON bodies on purpose), then tampered with (body, timestamp, signature, key) and
//! must fail.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{headers, records};
use webhook_core::domain::Domain;
use webhook_core::idempotency::IdempotencyKey;
use webhook_core::keys::{
    EcdsaPublicKey, EcdsaSigningKey, Ed25519PublicKey, Ed25519SigningKey, HmacSecret,
};
use webhook_core::scheme::{StandardSigningKey, StandardVerifyingKey};
use webhook_core::{Outgoing, SigningKeys, TrustedKeys, VerifyError};

const TOLERANCE: Duration = Duration::from_secs(300);

/// `authenticate` accepted the signature and the timestamp.
fn signature_accepted(result: &Result<i64, VerifyError>) -> bool {
    result.is_ok()
}

fn flip_first_byte(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match out.first_mut() {
        Some(b) => *b ^= 0x01,
        None => out.push(b'x'),
    }
    out
}

#[test]
fn event_hmac_vectors() {
    for case in records("event_hmac.txt") {
        let n = case.number;
        let secret = HmacSecret::from_utf8(case.get("Secret")).unwrap();
        let timestamp: i64 = case.get("Timestamp").parse().unwrap();
        let body = case.hex("BodyHex");
        let expected = case.get("Signature");

        // Signing reproduces the independent value exactly.
        let at = time::OffsetDateTime::from_unix_timestamp(timestamp).unwrap();
        let signed = SigningKeys::Event(vec![secret.clone()])
            .sign(&Outgoing::new("id", &body), at)
            .unwrap();
        let sig = signed
            .headers
            .iter()
            .find(|(k, _)| k == "x-webhook-signature")
            .unwrap();
        assert_eq!(sig.1.to_str().unwrap(), expected, "case {n}");

        let trusted = TrustedKeys::Event(vec![secret]);
        let verify = |ts: &str, sig: &str, body: &[u8], keys: &TrustedKeys| {
            keys.authenticate(
                &headers([("x-webhook-timestamp", ts), ("x-webhook-signature", sig)]),
                body,
                timestamp,
                TOLERANCE,
            )
        };
        let ts = timestamp.to_string();
        assert!(
            signature_accepted(&verify(&ts, expected, &body, &trusted)),
            "case {n}"
        );
        // Upper-case hex is a different string but the same bytes; still accepted.
        assert!(
            signature_accepted(&verify(&ts, &expected.to_uppercase(), &body, &trusted)),
            "case {n}"
        );

        let no_match = Err(VerifyError::NoMatchingSignature);
        assert_eq!(
            verify(&ts, expected, &flip_first_byte(&body), &trusted),
            no_match,
            "case {n} body"
        );
        let mut longer = body.clone();
        longer.push(b' ');
        assert_eq!(
            verify(&ts, expected, &longer, &trusted),
            no_match,
            "case {n} appended byte"
        );
        let other_ts = (timestamp + 1).to_string();
        let shifted = trusted.authenticate(
            &headers([
                ("x-webhook-timestamp", other_ts.as_str()),
                ("x-webhook-signature", expected),
            ]),
            &body,
            timestamp + 1,
            TOLERANCE,
        );
        assert_eq!(shifted, no_match, "case {n} timestamp");
        let mut bad_sig = expected.to_owned().into_bytes();
        bad_sig[63] = if bad_sig[63] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(&ts, std::str::from_utf8(&bad_sig).unwrap(), &body, &trusted),
            no_match,
            "case {n} sig"
        );
        let other_key = TrustedKeys::Event(vec![
            HmacSecret::from_utf8(&format!("{}x", case.get("Secret"))).unwrap(),
        ]);
        assert_eq!(
            verify(&ts, expected, &body, &other_key),
            no_match,
            "case {n} key"
        );
        // Rotation: one matching entry among others is enough.
        let list = format!("{},{expected}", "0".repeat(64));
        assert!(
            signature_accepted(&verify(&ts, &list, &body, &trusted)),
            "case {n} list"
        );
    }
}

fn envelope_body(payload: &str, timestamp: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"domain": "WALLET", "timestamp": timestamp, "payload": payload}),
    )
    .unwrap()
}

const ENVELOPE_TIME: &str = "2025-05-08T14:15:37Z";
const ENVELOPE_UNIX: i64 = 1_746_713_737;

#[test]
fn ecdsa_p256_vectors() {
    for case in records("ecdsa_p256.txt") {
        let n = case.number;
        let public = EcdsaPublicKey::from_spki_base64(case.get("PublicKey")).unwrap();
        assert_eq!(
            public.to_spki_base64(),
            case.get("PublicKey"),
            "case {n} round trip"
        );
        let private = EcdsaSigningKey::from_pkcs8_base64(case.get("PrivateKey")).unwrap();
        assert_eq!(
            private.public_key(),
            public,
            "case {n}: private key matches public key"
        );

        let payload = case.get("Payload");
        let signature = case.get("Signature");
        let trusted = TrustedKeys::Domain(vec![public.clone()]);
        let verify = |payload: &str, sig: &str, keys: &TrustedKeys| {
            keys.authenticate(
                &headers([("signature", sig)]),
                &envelope_body(payload, ENVELOPE_TIME),
                ENVELOPE_UNIX,
                TOLERANCE,
            )
        };
        assert!(
            signature_accepted(&verify(payload, signature, &trusted)),
            "case {n}"
        );

        let no_match = Err(VerifyError::NoMatchingSignature);
        let mut tampered = payload.to_owned().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(std::str::from_utf8(&tampered).unwrap(), signature, &trusted),
            no_match,
            "case {n} payload"
        );
        let (other, _) = EcdsaSigningKey::generate().unwrap();
        assert_eq!(
            verify(
                payload,
                signature,
                &TrustedKeys::Domain(vec![other.public_key()])
            ),
            no_match,
            "case {n} key"
        );
        // Rotation: the right key among several.
        assert!(
            signature_accepted(&verify(
                payload,
                signature,
                &TrustedKeys::Domain(vec![other.public_key(), public])
            )),
            "case {n}"
        );
    }
}

#[test]
fn ecdsa_p256_bad_vectors_are_refused() {
    for case in records("ecdsa_p256_bad.txt") {
        let public = EcdsaPublicKey::from_spki_base64(case.get("PublicKey")).unwrap();
        let result = TrustedKeys::Domain(vec![public]).authenticate(
            &headers([("signature", case.get("Signature"))]),
            &envelope_body(case.get("Payload"), ENVELOPE_TIME),
            ENVELOPE_UNIX,
            TOLERANCE,
        );
        assert_eq!(
            result,
            Err(VerifyError::NoMatchingSignature),
            "case {}: {}",
            case.number,
            case.get("Reason")
        );
    }
}

#[test]
fn standard_v1_vectors() {
    let cases = records("standard_v1.txt");
    // Case 1 is the example published with the Standard Webhooks reference libraries.
    assert_eq!(
        cases[0].get("Signature"),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    for case in cases {
        let n = case.number;
        let secret = HmacSecret::from_whsec(case.get("Secret")).unwrap();
        assert_eq!(
            secret.to_whsec().as_str(),
            case.get("Secret"),
            "case {n} round trip"
        );
        let (id, expected, body) = (case.get("Id"), case.get("Signature"), case.hex("BodyHex"));
        let timestamp: i64 = case.get("Timestamp").parse().unwrap();

        let signed = SigningKeys::Standard(vec![StandardSigningKey::Symmetric(secret.clone())])
            .sign(
                &Outgoing::new(id, &body),
                time::OffsetDateTime::from_unix_timestamp(timestamp).unwrap(),
            )
            .unwrap();
        let sig = signed
            .headers
            .iter()
            .find(|(k, _)| k == "webhook-signature")
            .unwrap();
        assert_eq!(sig.1.to_str().unwrap(), expected, "case {n}");

        let trusted = TrustedKeys::Standard(vec![StandardVerifyingKey::Symmetric(secret)]);
        let ts = timestamp.to_string();
        let verify = |id: &str, sig: &str, body: &[u8]| {
            trusted.authenticate(
                &headers([
                    ("webhook-id", id),
                    ("webhook-timestamp", ts.as_str()),
                    ("webhook-signature", sig),
                ]),
                body,
                timestamp,
                TOLERANCE,
            )
        };
        assert!(verify(id, expected, &body).is_ok(), "case {n}");
        let no_match = Err(VerifyError::NoMatchingSignature);
        assert_eq!(
            verify(&format!("{id}x"), expected, &body),
            no_match,
            "case {n} id"
        );
        assert_eq!(
            verify(id, expected, &flip_first_byte(&body)),
            no_match,
            "case {n} body"
        );
        assert_eq!(
            verify(id, &expected.replacen("v1,", "v2,", 1), &body),
            no_match,
            "case {n} unknown version"
        );
        // Several entries, the good one last, as during a rotation.
        let list = format!("v1,AAAA v1a,{} {expected}", "A".repeat(88));
        assert!(
            signature_accepted(&verify(id, &list, &body)),
            "case {n} list"
        );
    }
}

#[test]
fn standard_v1a_vectors() {
    for case in records("standard_v1a.txt") {
        let n = case.number;
        let signing = Ed25519SigningKey::from_whsk(case.get("SecretKey")).unwrap();
        let public = Ed25519PublicKey::from_whpk(case.get("PublicKey")).unwrap();
        assert_eq!(signing.public_key(), public, "case {n}");
        assert_eq!(signing.to_whsk().as_str(), case.get("SecretKey"));
        assert_eq!(public.to_whpk(), case.get("PublicKey"));
        let (id, expected, body) = (case.get("Id"), case.get("Signature"), case.hex("BodyHex"));
        let timestamp: i64 = case.get("Timestamp").parse().unwrap();

        // Ed25519 is deterministic, so signing reproduces the value exactly.
        let signed = SigningKeys::Standard(vec![StandardSigningKey::Asymmetric(signing)])
            .sign(
                &Outgoing::new(id, &body),
                time::OffsetDateTime::from_unix_timestamp(timestamp).unwrap(),
            )
            .unwrap();
        let sig = signed
            .headers
            .iter()
            .find(|(k, _)| k == "webhook-signature")
            .unwrap();
        assert_eq!(sig.1.to_str().unwrap(), expected, "case {n}");

        let trusted = TrustedKeys::Standard(vec![StandardVerifyingKey::Asymmetric(public)]);
        let ts = timestamp.to_string();
        let verify = |sig: &str, body: &[u8]| {
            trusted.authenticate(
                &headers([
                    ("webhook-id", id),
                    ("webhook-timestamp", ts.as_str()),
                    ("webhook-signature", sig),
                ]),
                body,
                timestamp,
                TOLERANCE,
            )
        };
        assert!(verify(expected, &body).is_ok(), "case {n}");
        assert_eq!(
            verify(expected, &flip_first_byte(&body)),
            Err(VerifyError::NoMatchingSignature),
            "case {n}"
        );
        // A v1a signature presented as v1 is not accepted.
        assert_eq!(
            verify(&expected.replacen("v1a,", "v1,", 1), &body),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

#[test]
fn idempotency_vectors() {
    for case in records("idempotency.txt") {
        let key = IdempotencyKey::derive(
            case.get("Organization"),
            case.get("Type"),
            case.get("Entity"),
            case.get("WindowStart").parse().unwrap(),
        );
        assert_eq!(key.as_str(), case.get("Key"), "case {}", case.number);
    }
}

#[test]
fn signing_a_domain_message_needs_its_domain() {
    let (key, _) = EcdsaSigningKey::generate().unwrap();
    let keys = SigningKeys::Domain(Box::new(key));
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        keys.sign(&Outgoing::new("m", b"{}"), now),
        Err(webhook_core::SignError::MissingDomain)
    );
    assert!(
        keys.sign(&Outgoing::new("m", b"{}").with_domain(&Domain::Wallet), now)
            .is_ok()
    );
}
