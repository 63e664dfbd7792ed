//! The bad-request table: more than 40 malformed, forged, stale, oversized or replayed
//! requests against real hyper servers (one per style), each answered with the right
//! status and a short JSON body that leaks nothing, never reaching the handler; the
//! servers keep serving good requests afterwards.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    EVENT_SECRET, Fixture, NOW, RawRequest, Recorder, TestServer, event_body, recording_handler,
    send, standard_body, wallet_json,
};
use tower::Layer as _;
use webhook_receiver::WebhookLayer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Event,
    Domain,
    Standard,
}

struct Case {
    name: &'static str,
    target: Target,
    request: RawRequest,
    status: u16,
    /// The JSON `error` code, or `None` when the HTTP server itself answers.
    code: Option<&'static str>,
}

fn case(
    name: &'static str,
    target: Target,
    request: RawRequest,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case {
        name,
        target,
        request,
        status,
        code,
    }
}

fn json_headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("Content-Type".to_owned(), b"application/json".to_vec())];
    headers.extend(
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
    );
    headers
}

/// An event-style request with a hand-made timestamp and signature.
fn event_manual(timestamp: &str, signature: &str, body: &[u8]) -> RawRequest {
    RawRequest::post(
        json_headers(&[
            ("X-Webhook-Timestamp", timestamp),
            ("X-Webhook-Signature", signature),
        ]),
        body,
    )
}

fn envelope(domain: &str, timestamp: &str, payload: &str) -> Vec<u8> {
    serde_json::json!({ "domain": domain, "timestamp": timestamp, "payload": payload })
        .to_string()
        .into_bytes()
}

fn domain_manual(signature: &str, body: &[u8]) -> RawRequest {
    RawRequest::post(json_headers(&[("Signature", signature)]), body)
}

fn standard_manual(id: &str, timestamp: &str, signature: &str, body: &[u8]) -> RawRequest {
    RawRequest::post(
        json_headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ]),
        body,
    )
}

