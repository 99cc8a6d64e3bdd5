//! `soak` against Chorus: a few seconds of churn, sampled, judged, charted.

use std::process::{Command, Stdio};

use crate::helpers::start_chorus_with;

#[test]
fn a_short_soak_samples_the_server_and_sees_it_let_go() {
    // Rooms are unloaded soon after their last client leaves, so the soak can see it.
    let server = start_chorus_with(&["--room-idle-timeout", "1s"]);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let csv = out_dir.path().join("soak.csv");
    let chart = out_dir.path().join("soak.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_chorus-loadtest"))
        .args([
            "soak",
            "--url",
            &server.ws_url(),
            "--server-pid",
            &server.pid().to_string(),
            "--duration",
            "6s",
            "--warmup",
            "2s",
            "--rooms",
            "3",
            "--users-per-room",
            "3",
            "--visit",
            "1500ms",
            "--room-life",
            "3s",
            "--names-per-room",
            "2",
            "--sample-every",
            "500ms",
            "--settle",
            "30s",
            // A few seconds are too short to judge memory growth; that part is unit-tested.
            "--rss-growth-limit",
            "1000",
            "--csv",
        ])
        .arg(&csv)
        .arg("--chart")
        .arg(&chart)
        .args(["--json", "--no-progress"])
        .stderr(Stdio::inherit())
        .output()
        .expect("chorus-loadtest runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["verdict"]["pass"], true, "{report:#}");
    assert!(
        report["churn"]["completed"].as_u64() > Some(3),
        "{report:#}"
    );
    assert!(report["updates_sent"].as_u64() > Some(0), "{report:#}");
    let criteria = report["verdict"]["criteria"].as_array().expect("criteria");
    for name in [
        "open fds back to baseline",
        "loaded rooms back to baseline",
        "tasks back to baseline",
    ] {
        let criterion = criteria
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {report:#}"));
        assert_eq!(criterion["ok"], true, "{report:#}");
    }

    let csv = std::fs::read_to_string(&csv).expect("CSV written");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(rows.len() > 10, "{csv}");
    assert!(rows[0].contains(",baseline,"), "{csv}");
    // Rooms were loaded during the churn: the samples saw the server at work, not idle.
    let peak_rooms = rows
        .iter()
        .filter_map(|row| row.split(',').nth(4)?.parse::<u64>().ok())
        .max();
    assert!(peak_rooms > Some(0), "{csv}");
    // Chorus exports its task count: every sample has one, and the churn raised it.
    let tasks: Vec<u64> = rows
        .iter()
        .filter_map(|row| row.split(',').nth(6)?.parse::<u64>().ok())
        .collect();
    assert_eq!(tasks.len(), rows.len(), "{csv}");
    assert!(tasks.iter().max() > tasks.first(), "{csv}");
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(
        svg.contains("<svg") && svg.contains("open fds"),
        "chart lacks its panels"
    );
}
