//! Edge values of the `webhook` binary's inputs: each gets a clear message and exit code 2
//! at once, never a hang or a request a receiver would refuse. Every run is bounded: a
//! process still running after [`BOUND`] is killed and the test fails.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WEBHOOK: &str = env!("CARGO_BIN_EXE_webhook");

/// How long any one run may take. Refusals take milliseconds; today's hangs never end.
const BOUND: Duration = Duration::from_secs(20);

/// Runs `webhook args` with `stdin`, killing it after [`BOUND`].
fn webhook(args: &[&str], stdin: &[u8]) -> Output {
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
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > BOUND {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`webhook {}` still running after {BOUND:?}; stdout: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts a usage refusal (exit 2) whose message contains `needle`, with nothing on stdout.
fn assert_refused(output: &Output, needle: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{case}: {stderr:?} lacks {needle:?}"
    );
    assert!(
        output.stdout.is_empty(),
        "{case}: nothing is sent or printed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A loopback port nothing listens on: a delivery to it would fail and be retried.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn domain_private_key() -> String {
    let output = webhook(&["keygen"], b"");
    assert!(output.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    keys["private_key"].as_str().unwrap().to_owned()
}

const EVENT: &[u8] = br#"{"id":"e-1","type":"customer.locked_out","idempotencyKey":"k1","organizationId":"org-1","createdAt":"2025-05-08T14:30:00Z","data":{"customerId":"c1"}}"#;
const WALLET: &[u8] = br#"{"id":"w-1","status":"PROVISIONING","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z"}"#;
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn send_refuses_waits_attempts_and_timeouts_beyond_the_limits_at_once() {
    let url = format!("http://127.0.0.1:{}/hook", closed_port());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wallet.json");
    std::fs::write(&data, br#"{"id":"w-9"}"#).unwrap();
    let data = data.to_str().unwrap();
    let private_key = domain_private_key();
    let event = |extra: &[&str]| {
        let mut args = vec![
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
            data,
            "--allow-private",
        ];
        args.extend_from_slice(extra);
        webhook(&args, b"")
    };
    let cases: [(&[&str], &str); 12] = [
        // Today: waits u64::MAX seconds before the first attempt, printing nothing.
        (&["--schedule", "18446744073709551615"], "7 days"),
        (
            &["--schedule", "0,604801"],
            "the wait before attempt 2 is 604801 s",
        ),
        (&["--schedule", ""], "whole seconds"),
        (&["--schedule", "0,,5"], "whole seconds"),
        (&["--schedule=-1"], "whole seconds"),
        (&["--schedule", "18446744073709551616"], "whole seconds"),
        // Today: backoff for 4 billion attempts (about 20 h of retries, then years).
        (&["--max-attempts", "4294967295"], "at most 100000 attempts"),
        // The event-style backoff capped at 1 h: 1,000 attempts would take about 41 days.
        (&["--max-attempts", "1000"], "(30 days)"),
        (
            &["--schedule", "604800,604800,604800,604800,604800"],
            "(30 days)",
        ),
        (&["--max-attempts", "0"], "at least one attempt"),
        (&["--timeout", "0"], "timeout"),
        (&["--timeout", "18446744073709551615"], "timeout"),
    ];
    for (extra, needle) in cases {
        let case = extra.join(" ");
        assert_refused(&event(extra), needle, &case);
    }
    // clap refuses a number that does not fit; usage errors exit 2 as well.
    let output = event(&["--max-attempts", "4294967296"]);
    assert_eq!(output.status.code(), Some(2));

    // Seed 001's schedule has 10 waits: 11 attempts cannot be made with it. Today the
    // 11th is silently dropped (and the run waits 60 s before its second attempt).
    let output = webhook(
        &[
            "send",
            "--url",
            &url,
            "--style",
            "domain",
            "--private-key",
            &private_key,
            "--domain",
            "WALLET",
            "--data",
            data,
            "--max-attempts",
            "11",
            "--allow-private",
        ],
        b"",
    );
    assert_refused(
        &output,
        "makes 10 attempts at most",
        "domain --max-attempts 11",
    );
}

#[test]
fn the_smallest_allowed_values_run_normally() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wallet.json");
    std::fs::write(&data, br#"{"id":"w-9"}"#).unwrap();
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
            "--max-attempts",
            "1",
            "--timeout",
            "1",
            "--allow-private",
        ],
        b"",
    );
    // One attempt, refused connection, failed for good: exit 1 (the operation failed),
    // not 2 (the input was fine).
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(r#""result":"failed""#), "{stdout}");
}

#[test]
fn sign_refuses_bodies_receivers_would_refuse() {
    let private_key = domain_private_key();
    let domain = |body: &[u8]| {
        webhook(
            &[
                "sign",
                "--style",
                "domain",
                "--private-key",
                &private_key,
                "--domain",
                "WALLET",
            ],
            body,
        )
    };
    let not_objects: [&[u8]; 6] = [
        // Today: an array is wrapped, signed and printed.
        br#"[{"id":"w-1","status":"PROVISIONING","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z"}]"#,
        b"[]",
        br#""w-1""#,
        b"42",
        b"null",
        b"not json",
    ];
    for body in not_objects {
        assert_refused(
            &domain(body),
            "must be a JSON object",
            &String::from_utf8_lossy(body),
        );
    }
    // An object, but not a wallet: no status, no updatedAt (the receiver's dedup key).
    assert_refused(
        &domain(br#"{"id":"w-1"}"#),
        "receivers would refuse it",
        "wallet without status",
    );
    let unknown_domain = webhook(
        &[
            "sign",
            "--style",
            "domain",
            "--private-key",
            &private_key,
            "--domain",
            "PAYOUT",
        ],
        br#"{"id":"p-1","amount":"1"}"#,
    );
    assert_refused(
        &unknown_domain,
        "updatedAt",
        "unknown domain without updatedAt",
    );

    let event = |body: &[u8]| webhook(&["sign", "--style", "event", "--secret", "s"], body);
    for body in [&b"[1]"[..], b"{}", br#"{"id":"e-1"}"#, b"plain text"] {
        assert_refused(
            &event(body),
            "not an event-style event",
            &String::from_utf8_lossy(body),
        );
    }
    let standard = |body: &[u8]| {
        webhook(
            &["sign", "--style", "standard", "--secret", STANDARD_SECRET],
            body,
        )
    };
    assert_refused(
        &standard(b"plain text"),
        "not a JSON body",
        "standard, not JSON",
    );

    // What receivers accept is still signed.
    for output in [
        domain(WALLET),
        event(EVENT),
        standard(EVENT),
        standard(b"[1]"),
    ] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty());
    }
}

#[test]
fn sign_refuses_timestamps_receivers_cannot_read() {
    let private_key = domain_private_key();
    // Today: `X-Webhook-Timestamp: -1` is printed (receivers take digits only).
    let event = webhook(
        &[
            "sign",
            "--style",
            "event",
            "--secret",
            "s",
            "--timestamp=-1",
        ],
        EVENT,
    );
    assert_refused(&event, "--timestamp", "event -1");
    // Year 10000 cannot be written as YYYY-MM-DDTHH:MM:SSZ.
    let domain = webhook(
        &[
            "sign",
            "--style",
            "domain",
            "--private-key",
            &private_key,
            "--domain",
            "WALLET",
            "--timestamp",
            "253402300800",
        ],
        WALLET,
    );
    assert_refused(&domain, "--timestamp", "domain year 10000");
    let out_of_range = webhook(
        &[
            "sign",
            "--style",
            "event",
            "--secret",
            "s",
            "--timestamp=-9223372036854775808",
        ],
        EVENT,
    );
    assert_refused(&out_of_range, "--timestamp", "i64::MIN");
    let ok = webhook(
        &[
            "sign",
            "--style",
            "domain",
            "--private-key",
            &private_key,
            "--domain",
            "WALLET",
            "--timestamp",
            "253402300799",
        ],
        WALLET,
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("9999-12-31T23:59:59Z"));
}
