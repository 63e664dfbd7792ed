//! The fuzz harness: one function per cargo-fuzz target, shared by the fuzzer and by the
//! corpus replay test.
//!
//! Each `fuzz/fuzz_targets/<target>.rs` includes this file (`#[path]`) and calls the
//! function of the same name; `tests/tests/fuzz_corpus.rs` replays every committed input
//! through [`run`] on stable. A function must never panic on any input; where a parser
//! accepts, the harness also checks a property that should hold (round trips, key
//! encodings, secrets absent from `Debug` and error texts), so the fuzzer looks for wrong
//! answers as well as crashes.
//!
//! Request inputs (the `verify_*` targets) are text-like:
//!
//! ```text
//! 1700000000                      <- "now" (Unix seconds); anything else means 1700000000
//! x-webhook-timestamp: 1700000000 <- header lines `name: value`, until an empty line
//! x-webhook-signature: 9de6…
//!                                 <- empty line
//! {"id":…}                        <- the body: every remaining byte
//! ```
//!
//! The keys the verifiers trust are fixed: those of the core test vectors
//! (`crates/webhook-core/tests/data/`), so the seeded corpus starts past the signature check.
//!
//! ```
//! use webhook_e2e::fuzzing;
//!
//! let input = b"1700000000\nx-webhook-timestamp: 1700000000\nx-webhook-signature: 9de6d3ce8fbf3fd15abb80a50160352ca7131aca6dd521c2b0fc76d0698cb2bc\n\n";
//! // Authentic (vector #1 of event_hmac.txt), but an empty body is not an event.
//! assert!(!fuzzing::verify_event(input));
//! assert_eq!(fuzzing::run("verify_event", input), Some(false));
//! assert_eq!(fuzzing::run("no_such_target", input), None);
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use webhook_core::domain::{
    self, ApprovalSet, Domain, Envelope, Resource, Transaction, Wallet, format_timestamp,
};
use webhook_core::event::Event;
use webhook_core::keys::{
    EcdsaPublicKey, EcdsaSigningKey, Ed25519PublicKey, Ed25519SigningKey, HmacSecret,
};
use webhook_core::scheme::{StandardSigningKey, StandardVerifyingKey};
use webhook_core::timestamp::{DEFAULT_TOLERANCE, check_window, parse_unix_seconds};
use webhook_core::{SigningKeys, Style, TrustedKeys, Verified, VerifiedMessage, VerifyError};
use webhook_sender::RetryPolicy;
use webhook_sender::retry::parse_retry_after;

/// "Now" when an input does not name one: the timestamp of several core test vectors.
pub const DEFAULT_NOW: i64 = 1_700_000_000;

/// A harness function: true when the input was accepted (parsed, or verified).
pub type Harness = fn(&[u8]) -> bool;

/// Every target: its name (the directory under `fuzz/corpus/` and the file under
/// `fuzz/fuzz_targets/`) and its function.
pub const TARGETS: &[(&str, Harness)] = &[
    ("verify_event", verify_event),
    ("verify_domain", verify_domain),
    ("verify_standard", verify_standard),
    ("domain_envelope", domain_envelope),
    ("event_json", event_json),
    ("resource_json", resource_json),
    ("key_decoding", key_decoding),
    ("unix_timestamp", unix_timestamp),
    ("retry_after", retry_after),
];

/// Runs the target called `name` on `data`: `Some(accepted)`, or `None` for an unknown name.
#[must_use]
pub fn run(name: &str, data: &[u8]) -> Option<bool> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, function)| function(data))
}

/// What replaying one target's inputs found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Inputs run.
    pub inputs: usize,
    /// Inputs the target accepted.
    pub accepted: usize,
}

