//! Our signatures verified by independent tools: openssl for ECDSA P-256 and HMAC-SHA256,
//! Python's `cryptography` for Ed25519. A tool that is missing is reported loudly on
//! stderr and the check fails when `WEBHOOK_REQUIRE_INTEROP=1`, which `cargo xtask test`
//! always sets (after installing the tools or failing with the command to run); a plain
//! `cargo test` on a machine without them reports and goes on (`known_answers.rs` covers
//! the other direction without any tool).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use webhook_core::domain::Domain;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SigningKeys};

/// Whether `program` runs; prints a loud notice when it does not.
fn tool_available(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n!!! INTEROP CHECK NOT RUN: `{program}` is not installed; install it to check our signatures against it !!!\n"
        );
        assert!(
            std::env::var_os("WEBHOOK_REQUIRE_INTEROP").is_none(),
            "{program} is required"
        );
    }
    ok
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn header<'a>(request: &'a webhook_core::SignedRequest, name: &str) -> &'a str {
    request
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
        .to_str()
        .unwrap()
}

fn run(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn openssl_verifies_our_ecdsa_signatures_and_reads_our_keys() {
    if !tool_available("openssl", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, pkcs8) = EcdsaSigningKey::generate().unwrap();
    let public = key.public_key();
    std::fs::write(dir.path().join("key.der"), &*pkcs8).unwrap();
    std::fs::write(
        dir.path().join("pub.pem"),
        pem("PUBLIC KEY", &public.to_spki_der()),
    )
    .unwrap();

    // openssl derives the same SubjectPublicKeyInfo from our PKCS#8 private key.
    let derived = run(
        dir.path(),
        "openssl",
        &[
            "pkey", "-inform", "DER", "-in", "key.der", "-pubout", "-outform", "DER",
        ],
    );
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    assert_eq!(derived.stdout, public.to_spki_der());

    let keys = SigningKeys::Domain(Box::new(key));
    let large = format!(r#"{{"id":"w1","padding":"{}"}}"#, "x".repeat(5000));
    for (i, resource) in [&b"{\"id\":\"w1\"}"[..], b"{}", large.as_bytes()]
        .into_iter()
        .enumerate()
    {
        let request = keys
            .sign(
                &Outgoing::new("m", resource).with_domain(&Domain::Wallet),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        let envelope: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let payload = envelope["payload"].as_str().unwrap();
        assert_eq!(STANDARD.decode(payload).unwrap(), resource);
        std::fs::write(dir.path().join("payload"), payload).unwrap();
        std::fs::write(
            dir.path().join("sig.der"),
            STANDARD.decode(header(&request, "signature")).unwrap(),
        )
        .unwrap();
        let verify = run(
            dir.path(),
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "payload",
            ],
        );
        assert!(
            verify.status.success(),
            "case {i}: openssl refused our signature: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        // And refuses it for a different payload, so the check above could fail.
        std::fs::write(dir.path().join("payload"), format!("{payload}A")).unwrap();
        let verify = run(
            dir.path(),
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "payload",
            ],
        );
        assert!(!verify.status.success(), "case {i}");
    }
}

#[test]
fn openssl_computes_our_event_hmac() {
    if !tool_available("openssl", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = "whk-org-3f9a:rotation/2";
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8(secret).unwrap()]);
    let body = br#"{"id":"e1","type":"transaction.confirmed","data":{"qty":"1.5"}}"#;
    let at = time::OffsetDateTime::from_unix_timestamp(1_746_714_600).unwrap();
    let request = keys.sign(&Outgoing::new("e1", body), at).unwrap();
    let mut signed = b"1746714600.".to_vec();
    signed.extend_from_slice(body);
    std::fs::write(dir.path().join("msg"), &signed).unwrap();
    let out = run(
        dir.path(),
        "openssl",
        &["dgst", "-sha256", "-hmac", secret, "-r", "msg"],
    );
    assert!(out.status.success());
    let hex = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        hex.split_whitespace().next().unwrap(),
        header(&request, "x-webhook-signature")
    );
}

#[test]
fn python_cryptography_verifies_our_ed25519_signatures() {
    let probe = [
        "-c",
        "import cryptography.hazmat.primitives.asymmetric.ed25519",
    ];
    if !tool_available("python3", &probe) {
        return;
    }
    let key = Ed25519SigningKey::generate().unwrap();
    let public = key.public_key().to_whpk();
    let keys = SigningKeys::Standard(vec![StandardSigningKey::Asymmetric(key)]);
    let body = br#"{"type":"wallet.created","data":{"id":"w1"}}"#;
    let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let request = keys.sign(&Outgoing::new("msg_abc", body), at).unwrap();
    let signature = header(&request, "webhook-signature")
        .strip_prefix("v1a,")
        .unwrap();
    let script = r#"
import base64, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
pub, sig, content = sys.argv[1], sys.argv[2], sys.argv[3].encode()
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(pub.removeprefix("whpk_")))
key.verify(base64.b64decode(sig), content)
try:
    key.verify(base64.b64decode(sig), content + b"x")
    sys.exit(3)
except Exception:
    print("OK")
"#;
    let content = format!("msg_abc.1700000000.{}", std::str::from_utf8(body).unwrap());
    let out = Command::new("python3")
        .args(["-c", script, &public, signature, &content])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python refused our signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}
