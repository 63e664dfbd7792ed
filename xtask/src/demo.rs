//! `cargo xtask demo [--scale N]`: runs the end-to-end demo example.
//!
//! Runs `cargo run --release --package webhook-examples --example demo -- <args>`
//! from the project root, passing every argument through unchanged and
//! propagating the example's exit code.

use std::ffi::OsString;

use crate::{TaskResult, banner, cargo, describe, run_command};

/// Runs the `demo` example with `args` passed through.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--package",
        "webhook-examples",
        "--example",
        "demo",
        "--",
    ])
    .args(args);
    banner(&format!("demo: {}", describe(&cmd)));
    run_command(&mut cmd)
}
