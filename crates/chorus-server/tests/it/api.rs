//! The HTTP API over real HTTP against the real server.

use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Text, Transact};

use crate::helpers::{
    HttpResponse, TestApp, TestClient, http, refused_edit_then_writer_edit, spawn_app_with,
    stored_state, upgrade_status,
};

const KEY: &str = "test-api-key";
const SECRET: &str = "a test secret that is long enough for HS256";

/// A server with the API on, adjusted by `configure`.
async fn api_app(
    configure: impl FnOnce(&mut chorus_server::Config),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.auth.api_key = Some(chorus_server::config::Secret(KEY.to_owned()));
        configure(c);
    })
    .await;
    (app, dir)
}

/// A request whose answer must be JSON (every answer of the API but binary updates and 204s),
/// labelled so.
async fn json(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let response = send(app, method, path, key, &[], body.as_bytes()).await;
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{method} {path} answered {} labelled as JSON: {}",
        response.status,
        response.text()
    );
    (response.status, response.json())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A request to the API with `key` as its bearer key and `headers` besides.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut all: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    all.extend_from_slice(headers);
    http(app.addr, method, path, &all, body).await
}

async fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let response = send(app, method, path, key, &[], body).await;
    (response.status, response.body)
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
        c.auth.api_key = Some(chorus_server::config::Secret(KEY.to_owned()));
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

/// Mints a token through the API and returns it with its expiry.
async fn mint(app: &TestApp, body: &str) -> (String, u64) {
    let (status, answer) = json(app, "POST", "/api/v1/tokens", Some(KEY), body).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("a token").to_owned();
    let expires_at = answer["expires_at"].as_u64().expect("an expiry");
    (token, expires_at)
}

