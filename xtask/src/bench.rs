//! `cargo xtask bench [--quick] [ARGS]`: runs the load benchmark;
//! `cargo xtask bench --callgrind [--count N] [--paths a,b]`: instruction counts.
//!
//! Without `--callgrind` it runs
//! `cargo run --release --package webhook-bench --features redis --bin load -- <args>`
//! from the project root, passing every argument through unchanged (`--quick` for the CI
//! smoke run, `--only e2e-redb,receiver` to re-run some scenarios, `--help` for the rest)
//! and propagating the benchmark's exit code. The benchmark prints progress on stderr, a
//! markdown table on stdout, and writes `target/bench/report.json`. The Redis scenarios
//! start their own `redis-server`, which must be installed (`cargo xtask test` installs
//! it); without it they fail loudly rather than being skipped.
//!
//! **`--callgrind`** builds the `callgrind` binary of `webhook-bench` (release) and runs
//! each of its in-process paths under `valgrind --tool=callgrind` for a fixed number of
//! requests or deliveries (`--count`, default 4,000 for the receiver paths and 2,000 for
//! the end-to-end ones), collecting only inside the measured phase
//! (`--toggle-collect=*callgrind_measured_phase*`: signing, start-up and the warm-up are
//! left out). It prints a markdown table of instructions per request or delivery, with
//! the ratio each pair predicts (baseline ÷ ours: what the load benchmark's ratio would
//! be if instructions were all that counted), and keeps the callgrind files in
//! `target/bench/callgrind/` for `callgrind_annotate`. Instruction counts do not move with
//! the machine's load, so they judge a change where wall-clock ratios on a shared machine
//! cannot. It needs valgrind (`apt-get install valgrind`) and says so when it is missing.
//!
//! The criterion micro-benchmarks are plain `cargo bench -p webhook-bench`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Failure, TaskResult, banner, cargo, describe, project_root, run_command};

/// The callgrind paths, their default counts, and the label of what one unit is.
const PATHS: [(&str, u64); 10] = [
    ("receiver-bare", 4_000),
    ("receiver-layer", 4_000),
    ("receiver-value", 4_000),
    ("receiver-typed", 4_000),
    ("middleware-bare", 4_000),
    ("middleware-layer", 4_000),
    ("middleware-value", 4_000),
    ("middleware-typed", 4_000),
    ("e2e-baseline", 2_000),
    ("e2e-sender", 2_000),
];

/// The pairs compared: (baseline, ours, what they stand for). The last one's ratio is not
/// printed: its baseline does almost nothing, so only the instructions added count.
const PAIRS: [(&str, &str, &str); 5] = [
    (
        "receiver-bare",
        "receiver-layer",
        "receiver: bare hyper handler ÷ WebhookLayer (verify + dedup), HTTP client and server",
    ),
    (
        "receiver-bare",
        "receiver-value",
        "receiver: bare ÷ layer with a handler reading `data` as `Value`",
    ),
    (
        "receiver-bare",
        "receiver-typed",
        "receiver: bare ÷ layer with a handler decoding `WebhookEvent<Transaction>`",
    ),
    (
        "e2e-baseline",
        "e2e-sender",
        "e2e-memory: plain hyper client ÷ sender (memory store), same counting server",
    ),
    (
        "middleware-bare",
        "middleware-layer",
        "middleware alone, in process (no HTTP): handler called directly ÷ behind the layer",
    ),
];

/// No single path may take longer than this under valgrind.
const PATH_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the load benchmark with `args` passed through, or the callgrind mode when the
/// first argument is `--callgrind`.
pub(crate) fn run(args: &[OsString]) -> TaskResult {
    if args.iter().any(|arg| arg == "--callgrind") {
        return callgrind(args);
    }
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

/// The options of the callgrind mode.
#[derive(Debug, PartialEq)]
struct Options {
    /// Overrides every path's count.
    count: Option<u64>,
    /// Only these paths (all when empty).
    paths: Vec<String>,
}

fn parse_options(args: &[OsString]) -> Result<Options, Failure> {
    let mut options = Options {
        count: None,
        paths: Vec::new(),
    };
    let mut args = args.iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--callgrind" => {}
            "--count" => {
                let value = args
                    .next()
                    .ok_or_else(|| Failure::usage("--count needs a number"))?;
                let count = value
                    .parse::<u64>()
                    .ok()
                    .filter(|&count| count > 0)
                    .ok_or_else(|| {
                        Failure::usage(format!("--count must be a positive number, not {value}"))
                    })?;
                options.count = Some(count);
            }
            "--paths" => {
                let value = args
                    .next()
                    .ok_or_else(|| Failure::usage("--paths needs a comma-separated list"))?;
                for path in value.split(',').filter(|path| !path.is_empty()) {
                    if !PATHS.iter().any(|(known, _)| *known == path) {
                        return Err(Failure::usage(format!(
                            "unknown callgrind path `{path}`; known: {}",
                            PATHS.map(|(name, _)| name).join(", ")
                        )));
                    }
                    options.paths.push(path.to_owned());
                }
            }
            other => {
                return Err(Failure::usage(format!(
                    "unknown option `{other}` for `bench --callgrind` (known: --count N, --paths a,b)"
                )));
            }
        }
    }
    Ok(options)
}

