//! Snapshots of what relying parties and resource servers read: the
//! discovery document, the JWKS's shape, the token endpoint's error bodies
//! and userinfo's challenges, on SQLite and PostgreSQL. Any change to them
//! shows up as a diff against `tests/it/snapshots/`: review it, and if it is
//! meant, accept it (`INSTA_UPDATE=always cargo test --test it snapshots::`,
//! or `cargo insta review`). With CI set, insta writes nothing and a
//! missing or different snapshot fails.
//!
//! Both backends compare against the same snapshot. The issuer has a random
//! port: it is written as `[issuer]`. Key material and key ids are redacted.

use insta::assert_json_snapshot;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fixtures::{self, RegisteredClient};
use crate::common::{TestApp, TestDb};

dual_backend!(
    discovery_document,
    jwks_shape,
    token_endpoint_errors,
    userinfo_challenges,
);

/// `value` with the test server's address written as `[issuer]`.
fn normalized(app: &TestApp, value: &Value) -> Value {
    let text = value.to_string().replace(&app.base, "[issuer]");
    serde_json::from_str(&text).expect("JSON")
}

/// What a client sees of a response: status, the headers that matter to
/// it, and the body (JSON, or absent when empty).
async fn seen(app: &TestApp, r: reqwest::Response) -> Value {
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| Value::from(v.to_str().expect("ASCII header")))
    };
    let headers = json!({
        "content-type": header("content-type"),
        "cache-control": header("cache-control"),
        "pragma": header("pragma"),
        "www-authenticate": header("www-authenticate"),
    });
    let body = r.bytes().await.expect("body");
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON body")
    };
    normalized(
        app,
        &json!({ "status": status, "headers": headers, "body": body }),
    )
}

async fn discovery_document(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_json_snapshot!("discovery_document", normalized(&app, &doc));
}

async fn jwks_shape(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut jwks: Value = serde_json::from_str(&app.jwks().await).unwrap();
    // The order of keys carries no meaning; the snapshot needs one.
    jwks["keys"]
        .as_array_mut()
        .expect("keys")
        .sort_by_key(|k| (k["alg"].to_string(), k["kty"].to_string()));
    assert_json_snapshot!("jwks_shape", jwks, {
        ".keys[].kid" => "[kid]",
        ".keys[].n" => "[n]",
        ".keys[].e" => "[e]",
        ".keys[].x" => "[x]",
        ".keys[].y" => "[y]",
    });
}

fn confidential_client(app: &TestApp) -> RegisteredClient {
    fixtures::client("Snapshot RP")
        .redirect("https://rp.example/callback")
        .scopes("openid")
        .grants(&["authorization_code", "refresh_token", "client_credentials"])
        .create(app)
}

async fn token_endpoint_errors(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = confidential_client(&app);
    let post = |secret: &str, form: &[(&str, &str)]| {
        app.http
            .post(app.url("/token"))
            .basic_auth(&rp.id, Some(secret))
            .form(form)
            .send()
    };

    let r = post(rp.secret(), &[("grant_type", "password")])
        .await
        .unwrap();
    assert_json_snapshot!("token_unsupported_grant_type", seen(&app, r).await);

    let r = post(
        "not the secret",
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await
    .unwrap();
    assert_json_snapshot!("token_invalid_client", seen(&app, r).await);

    let r = post(rp.secret(), &[("grant_type", "authorization_code")])
        .await
        .unwrap();
    assert_json_snapshot!("token_invalid_request", seen(&app, r).await);
}

async fn userinfo_challenges(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_json_snapshot!("userinfo_without_token", seen(&app, r).await);

    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_json_snapshot!("userinfo_bad_token", seen(&app, r).await);
}
