use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{
    TestClient, metric, scrape, spawn_app, spawn_app_with, start_chorus, until_metrics,
};

#[tokio::test]
async fn a_malformed_frame_closes_only_that_connection_with_1007() {
    let (app, _dir) = spawn_app().await;
    let mut good = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut bad = TestClient::connect_synced(&app.ws_url("doc")).await;
    // A sync update announcing 2^32 - 1 bytes.
    bad.send_raw(vec![0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f])
        .await;
    assert_eq!(bad.closed_code().await, Some(1007));

    good.type_text("still fine").await;
    let mut late = TestClient::connect(&app.ws_url("doc")).await;
    late.until("the room still works", |c| c.text() == "still fine")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn an_update_yrs_refuses_closes_the_connection_and_leaves_the_document_intact() {
    let (app, _dir) = spawn_app().await;
    let mut good = TestClient::connect_synced(&app.ws_url("doc")).await;
    good.type_text("intact").await;
    let mut bad = TestClient::connect_synced(&app.ws_url("doc")).await;
    bad.until("bad synced the text", |c| c.text() == "intact")
        .await;
    // Well-framed, but the update inside is garbage.
    bad.send_raw(vec![0x00, 0x02, 0x03, 0xff, 0xff, 0xff]).await;
    assert_eq!(bad.closed_code().await, Some(1007));
    let late = TestClient::connect_synced(&app.ws_url("doc")).await;
    assert_eq!(late.text(), "intact");
    app.stop().await;
}

#[tokio::test]
async fn a_text_frame_is_refused_with_1003() {
    let (app, _dir) = spawn_app().await;
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    client.send_ws(WsMessage::Text("hello".into())).await;
    assert_eq!(client.closed_code().await, Some(1003));
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_with_1009() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.limits.max_message_bytes = 64 * 1024
    })
    .await;
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    client
        .send_ws(WsMessage::Binary(vec![0u8; 128 * 1024].into()))
        .await;
    assert_eq!(client.closed_code().await, Some(1009));
    let other = TestClient::connect_synced(&app.ws_url("doc")).await;
    assert!(other.synced);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_reader_is_disconnected_while_the_others_carry_on() {
    // A process of its own, so that its /metrics count only this test's connections.
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, addr) = start_chorus(dir.path(), &["--outbox-capacity", "16"]).await;
    let url = format!("ws://{addr}/ws/busy");
    let mut slow = TestClient::connect_synced(&url).await;
    slow.set_awareness(77, 0, r#"{"slow":true}"#).await;
    let mut writer = TestClient::connect_synced(&url).await;
    let mut reader = TestClient::connect_synced(&url).await;
    reader
        .until("reader sees the slow client", |c| {
            c.awareness.contains_key(&77)
        })
        .await;

    // `slow` stops reading while `reader` reads all the time, in its own task, and reports how
    // many updates it has, so the writer never runs more than a few frames ahead of it.
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn({
        let progress = Arc::clone(&progress);
        async move {
            reader
                .until("the slow client is disconnected", |c| {
                    progress.store(c.updates_received, Ordering::Relaxed);
                    !c.awareness.contains_key(&77)
                })
                .await;
            reader
        }
    });
    // Each update is 256 KiB; the slow client's socket buffers fill, then its outbox.
    let chunk = "z".repeat(256 * 1024);
    let (mut sent, mut updates) = (0, 0);
    while !reader.is_finished() {
        writer.type_text(&chunk).await;
        sent += chunk.len();
        updates += 1;
        assert!(
            sent < 512 * 1024 * 1024,
            "the slow reader was never disconnected"
        );
        while updates - progress.load(Ordering::Relaxed) > 8 && !reader.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut reader = reader.await.expect("reader task");
    let expected = sent;
    reader
        .until("the fast reader has everything", |c| {
            c.text().len() == expected
        })
        .await;

    // The server closed the slow client, and only it, as too slow: 1013. It records that
    // whether or not the close frame could still be written into the full socket.
    until_metrics(
        &addr,
        "the server recorded one slow client, closed with 1013",
        |page| {
            metric(page, "chorus_slow_client_disconnects_total") == 1.0
                && metric(page, r#"chorus_connections_closed_total{code="1013"}"#) == 1.0
        },
    )
    .await;
    // The slow client's connection ends after the frames already in flight; a close frame, if
    // one got through, says 1013 too.
    tokio::time::timeout(Duration::from_secs(30), async {
        use futures_util::StreamExt;
        while let Some(Ok(frame)) = slow.socket().next().await {
            if let WsMessage::Close(frame) = frame {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1013));
                break;
            }
        }
    })
    .await
    .expect("the slow connection ended");
    assert_eq!(
        metric(&scrape(&addr).await, "chorus_connections"),
        2.0,
        "the writer and the fast reader are still connected"
    );
}

#[tokio::test]
async fn a_hostile_update_is_refused_before_yrs_sees_it() {
    let (app, _dir) = spawn_app().await;
    let mut good = TestClient::connect_synced(&app.ws_url("doc")).await;
    good.type_text("safe").await;
    let mut bad = TestClient::connect_synced(&app.ws_url("doc")).await;
    bad.until("bad synced", |c| c.text() == "safe").await;
    // The 19-byte clock-wrap update that makes yrs free a block it still links to.
    let hostile: [u8; 19] = [
        0x01, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x04, 0x01, 0x04, 0x74, 0x65, 0x78, 0x74,
        0x02, 0x78, 0x78, 0x00,
    ];
    bad.send_raw(chorus_protocol::message::sync_frame(
        chorus_protocol::message::SYNC_UPDATE,
        &hostile,
    ))
    .await;
    assert_eq!(bad.closed_code().await, Some(1007));
    good.type_text("!").await;
    let mut late = TestClient::connect(&app.ws_url("doc")).await;
    late.until("the room is intact", |c| c.text() == "safe!")
        .await;
    app.stop().await;
}
