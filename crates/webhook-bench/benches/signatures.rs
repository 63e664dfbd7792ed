//! Sign and verify for each scheme, next to the raw ring primitive on the same bytes, and
//! Standard Webhooks verification next to the `svix` and `standardwebhooks` crates.
//!
//! `authenticate` is the signature check (headers, window, signature); `verify` adds
//! decoding the body into typed JSON. The raw primitive is what any implementation must
//! do at least: for HMAC, compute the tag over `{timestamp}.{body}` and compare; for the
//! asymmetric schemes, one ring verification over the signed bytes.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use http::HeaderMap;
use ring::{hmac, signature};
use webhook_core::domain::Domain;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SignedRequest, SigningKeys, TrustedKeys};

const SIZES: [usize; 4] = [256, 1024, 16 * 1024, 256 * 1024];
const TOLERANCE: Duration = Duration::from_secs(300);
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An event-shaped JSON body of exactly `size` bytes.
fn event_body(size: usize) -> Vec<u8> {
    let head = r#"{"id":"0196153b-67bc-7cd3-b511-354373d28130","type":"transaction.confirmed","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{"note":""#;
    let tail = r#""}}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// A resource JSON whose envelope body is about `size` bytes.
fn resource_body(size: usize) -> Vec<u8> {
    let head = r#"{"id":"w1","status":"PROVISIONED","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z","note":""#;
    let mut body = head.as_bytes().to_vec();
    body.resize((size * 3 / 4).max(head.len() + 1) - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

fn headers(request: &SignedRequest) -> HeaderMap {
    request.headers.iter().cloned().collect()
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Whether [`checks`] also measures `verify_and_decode`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decode {
    Yes,
    No,
}

/// The crate's receiving side on one signed request (`map` and `body`, signed at `ts`):
/// `authenticate` (headers, window, signature) and, unless `decode` is [`Decode::No`],
/// `verify_and_decode` (the same plus decoding the body into typed JSON).
fn checks(
    group: &mut BenchmarkGroup<'_, WallTime>,
    size: usize,
    trusted: &TrustedKeys,
    map: &HeaderMap,
    body: &[u8],
    ts: i64,
    decode: Decode,
) {
    group.bench_function(BenchmarkId::new("authenticate", size), |b| {
        b.iter(|| {
            trusted
                .authenticate(map, black_box(body), ts, TOLERANCE)
                .unwrap()
        });
    });
    if decode == Decode::Yes {
        group.bench_function(BenchmarkId::new("verify_and_decode", size), |b| {
            b.iter(|| trusted.verify(map, black_box(body), ts, TOLERANCE).unwrap());
        });
    }
}

fn event_hmac(c: &mut Criterion) {
    let secret = "org-secret-0123456789abcdef";
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8(secret).unwrap()]);
    let trusted = keys.trusted_keys();
    let raw_key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut group = c.benchmark_group("event_hmac");
    for size in SIZES {
        let body = event_body(size);
        let at = now();
        let request = keys.sign(&Outgoing::new("e1", &body), at).unwrap();
        let map = headers(&request);
        let ts = at.unix_timestamp();
        let ts_text = ts.to_string();
        let tag = hmac::sign(&raw_key, &[ts_text.as_bytes(), b".", &body].concat());
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_ring_verify", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut ctx = hmac::Context::with_key(&raw_key);
                    ctx.update(ts_text.as_bytes());
                    ctx.update(b".");
                    ctx.update(body);
                    let computed = ctx.sign();
                    black_box(ring_constant_eq(computed.as_ref(), tag.as_ref()))
                });
            },
        );
        checks(&mut group, size, &trusted, &map, &body, ts, Decode::Yes);
        group.bench_with_input(BenchmarkId::new("raw_ring_sign", size), &body, |b, body| {
            b.iter(|| {
                let mut ctx = hmac::Context::with_key(&raw_key);
                ctx.update(ts_text.as_bytes());
                ctx.update(b".");
                ctx.update(body);
                black_box(hex::encode(ctx.sign().as_ref()))
            });
        });
        group.bench_with_input(BenchmarkId::new("sign", size), &body, |b, body| {
            b.iter(|| {
                keys.sign(&Outgoing::new("e1", black_box(body)), at)
                    .unwrap()
            });
        });
    }
    group.finish();
}

