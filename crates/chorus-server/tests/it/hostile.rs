//! The hostile corpus (`hostile_corpus.rs`) replayed against a real `chorus` process: a stack
//! overflow or an abort inside yrs kills the whole process, which only a separate process shows.
//!
//! For every case an attacker connects to the honest room and sends it; then the process must
//! still run, the attacker must have been closed with the expected code, the honest client A and a
//! fresh client must still sync, the other room must still sync, and the honest room's text must
//! be exactly what honest clients wrote.

use crate::helpers::{TestClient, start_chorus};
use crate::hostile_corpus::{
    MAX_CLIENTS_PER_CONNECTION, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_CLIENTS, MAX_MESSAGE_BYTES,
    MAX_PENDING_STRUCTS, VICTIM_CLIENT, corpus,
};

const VICTIM_STATE: &str = r#"{"user":"A"}"#;

#[tokio::test]
async fn the_hostile_corpus_closes_only_the_attacker_and_corrupts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = [
        ("--max-message-bytes", MAX_MESSAGE_BYTES),
        ("--max-document-bytes", MAX_DOCUMENT_BYTES),
        ("--max-document-clients", MAX_DOCUMENT_CLIENTS),
        ("--max-clients-per-connection", MAX_CLIENTS_PER_CONNECTION),
        ("--max-pending-structs", MAX_PENDING_STRUCTS),
    ]
    .map(|(flag, value)| [flag.to_owned(), value.to_string()]);
    let mut args: Vec<&str> = limits.iter().flatten().map(String::as_str).collect();
    // The victim's presence must outlive the whole run.
    args.extend(["--awareness-timeout", "1h"]);
    let (mut server, addr) = start_chorus(dir.path(), &args).await;
    let room = format!("ws://{addr}/ws/hostile-room");
    let other_room = format!("ws://{addr}/ws/hostile-other");

    let mut a = TestClient::connect_synced(&room).await;
    a.set_awareness(VICTIM_CLIENT, 1, VICTIM_STATE).await;
    a.type_text("A:").await;
    let mut expected = String::from("A:");
    // A second honest writer, so A is shown to receive as well as send. (Not a fresh client per
    // case: each would be a new client id in the document, which is capped.)
    let mut b = TestClient::connect_synced(&room).await;
    let mut c = TestClient::connect_synced(&other_room).await;
    c.type_text("C:").await;
    let mut expected_other = String::from("C:");

    let cases = corpus();
    assert!(cases.len() > 40, "the corpus covers every class");
    for (i, case) in cases.into_iter().enumerate() {
        let name = case.name;
        // Captured by the test harness; shown only when the test fails.
        eprintln!("case {i}: {name}");
        let mut attacker = TestClient::connect_synced(&room).await;
        for frame in case.frames {
            attacker.send_ws(frame).await;
        }
        let code = attacker.closed_code().await;
        assert!(
            code.is_some_and(|code| case.closes_with.contains(&code)),
            "{name}: the attacker was closed with {code:?}, expected one of {:?}",
            case.closes_with
        );
        assert!(
            matches!(server.0.try_wait(), Ok(None)),
            "{name}: the server process died"
        );

        // A goes on writing, and everyone in the room gets exactly the honest text.
        let mark = format!("{i};");
        a.type_text(&mark).await;
        expected.push_str(&mark);
        let mut fresh = TestClient::connect(&room).await;
        fresh
            .until(
                &format!("{name}: a fresh client gets the honest text"),
                |f| f.synced && f.text() == expected,
            )
            .await;
        assert_eq!(a.text(), expected, "{name}: A's own text");
        fresh
            .until(&format!("{name}: the victim's presence is intact"), |f| {
                f.awareness.get(&VICTIM_CLIENT).map(String::as_str) == Some(VICTIM_STATE)
            })
            .await;
        // A sees the others' edits too: B writes, A receives it.
        b.until(&format!("{name}: B is in sync"), |b| b.text() == expected)
            .await;
        let echo = format!("[{i}]");
        b.type_text(&echo).await;
        expected.push_str(&echo);
        a.until(&format!("{name}: A still receives updates"), |a| {
            a.text() == expected
        })
        .await;

        // The other room is untouched and still works.
        c.type_text(&mark).await;
        expected_other.push_str(&mark);
        let mut other = TestClient::connect(&other_room).await;
        other
            .until(&format!("{name}: the other room"), |o| {
                o.synced && o.text() == expected_other
            })
            .await;
    }
    assert!(
        matches!(server.0.try_wait(), Ok(None)),
        "the server survived"
    );
    drop(server);
}
