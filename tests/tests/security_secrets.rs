//! No secret in any log line, `Debug` output or error text.
//!
//! A tracing subscriber at TRACE level (span fields included) captures everything the sender
//! and the receiver log while they publish, sign, deliver, accept, reject, rotate and fail
//! with known secrets of every kind: an event-style organization secret, a `whsec_` secret,
//! an Ed25519 `whsk_` key, an ECDSA P-256 private key and a credential in a custom header.
//! The capture, and the `Debug` and `Display` texts of every type that holds or touches a
//! secret, are searched for each secret's raw bytes and its hex and base64 forms.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardVerifyingKey;
use webhook_core::{Outgoing, SigningKeys, Style, TrustedKeys};
use webhook_e2e::receiver::CountingReceiver;
use webhook_e2e::sender::{loopback_sender, wait_finished};
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::{DeliveryStatus, EndpointConfig, Publish, RetryPolicy, Secret, Sender};

const ORGANIZATION: &str = "org-secrets";
const ORGANIZATION_SECRET: &str = "org-secret-7f3a9c1e5b2d4086";
const ROTATED_SECRET: &str = "rotated-secret-0b8e2f6a9d1c";
const HEADER_CREDENTIAL: &str = "tok_live_51Hq8SecretCredential";

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A secret and the forms it could leak in.
struct Known {
    name: &'static str,
    forms: Vec<Vec<u8>>,
}

impl Known {
    fn new(name: &'static str, secret: &[u8]) -> Self {
        let mut forms = vec![
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
        ];
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(secret).into_bytes());
        }
        Self { name, forms }
    }

    /// The first form of the secret that `text` contains.
    fn find(&self, text: &[u8]) -> Option<String> {
        self.forms
            .iter()
            .find(|form| text.windows(form.len()).any(|w| w == form.as_slice()))
            .map(|form| String::from_utf8_lossy(form).into_owned())
    }

    /// Panics when `text` contains any form of the secret.
    fn assert_absent(&self, where_: &str, text: &[u8]) {
        if let Some(form) = self.find(text) {
            panic!("{} leaked into {where_}: {form:?}", self.name);
        }
    }
}

/// The 32-byte private scalar inside a P-256 PKCS#8 document (after `02 01 01 04 20`).
fn ecdsa_scalar(pkcs8: &[u8]) -> Vec<u8> {
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap()
        + marker.len();
    pkcs8[at..at + 32].to_vec()
}

/// Sends raw bytes to `addr` and returns the whole answer (requests say `Connection: close`).
async fn send_raw(addr: std::net::SocketAddr, request: Vec<u8>) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    answer
}

