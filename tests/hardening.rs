//! Holes a security review found, each pinned by a test: password changes
//! end refresh tokens, request objects are refused before sign-in,
//! `prompt=consent` is honoured for first-party clients, HTML is never
//! compressed (BREACH), HSTS on https, HEAD probes, and 503s that say when
//! to come back. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{TestApp, TestDb, code_flow, csrf_token_in};
use latchkey::domain::client::ClientInput;
use latchkey::service::{clients, users};
use reqwest::StatusCode;
use serde_json::Value;

const CALLBACK: &str = "https://rp.example/cb";
const PASSWORD: &str = "correct horse battery";

dual_backend!(
    an_admin_password_reset_ends_refresh_tokens,
    a_users_own_password_change_ends_refresh_tokens,
    request_objects_are_refused_before_sign_in,
    prompt_consent_asks_even_for_first_party_clients,
    html_is_never_compressed_and_https_issuers_send_hsts,
    health_probes_answer_head,
);

struct Rp {
    id: String,
    secret: String,
}

fn register(app: &TestApp, first_party: bool) -> Rp {
    let mut c = common::conn(&app.db);
    let issued = clients::create(
        &mut c,
        None,
        &ClientInput {
            name: "Hardening RP".into(),
            redirect_uris: vec![CALLBACK.into()],
            scopes: vec!["openid offline_access".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            first_party,
            ..Default::default()
        },
        &latchkey::domain::alg::SigningAlg::ALL,
        app.clock_now(),
    )
    .unwrap();
    Rp {
        id: issued.client.client_id,
        secret: issued.client_secret.unwrap(),
    }
}

async fn signed_in(app: &TestApp) -> reqwest::Client {
    let browser = app.new_browser();
    let r = app.login(&browser, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    browser
}

async fn refresh_token(app: &TestApp, browser: &reqwest::Client, rp: &Rp) -> String {
    let (_, tokens) = code_flow(
        app,
        browser,
        (&rp.id, &rp.secret),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    tokens.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn an_admin_password_reset_ends_refresh_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let token = refresh_token(&app, &browser, &rp).await;
    {
        let mut c = common::conn(&app.db);
        users::set_password(
            &mut c,
            "alice",
            "a new and longer passphrase",
            app.clock_now(),
        )
        .unwrap();
    }
    let (status, body) = refresh(&app, &rp, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn a_users_own_password_change_ends_refresh_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let token = refresh_token(&app, &browser, &rp).await;
    let html = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token_in(&html).unwrap();
    let r = browser
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", PASSWORD),
            ("new_password", "a new and longer passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, body) = refresh(&app, &rp, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the session that changed it stays"
    );
}

/// OIDC Core 6: `request_not_supported` / `request_uri_not_supported`,
/// sent back to the client before anyone is asked to sign in.
async fn request_objects_are_refused_before_sign_in(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = register(&app, false);
    for (param, code) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let url = reqwest::Url::parse_with_params(
            &app.url("/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", rp.id.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", "openid"),
                ("state", "st"),
                (param, "eyJhbGciOiJub25lIn0.e30."),
            ],
        )
        .unwrap();
        let r = app.new_browser().get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(CALLBACK), "{location}");
        let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(q["error"], code);
        assert_eq!(q["state"], "st");
    }
}

async fn prompt_consent_asks_even_for_first_party_clients(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let authorize = |prompt: Option<&'static str>| {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", common::PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        if let Some(p) = prompt {
            params.push(("prompt", p));
        }
        reqwest::Url::parse_with_params(&app.url("/authorize"), &params).unwrap()
    };
    let r = browser.get(authorize(None)).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "first party: no consent page"
    );
    let r = browser
        .get(authorize(Some("consent")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text().await.unwrap().contains("Allow"),
        "the consent page"
    );
}

/// BREACH: pages with a CSRF token beside reflected input are never
/// compressed; JSON documents still are. HSTS only on an https issuer.
async fn html_is_never_compressed_and_https_issuers_send_hsts(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app
        .http
        .get(app.url("/login?return_to=%2Faccount"))
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get("content-encoding").is_none(),
        "{:?}",
        r.headers()
    );
    assert!(r.text().await.unwrap().contains("csrf_token"));
    let r = app
        .http
        .get(app.url("/jwks"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers().get("strict-transport-security").is_none());

    let url = app.config.database.url.clone();
    let kek = app.config.keys.kek_file.clone();
    let https = TestApp::spawn_on(&url, |c| {
        c.issuer = "https://login.example".into();
        c.keys.kek_file = kek;
    })
    .await;
    let r = https.http.head(https.url("/healthz")).send().await.unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

async fn health_probes_answer_head(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for path in ["/healthz", "/readyz"] {
        let r = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "HEAD {path}");
    }
}

/// During a database outage `/token` and `/userinfo` answer 503 with
/// `Retry-After`, and `/readyz` answers within a 1 s probe timeout even
/// with a 5 s connect timeout.
#[actix_web::test]
#[cfg_attr(
    not(latchkey_pg),
    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
)]
async fn outage_503s_say_when_to_retry_and_readiness_answers_fast() {
    let db = TestDb::postgres();
    let real = url::Url::parse(&db.url).unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target);
    let mut via_proxy = real.clone();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let proxied = via_proxy.to_string();
    let app = TestApp::spawn_with(db, |c| {
        c.database.url = proxied;
        c.database.connect_timeout_secs = 5;
    })
    .await;
    app.create_user("alice", PASSWORD);
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&rp.id, &rp.secret),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let tokens = tokens.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_tok = tokens["refresh_token"].as_str().unwrap().to_owned();

    proxy.cut();

    let started = Instant::now();
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "a 1 s probe must see the 503, took {:?}",
        started.elapsed()
    );
    assert_eq!(r.headers()["retry-after"], "5");

    let (status, body) = refresh(&app, &rp, &refresh_tok).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_tok.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "5");

    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = refresh(&app, &rp, &refresh_tok).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}
