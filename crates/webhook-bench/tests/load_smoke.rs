//! Runs the load benchmark binary end to end at smoke scale (a few seconds): every
//! scenario reports, the baselines were measured, the backlog drained completely, and the
//! JSON report has the fields the issue asks for.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("scenario {name} missing from {report:#}"))
}

#[test]
fn smoke_run_measures_every_scenario_next_to_its_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--smoke", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("| scenario | ops/s | p50 ms | p99 ms | baseline ops/s | ratio |"));
    for progress in [
        "[e2e-memory sender #1] warm-up",
        "[serve-redb service #1] warm-up",
        "[receiver layered #1]",
        "[backlog 2000]",
    ] {
        assert!(
            stderr.contains(progress),
            "progress lines on stderr:\n{stderr}"
        );
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["mode"], "smoke");
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);

    for name in ["e2e-memory", "e2e-redb", "serve-redb", "receiver"] {
        let row = scenario(&report, name);
        assert_eq!(row["status"], "measured", "{row:#}");
        let ops = row["ops_per_sec"].as_f64().unwrap();
        let baseline = row["baseline_ops_per_sec"].as_f64().unwrap();
        assert!(ops > 0.0 && baseline > 0.0, "{row:#}");
        let ratio = row["ratio"].as_f64().unwrap();
        assert!((ratio - ops / baseline).abs() < 1e-9, "{row:#}");
        assert!(row["p50_ms"].as_f64().unwrap() <= row["p99_ms"].as_f64().unwrap());
        assert_eq!(row["errors"], 0, "{row:#}");
        assert_eq!(row["baseline_errors"], 0, "{row:#}");
        assert!(row["target"].as_str().unwrap().starts_with("ratio ≥"));
    }
    let serve = scenario(&report, "serve-redb");
    assert!(
        serve["accepted_per_sec"].as_f64().unwrap() > 0.0,
        "{serve:#}"
    );
    assert_eq!(serve["connections"], 32);
    assert!(serve["body_bytes"].as_u64().unwrap() > 900, "{serve:#}");
    assert!(
        serve["commits_per_delivery"].as_f64().unwrap() > 0.0,
        "{serve:#}"
    );
    assert!(serve["delivery_p50_ms"].as_f64().is_some(), "{serve:#}");
    assert_eq!(serve["target"], "ratio ≥ 0.12");

    let redis = scenario(&report, "e2e-redis");
    let status = redis["status"].as_str().unwrap();
    assert!(
        status == "measured" || status.starts_with("skipped: "),
        "{redis:#}"
    );
    if status != "measured" {
        assert!(
            stdout.contains(status),
            "a skipped scenario says so in the table"
        );
    }

    let enqueue = scenario(&report, "backlog-enqueue");
    assert_eq!(enqueue["status"], "measured", "{enqueue:#}");
    assert_eq!(enqueue["count"], 2_000);
    assert_eq!(enqueue["publish_errors"], 0);
    assert!(enqueue["ops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(enqueue["peak_rss_mib"].as_f64().unwrap() > 1.0);
    assert!(enqueue["notes"].to_string().contains("scaled down to 2000"));
    let drain = scenario(&report, "backlog-drain");
    assert_eq!(drain["status"], "measured", "{drain:#}");
    assert_eq!(drain["delivered"], 2_000, "{drain:#}");
    assert_eq!(drain["missing"], 0);
    assert_eq!(drain["failed_outcomes"], 0);
    assert_eq!(drain["target_met"], true, "{drain:#}");
    assert!(drain["drain_secs"].as_f64().unwrap() > 0.0);
}

#[test]
fn unknown_scenarios_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--smoke", "--only", "e2e-nowhere"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scenario `e2e-nowhere`"));
}
