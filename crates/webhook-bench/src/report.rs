//! The load benchmark's results: one [`Row`] per scenario, printed as a markdown table and
//! written as JSON (`target/bench/report.json`).
//!
//! ```
//! use webhook_bench::report::{Report, Row, Target};
//!
//! let row = Row::measured("e2e-memory", "publish → 2xx, memory store")
//!     .ops(6_000.0)
//!     .baseline("plain hyper client", 10_000.0)
//!     .target(Target::ratio_at_least(0.6));
//! assert_eq!(row.ratio(), Some(0.6));
//! assert_eq!(row.target_met(), Some(true));
//!
//! let report = Report::new("quick", vec![row, Row::skipped("e2e-redis", "Redis", "not built")]);
//! let table = report.markdown();
//! assert!(table.contains("| e2e-memory |"));
//! assert!(table.contains("skipped: not built"));
//! let json = report.to_json();
//! assert_eq!(json["scenarios"][0]["ratio"], 0.6);
//! assert_eq!(json["scenarios"][1]["status"], "skipped: not built");
//! ```

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::system::{self, Machine};

/// Whether a scenario ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It ran; its numbers are in the row.
    Measured,
    /// It did not run, for this reason (printed, never silent).
    Skipped(String),
    /// It ran and broke, with this reason.
    Failed(String),
}

impl Status {
    fn text(&self) -> String {
        match self {
            Self::Measured => "measured".to_owned(),
            Self::Skipped(why) => format!("skipped: {why}"),
            Self::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// A goal from the benchmark issue, and whether the run met it.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `ops/s ÷ baseline ops/s` at least this.
    RatioAtLeast(f64),
    /// A goal checked by the scenario itself: its text and whether it was met.
    Checked {
        /// What the goal says, e.g. "peak RSS < 300 MiB".
        text: String,
        /// Whether the run met it.
        met: bool,
    },
}

impl Target {
    /// `ratio ≥ minimum`.
    #[must_use]
    pub fn ratio_at_least(minimum: f64) -> Self {
        Self::RatioAtLeast(minimum)
    }

    /// A goal the scenario checked.
    #[must_use]
    pub fn checked(text: impl Into<String>, met: bool) -> Self {
        Self::Checked {
            text: text.into(),
            met,
        }
    }

    fn text(&self) -> String {
        match self {
            Self::RatioAtLeast(minimum) => format!("ratio ≥ {minimum:.2}"),
            Self::Checked { text, .. } => text.clone(),
        }
    }
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Short name, e.g. `e2e-redb`.
    pub name: String,
    /// What was measured.
    pub description: String,
    /// Whether it ran.
    pub status: Status,
    /// Operations per second.
    pub ops_per_sec: Option<f64>,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// What the baseline is.
    pub baseline: Option<String>,
    /// The baseline's operations per second, measured in the same run.
    pub baseline_ops_per_sec: Option<f64>,
    /// The goal.
    pub target: Option<Target>,
    /// Remarks for the table's last column.
    pub notes: Vec<String>,
    /// Further numbers for the JSON report.
    pub extra: Map<String, Value>,
}

impl Row {
    /// A measured row without numbers yet.
    #[must_use]
    pub fn measured(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            status: Status::Measured,
            ops_per_sec: None,
            p50_ms: None,
            p99_ms: None,
            baseline: None,
            baseline_ops_per_sec: None,
            target: None,
            notes: Vec::new(),
            extra: Map::new(),
        }
    }

    /// A scenario that did not run, and why.
    #[must_use]
    pub fn skipped(
        name: impl Into<String>,
        description: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Skipped(why.into()),
            ..Self::measured(name, description)
        }
    }

    /// A scenario that broke, and how.
    #[must_use]
    pub fn failed(
        name: impl Into<String>,
        description: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Failed(why.into()),
            ..Self::measured(name, description)
        }
    }

    /// Sets operations per second.
    #[must_use]
    pub fn ops(mut self, ops_per_sec: f64) -> Self {
        self.ops_per_sec = Some(ops_per_sec);
        self
    }

    /// Sets the latency percentiles (milliseconds).
    #[must_use]
    pub fn latency(mut self, p50_ms: Option<f64>, p99_ms: Option<f64>) -> Self {
        self.p50_ms = p50_ms;
        self.p99_ms = p99_ms;
        self
    }

    /// Sets the baseline and its rate.
    #[must_use]
    pub fn baseline(mut self, what: impl Into<String>, ops_per_sec: f64) -> Self {
        self.baseline = Some(what.into());
        self.baseline_ops_per_sec = Some(ops_per_sec);
        self
    }

    /// Sets the goal.
    #[must_use]
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Adds a remark.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds a number (or anything) to the JSON report.
    #[must_use]
    pub fn extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// `ops/s ÷ baseline ops/s`, when both are known.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        match (self.ops_per_sec, self.baseline_ops_per_sec) {
            (Some(ops), Some(base)) if base > 0.0 => Some(ops / base),
            _ => None,
        }
    }

    /// Whether the goal was met (`None`: no goal, or not measured).
    #[must_use]
    pub fn target_met(&self) -> Option<bool> {
        if self.status != Status::Measured {
            return None;
        }
        match self.target.as_ref()? {
            Target::RatioAtLeast(minimum) => self.ratio().map(|ratio| ratio >= *minimum),
            Target::Checked { met, .. } => Some(*met),
        }
    }

    fn to_json(&self) -> Value {
        let mut object = json!({
            "name": self.name,
            "description": self.description,
            "status": self.status.text(),
            "ops_per_sec": self.ops_per_sec,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "baseline": self.baseline,
            "baseline_ops_per_sec": self.baseline_ops_per_sec,
            "ratio": self.ratio(),
            "target": self.target.as_ref().map(Target::text),
            "target_met": self.target_met(),
            "notes": self.notes,
        });
        if let Some(fields) = object.as_object_mut() {
            for (key, value) in &self.extra {
                fields.insert(key.clone(), value.clone());
            }
        }
        object
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `quick`, `full` or `smoke`.
    pub mode: String,
    /// Where it ran.
    pub machine: Machine,
    /// When it started (RFC 3339).
    pub started: String,
    /// The one-minute load average when it started.
    pub load_before: Option<f64>,
    /// The one-minute load average when it ended.
    pub load_after: Option<f64>,
    /// fsync latency on the scratch disk (p50, p99 in ms), when probed.
    pub fsync_ms: Option<(f64, f64)>,
    /// One row per scenario.
    pub rows: Vec<Row>,
}

