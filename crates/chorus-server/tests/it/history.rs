//! Version history against the real server: versions on the interval and on request,
//! attribution from tokens, retention, diff and restore over the HTTP API, and versions
//! surviving a restart.

use std::time::Duration;

use chorus_server::auth::{Claims, Mode, TokenMinter};
use serde_json::Value;

use crate::helpers::{TestApp, TestClient, eventually, http, spawn_app_with};

const KEY: &str = "test-api-key";
const SECRET: &str = "a test secret that is long enough for HS256";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn token_for(sub: &str, doc: &str) -> String {
    TokenMinter::hs256(SECRET.as_bytes())
        .mint(&Claims {
            doc: doc.into(),
            mode: Mode::Write,
            exp: unix_now() + 600,
            sub: Some(sub.into()),
        })
        .expect("mints")
}

async fn app_on(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut chorus_server::Config),
) -> TestApp {
    spawn_app_with(dir.into(), |c| {
        c.auth.api_key = Some(chorus_server::config::Secret(KEY.to_owned()));
        configure(c);
    })
    .await
}

async fn api(app: &TestApp, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {KEY}");
    let response = http(
        app.addr,
        method,
        path,
        &[("Authorization", &auth), ("X-Chorus-Author", "backend")],
        body.as_bytes(),
    )
    .await;
    let json = if response.body.is_empty() {
        Value::Null
    } else {
        response.json()
    };
    (response.status, json)
}

async fn versions(app: &TestApp, doc: &str) -> Vec<Value> {
    let (status, page) = api(app, "GET", &format!("/api/v1/docs/{doc}/versions"), "").await;
    assert_eq!(status, 200, "{page}");
    page["versions"].as_array().cloned().unwrap_or_default()
}

fn authors(version: &Value) -> Vec<String> {
    version["authors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn versions_come_on_the_interval_and_on_request_attributed_to_token_subjects() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app_on(dir.path(), |c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
        c.history.version_interval = Duration::from_secs(1);
    })
    .await;
    let url = |sub| format!("{}?token={}", app.ws_url("notes"), token_for(sub, "notes"));
    let mut ada = TestClient::connect_synced(&url("ada")).await;
    let mut bob = TestClient::connect_synced(&url("bob")).await;
    ada.type_text("hello ").await;
    ada.until("ada's edit is in", |c| c.text() == "hello ")
        .await;
    bob.until("bob sees ada", |c| c.text() == "hello ").await;
    bob.type_text("world").await;
    ada.until("ada sees bob", |c| c.text() == "hello world")
        .await;

    // The interval's version, with both authors (a client's edits are counted once each).
    eventually("an automatic version names ada and bob", || async {
        versions(&app, "notes")
            .await
            .iter()
            .any(|v| v["kind"] == "auto" && authors(v) == ["ada", "bob"])
    })
    .await;
    // Nobody edits: no more automatic versions.
    let before = versions(&app, "notes").await.len();

    let (status, made) = api(
        &app,
        "POST",
        "/api/v1/docs/notes/versions",
        r#"{"label": "first draft"}"#,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["kind"], "requested");
    assert_eq!(made["label"], "first draft");
    let listed = versions(&app, "notes").await;
    assert_eq!(listed.len(), before + 1);
    assert_eq!(listed[0]["id"], made["id"], "newest first");

    // Activity: both identities, per minute, with totals.
    let (status, activity) = api(&app, "GET", "/api/v1/docs/notes/activity", "").await;
    assert_eq!(status, 200, "{activity}");
    let totals = activity["totals"].as_array().expect("totals");
    let who: Vec<&str> = totals
        .iter()
        .filter_map(|t| t["identity"].as_str())
        .collect();
    assert_eq!(who, ["ada", "bob"]);
    assert!(totals.iter().all(|t| t["updates"].as_u64() >= Some(1)));
    let (_, only_bob) = api(&app, "GET", "/api/v1/docs/notes/activity?by=bob", "").await;
    assert_eq!(only_bob["totals"].as_array().map(Vec::len), Some(1));
    let (status, _) = api(
        &app,
        "GET",
        "/api/v1/docs/notes/activity?from=yesterday",
        "",
    )
    .await;
    assert_eq!(status, 400);

    // Binary state of a version is what a Yjs client reads.
    let auth = format!("Bearer {KEY}");
    let binary = http(
        app.addr,
        "GET",
        &format!(
            "/api/v1/docs/notes/versions/{}",
            made["id"].as_str().expect("id")
        ),
        &[
            ("Authorization", &auth),
            ("Accept", "application/octet-stream"),
        ],
        b"",
    )
    .await;
    assert_eq!(binary.status, 200);
    assert_eq!(crate::helpers::text_of(&binary.body), "hello world");

    let (status, _) = api(&app, "GET", "/api/v1/docs/notes/versions/no-such", "").await;
    assert_eq!(status, 404);
    let (status, _) = api(&app, "GET", "/api/v1/docs/notes/versions/..%2Fx", "").await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn open_servers_attribute_edits_to_anonymous_and_api_writes_to_their_author() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app_on(dir.path(), |_| {}).await;
    let mut client = TestClient::connect_synced(&app.ws_url("open")).await;
    client.type_text("x").await;
    client.until("applied", |c| c.text() == "x").await;
    let doc = yrs::Doc::new();
    let update = {
        use yrs::{Text, Transact};
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "y");
        txn.encode_update_v1()
    };
    let auth = format!("Bearer {KEY}");
    let written = http(
        app.addr,
        "POST",
        "/api/v1/docs/open/update",
        &[("Authorization", &auth), ("X-Chorus-Author", "importer")],
        &update,
    )
    .await;
    assert_eq!(written.status, 204);
    let (status, made) = api(&app, "POST", "/api/v1/docs/open/versions", "").await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(authors(&made), ["anonymous", "importer"]);
    app.stop().await;
}

