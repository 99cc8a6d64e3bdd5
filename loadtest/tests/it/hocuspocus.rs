//! `--protocol hocuspocus` against Chorus's `/hocuspocus` endpoint: the same deliveries as over
//! y-websocket, plus one acknowledgement per update, matched in order.

use crate::helpers::{assert_all_delivered, assert_succeeded, count, loadtest, start_chorus};

#[test]
fn run_delivers_every_update_and_each_gets_its_acknowledgement() {
    let server = start_chorus();
    let url = server.hocuspocus_url();
    let out = loadtest(&[
        "run",
        "--protocol",
        "hocuspocus",
        "--url",
        &url,
        "--rooms",
        "2",
        "--users",
        "4",
        "--typists",
        "2",
        "--rate",
        "20",
        "--burst",
        "3",
        "--presence-rate",
        "2",
        "--warmup",
        "300ms",
        "--duration",
        "2s",
        "--drain-timeout",
        "10s",
        "--verify",
        "--no-progress",
    ]);
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(r["settings"]["protocol"], "hocuspocus", "{r:#}");
    assert_eq!(count(r, "/connections/synced"), 8, "{r:#}");
    assert_all_delivered(r);
    assert!(count(r, "/presence/delivered") > 0, "{r:#}");
    assert_eq!(r["verify"]["ok"], true, "{r:#}");
    // Every update (three per tick) was answered once, in order, and applied.
    let sent = count(r, "/updates/sent");
    assert_eq!(count(r, "/acks/expected"), sent, "{r:#}");
    assert_eq!(count(r, "/acks/received"), sent, "{r:#}");
    assert_eq!(count(r, "/acks/refused"), 0, "{r:#}");
    assert_eq!(count(r, "/acks/unmatched"), 0, "{r:#}");
    assert_eq!(count(r, "/acks/pending"), 0, "{r:#}");
    assert!(count(r, "/acks/latency_ms/count") > 0, "{r:#}");
}

#[test]
fn a_y_websocket_run_reports_no_acknowledgements() {
    let server = start_chorus();
    let url = server.ws_url();
    let out = loadtest(&[
        "run",
        "--url",
        &url,
        "--rooms",
        "1",
        "--users",
        "2",
        "--warmup",
        "100ms",
        "--duration",
        "500ms",
        "--no-progress",
    ]);
    assert_succeeded(&out);
    assert!(out.report["acks"].is_null(), "{:#}", out.report);
}

#[test]
fn idle_and_join_speak_hocuspocus_too() {
    let server = start_chorus();
    let url = server.hocuspocus_url();
    let out = loadtest(&[
        "idle",
        "--protocol",
        "hocuspocus",
        "--url",
        &url,
        "--connections",
        "50",
        "--settle",
        "100ms",
        "--hold",
        "100ms",
        "--no-progress",
    ]);
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(count(r, "/synced"), 50, "{r:#}");
    assert_eq!(count(r, "/dropped_while_held"), 0, "{r:#}");

    for concurrent in [false, true] {
        let mut args = vec![
            "join",
            "--protocol",
            "hocuspocus",
            "--url",
            &url,
            "--doc-size-mib",
            "1",
            "--chunk-kib",
            "256",
            "--joiners",
            "3",
        ];
        if concurrent {
            args.push("--concurrent");
        }
        let out = loadtest(&args);
        let r = &out.report;
        assert_succeeded(&out);
        assert_eq!(count(r, "/succeeded"), 3, "{r:#}");
        assert_eq!(count(r, "/time_to_applied_ms/count"), 3, "{r:#}");
    }
}