/// Why a replay failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The directory could not be read (missing, not a directory, unreadable).
    Unreadable(String),
    /// The directory holds no input at all: a replay that runs nothing proves nothing.
    NoInputs(String),
    /// A subdirectory is not the name of a target in [`TARGETS`].
    UnknownTarget(String),
    /// An input made its target panic.
    Crash(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(what) => write!(f, "cannot read {what}"),
            Self::NoInputs(dir) => write!(f, "{dir} holds no input: nothing was replayed"),
            Self::UnknownTarget(dir) => write!(f, "{dir} is not a fuzz target (see TARGETS)"),
            Self::Crash(file) => write!(f, "{file} crashes its target"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replays every file under `dir/<target>/` through its target (`fuzz/corpus` or
/// `fuzz/regressions`): per target, how many inputs ran and how many were accepted.
///
/// # Errors
/// [`ReplayError`] when `dir` cannot be read, names an unknown target, holds no input at
/// all, or an input panics its target.
pub fn replay(
    dir: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, Replayed>, ReplayError> {
    let unreadable = |path: &std::path::Path, e: std::io::Error| {
        ReplayError::Unreadable(format!("{}: {e}", path.display()))
    };
    let mut summary = std::collections::BTreeMap::new();
    for target in std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))? {
        let target = target.map_err(|e| unreadable(dir, e))?.path();
        if !target.is_dir() {
            continue;
        }
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !TARGETS.iter().any(|(known, _)| *known == name) {
            return Err(ReplayError::UnknownTarget(target.display().to_string()));
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&target).map_err(|e| unreadable(&target, e))? {
            let path = entry.map_err(|e| unreadable(&target, e))?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut replayed = Replayed::default();
        for file in &files {
            let data = std::fs::read(file).map_err(|e| unreadable(file, e))?;
            let accepted = std::panic::catch_unwind(|| run(&name, &data))
                .map_err(|_| ReplayError::Crash(file.display().to_string()))?;
            replayed.inputs += 1;
            replayed.accepted += usize::from(accepted == Some(true));
        }
        summary.insert(name, replayed);
    }
    if summary.values().all(|replayed| replayed.inputs == 0) {
        return Err(ReplayError::NoInputs(dir.display().to_string()));
    }
    Ok(summary)
}

/// Event-style secrets the verifier trusts: those of `event_hmac.txt` records #1 to #3.
pub const EVENT_SECRETS: [&str; 3] = ["whsecret", "k", "Jq3vN8xR2mW5tY7uB1cE4gH6kL9pS0dZ"];
/// Domain-style public keys the verifier trusts: keys 1 and 2 of `ecdsa_p256.txt`.
pub const DOMAIN_PUBLIC_KEYS: [&str; 2] = [
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEj3CYbyQmHPZQVeD045QfAIrltrufibsGnY5jYo5H5jN/IasWNaiBq0z6nU/EfC3FVTEFpyur5phZj+TC7Hdc8Q==",
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvh6ffI+/Wo3oTqFTylsFbt7z/CTxCTQuMGourqmRqs29m5hg8WXEKaDRa3WYnbXu/x97TJjIAp509wcX+sREQg==",
];
/// The private key of [`DOMAIN_PUBLIC_KEYS`]`[0]` (base64 PKCS#8), for signing seeds.
pub const DOMAIN_PRIVATE_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8HATJNspk0Z25aKWNb4xtqjL1IQTQBnwTY6323qVEtuhRANCAASPcJhvJCYc9lBV4PTjlB8AiuW2u5+JuwadjmNijkfmM38hqxY1qIGrTPqdT8R8LcVVMQWnK6vmmFmP5MLsd1zx";
/// Standard Webhooks keys the verifier trusts: the published `v1` example secret and the
/// `v1a` public key of `standard_v1a.txt`.
pub const STANDARD_KEYS: [&str; 2] = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whpk_Z319tI71AscPunzjlO2aqwHcByShxUy1zs4i5oEXYdM=",
];
/// The private key of [`STANDARD_KEYS`]`[1]`, for signing seeds.
pub const STANDARD_V1A_PRIVATE_KEY: &str = "whsk_x87WFGyEuZeGbny7TlapiaLGupT3EzHdnztykfPAFTk=";

/// A request input split into its parts.
#[derive(Debug)]
pub struct RequestInput<'a> {
    /// The verifier's "now", Unix seconds.
    pub now: i64,
    /// The headers, in order, duplicates kept; lines that are not valid headers are skipped.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

/// Splits a request input (see the module docs).
#[must_use]
pub fn parse_request(data: &[u8]) -> RequestInput<'_> {
    let (first, mut rest) = split_line(data);
    let now = std::str::from_utf8(first)
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_NOW);
    let mut headers = HeaderMap::new();
    loop {
        if rest.is_empty() {
            break;
        }
        let (line, after) = split_line(rest);
        rest = after;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    RequestInput {
        now,
        headers,
        body: rest,
    }
}

/// Encodes a request input: the inverse of [`parse_request`] for well-formed parts.
#[must_use]
pub fn encode_request(now: i64, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{now}\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[]),
    }
}