#[tokio::test]
async fn retention_keeps_the_newest_versions_and_reports_pruning() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app_on(dir.path(), |c| {
        c.history.version_retention = "2".parse().expect("retention");
    })
    .await;
    let mut client = TestClient::connect_synced(&app.ws_url("kept")).await;
    let mut made = Vec::new();
    for word in ["a", "b", "c", "d"] {
        client.type_text(word).await;
        let (status, version) = api(&app, "POST", "/api/v1/docs/kept/versions", "").await;
        assert_eq!(status, 201);
        made.push(version["id"].clone());
    }
    let listed: Vec<Value> = versions(&app, "kept")
        .await
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(listed, [made[3].clone(), made[2].clone()]);
    app.stop().await;
}

#[tokio::test]
async fn versions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let app = app_on(dir.path(), |_| {}).await;
    let mut client = TestClient::connect_synced(&app.ws_url("kept")).await;
    client.type_text("before restart").await;
    let (status, made) = api(
        &app,
        "POST",
        "/api/v1/docs/kept/versions",
        r#"{"label":"v1"}"#,
    )
    .await;
    assert_eq!(status, 201);
    drop(client);
    app.stop().await;

    let app = app_on(dir.path(), |_| {}).await;
    let listed = versions(&app, "kept").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], made["id"]);
    assert_eq!(listed[0]["label"], "v1");
    app.stop().await;
}

#[tokio::test]
async fn version_settings_that_cannot_work_are_named() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = chorus_server::Config::local(dir.path());
    config.history.version_interval = Duration::from_millis(10);
    let problems = config.validate().expect_err("refused").to_string();
    assert!(
        problems.contains("--version-interval (CHORUS_VERSION_INTERVAL)"),
        "{problems}"
    );
}

/// A browser's request: no API key, only what it would show the WebSocket.
async fn as_client(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let response = http(app.addr, method, path, &headers, body.as_bytes()).await;
    let json = if response.body.is_empty() {
        Value::Null
    } else {
        response.json()
    };
    (response.status, json)
}

