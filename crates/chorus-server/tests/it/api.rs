//! The HTTP API over real HTTP against the real server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Text, Transact};

use crate::helpers::{TestApp, TestClient, spawn_app_with};

const KEY: &str = "test-api-key";

async fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let status = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = response[split + 4..].to_vec();
    if String::from_utf8_lossy(&response[..split])
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
    out
}

fn text_update(text: &str) -> Vec<u8> {
    let doc = Doc::new();
    let shared = doc.get_or_insert_text("t");
    shared.insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
}

#[tokio::test]
async fn servers_read_and_write_documents_over_http() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.api_key = Some(chorus_server::config::Secret(KEY.to_owned()));
    })
    .await;
    let mut client = TestClient::connect_synced(&app.ws_url("team/notes")).await;

    let (status, _) = request(
        &app,
        "POST",
        "/api/v1/docs/team%2Fnotes/update",
        Some(KEY),
        &text_update("from the backend"),
    )
    .await;
    assert_eq!(status, 204);
    client
        .until("the connected client receives the server's write", |c| {
            c.text() == "from the backend"
        })
        .await;

    let (status, body) = request(&app, "GET", "/api/v1/docs/team%2Fnotes", Some(KEY), b"").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["t"], "from the backend");

    let (status, body) = request(
        &app,
        "GET",
        "/api/v1/docs/team%2Fnotes/update",
        Some(KEY),
        b"",
    )
    .await;
    assert_eq!(status, 200);
    let reader = Doc::new();
    reader
        .transact_mut()
        .apply_update(yrs::updates::decoder::Decode::decode_v1(&body).expect("an update"))
        .expect("applies");
    assert_eq!(
        yrs::GetString::get_string(&reader.get_or_insert_text("t"), &reader.transact()),
        "from the backend"
    );

    // A diff against what a holder already has is empty of structs.
    use base64::Engine as _;
    let sv = base64::engine::general_purpose::STANDARD
        .encode(reader.transact().state_vector().encode_v1());
    let (status, diff) = request(
        &app,
        "GET",
        &format!(
            "/api/v1/docs/team%2Fnotes/update?sv={}",
            sv.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        ),
        Some(KEY),
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert!(diff.len() < body.len());

    assert_eq!(
        request(&app, "GET", "/api/v1/docs/team%2Fnotes", None, b"")
            .await
            .0,
        401
    );
    assert_eq!(
        request(&app, "GET", "/api/v1/docs/team%2Fnotes", Some("wrong"), b"")
            .await
            .0,
        401
    );
    assert_eq!(
        request(
            &app,
            "POST",
            "/api/v1/docs/x/update",
            Some(KEY),
            &[0xff, 0xff]
        )
        .await
        .0,
        400
    );
    app.stop().await;
}
