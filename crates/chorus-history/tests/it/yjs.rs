//! The real JS `yjs` on both ends: versions made by Yjs are restored here and the restore
//! update is applied by Yjs, which must then read the version's content; a Yjs replica that
//! edited meanwhile must converge; and the state Yjs encodes after the restore reads, here,
//! as the version. Documents made by yrs go through the same check.
//!
//! Runs `tests/interop/history/yjs-restore.mjs` with Node and the `yjs` of `tests/interop`
//! (installed with `npm ci` there when missing, as `tests/interop/run.sh` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use chorus_history::restore_update;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::helpers::{RESTORE_ID, assert_restores, content, doc, state};
use crate::props;
use crate::restore::{prosemirror_edits, prosemirror_version};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Makes sure `yjs` is installed for the script, or fails saying how to install it.
fn ensure_yjs() {
    let dir = interop_dir();
    if dir.join("node_modules/yjs/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--omit=optional",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running npm in {}: {e} (install Node 20+ and npm)",
                dir.display()
            )
        });
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

fn node(args: &[&str]) -> std::process::Output {
    let script = interop_dir().join("history/yjs-restore.mjs");
    Command::new("node")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running node {}: {e} (install Node 20+)", script.display()))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Root kinds of both states, as the JS side needs them to read each root.
fn kinds(a: &[u8], b: &[u8]) -> Value {
    let mut kinds = serde_json::Map::new();
    for s in [a, b] {
        if let Some(roots) = content(s)["roots"].as_object() {
            for (name, root) in roots {
                kinds.insert(name.clone(), root["kind"].clone());
            }
        }
    }
    Value::Object(kinds)
}

#[test]
fn yjs_applies_restores_and_reads_the_version() {
    ensure_yjs();
    let dir = tempfile::tempdir().expect("tempdir");
    let made = dir.path().join("scenarios.json");
    let out = node(&["make", made.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "make: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scenarios: Value =
        serde_json::from_slice(&std::fs::read(&made).expect("scenarios")).expect("json");

    let mut cases: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    for s in scenarios["scenarios"].as_array().expect("scenarios") {
        let name = s["name"].as_str().expect("name").to_string();
        let version = unhex(s["version"].as_str().expect("version"));
        let current = unhex(s["current"].as_str().expect("current"));
        cases.push((name, current, version));
    }
    assert_eq!(cases.len(), 3, "the script makes three Yjs scenarios");
    // yrs-made documents too.
    let d = doc(7);
    prosemirror_version(&d);
    let v = state(&d);
    prosemirror_edits(&d);
    cases.push(("yrs-prosemirror".into(), state(&d), v));
    // And random yrs documents (every kind of root, formatting, embeds, nested types), from a
    // fixed seed so that a failure repeats.
    let mut runner = TestRunner::deterministic();
    let edits = proptest::collection::vec(props::edit(), 5..40);
    while cases.len() < 4 + 25 {
        let before = edits.new_tree(&mut runner).expect("sample").current();
        let after = edits.new_tree(&mut runner).expect("sample").current();
        let d = doc(11);
        props::build(&before, &d);
        let v = state(&d);
        props::build(&after, &d);
        let c = state(&d);
        if content(&c) != content(&v) {
            cases.push((format!("yrs-random-{}", cases.len()), c, v));
        }
    }

    let mut check = Vec::new();
    for (name, current, version) in &cases {
        assert_ne!(
            content(current),
            content(version),
            "{name}: nothing to restore"
        );
        assert_restores(current, version);
        let update = restore_update(current, version, RESTORE_ID).expect("restore");
        check.push(json!({
            "name": name,
            "current": hex(current),
            "target": hex(version),
            "restore": hex(&update),
            "kinds": kinds(current, version),
        }));
    }
    let input = dir.path().join("cases.json");
    std::fs::write(&input, json!({ "cases": check }).to_string()).expect("write cases");
    let out = node(&["check", input.to_str().expect("utf-8 path")]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());
    for (r, (name, _, version)) in results.iter().zip(&cases) {
        assert_eq!(
            r["equal"], true,
            "{name}: Yjs reads\n{}\nexpected\n{}",
            r["got"], r["want"]
        );
        assert_eq!(
            r["converged"], true,
            "{name}: a concurrent Yjs replica diverged"
        );
        // What Yjs encodes after applying the restore reads here as the version.
        let restored = unhex(r["restored_state"].as_str().expect("state"));
        assert_eq!(content(&restored), content(version), "{name}");
    }
    assert!(
        out.status.success(),
        "check failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
