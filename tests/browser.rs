//! One real browser: Debian's chromium driven through chromedriver
//! (WebDriver, via fantoccini). A person signs in, allows an app on the
//! consent page, opens My account and revokes the app; its refresh token
//! then fails. `.ci/run` installs chromium and chromium-driver; elsewhere
//! the test says it was skipped when they are absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PKCE_CHALLENGE, PKCE_VERIFIER, TestApp, TestDb};
use fantoccini::{ClientBuilder, Locator};
use latchkey::domain::client::ClientInput;
use latchkey::service::clients;
use reqwest::StatusCode;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-path={}",
            std::env::temp_dir()
                .join("latchkey-chromedriver.log")
                .display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return driver;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not listen on port {port}");
}

/// Waits up to 15 s for `css` to appear; on timeout fails with the page.
async fn wait_for(browser: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    for _ in 0..150 {
        if let Ok(e) = browser.find(Locator::Css(css)).await {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = browser.current_url().await.map(|u| u.to_string());
    let page = browser.source().await.unwrap_or_default();
    panic!("{css} did not appear; at {url:?}:\n{page}");
}

#[actix_web::test]
async fn sign_in_consent_and_revoke_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have chromium and chromium-driver (.ci/run installs them)"
        );
        eprintln!(
            "skipped: {CHROMIUM} or {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let app = TestApp::spawn(TestDb::sqlite()).await;
    app.create_user("alice", PASSWORD);
    app.define_scopes(&["read:notes"]);
    // The app's callback is on another origin (another server), as in
    // real life: the consent form's redirect leaves Latchkey's origin.
    let rp = TestApp::spawn(TestDb::sqlite()).await;
    let callback = rp.url("/rp/callback");
    let issued = {
        let mut c = common::conn(&app.db);
        clients::create(
            &mut c,
            None,
            &ClientInput {
                name: "Team Wiki".into(),
                redirect_uris: vec![callback.clone()],
                scopes: vec!["openid offline_access read:notes".into()],
                ..Default::default()
            },
            &latchkey::domain::alg::SigningAlg::ALL,
            app.clock_now(),
        )
        .unwrap()
    };
    let (id, secret) = (
        issued.client.client_id.clone(),
        issued.client_secret.unwrap(),
    );

    let driver = start_driver();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,900"],
        }),
    );
    let browser = ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");

    let authorize = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", callback.as_str()),
            ("scope", "openid offline_access read:notes"),
            ("state", "browser"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    browser.goto(authorize.as_str()).await.unwrap();

    // The sign-in page, then the consent page.
    wait_for(&browser, "#username")
        .await
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let allow = wait_for(&browser, "button[value=allow]").await;
    let consent = browser.source().await.unwrap();
    assert!(consent.contains("Team Wiki") && consent.contains("read:notes"));
    allow.click().await.unwrap();

    // Back at the app with a code (the page itself is a 404: no app runs
    // there; the URL is what matters).
    let mut code = None;
    for _ in 0..50 {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(&callback) {
            code = url
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.expect("redirected to the app with a code");
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", PKCE_VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: serde_json::Value = r.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // My account lists the app; Revoke removes it.
    browser.goto(&app.url("/account")).await.unwrap();
    let revoke = wait_for(&browser, "button[aria-label='Revoke access of Team Wiki']").await;
    revoke.click().await.unwrap();
    wait_for(&browser, "p.notice").await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("Access revoked"), "{page}");
    assert!(page.contains("No application has access"));
    browser.close().await.unwrap();

    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    drop(driver);
}
