//! Project automation for the webhook toolkit, run as `cargo xtask <task>`.
//!
//! The `xtask` alias lives in `.cargo/config.toml`. This crate is std-only so
//! that it builds in a couple of seconds on a fresh machine. Tasks:
//!
//! - `test [--no-install]`: the full CI gate. Makes sure `redis-server`, PostgreSQL, openssl,
//!   Python's `cryptography`, Schemathesis, `chromium` and `chromedriver` are available
//!   (installing them with `apt-get` / `pip` when possible, saying so), then runs
//!   `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test` (interop and browser
//!   tests required), Schemathesis against a live `webhook serve` and `cargo doc` (with
//!   `RUSTDOCFLAGS=-D warnings`),
//!   stopping at the first failure. See [`test`](mod@test).
//! - `openapi [--no-install]`: only the Schemathesis step of `test`. See
//!   [`openapi`](mod@openapi).
//! - `demo [--scale N]`: runs the `demo` example of `webhook-examples` in
//!   release mode, passing arguments through. See [`demo`](mod@demo).
//! - `bench [--quick]`: runs the `load` benchmark binary of `webhook-bench` in
//!   release mode, passing arguments through; `bench --callgrind` counts instructions
//!   per request or delivery under valgrind instead. See [`bench`](mod@bench).
//! - `fuzz [--seconds N] [--target NAME]...`: runs every cargo-fuzz target in `fuzz/`
//!   for N seconds each (installing cargo-fuzz if missing, with `RUSTC_BOOTSTRAP=1` on
//!   stable). See [`fuzz`](mod@fuzz).
//! - `help`: prints usage.
//!
//! Cargo is invoked through the `CARGO` environment variable (set by cargo
//! itself when running `cargo xtask`), falling back to `cargo` on `PATH`, and
//! always with the project root as the working directory.

mod bench;
mod browser;
mod demo;
mod fuzz;
mod interop;
mod openapi;
mod postgres;
mod redis;
mod system;
mod test;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Usage text printed by `cargo xtask help` and on usage errors.
const USAGE: &str = "\
Usage: cargo xtask <TASK> [OPTIONS]

Tasks:
  test [--no-install]        CI gate: ensure redis-server, PostgreSQL, the interop tools, Schemathesis and chromium,
                             then fmt, clippy, tests, Schemathesis against a live `webhook serve`, docs
  openapi [--no-install]     Only the Schemathesis step of `test`
  demo [--scale N]           Run the demo example in release mode (args passed through)
  bench [--quick]            Run the load benchmarks in release mode; markdown table + target/bench/report.json
  bench --callgrind          Instructions per request/delivery under valgrind (--count N, --paths a,b)
  fuzz [--seconds N]         Run each cargo-fuzz target for N seconds (default 60; --target NAME)
  help                       Print this message";

/// Why a task failed: the message to print and the process exit code to use.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Human-readable explanation, printed to stderr as `error: <message>`.
    message: String,
    /// Process exit code; never 0.
    code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self::with_code(message, 1)
    }

    /// A failure with a specific exit code (0 is replaced by 1).
    pub(crate) fn with_code(message: impl Into<String>, code: u8) -> Self {
        Self {
            message: message.into(),
            code: code.max(1),
        }
    }

    /// A usage error (exit code 2); the usage text is printed after the message.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::with_code(format!("{}\n\n{USAGE}", message.into()), 2)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Result type returned by every task.
pub(crate) type TaskResult = Result<(), Failure>;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();

    let result = match task {
        None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(task) => match task.to_str() {
            Some("help" | "-h" | "--help") => {
                println!("{USAGE}");
                Ok(())
            }
            Some("test") => test::run(&rest),
            Some("openapi") => test::run_openapi(&rest),
            Some(openapi::IN_NAMESPACE_TASK) => openapi::in_namespace(&rest),
            Some("demo") => demo::run(&rest),
            Some("bench") => bench::run(&rest),
            Some("fuzz") => fuzz::run(&rest),
            _ => Err(Failure::usage(format!(
                "unknown task `{}`",
                task.to_string_lossy()
            ))),
        },
    };

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A `cargo` command (via `$CARGO`, falling back to `cargo`) run from the project root.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(project_root());
    cmd
}

/// Renders a command for banners and error messages, e.g.
/// `RUSTDOCFLAGS=-D warnings cargo doc --workspace`.
///
/// Only the file name of the program is shown, so `$CARGO` pointing into a
/// toolchain directory still reads as `cargo`. Environment overrides are
/// shown as `KEY=value` prefixes, except `PATH`, which is too long to be useful.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut text = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value
            && key != "PATH"
        {
            text.push_str(&key.to_string_lossy());
            text.push('=');
            text.push_str(&value.to_string_lossy());
            text.push(' ');
        }
    }
    let program = Path::new(cmd.get_program());
    text.push_str(
        &program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy(),
    );
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` to completion with inherited stdout/stderr and a null stdin.
///
/// Returns a [`Failure`] carrying the child's exit code (or 1 if it was
/// killed by a signal) when it does not succeed, or when it cannot be started.
pub(crate) fn run_command(cmd: &mut Command) -> TaskResult {
    let shown = describe(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Failure::new(format!("could not start `{shown}`: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .filter(|&c| c != 0)
        .unwrap_or(1);
    Err(Failure::with_code(
        format!("`{shown}` failed ({status})"),
        code,
    ))
}

/// Prints a `==> ...` step banner to stdout.
pub(crate) fn banner(text: &str) {
    println!("==> {text}");
}