fn trusted(style: Style) -> &'static TrustedKeys {
    static EVENT: OnceLock<TrustedKeys> = OnceLock::new();
    static DOMAIN: OnceLock<TrustedKeys> = OnceLock::new();
    static STANDARD: OnceLock<TrustedKeys> = OnceLock::new();
    let (cell, texts): (_, &[&str]) = match style {
        Style::Event => (&EVENT, &EVENT_SECRETS),
        Style::Domain => (&DOMAIN, &DOMAIN_PUBLIC_KEYS),
        Style::Standard => (&STANDARD, &STANDARD_KEYS),
    };
    cell.get_or_init(|| {
        TrustedKeys::parse(style, texts.iter().copied())
            .unwrap_or_else(|e| panic!("fixed {style} keys must parse: {e}"))
    })
}

/// Verifies a request input with the fixed keys of `style` and checks what comes back.
fn verify(style: Style, data: &[u8]) -> bool {
    let input = parse_request(data);
    let keys = trusted(style);
    let result = keys.verify(&input.headers, input.body, input.now, DEFAULT_TOLERANCE);
    let authenticated = keys.authenticate(&input.headers, input.body, input.now, DEFAULT_TOLERANCE);
    match result {
        Ok(verified) => {
            check_verified(style, &verified, input.now);
            assert_eq!(
                authenticated,
                Ok(verified.timestamp),
                "verify accepted what authenticate refused"
            );
            true
        }
        Err(error) => {
            check_error(&error, data);
            if let Err(auth_error) = authenticated {
                assert_eq!(auth_error, error, "verify and authenticate disagree");
            }
            false
        }
    }
}

fn check_verified(style: Style, verified: &Verified, now: i64) {
    assert_eq!(verified.style, style);
    assert!(
        check_window(verified.timestamp, now, DEFAULT_TOLERANCE).is_ok(),
        "accepted a timestamp outside the window"
    );
    match &verified.message {
        VerifiedMessage::Event(event) => {
            assert_eq!(verified.dedup_key, event.idempotency_key);
        }
        VerifiedMessage::Domain { envelope, resource } => {
            let json = envelope
                .payload_bytes()
                .unwrap_or_else(|e| panic!("verified payload does not decode: {e}"));
            assert_eq!(
                domain::dedup_key(&json).as_deref(),
                Ok(verified.dedup_key.as_str())
            );
            assert_eq!(
                Resource::from_json(&envelope.domain, &json).as_ref(),
                Ok(resource)
            );
        }
        VerifiedMessage::Standard { id, .. } => assert_eq!(&verified.dedup_key, id),
        _ => {}
    }
}

