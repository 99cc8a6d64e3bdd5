use chorus_protocol::Message;
use chorus_protocol::message::{SYNC_STEP1, sync_frame};

use crate::helpers::{TestClient, spawn_app, spawn_app_with};

#[tokio::test]
async fn two_clients_converge() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("doc")).await;

    alice.type_text("hello").await;
    bob.until("bob sees alice's text", |c| c.text() == "hello")
        .await;
    bob.type_text(" world").await;
    alice
        .until("alice sees bob's text", |c| c.text() == "hello world")
        .await;

    // Concurrent edits from both sides end up identical everywhere.
    alice.type_text("A").await;
    bob.type_text("B").await;
    alice
        .until("alice has both edits", |c| c.text().len() == 13)
        .await;
    bob.until("bob has both edits", |c| c.text().len() == 13)
        .await;
    assert_eq!(alice.text(), bob.text());
    app.stop().await;
}

#[tokio::test]
async fn a_late_joiner_gets_the_full_state() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    for word in ["one ", "two ", "three"] {
        alice.type_text(word).await;
    }
    let mut carol = TestClient::connect(&app.ws_url("doc")).await;
    carol
        .until("carol has everything", |c| c.text() == "one two three")
        .await;
    assert!(carol.synced);
    app.stop().await;
}

#[tokio::test]
async fn the_server_speaks_first_with_step1_and_answers_an_empty_doc_with_an_empty_step2() {
    let (app, _dir) = spawn_app().await;
    let mut client = TestClient::connect(&app.ws_url("fresh")).await;
    client.until("synced", |c| c.synced).await;
    // The golden bytes of the reference server for an empty document.
    assert_eq!(client.received[0].as_ref(), [0x00, 0x00, 0x01, 0x00]);
    assert_eq!(client.received[1].as_ref(), [0x00, 0x01, 0x02, 0x00, 0x00]);
    app.stop().await;
}

#[tokio::test]
async fn the_sender_does_not_get_its_own_update_back_but_everyone_else_does() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut carol = TestClient::connect_synced(&app.ws_url("doc")).await;
    alice.type_text("x").await;
    bob.until("bob got it", |c| c.text() == "x").await;
    carol.until("carol got it", |c| c.text() == "x").await;
    // A marker round trip: once alice sees bob's edit, anything echoed would have arrived first.
    bob.type_text("y").await;
    alice
        .until("alice got bob's edit", |c| c.text() == "xy")
        .await;
    let updates_to_alice = alice
        .received
        .iter()
        .filter(|frame| frame.starts_with(&[0, 2]))
        .count();
    assert_eq!(updates_to_alice, 1, "only bob's update reached alice");
    app.stop().await;
}

#[tokio::test]
async fn documents_are_separate_rooms_and_names_may_contain_slashes_and_unicode() {
    let (app, _dir) = spawn_app().await;
    let name = "team%2Fa/notes%20%C3%BC"; // "team/a/notes ü" once percent-decoded
    let mut a1 = TestClient::connect_synced(&app.ws_url(name)).await;
    let mut a2 = TestClient::connect_synced(&app.ws_url("team/a/notes%20%C3%BC")).await;
    let mut other = TestClient::connect_synced(&app.ws_url("other")).await;
    a1.type_text("in a").await;
    a2.until("same document, whatever the encoding", |c| {
        c.text() == "in a"
    })
    .await;
    other.type_text("elsewhere").await;
    a1.type_text("!").await;
    a2.until("a2 got the second edit", |c| c.text() == "in a!")
        .await;
    assert_eq!(other.text(), "elsewhere");
    assert_eq!(a2.text(), "in a!");
    app.stop().await;
}

#[tokio::test]
async fn every_step1_gets_a_step2_even_when_nothing_is_missing() {
    let (app, _dir) = spawn_app().await;
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    client.type_text("abc").await;
    let before = client.received.len();
    let sv = {
        use yrs::updates::encoder::Encode;
        use yrs::{ReadTxn, Transact};
        client.doc.transact().state_vector().encode_v1()
    };
    client.send_raw(sync_frame(SYNC_STEP1, &sv)).await;
    client
        .until("a second step 2", |c| {
            c.received[before..].iter().any(|f| {
                matches!(
                    Message::decode(f),
                    Ok(Message::Sync(chorus_protocol::SyncMessage::Step2(_)))
                )
            })
        })
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_larger_than_the_room_inbox_all_arrive() {
    // Writers that send faster than the room applies fill its inbox (256 commands); their
    // connections then hold a message until the inbox has room, and nothing may be lost.
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |config| {
        config.limits.max_messages_per_second = 1_000_000;
    })
    .await;
    const WRITERS: usize = 4;
    const EDITS: usize = 400;
    let mut reader = TestClient::connect_synced(&app.ws_url("burst")).await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let url = app.ws_url("burst");
        tasks.push(tokio::spawn(async move {
            let mut writer = TestClient::connect_synced(&url).await;
            let letter = char::from(b'a' + w as u8).to_string();
            for _ in 0..EDITS {
                writer.type_text(&letter).await;
            }
            writer
        }));
    }
    let mut writers = Vec::new();
    for task in tasks {
        writers.push(task.await.expect("writer task"));
    }
    reader
        .until("the reader has every edit", |c| {
            c.text().len() == WRITERS * EDITS
        })
        .await;
    for w in 0..WRITERS {
        let letter = char::from(b'a' + w as u8);
        assert_eq!(reader.text().matches(letter).count(), EDITS);
    }
    for writer in &mut writers {
        writer
            .until("a writer has every edit", |c| {
                c.text().len() == WRITERS * EDITS
            })
            .await;
    }
    app.stop().await;
}
