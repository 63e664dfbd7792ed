//! Runs the built `webhook` binary: keygen, sign, verify and listen, per style.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WEBHOOK: &str = env!("CARGO_BIN_EXE_webhook");

fn webhook(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(WEBHOOK)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading stdin closes it: that is its answer, not ours.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

fn keygen() -> (String, String) {
    let output = webhook(&["keygen"], b"");
    assert!(output.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        keys["private_key"].as_str().unwrap().to_owned(),
        keys["public_key"].as_str().unwrap().to_owned(),
    )
}

/// `webhook sign` output: headers, and for the domain style the envelope body.
fn sign(args: &[&str], body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let output = webhook(&[&["sign"], args].concat(), body);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (head, envelope) = text.split_once("\n\n").unwrap_or((&text, ""));
    let headers = head
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let body = if envelope.is_empty() {
        body.to_vec()
    } else {
        envelope.trim_end().as_bytes().to_vec()
    };
    (headers, body)
}

/// A running `webhook listen`, killed on drop.
struct Listener {
    child: Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Listener {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(WEBHOOK)
            .args([&["listen", "--addr", "127.0.0.1:0"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let port = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .parse()
            .unwrap();
        std::thread::spawn(move || {
            // Keep draining stderr so the child never blocks on a full pipe.
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        // Lines arrive through a channel so that waiting for one is bounded in time.
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, port, lines }
    }

    fn post(&self, headers: &[(String, String)], body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.split(' ').nth(1).unwrap().parse().unwrap()
    }

    fn next_line(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line on stdout within 10 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event_body(key: &str) -> Vec<u8> {
    format!(r#"{{"id":"e-{key}","type":"customer.locked_out","idempotencyKey":"{key}","organizationId":"org-1","createdAt":"2025-05-08T14:30:00Z","data":{{"customerId":"c1"}}}}"#).into_bytes()
}

const WALLET: &[u8] = br#"{"id":"w-1","status":"PROVISIONING","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z"}"#;

#[test]
fn event_style_listen_and_sign_round_trip_with_duplicate_and_forgery() {
    let listener = Listener::start(&["--style", "event", "--secret", "old", "--secret", "new"]);
    let body = event_body("k-1");
    let (headers, body) = sign(&["--style", "event", "--secret", "new"], &body);
    assert_eq!(listener.post(&headers, &body), 200);
    let line = listener.next_line();
    assert_eq!(line["style"], "event");
    assert_eq!(line["type"], "customer.locked_out");
    assert_eq!(line["dedup_key"], "k-1");
    assert_eq!(line["duplicate"], false);
    assert_eq!(line["event"]["data"]["customerId"], "c1");

    assert_eq!(listener.post(&headers, &body), 200);
    assert_eq!(listener.next_line()["duplicate"], true);

    // Forged: signed with a secret the listener does not know.
    let (forged, body) = sign(
        &["--style", "event", "--secret", "attacker"],
        &event_body("k-2"),
    );
    assert_eq!(listener.post(&forged, &body), 401);
    // Still serving, and the forged request printed nothing on stdout.
    let (headers, body) = sign(&["--style", "event", "--secret", "old"], &event_body("k-3"));
    assert_eq!(listener.post(&headers, &body), 200);
    assert_eq!(listener.next_line()["dedup_key"], "k-3");
}

#[test]
fn domain_style_keygen_output_loads_in_listen() {
    let (private, public) = keygen();
    assert!(public.starts_with("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
    // The fixture's `updatedAt` is from 2025: accept it as a redrive would need.
    let old_resources = ["--max-resource-age", "3153600000"];
    let listener = Listener::start(
        &[
            &["--style", "domain", "--public-key", &public][..],
            &old_resources,
        ]
        .concat(),
    );
    let (headers, envelope) = sign(
        &[
            "--style",
            "domain",
            "--private-key",
            &private,
            "--domain",
            "WALLET",
        ],
        WALLET,
    );
    assert_eq!(listener.post(&headers, &envelope), 200);
    let line = listener.next_line();
    assert_eq!(line["domain"], "WALLET");
    assert_eq!(line["dedup_key"], "w-1@2025-04-08T11:48:57Z");
    assert_eq!(line["event"]["status"], "PROVISIONING");

    let (_, other_public) = keygen();
    let (other_private, _) = keygen();
    let (forged, envelope) = sign(
        &[
            "--style",
            "domain",
            "--private-key",
            &other_private,
            "--domain",
            "WALLET",
        ],
        WALLET,
    );
    assert_eq!(listener.post(&forged, &envelope), 401);
    drop(listener);
    // A listener trusting only another key refuses the genuine request.
    let listener = Listener::start(
        &[
            &["--style", "domain", "--public-key", &other_public][..],
            &old_resources,
        ]
        .concat(),
    );
    assert_eq!(listener.post(&headers, &envelope), 401);
}

#[test]
fn standard_style_listen_and_sign_round_trip() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let listener = Listener::start(&["--style", "standard", "--secret", secret]);
    let body = event_body("k-std");
    let (headers, body) = sign(
        &["--style", "standard", "--secret", secret, "--id", "msg_42"],
        &body,
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "webhook-id" && v == "msg_42")
    );
    assert_eq!(listener.post(&headers, &body), 200);
    let line = listener.next_line();
    assert_eq!(
        (line["style"].as_str(), line["dedup_key"].as_str()),
        (Some("standard"), Some("msg_42"))
    );
    assert_eq!(line["type"], "customer.locked_out");

    // Out of the window: signed ten minutes ago.
    let old = (time::OffsetDateTime::now_utc().unix_timestamp() - 600).to_string();
    let (stale, body) = sign(
        &[
            "--style",
            "standard",
            "--secret",
            secret,
            "--timestamp",
            &old,
        ],
        &event_body("k-old"),
    );
    assert_eq!(listener.post(&stale, &body), 401);
}

#[test]
fn verify_explains_why_a_capture_fails() {
    let dir = tempfile::tempdir().unwrap();
    let body = event_body("k-v");
    let (headers, _) = sign(&["--style", "event", "--secret", "s"], &body);
    let header_text: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    std::fs::write(dir.path().join("h.txt"), header_text).unwrap();
    std::fs::write(dir.path().join("b.json"), &body).unwrap();
    let h = dir.path().join("h.txt");
    let b = dir.path().join("b.json");
    let run = |secret: &str, extra: &[&str]| {
        webhook(
            &[
                &[
                    "verify",
                    "--style",
                    "event",
                    "--secret",
                    secret,
                    "--headers",
                    h.to_str().unwrap(),
                    "--body",
                    b.to_str().unwrap(),
                ],
                extra,
            ]
            .concat(),
            b"",
        )
    };
    let ok = run("s", &[]);
    assert!(ok.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap()["dedup_key"],
        "k-v"
    );

    let wrong = run("other", &[]);
    assert_eq!(wrong.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(
        (report["status"].as_u64(), report["reason"].as_str()),
        (Some(401), Some("no_matching_signature"))
    );

    let later = (time::OffsetDateTime::now_utc().unix_timestamp() + 3600).to_string();
    let stale = run("s", &["--now", &later]);
    let report: serde_json::Value = serde_json::from_slice(&stale.stdout).unwrap();
    assert_eq!(report["reason"], "timestamp_out_of_window");

    let usage = webhook(&["sign", "--style", "domain", "--secret", "x"], b"{}");
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["keygen", "sign", "verify", "listen", "send"] {
        let output = webhook(&[sub, "--help"], b"");
        assert!(output.status.success(), "{sub}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage: webhook"),
            "{sub}"
        );
    }
}

/// A receiver on 127.0.0.1 that answers the given statuses in turn (the last one repeats).
/// Returns its port and a counter of requests served.
fn flaky_receiver(
    statuses: &'static [u16],
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            // Read the head, then the body by Content-Length.
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let body_start = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                data.extend_from_slice(&buf[..n]);
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(body_start) = body_start else {
                continue;
            };
            let head = String::from_utf8_lossy(&data[..body_start]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while data.len() < body_start + length {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            let i = count.fetch_add(1, Ordering::SeqCst);
            let status = statuses[i.min(statuses.len() - 1)];
            let response =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (port, served)
}

fn json_lines(output: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn send_delivers_to_a_flaky_receiver_after_retries() {
    let (port, served) = flaky_receiver(&[503, 500, 200]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wallet.json");
    std::fs::write(&data, br#"{"id":"w-9","owner":"jane@example.com"}"#).unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let output = webhook(
        &[
            "send",
            "--url",
            &url,
            "--style",
            "event",
            "--secret",
            "s",
            "--type",
            "wallet.created",
            "--data",
            data.to_str().unwrap(),
            "--schedule",
            "0,1,1",
            "--allow-private",
        ],
        b"",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    let statuses: Vec<_> = lines.iter().filter_map(|l| l["status"].as_u64()).collect();
    assert_eq!(statuses, [503, 500, 200]);
    assert_eq!(lines.last().unwrap()["result"], "delivered");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn send_fails_for_good_and_refuses_loopback_without_the_flag() {
    let (port, served) = flaky_receiver(&[500]);
    let url = format!("http://127.0.0.1:{port}/hook");
    let resource = br#"{"id":"tx-1","status":"FAILED","createdAt":"2025-05-08T14:25:00Z","updatedAt":"2025-05-08T14:30:00Z"}"#;
    let (private, _) = keygen();
    let args = [
        "send",
        "--url",
        &url,
        "--style",
        "domain",
        "--private-key",
        &private,
        "--domain",
        "TRANSACTION",
        "--data",
        "-",
        "--max-attempts",
        "1",
        "--allow-private",
    ];
    let output = webhook(&args, resource);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        json_lines(&output.stdout).last().unwrap()["result"],
        "failed"
    );
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

    let refused = webhook(&args[..args.len() - 1], resource);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("forbidden"));
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "nothing sent to a refused address"
    );
}
