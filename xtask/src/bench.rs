//! `cargo xtask bench [--quick]`: runs the load benchmark example.
//!
//! Runs `cargo run --release --package webhook-examples --example load_bench -- <args>`
//! from the project root, passing every argument through unchanged and
//! propagating the example's exit code.

use std::ffi::OsString;

use crate::{TaskResult, banner, cargo, describe, run_command};

/// Runs the `load_bench` example with `args` passed through.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--package",
        "webhook-examples",
        "--example",
        "load_bench",
        "--",
    ])
    .args(args);
    banner(&format!("bench: {}", describe(&cmd)));
    run_command(&mut cmd)
}
