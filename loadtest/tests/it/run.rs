//! `run` against Chorus and against the bare relay, with and without injected loss.

use crate::helpers::{
    assert_all_delivered, assert_succeeded, count, loadtest, start_chorus, start_relay,
};

const SHORT_RUN: &[&str] = &[
    "run",
    "--rooms",
    "2",
    "--users",
    "4",
    "--typists",
    "2",
    "--rate",
    "20",
    "--warmup",
    "300ms",
    "--duration",
    "2s",
    "--drain-timeout",
    "10s",
    "--no-progress",
];

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn chorus_delivers_every_update_exactly_once_and_documents_converge() {
    let server = start_chorus();
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let args = with(
        SHORT_RUN,
        &[
            "--url",
            &url,
            "--verify",
            "--presence-rate",
            "2",
            "--server-pid",
            &pid,
        ],
    );
    let out = loadtest(&strs(&args));
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(count(r, "/connections/synced"), 8, "{r:#}");
    assert!(count(r, "/updates/sent") > 0, "{r:#}");
    assert_all_delivered(r);
    assert!(count(r, "/updates/latency_ms/count") > 0, "{r:#}");
    assert!(count(r, "/presence/delivered") > 0, "{r:#}");
    assert_eq!(count(r, "/presence/final_state_missing"), 0, "{r:#}");
    assert_eq!(r["verify"]["ok"], true, "{r:#}");
    assert_eq!(count(r, "/verify/rooms_checked"), 2, "{r:#}");
    assert!(r["servers"][0]["rss_kib_after"].as_u64().is_some(), "{r:#}");
    // Both sides' CPU per delivery, for comparing the generator's cost with the server's.
    assert!(r["generator"]["cpu_us_per_delivery"].is_f64(), "{r:#}");
    assert!(r["servers"][0]["cpu_us_per_delivery"].is_f64(), "{r:#}");
}

#[test]
fn users_spread_over_several_urls_report_cross_node_latency() {
    let server = start_chorus();
    let url = server.ws_url();
    // Both "nodes" are the same process here: this checks the spreading and the split figures,
    // not Redis (that needs two nodes and a Redis, see scenarios/x-cross-node.toml).
    let args = with(SHORT_RUN, &["--url", &url, "--url", &url]);
    let out = loadtest(&strs(&args));
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(count(r, "/updates/lost"), 0, "{r:#}");
    assert!(
        count(r, "/updates/cross_node_latency_ms/count") > 0,
        "{r:#}"
    );
    assert!(
        count(r, "/updates/cross_node_latency_ms/count") < count(r, "/updates/latency_ms/count"),
        "{r:#}"
    );
}

#[test]
fn the_bare_relay_is_lossless() {
    let relay = start_relay(&[]);
    let url = relay.ws_url();
    let args = with(SHORT_RUN, &["--url", &url, "--verify"]);
    let out = loadtest(&strs(&args));
    let r = &out.report;
    assert_succeeded(&out);
    assert!(count(r, "/updates/delivered") > 0, "{r:#}");
    assert_eq!(count(r, "/updates/lost"), 0, "{r:#}");
    assert_eq!(r["verify"]["ok"], true, "{r:#}");
}

#[test]
fn verify_fails_when_the_relay_drops_updates() {
    let relay = start_relay(&["--drop-every", "5"]);
    let url = relay.ws_url();
    let args = with(
        SHORT_RUN,
        &["--url", &url, "--verify", "--drain-timeout", "1s"],
    );
    let out = loadtest(&strs(&args));
    let r = &out.report;
    assert_eq!(
        out.status.code(),
        Some(2),
        "verification must fail: {r:#}\n{}",
        out.stderr
    );
    assert!(count(r, "/updates/lost") > 0, "{r:#}");
    assert_eq!(r["verify"]["ok"], false, "{r:#}");
    assert_eq!(r["drain_complete"], false, "{r:#}");
}

#[test]
fn unreachable_servers_fail_with_a_clear_error() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chorus-loadtest"))
        .args([
            "run",
            "--url",
            &format!("ws://127.0.0.1:{port}/ws"),
            "--users",
            "2",
            "--no-progress",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no connection succeeded"), "{stderr}");
}

/// Updates of 40,000 characters leave Chorus in 16 KiB fragments, which every receiver gathers
/// whole; with `--verify` every user also applies them, so the whole path is checked by
/// convergence as well.
#[test]
fn updates_that_arrive_in_fragments_are_matched_and_applied() {
    let server = start_chorus();
    let url = server.ws_url();
    for verify in [false, true] {
        let mut args = with(
            SHORT_RUN,
            &[
                "--url",
                &url,
                "--rooms",
                "1",
                "--rate",
                "5",
                "--update-chars",
                "40000",
            ],
        );
        if verify {
            args.push("--verify".to_owned());
        }
        let out = loadtest(&strs(&args));
        let r = &out.report;
        assert_succeeded(&out);
        assert_all_delivered(r);
        assert_eq!(count(r, "/updates/unknown"), 0, "{r:#}");
        assert_eq!(count(r, "/malformed"), 0, "{r:#}");
        // Every byte of every fragment is counted, kept or not.
        assert!(
            count(r, "/bytes/received") > 40_000 * count(r, "/updates/delivered"),
            "{r:#}"
        );
        if verify {
            assert_eq!(r["verify"]["ok"], true, "{r:#}");
        }
    }
}

/// Typists that send several updates in one write (`--burst`) see Chorus merge them into one
/// update before fanning it out (`crates/chorus-server/src/burst.rs`). Every update inside a
/// merged one must count as delivered: a tally that matched an update by its first struct alone
/// counted all but the first of each burst as lost.
#[test]
fn updates_a_server_merged_count_as_delivered() {
    let server = start_chorus();
    let url = server.ws_url();
    for verify in [false, true] {
        let mut args = with(
            SHORT_RUN,
            &[
                "--url",
                &url,
                "--rooms",
                "1",
                "--typists",
                "1",
                "--rate",
                "10",
                "--burst",
                "6",
            ],
        );
        if verify {
            args.push("--verify".to_owned());
        }
        let out = loadtest(&strs(&args));
        let r = &out.report;
        assert_succeeded(&out);
        assert_all_delivered(r);
        // The server did merge: the test is only meaningful if it did.
        assert!(count(r, "/updates/merged") > 0, "{r:#}");
        assert_eq!(count(r, "/updates/unknown"), 0, "{r:#}");
        assert_eq!(count(r, "/malformed"), 0, "{r:#}");
        assert!(count(r, "/updates/latency_ms/count") > 0, "{r:#}");
        if verify {
            assert_eq!(r["verify"]["ok"], true, "{r:#}");
        }
    }
}
