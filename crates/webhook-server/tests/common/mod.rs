//! What the server's integration tests share: the API on a loopback port, an HTTP client
//! that checks every error is `{code, message}` and never a 5xx, and a recording
//! receiver.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use webhook_receiver::server::ServerConfig;
use webhook_sender::store::MemoryStore;
use webhook_sender::{AllowList, Sender};
use webhook_server::{Api, TokenAuthorizer};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running API on a loopback port.
pub struct Service {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub sender: Sender,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Options {
    pub allow: AllowList,
    pub rate: Option<NonZeroU32>,
    pub body_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow: AllowList::loopback(),
            rate: None,
            body_limit: webhook_server::api::DEFAULT_BODY_LIMIT,
        }
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

impl Service {
    pub async fn start(options: Options) -> Self {
        let sender = Sender::builder()
            .store(MemoryStore::new())
            .allow_private_networks(options.allow)
            .idle_poll(Duration::from_millis(20))
            .build()
            .await
            .unwrap();
        let authorizer = TokenAuthorizer::new(sender.clone())
            .with_admin_token(ADMIN)
            .unwrap();
        let router = Api::new(sender.clone(), authorizer)
            .rate_per_token(options.rate)
            .body_limit(options.body_limit)
            .router();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            webhook_receiver::server::serve(listener, router, ServerConfig::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
            sender,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.unwrap_or_default())).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert!(
            status.as_u16() < 500,
            "no 5xx for client input: {status} {json}"
        );
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            assert!(
                json["code"].is_string() && json["message"].is_string(),
                "every error is {{code, message}}: {status} {json}"
            );
        }
        Reply {
            status,
            headers,
            json,
        }
    }

    /// A console request: `cookie` as the session, `form` as an urlencoded body; the
    /// answer as text.
    pub async fn page(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("webhook_console={cookie}"));
        }
        if form.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Full::new(Bytes::from(form.unwrap_or("").to_owned()));
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            self.client.request(request.body(body).unwrap()),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        let status = response.status();
        assert!(status.as_u16() < 500, "no 5xx: {status}");
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        self.send(method, path, Some(token), body, &[]).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates an organization with a webhook secret and an organization token.
    pub async fn organization(&self, id: &str) -> String {
        let created = self
            .post("/v1/organizations", ADMIN, json!({"id": id, "name": id}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
        let secret = self
            .call(
                Method::PUT,
                &format!("/v1/organizations/{id}/secret"),
                ADMIN,
                Some(json!({"secret": format!("{id}-webhook-secret-of-some-length")})),
            )
            .await;
        assert_eq!(secret.status, StatusCode::NO_CONTENT, "{}", secret.json);
        let token = self
            .call(
                Method::POST,
                &format!("/v1/organizations/{id}/tokens"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(token.status, StatusCode::CREATED, "{}", token.json);
        token.json["token"].as_str().unwrap().to_owned()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.sender.shutdown().await.unwrap();
    }
}

/// A receiver on loopback that answers `status` and records each request's
/// `webhook-id` (or body) in arrival order.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(status: StatusCode) -> Self {
        Self::failing_first(0, status).await
    }

    /// Answers `500` with a short body to the first `failures` requests, then `status`.
    pub async fn failing_first(failures: usize, status: StatusCode) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let record = Arc::clone(&record);
                async move {
                    let key = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .map_or_else(
                            || String::from_utf8_lossy(&body).into_owned(),
                            str::to_owned,
                        );
                    let mut seen = record.lock().unwrap();
                    seen.push(key);
                    if seen.len() <= failures {
                        (StatusCode::INTERNAL_SERVER_ERROR, "database <b>down</b>")
                    } else {
                        (status, "")
                    }
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            seen,
        }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 20 s: {what}");
}

pub fn standard_endpoint(url: &str) -> Value {
    json!({
        "url": url,
        "style": "standard",
        "event_types": ["wallet.created", "transaction.confirmed"],
        "retry_schedule_seconds": [0],
    })
}

pub fn wallet(n: usize) -> Value {
    json!({"type": "wallet.created", "entity_id": format!("w-{n}"), "data": {"id": format!("w-{n}"), "n": n}})
}
