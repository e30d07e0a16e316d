//! Holes a security review found, each pinned by a test: password changes
//! end refresh tokens, request objects are refused before sign-in,
//! `prompt=consent` is honoured for first-party clients, HTML is never
//! compressed (BREACH), HSTS on https, HEAD probes, and 503s that say when
//! to come back. SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use crate::common::fixtures::{self, PASSWORD, RegisteredClient};
use crate::common::proxy::postgres_app_behind_proxy;
use crate::common::{self, TestApp, TestDb, code_flow};
use reqwest::StatusCode;
use serde_json::Value;

const CALLBACK: &str = "https://rp.example/cb";

dual_backend!(
    an_admin_password_reset_ends_refresh_tokens,
    a_users_own_password_change_ends_refresh_tokens,
    request_objects_are_refused_before_sign_in,
    prompt_consent_asks_even_for_first_party_clients,
    html_is_never_compressed_and_https_issuers_send_hsts,
    health_probes_answer_head,
    a_burst_of_wrong_passwords_cannot_pass_the_limit,
    one_network_cannot_lock_an_account_out_for_others,
    the_login_return_url_is_no_way_round_prompt_login_or_max_age,
);

type Rp = RegisteredClient;

fn register(app: &TestApp, first_party: bool) -> Rp {
    fixtures::client("Hardening RP")
        .redirect(CALLBACK)
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token"])
        .first_party(first_party)
        .create(app)
}

async fn signed_in(app: &TestApp) -> reqwest::Client {
    fixtures::signed_in(app, "alice").await
}

/// The access and refresh token of a fresh sign-in.
async fn tokens(app: &TestApp, browser: &reqwest::Client, rp: &Rp) -> (String, String) {
    let (_, tokens) = code_flow(
        app,
        browser,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let tokens = tokens.unwrap();
    let get = |k: &str| tokens[k].as_str().unwrap().to_owned();
    (get("access_token"), get("refresh_token"))
}

/// After a credential ends, on this instance and on `other` (same
/// database): the refresh token is refused, and the access token is refused
/// at userinfo and reads inactive at introspection. (Resource servers that
/// verify offline accept it until it expires: access tokens are short.)
async fn tokens_ended(app: &TestApp, other: &TestApp, rp: &Rp, access: &str, refresh_tok: &str) {
    let (status, body) = refresh(app, rp, refresh_tok).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    for instance in [app, other] {
        let r = instance
            .http
            .get(instance.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "userinfo on {}",
            instance.base
        );
        let r = instance
            .http
            .post(instance.url("/introspect"))
            .basic_auth(&rp.id, Some(rp.secret()))
            .form(&[("token", access)])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["active"], false, "introspection on {}", instance.base);
    }
}

async fn second_instance(app: &TestApp) -> TestApp {
    let kek = app.config.keys.kek_file.clone();
    TestApp::spawn_on(&app.config.database.url, |c| c.keys.kek_file = kek).await
}

async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> (StatusCode, Value) {
    fixtures::refresh_at(&app.base, rp, token).await
}

/// An admin's reset through the admin API and through the console (the
/// paths that hash behind the password gate, then write): every session
/// and token of the user ends on every instance, the new password works,
/// the old one does not, and each reset is audited.
async fn an_admin_password_reset_ends_refresh_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "alice");
    fixtures::admin(&app, "root");
    let rp = register(&app, true);
    let other = second_instance(&app).await;
    let api_token = fixtures::admin_api_token(&app).await;
    let root = fixtures::signed_in(&app, "root").await;
    let mut current = PASSWORD.to_owned();
    for (via_api, new) in [
        (true, "a new and longer passphrase"),
        (false, "another long passphrase"),
    ] {
        let browser = app.new_browser();
        let r = app.login(&browser, "alice", &current).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (access, refresh_tok) = tokens(&app, &browser, &rp).await;
        if via_api {
            let r = app
                .http
                .put(app.url("/admin/api/v1/users/alice/password"))
                .bearer_auth(&api_token)
                .json(&serde_json::json!({ "password": new }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        } else {
            let r = fixtures::submit(
                &app,
                &root,
                "/admin/users/alice",
                "/admin/users/alice/password",
                &[("password", new)],
            )
            .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            assert_eq!(r.headers()["location"], "/admin/users/alice?done=password");
        }
        tokens_ended(&app, &other, &rp, &access, &refresh_tok).await;
        let r = browser.get(app.url("/account")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "every session ends");
        let r = app.login(&app.new_browser(), "alice", &current).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old password");
        current = new.to_owned();
    }
    let r = app.login(&app.new_browser(), "alice", &current).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the new password");
    let (_, audit) = app
        .get_with_bearer("/admin/api/v1/audit?action=user.set_password", &api_token)
        .await;
    let mut entries: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    entries.sort_unstable();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries[0].0.starts_with("client:") && entries[0].1 == "alice");
    assert_eq!(entries[1], ("user:root", "alice"));
}

