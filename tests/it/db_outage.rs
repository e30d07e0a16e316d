//! The database going away at request time: clean 503s, no panics or stuck
//! workers, and recovery without a restart. PostgreSQL only (an embedded
//! SQLite file cannot go away); the connection runs through a TCP proxy
//! that the test cuts and restores.

use std::time::{Duration, Instant};

use crate::common::fixtures;
use crate::common::proxy::postgres_app_behind_proxy;
use reqwest::StatusCode;

#[actix_web::test]
#[cfg_attr(
    not(latchkey_pg),
    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
)]
async fn postgres_outage_gives_503_and_recovers() {
    let (app, proxy) = postgres_app_behind_proxy(1).await;
    app.create_user("kim", "correct horse battery");
    let browser = app.new_browser();
    assert_eq!(
        app.login(&browser, "kim", "correct horse battery")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let other = app.new_browser();
    let token = app.login_form_token(&other).await;

    proxy.cut();

    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "database unreachable");

    let r = browser.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("Temporarily unavailable"));

    let r = other
        .post(app.url("/login"))
        .form(&[
            ("username", "kim"),
            ("password", "correct horse battery"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The process is alive and answers what needs no database.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.restore();

    // Recovers by itself: no restart, the pool reconnects.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        app.home_html(&browser).await.contains("signed in as"),
        "session survived the outage"
    );
    let r = app.login(&other, "kim", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// The admin API while the database is away: the same clean 503 as every
/// other path, with `Retry-After` (it had none), for reads and for a
/// change whose password is hashed before any database work; then it
/// answers again without a restart. Found by
/// `scripts/pg_restart_under_load.sh`.
#[actix_web::test]
#[cfg_attr(
    not(latchkey_pg),
    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
)]
async fn admin_api_outage_gives_503_with_retry_after() {
    let (app, proxy) = postgres_app_behind_proxy(1).await;
    let token = fixtures::admin_api_token(&app).await;
    let users = app.url("/admin/api/v1/users");

    proxy.cut();
    let new_user = serde_json::json!({"username": "kim", "password": "correct horse battery"});
    for r in [
        app.http
            .get(&users)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        app.http
            .post(&users)
            .bearer_auth(&token)
            .json(&new_user)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "5");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app
            .http
            .get(&users)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "did not recover");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let r = app
        .http
        .post(&users)
        .bearer_auth(&token)
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "nothing was half-created");
}
