//! Tokens, read-only connections and the origin allow-list, against the real server.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{
    TestApp, TestClient, refused_edit_then_writer_edit, spawn_app_with, upgrade_status,
};

pub(crate) const SECRET: &str = "a test secret that is long enough for HS256";

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn token(secret: &str, doc: &str, mode: &str, exp: u64) -> String {
    signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        doc,
        mode,
        exp,
    )
}

/// A token with our claims, signed with `key` under `alg`.
fn signed(alg: Algorithm, key: &EncodingKey, doc: &str, mode: &str, exp: u64) -> String {
    let claims = serde_json::json!({ "doc": doc, "mode": mode, "exp": exp });
    encode(&Header::new(alg), &claims, key).expect("token encodes")
}

/// A test-only key under `tests/it/fixtures/` (see the README there).
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// The private half of the fixture key pair for `alg` (RS256 or ES256).
fn private_key(alg: Algorithm) -> EncodingKey {
    let pem = |name: &str| std::fs::read(fixture(name)).expect("fixture key");
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem("rs256-private.pem")).expect("RSA key"),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem("es256-private.pem")).expect("EC key"),
        other => panic!("no fixture key for {other:?}"),
    }
}

async fn secured() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
        c.auth.allowed_origins = vec!["https://app.example".to_owned()];
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn every_bad_token_is_refused_before_the_upgrade() {
    let (app, _dir) = secured().await;
    let url = |token: &str| format!("{}?token={token}", app.ws_url("notes"));
    let later = now() + 60;
    assert_eq!(upgrade_status(app.ws_url("notes")).await, 401, "missing");
    assert_eq!(
        upgrade_status(url(&token(SECRET, "notes", "write", now() - 5))).await,
        401,
        "expired"
    );
    assert_eq!(
        upgrade_status(url(&token(
            "another secret of sufficient length!!",
            "notes",
            "write",
            later
        )))
        .await,
        401,
        "badly signed"
    );
    assert_eq!(
        upgrade_status(url(&token(SECRET, "other", "write", later))).await,
        403,
        "other document"
    );
    let payload = token(SECRET, "notes", "write", later);
    let payload = payload.split('.').nth(1).expect("payload");
    assert_eq!(
        upgrade_status(url(&format!("eyJhbGciOiJub25lIn0.{payload}."))).await,
        401,
        "alg none"
    );
    assert_eq!(upgrade_status(url("not-a-jwt")).await, 401, "garbage");
    assert_eq!(
        upgrade_status(url(&token(SECRET, "notes", "write", later))).await,
        101,
        "valid"
    );
    assert_eq!(
        upgrade_status(url(&token(SECRET, "no*", "read", later))).await,
        101,
        "prefix"
    );
    app.stop().await;
}