/// Checks an error's status and that its text shows no secret the input did not carry
/// itself (a parser message may quote the body, which is the sender's own data).
fn check_error(error: &VerifyError, input: &[u8]) {
    let status = error.status().as_u16();
    assert!(
        status == 400 || status == 401,
        "bad input answered {status}: {error}"
    );
    assert!(!error.code().is_empty());
    let text = error.to_string();
    for secret in EVENT_SECRETS
        .iter()
        .copied()
        .chain([STANDARD_KEYS[0], STANDARD_V1A_PRIVATE_KEY])
        .filter(|secret| secret.len() >= 8)
        .filter(|secret| !contains(input, secret.as_bytes()))
    {
        assert!(!text.contains(secret), "error text shows a secret: {text}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Target `verify_event`: event-style headers (`X-Webhook-Timestamp`, `X-Webhook-Signature`,
/// hex) and event JSON, through `TrustedKeys::verify` and `authenticate`.
#[must_use]
pub fn verify_event(data: &[u8]) -> bool {
    verify(Style::Event, data)
}

/// Target `verify_domain`: the domain-style `Signature` header (base64 DER ECDSA) and the
/// `{domain, timestamp, payload}` envelope.
#[must_use]
pub fn verify_domain(data: &[u8]) -> bool {
    verify(Style::Domain, data)
}

/// Target `verify_standard`: Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature` with `v1`/`v1a` entries).
#[must_use]
pub fn verify_standard(data: &[u8]) -> bool {
    verify(Style::Standard, data)
}

/// Target `domain_envelope`: the envelope JSON, its RFC 3339 timestamp, its base64 payload,
/// the typed resource and the dedup key.
#[must_use]
pub fn domain_envelope(data: &[u8]) -> bool {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(data) else {
        return false;
    };
    let reencoded = serde_json::to_vec(&envelope).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        serde_json::from_slice::<Envelope>(&reencoded).ok().as_ref(),
        Some(&envelope),
        "envelope does not round-trip"
    );
    if let Ok(unix) = envelope.unix_timestamp() {
        // A whole-second UTC time formats and parses back to itself.
        if let Ok(at) = time::OffsetDateTime::from_unix_timestamp(unix) {
            let text = format_timestamp(at);
            // Only the one form is accepted (SPEC §2), so what parses is what we write.
            assert_eq!(
                text, envelope.timestamp,
                "a second form of the same time parsed"
            );
            let again = Envelope {
                timestamp: text,
                ..envelope.clone()
            };
            if at.year() >= 0 && at.year() <= 9999 {
                assert_eq!(again.unix_timestamp(), Ok(unix), "timestamp round trip");
            }
        }
    }
    let decoded = envelope.decode_resource();
    if let Ok(json) = envelope.payload_bytes() {
        let _ = domain::dedup_key(&json);
        assert_eq!(
            decoded.is_ok(),
            Resource::from_json(&envelope.domain, &json).is_ok()
        );
    } else {
        assert!(decoded.is_err());
    }
    if let Err(error) = decoded {
        assert_eq!(error.status().as_u16(), 400);
    }
    true
}

/// Target `event_json`: the event-style event object; what parses serializes back to an
/// equal event.
#[must_use]
pub fn event_json(data: &[u8]) -> bool {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return false;
    };
    round_trip(&event);
    let _ = event.event_type.is_known();
    true
}

/// Target `resource_json`: the Transaction, Wallet and ApprovalSet objects, the unknown-domain
/// fallback and the dedup key, on the same bytes.
#[must_use]
pub fn resource_json(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(transaction) = serde_json::from_slice::<Transaction>(data) {
        round_trip(&transaction);
        let _ = transaction.status.is_terminal();
        accepted = true;
    }
    if let Ok(wallet) = serde_json::from_slice::<Wallet>(data) {
        round_trip(&wallet);
        let _ = wallet.status.is_terminal();
        accepted = true;
    }
    if let Ok(approvals) = serde_json::from_slice::<ApprovalSet>(data) {
        round_trip(&approvals);
        let _ = approvals.status.is_terminal();
        accepted = true;
    }
    for domain in [
        Domain::Transaction,
        Domain::Wallet,
        Domain::Approval,
        Domain::from("PAYOUT"),
    ] {
        if let Err(error) = Resource::from_json(&domain, data) {
            assert_eq!(error.status().as_u16(), 400);
        }
    }
    let _ = domain::dedup_key(data);
    accepted
}

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_vec(value).unwrap_or_else(|e| panic!("does not serialize: {e}"));
    let again: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "serialized form does not parse back ({e}): {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&again, value, "value does not round-trip");
}

