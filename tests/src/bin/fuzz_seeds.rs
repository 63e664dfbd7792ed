//! Writes the seed corpus of the fuzz targets into `fuzz/corpus/<target>/`: the core test
//! vectors (`crates/webhook-core/tests/data/`), the seeds' own examples, requests freshly
//! signed with the harness's fixed keys (so the fuzzer starts past the signature check), and
//! the malformed shapes of the receiver's bad-request table.
//!
//! ```text
//! cargo run -p webhook-e2e --bin fuzz_seeds [-- OUTPUT_DIR]   # default: fuzz/corpus
//! ```
//!
//! Existing files are left alone (ECDSA signatures are randomized, so rewriting them would
//! churn the committed corpus); delete a file to regenerate it. `cargo xtask fuzz` runs this
//! before fuzzing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use webhook_core::domain::Domain;
use webhook_core::keys::{EcdsaSigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SigningKeys};
use webhook_e2e::fuzzing::{
    DOMAIN_PRIVATE_KEY, DOMAIN_PUBLIC_KEYS, EVENT_SECRETS, STANDARD_KEYS, STANDARD_V1A_PRIVATE_KEY,
    encode_request,
};
use webhook_sender::RetryPolicy;

/// "Now" of the freshly signed seeds: 2025-05-08T14:30:00Z.
const NOW: i64 = 1_746_714_600;

/// Seed 001's example envelope, exactly as printed (its trailing comma makes it invalid JSON).
const SEED_ENVELOPE: &str = r#"{
    "domain": "WALLET",
    "timestamp": "2025-05-08T14:15:37Z",
    "payload": "eyJpZCI6IjAxOTYxNTNiLTY3YmMtN2NkMy1iNTExLTM1NDM3M2QyODEzMCIsICJ2YXVsdElkIjoiMDE5NjE1MmQtNTI5NC03MzlkLTk5NDUtMmE0OTlmOWUzOTg5IiwgIm9yZ2FuaXphdGlvbklkIjoiMjFjODEzMTktNWI4My00NWY5LWI2NDgtNDIwNTUwODRhZjE1IiwgInF1b3J1bUlkIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIiwgImNyZWF0ZWRCeSI6ImE1NWRmOWUwLWUxNGEtNDQxMC1hOTgzLTEyYWZhZTQ2NjYyZiIsICJjcmVhdGVkQXQiOiIyMDI1LTA0LTA4VDExOjQ4OjU2Ljg5OTA4NloiLCAidXBkYXRlZEF0IjoiMjAyNS0wNC0wOFQxMTo0ODo1Ni45MDA0OTBaIiwgIm5hbWUiOiJld3FmZXciLCAiZGVzY3JpcHRpb24iOiIiLCAiYWRkcmVzcyI6IjB4NDY0NDMyMGYzMUQ2OTU4RWQ4NjAzRWI2NjYwNDQ5NTBBYTY5NzAyZSIsICJwdWJsaWNLZXkiOiIwNDgxY2IwMmU4MjFlNTVhMmM2MTk2ZmZkZTM4MGJhM2I0OTgxN2JkYmYwMmYzMTVkYzI4YjU2ZjcwNzkyZDU2ZTZhZGFjOTE3ZTdhZGFmODdmMTBjMDg4NDA4YThjNmEwZTZkMTgwNzkzYzA1MGMzZDBjODc3MWNiOWRkZjgyNThkIiwgImtleXN0b3JlIjoiSFNNIiwgImJsb2NrY2hhaW4iOiJBUkJJVFJVTSIsICJzZXR0aW5ncyI6e30sICJzdGF0dXMiOiJQUk9WSVNJT05FRCJ9",
}"#;

