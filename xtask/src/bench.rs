//! `cargo xtask bench [--quick] [ARGS]`: runs the load benchmark.
//!
//! Runs `cargo run --release --package webhook-bench --features redis --bin load -- <args>`
//! from the project root, passing every argument through unchanged (`--quick` for the CI
//! smoke run, `--only e2e-redb,receiver` to re-run some scenarios, `--help` for the rest)
//! and propagating the benchmark's exit code. The benchmark prints progress on stderr, a
//! markdown table on stdout, and writes `target/bench/report.json`. The Redis scenarios
//! start their own `redis-server`, which must be installed (`cargo xtask test` installs
//! it); without it they fail loudly rather than being skipped.
//!
//! The criterion micro-benchmarks are plain `cargo bench -p webhook-bench`.

use std::ffi::OsString;

use crate::{TaskResult, banner, cargo, describe, run_command};

/// Runs the `load` binary of `webhook-bench` with `args` passed through.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--package",
        "webhook-bench",
        "--features",
        "redis",
        "--bin",
        "load",
        "--",
    ])
    .args(args);
    banner(&format!("bench: {}", describe(&cmd)));
    run_command(&mut cmd)
}