/// Target `key_decoding`: base64, SPKI and PKCS#8 DER, `whsec_`/`whpk_`/`whsk_` key forms.
/// Keys that load re-encode to an equal key (SPKI DER exactly to its input), and the `Debug`
/// of secret keys is the same whatever the secret.
#[must_use]
pub fn key_decoding(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(key) = EcdsaPublicKey::from_spki_der(data) {
        assert_eq!(key.to_spki_der(), data, "SPKI DER round trip");
        accepted = true;
    }
    if let Ok(key) = EcdsaSigningKey::from_pkcs8_der(data) {
        assert_eq!(key.pkcs8_der(), data);
        same_debug(&key, reference_ecdsa());
        accepted = true;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return accepted;
    };
    if let Ok(key) = EcdsaPublicKey::from_spki_base64(text) {
        assert_eq!(
            EcdsaPublicKey::from_spki_base64(&key.to_spki_base64()).as_ref(),
            Ok(&key),
            "SPKI base64 round trip"
        );
        accepted = true;
    }
    if let Ok(key) = EcdsaSigningKey::from_pkcs8_base64(text) {
        same_debug(&key, reference_ecdsa());
        accepted = true;
    }
    if let Ok(secret) = HmacSecret::from_whsec(text) {
        let again = HmacSecret::from_whsec(&secret.to_whsec())
            .unwrap_or_else(|e| panic!("to_whsec does not parse back: {e}"));
        assert_eq!(
            again.expose_bytes(),
            secret.expose_bytes(),
            "whsec round trip"
        );
        same_debug(&secret, reference_hmac());
        accepted = true;
    }
    if let Ok(secret) = HmacSecret::from_utf8(text) {
        assert_eq!(secret.expose_bytes(), text.as_bytes());
        same_debug(&secret, reference_hmac());
    }
    if let Ok(key) = Ed25519PublicKey::from_whpk(text) {
        assert_eq!(
            Ed25519PublicKey::from_whpk(&key.to_whpk()).as_ref(),
            Ok(&key),
            "whpk round trip"
        );
        accepted = true;
    }
    if let Ok(key) = Ed25519SigningKey::from_whsk(text) {
        let again = Ed25519SigningKey::from_whsk(&key.to_whsk())
            .unwrap_or_else(|e| panic!("to_whsk does not parse back: {e}"));
        assert_eq!(again.public_key(), key.public_key(), "whsk round trip");
        same_debug(&key, reference_ed25519());
        accepted = true;
    }
    let _ = StandardVerifyingKey::parse(text);
    if let Ok(key) = StandardSigningKey::parse(text) {
        same_debug(&key, &reference_standard(&key));
    }
    for style in [Style::Event, Style::Domain, Style::Standard] {
        let _ = TrustedKeys::parse(style, text.split(','));
        if let Ok(keys) = SigningKeys::parse(style, text.split(',')) {
            let reference = match &keys {
                SigningKeys::Event(secrets) => {
                    SigningKeys::Event(vec![reference_hmac().clone(); secrets.len()])
                }
                SigningKeys::Domain(_) => SigningKeys::Domain(Box::new(reference_ecdsa().clone())),
                SigningKeys::Standard(keys) => {
                    SigningKeys::Standard(keys.iter().map(reference_standard).collect())
                }
            };
            same_debug(&keys, &reference);
        }
    }
    accepted
}

/// Asserts that a secret-holding value prints exactly as a reference value of the same shape
/// with another secret: its `Debug` cannot show the secret.
fn same_debug<T: std::fmt::Debug>(value: &T, reference: &T) {
    assert_eq!(
        format!("{value:?}"),
        format!("{reference:?}"),
        "Debug depends on the secret"
    );
}