const WALLET: &str = r#"{"id":"0196153b-67bc-7cd3-b511-354373d28130","vaultId":"0196152d-5294-739d-9945-2a499f9e3989","organizationId":"21c81319-5b83-45f9-b648-42055084af15","createdBy":"a55df9e0-e14a-4410-a983-12afae46662f","createdAt":"2025-04-08T11:48:56.899086Z","updatedAt":"2025-04-08T11:48:56.900490Z","name":"My Wallet","address":"0x4644320f31D6958Ed8603Eb666044950Aa69702e","keystore":"HSM","blockchain":"ARBITRUM","settings":{},"status":"PROVISIONED"}"#;
const TRANSACTION: &str = r#"{"id":"019c94f1-cc8c-79b4-9c0f-bc7edaabc267","vaultId":"0196152d-5294-739d-9945-2a499f9e3989","walletId":"0196153b-67bc-7cd3-b511-354373d28130","organizationId":"21c81319-5b83-45f9-b648-42055084af15","status":"CONFIRMED","blockchain":"ETHEREUM","hash":"0x8a4c5e9f2b1d7c3a6e8f0b2d4c6a8e0f2b4d6c8a0e2f4b6d8c0a2e4f6b8d0c2e","destination":{"address":"0x742d35Cc6634C0532925a3b844Bc9e7595f2E8Ba"},"asset":{"symbol":"ETH"},"qty":"1.500000000000000000","createdAt":"2025-05-08T14:25:00Z","updatedAt":"2025-05-08T14:30:00Z","freezeInfo":{"frozen":true}}"#;
const APPROVAL: &str = r#"{"id":"a-1","organizationId":"o-1","transactionId":"019c94f1","status":"MET","approvals":[{"approverId":"u-1","status":"APPROVED"},{"approverId":"u-2","status":"PROCESSING","note":"x"}],"createdAt":"2025-05-08T14:25:00Z","updatedAt":"2025-05-08T14:30:00+02:00","quorum":2}"#;
const EVENT: &str = r#"{"id":"0196153b-67bc-7cd3-b511-354373d28130","type":"transaction.confirmed","idempotencyKey":"4f1c…","organizationId":"21c81319-5b83-45f9-b648-42055084af15","createdAt":"2025-05-08T14:30:00Z","data":{"id":"tx-1","owner":"j***@example.com","qty":"1.5","nested":[1,2.5,null,true,{"a":"b"}]}}"#;

/// One record of a core test-vector file: `Key = Value` lines.
type Record = BTreeMap<String, String>;

fn records(path: &Path) -> Result<Vec<Record>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut all = Vec::new();
    let mut current = Record::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(" =") {
            current.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    Ok(all)
}

fn field<'a>(record: &'a Record, key: &str) -> &'a str {
    record.get(key).map_or("", String::as_str)
}

struct Corpus {
    root: PathBuf,
    written: usize,
    kept: usize,
    seen: std::collections::HashSet<(String, Vec<u8>)>,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, data: &[u8]) -> Result<(), String> {
        if !self.seen.insert((target.to_owned(), data.to_vec())) {
            return Ok(()); // the same bytes under another name
        }
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join(name);
        if path.exists() {
            self.kept += 1;
            return Ok(());
        }
        std::fs::write(&path, data).map_err(|e| format!("write {}: {e}", path.display()))?;
        self.written += 1;
        Ok(())
    }
}

fn signed(keys: &SigningKeys, id: &str, content: &[u8], domain: Option<&Domain>) -> Vec<u8> {
    let mut outgoing = Outgoing::new(id, content);
    if let Some(domain) = domain {
        outgoing = outgoing.with_domain(domain);
    }
    let at =
        time::OffsetDateTime::from_unix_timestamp(NOW).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let request = keys
        .sign(&outgoing, at)
        .unwrap_or_else(|e| panic!("seed keys sign: {e}"));
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    encode_request(NOW, &headers, &request.body)
}

fn envelope(domain: &str, timestamp: &str, payload: &str) -> Vec<u8> {
    serde_json::json!({"domain": domain, "timestamp": timestamp, "payload": payload})
        .to_string()
        .into_bytes()
}

