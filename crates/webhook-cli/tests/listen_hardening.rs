//! `webhook listen` against hostile clients, through the built binary: a half-sent head,
//! a trickled body, and a connection flood under a 64 file-descriptor limit (`prlimit`).
//! Traffic only on 127.0.0.1; every wait is bounded.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webhook_core::keys::HmacSecret;
use webhook_core::{Outgoing, SigningKeys};

const WEBHOOK: &str = env!("CARGO_BIN_EXE_webhook");
const SECRET: &str = "hardening-secret";
/// Upper bound for any one wait in these tests.
const DEADLINE: Duration = Duration::from_secs(15);

/// A running `webhook listen` (possibly under `prlimit`), killed on drop; its stderr
/// lines are collected with the time they arrived.
struct Listen {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Listen {
    /// `webhook listen` for the event style with [`SECRET`], plus `args`, under `prefix`
    /// (a command such as `prlimit … --`).
    fn start(prefix: &[&str], args: &[&str]) -> Self {
        let style = ["--style", "event", "--secret", SECRET];
        Self::spawn(prefix, &[&style[..], args].concat())
    }

    /// `webhook listen` with `args` naming the style and keys.
    fn start_styled(args: &[&str]) -> Self {
        Self::spawn(&[], args)
    }

    fn spawn(prefix: &[&str], args: &[&str]) -> Self {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(WEBHOOK);
                command
            }
            None => Command::new(WEBHOOK),
        };
        let mut child = command
            .args(["listen", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .parse()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Self {
            child,
            addr,
            stderr: lines,
        }
    }

    fn lines_between(&self, from: Instant, to: Instant, containing: &str) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, line)| *at >= from && *at <= to && line.contains(containing))
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// CPU time (user + system) the process has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime is the 12th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed event-style request with `Connection: close`.
fn signed_request(key: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"id":"e-{key}","type":"wallet.created","idempotencyKey":"{key}","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{{}}}}"#
    );
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8(SECRET).unwrap()]);
    let signed = keys
        .sign(
            &Outgoing::new(key, body.as_bytes()),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        signed.body.len()
    )
    .into_bytes();
    for (name, value) in &signed.headers {
        request.extend_from_slice(format!("{name}: ").as_bytes());
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(&signed.body);
    request
}

/// Sends `bytes` and reads the answer until the server closes; `None` when connecting,
/// writing or reading failed.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(bytes).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Reads until the server closes the connection; returns what came and when it closed.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn listen_times_out_a_half_sent_head_and_a_trickled_body() {
    let listen = Listen::start(&[], &["--header-timeout", "300", "--body-timeout", "500"]);

    let mut head = TcpStream::connect(listen.addr).unwrap();
    head.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Webh")
        .unwrap();
    let (_, took) = read_until_closed(&mut head);
    assert!(
        took < Duration::from_secs(5),
        "half-sent head still open after {took:?}"
    );

    let request = signed_request("k-trickle");
    let split = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut stream = TcpStream::connect(listen.addr).unwrap();
    stream.write_all(&request[..split]).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let body = request[split..].to_vec();
    let trickle = std::thread::spawn(move || {
        for byte in body {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (answer, took) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took < Duration::from_secs(5),
        "trickled body answered after {took:?}"
    );
    drop(stream);
    trickle.join().unwrap();

    // A normal request is still served.
    let answer = exchange(listen.addr, &signed_request("k-normal")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A domain-style delivery whose resource was updated 5 h ago (a late redrive): refused
/// by default (401 `stale_resource`), accepted once `--max-resource-age` covers it.
#[test]
fn listen_refuses_domain_resources_older_than_the_max_age_unless_raised() {
    let (key, _) = webhook_core::keys::EcdsaSigningKey::generate().unwrap();
    let public = key.public_key().to_spki_base64();
    let signer = SigningKeys::Domain(Box::new(key));
    let now = time::OffsetDateTime::now_utc();
    let updated = now - Duration::from_secs(5 * 3600);
    let resource = format!(
        r#"{{"id":"w-late","status":"PROVISIONED","createdAt":"2025-04-08T11:48:56Z","updatedAt":"{}"}}"#,
        webhook_core::domain::format_timestamp(updated)
    );
    let outgoing =
        Outgoing::new("m", resource.as_bytes()).with_domain(&webhook_core::domain::Domain::Wallet);
    let signed = signer.sign(&outgoing, now).unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        signed.body.len()
    )
    .into_bytes();
    for (name, value) in &signed.headers {
        request.extend_from_slice(format!("{name}: ").as_bytes());
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(&signed.body);

    let strict = Listen::start_styled(&["--style", "domain", "--public-key", &public]);
    let answer = exchange(strict.addr, &request).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("stale_resource"), "{answer}");
    let lenient = Listen::start_styled(&[
        "--style",
        "domain",
        "--public-key",
        &public,
        "--max-resource-age",
        "21600",
    ]);
    let answer = exchange(lenient.addr, &request).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn listen_survives_running_out_of_file_descriptors() {
    const FLOOD: usize = 300;
    const HOLD: Duration = Duration::from_secs(3);
    let listen = Listen::start(&["prlimit", "--nofile=64:64", "--"], &[]);
    assert!(
        exchange(listen.addr, &signed_request("k-before"))
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );

    // Far more connections than the listener has descriptors; they wait in the backlog.
    let flood_started = Instant::now();
    let cpu_before = listen.cpu_ticks();
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        match TcpStream::connect_timeout(&listen.addr, Duration::from_millis(500)) {
            Ok(stream) => flood.push(stream),
            Err(_) => break,
        }
    }
    std::thread::sleep(HOLD.saturating_sub(flood_started.elapsed()));
    let cpu_ticks = listen.cpu_ticks() - cpu_before;
    let flood_ended = Instant::now();
    let held = flood_ended - flood_started;
    let opened = flood.len();
    drop(flood);

    // The listener ran out of descriptors and said so, a few lines a second at most.
    let reports = listen.lines_between(flood_started, flood_ended, "accept failed");
    assert!(opened >= 64, "only {opened} connections were opened");
    assert!(
        !reports.is_empty(),
        "no accept error was reported during the flood"
    );
    let allowed = 2 * usize::try_from(held.as_secs()).unwrap() + 2;
    assert!(
        reports.len() <= allowed,
        "{} accept-error lines in {held:?}: {reports:?}",
        reports.len()
    );
    // It did not spin: well under one core while the flood was held (100 ticks a second).
    let wall_ticks = u64::try_from(held.as_millis()).unwrap() / 10;
    eprintln!(
        "flood: {opened} connections held {held:?}; {} accept-error lines; {cpu_ticks} CPU ticks of {wall_ticks}",
        reports.len()
    );
    assert!(
        cpu_ticks * 2 < wall_ticks,
        "listener used {cpu_ticks} CPU ticks in {wall_ticks} ticks of flood"
    );

    // Responsive again once the flood is gone.
    let deadline = Instant::now() + DEADLINE;
    let answer = loop {
        if let Some(answer) = exchange(listen.addr, &signed_request("k-after")) {
            if answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
        }
        assert!(
            Instant::now() < deadline,
            "listener unresponsive after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answer.contains("ok"), "{answer}");
}