fn ring_constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn domain_ecdsa(c: &mut Criterion) {
    let (key, _) = EcdsaSigningKey::generate().unwrap();
    let public_der = key.public_key().to_spki_der();
    let point = public_der[26..].to_vec();
    let keys = SigningKeys::Domain(Box::new(key));
    let trusted = keys.trusted_keys();
    let mut group = c.benchmark_group("domain_ecdsa");
    for size in SIZES {
        let resource = resource_body(size);
        let at = now();
        let request = keys
            .sign(
                &Outgoing::new("m", &resource).with_domain(&Domain::Wallet),
                at,
            )
            .unwrap();
        let map = headers(&request);
        let envelope: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let payload = envelope["payload"].as_str().unwrap().to_owned();
        let sig = STANDARD.decode(map["signature"].to_str().unwrap()).unwrap();
        let ts = at.unix_timestamp();
        group.throughput(Throughput::Bytes(request.body.len() as u64));
        group.bench_function(BenchmarkId::new("raw_ring_verify", size), |b| {
            b.iter(|| {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &point)
                    .verify(black_box(payload.as_bytes()), &sig)
                    .unwrap();
            });
        });
        checks(
            &mut group,
            size,
            &trusted,
            &map,
            &request.body,
            ts,
            Decode::Yes,
        );
        group.bench_function(BenchmarkId::new("sign", size), |b| {
            b.iter(|| {
                keys.sign(
                    &Outgoing::new("m", black_box(&resource)).with_domain(&Domain::Wallet),
                    at,
                )
                .unwrap()
            });
        });
    }
    group.finish();
}

fn standard_v1(c: &mut Criterion) {
    let keys = SigningKeys::Standard(vec![StandardSigningKey::Symmetric(
        HmacSecret::from_whsec(WHSEC).unwrap(),
    )]);
    let trusted = keys.trusted_keys();
    let raw_key = hmac::Key::new(hmac::HMAC_SHA256, &STANDARD.decode(&WHSEC[6..]).unwrap());
    let svix = svix::webhooks::Webhook::new(WHSEC).unwrap();
    let standard = standardwebhooks::Webhook::new(WHSEC).unwrap();
    let mut group = c.benchmark_group("standard_v1");
    for size in SIZES {
        let body = event_body(size);
        let at = now();
        let request = keys
            .sign(&Outgoing::new("msg_p5jXN8AQM9LWM0D4loKWxJek", &body), at)
            .unwrap();
        let map = headers(&request);
        let ts = at.unix_timestamp();
        let ts_text = ts.to_string();
        let sig = STANDARD
            .decode(&map["webhook-signature"].to_str().unwrap()[3..])
            .unwrap();
        // All three must accept the same input, or the comparison is meaningless.
        svix.verify(&body, &map).unwrap();
        standard.verify(&body, &map).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_ring_verify", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut ctx = hmac::Context::with_key(&raw_key);
                    ctx.update(b"msg_p5jXN8AQM9LWM0D4loKWxJek.");
                    ctx.update(ts_text.as_bytes());
                    ctx.update(b".");
                    ctx.update(body);
                    black_box(ring_constant_eq(ctx.sign().as_ref(), &sig))
                });
            },
        );
        checks(&mut group, size, &trusted, &map, &body, ts, Decode::Yes);
        group.bench_with_input(BenchmarkId::new("svix_verify", size), &body, |b, body| {
            b.iter(|| svix.verify(black_box(body), &map).unwrap());
        });
        group.bench_with_input(
            BenchmarkId::new("standardwebhooks_verify", size),
            &body,
            |b, body| {
                b.iter(|| standard.verify(black_box(body), &map).unwrap());
            },
        );
        group.bench_with_input(BenchmarkId::new("sign", size), &body, |b, body| {
            b.iter(|| {
                keys.sign(
                    &Outgoing::new("msg_p5jXN8AQM9LWM0D4loKWxJek", black_box(body)),
                    at,
                )
                .unwrap()
            });
        });
    }
    group.finish();
}

fn standard_v1a(c: &mut Criterion) {
    let key = Ed25519SigningKey::generate().unwrap();
    let public = key.public_key().to_whpk();
    let public_raw = STANDARD.decode(&public[5..]).unwrap();
    let keys = SigningKeys::Standard(vec![StandardSigningKey::Asymmetric(key)]);
    let trusted: TrustedKeys = keys.trusted_keys();
    let mut group = c.benchmark_group("standard_v1a");
    for size in SIZES {
        let body = event_body(size);
        let at = now();
        let request = keys.sign(&Outgoing::new("msg_1", &body), at).unwrap();
        let map = headers(&request);
        let ts = at.unix_timestamp();
        let signed = [b"msg_1.".as_slice(), ts.to_string().as_bytes(), b".", &body].concat();
        let sig = STANDARD
            .decode(&map["webhook-signature"].to_str().unwrap()[4..])
            .unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("raw_ring_verify", size), |b| {
            b.iter(|| {
                signature::UnparsedPublicKey::new(&signature::ED25519, &public_raw)
                    .verify(black_box(&signed), &sig)
                    .unwrap();
            });
        });
        checks(&mut group, size, &trusted, &map, &body, ts, Decode::No);
        group.bench_with_input(BenchmarkId::new("sign", size), &body, |b, body| {
            b.iter(|| {
                keys.sign(&Outgoing::new("msg_1", black_box(body)), at)
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = event_hmac, domain_ecdsa, standard_v1, standard_v1a
}
criterion_main!(benches);
