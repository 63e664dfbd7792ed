//! `webhook serve` killed with SIGKILL while clients publish, then restarted on the same
//! store (the redb file; a PostgreSQL database started by the test): every message that got a 202 is delivered exactly once at a deduplicating
//! receiver (`webhook listen`), and a publish retried with its `Idempotency-Key` after the
//! restart gets the first answer's event id. And SIGTERM: the service stops accepting,
//! answers what is in progress, drains the sender and exits 0.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const WEBHOOK: &str = env!("CARGO_BIN_EXE_webhook");
const ADMIN: &str = "crash-test-admin-token-0123456789";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLISHERS: usize = 4;
/// At most this many publishes per publisher before the kill.
const PER_PUBLISHER: usize = 400;

/// A child process killed on drop, its stderr collected, its first `http://` address.
struct Process {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(command: &mut Command, stdout_lines: bool) -> Self {
        let mut child = command
            .stdout(if stdout_lines {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            assert!(Instant::now() < deadline, "no address announced");
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "exited before listening"
            );
            if let Some(rest) = line.split("http://").nth(1) {
                break rest
                    .trim()
                    .trim_end_matches('/')
                    .split('/')
                    .next()
                    .unwrap()
                    .to_owned();
            }
        };
        std::thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Self { child, addr, lines }
    }

    fn kill(&mut self) {
        // `Child::kill` is SIGKILL on Unix: no drain, no flush, no goodbye.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The store arguments of `webhook serve`: `--store FILE` or `--postgres URL`.
type StoreArgs = [std::ffi::OsString];

fn redb_args(path: &std::path::Path) -> Vec<std::ffi::OsString> {
    vec!["--store".into(), path.into()]
}

fn serve(store: &StoreArgs) -> Process {
    Process::spawn(
        Command::new(WEBHOOK)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--allow-private",
                "--rate-limit",
                "0",
            ])
            .args(["--lease-seconds", "4"])
            .args(store)
            .env("WEBHOOK_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn"),
        false,
    )
}

struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    fn new(addr: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<(StatusCode, Value), String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = request
            .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

fn message(key: &str) -> Value {
    json!({"type": "transaction.confirmed", "entity_id": key, "data": {"id": key, "pad": "x".repeat(512)}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_killed_while_publishing_loses_no_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    killed_while_publishing_loses_no_accepted_message(&redb_args(&dir.path().join("service.redb")))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_postgres_killed_while_publishing_loses_no_accepted_message() {
    let postgres = tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start)
        .await
        .unwrap();
    killed_while_publishing_loses_no_accepted_message(&[
        "--postgres".into(),
        postgres.url().into(),
    ])
    .await;
}

async fn killed_while_publishing_loses_no_accepted_message(store: &StoreArgs) {
    let listen = Process::spawn(
        Command::new(WEBHOOK).args([
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--style",
            "standard",
            "--secret",
            SECRET,
        ]),
        true,
    );
    let mut service = serve(store);
    let api = Api::new(&service.addr);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/organizations",
            &json!({"id": "acme"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/organizations/acme/endpoints",
            &json!({
                "url": format!("http://{}/", listen.addr), "style": "standard",
                "event_types": ["transaction.confirmed"], "secret": SECRET, "timeout_ms": 1000,
                "max_concurrency": 16,
            }),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Publish from several clients; kill the service under them.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let attempted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let api = Api::new(&service.addr);
        let (acked, attempted) = (Arc::clone(&acked), Arc::clone(&attempted));
        publishers.push(tokio::spawn(async move {
            for n in 0..PER_PUBLISHER {
                let key = format!("p{p}-{n}");
                attempted.lock().unwrap().insert(key.clone());
                match api
                    .call(
                        Method::POST,
                        "/v1/organizations/acme/messages",
                        &message(&key),
                        Some(&key),
                    )
                    .await
                {
                    Ok((StatusCode::ACCEPTED, body)) => {
                        let id = body["event_id"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().insert(key, id);
                    }
                    Ok((status, body)) => panic!("{status} {body}"),
                    Err(_) => return, // the service is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.kill();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let attempted = attempted.lock().unwrap().clone();
    assert!(
        acked.len() >= 200,
        "enough published before the kill: {}",
        acked.len()
    );
    eprintln!(
        "killed after {} accepted publishes, {} without an answer",
        acked.len(),
        attempted.len() - acked.len()
    );

    // Restart on the same store; retry every publish that got no answer, and a few that
    // did, with the same keys.
    let service = serve(store);
    let api = Api::new(&service.addr);
    let mut expected: HashMap<String, String> = acked.clone();
    for key in attempted.iter().filter(|k| !acked.contains_key(*k)) {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1/organizations/acme/messages",
                &message(key),
                Some(key),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        expected.insert(key.clone(), body["event_id"].as_str().unwrap().to_owned());
    }
    for (key, id) in acked.iter().take(20) {
        let (status, body) = api
            .call(
                Method::POST,
                "/v1/organizations/acme/messages",
                &message(key),
                Some(key),
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            body["event_id"],
            id.as_str(),
            "the first answer, across the crash"
        );
    }

    // Every accepted message arrives, each handled once (duplicates are flagged by the
    // receiver's dedup, and never handled again).
    let wanted: HashSet<String> = expected.values().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let handled = loop {
        let lines = listen.lines.lock().unwrap().clone();
        let handled: Vec<String> = lines
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["duplicate"] == false)
            .map(|line| line["event"]["id"].as_str().unwrap().to_owned())
            .collect();
        let distinct: HashSet<&String> = handled.iter().collect();
        if wanted.iter().all(|id| distinct.contains(id)) || Instant::now() > deadline {
            break handled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let distinct: HashSet<&String> = handled.iter().collect();
    let duplicates = listen
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"duplicate\":true"))
        .count();
    eprintln!(
        "{} handled, {duplicates} redeliveries refused by dedup",
        handled.len()
    );
    let missing: Vec<_> = wanted.iter().filter(|id| !distinct.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} accepted messages never arrived",
        missing.len()
    );
    assert_eq!(distinct.len(), handled.len(), "a message was handled twice");
    assert_eq!(
        distinct.len(),
        wanted.len(),
        "nothing arrived that was not published"
    );
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = redb_args(&dir.path().join("service.redb"));
    let mut service = serve(&store);
    let api = Api::new(&service.addr);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/organizations",
            &json!({"id": "acme"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let killed = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = service.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    // What it stored is there on the next start.
    let service = serve(&store);
    let api = Api::new(&service.addr);
    let (status, body) = api
        .call(Method::GET, "/v1/organizations/acme", &Value::Null, None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
}
