//! `/metrics` of a real `chorus` process after real traffic (the recorder is process-wide, so
//! this test gets a process of its own).

use crate::helpers::{TestClient, eventually, start_chorus};

async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// The value of the sample whose name-and-labels line starts with `series`.
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_real_traffic() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, addr) = start_chorus(dir.path(), &[]).await;
    let url = |doc: &str| format!("ws://{addr}/ws/{doc}");
    let mut alice = TestClient::connect_synced(&url("m")).await;
    let mut bob = TestClient::connect_synced(&url("m")).await;
    let _carol = TestClient::connect_synced(&url("other")).await;
    for i in 0..5 {
        alice.type_text(&i.to_string()).await;
    }
    alice.set_awareness(1, 0, "{}").await;
    bob.until("bob has every edit and alice's presence", |c| {
        c.text() == "01234" && c.awareness.contains_key(&1)
    })
    .await;
    let _ = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/bad%0Aname")).await;

    eventually("the counters add up", || {
        let addr = addr.clone();
        async move {
            let page = scrape(&addr).await;
            value(&page, "chorus_connections") == 3.0
                && value(&page, "chorus_rooms") == 2.0
                && value(&page, r#"chorus_messages_total{direction="in",kind="update"}"#) == 5.0
                // Each update goes to bob only (not back to alice).
                && value(&page, r#"chorus_messages_total{direction="out",kind="update"}"#) == 5.0
                // Every client's step 1 is answered.
                && value(&page, r#"chorus_messages_total{direction="in",kind="sync_step1"}"#) == 3.0
                && value(&page, r#"chorus_messages_total{direction="out",kind="sync_step2"}"#) == 3.0
                // Awareness goes to alice and bob.
                && value(&page, r#"chorus_messages_total{direction="out",kind="awareness"}"#) == 2.0
                && value(&page, r#"chorus_connections_rejected_total{reason="invalid_document_name"}"#) == 1.0
        }
    })
    .await;

    drop(bob);
    eventually("the closed connection is counted", || {
        let addr = addr.clone();
        async move {
            let page = scrape(&addr).await;
            value(&page, "chorus_connections") == 2.0
                && value(&page, r#"chorus_connections_closed_total{code="1001"}"#) == 1.0
        }
    })
    .await;
}
