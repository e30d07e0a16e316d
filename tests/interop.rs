//! Strict relying parties from other ecosystems pointed at Latchkey: an
//! answer that only the Rust `openidconnect` crate tolerates is a bug.
//! Node: panva's `openid-client` v6 (tests/interop/node), which validates
//! discovery, the RFC 9207 `iss` parameter, state, PKCE, every ID token
//! claim, the userinfo `sub` and the token responses by the letter.
//! `.ci/run` installs it (`npm ci`); elsewhere the test says it was skipped
//! when Node or the package is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestApp, TestDb, consent_form};
use latchkey::domain::client::ClientInput;
use latchkey::domain::user::ProfileInput;
use latchkey::service::clients;
use latchkey::service::users::{self, NewUser};
use reqwest::StatusCode;
use serde_json::Value;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");
const CALLBACK: &str = "https://rp.example/callback";
const PASSWORD: &str = "correct horse battery";

fn node_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    node.is_ok_and(|o| o.status.success())
        && Path::new(NODE_DIR)
            .join("node_modules/openid-client")
            .exists()
}

/// Runs rp.mjs off the test's thread (the server under test shares it).
async fn node(args: &[&str]) -> Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(NODE_DIR)
            .arg("rp.mjs")
            .args(&args)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    assert!(
        out.status.success(),
        "openid-client refused Latchkey's answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from rp.mjs")
}

#[actix_web::test]
async fn node_openid_client_signs_in_refreshes_and_introspects() {
    if !node_ready() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have node and tests/interop/node/node_modules (.ci/run runs npm ci)"
        );
        eprintln!(
            "skipped: node or {NODE_DIR}/node_modules missing (npm ci --prefix tests/interop/node)"
        );
        return;
    }
    let app = TestApp::spawn(TestDb::sqlite()).await;
    app.define_scopes(&["read:notes"]);
    let user = {
        let mut c = common::conn(&app.db);
        users::create(
            &mut c,
            &NewUser {
                username: "alice",
                email: Some("alice@example.com"),
                email_verified: true,
                profile: ProfileInput {
                    name: Some("Alice Liddell"),
                    ..Default::default()
                },
                ..Default::default()
            },
            Some(PASSWORD),
            app.clock_now(),
        )
        .unwrap()
    };
    let issued = {
        let mut c = common::conn(&app.db);
        clients::create(
            &mut c,
            None,
            &ClientInput {
                name: "Node RP".into(),
                redirect_uris: vec![CALLBACK.into()],
                scopes: vec!["openid email profile offline_access read:notes".into()],
                grant_types: vec![
                    "authorization_code".into(),
                    "refresh_token".into(),
                    "client_credentials".into(),
                ],
                ..Default::default()
            },
            &latchkey::domain::alg::SigningAlg::ALL,
            app.clock_now(),
        )
        .unwrap()
    };
    let (id, secret) = (
        issued.client.client_id.as_str(),
        issued.client_secret.as_deref().unwrap(),
    );

    // The library builds the authorization request...
    let start = node(&["start", &app.base, id, secret, CALLBACK]).await;
    // ...a person signs in and allows it...
    let browser = app.new_browser();
    assert_eq!(
        app.login(&browser, "alice", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let r = browser
        .get(start["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the consent page");
    let page = r.text().await.unwrap();
    let r = browser
        .post(app.url("/authorize/consent"))
        .form(&consent_form(&page, "allow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();

    // ...and the library takes it from there, validating as it goes.
    let out = node(&[
        "finish",
        &app.base,
        id,
        secret,
        &callback,
        start["verifier"].as_str().unwrap(),
        start["state"].as_str().unwrap(),
        start["nonce"].as_str().unwrap(),
    ])
    .await;
    assert_eq!(out["claims"]["sub"], user.id.as_str());
    assert_eq!(out["claims"]["iss"], app.base.as_str());
    assert_eq!(out["claims"]["email"], "alice@example.com");
    assert_eq!(out["userinfo"]["name"], "Alice Liddell");
    assert_eq!(out["token_type"], "bearer", "openid-client lowercases it");
    assert_eq!(out["scope"], "email offline_access openid profile");
    assert_eq!(out["introspection"]["active"], true);
    assert_eq!(out["introspection"]["sub"], user.id.as_str());

    let out = node(&["client", &app.base, id, secret, "read:notes"]).await;
    assert_eq!(out["scope"], "read:notes");
}
