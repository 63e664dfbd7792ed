//! Reads the known-answer files in `tests/data/` (ring's test-file style: `Name = value`
//! lines, records separated by blank lines, `#` comments).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

/// One record of a test file.
#[derive(Debug)]
pub struct Record {
    /// 1-based record number, for messages.
    pub number: usize,
    fields: HashMap<String, String>,
}

impl Record {
    /// A field's value; panics (failing the test) when absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("record #{} has no field {name}", self.number))
    }

    /// A `BodyHex` style field, decoded.
    pub fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.get(name)).unwrap()
    }
}

/// All records of `tests/data/<file>`, which must hold at least one.
pub fn records(file: &str) -> Vec<Record> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    for chunk in text.split("\n\n") {
        let fields: HashMap<String, String> = chunk
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (name, value) = line.split_once('=').unwrap();
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        if !fields.is_empty() {
            out.push(Record {
                number: out.len() + 1,
                fields,
            });
        }
    }
    assert!(!out.is_empty(), "{file} holds no records");
    out
}

/// A header map from `(name, value)` pairs.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> http::HeaderMap {
    pairs
        .into_iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}