#[allow(clippy::too_many_lines)]
fn write_seeds(corpus: &mut Corpus, vectors: &Path) -> Result<(), String> {
    // ---- event style
    for (n, record) in records(&vectors.join("event_hmac.txt"))?.iter().enumerate() {
        let body = hex::decode(field(record, "BodyHex")).map_err(|e| e.to_string())?;
        let timestamp = field(record, "Timestamp");
        let request = encode_request(
            timestamp.parse().unwrap_or(0),
            &[
                ("x-webhook-timestamp", timestamp.as_bytes()),
                ("x-webhook-signature", field(record, "Signature").as_bytes()),
            ],
            &body,
        );
        corpus.add("verify_event", &format!("vector-{n:02}"), &request)?;
    }
    let event_keys = SigningKeys::parse(webhook_core::Style::Event, [EVENT_SECRETS[2]])
        .map_err(|e| e.to_string())?;
    let good = signed(&event_keys, "", EVENT.as_bytes(), None);
    corpus.add("verify_event", "signed-event", &good)?;
    let rotation = SigningKeys::Event(vec![
        HmacSecret::from_utf8("retired-secret").map_err(|e| e.to_string())?,
        HmacSecret::from_utf8(EVENT_SECRETS[2]).map_err(|e| e.to_string())?,
    ]);
    corpus.add(
        "verify_event",
        "signed-rotation",
        &signed(&rotation, "", EVENT.as_bytes(), None),
    )?;
    let ts = NOW.to_string();
    let sig = "a".repeat(64);
    for (name, headers, body) in [
        (
            "duplicate-signature",
            vec![
                ("x-webhook-timestamp", ts.clone()),
                ("x-webhook-signature", sig.clone()),
                ("x-webhook-signature", sig.clone()),
            ],
            EVENT,
        ),
        (
            "seventeen-signatures",
            vec![
                ("x-webhook-timestamp", ts.clone()),
                ("x-webhook-signature", vec![sig.clone(); 17].join(",")),
            ],
            EVENT,
        ),
        (
            "fractional-timestamp",
            vec![
                ("x-webhook-timestamp", format!("{NOW}.5")),
                ("x-webhook-signature", sig.clone()),
            ],
            EVENT,
        ),
        (
            "negative-timestamp",
            vec![
                ("x-webhook-timestamp", "-5".to_owned()),
                ("x-webhook-signature", sig.clone()),
            ],
            EVENT,
        ),
        (
            "stale",
            vec![
                ("x-webhook-timestamp", (NOW - 301).to_string()),
                ("x-webhook-signature", sig.clone()),
            ],
            EVENT,
        ),
        (
            "empty-signature",
            vec![
                ("x-webhook-timestamp", ts.clone()),
                ("x-webhook-signature", String::new()),
            ],
            EVENT,
        ),
        ("no-headers", vec![], EVENT),
    ] {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        corpus.add(
            "verify_event",
            name,
            &encode_request(NOW, &headers, body.as_bytes()),
        )?;
    }
    corpus.add(
        "verify_event",
        "non-ascii-header",
        &encode_request(
            NOW,
            &[
                ("x-webhook-timestamp", ts.as_bytes()),
                ("x-webhook-signature", b"\xff\xfe\xfd"),
            ],
            EVENT.as_bytes(),
        ),
    )?;

    // ---- domain style
    let rfc = "2025-05-08T14:30:00Z";
    for (file, prefix) in [
        ("ecdsa_p256.txt", "vector"),
        ("ecdsa_p256_bad.txt", "bad-vector"),
    ] {
        for (n, record) in records(&vectors.join(file))?.iter().enumerate() {
            let body = envelope("WALLET", rfc, field(record, "Payload"));
            let request = encode_request(
                NOW,
                &[("signature", field(record, "Signature").as_bytes())],
                &body,
            );
            corpus.add("verify_domain", &format!("{prefix}-{n:02}"), &request)?;
            corpus.add("domain_envelope", &format!("{prefix}-{n:02}"), &body)?;
            corpus.add(
                "key_decoding",
                &format!("spki-{prefix}-{n:02}"),
                field(record, "PublicKey").as_bytes(),
            )?;
            if let Ok(der) = STANDARD.decode(field(record, "PublicKey")) {
                corpus.add("key_decoding", &format!("spki-der-{prefix}-{n:02}"), &der)?;
            }
        }
    }
    let domain_key = SigningKeys::Domain(Box::new(
        EcdsaSigningKey::from_pkcs8_base64(DOMAIN_PRIVATE_KEY).map_err(|e| e.to_string())?,
    ));
    for (name, domain, resource) in [
        ("signed-wallet", Domain::Wallet, WALLET),
        ("signed-transaction", Domain::Transaction, TRANSACTION),
        ("signed-approval", Domain::Approval, APPROVAL),
        ("signed-unknown-domain", Domain::from("PAYOUT"), APPROVAL),
    ] {
        let request = signed(&domain_key, "", resource.as_bytes(), Some(&domain));
        corpus.add("verify_domain", name, &request)?;
        let body = webhook_e2e::fuzzing::parse_request(&request).body.to_vec();
        corpus.add("domain_envelope", name, &body)?;
    }
    corpus.add(
        "domain_envelope",
        "seed-001-example",
        SEED_ENVELOPE.as_bytes(),
    )?;
    corpus.add(
        "domain_envelope",
        "offset-timestamp",
        &envelope(
            "TRANSACTION",
            "2025-05-08T16:30:00+02:00",
            &STANDARD.encode(TRANSACTION),
        ),
    )?;
    corpus.add(
        "domain_envelope",
        "unpadded-payload",
        &envelope("WALLET", rfc, STANDARD.encode(WALLET).trim_end_matches('=')),
    )?;

    // ---- Standard Webhooks
    for (file, prefix) in [("standard_v1.txt", "v1"), ("standard_v1a.txt", "v1a")] {
        for (n, record) in records(&vectors.join(file))?.iter().enumerate() {
            let body = hex::decode(field(record, "BodyHex")).map_err(|e| e.to_string())?;
            let timestamp = field(record, "Timestamp");
            let request = encode_request(
                timestamp.parse().unwrap_or(0),
                &[
                    ("webhook-id", field(record, "Id").as_bytes()),
                    ("webhook-timestamp", timestamp.as_bytes()),
                    ("webhook-signature", field(record, "Signature").as_bytes()),
                ],
                &body,
            );
            corpus.add(
                "verify_standard",
                &format!("{prefix}-vector-{n:02}"),
                &request,
            )?;
            for key in ["Secret", "SecretKey", "PublicKey"] {
                if let Some(text) = record.get(key) {
                    corpus.add(
                        "key_decoding",
                        &format!("{prefix}-{key}-{n:02}"),
                        text.as_bytes(),
                    )?;
                }
            }
        }
    }
    let standard_keys = SigningKeys::Standard(vec![
        StandardSigningKey::parse(STANDARD_KEYS[0]).map_err(|e| e.to_string())?,
        StandardSigningKey::parse(STANDARD_V1A_PRIVATE_KEY).map_err(|e| e.to_string())?,
    ]);
    corpus.add(
        "verify_standard",
        "signed-v1-and-v1a",
        &signed(
            &standard_keys,
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            EVENT.as_bytes(),
            None,
        ),
    )?;
    corpus.add(
        "verify_standard",
        "dotted-id",
        &encode_request(
            NOW,
            &[
                ("webhook-id", b"msg.1"),
                ("webhook-timestamp", NOW.to_string().as_bytes()),
                ("webhook-signature", b"v1,AAAA v2,BBBB v1a,CCCC"),
            ],
            b"{}",
        ),
    )?;

    // ---- JSON
    corpus.add("event_json", "seed-event", EVENT.as_bytes())?;
    corpus.add(
        "event_json",
        "unknown-type",
        br#"{"id":"e","type":"payout.sent","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00-07:00","data":null}"#,
    )?;
    for (name, json) in [
        ("wallet", WALLET),
        ("transaction", TRANSACTION),
        ("approval", APPROVAL),
    ] {
        corpus.add("resource_json", name, json.as_bytes())?;
    }
    corpus.add(
        "resource_json",
        "qty-as-number",
        br#"{"id":"t","status":"SIGNED","qty":1.5,"createdAt":"2025-05-08T14:25:00Z","updatedAt":"2025-05-08T14:25:00Z"}"#,
    )?;

    // ---- keys
    corpus.add(
        "key_decoding",
        "pkcs8-domain",
        DOMAIN_PRIVATE_KEY.as_bytes(),
    )?;
    corpus.add(
        "key_decoding",
        "pkcs8-der-domain",
        &STANDARD
            .decode(DOMAIN_PRIVATE_KEY)
            .map_err(|e| e.to_string())?,
    )?;
    corpus.add(
        "key_decoding",
        "spki-domain-2",
        DOMAIN_PUBLIC_KEYS[1].as_bytes(),
    )?;
    corpus.add(
        "key_decoding",
        "whsec-with-spaces",
        b"  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \n",
    )?;
    corpus.add("key_decoding", "secret-list", b"s1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whpk_Z319tI71AscPunzjlO2aqwHcByShxUy1zs4i5oEXYdM=")?;

    // ---- timestamps and Retry-After
    for (name, text) in [
        ("plain", "1700000000"),
        ("zero", "0"),
        ("leading-zeros", "000001700000000"),
        ("negative", "-1"),
        ("fraction", "1.5"),
        ("thirteen-digits", "1746714600000"),
        ("arabic-indic", "\u{661}\u{662}"),
    ] {
        corpus.add("unix_timestamp", name, text.as_bytes())?;
    }
    for (name, text) in [
        ("seconds", "120".to_owned()),
        ("padded", " 0 ".to_owned()),
        ("imf-fixdate", "Wed, 21 Oct 2015 07:29:00 GMT".to_owned()),
        ("rfc850", "Wednesday, 21-Oct-15 07:28:00 GMT".to_owned()),
        ("asctime", "Wed Oct 21 07:28:00 2015".to_owned()),
        ("huge", "99999999999999999999999".to_owned()),
        ("words", "soon".to_owned()),
        (
            "policy-domain",
            serde_json::to_string(&RetryPolicy::domain_default()).map_err(|e| e.to_string())?,
        ),
        (
            "policy-event",
            serde_json::to_string(&RetryPolicy::event_default()).map_err(|e| e.to_string())?,
        ),
    ] {
        corpus.add("retry_after", name, text.as_bytes())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::env::args_os()
        .nth(1)
        .map_or_else(|| root.join("fuzz/corpus"), PathBuf::from);
    let mut corpus = Corpus {
        root: output,
        written: 0,
        kept: 0,
        seen: std::collections::HashSet::new(),
    };
    match write_seeds(&mut corpus, &root.join("crates/webhook-core/tests/data")) {
        Ok(()) => {
            println!(
                "fuzz_seeds: {} seeds written, {} already there, in {}",
                corpus.written,
                corpus.kept,
                corpus.root.display()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("fuzz_seeds: {message}");
            ExitCode::from(2)
        }
    }
}