fn reference_hmac() -> &'static HmacSecret {
    static KEY: OnceLock<HmacSecret> = OnceLock::new();
    KEY.get_or_init(|| HmacSecret::from_utf8("reference").unwrap_or_else(|e| panic!("{e}")))
}

fn reference_ecdsa() -> &'static EcdsaSigningKey {
    static KEY: OnceLock<EcdsaSigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        EcdsaSigningKey::from_pkcs8_base64(DOMAIN_PRIVATE_KEY).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn reference_ed25519() -> &'static Ed25519SigningKey {
    static KEY: OnceLock<Ed25519SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        Ed25519SigningKey::from_whsk(STANDARD_V1A_PRIVATE_KEY).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn reference_standard(like: &StandardSigningKey) -> StandardSigningKey {
    match like {
        StandardSigningKey::Symmetric(_) => StandardSigningKey::Symmetric(reference_hmac().clone()),
        StandardSigningKey::Asymmetric(_) => {
            StandardSigningKey::Asymmetric(reference_ed25519().clone())
        }
    }
}

/// Target `unix_timestamp`: the Unix-seconds header parser and the window check.
#[must_use]
pub fn unix_timestamp(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    for now in [DEFAULT_NOW, 0, i64::MAX, i64::MIN] {
        let _ = check_window(now, DEFAULT_NOW, DEFAULT_TOLERANCE);
        let _ = check_window(DEFAULT_NOW, now, Duration::MAX);
    }
    let Ok(seconds) = parse_unix_seconds(text) else {
        return false;
    };
    assert!(seconds >= 0 && text.len() <= 12, "accepted {text:?}");
    assert_eq!(
        text.trim_start_matches('0').parse::<i64>().unwrap_or(0),
        seconds
    );
    let _ = check_window(seconds, DEFAULT_NOW, DEFAULT_TOLERANCE);
    let _ = check_window(seconds, i64::MIN, Duration::MAX);
    true
}

/// Target `retry_after`: the sender's `Retry-After` parser (delay-seconds and HTTP dates),
/// and the policy that caps it; also retry policies as stored (JSON).
#[must_use]
pub fn retry_after(data: &[u8]) -> bool {
    let policies = [
        RetryPolicy::domain_default(),
        RetryPolicy::event_default(),
        RetryPolicy::schedule([Duration::ZERO, Duration::from_millis(10)]),
    ];
    if let Ok(policy) = serde_json::from_slice::<RetryPolicy>(data) {
        exercise_policy(&policy, Some(Duration::from_secs(7)));
        exercise_policy(&policy, Some(Duration::MAX));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let now = time::OffsetDateTime::from_unix_timestamp(DEFAULT_NOW)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut accepted = false;
    for at in [now, time::OffsetDateTime::UNIX_EPOCH] {
        let hint = parse_retry_after(text, at);
        if let Some(hint) = hint {
            accepted = true;
            for policy in &policies {
                let delay = policy.next_delay(1, Some(hint));
                if let Some(delay) = delay {
                    assert!(
                        delay <= policy.longest_delay(),
                        "Retry-After beyond the policy's cap"
                    );
                }
            }
        }
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            assert!(hint.is_some(), "delay-seconds refused: {text:?}");
        }
    }
    accepted
}

fn exercise_policy(policy: &RetryPolicy, hint: Option<Duration>) {
    let attempts = policy.max_attempts();
    let longest = policy.longest_delay();
    for attempt in [
        0,
        1,
        2,
        3,
        31,
        64,
        attempts,
        attempts.saturating_add(1),
        u32::MAX,
    ] {
        if let Some(delay) = policy.delay_before(attempt) {
            assert!(
                attempt >= 1 && attempt <= attempts,
                "attempt {attempt} of {attempts}"
            );
            assert!(delay <= longest, "a wait longer than the longest delay");
        }
        let _ = policy.next_delay(attempt, hint);
    }
}