/// With `--auth-public-key`, tokens signed by the key's private half open their document, and
/// nothing signed otherwise does: not an HS256 token (whatever its secret, the public key's
/// own bytes included: the algorithm-confusion attack), not the other asymmetric algorithm.
#[tokio::test]
async fn rs256_and_es256_tokens_are_checked_against_the_public_key() {
    for (alg, public, other) in [
        (Algorithm::RS256, "rs256-public.pem", Algorithm::ES256),
        (Algorithm::ES256, "es256-public.pem", Algorithm::RS256),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let app = spawn_app_with(dir.path().into(), |c| {
            c.auth.auth_public_key = Some(fixture(public));
        })
        .await;
        let url = |token: &str| format!("{}?token={token}", app.ws_url("notes"));
        let later = now() + 60;
        let key = private_key(alg);

        let mut writer =
            TestClient::connect_synced(&url(&signed(alg, &key, "notes", "write", later))).await;
        writer.type_text("signed").await;
        let mut reader =
            TestClient::connect_synced(&url(&signed(alg, &key, "notes", "read", later))).await;
        reader
            .until("a valid token's edit arrives", |c| c.text() == "signed")
            .await;

        let public_pem = std::fs::read_to_string(fixture(public)).expect("fixture key");
        for (what, forged) in [
            ("an HS256 token", token(SECRET, "notes", "write", later)),
            (
                "an HS256 token keyed with the public key",
                token(&public_pem, "notes", "write", later),
            ),
            (
                "a token of the other algorithm",
                signed(other, &private_key(other), "notes", "write", later),
            ),
            (
                "an expired token",
                signed(alg, &key, "notes", "write", now() - 5),
            ),
        ] {
            assert_eq!(
                upgrade_status(url(&forged)).await,
                401,
                "{alg:?} server, {what}"
            );
        }
        assert_eq!(
            upgrade_status(url(&signed(alg, &key, "other", "write", later))).await,
            403,
            "{alg:?}: a valid token for another document"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_read_only_client_receives_everything_and_changes_nothing() {
    let (app, dir) = secured().await;
    let later = now() + 60;
    let writer_url = format!(
        "{}?token={}",
        app.ws_url("notes"),
        token(SECRET, "notes", "write", later)
    );
    let reader_url = format!(
        "{}?token={}",
        app.ws_url("notes"),
        token(SECRET, "notes", "read", later)
    );
    let mut writer = TestClient::connect_synced(&writer_url).await;
    let mut reader = TestClient::connect_synced(&reader_url).await;

    writer.type_text("from the writer").await;
    reader
        .until("the reader receives edits", |c| {
            c.text() == "from the writer"
        })
        .await;

    reader.type_text(" + sneaky").await;
    reader
        .until("the reader is told its edit was refused", |c| {
            c.received.iter().any(|f| f.starts_with(&[2, 0]))
        })
        .await;
    // It may still say who it is.
    reader.set_awareness(42, 0, r#"{"user":"reader"}"#).await;
    writer
        .until("the writer sees the reader's presence", |c| {
            c.awareness.contains_key(&42)
        })
        .await;
    writer.type_text("!").await;
    reader
        .until("the writer's next edit arrives", |c| c.text().contains('!'))
        .await;
    assert_eq!(
        writer.text(),
        "from the writer!",
        "the read-only edit never reached the writer"
    );
    app.stop().await;

    // Nor the store.
    let app = spawn_app_with(dir.path().into(), |_| {}).await;
    let fresh = TestClient::connect_synced(&app.ws_url("notes")).await;
    assert_eq!(fresh.text(), "from the writer!");
    app.stop().await;
}

#[tokio::test]
async fn other_origins_are_refused() {
    let (app, _dir) = secured().await;
    let url = format!(
        "{}?token={}",
        app.ws_url("notes"),
        token(SECRET, "notes", "write", now() + 60)
    );
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("header"));
        request
    };
    assert_eq!(
        upgrade_status(with_origin("https://evil.example")).await,
        403
    );
    assert_eq!(
        upgrade_status(with_origin("https://app.example")).await,
        101
    );
    app.stop().await;
}

#[tokio::test]
async fn a_connection_whose_token_expires_is_closed_with_4403() {
    let (app, _dir) = secured().await;
    let url = format!(
        "{}?token={}",
        app.ws_url("notes"),
        token(SECRET, "notes", "write", now() + 2)
    );
    let mut client = TestClient::connect_synced(&url).await;
    let code = tokio::time::timeout(Duration::from_secs(10), client.closed_code())
        .await
        .expect("closed in time");
    assert_eq!(code, Some(4403));
    app.stop().await;
}

#[tokio::test]
async fn a_read_only_edit_never_reaches_another_node() {
    crate::relay::require_redis().await;
    let prefix = crate::relay::unique_prefix();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let node = |dir: &tempfile::TempDir| {
        let prefix = prefix.clone();
        spawn_app_with(dir.path().into(), move |c| {
            c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
            c.scale_out.redis_url = Some(crate::relay::redis_url());
            c.scale_out.redis_prefix = prefix;
        })
    };
    let a = node(&dirs[0]).await;
    let b = node(&dirs[1]).await;
    let later = now() + 60;
    let url = |app: &TestApp, mode: &str| {
        format!(
            "{}?token={}",
            app.ws_url("shared"),
            token(SECRET, "shared", mode, later)
        )
    };
    let mut reader = TestClient::connect_synced(&url(&a, "read")).await;
    let mut writer = TestClient::connect_synced(&url(&b, "write")).await;
    writer.type_text("from node b").await;
    reader
        .until("the reader on node a gets node b's edit", |c| {
            c.text() == "from node b"
        })
        .await;
    refused_edit_then_writer_edit(&mut reader, &mut writer).await;
    assert_eq!(
        writer.text(),
        "from node b!",
        "the read-only edit never crossed to node b"
    );
    let fresh = TestClient::connect_synced(&url(&b, "read")).await;
    assert_eq!(fresh.text(), "from node b!", "nor node b's document");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn tokens_never_appear_in_the_logs() {
    let dir = tempfile::tempdir().expect("dir");
    let (server, addr, logs) =
        crate::helpers::start_chorus_logged(dir.path(), &["--auth-secret", SECRET], Some("debug"))
            .await;
    let later = now() + 60;
    let good = token(SECRET, "notes", "write", later);
    let forged = token(
        "another secret that is long enough!!",
        "notes",
        "write",
        later,
    );
    let elsewhere = token(SECRET, "other", "write", later);
    let url = |token: &str| format!("ws://{addr}/ws/notes?token={token}");
    assert_eq!(upgrade_status(url(&forged).as_str()).await, 401);
    assert_eq!(upgrade_status(url(&elsewhere).as_str()).await, 403);
    let mut client = TestClient::connect_synced(&url(&good)).await;
    client.type_text("logged?").await;
    drop(client);
    crate::helpers::eventually("the refusals are logged", || {
        let refusals = logs
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|l| l.contains("connection refused"))
            .count();
        async move { refusals >= 2 }
    })
    .await;
    server.terminate();
    let logs = logs.lock().expect("not poisoned").join("\n");
    for (name, token) in [("good", &good), ("forged", &forged), ("other", &elsewhere)] {
        let signature = token.rsplit('.').next().expect("a JWT has a signature");
        assert!(
            !logs.contains(signature),
            "the {name} token's signature appears in the logs"
        );
    }
}