fn raw_request(headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".to_vec();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn no_secret_reaches_logs_debug_output_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let whsec = HmacSecret::generate().unwrap();
    let ed25519 = Ed25519SigningKey::generate().unwrap();
    let (ecdsa, pkcs8) = EcdsaSigningKey::generate().unwrap();
    let known = [
        Known::new("the organization secret", ORGANIZATION_SECRET.as_bytes()),
        Known::new("the rotated secret", ROTATED_SECRET.as_bytes()),
        Known::new("the whsec_ secret", whsec.expose_bytes()),
        Known::new("the whsec_ text", whsec.to_whsec().as_bytes()),
        Known::new("the Ed25519 whsk_ text", ed25519.to_whsk().as_bytes()),
        Known::new("the ECDSA PKCS#8 document", &pkcs8),
        Known::new("the ECDSA private scalar", &ecdsa_scalar(&pkcs8)),
        Known::new("the header credential", HEADER_CREDENTIAL.as_bytes()),
    ];
    let ed25519_seed = STANDARD
        .decode(ed25519.to_whsk().trim_start_matches("whsk_"))
        .unwrap();
    let known_seed = Known::new("the Ed25519 seed", &ed25519_seed);
    let mut texts: Vec<(String, String)> = Vec::new();

    // Receivers: one per style with the right keys, one with a wrong secret (rejects all).
    let event_rx = CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([ORGANIZATION_SECRET, ROTATED_SECRET]).unwrap()),
        |w| w.dedup_key().to_owned(),
    )
    .await;
    let wrong_rx = CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets(["not-the-secret"]).unwrap()),
        |w| w.dedup_key().to_owned(),
    )
    .await;
    let standard_rx = CountingReceiver::start(
        WebhookLayer::new(Verifier::standard([
            StandardVerifyingKey::Symmetric(whsec.clone()),
            StandardVerifyingKey::Asymmetric(ed25519.public_key()),
        ])),
        |w| w.dedup_key().to_owned(),
    )
    .await;
    let domain_rx = CountingReceiver::start(
        WebhookLayer::new(Verifier::domain([ecdsa.public_key()])),
        |w| w.dedup_key().to_owned(),
    )
    .await;

    let sender = loopback_sender(ORGANIZATION, ORGANIZATION_SECRET, |builder| builder).await;
    let organizations = sender.organizations();
    let quick = RetryPolicy::schedule([Duration::ZERO, Duration::from_millis(20)]);
    let endpoints = [
        EndpointConfig::event(ORGANIZATION, event_rx.url(), [EventType::WalletCreated])
            .header("Authorization", format!("Bearer {HEADER_CREDENTIAL}")),
        EndpointConfig::event(ORGANIZATION, wrong_rx.url(), [EventType::WalletCreated])
            .retry(quick.clone()),
        EndpointConfig::standard(
            ORGANIZATION,
            standard_rx.url(),
            whsec.clone(),
            [EventType::WalletCreated],
        ),
        EndpointConfig::standard(
            ORGANIZATION,
            standard_rx.url(),
            ed25519.clone(),
            [EventType::WalletCreated],
        ),
        EndpointConfig::domain(
            ORGANIZATION,
            domain_rx.url(),
            ecdsa.clone(),
            [Domain::Wallet],
        ),
    ];
    let mut endpoint_ids = Vec::new();
    for config in endpoints {
        texts.push(("EndpointConfig Debug".into(), format!("{config:?}")));
        endpoint_ids.push(sender.endpoints().create(config).await.unwrap());
    }

    // Publish, deliver, accept and reject; rotate; publish again; a replay and forgeries.
    let mut ids = Vec::new();
    for round in 0..2 {
        let receipt = sender
            .publish(Publish::event(
                ORGANIZATION,
                EventType::WalletCreated,
                format!("w-{round}"),
                json!({"id": format!("w-{round}"), "owner": "jane@example.com"}),
            ))
            .await
            .unwrap();
        ids.extend(receipt.deliveries.iter().map(|d| d.id));
        let receipt = sender
            .publish(Publish::domain(
                ORGANIZATION,
                Domain::Wallet,
                json!({"id": format!("w-{round}"), "status": "PROVISIONED",
                       "createdAt": "2025-04-08T11:48:56Z", "updatedAt": recent(round)}),
            ))
            .await
            .unwrap();
        ids.extend(receipt.deliveries.iter().map(|d| d.id));
        if round == 0 {
            organizations
                .rotate_secret(
                    ORGANIZATION,
                    HmacSecret::from_utf8(ROTATED_SECRET).unwrap(),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            sender
                .endpoints()
                .rotate_secret(
                    &ORGANIZATION.into(),
                    endpoint_ids[2],
                    HmacSecret::generate().unwrap(),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
        }
    }
    let deliveries =
        wait_finished(&sender, &ORGANIZATION.into(), &ids, Duration::from_secs(20)).await;
    let delivered = deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivered)
        .count();
    let failed = deliveries.len() - delivered;
    assert_eq!(failed, 2, "the wrong-secret receiver refused both events");
    assert_eq!(delivered, 8);
    for delivery in &deliveries {
        texts.push(("Delivery Debug".into(), format!("{delivery:?}")));
    }
    for id in &endpoint_ids {
        texts.push((
            "EndpointInfo Debug".into(),
            format!("{:?}", sender.endpoints().get(&ORGANIZATION.into(), *id)),
        ));
    }

    // Forged and tampered requests straight at the receivers: signed with the real secret
    // over another body, stale, with the secret itself as the "signature".
    let signer = SigningKeys::Event(vec![HmacSecret::from_utf8(ORGANIZATION_SECRET).unwrap()]);
    let body = br#"{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;
    let now = time::OffsetDateTime::now_utc();
    let signed = signer.sign(&Outgoing::new("e1", body), now).unwrap();
    let header = |name: &str| {
        signed
            .headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .unwrap()
    };
    let timestamp = header("x-webhook-timestamp");
    let signature = header("x-webhook-signature");
    let forgeries = [
        raw_request(
            &[
                ("X-Webhook-Timestamp", timestamp.clone()),
                ("X-Webhook-Signature", signature.clone()),
            ],
            &body[..body.len() - 2],
        ),
        raw_request(
            &[
                (
                    "X-Webhook-Timestamp",
                    (now.unix_timestamp() - 3600).to_string(),
                ),
                ("X-Webhook-Signature", signature.clone()),
            ],
            body,
        ),
        raw_request(
            &[
                ("X-Webhook-Timestamp", timestamp.clone()),
                ("X-Webhook-Signature", hex::encode(ORGANIZATION_SECRET)),
            ],
            body,
        ),
        raw_request(
            &[
                ("X-Webhook-Timestamp", timestamp.clone()),
                ("X-Webhook-Signature", ORGANIZATION_SECRET.to_owned()),
            ],
            body,
        ),
    ];
    for (n, forgery) in forgeries.into_iter().enumerate() {
        let answer = send_raw(event_rx.addr(), forgery).await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 401"),
            "forgery {n} was not refused: {text}"
        );
        // The answer may quote nothing of the request (the last two forgeries carry the
        // secret themselves, so their answers are checked only for the fixed texts).
        assert!(
            !text.contains(&signature),
            "forgery {n}: answer quotes a signature"
        );
        if n < 2 {
            texts.push((format!("answer to forgery {n}"), text));
        }
    }
    assert_eq!(event_rx.tally().rejected(), 4);

    // Errors that come near secrets: bad keys, bad configurations, failed verifications.
    let bad_whsec = format!("whsec_{}!", STANDARD.encode(whsec.expose_bytes()));
    texts.push((
        "KeyError".into(),
        HmacSecret::from_whsec(&bad_whsec).unwrap_err().to_string(),
    ));
    let bad_pkcs8 = format!("{}A", STANDARD.encode(&pkcs8));
    texts.push((
        "KeyError".into(),
        EcdsaSigningKey::from_pkcs8_base64(&bad_pkcs8)
            .unwrap_err()
            .to_string(),
    ));
    texts.push((
        "KeyError".into(),
        TrustedKeys::parse(Style::Domain, [STANDARD.encode(&pkcs8)])
            .unwrap_err()
            .to_string(),
    ));
    let config_error = sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, event_rx.url(), [EventType::WalletCreated])
                .header("Authorization", format!("Bearer {HEADER_CREDENTIAL}\n")),
        )
        .await
        .unwrap_err();
    texts.push((
        "sender Error".into(),
        format!("{config_error} / {config_error:?}"),
    ));
    let style_error = sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, event_rx.url(), [EventType::WalletCreated])
                .secret(ecdsa.clone()),
        )
        .await
        .unwrap_err();
    texts.push((
        "sender Error".into(),
        format!("{style_error} / {style_error:?}"),
    ));
    let verify_error = signer
        .trusted_keys()
        .verify(
            &http::HeaderMap::new(),
            body,
            now.unix_timestamp(),
            Duration::from_secs(300),
        )
        .unwrap_err();
    texts.push((
        "VerifyError".into(),
        format!("{verify_error} / {verify_error:?}"),
    ));

    // Debug of everything that holds a secret.
    let secret: Secret = ed25519.clone().into();
    for (what, text) in [
        ("Sender", format!("{sender:?}")),
        ("Secret", format!("{secret:?}")),
        ("SigningKeys", format!("{signer:?}")),
        ("TrustedKeys", format!("{:?}", signer.trusted_keys())),
        ("HmacSecret", format!("{whsec:?}")),
        ("EcdsaSigningKey", format!("{ecdsa:?}")),
        ("Ed25519SigningKey", format!("{ed25519:?}")),
        (
            "Verifier",
            format!(
                "{:?}",
                Verifier::event_secrets([ORGANIZATION_SECRET]).unwrap()
            ),
        ),
        (
            "WebhookLayer",
            format!(
                "{:?}",
                WebhookLayer::new(Verifier::event_secrets([ORGANIZATION_SECRET]).unwrap())
            ),
        ),
        ("Builder", format!("{:?}", Sender::builder())),
    ] {
        texts.push((format!("{what} Debug"), text));
    }
    sender.shutdown().await.unwrap();

    // The search (which finds every form when it is planted in a text).
    for secret in known.iter().chain([&known_seed]) {
        for form in &secret.forms {
            let planted = [b"field=".as_slice(), form, b" end"].concat();
            assert!(secret.find(&planted).is_some(), "{}", secret.name);
        }
    }
    let log = capture.0.lock().unwrap().clone();
    let log_text = String::from_utf8_lossy(&log);
    for (what, text) in &texts {
        for secret in known.iter().chain([&known_seed]) {
            secret.assert_absent(what, text.as_bytes());
        }
    }
    for secret in known.iter().chain([&known_seed]) {
        secret.assert_absent("the TRACE log", &log);
    }
    // The capture really saw the paths above.
    for expected in [
        "published",
        "attempt finished",
        "webhook accepted",
        "webhook rejected",
        "no_matching_signature",
        "timestamp_out_of_window",
        "webhook.attempt",
    ] {
        assert!(log_text.contains(expected), "the log lacks {expected:?}");
    }
    println!(
        "secrets test: {} log bytes ({} lines) and {} Debug/error texts searched for {} secrets \
         in 7 forms each",
        log.len(),
        log_text.lines().count(),
        texts.len(),
        known.len() + 1
    );
}

/// An `updatedAt` of a few seconds ago, distinct per round (receivers refuse resources
/// older than their maximum age).
fn recent(round: usize) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let at = time::OffsetDateTime::now_utc()
        - time::Duration::seconds(60 - i64::try_from(round).unwrap_or(0));
    at.format(&format).expect("a UTC time formats")
}
