//! `cargo xtask test [--no-install]`: the full CI gate.
//!
//! Steps, each announced by a `==> [n/10] ...` banner and stopping at the
//! first failure with a non-zero exit code:
//!
//! 1. ensure `redis-server` is available (see [`crate::redis`]);
//! 2. ensure PostgreSQL's `initdb` and `pg_ctl` are available, on `PATH` or in Debian's
//!    `/usr/lib/postgresql/<major>/bin` (see [`crate::postgres`]);
//! 3. ensure openssl and Python's `cryptography` are available for the interop tests
//!    (see [`crate::interop`]);
//! 4. ensure Schemathesis is installed in `target/schemathesis-venv` (see
//!    [`crate::openapi`]);
//! 5. ensure `chromium` and `chromedriver` are available for the console's browser tests
//!    (see [`crate::browser`]); in steps 1 to 5, with `--no-install` (or its older name
//!    `--no-redis-install`) nothing is installed, only looked for, and a missing tool
//!    fails the step with the one command to run;
//! 6. `cargo fmt --all -- --check`;
//! 7. `cargo clippy --workspace --all-targets --all-features -- -D warnings`;
//! 8. `cargo test --workspace --all-features` (doc tests included) with
//!    `WEBHOOK_REQUIRE_INTEROP=1` and `WEBHOOK_REQUIRE_BROWSER=1`: tests that need Redis
//!    or PostgreSQL start their own servers, the interop tests call openssl and Python,
//!    the browser tests start their own chromedriver and headless Chromium, and each
//!    fails, never skips, without its tool;
//! 9. `openapi`: Schemathesis against the `/openapi.json` of a live `webhook serve`
//!    (every operation and phase, stateful links included; no 5xx, every response as
//!    documented), in a network namespace of its own (see [`crate::openapi`]);
//! 10. `cargo doc --workspace --no-deps --all-features` with
//!     `RUSTDOCFLAGS=-D warnings`.
//!
//! Finishes with `xtask test: all steps passed` and a per-step timing summary.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{
    Failure, TaskResult, banner, browser, cargo, describe, interop, openapi, postgres, redis,
    run_command,
};

/// Number of steps, for the `[n/TOTAL]` banners.
const STEPS: usize = 10;

/// Usage text for `cargo xtask test --help`.
const TEST_USAGE: &str = "\
Usage: cargo xtask test [--no-install]

Ensures redis-server, PostgreSQL, openssl, Python's cryptography, Schemathesis, chromium
and chromedriver are available (installing them with apt-get / pip when possible), then
runs cargo fmt --check, clippy -D warnings, the whole test suite (Redis, Postgres, interop
and browser tests included, never skipped), Schemathesis against a live `webhook serve`, and cargo doc
(RUSTDOCFLAGS=-D warnings).

Options:
  --no-install        Fail, naming the command to run, instead of installing a missing tool
  --no-redis-install  The older name of --no-install";

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

/// `--no-install` (`Some(false)`), nothing (`Some(true)`), or `--help` (`None`).
fn allow_install(task: &str, args: &[OsString]) -> Result<Option<bool>, Failure> {
    let mut allow_install = true;
    for arg in args {
        match arg.to_str() {
            Some("--no-install" | "--no-redis-install") => allow_install = false,
            Some("-h" | "--help") => return Ok(None),
            _ => {
                return Err(Failure::usage(format!(
                    "unknown option `{}` for `{task}`",
                    arg.to_string_lossy()
                )));
            }
        }
    }
    Ok(Some(allow_install))
}

fn schemathesis_what(allow_install: bool) -> &'static str {
    if allow_install {
        "ensure Schemathesis is installed (installing it with pip if possible)"
    } else {
        "ensure Schemathesis is installed (--no-install)"
    }
}

const OPENAPI_WHAT: &str = "Schemathesis against /openapi.json of a live `webhook serve` (every operation, stateful links)";

/// `cargo xtask openapi [--no-install]`: only the Schemathesis step.
pub(crate) fn run_openapi(args: &[OsString]) -> TaskResult {
    let Some(allow_install) = allow_install("openapi", args)? else {
        println!("Usage: cargo xtask openapi [--no-install]\n\n{OPENAPI_WHAT}.");
        return Ok(());
    };
    let start = Instant::now();
    banner(schemathesis_what(allow_install));
    let schemathesis = openapi::ensure(allow_install)?;
    banner(OPENAPI_WHAT);
    openapi::run(&schemathesis)?;
    println!(
        "xtask openapi: passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs the CI gate; `args` are the options after `test`.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    let Some(allow_install) = allow_install("test", args)? else {
        println!("{TEST_USAGE}");
        return Ok(());
    };

    let mut timings = Timings::default();

    let what = if allow_install {
        "ensure redis-server is available (installing it if possible)"
    } else {
        "ensure redis-server is available (--no-install)"
    };
    timings.step("redis", what, || redis::ensure(allow_install))?;
    let what = if allow_install {
        "ensure PostgreSQL (initdb, pg_ctl) is available (installing it if possible)"
    } else {
        "ensure PostgreSQL (initdb, pg_ctl) is available (--no-install)"
    };
    timings.step("postgres", what, || postgres::ensure(allow_install))?;
    let what = if allow_install {
        "ensure openssl and Python cryptography are available (installing them if possible)"
    } else {
        "ensure openssl and Python cryptography are available (--no-install)"
    };
    timings.step("interop", what, || interop::ensure(allow_install))?;
    let schemathesis = timings.step("schemathesis", schemathesis_what(allow_install), || {
        openapi::ensure(allow_install)
    })?;
    let what = if allow_install {
        "ensure chromium and chromedriver are available (installing them if possible)"
    } else {
        "ensure chromium and chromedriver are available (--no-install)"
    };
    timings.step("browser", what, || browser::ensure(allow_install))?;

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

    timings.command("test", test_command())?;

    timings.step("openapi", OPENAPI_WHAT, || openapi::run(&schemathesis))?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    timings.command("doc", doc)?;

    println!("xtask test: all steps passed");
    timings.print();
    Ok(())
}

/// `cargo test --workspace --all-features` with the interop tools and the browser required.
fn test_command() -> Command {
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"])
        .env(interop::REQUIRE_VAR, "1")
        .env(browser::REQUIRE_VAR, "1");
    test
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_step_requires_the_interop_tools_and_the_browser() {
        let command = test_command();
        for var in [interop::REQUIRE_VAR, browser::REQUIRE_VAR] {
            let require = command
                .get_envs()
                .find(|(key, _)| *key == var)
                .and_then(|(_, value)| value);
            assert_eq!(require, Some(std::ffi::OsStr::new("1")), "{var}");
        }
        assert_eq!(
            describe(&command),
            "WEBHOOK_REQUIRE_BROWSER=1 WEBHOOK_REQUIRE_INTEROP=1 cargo test --workspace --all-features"
        );
    }
}
