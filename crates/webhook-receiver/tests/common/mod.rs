//! Shared test support: a hyper server on 127.0.0.1:0, a raw HTTP/1.1 client, signing
//! helpers for the three styles, and a recording handler.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use webhook_core::clock::ManualClock;
use webhook_core::domain::Domain;
use webhook_core::keys::{EcdsaSigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SignedRequest, SigningKeys};
use webhook_receiver::{VerifiedWebhook, Verifier};

/// The fixed "now" of every test clock (2025-05-08T14:30:00Z).
pub const NOW: i64 = 1_746_714_600;
/// Upper bound for any single network exchange in the tests.
pub const IO_DEADLINE: Duration = Duration::from_secs(10);

pub fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

// ---------------------------------------------------------------------------------------
// Server

/// A hyper HTTP/1 server on 127.0.0.1:0, serving `service`; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start<S, B>(service: S) -> Self
    where
        S: tower::Service<Request<hyper::body::Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = TowerToHyperService::new(service.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, task }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Raw client

/// A request written byte for byte, so that malformed ones can be sent too.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// `None`: send `Content-Length: body.len()`; `Some(text)`: send this value instead;
    /// `chunked`: send the body with chunked encoding and no `Content-Length`.
    pub content_length: Option<String>,
    pub chunked: bool,
}

impl RawRequest {
    pub fn post(headers: Vec<(String, Vec<u8>)>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            headers,
            body: body.into(),
            content_length: None,
            chunked: false,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn replace(self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.without(name).header(name, value)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn content_length(mut self, value: &str) -> Self {
        self.content_length = Some(value.into());
        self
    }

    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
            self.method
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in self.body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            let length = self
                .content_length
                .clone()
                .unwrap_or_else(|| self.body.len().to_string());
            out.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// Sends raw bytes on a fresh connection and reads the response until the server closes
/// (requests say `Connection: close`). Writing runs beside reading, so a server that
/// answers before reading everything (413) is seen answering. With `half_close` the
/// client shuts its sending side after the bytes (hyper then drops a request still in
/// progress, by default). Status 0 means the server closed without answering.
pub async fn send_bytes(addr: SocketAddr, bytes: Vec<u8>, half_close: bool) -> RawResponse {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&bytes).await;
            if half_close {
                let _ = writer.shutdown().await;
            }
            // Keep the sending side open until the server closes the connection.
            std::future::pending::<()>().await;
        });
        let mut received = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        write.abort();
        received
    };
    let received = tokio::time::timeout(IO_DEADLINE, exchange)
        .await
        .expect("server answered within the deadline");
    parse_response(&received)
}

pub async fn send(addr: SocketAddr, request: &RawRequest) -> RawResponse {
    send_bytes(addr, request.to_bytes(), false).await
}

