use tokio_tungstenite::tungstenite;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness() {
    let (app, _dir) = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    app.stop().await;
}

async fn upgrade_status(url: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("{url} should have been refused"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("unexpected error for {url}: {other}"),
    }
}

#[tokio::test]
async fn invalid_document_names_are_refused_before_the_upgrade() {
    let (app, _dir) = spawn_app().await;
    let too_long = "x".repeat(513);
    let (status, body) = upgrade_status(&app.ws_url(&too_long)).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("invalid_document_name") && body.contains("513"),
        "{body}"
    );

    let (status, _) = upgrade_status(&app.ws_url("")).await;
    assert_eq!(status, 400, "a missing name");
    let (status, _) = upgrade_status(&app.ws_url("bad%0Aname")).await;
    assert_eq!(status, 400, "a control character");

    let fine = "y".repeat(512);
    assert!(
        tokio_tungstenite::connect_async(app.ws_url(&fine))
            .await
            .is_ok()
    );
    app.stop().await;
}
