//! The fuzz corpus as ordinary tests, on the stable toolchain: every committed input under
//! `fuzz/corpus/<target>/` (the seeds) and `fuzz/regressions/<target>/` (inputs that once
//! crashed a target, kept as regressions) goes through the same harness function the
//! cargo-fuzz target calls (`webhook_e2e::fuzzing`). A replay that finds no input at all
//! fails rather than passing vacuously. The fuzzer itself runs with
//! `cargo xtask fuzz --seconds N` (see RELIABILITY.md).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use webhook_e2e::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_corpus_input_replays_without_a_crash() {
    let summary = fuzzing::replay(&fuzz_dir().join("corpus")).unwrap_or_else(|e| panic!("{e}"));
    println!("corpus (target: inputs, accepted): {summary:?}");
    for (target, _) in TARGETS {
        let replayed = summary.get(*target).copied().unwrap_or_default();
        assert!(replayed.inputs > 0, "fuzz/corpus/{target} has no seed");
        // Every target has seeds its parser accepts, so fuzzing starts from valid input
        // (for the verify targets: past the timestamp window and the signature check).
        assert!(replayed.accepted > 0, "no seed of {target} is accepted");
    }
}

#[test]
fn every_regression_input_replays_without_a_crash() {
    let summary =
        fuzzing::replay(&fuzz_dir().join("regressions")).unwrap_or_else(|e| panic!("{e}"));
    println!("regressions (target: inputs, accepted): {summary:?}");
    let total: usize = summary.values().map(|replayed| replayed.inputs).sum();
    assert!(total > 0, "no regression input was replayed");
}

/// A replay that runs nothing fails: a missing directory, an empty one, target
/// directories without files, or a directory named after no target.
#[test]
fn a_replay_that_finds_no_input_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(matches!(
        fuzzing::replay(&root.join("missing")),
        Err(fuzzing::ReplayError::Unreadable(_))
    ));
    assert!(matches!(
        fuzzing::replay(root),
        Err(fuzzing::ReplayError::NoInputs(_))
    ));
    std::fs::create_dir(root.join("verify_event")).unwrap();
    std::fs::create_dir(root.join("verify_event").join("nested")).unwrap();
    assert!(matches!(
        fuzzing::replay(root),
        Err(fuzzing::ReplayError::NoInputs(_))
    ));
    std::fs::write(root.join("verify_event").join("one"), b"not a request").unwrap();
    let summary = fuzzing::replay(root).unwrap();
    assert_eq!(
        summary["verify_event"],
        fuzzing::Replayed {
            inputs: 1,
            accepted: 0
        }
    );
    std::fs::create_dir(root.join("no_such_target")).unwrap();
    assert!(matches!(
        fuzzing::replay(root),
        Err(fuzzing::ReplayError::UnknownTarget(_))
    ));
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
