//! Timing-safe comparisons, checked on the source: measuring time in a test on a shared
//! 2-core machine proves nothing either way, so this test audits the code instead.
//!
//! - HMAC tags are compared with `subtle::ConstantTimeEq`; ECDSA and Ed25519 signatures are
//!   checked only by ring's `UnparsedPublicKey::verify` (constant time in ring).
//! - Outside those functions, no library source compares a signature, tag, MAC, digest or
//!   secret with `==`, `!=`, `.eq(`, `starts_with` or `ends_with`. Lines that mention such a
//!   name next to a comparison are listed below with the reason they are harmless; any other
//!   one fails the test.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Lines allowed to mention a secret-ish name beside a comparison, and why.
const ALLOWED: &[(&str, &str)] = &[
    (
        ".filter(|&len| len == expected_len)",
        "compares the decoded signature's length, which is public",
    ),
    (
        "if style == Style::Domain && !self.secrets.is_empty() {",
        "compares a style, not a secret",
    ),
    (
        "Style::Domain if config.secrets.len() != 1 || !all_fit => {",
        "counts the configured keys",
    ),
];

/// Names that hold authentication material. (Lease and claim tokens are not secrets: the
/// process that makes one is the one that checks it.)
const SECRET_NAMES: &[&str] = &["signature", "tag", "mac", "digest", "secret", "expected"];
const COMPARISONS: &[&str] = &["==", "!=", ".eq(", "starts_with(", "ends_with("];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn library_sources() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    files.sort();
    files
}

/// The numbered code lines of a file, without trailing `//` comments, up to its first
/// `#[cfg(test)]` (unit tests may compare whatever they like).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| !line.trim_start().starts_with("#[cfg(test)]"))
        .map(|(n, line)| {
            let code = match line.find("//") {
                // Keep `//` inside string literals such as URLs.
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            (n + 1, code.trim())
        })
        .filter(|(_, code)| !code.is_empty())
}

/// The lowercase words of the identifiers in `code`: `expected_len` and `expectedLen` give
/// `expected` and `len`.
fn words(code: &str) -> impl Iterator<Item = String> + '_ {
    code.split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(|identifier| {
            let mut words = Vec::new();
            let mut current = String::new();
            let mut previous_lower = false;
            for c in identifier.chars() {
                if c.is_ascii_uppercase() && previous_lower {
                    words.push(std::mem::take(&mut current));
                }
                previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                current.push(c.to_ascii_lowercase());
            }
            words.push(current);
            words
        })
        .filter(|word| !word.is_empty())
}

#[test]
fn secrets_are_compared_only_in_constant_time() {
    assert!(words("if expectedLen == len").any(|w| w == "expected"));
    assert!(words("a.signature_text != b").any(|w| w == "signature"));
    let files = library_sources();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut suspicious = Vec::new();
    let mut allowed_seen = vec![false; ALLOWED.len()];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, code) in code_lines(&text) {
            let compares = COMPARISONS.iter().any(|op| code.contains(op));
            let secretish = words(code).any(|word| {
                SECRET_NAMES
                    .iter()
                    .any(|name| word == *name || word.strip_suffix('s') == Some(name))
            });
            if !(compares && secretish) {
                continue;
            }
            if let Some(at) = ALLOWED.iter().position(|(line, _)| code == *line) {
                allowed_seen[at] = true;
                continue;
            }
            suspicious.push(format!("{}:{number}: {code}", file.display()));
        }
    }
    assert!(
        suspicious.is_empty(),
        "comparisons near secrets that are not known to be harmless (use subtle or ring, or \
         add the line to ALLOWED with a reason):\n{}",
        suspicious.join("\n")
    );
    for ((line, _), seen) in ALLOWED.iter().zip(allowed_seen) {
        assert!(seen, "ALLOWED lists a line that no longer exists: {line}");
    }
}

#[test]
fn verification_goes_through_constant_time_primitives() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/webhook-core/src");
    let read = |path: &str| std::fs::read_to_string(core.join(path)).unwrap();
    let function = |text: &str, name: &str| -> String {
        let start = text
            .find(&format!("fn {name}"))
            .unwrap_or_else(|| panic!("fn {name} not found"));
        let end = text[start..]
            .find("\n    }\n")
            .map_or(text.len(), |e| start + e);
        text[start..end].to_owned()
    };

    let hmac = function(&read("keys/hmac.rs"), "matches");
    assert!(
        hmac.contains("ct_eq"),
        "HMAC tags must be compared with subtle:\n{hmac}"
    );
    assert!(!hmac.contains("=="), "{hmac}");
    let ecdsa = function(&read("keys/ecdsa.rs"), "verify");
    assert!(ecdsa.contains("UnparsedPublicKey"), "{ecdsa}");
    let ed25519 = function(&read("keys/ed25519.rs"), "verify(");
    assert!(ed25519.contains("UnparsedPublicKey"), "{ed25519}");

    // The schemes verify only through those functions.
    for scheme in ["scheme/event_hmac.rs", "scheme/standard.rs"] {
        let text = read(scheme);
        assert!(
            text.contains("ExpectedTags::new(") && text.contains(".matches("),
            "{scheme} must compare HMAC tags through ExpectedTags::matches"
        );
    }
    assert!(
        read("scheme/standard.rs").contains("public.verify("),
        "v1a must use Ed25519PublicKey::verify"
    );
    let domain = read("scheme/domain_ecdsa.rs");
    assert!(
        domain.contains("key.verify("),
        "domain style must use EcdsaPublicKey::verify"
    );
}
