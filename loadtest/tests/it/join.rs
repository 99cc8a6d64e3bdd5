//! `join` against Chorus.

use crate::helpers::{assert_succeeded, count, loadtest, start_chorus};

fn join(concurrent: bool) {
    let server = start_chorus();
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let mut args = vec![
        "join",
        "--url",
        &url,
        "--doc-size-mib",
        "1",
        "--chunk-kib",
        "256",
        "--joiners",
        "3",
        "--server-pid",
        &pid,
    ];
    if concurrent {
        args.push("--concurrent");
    }
    let out = loadtest(&args);
    let r = &out.report;
    assert_succeeded(&out);
    assert_eq!(count(r, "/doc_chars"), 1 << 20, "{r:#}");
    assert_eq!(count(r, "/seed_updates"), 4, "{r:#}");
    assert_eq!(count(r, "/succeeded"), 3, "{r:#}");
    assert_eq!(count(r, "/failed"), 0, "{r:#}");
    assert!(count(r, "/step2_bytes") >= 1 << 20, "{r:#}");
    assert_eq!(count(r, "/time_to_applied_ms/count"), 3, "{r:#}");
    assert!(count(r, "/server/peak_rss_kib_during_joins") > 0, "{r:#}");
}

#[test]
fn joiners_one_after_another_get_the_whole_document() {
    join(false);
}

#[test]
fn joiners_all_at_once_get_the_whole_document() {
    join(true);
}
