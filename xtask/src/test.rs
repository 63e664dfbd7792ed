//! `cargo xtask test [--no-redis-install]`: the full CI gate.
//!
//! Steps, each announced by a `==> [n/5] ...` banner and stopping at the
//! first failure with a non-zero exit code:
//!
//! 1. ensure `redis-server` is available (see [`crate::redis`]); with
//!    `--no-redis-install` it is never installed, only looked for;
//! 2. `cargo fmt --all -- --check`;
//! 3. `cargo clippy --workspace --all-targets --all-features -- -D warnings`;
//! 4. `cargo test --workspace --all-features` (doc tests included); tests that need
//!    Redis start their own `redis-server` and fail, never skip, without it;
//! 5. `cargo doc --workspace --no-deps --all-features` with
//!    `RUSTDOCFLAGS=-D warnings`.
//!
//! Finishes with `xtask test: all steps passed` and a per-step timing summary.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Failure, TaskResult, banner, cargo, describe, redis, run_command};

/// Number of steps, for the `[n/TOTAL]` banners.
const STEPS: usize = 5;

/// Usage text for `cargo xtask test --help`.
const TEST_USAGE: &str = "\
Usage: cargo xtask test [--no-redis-install]

Ensures redis-server is available, then runs cargo fmt --check, clippy -D warnings,
the whole test suite (Redis tests included) and cargo doc (RUSTDOCFLAGS=-D warnings).

Options:
  --no-redis-install  Fail instead of installing redis-server with apt-get when it is missing";

/// Wall-clock time spent in each step that has run so far.
#[derive(Debug, Default)]
struct Timings {
    /// `(step name, elapsed)` in execution order.
    steps: Vec<(&'static str, Duration)>,
}

impl Timings {
    /// Prints one line per step plus the total.
    fn print(&self) {
        let width = self
            .steps
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut total = Duration::ZERO;
        for (i, (name, elapsed)) in self.steps.iter().enumerate() {
            total += *elapsed;
            println!(
                "  [{}/{STEPS}] {name:<width$}  {:>7.1}s",
                i + 1,
                elapsed.as_secs_f64()
            );
        }
        println!("        {:<width$}  {:>7.1}s", "total", total.as_secs_f64());
    }

    /// Runs step number `len + 1` called `name` and records how long it took.
    ///
    /// On failure nothing extra is printed: the banner above the failing
    /// output already names the step, and `main` prints the error line.
    fn step<T>(
        &mut self,
        name: &'static str,
        what: &str,
        body: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let number = self.steps.len() + 1;
        banner(&format!("[{number}/{STEPS}] {name}: {what}"));
        let start = Instant::now();
        let result = body();
        self.steps.push((name, start.elapsed()));
        result
    }

    /// Runs a command as the next step.
    fn command(&mut self, name: &'static str, mut cmd: Command) -> TaskResult {
        let what = describe(&cmd);
        self.step(name, &what, || run_command(&mut cmd))
    }
}

/// Runs the CI gate; `args` are the options after `test`.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let mut allow_install = true;
    for arg in args {
        match arg.to_str() {
            Some("--no-redis-install") => allow_install = false,
            Some("-h" | "--help") => {
                println!("{TEST_USAGE}");
                return Ok(());
            }
            _ => {
                return Err(Failure::usage(format!(
                    "unknown option `{}` for `test`",
                    arg.to_string_lossy()
                )));
            }
        }
    }

    let mut timings = Timings::default();

    let what = if allow_install {
        "ensure redis-server is available (installing it if possible)"
    } else {
        "ensure redis-server is available (--no-redis-install)"
    };
    timings.step("redis", what, || redis::ensure(allow_install))?;

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    timings.command("fmt", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    timings.command("clippy", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"]);
    timings.command("test", test)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    timings.command("doc", doc)?;

    println!("xtask test: all steps passed");
    timings.print();
    Ok(())
}