#[tokio::test]
async fn browsers_get_the_history_routes_with_the_access_their_websocket_has() {
    // An open server without an API key: the web demo's case. Everyone may edit, so everyone
    // may save, compare and restore versions.
    let dir = tempfile::tempdir().expect("dir");
    let open = spawn_app_with(dir.path().into(), |_| {}).await;
    let mut writer = TestClient::connect_synced(&open.ws_url("panel")).await;
    let mut watcher = TestClient::connect_synced(&open.ws_url("panel")).await;
    writer.type_text("first").await;
    watcher.until("first edit", |c| c.text() == "first").await;
    let path = "/api/v1/docs/panel/versions";
    let (status, saved) = as_client(&open, "POST", path, None, r#"{"label":"v1"}"#).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["label"], "v1");
    assert_eq!(authors(&saved), ["anonymous"]);
    let id = saved["id"].as_str().expect("an id").to_owned();

    writer.type_text(" later").await;
    watcher
        .until("second edit", |c| c.text() == "first later")
        .await;
    let (status, diff) =
        as_client(&open, "GET", &format!("{path}/{id}/diff/current"), None, "").await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["roots"]["t"]["text"][0]["op"], "insert", "{diff}");
    assert_eq!(diff["roots"]["t"]["text"][0]["text"], " later", "{diff}");

    let (status, restored) =
        as_client(&open, "POST", &format!("{path}/{id}/restore"), None, "").await;
    assert_eq!(status, 200, "{restored}");
    watcher.until("restored", |c| c.text() == "first").await;
    writer.until("restored", |c| c.text() == "first").await;
    let (status, page) = as_client(&open, "GET", path, None, "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["versions"][0]["kind"], "restored", "{page}");
    assert_eq!(page["versions"][0]["restored_from"], id.as_str(), "{page}");
    // What the restore replaced was kept first, and restoring it takes the restore back.
    let before = restored["before"]["id"]
        .as_str()
        .expect("a version of what was replaced");
    assert_eq!(page["versions"][1]["id"], before, "{page}");
    assert_eq!(
        page["versions"][1]["label"],
        format!("before restoring {id}"),
        "{page}"
    );
    let (status, undone) =
        as_client(&open, "POST", &format!("{path}/{before}/restore"), None, "").await;
    assert_eq!(status, 200, "{undone}");
    watcher
        .until("the restore taken back", |c| c.text() == "first later")
        .await;
    open.stop().await;

    // With tokens, the same token as the WebSocket's, as a bearer: a token for another
    // document, none, or a read-only one for a write are refused.
    let dir = tempfile::tempdir().expect("dir");
    let secured = spawn_app_with(dir.path().into(), |c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    let reader = TokenMinter::hs256(SECRET.as_bytes())
        .mint(&Claims {
            doc: "panel".into(),
            mode: Mode::Read,
            exp: unix_now() + 600,
            sub: Some("reader".into()),
        })
        .expect("mints");
    let ada = token_for("ada", "panel");
    assert_eq!(as_client(&secured, "GET", path, None, "").await.0, 401);
    let other = token_for("ada", "other");
    assert_eq!(
        as_client(&secured, "GET", path, Some(&other), "").await.0,
        403
    );
    assert_eq!(
        as_client(&secured, "GET", path, Some(&reader), "").await.0,
        200
    );
    assert_eq!(
        as_client(&secured, "POST", path, Some(&reader), "").await.0,
        403
    );
    let mut client =
        TestClient::connect_synced(&format!("{}?token={ada}", secured.ws_url("panel"))).await;
    client.type_text("by ada").await;
    let mut watcher =
        TestClient::connect_synced(&format!("{}?token={reader}", secured.ws_url("panel"))).await;
    watcher.until("ada's edit", |c| c.text() == "by ada").await;
    let (status, saved) = as_client(&secured, "POST", path, Some(&ada), "").await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(authors(&saved), ["ada"]);
    secured.stop().await;
}