#[allow(clippy::too_many_lines)]
fn table(
    event: &Fixture,
    domain: &Fixture,
    standard: &Fixture,
    captured: &RawRequest,
) -> Vec<Case> {
    use Target::{Domain, Event, Standard};
    let ts = NOW.to_string();

    // ---- event style
    let body = event_body("table-event");
    let good = event.signed("", &body);
    let signed_with = |secret: &[u8], message: &[u8]| hex::encode(common::hmac(secret, message));
    let message = |ts: &str, body: &[u8]| [ts.as_bytes(), b".", body].concat();
    let sign_event = |ts: &str, body: &[u8]| signed_with(&event.secret, &message(ts, body));
    let sig = sign_event(&ts, &body);

    let non_utf8 = b"\xff\xfe\x00{\"id\":\x80}".to_vec();
    let truncated_json = body[..body.len() / 2].to_vec();
    let no_key = br#"{"id":"e","type":"wallet.created","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#.to_vec();
    let mut tampered = body.clone();
    let last = tampered.len() - 3;
    tampered[last] = b'X';
    let too_large = event_body(&"x".repeat(5000));
    let seventeen = vec![sig.clone(); 17].join(",");

    let mut cases = vec![
        case(
            "GET",
            Event,
            good.clone().method("GET").body(Vec::new()),
            405,
            Some("method_not_allowed"),
        ),
        case(
            "PUT",
            Event,
            good.clone().method("PUT"),
            405,
            Some("method_not_allowed"),
        ),
        case(
            "DELETE",
            Event,
            good.clone().method("DELETE"),
            405,
            Some("method_not_allowed"),
        ),
        case(
            "PATCH",
            Event,
            good.clone().method("PATCH"),
            405,
            Some("method_not_allowed"),
        ),
        case(
            "missing timestamp header",
            Event,
            good.clone().without("x-webhook-timestamp"),
            400,
            Some("missing_header"),
        ),
        case(
            "missing signature header",
            Event,
            good.clone().without("x-webhook-signature"),
            401,
            Some("missing_signature"),
        ),
        case(
            "empty signature header",
            Event,
            good.clone().replace("x-webhook-signature", ""),
            401,
            Some("missing_signature"),
        ),
        case(
            "timestamp not a number",
            Event,
            event_manual("abc", &sign_event("abc", &body), &body),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "negative timestamp",
            Event,
            event_manual("-5", &sign_event("-5", &body), &body),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "timestamp of 13 digits",
            Event,
            event_manual("1746714600000", &sign_event("1746714600000", &body), &body),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "fractional timestamp",
            Event,
            event_manual("1746714600.5", &sign_event("1746714600.5", &body), &body),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "timestamp 301 s old",
            Event,
            event.signed_at("", &body, NOW - 301),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "timestamp 301 s ahead",
            Event,
            event.signed_at("", &body, NOW + 301),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "timestamp ten years ahead",
            Event,
            event.signed_at("", &body, NOW + 10 * 365 * 86_400),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "timestamp at the epoch",
            Event,
            event_manual("0", &sign_event("0", &body), &body),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "signed with an unknown secret",
            Event,
            event_manual(
                &ts,
                &signed_with(b"someone-else", &message(&ts, &body)),
                &body,
            ),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "signature one hex digit short",
            Event,
            event_manual(&ts, &sig[..63], &body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "signature one byte long",
            Event,
            event_manual(&ts, &format!("{sig}00"), &body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "signature of the right length, not hex",
            Event,
            event_manual(&ts, &"zz".repeat(32), &body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "signature in base64 garbage",
            Event,
            event_manual(&ts, "!!!$$$===/+", &body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "seventeen signatures",
            Event,
            event_manual(&ts, &seventeen, &body),
            400,
            Some("malformed_header"),
        ),
        case(
            "duplicate signature headers",
            Event,
            good.clone().header("X-Webhook-Signature", sig.clone()),
            400,
            Some("duplicate_header"),
        ),
        case(
            "duplicate timestamp headers",
            Event,
            good.clone().header("X-Webhook-Timestamp", ts.clone()),
            400,
            Some("duplicate_header"),
        ),
        case(
            "tampered body",
            Event,
            event_manual(&ts, &sig, &tampered),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "signature for another timestamp",
            Event,
            event_manual(&(NOW - 1).to_string(), &sig, &body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "non-UTF-8 body, signed",
            Event,
            event_manual(&ts, &sign_event(&ts, &non_utf8), &non_utf8),
            400,
            Some("malformed_body"),
        ),
        case(
            "truncated JSON, signed",
            Event,
            event_manual(&ts, &sign_event(&ts, &truncated_json), &truncated_json),
            400,
            Some("malformed_body"),
        ),
        case(
            "truncated body, original signature",
            Event,
            event_manual(&ts, &sig, &truncated_json),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "event without idempotencyKey, signed",
            Event,
            event_manual(&ts, &sign_event(&ts, &no_key), &no_key),
            400,
            Some("malformed_body"),
        ),
        case(
            "empty body, signed",
            Event,
            event_manual(&ts, &sign_event(&ts, b""), b""),
            400,
            Some("malformed_body"),
        ),
        case(
            "body over the limit",
            Event,
            event_manual(&ts, &sign_event(&ts, &too_large), &too_large),
            413,
            Some("payload_too_large"),
        ),
        case(
            "declared length over the limit, no body",
            Event,
            good.clone().body(Vec::new()).content_length("99999999"),
            413,
            Some("payload_too_large"),
        ),
        case(
            "chunked body over the limit",
            Event,
            event_manual(&ts, &sign_event(&ts, &too_large), &too_large).chunked(),
            413,
            Some("payload_too_large"),
        ),
        case(
            "content-length not a number",
            Event,
            good.clone().content_length("abc"),
            400,
            None,
        ),
        case(
            "huge header beyond the server's limit",
            Event,
            good.clone().header("X-Filler", "a".repeat(600 * 1024)),
            431,
            None,
        ),
        case(
            "too many headers",
            Event,
            (0..150).fold(good.clone(), |r, i| r.header(&format!("X-Extra-{i}"), "1")),
            431,
            None,
        ),
        case(
            "large signature header (48 KiB)",
            Event,
            good.clone()
                .replace("x-webhook-signature", "a".repeat(48 * 1024)),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "large timestamp header (16 KiB)",
            Event,
            good.clone()
                .replace("x-webhook-timestamp", "1".repeat(16 * 1024)),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "non-ASCII bytes in the signature header",
            Event,
            good.clone()
                .replace("x-webhook-signature", b"\xff\xfe\xfd".to_vec()),
            400,
            Some("malformed_header"),
        ),
        case(
            "replay of a captured, handled request",
            Event,
            captured.clone(),
            200,
            None,
        ),
        case(
            "replay of a request captured 10 minutes ago",
            Event,
            event.signed_at("", &event_body("old-capture"), NOW - 600),
            401,
            Some("timestamp_out_of_window"),
        ),
    ];

    // ---- domain style
    let resource = wallet_json("w-table", "2025-05-08T14:29:00Z");
    let payload = STANDARD.encode(&resource);
    let rfc = "2025-05-08T14:30:00Z";
    let good_domain = domain.signed("", &resource);
    let good_sig = domain.ecdsa_base64(payload.as_bytes());
    let signed_envelope = |timestamp: &str, payload: &str| {
        domain_manual(
            &domain.ecdsa_base64(payload.as_bytes()),
            &envelope("WALLET", timestamp, payload),
        )
    };
    let other = Fixture::domain();
    let no_updated =
        STANDARD.encode(br#"{"id":"w","status":"CREATED","createdAt":"2025-04-08T11:48:56Z"}"#);
    cases.extend([
        case(
            "domain: missing Signature",
            Domain,
            good_domain.clone().without("signature"),
            401,
            Some("missing_signature"),
        ),
        case(
            "domain: Signature in base64 garbage",
            Domain,
            good_domain.clone().replace("Signature", "%%%not-base64%%%"),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "domain: Signature of the wrong length",
            Domain,
            good_domain
                .clone()
                .replace("Signature", STANDARD.encode([7u8; 10])),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "domain: Signature far too long",
            Domain,
            good_domain.clone().replace("Signature", "A".repeat(200)),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "domain: signed by an unknown key",
            Domain,
            domain_manual(
                &other.ecdsa_base64(payload.as_bytes()),
                &envelope("WALLET", rfc, &payload),
            ),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "domain: duplicate Signature headers",
            Domain,
            good_domain.clone().header("Signature", good_sig.clone()),
            400,
            Some("duplicate_header"),
        ),
        case(
            "domain: timestamp not RFC 3339",
            Domain,
            signed_envelope("yesterday", &payload),
            400,
            Some("malformed_timestamp"),
        ),
        case(
            "domain: timestamp 10 minutes old",
            Domain,
            signed_envelope("2025-05-08T14:20:00Z", &payload),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "domain: timestamp in 2035",
            Domain,
            signed_envelope("2035-05-08T14:30:00Z", &payload),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "domain: body not JSON",
            Domain,
            domain_manual(&good_sig, b"domain=WALLET"),
            400,
            Some("malformed_body"),
        ),
        case(
            "domain: envelope without payload",
            Domain,
            domain_manual(
                &good_sig,
                br#"{"domain":"WALLET","timestamp":"2025-05-08T14:30:00Z"}"#,
            ),
            400,
            Some("malformed_body"),
        ),
        case(
            "domain: payload not base64, signed",
            Domain,
            signed_envelope(rfc, "!!not*base64!!"),
            400,
            Some("malformed_body"),
        ),
        case(
            "domain: resource without updatedAt, signed",
            Domain,
            signed_envelope(rfc, &no_updated),
            400,
            Some("malformed_body"),
        ),
        case(
            "domain: payload swapped under a valid signature",
            Domain,
            domain_manual(
                &good_sig,
                &envelope(
                    "WALLET",
                    rfc,
                    &STANDARD.encode(wallet_json("w-evil", "2025-05-08T14:29:00Z")),
                ),
            ),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "domain: non-UTF-8 body",
            Domain,
            domain_manual(&good_sig, b"\xc3\x28\xa0\xa1"),
            400,
            Some("malformed_body"),
        ),
    ]);

    // ---- Standard Webhooks
    let std_body = standard_body(1);
    let std_good = standard.signed("msg_table", &std_body);
    let v1_with = |secret: &[u8], id: &str, ts: &str, body: &[u8]| {
        let message = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
        format!("v1,{}", STANDARD.encode(common::hmac(secret, &message)))
    };
    let v1 = |id: &str, ts: &str, body: &[u8]| v1_with(&standard.secret, id, ts, body);
    let valid = v1("msg_table", &ts, &std_body);
    let seventeen_std = vec![valid.clone(); 17].join(" ");
    let wrong_secret = v1_with(b"another-secret-of-24-bytes!!", "msg_table", &ts, &std_body);
    cases.extend([
        case(
            "standard: missing webhook-id",
            Standard,
            std_good.clone().without("webhook-id"),
            400,
            Some("missing_header"),
        ),
        case(
            "standard: webhook-id with a dot",
            Standard,
            standard_manual("msg.1", &ts, &v1("msg.1", &ts, &std_body), &std_body),
            400,
            Some("malformed_header"),
        ),
        case(
            "standard: missing webhook-timestamp",
            Standard,
            std_good.clone().without("webhook-timestamp"),
            400,
            Some("missing_header"),
        ),
        case(
            "standard: missing webhook-signature",
            Standard,
            std_good.clone().without("webhook-signature"),
            401,
            Some("missing_signature"),
        ),
        case(
            "standard: v1 of the wrong length",
            Standard,
            standard_manual(
                "msg_table",
                &ts,
                &format!("v1,{}", STANDARD.encode([1u8; 16])),
                &std_body,
            ),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: v1 with base64 garbage",
            Standard,
            standard_manual("msg_table", &ts, "v1,@@@###", &std_body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: only unknown versions",
            Standard,
            standard_manual(
                "msg_table",
                &ts,
                &valid.replacen("v1,", "v2,", 1),
                &std_body,
            ),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: entry without a comma",
            Standard,
            standard_manual("msg_table", &ts, &valid.replacen("v1,", "v1", 1), &std_body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: signed with an unknown secret",
            Standard,
            standard_manual("msg_table", &ts, &wrong_secret, &std_body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: signature for another id",
            Standard,
            standard_manual("msg_other", &ts, &valid, &std_body),
            401,
            Some("no_matching_signature"),
        ),
        case(
            "standard: timestamp a day ahead",
            Standard,
            standard.signed_at("msg_table", &std_body, NOW + 86_400),
            401,
            Some("timestamp_out_of_window"),
        ),
        case(
            "standard: body not JSON, signed",
            Standard,
            standard_manual(
                "msg_table",
                &ts,
                &v1("msg_table", &ts, b"not json"),
                b"not json",
            ),
            400,
            Some("malformed_body"),
        ),
        case(
            "standard: seventeen entries",
            Standard,
            standard_manual("msg_table", &ts, &seventeen_std, &std_body),
            400,
            Some("malformed_header"),
        ),
        case(
            "standard: duplicate webhook-id",
            Standard,
            std_good.clone().header("webhook-id", "msg_table"),
            400,
            Some("duplicate_header"),
        ),
    ]);
    cases
}

#[tokio::test]
async fn every_bad_request_gets_the_right_status_and_the_servers_keep_serving() {
    let event = Fixture::event();
    let domain = Fixture::domain();
    let standard = Fixture::standard();
    let recorders = [Recorder::new(), Recorder::new(), Recorder::new()];
    let serve = |fixture: &Fixture, recorder: &Arc<Recorder>| {
        TestServer::start(
            WebhookLayer::new(fixture.verifier.clone())
                .layer(recording_handler(Arc::clone(recorder))),
        )
    };
    let servers = [
        serve(&event, &recorders[0]).await,
        serve(&domain, &recorders[1]).await,
        serve(&standard, &recorders[2]).await,
    ];

    // A request that an attacker captured after it was handled.
    let captured = event.signed("", &event_body("captured"));
    let first = send(servers[0].addr, &captured).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(recorders[0].calls(), 1);

    let cases = table(&event, &domain, &standard, &captured);
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let index = case.target as usize;
        let response = send(servers[index].addr, &case.request).await;
        let mut problems = Vec::new();
        if response.status != case.status {
            problems.push(format!("status {} != {}", response.status, case.status));
        }
        if let Some(code) = case.code {
            let body: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
            if body["error"] != code {
                problems.push(format!("error {:?} != {code:?}", body["error"]));
            }
            if body["message"].as_str().is_none_or(str::is_empty) {
                problems.push("no message".to_owned());
            }
            if response.header("content-type") != Some("application/json") {
                problems.push("content-type is not JSON".to_owned());
            }
        }
        // Nothing secret or request-specific is echoed back.
        let echoed = case.request.headers.iter().any(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            (lower.contains("signature") && value.len() >= 8)
                && response
                    .body
                    .as_bytes()
                    .windows(value.len())
                    .any(|w| w == value.as_slice())
        });
        if echoed || response.body.contains(EVENT_SECRET) {
            problems.push("response echoes a signature or the secret".to_owned());
        }
        if case.status == 405 && response.header("allow") != Some("POST") {
            problems.push("405 without Allow: POST".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} ({:?})",
                case.name,
                problems.join("; "),
                response.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // No bad request reached a handler; the replay was acknowledged as a duplicate.
    assert_eq!(recorders[0].calls(), 1, "event handler calls");
    assert_eq!(recorders[1].calls(), 0, "domain handler calls");
    assert_eq!(recorders[2].calls(), 0, "standard handler calls");
    let replay = send(servers[0].addr, &captured).await;
    assert_eq!(replay.json()["status"], "duplicate");

    // Once the window has passed, the captured request is stale, not a duplicate.
    event.clock.advance(Duration::from_secs(301));
    let stale = send(servers[0].addr, &captured).await;
    assert_eq!(
        (stale.status, stale.json()["error"].clone()),
        (401, "timestamp_out_of_window".into())
    );
    event.clock.set_unix(NOW);

    // Every server still serves good requests.
    let good = [
        send(
            servers[0].addr,
            &event.signed("", &event_body("after-the-table")),
        )
        .await,
        send(
            servers[1].addr,
            &domain.signed("", &wallet_json("w-after", "2025-05-08T14:29:30Z")),
        )
        .await,
        send(
            servers[2].addr,
            &standard.signed("msg_after", &standard_body(2)),
        )
        .await,
    ];
    for response in &good {
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "handled"),
            "{response:?}"
        );
    }
    assert_eq!(recorders[0].keys(), ["captured", "after-the-table"]);
    assert_eq!(recorders[1].keys(), ["w-after@2025-05-08T14:29:30Z"]);
    assert_eq!(recorders[2].keys(), ["msg_after"]);
}

/// A body cut short by the client (declared longer than sent, then the connection half
/// closed) is a 400, and the server stays up.
#[tokio::test]
async fn a_body_cut_short_is_a_bad_request() {
    let event = Fixture::event();
    let recorder = Recorder::new();
    let server = TestServer::start(
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Arc::clone(&recorder))),
    )
    .await;
    let body = event_body("cut-short");
    let request = event
        .signed("", &body)
        .body(body[..20].to_vec())
        .content_length(&body.len().to_string());
    let response = common::send_bytes(server.addr, request.to_bytes(), true).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(response.json()["error"], "body_unreadable");
    assert_eq!(recorder.calls(), 0);

    let ok = send(server.addr, &event.signed("", &body)).await;
    assert_eq!(ok.status, 200);
    assert_eq!(recorder.calls(), 1);
}
