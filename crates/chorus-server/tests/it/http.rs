use crate::helpers::{spawn_app, upgrade_answer, upgrade_status};

#[tokio::test]
async fn health_and_readiness() {
    let (app, _dir) = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn invalid_document_names_are_refused_before_the_upgrade() {
    let (app, _dir) = spawn_app().await;
    let too_long = "x".repeat(513);
    let (status, body) = upgrade_answer(app.ws_url(&too_long)).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("invalid_document_name") && body.contains("513"),
        "{body}"
    );

    let (status, _) = upgrade_answer(app.ws_url("")).await;
    assert_eq!(status, 400, "a missing name");
    let (status, _) = upgrade_answer(app.ws_url("bad%0Aname")).await;
    assert_eq!(status, 400, "a control character");

    let fine = "y".repeat(512);
    assert_eq!(upgrade_status(app.ws_url(&fine)).await, 101);
    app.stop().await;
}