fn callgrind(args: &[OsString]) -> TaskResult {
    let options = parse_options(args)?;
    match Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        _ => {
            return Err(Failure::new(
                "valgrind was not found: install it (`sudo apt-get install valgrind` on Debian \
                 or Ubuntu, `brew install valgrind` where supported) and run \
                 `cargo xtask bench --callgrind` again",
            ));
        }
    }
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "webhook-bench",
        "--bin",
        "callgrind",
    ]);
    banner(&format!("bench --callgrind: {}", describe(&build)));
    run_command(&mut build)?;
    let binary = target_dir().join("release").join("callgrind");
    let out_dir = target_dir().join("bench").join("callgrind");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", out_dir.display())))?;

    let mut measured: Vec<(&str, u64, u64)> = Vec::new();
    for (path, default_count) in PATHS {
        if !options.paths.is_empty() && !options.paths.iter().any(|p| p == path) {
            continue;
        }
        let count = options.count.unwrap_or(default_count);
        let out_file = out_dir.join(format!("{path}.out"));
        let mut cmd = Command::new("valgrind");
        cmd.current_dir(project_root())
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg("--toggle-collect=*callgrind_measured_phase*")
            .arg(&binary)
            .arg(path)
            .arg(count.to_string());
        banner(&format!("bench --callgrind: {}", describe(&cmd)));
        let started = Instant::now();
        run_bounded(&mut cmd, PATH_TIMEOUT)?;
        let instructions = read_totals(&out_file)?;
        eprintln!(
            "{path}: {} instructions per unit ({count} in {:.0} s)",
            instructions / count,
            started.elapsed().as_secs_f64()
        );
        measured.push((path, count, instructions));
    }

    println!();
    println!("| path | count | instructions per request or delivery |");
    println!("|---|---:|---:|");
    for (path, count, instructions) in &measured {
        println!("| {path} | {count} | {} |", thousands(instructions / count));
    }
    let per_unit = |name: &str| {
        measured
            .iter()
            .find(|(path, _, _)| *path == name)
            .map(|(_, count, instructions)| instructions / count)
    };
    let mut header = false;
    for (baseline, ours, what) in PAIRS {
        let (Some(base), Some(mine)) = (per_unit(baseline), per_unit(ours)) else {
            continue;
        };
        if !header {
            println!();
            println!("| pair | baseline | ours | added | ratio (baseline ÷ ours) |");
            println!("|---|---:|---:|---:|---:|");
            header = true;
        }
        let ratio = if baseline.starts_with("middleware") {
            "—".to_owned()
        } else {
            format!("{:.2}", base as f64 / mine.max(1) as f64)
        };
        println!(
            "| {what} | {} | {} | {} | {ratio} |",
            thousands(base),
            thousands(mine),
            thousands(mine.saturating_sub(base)),
        );
    }
    println!();
    println!(
        "callgrind files: {} (`callgrind_annotate --inclusive=yes <file>`)",
        out_dir.display()
    );
    Ok(())
}

/// Runs `cmd` (stdin null, output inherited), killing it after `timeout`.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> TaskResult {
    let shown = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Failure::new(format!("could not start `{shown}`: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(Failure::new(format!("`{shown}` failed ({status})")));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::new(format!(
                    "`{shown}` did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(Failure::new(format!("waiting for `{shown}`: {e}"))),
        }
    }
}

/// The instruction total of a callgrind output file (its `totals:` or `summary:` line).
fn read_totals(file: &Path) -> Result<u64, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
    parse_totals(&text).ok_or_else(|| {
        Failure::new(format!(
            "{} has no `totals:` or `summary:` line",
            file.display()
        ))
    })
}

fn parse_totals(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|first| first.parse().ok())
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// The target directory: `$CARGO_TARGET_DIR`, else `target/` in the project root.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_parse_counts_and_paths() {
        assert_eq!(
            parse_options(&args(&["--callgrind"])).ok(),
            Some(Options {
                count: None,
                paths: Vec::new()
            })
        );
        assert_eq!(
            parse_options(&args(&[
                "--callgrind",
                "--count",
                "100",
                "--paths",
                "receiver-bare,receiver-layer"
            ]))
            .ok(),
            Some(Options {
                count: Some(100),
                paths: vec!["receiver-bare".to_owned(), "receiver-layer".to_owned()]
            })
        );
        assert!(parse_options(&args(&["--callgrind", "--count", "0"])).is_err());
        assert!(parse_options(&args(&["--callgrind", "--paths", "nope"])).is_err());
        assert!(parse_options(&args(&["--callgrind", "--quick"])).is_err());
    }

    #[test]
    fn totals_come_from_the_totals_or_summary_line() {
        let file =
            "version: 1\ncreator: callgrind-3.22.0\nevents: Ir\nfn=main\n5 10\ntotals: 123456\n";
        assert_eq!(parse_totals(file), Some(123_456));
        assert_eq!(parse_totals("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(parse_totals("events: Ir\n"), None);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
