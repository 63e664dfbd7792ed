//! What the machine is and how much memory a process holds, read from `/proc` (Linux).
//!
//! ```
//! use webhook_bench::system;
//!
//! // On Linux the benchmark's own peak RSS is known; elsewhere it is `None`.
//! if cfg!(target_os = "linux") {
//!     assert!(system::peak_rss_kib(None).unwrap() > 0);
//! }
//! let machine = system::Machine::detect();
//! assert!(machine.cpus >= 1);
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::stats::Histogram;

/// A field of `/proc/<pid>/status` (or `/proc/self/status`) in KiB, such as `VmHWM`.
#[must_use]
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/status")),
        None => PathBuf::from("/proc/self/status"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// Peak resident set size (`VmHWM`) in KiB of a process (`None`: this one).
#[must_use]
pub fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// Current resident set size (`VmRSS`) in KiB of a process (`None`: this one).
#[must_use]
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// CPU time (user + system) a process has used so far (`None`: this one), from
/// `/proc/<pid>/stat`, assuming the usual 100 clock ticks per second.
#[must_use]
pub fn cpu_time(pid: Option<u32>) -> Option<std::time::Duration> {
    let path = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/stat")),
        None => PathBuf::from("/proc/self/stat"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis don't.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}

/// The one-minute load average, to tell a quiet machine from a busy one.
#[must_use]
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Median and 99th percentile (ms) of `rounds` 4 KiB writes, each followed by an fsync,
/// to a scratch file in `dir`: what one durable commit costs at least on this disk.
///
/// # Errors
/// When the file cannot be written.
pub fn fsync_latency(dir: &Path, rounds: usize) -> std::io::Result<(f64, f64)> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let file = tempfile::NamedTempFile::new_in(dir)?;
    let mut handle = file.as_file();
    let block = [0x5au8; 4096];
    let histogram = Histogram::new();
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        handle.write_all(&block)?;
        handle.sync_all()?;
        histogram.record(started.elapsed());
    }
    Ok((
        histogram.percentile_ms(50.0).unwrap_or_default(),
        histogram.percentile_ms(99.0).unwrap_or_default(),
    ))
}

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// The CPU model (`model name` in `/proc/cpuinfo`).
    pub cpu_model: String,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// The kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description; unknown parts are `"unknown"` or 0.
    #[must_use]
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|kib| kib.parse::<u64>().ok())
            })
            .map_or(0, |kib| kib / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned());
        Self {
            cpus,
            cpu_model,
            memory_mib,
            kernel,
        }
    }
}
