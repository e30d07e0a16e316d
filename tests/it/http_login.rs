//! Sign-in, sign-out, sessions, CSRF, throttling and bad input over HTTP,
//! on both backends.

use crate::common::{self, TestApp, TestDb, csrf_token_in};
use reqwest::StatusCode;
use time::Duration;

dual_backend!(
    health_and_readiness,
    sign_in_and_out,
    wrong_password_and_unknown_user_look_the_same,
    csrf_is_required,
    foreign_origin_is_refused,
    failures_are_throttled_per_account,
    failures_are_throttled_per_ip,
    sessions_expire_when_idle,
    disabled_user_cannot_sign_in,
    return_to_is_local_only,
    bad_forms_are_refused_cleanly,
    pages_send_security_headers,
);

async fn health_and_readiness(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let r = app.http.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().contains_key("x-request-id"));
}

async fn sign_in_and_out(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", "correct horse battery");
    let browser = app.new_browser();
    assert!(
        app.home_html(&browser)
            .await
            .contains("You are not signed in")
    );

    let r = app.login(&browser, "Alice", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latchkey_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "http issuer must not set Secure: {cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("latchkey_session=");
    assert_eq!(value.len(), 43, "256-bit base64url id");
    assert_eq!(app.count("sessions"), 1);

    let home = app.home_html(&browser).await;
    assert!(
        home.contains("signed in as <strong>alice</strong>"),
        "{home}"
    );

    // Sign out through the confirmation form.
    let page = browser
        .get(app.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_token_in(&page).unwrap();
    let r = browser
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_eq!(app.count("sessions"), 0);
    assert!(
        app.home_html(&browser)
            .await
            .contains("You are not signed in")
    );
}

async fn wrong_password_and_unknown_user_look_the_same(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("bob", "correct horse battery");
    let browser = app.new_browser();
    let wrong = app.login(&browser, "bob", "wrong password").await;
    let wrong_status = wrong.status();
    let wrong_body = wrong.text().await.unwrap();
    let unknown = app.login(&browser, "nobody", "wrong password").await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body = unknown.text().await.unwrap();
    assert!(wrong_body.contains("Invalid username or password."));
    assert!(unknown_body.contains("Invalid username or password."));
    // Same page but for the echoed username.
    assert_eq!(
        wrong_body.replace("value=\"bob\"", ""),
        unknown_body.replace("value=\"nobody\"", "")
    );
    assert_eq!(app.count("sessions"), 0);
}

async fn csrf_is_required(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("carol", "correct horse battery");
    let browser = app.new_browser();
    let token = app.login_form_token(&browser).await;

    // Missing token field.
    let r = app
        .post_login(&browser, None, "carol", "correct horse battery")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Wrong token.
    let r = app
        .post_login(
            &browser,
            Some(&"x".repeat(43)),
            "carol",
            "correct horse battery",
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The right token from another browser (no matching cookie).
    let other = app.new_browser();
    let r = app
        .post_login(&other, Some(&token), "carol", "correct horse battery")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("sessions"), 0);

    // Logout needs it too: a forged POST leaves the session alone.
    let r = app.login(&browser, "carol", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser
        .post(app.url("/logout"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("sessions"), 1);
}

async fn foreign_origin_is_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("dan", "correct horse battery");
    let browser = app.new_browser();
    let token = app.login_form_token(&browser).await;
    let r = browser
        .post(app.url("/login"))
        .header("Origin", "https://evil.example")
        .form(&[
            ("username", "dan"),
            ("password", "correct horse battery"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Our own origin is fine.
    let r = browser
        .post(app.url("/login"))
        .header("Origin", app.base.as_str())
        .form(&[
            ("username", "dan"),
            ("password", "correct horse battery"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn failures_are_throttled_per_account(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.login.max_failures_per_account = 3;
        c.login.throttle_window_secs = 600;
    })
    .await;
    app.create_user("erin", "correct horse battery");
    let browser = app.new_browser();
    for _ in 0..3 {
        let r = app.login(&browser, "erin", "nope nope").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, and says why.
    let r = app.login(&browser, "erin", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
    // Unknown accounts are throttled the same way (no enumeration).
    for _ in 0..3 {
        app.login(&browser, "ghost", "nope nope").await;
    }
    assert_eq!(
        app.login(&browser, "ghost", "nope nope").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // After the window, the account can sign in again; success resets it.
    app.clock.advance(Duration::seconds(601));
    let r = app.login(&browser, "erin", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn failures_are_throttled_per_ip(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.login.max_failures_per_account = 100;
        c.login.max_failures_per_ip = 4;
    })
    .await;
    app.create_user("fay", "correct horse battery");
    let browser = app.new_browser();
    // Spraying different usernames from one address…
    for i in 0..4 {
        let r = app
            .login(&browser, &format!("user{i}"), "guess guess")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // …locks that address out, whatever account it tries.
    let r = app.login(&browser, "fay", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.count("sessions"), 0);
}

async fn sessions_expire_when_idle(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.session.idle_timeout_secs = 600;
        c.session.absolute_timeout_secs = 3600;
    })
    .await;
    app.create_user("gus", "correct horse battery");
    let browser = app.new_browser();
    assert_eq!(
        app.login(&browser, "gus", "correct horse battery")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.clock.advance(Duration::seconds(500));
    assert!(app.home_html(&browser).await.contains("signed in as"));
    app.clock.advance(Duration::seconds(500));
    assert!(
        app.home_html(&browser).await.contains("signed in as"),
        "use resets the idle timer"
    );
    app.clock.advance(Duration::seconds(601));
    assert!(
        app.home_html(&browser)
            .await
            .contains("You are not signed in")
    );
    assert_eq!(app.count("sessions"), 0);

    // Absolute expiry, however active.
    assert_eq!(
        app.login(&browser, "gus", "correct horse battery")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..6 {
        app.clock.advance(Duration::seconds(590));
        assert!(app.home_html(&browser).await.contains("signed in as"));
    }
    app.clock.advance(Duration::seconds(70));
    assert!(
        app.home_html(&browser)
            .await
            .contains("You are not signed in")
    );
}

async fn disabled_user_cannot_sign_in(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("hal", "correct horse battery");
    let browser = app.new_browser();
    assert_eq!(
        app.login(&browser, "hal", "correct horse battery")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    {
        let mut c = common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "hal", true, app.clock_now()).unwrap();
    }
    assert!(
        app.home_html(&browser)
            .await
            .contains("You are not signed in")
    );
    let r = app.login(&browser, "hal", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Invalid username or password.")
    );
}

async fn return_to_is_local_only(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("ivy", "correct horse battery");
    for (asked, expected) in [
        ("/somewhere?x=1", "/somewhere?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
    ] {
        let browser = app.new_browser();
        let page = browser
            .get(app.url("/login"))
            .query(&[("return_to", asked), ("login_hint", "ivy")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("value=\"ivy\""),
            "login_hint prefills the username"
        );
        let token = csrf_token_in(&page).unwrap();
        let r = browser
            .post(app.url("/login"))
            .form(&[
                ("username", "ivy"),
                ("password", "correct horse battery"),
                ("csrf_token", token.as_str()),
                ("return_to", asked),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], expected, "return_to {asked}");
    }
}

async fn bad_forms_are_refused_cleanly(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("jo", "correct horse battery");
    let browser = app.new_browser();
    let token = app.login_form_token(&browser).await;
    let post = |body: Vec<u8>, ctype: &'static str| {
        browser
            .post(app.url("/login"))
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    // Invalid UTF-8.
    let mut body = format!("csrf_token={token}&password=x&username=").into_bytes();
    body.extend_from_slice(&[0xff, 0xfe]);
    let r = post(body, "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Percent-encoded invalid UTF-8.
    let body = format!("csrf_token={token}&password=x&username=%FF%FE").into_bytes();
    let r = post(body, "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Too large.
    let body = format!(
        "csrf_token={token}&username=jo&password={}",
        "a".repeat(20_000)
    )
    .into_bytes();
    let r = post(body, "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Wrong content type.
    let r = post(b"{}".to_vec(), "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Over-long fields: refused as bad credentials, nothing stored.
    let long_user = "u".repeat(5000);
    let r = app.login(&browser, &long_user, "whatever").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let long_pw = "p".repeat(1500);
    let r = app.login(&browser, "jo", &long_pw).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("sessions"), 0);
    // None of this was a server error, and the server still works.
    assert_eq!(
        app.login(&browser, "jo", "correct horse battery")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

async fn pages_send_security_headers(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app.http.get(app.url("/login")).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let csrf = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latchkey_csrf="))
        .expect("csrf cookie");
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"),
        "{csrf}"
    );
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script"), "no JavaScript needed");
    assert!(html.contains("type=\"password\""));
}