impl Report {
    /// A report of `rows`, stamped with the machine and the load average now.
    #[must_use]
    pub fn new(mode: impl Into<String>, rows: Vec<Row>) -> Self {
        Self {
            mode: mode.into(),
            machine: Machine::detect(),
            started: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            load_before: system::load_average(),
            load_after: None,
            fsync_ms: None,
            rows,
        }
    }

    /// The markdown table: one line per scenario, then the machine.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| scenario | ops/s | p50 ms | p99 ms | baseline ops/s | ratio | target | met | notes |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---|---|---|\n");
        for row in &self.rows {
            let met = match row.target_met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let mut notes = Vec::new();
            if row.status != Status::Measured {
                notes.push(row.status.text());
            }
            notes.extend(row.notes.iter().cloned());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.name,
                number(row.ops_per_sec, 0),
                number(row.p50_ms, 2),
                number(row.p99_ms, 2),
                number(row.baseline_ops_per_sec, 0),
                number(row.ratio(), 2),
                row.target.as_ref().map(Target::text).unwrap_or_default(),
                met,
                notes.join("; "),
            );
        }
        let _ = writeln!(
            out,
            "\nMode `{}`, {} CPUs ({}), {} MiB RAM, Linux {}; load average {} at start, {} at end.",
            self.mode,
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.memory_mib,
            self.machine.kernel,
            number(self.load_before, 2),
            number(self.load_after, 2),
        );
        if let Some((p50, p99)) = self.fsync_ms {
            let _ = writeln!(
                out,
                "4 KiB write + fsync on the scratch disk: p50 {p50:.2} ms, p99 {p99:.2} ms."
            );
        }
        out
    }

    /// The JSON report: `{mode, machine, started, load_before, load_after, scenarios: [...]}`,
    /// each scenario with `name`, `ops_per_sec`, `p50_ms`, `p99_ms`, `baseline_ops_per_sec`,
    /// `ratio` and more.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode,
            "started": self.started,
            "machine": {
                "cpus": self.machine.cpus,
                "cpu_model": self.machine.cpu_model,
                "memory_mib": self.machine.memory_mib,
                "kernel": self.machine.kernel,
            },
            "load_before": self.load_before,
            "load_after": self.load_after,
            "fsync_p50_ms": self.fsync_ms.map(|(p50, _)| p50),
            "fsync_p99_ms": self.fsync_ms.map(|(_, p99)| p99),
            "scenarios": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        })
    }

    /// Writes [`Report::to_json`] to `path`, creating its directory.
    ///
    /// # Errors
    /// When the directory or file cannot be written.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

/// A number with thousands separators (0 decimals) or with `decimals` decimals; empty
/// when unknown.
fn number(value: Option<f64>, decimals: usize) -> String {
    let Some(value) = value else {
        return String::new();
    };
    if decimals > 0 {
        return format!("{value:.decimals$}");
    }
    let rounded = format!("{value:.0}");
    let (sign, digits) = rounded
        .strip_prefix('-')
        .map_or(("", rounded.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(Some(1_234_567.4), 0), "1,234,567");
        assert_eq!(number(Some(999.0), 0), "999");
        assert_eq!(number(Some(-1000.0), 0), "-1,000");
        assert_eq!(number(Some(0.456), 2), "0.46");
        assert_eq!(number(None, 0), "");
    }

    #[test]
    fn a_missed_target_is_flagged() {
        let row = Row::measured("r", "d")
            .ops(80.0)
            .baseline("b", 100.0)
            .target(Target::ratio_at_least(0.85));
        assert_eq!(row.target_met(), Some(false));
        let report = Report::new("quick", vec![row]);
        assert!(report.markdown().contains("**no**"));
        assert_eq!(report.to_json()["scenarios"][0]["target_met"], false);
    }

    #[test]
    fn skipped_rows_have_no_verdict() {
        let row = Row::skipped("x", "d", "why").target(Target::ratio_at_least(0.25));
        assert_eq!(row.target_met(), None);
    }
}
