//! The fuzz corpus as ordinary tests, on the stable toolchain: every committed input under
//! `fuzz/corpus/<target>/` (the seeds) and `fuzz/regressions/<target>/` (inputs that once
//! crashed a target, kept as regressions) goes through the same harness function the
//! cargo-fuzz target calls (`webhook_e2e::fuzzing`). The fuzzer itself runs with
//! `cargo xtask fuzz --seconds N` (see RELIABILITY.md).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use webhook_e2e::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `<fuzz>/<kind>/<target>/`, by target.
fn inputs(kind: &str) -> BTreeMap<String, Vec<PathBuf>> {
    let mut found = BTreeMap::new();
    let Ok(targets) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return found;
    };
    for target in targets {
        let target = target.unwrap().path();
        if !target.is_dir() {
            continue;
        }
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&target)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        found.insert(name, files);
    }
    found
}

/// Runs every input of `kind`; returns (inputs run, inputs accepted) per target.
fn replay(kind: &str) -> BTreeMap<String, (usize, usize)> {
    let mut summary = BTreeMap::new();
    for (target, files) in inputs(kind) {
        let mut accepted = 0;
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let result = std::panic::catch_unwind(|| fuzzing::run(&target, &data));
            match result {
                Ok(Some(true)) => accepted += 1,
                Ok(Some(false)) => {}
                Ok(None) => panic!("{kind}/{target} is not a fuzz target (see fuzzing::TARGETS)"),
                Err(_) => panic!("{} crashes its target", file.display()),
            }
        }
        summary.insert(target, (files.len(), accepted));
    }
    summary
}

#[test]
fn every_corpus_input_replays_without_a_crash() {
    let summary = replay("corpus");
    println!("corpus (target: inputs, accepted): {summary:?}");
    for (target, _) in TARGETS {
        let (inputs, accepted) = summary.get(*target).copied().unwrap_or_default();
        assert!(inputs > 0, "fuzz/corpus/{target} has no seed");
        // Every target has seeds its parser accepts, so fuzzing starts from valid input
        // (for the verify targets: past the timestamp window and the signature check).
        assert!(accepted > 0, "no seed of {target} is accepted");
    }
}

#[test]
fn every_regression_input_replays_without_a_crash() {
    let summary = replay("regressions");
    println!("regressions (target: inputs, accepted): {summary:?}");
}

#[test]
fn the_fuzz_crate_and_the_harness_list_the_same_targets() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[workspace]"),
        "fuzz/ must stay a workspace of its own"
    );
    let mut files: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    names.sort();
    assert_eq!(
        files, names,
        "fuzz/fuzz_targets/ and fuzzing::TARGETS differ"
    );
    for name in &names {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("fuzzing::{name}(data)")),
            "fuzz_targets/{name}.rs must call fuzzing::{name}"
        );
    }
}