async fn a_users_own_password_change_ends_refresh_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "alice");
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let phone = signed_in(&app).await;
    let (access, refresh_tok) = tokens(&app, &browser, &rp).await;
    let other = second_instance(&app).await;
    let r = fixtures::submit(
        &app,
        &browser,
        "/account",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a new and longer passphrase"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    tokens_ended(&app, &other, &rp, &access, &refresh_tok).await;
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the session that changed it stays"
    );
    let r = phone.get(other.url("/account")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "other sessions end, on every instance"
    );
    let r = app.login(&app.new_browser(), "alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
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
    fixtures::user(&app, "alice");
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
/// compressed; the public JSON documents and the admin API's JSON are.
/// HSTS only on an https issuer.
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
    // The public documents come from precomputed gzip bytes that decode
    // to exactly the plain document; without Accept-Encoding, plain.
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let get = |encoding: &'static str| {
            app.http
                .get(app.url(path))
                .header("Accept-Encoding", encoding)
                .send()
        };
        let r = get("gzip").await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(r.headers()["vary"], "Accept-Encoding", "{path}");
        assert!(r.headers().get("strict-transport-security").is_none());
        let mut decoded = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&r.bytes().await.unwrap()[..]),
            &mut decoded,
        )
        .unwrap();
        let plain = get("identity").await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        assert_eq!(decoded, plain.text().await.unwrap(), "{path}");
    }
    // The admin API's JSON is compressed on the fly.
    let token = fixtures::admin_api_token(&app).await;
    let r = app
        .http
        .get(app.url("/admin/api/v1/audit"))
        .bearer_auth(&token)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");

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
    let (app, proxy) = postgres_app_behind_proxy(5).await;
    fixtures::user(&app, "alice");
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&rp.id, rp.secret()),
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
        .basic_auth(&rp.id, Some(rp.secret()))
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

/// A sign-in from `ip` (the proxy in front of Latchkey reports it).
async fn sign_in_from(app: &TestApp, ip: &str, password: &str) -> StatusCode {
    let browser = app.new_browser();
    let token = app.login_form_token(&browser).await;
    browser
        .post(app.url("/login"))
        .header("X-Forwarded-For", format!("198.51.100.99, {ip}"))
        .form(&[
            ("username", "alice"),
            ("password", password),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

/// Check and record are one step: 20 simultaneous wrong passwords for one
/// account from one network get at most the 5 free tries; the rest are
/// refused (429) before any password work.
async fn a_burst_of_wrong_passwords_cannot_pass_the_limit(db: TestDb) {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(db, |c| {
            c.server.trust_forwarded_for = true;
            c.login.max_failures_per_account = 5;
        })
        .await,
    );
    fixtures::user(&app, "alice");
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        burst.spawn_local(async move { sign_in_from(&app, "203.0.113.7", "wrong guess!").await });
    }
    let (mut tried, mut refused) = (0, 0);
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => tried += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(tried <= 5, "{tried} attempts got password checks");
    assert_eq!(tried + refused, 20);
}

/// An attacker failing from one network backs off there, while the owner
/// signs in from another (the old per-account lock let anyone lock an
/// account, admin included, for good).
async fn one_network_cannot_lock_an_account_out_for_others(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.server.trust_forwarded_for = true;
        c.login.max_failures_per_account = 3;
    })
    .await;
    fixtures::user(&app, "alice");
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        last = sign_in_from(&app, "203.0.113.7", "wrong guess!").await;
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker's network backs off"
    );
    assert_eq!(
        sign_in_from(&app, "203.0.113.7", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even with the right password, from there"
    );
    assert_eq!(
        sign_in_from(&app, "192.0.2.44", PASSWORD).await,
        StatusCode::SEE_OTHER,
        "the owner, elsewhere, is not locked out"
    );
    // IPv6 neighbours share a /64: hopping addresses inside it does not help.
    for i in 0..8 {
        sign_in_from(&app, &format!("2001:db8:5:6::{i:x}"), "wrong guess!").await;
    }
    assert_eq!(
        sign_in_from(&app, "2001:db8:5:6::abcd", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// `prompt=login` and `max_age` used to be met by dropping them from the
/// login page's return URL, so opening that URL without signing in got a
/// code. Now the return URL keeps them, with a marker of when the sign-in
/// was asked for: only a sign-in since then meets them, and `max_age=0`
/// does not loop.
async fn the_login_return_url_is_no_way_round_prompt_login_or_max_age(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "alice");
    let rp = register(&app, true);
    let browser = signed_in(&app).await;
    for extra in [("prompt", "login"), ("max_age", "0")] {
        app.clock.advance(time::Duration::seconds(5));
        let url = reqwest::Url::parse_with_params(
            &app.url("/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", rp.id.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", "openid"),
                ("code_challenge", common::PKCE_CHALLENGE),
                ("code_challenge_method", "S256"),
                extra,
            ],
        )
        .unwrap();
        let r = browser.get(url).send().await.unwrap();
        let login = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(login.starts_with("/login?"), "{extra:?}: {login}");
        let return_to = url::Url::parse(&app.url(&login))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        // Straight to the return URL, without signing in: asked again.
        let r = browser.get(app.url(&return_to)).send().await.unwrap();
        let again = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(again.starts_with("/login?"), "{extra:?}: went to {again}");
        // Signing in, then the return URL: the code, no loop.
        app.clock.advance(time::Duration::seconds(3));
        let r = app.login(&browser, "alice", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        app.clock.advance(time::Duration::seconds(3));
        let r = browser.get(app.url(&return_to)).send().await.unwrap();
        let back = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            back.starts_with(CALLBACK) && back.contains("code="),
            "{extra:?}: {back}"
        );
    }
}
