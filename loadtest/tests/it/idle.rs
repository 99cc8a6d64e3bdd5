//! `idle` against Chorus.

use crate::helpers::{assert_succeeded, count, loadtest, start_chorus};

#[test]
fn idle_connections_complete_the_handshake_and_report_memory() {
    let server = start_chorus();
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let out = loadtest(&[
        "idle",
        "--url",
        &url,
        "--connections",
        "200",
        "--users-per-room",
        "10",
        "--settle",
        "200ms",
        "--hold",
        "200ms",
        "--server-pid",
        &pid,
        "--no-progress",
    ]);
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(count(r, "/synced"), 200, "{r:#}");
    assert_eq!(count(r, "/failed"), 0, "{r:#}");
    assert_eq!(count(r, "/dropped_while_held"), 0, "{r:#}");
    assert_eq!(count(r, "/rooms"), 20, "{r:#}");
    assert!(count(r, "/server/rss_kib_after") > 0, "{r:#}");
    assert!(
        r["server"]["kib_per_connection"].as_f64().is_some(),
        "{r:#}"
    );
}