#[tokio::test]
async fn minted_tokens_open_their_document_in_their_mode() {
    let (app, _dir) = api_app(|c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    let before = unix_now();
    let (write, expires_at) = mint(
        &app,
        r#"{"doc": "notes", "mode": "write", "ttl_seconds": 600}"#,
    )
    .await;
    assert!(
        (before + 600..=unix_now() + 600).contains(&expires_at),
        "expires_at {expires_at} is 600 s from now"
    );
    let (read, expires_at) = mint(&app, r#"{"doc": "not*", "mode": "read"}"#).await;
    assert!(expires_at >= before + 3600, "an hour by default");
    let url = |token: &str| format!("{}?token={token}", app.ws_url("notes"));

    let mut writer = TestClient::connect_synced(&url(&write)).await;
    writer.type_text("from the writer").await;
    let mut reader = TestClient::connect_synced(&url(&read)).await;
    reader
        .until("the reader receives the document", |c| {
            c.text() == "from the writer"
        })
        .await;
    refused_edit_then_writer_edit(&mut reader, &mut writer).await;
    assert_eq!(
        writer.text(),
        "from the writer!",
        "the read-only edit was refused"
    );

    // A token for another document opens nothing here; the server's own tokens still do.
    let (other, _) = mint(&app, r#"{"doc": "other", "mode": "write"}"#).await;
    assert_eq!(upgrade_status(url(&other)).await, 403);
    assert_eq!(upgrade_status(url("not-a-token")).await, 401);
    assert_eq!(upgrade_status(url(&write)).await, 101);
    app.stop().await;
}

#[tokio::test]
async fn token_requests_that_make_no_sense_are_refused_with_400() {
    let (app, _dir) = api_app(|c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    for body in [
        "",
        "not json",
        r#"{"doc": "notes"}"#,
        r#"{"doc": "notes", "mode": "admin"}"#,
        r#"{"doc": "", "mode": "read"}"#,
        r#"{"doc": "notes", "mode": "read", "ttl_seconds": 0}"#,
        r#"{"doc": "notes", "mode": "read", "ttl_seconds": 8640000}"#,
        r#"{"doc": "notes", "mode": "read", "ttl_seconds": -1}"#,
        r#"{"doc": "notes", "mode": "read", "expires": 1}"#,
    ] {
        let (status, answer) = json(&app, "POST", "/api/v1/tokens", Some(KEY), body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].is_string() && answer["message"].is_string());
    }
    app.stop().await;
}

/// What axum's own extractors refuse (a name that is not UTF-8, a query string that does not
/// parse, a body over the size the server reads) is answered in the API's JSON error form too,
/// never axum's text/plain.
#[tokio::test]
async fn requests_the_api_cannot_read_get_json_errors() {
    let (app, _dir) = api_app(|_| {}).await;
    for (method, path) in [
        ("GET", "/api/v1/docs/%ff"),
        ("DELETE", "/api/v1/docs/%ff"),
        ("GET", "/api/v1/docs/%ff/update"),
        ("POST", "/api/v1/docs/%ff/update"),
        ("GET", "/api/v1/docs/notes/update?sv=AA&sv=AA"),
        ("GET", "/api/v1/docs?limit=many"),
        ("GET", "/api/v1/docs?limit=1&limit=2"),
    ] {
        let (status, error) = json(&app, method, path, Some(KEY), "").await;
        assert_eq!(status, 400, "{method} {path}: {error}");
        assert_eq!(error["error"], "bad_request", "{method} {path}: {error}");
        assert!(error["message"].is_string(), "{method} {path}: {error}");
    }
    let too_large = vec![0u8; 3 << 20];
    let response = send(
        &app,
        "POST",
        "/api/v1/docs/notes/update",
        Some(KEY),
        &[],
        &too_large,
    )
    .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn without_the_hs256_secret_no_token_is_minted() {
    let (app, _dir) = api_app(|_| {}).await;
    let (status, answer) = json(
        &app,
        "POST",
        "/api/v1/tokens",
        Some(KEY),
        r#"{"doc": "notes", "mode": "write"}"#,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(answer["error"], "not_configured");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("--auth-secret")),
        "{answer}"
    );
    app.stop().await;
}

/// Writes some text into `doc` (percent-encoded in the path) through the API.
async fn write_text(app: &TestApp, doc_path: &str, text: &str) {
    let (status, body) = request(
        app,
        "POST",
        &format!("/api/v1/docs/{doc_path}/update"),
        Some(KEY),
        &text_update(text),
    )
    .await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
}

/// Every page of `GET /api/v1/docs` at `limit` per page, as pages of names.
async fn all_pages(app: &TestApp, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/docs?limit={limit}&cursor={cursor}"),
            None => format!("/api/v1/docs?limit={limit}"),
        };
        let (status, page) = json(app, "GET", &path, Some(KEY), "").await;
        assert_eq!(status, 200, "{page}");
        let names: Vec<String> = page["docs"]
            .as_array()
            .expect("docs")
            .iter()
            .map(|d| d["name"].as_str().expect("name").to_owned())
            .collect();
        pages.push(names);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                return pages;
            }
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn stored_documents_are_listed_a_page_at_a_time_in_name_order() {
    let (app, _dir) = api_app(|_| {}).await;
    let (status, empty) = json(&app, "GET", "/api/v1/docs", Some(KEY), "").await;
    assert_eq!(status, 200);
    assert_eq!(
        empty,
        serde_json::json!({ "docs": [], "next_cursor": null })
    );

    for (path, _) in [
        ("b", "b"),
        ("a", "a"),
        ("team%2Fz", "team/z"),
        ("team%2Fa", "team/a"),
        ("c", "c"),
        ("%C3%BC", "ü"),
        ("d", "d"),
    ] {
        write_text(&app, path, "content").await;
    }
    // Opened but never edited: nothing stored, so not listed.
    let _viewer = TestClient::connect_synced(&app.ws_url("only-opened")).await;

    let expected = ["a", "b", "c", "d", "team/a", "team/z", "ü"];
    let pages = all_pages(&app, 3).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "{pages:?}"
    );
    assert_eq!(pages.concat(), expected);
    // A page size that divides the total ends with a full page, then no cursor.
    assert_eq!(all_pages(&app, 7).await, [expected.to_vec()]);
    assert_eq!(all_pages(&app, 1000).await.concat(), expected);

    for bad in [
        "/api/v1/docs?limit=0",
        "/api/v1/docs?limit=1001",
        "/api/v1/docs?limit=many",
        "/api/v1/docs?cursor=%%%",
        "/api/v1/docs?cursor=_w",
        "/api/v1/docs?page=2",
    ] {
        let (status, answer) = json(&app, "GET", bad, Some(KEY), "").await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["error"], "bad_request", "{bad}");
    }
    app.stop().await;
}

/// What the store under `dir` holds for `doc`: (a snapshot, log records).
async fn stored(dir: &std::path::Path, doc: &str) -> (bool, usize) {
    let (snapshot, records) = stored_state(dir, doc).await;
    (snapshot.is_some(), records)
}

#[tokio::test]
async fn a_deleted_document_closes_its_connections_and_leaves_nothing_stored() {
    let (app, dir) =
        api_app(|c| c.storage.snapshot_interval = std::time::Duration::from_millis(50)).await;
    let mut alice = TestClient::connect_synced(&app.ws_url("team/doomed")).await;
    alice.type_text("saved in a snapshot").await;
    crate::helpers::eventually("the snapshot is stored", || async {
        stored(dir.path(), "team/doomed").await.0
    })
    .await;
    alice.type_text(", then logged").await;
    crate::helpers::eventually("the next edit is logged", || async {
        stored(dir.path(), "team/doomed").await.1 > 0
    })
    .await;
    write_text(&app, "kept", "another document").await;

    let (status, body) =
        request(&app, "DELETE", "/api/v1/docs/team%2Fdoomed", Some(KEY), b"").await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(alice.closed_code().await, Some(4404));
    assert_eq!(stored(dir.path(), "team/doomed").await, (false, 0));

    let (status, content) = json(&app, "GET", "/api/v1/docs/team%2Fdoomed", Some(KEY), "").await;
    assert_eq!(status, 200);
    assert_eq!(content, serde_json::json!({}));
    let fresh = TestClient::connect_synced(&app.ws_url("team/doomed")).await;
    assert_eq!(fresh.text(), "");
    assert_eq!(all_pages(&app, 100).await.concat(), ["kept"]);

    // Deleting what does not exist is not an error.
    let (status, _) = request(&app, "DELETE", "/api/v1/docs/never", Some(KEY), b"").await;
    assert_eq!(status, 204);
    app.stop().await;
    assert_eq!(
        stored(dir.path(), "team/doomed").await,
        (false, 0),
        "nothing saved at shutdown"
    );
}

#[tokio::test]
async fn a_deletion_reaches_the_other_nodes() {
    crate::relay::require_redis().await;
    let prefix = crate::relay::unique_prefix();
    // Two nodes sharing one Redis and one store, as in production.
    let dir = tempfile::tempdir().expect("dir");
    let node = |prefix: String| {
        spawn_app_with(dir.path().into(), move |c| {
            c.auth.api_key = Some(chorus_server::config::Secret(KEY.to_owned()));
            c.scale_out.redis_url = Some(crate::relay::redis_url());
            c.scale_out.redis_prefix = prefix;
        })
    };
    let a = node(prefix.clone()).await;
    let b = node(prefix).await;
    let mut on_a = TestClient::connect_synced(&a.ws_url("doomed")).await;
    let mut on_b = TestClient::connect_synced(&b.ws_url("doomed")).await;
    on_b.type_text("written on B").await;
    on_a.until("A has B's edit", |c| c.text() == "written on B")
        .await;

    let (status, _) = request(&a, "DELETE", "/api/v1/docs/doomed", Some(KEY), b"").await;
    assert_eq!(status, 204);
    assert_eq!(on_a.closed_code().await, Some(4404));
    assert_eq!(
        on_b.closed_code().await,
        Some(4404),
        "B dropped its room too"
    );
    assert_eq!(stored(dir.path(), "doomed").await, (false, 0));
    let fresh = TestClient::connect_synced(&b.ws_url("doomed")).await;
    assert_eq!(fresh.text(), "", "B reloads the document empty");
    a.stop().await;
    b.stop().await;
    assert_eq!(
        stored(dir.path(), "doomed").await,
        (false, 0),
        "neither node saved the deleted room"
    );
}

/// Every `$ref` in `value` that does not point into `spec`.
fn dangling_refs(spec: &serde_json::Value, value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(key, inner)| match (key.as_str(), inner.as_str()) {
                ("$ref", Some(target)) => {
                    let pointer = target.strip_prefix('#').unwrap_or(target);
                    if spec.pointer(pointer).is_some() {
                        Vec::new()
                    } else {
                        vec![target.to_owned()]
                    }
                }
                _ => dangling_refs(spec, inner),
            })
            .collect(),
        serde_json::Value::Array(items) => {
            items.iter().flat_map(|i| dangling_refs(spec, i)).collect()
        }
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn the_openapi_description_matches_the_routes_served() {
    use std::collections::BTreeSet;
    let (app, _dir) = api_app(|c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    let (status, spec) = json(&app, "GET", "/api/v1/openapi.json", None, "").await;
    assert_eq!(status, 200, "served without a key");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        spec["openapi"]
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );
    assert_eq!(dangling_refs(&spec, &spec), Vec::<String>::new());

    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let described: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|k| METHODS.contains(&k.to_uppercase().as_str()))
                .map(|method| (path.clone(), method.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect();
    let table: BTreeSet<(String, String)> = chorus_server::api::ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect();
    assert_eq!(
        described, table,
        "the description lists every route, and no other"
    );

    // The live router answers exactly the methods of the table, and JSON errors otherwise.
    for (path, methods) in chorus_server::api::ROUTES {
        let concrete = path.replace("{doc}", "probe");
        for method in METHODS {
            let (status, body) = request(&app, method, &concrete, Some(KEY), b"").await;
            if methods.contains(&method) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {concrete} is described but answers {status}"
                );
            } else {
                assert_eq!(status, 405, "{method} {concrete}");
                let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                assert_eq!(error["error"], "method_not_allowed");
            }
        }
    }
    for path in ["/api/v1", "/api/v1/nope", "/api/v1/docs/a/b/c"] {
        let (status, error) = json(&app, "GET", path, Some(KEY), "").await;
        assert_eq!(
            (status, &error["error"]),
            (404, &"not_found".into()),
            "{path}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_route_but_the_description_needs_the_key() {
    let (app, _dir) = api_app(|c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let off = spawn_app_with(dir.path().into(), |_| {}).await;
    let guarded = chorus_server::api::ROUTES
        .iter()
        .filter(|(path, _)| !path.ends_with("openapi.json"))
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .map(move |m| (path.replace("{doc}", "x"), *m))
        });
    let mut checked = 0;
    for (path, method) in guarded {
        for key in [None, Some("wrong"), Some(&KEY[1..]), Some("")] {
            let (status, error) = json(&app, method, &path, key, "").await;
            assert_eq!(status, 401, "{method} {path} with {key:?}: {error}");
            assert_eq!(error["error"], "unauthorized");
        }
        let (status, error) = json(&off, method, &path, Some(KEY), "").await;
        // The history routes also serve browsers, with the access the document's WebSocket
        // would give them: on this open server, everyone (history.rs tests them with tokens).
        let history = path.contains("/versions") || path.ends_with("/activity");
        if history {
            assert!(
                status != 401 && status != 403,
                "{method} {path} on an open server: {error}"
            );
        } else {
            assert_eq!(status, 403, "{method} {path} with the API off: {error}");
        }
        checked += 1;
    }
    assert_eq!(checked, 13, "every guarded route and method was tried");
    app.stop().await;
    off.stop().await;
}
