//! Strict relying parties from other ecosystems pointed at Latchkey: an
//! answer that only the Rust `openidconnect` crate tolerates is a bug.
//! Node: panva's `openid-client` v6 (tests/interop/node), which validates
//! discovery, the RFC 9207 `iss` parameter, state, PKCE, every ID token
//! claim, the userinfo `sub` and the token responses by the letter.
//! `.ci/run` installs it (`npm ci`); elsewhere the test says it was skipped
//! when Node or the package is missing.

use std::path::Path;
use std::process::Command;

use crate::common::{TestApp, TestDb, consent_form, fixtures};
use reqwest::StatusCode;
use serde_json::Value;

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");
const CALLBACK: &str = "https://rp.example/callback";

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
    app.define_machine_scopes(&["read:notes"]);
    let user = fixtures::alice(&app);
    let rp = fixtures::client("Node RP")
        .redirect(CALLBACK)
        .scopes("openid email profile offline_access read:notes")
        .grants(&["authorization_code", "refresh_token", "client_credentials"])
        .create(&app);
    let (id, secret) = (rp.id.as_str(), rp.secret());

    // The library builds the authorization request...
    let start = node(&["start", &app.base, id, secret, CALLBACK]).await;
    // ...a person signs in and allows it...
    let browser = fixtures::signed_in(&app, "alice").await;
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
