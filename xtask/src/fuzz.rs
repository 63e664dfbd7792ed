//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: runs every cargo-fuzz target for a
//! bounded time.
//!
//! Steps:
//!
//! 1. makes sure `cargo-fuzz` is installed, running `cargo install cargo-fuzz --locked`
//!    when it is missing (and saying so);
//! 2. writes any missing seed into `fuzz/corpus/` (`cargo run -p webhook-e2e --bin
//!    fuzz_seeds`; existing seeds are kept);
//! 3. for each target (every `fuzz/fuzz_targets/*.rs`, or those named with `--target`):
//!    `cargo fuzz run -O <target> fuzz/target/corpus/<target> fuzz/corpus/<target> --
//!    -max_total_time=N`. New inputs the fuzzer finds go to the scratch directory
//!    `fuzz/target/corpus/<target>` (ignored by git), so the committed corpus only changes
//!    by hand; crashes go to `fuzz/artifacts/<target>/`.
//!
//! cargo-fuzz needs nightly-only compiler flags (`-Z sanitizer`, coverage passes). The
//! project builds on stable, so this task sets `RUSTC_BOOTSTRAP=1`, which lets the stable
//! compiler accept them; nothing else is built with it.
//!
//! When a target crashes, the task stops with the artifact's path: copy the input to
//! `fuzz/regressions/<target>/`, where `cargo xtask test` replays it on stable
//! (`tests/tests/fuzz_corpus.rs`), and fix the parser.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use crate::{Failure, TaskResult, banner, cargo, describe, project_root, run_command};

/// Usage text for `cargo xtask fuzz --help`.
const FUZZ_USAGE: &str = "\
Usage: cargo xtask fuzz [--seconds N] [--target NAME]...

Runs each cargo-fuzz target in fuzz/ for N seconds (default 60) with libFuzzer's
-max_total_time, after installing cargo-fuzz if it is missing and writing missing seeds.
Uses RUSTC_BOOTSTRAP=1 so that the stable toolchain accepts cargo-fuzz's nightly flags.

Options:
  --seconds N    Time per target, in seconds (default 60)
  --target NAME  Fuzz only this target (repeatable); default: every fuzz/fuzz_targets/*.rs";

/// Seconds per target unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 60;

/// Runs the fuzz task; `args` are the options after `fuzz`.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let mut seconds = DEFAULT_SECONDS;
    let mut only = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--seconds") => {
                let value = args
                    .next()
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&v| v > 0)
                    .ok_or_else(|| Failure::usage("--seconds needs a positive number"))?;
                seconds = value;
            }
            Some("--target") => {
                let value = args
                    .next()
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| Failure::usage("--target needs a name"))?;
                only.push(value.to_owned());
            }
            Some("-h" | "--help") => {
                println!("{FUZZ_USAGE}");
                return Ok(());
            }
            _ => {
                return Err(Failure::usage(format!(
                    "unknown option `{}` for `fuzz`",
                    arg.to_string_lossy()
                )));
            }
        }
    }

    let fuzz_dir = project_root().join("fuzz");
    let mut targets = targets(&fuzz_dir)?;
    if !only.is_empty() {
        if let Some(unknown) = only.iter().find(|name| !targets.contains(name)) {
            return Err(Failure::usage(format!(
                "no fuzz target `{unknown}` (targets: {})",
                targets.join(", ")
            )));
        }
        targets.retain(|name| only.contains(name));
    }

    ensure_cargo_fuzz()?;

    let mut seeds = cargo();
    seeds.args([
        "run",
        "--quiet",
        "--package",
        "webhook-e2e",
        "--bin",
        "fuzz_seeds",
    ]);
    banner(&format!("fuzz: seeds: {}", describe(&seeds)));
    run_command(&mut seeds)?;

    let started = Instant::now();
    for (n, target) in targets.iter().enumerate() {
        let scratch = fuzz_dir.join("target/corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", scratch.display())))?;
        let mut fuzz = cargo();
        fuzz.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "-O", target])
            .arg(&scratch)
            .arg(Path::new("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1");
        banner(&format!(
            "fuzz: [{}/{}] {target} for {seconds} s: {}",
            n + 1,
            targets.len(),
            describe(&fuzz)
        ));
        if let Err(failure) = run_command(&mut fuzz) {
            return Err(Failure::new(format!(
                "fuzz target `{target}` failed ({failure}); its crashing input is in \
                 fuzz/artifacts/{target}/: copy it to fuzz/regressions/{target}/ so that \
                 `cargo xtask test` replays it, then fix the parser"
            )));
        }
    }
    println!(
        "xtask fuzz: {} targets, {seconds} s each, no crash ({:.0} s in all)",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The targets: the file stems of `fuzz/fuzz_targets/*.rs`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, Failure> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", dir.display())))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Failure::new(format!(
            "no fuzz targets in {}",
            dir.display()
        )));
    }
    Ok(names)
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz --version` does not work.
fn ensure_cargo_fuzz() -> TaskResult {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if installed {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    banner(&format!(
        "fuzz: cargo-fuzz is not installed; installing it: {}",
        describe(&install)
    ));
    run_command(&mut install)
}
