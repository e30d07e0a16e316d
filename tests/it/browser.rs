//! One real browser: Debian's chromium driven through chromedriver
//! (WebDriver, via fantoccini). A person signs in, allows an app on the
//! consent page, opens My account and revokes the app; its refresh token
//! then fails. `.ci/run` installs chromium and chromium-driver; elsewhere
//! the test says it was skipped when they are absent.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::fixtures::{self, PASSWORD};
use crate::common::{PKCE_CHALLENGE, PKCE_VERIFIER, TestApp, TestDb};
use fantoccini::{ClientBuilder, Locator};
use reqwest::StatusCode;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

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

/// How a session looks at pages.
#[derive(Clone, Copy)]
enum Screen {
    /// A desktop window, JavaScript on.
    Desktop,
    /// A phone's viewport: 390 x 844 CSS pixels (headless windows are at
    /// least 500 wide, so through mobile emulation).
    Phone,
}

async fn session(driver: &Driver, screen: Screen) -> fantoccini::Client {
    let mut options = serde_json::json!({
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1200,900"],
    });
    if let Screen::Phone = screen {
        options["mobileEmulation"] = serde_json::json!({
            "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 3.0 },
        });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Whether chromium and its driver are here; skipping is only allowed
/// outside CI.
fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI must have chromium and chromium-driver (.ci/run installs them)"
    );
    eprintln!(
        "skipped: {CHROMIUM} or {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver)"
    );
    false
}

#[actix_web::test]
async fn sign_in_consent_and_revoke_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let app = TestApp::spawn(TestDb::sqlite()).await;
    app.create_user("alice", PASSWORD);
    app.define_scopes(&["read:notes"]);
    // The app's callback is on another origin (another server), as in
    // real life: the consent form's redirect leaves Latchkey's origin.
    let rp = TestApp::spawn(TestDb::sqlite()).await;
    let callback = rp.url("/rp/callback");
    let client = fixtures::client("Team Wiki")
        .redirect(&callback)
        .scopes("openid offline_access read:notes")
        .create(&app);
    let (id, secret) = (client.id.clone(), client.secret().to_owned());

    let driver = start_driver();
    let browser = session(&driver, Screen::Desktop).await;

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
    sign_in(&browser, "alice").await;
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

/// Fills in and submits the sign-in form on the current page.
async fn sign_in(browser: &fantoccini::Client, username: &str) {
    wait_for(browser, "#username")
        .await
        .send_keys(username)
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
}

/// Clicks `css` (a link or a form's button) and waits for My account to
/// load again.
async fn follow(browser: &fantoccini::Client, css: &str) {
    let before = browser.current_url().await.unwrap();
    wait_for(browser, css).await.click().await.unwrap();
    for _ in 0..150 {
        if browser.current_url().await.unwrap() != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(browser, "#apps").await;
}

/// Whether the page is wider than the window (it would scroll sideways).
async fn scrolls_sideways(browser: &fantoccini::Client) -> bool {
    let v = browser
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    v.as_bool().unwrap()
}

/// My account on a phone (390 CSS pixels wide): 45 authorized apps in
/// pages of 20; Next and Previous are plain links and Revoke a plain form
/// that comes back to the same page (the pages carry no script at all);
/// nothing scrolls sideways.
#[actix_web::test]
async fn authorized_apps_page_on_a_phone() {
    if !browser_available() {
        return;
    }
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let alice = app.create_user("alice", PASSWORD);
    app.define_scopes(&["read:notes"]);
    let t0 = app.clock_now();
    let apps = fixtures::consented_apps(&app, &alice.id, 45, "https://app.example/cb", |i| {
        t0 - time::Duration::minutes(i)
    });

    let driver = start_driver();
    let browser = session(&driver, Screen::Phone).await;
    browser.goto(&app.url("/login")).await.unwrap();
    sign_in(&browser, "alice").await;
    wait_for(&browser, "header").await;
    browser.goto(&app.url("/account")).await.unwrap();
    let width = browser
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert_eq!(width.as_u64(), Some(390));
    wait_for(&browser, "nav.pager").await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("Page 1 of 3") && !page.contains("<script"));
    assert!(!scrolls_sideways(&browser).await, "page 1 at 390 px");

    follow(&browser, "a[rel=next]").await;
    assert!(browser.source().await.unwrap().contains("Page 2 of 3"));
    assert!(!scrolls_sideways(&browser).await, "page 2 at 390 px");
    follow(&browser, "button[aria-label='Revoke access of App 20']").await;
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.query(), Some("done=revoked&apps_page=2"));
    let page = browser.source().await.unwrap();
    assert!(page.contains("Access revoked") && page.contains("Page 2 of 3"));
    assert!(
        !page.contains("App 20<") && page.contains("App 40<"),
        "{page}"
    );
    assert!(!scrolls_sideways(&browser).await, "after revoking");
    follow(&browser, "a[rel=prev]").await;
    assert!(browser.source().await.unwrap().contains("Page 1 of 3"));
    browser.close().await.unwrap();
    assert_eq!(app.count("consents"), 44);
    assert_eq!(apps.len(), 45);
    drop(driver);
}