fn parse_response(received: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(received).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return RawResponse {
            status: 0,
            head: text,
            body: String::new(),
        };
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    RawResponse {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------
// Handler

/// A handler that counts its calls, can be told to fail, and can be held at a gate.
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: AtomicUsize,
    /// The next this-many calls answer 500.
    pub fail_next: AtomicUsize,
    /// When set, each call waits for a permit before answering.
    pub gate: Option<Semaphore>,
    /// Dedup keys seen, in order.
    pub keys: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn gated() -> Arc<Self> {
        Arc::new(Self {
            gate: Some(Semaphore::new(0)),
            ..Self::default()
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

/// The handler service over a [`Recorder`]: answers 200 `handled`, or 500 while
/// `fail_next` is positive.
pub fn recording_handler(
    recorder: Arc<Recorder>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let recorder = Arc::clone(&recorder);
        async move {
            let webhook = request
                .extensions()
                .get::<VerifiedWebhook>()
                .cloned()
                .expect("the layer sets the extension");
            recorder.calls.fetch_add(1, Ordering::SeqCst);
            recorder
                .keys
                .lock()
                .unwrap()
                .push(webhook.dedup_key().to_owned());
            if let Some(gate) = &recorder.gate {
                gate.acquire().await.unwrap().forget();
            }
            let failing = recorder
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let mut response = Response::new(Full::new(Bytes::from_static(b"handled")));
            if failing {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok::<_, Infallible>(response)
        }
    })
}

// ---------------------------------------------------------------------------------------
// Signing

/// The three styles, with a signer and a matching verifier on a manual clock.
pub struct Fixture {
    pub clock: ManualClock,
    pub signer: SigningKeys,
    pub verifier: Verifier,
    /// Secret bytes (event, standard) for hand-made signatures.
    pub secret: Vec<u8>,
    /// PKCS#8 of the domain key, for hand-made signatures.
    pub pkcs8: Vec<u8>,
}

pub const EVENT_SECRET: &str = "test-org-secret-do-not-leak";

impl Fixture {
    pub fn event() -> Self {
        let signer = SigningKeys::Event(vec![HmacSecret::from_utf8(EVENT_SECRET).unwrap()]);
        Self::new(signer, EVENT_SECRET.as_bytes().to_vec(), Vec::new())
    }

    pub fn domain() -> Self {
        let (key, pkcs8) = EcdsaSigningKey::generate().unwrap();
        let signer = SigningKeys::Domain(Box::new(key));
        Self::new(signer, Vec::new(), pkcs8.to_vec())
    }

    pub fn standard() -> Self {
        let secret = HmacSecret::generate().unwrap();
        let bytes = secret.expose_bytes().to_vec();
        let signer = SigningKeys::Standard(vec![StandardSigningKey::Symmetric(secret)]);
        Self::new(signer, bytes, Vec::new())
    }

    /// `signer` with a verifier trusting its keys, on a manual clock at [`NOW`], with a
    /// 4 KiB body limit.
    fn new(signer: SigningKeys, secret: Vec<u8>, pkcs8: Vec<u8>) -> Self {
        let clock = ManualClock::at_unix(NOW);
        let verifier = Verifier::new(signer.trusted_keys())
            .clock(clock.clone())
            .max_body_size(4096);
        Self {
            clock,
            signer,
            verifier,
            secret,
            pkcs8,
        }
    }

    /// A correctly signed request at time `unix`, with a domain for domain style.
    pub fn signed_at(&self, id: &str, content: &[u8], unix: i64) -> RawRequest {
        let domain = Domain::Wallet;
        let mut outgoing = Outgoing::new(id, content);
        if matches!(self.signer, SigningKeys::Domain(_)) {
            outgoing = outgoing.with_domain(&domain);
        }
        from_signed(self.signer.sign(&outgoing, at(unix)).unwrap())
    }

    pub fn signed(&self, id: &str, content: &[u8]) -> RawRequest {
        self.signed_at(id, content, NOW)
    }

    /// Base64 DER ECDSA signature of `message` with the fixture's domain key.
    pub fn ecdsa_base64(&self, message: &[u8]) -> String {
        let rng = ring::rand::SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.pkcs8, &rng).unwrap();
        STANDARD.encode(pair.sign(&rng, message).unwrap().as_ref())
    }
}

/// A signed request (headers and body as the signer made them) as a [`RawRequest`].
pub fn from_signed(signed: SignedRequest) -> RawRequest {
    let headers = signed
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    RawRequest::post(headers, signed.body)
}

/// HMAC-SHA256 of `message` with `secret`, for hand-made signatures.
pub fn hmac(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// An event-style event body.
pub fn event_body(idempotency_key: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"evt-{idempotency_key}","type":"transaction.confirmed","idempotencyKey":"{idempotency_key}","organizationId":"org-1","createdAt":"2025-05-08T14:30:00Z","data":{{"txId":"t1"}}}}"#
    )
    .into_bytes()
}

/// A domain-style wallet resource.
pub fn wallet_json(id: &str, updated_at: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","status":"PROVISIONED","createdAt":"2025-04-08T11:48:56Z","updatedAt":"{updated_at}","blockchain":"ARBITRUM"}}"#
    )
    .into_bytes()
}

/// A Standard Webhooks body.
pub fn standard_body(n: u32) -> Vec<u8> {
    format!(r#"{{"type":"invoice.paid","data":{{"n":{n}}}}}"#).into_bytes()
}

/// The same request as an `http::Request`, for calling services without a network.
pub fn to_http(request: &RawRequest) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri("/webhook");
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .unwrap()
}

/// Calls `service` with `request` until the answer is not 503 (a key released in the
/// background), at most 1000 times, yielding between tries; returns the last response.
pub async fn call_until_not_503<S, B>(service: &S, request: &RawRequest) -> Response<B>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    use tower::ServiceExt as _;
    let mut response = service.clone().oneshot(to_http(request)).await.unwrap();
    for _ in 1..1000 {
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::task::yield_now().await;
        response = service.clone().oneshot(to_http(request)).await.unwrap();
    }
    response
}

/// Reads a whole response body as text.
pub async fn body_text<B>(response: Response<B>) -> (StatusCode, String)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt as _;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Waits until `condition` holds, checking every few milliseconds, for at most `IO_DEADLINE`.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + IO_DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
