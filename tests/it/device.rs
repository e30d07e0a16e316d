//! The device authorization grant (RFC 8628) end to end, on SQLite and
//! PostgreSQL: the `openidconnect` crate as the device, a reqwest client
//! playing the person at `/device`, and every refusal the spec names.
//! Time is the test app's manual clock: nothing here sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::fixtures::{self, RegisteredClient, json, text};
use crate::common::{self, TestApp, TestDb, consent_form, csrf_token_in};
use openidconnect::core::CoreUserInfoClaims;
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope,
    TokenResponse,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

dual_backend!(
    a_cli_signs_in_with_openidconnect_and_reads_userinfo,
    polling_too_fast_slows_down_and_the_interval_grows,
    deny_is_access_denied,
    an_expired_code_is_expired_token,
    a_device_code_is_redeemed_once,
    another_clients_device_code_is_refused,
    guessing_user_codes_is_throttled,
    only_clients_allowed_the_grant_start_it,
    a_public_client_signs_in_with_its_client_id,
    group_restricted_scopes_are_narrowed,
    the_prefilled_code_is_shown_and_never_approved_by_itself,
    every_way_of_registering_gives_the_device_grant,
    starting_device_authorizations_is_limited_per_network,
);

/// A client allowed the device grant (and refresh tokens), confidential
/// unless `public`.
pub(crate) fn tv(app: &TestApp, name: &str, public: bool) -> RegisteredClient {
    fixtures::client(name)
        .scopes("openid profile email offline_access")
        .grants(&[DEVICE_GRANT, "refresh_token"])
        .public(public)
        .create(app)
}

/// A form request as `client` would send it: HTTP Basic when it has a
/// secret, else its `client_id` in the body.
fn as_client(
    app: &TestApp,
    path: &str,
    client: &RegisteredClient,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let r = app.http.post(app.url(path));
    match &client.secret {
        Some(s) => r.basic_auth(&client.id, Some(s)),
        None => {
            form.push(("client_id", &client.id));
            r
        }
    }
    .form(&form)
}

/// `POST /device/authorize` for `scope`; the answer must be a new request.
pub(crate) async fn start(app: &TestApp, client: &RegisteredClient, scope: &str) -> Value {
    let (status, body) = json(as_client(
        app,
        "/device/authorize",
        client,
        &[("scope", scope)],
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// One poll of the token endpoint with `device`'s code.
pub(crate) async fn poll(
    app: &TestApp,
    client: &RegisteredClient,
    device: &Value,
) -> (StatusCode, Value) {
    let code = device["device_code"].as_str().unwrap();
    json(as_client(
        app,
        "/token",
        client,
        &[("grant_type", DEVICE_GRANT), ("device_code", code)],
    ))
    .await
}

#[track_caller]
pub(crate) fn assert_error(answer: &(StatusCode, Value), code: &str) {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
}

/// The person types `code` at `/device` in a signed-in `browser`.
pub(crate) async fn enter_raw(
    app: &TestApp,
    browser: &reqwest::Client,
    code: &str,
) -> reqwest::Response {
    let token = csrf_token_in(&text(browser.get(app.url("/device"))).await).expect("code form");
    browser
        .post(app.url("/device"))
        .form(&[("csrf_token", token.as_str()), ("user_code", code)])
        .send()
        .await
        .unwrap()
}

/// [`enter_raw`]: the status and the page.
async fn enter(app: &TestApp, browser: &reqwest::Client, code: &str) -> (StatusCode, String) {
    let r = enter_raw(app, browser, code).await;
    (r.status(), r.text().await.unwrap())
}

/// Posts an answer to the device consent page from `browser`.
async fn consent_post(
    app: &TestApp,
    browser: &reqwest::Client,
    form: &[(String, String)],
) -> reqwest::Response {
    browser
        .post(app.url("/device/consent"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The person enters `code` and answers `decision` ("allow" or "deny") on
/// the consent page; returns the final page.
pub(crate) async fn answer(
    app: &TestApp,
    browser: &reqwest::Client,
    code: &str,
    decision: &str,
) -> String {
    let (status, page) = enter(app, browser, code).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let r = consent_post(app, browser, &consent_form(&page, decision)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

pub(crate) fn user_code(device: &Value) -> &str {
    device["user_code"].as_str().unwrap()
}

async fn a_cli_signs_in_with_openidconnect_and_reads_userinfo(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = tv(&app, "Terminal client", false);
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap();
    let (_, discovery) = json(app.http.get(app.url("/.well-known/openid-configuration"))).await;
    let endpoint = discovery["device_authorization_endpoint"].as_str().unwrap();
    assert_eq!(endpoint, app.url("/device/authorize"));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.id.clone()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint.into()).unwrap());
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(details.interval(), std::time::Duration::from_secs(5));
    assert_eq!(details.expires_in(), std::time::Duration::from_secs(600));
    let shown = details.user_code().secret().clone();
    assert_eq!(
        details.verification_uri_complete().unwrap().secret(),
        &app.url(&format!("/device?user_code={shown}"))
    );

    // The device polls; its first answer is authorization_pending. While it
    // waits, the person signs in (from the verification URI, as a phone
    // would), checks the code and allows; then the device's wait is over.
    let (polled_tx, mut polled_rx) = tokio::sync::watch::channel(0usize);
    let polled_tx = Arc::new(polled_tx);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let waits = Arc::new(AtomicUsize::new(0));
    let (clock, counted) = (app.clock.clone(), waits.clone());
    let sleep = move |d: std::time::Duration| {
        let (mut done, clock, polled) = (done_rx.clone(), clock.clone(), polled_tx.clone());
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let _ = polled.send(n);
            let _ = done.wait_for(|d| *d).await;
            clock.advance(Duration::seconds(i64::try_from(d.as_secs()).unwrap()));
        }
    };
    let device = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(&http, sleep, None);
    let person = async {
        polled_rx.wait_for(|n| *n >= 1).await.unwrap();
        let browser = app.new_browser();
        let url = details.verification_uri_complete().unwrap().secret();
        let r = browser.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign in first");
        let login = r.headers()["location"].to_str().unwrap().to_owned();
        let back = fixtures::sign_in_from(&app, &browser, &login, "alice").await;
        let page = text(browser.get(app.url(&back))).await;
        assert!(page.contains(&format!("value=\"{shown}\"")), "{page}");
        let done = answer(&app, &browser, &shown, "allow").await;
        assert!(done.contains("Device connected"), "{done}");
        done_tx.send(true).unwrap();
        browser
    };
    let (tokens, browser) = tokio::join!(device, person);
    let tokens = tokens.unwrap();
    assert_eq!(waits.load(Ordering::SeqCst), 1, "one authorization_pending");

    // An ID token for the session that approved it.
    let id_token = tokens.id_token().expect("openid was granted");
    let claims = id_token
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert!(claims.auth_time().is_some());
    let raw = common::verify_with_jwks(&app.jwks().await, &id_token.to_string()).unwrap();
    assert!(raw["sid"].as_str().is_some_and(|s| !s.is_empty()), "{raw}");
    let scopes: Vec<&str> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert!(scopes.contains(&"offline_access") && scopes.contains(&"profile"));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let name = info.name().unwrap().get(None).unwrap();
    assert_eq!(name.as_str(), "Alice Liddell");

    // The refresh token works, and My account lists the app with Revoke,
    // after which the refresh token fails.
    let refresh = tokens.refresh_token().expect("offline_access").secret();
    let (status, refreshed) = fixtures::refresh_at(&app.base, &rp, refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let account = text(browser.get(app.url("/account"))).await;
    assert!(account.contains("Terminal client"), "{account}");
    let token = csrf_token_in(&account).unwrap();
    let r = browser
        .post(app.url("/account/apps/revoke"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("client_id", rp.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    let next = refreshed["refresh_token"].as_str().unwrap();
    let (status, _) = fixtures::refresh_at(&app.base, &rp, next).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "revoked");
}

async fn polling_too_fast_slows_down_and_the_interval_grows(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid").await;
    assert_eq!(device["interval"], 5);
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");
    // At once again: too fast. The interval is now 10 s.
    let fast = poll(&app, &rp, &device).await;
    assert_error(&fast, "slow_down");
    assert!(
        fast.1["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds")
    );
    // The old 5 s are not enough any more (and the interval grows again).
    app.clock.advance(Duration::seconds(5));
    assert_error(&poll(&app, &rp, &device).await, "slow_down");
    app.clock.advance(Duration::seconds(14));
    assert_error(&poll(&app, &rp, &device).await, "slow_down");
    // Waiting the grown interval (now 20 s) is fine.
    app.clock.advance(Duration::seconds(20));
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");
    app.clock.advance(Duration::seconds(20));
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");
}

async fn deny_is_access_denied(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid profile").await;
    let browser = fixtures::signed_in(&app, "alice").await;
    let page = answer(&app, &browser, user_code(&device), "deny").await;
    assert!(page.contains("Access denied"), "{page}");
    assert_error(&poll(&app, &rp, &device).await, "access_denied");
    app.clock.advance(Duration::seconds(5));
    assert_error(&poll(&app, &rp, &device).await, "access_denied");
    // The code is used up: entering it again finds nothing to allow.
    let (status, page) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("That code is not valid"), "{page}");
    assert_eq!(app.count("grants"), 0);

    // A client whose grant an administrator took away meanwhile: nothing
    // to allow, and its polls are refused.
    let device = start(&app, &rp, "openid").await;
    let changes = latchkey::service::clients::ClientChanges {
        grant_types: Some(vec!["refresh_token".into()]),
        ..Default::default()
    };
    latchkey::service::clients::update(
        &mut common::conn(&app.db),
        &rp.id,
        changes,
        &app.config.keys.algorithms,
        app.clock_now(),
    )
    .unwrap();
    let (status, _) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.clock.advance(Duration::seconds(5));
    // The token endpoint's client cache (5 s) may still hold the old
    // registration: then the request itself answers, denied.
    let (status, body) = poll(&app, &rp, &device).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refused = ["unauthorized_client", "access_denied"];
    assert!(refused.contains(&body["error"].as_str().unwrap()), "{body}");
    assert_eq!(app.count("grants"), 0);
}

async fn an_expired_code_is_expired_token(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.device.code_ttl_secs = 30).await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid").await;
    assert_eq!(device["expires_in"], 30);
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");
    app.clock.advance(Duration::seconds(30));
    assert_error(&poll(&app, &rp, &device).await, "expired_token");
    // Too late for the person as well.
    let browser = fixtures::signed_in(&app, "alice").await;
    let (status, _) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Housekeeping deletes it; a poll then reads an unknown code.
    let mut c = common::conn(&app.db);
    let purged = latchkey::service::housekeeping::purge(
        &mut c,
        app.clock_now() + Duration::seconds(1),
        latchkey::service::sessions::SessionPolicy::from_config(&app.config.session),
        Duration::minutes(15),
        Duration::days(90),
    )
    .unwrap();
    assert_eq!(purged.device_codes, 1);
    assert_error(&poll(&app, &rp, &device).await, "invalid_grant");
}

async fn a_device_code_is_redeemed_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid offline_access").await;
    let browser = fixtures::signed_in(&app, "alice").await;
    answer(&app, &browser, user_code(&device), "allow").await;
    // Two polls at the same moment: exactly one gets the tokens.
    let (a, b) = tokio::join!(poll(&app, &rp, &device), poll(&app, &rp, &device));
    let (won, lost) = if a.0 == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(won.0, StatusCode::OK, "{}", won.1);
    assert!(won.1["refresh_token"].is_string() && won.1["id_token"].is_string());
    assert_eq!(won.1["scope"], "offline_access openid");
    assert_error(&lost, "invalid_grant");
    // And every later one is refused too; the tokens stay good.
    app.clock.advance(Duration::seconds(5));
    assert_error(&poll(&app, &rp, &device).await, "invalid_grant");
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(won.1["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.count("grants"), 1);
}

async fn another_clients_device_code_is_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let other = tv(&app, "Other TV", false);
    let device = start(&app, &rp, "openid").await;
    let browser = fixtures::signed_in(&app, "alice").await;
    answer(&app, &browser, user_code(&device), "allow").await;
    assert_error(&poll(&app, &other, &device).await, "invalid_grant");
    // A client that may not use the grant is refused before any lookup.
    let web = fixtures::client("Web app")
        .redirect("https://web.example/cb")
        .create(&app);
    let (status, body) = poll(&app, &web, &device).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    // Neither changed anything: the right client still gets its tokens.
    let (status, body) = poll(&app, &rp, &device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn guessing_user_codes_is_throttled(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        // A window shorter than the code's life, to see the code work after.
        c.login.throttle_window_secs = 300;
        c.device.max_failures_per_session = 3;
        c.device.max_failures_per_ip = 5;
    })
    .await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid").await;
    let right = user_code(&device).to_owned();
    // Sure to be wrong: same letters, another order.
    let wrong: String = right.chars().rev().collect();
    let wrong = if wrong == right {
        "BBBB-BBBB".into()
    } else {
        wrong
    };

    let first = fixtures::signed_in(&app, "alice").await;
    for _ in 0..3 {
        let (status, page) = enter(&app, &first, &wrong).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    }
    // Past the session's allowance, even the right code waits.
    for code in [wrong.as_str(), right.as_str()] {
        let r = enter_raw(&app, &first, code).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 300);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Too many wrong codes. Try again in 5 minutes.")
        );
    }
    // A new session from the same network has what is left of the
    // network's allowance (5): two more.
    let second = fixtures::signed_in(&app, "alice").await;
    for _ in 0..2 {
        assert_eq!(
            enter(&app, &second, &wrong).await.0,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        enter(&app, &second, &right).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Once the window has passed, the right code is taken.
    app.clock.advance(Duration::seconds(
        i64::try_from(app.config.login.throttle_window_secs).unwrap(),
    ));
    let (status, page) = enter(&app, &second, &right).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Allow TV to access your account?"), "{page}");
}

async fn only_clients_allowed_the_grant_start_it(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = tv(&app, "TV", false);
    let web = fixtures::client("Web app")
        .redirect("https://web.example/cb")
        .create(&app);
    let ask = |client: &RegisteredClient, scope: &str| {
        json(as_client(
            &app,
            "/device/authorize",
            client,
            &[("scope", scope)],
        ))
    };
    let (status, body) = ask(&web, "openid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (status, body) = ask(&rp, "openid admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = json(as_client(&app, "/device/authorize", &rp, &[])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = json(as_client(
        &app,
        "/device/authorize",
        &rp,
        &[
            ("scope", "openid"),
            ("resource", "https://elsewhere.example"),
        ],
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // Wrong secret, unknown client: invalid_client, 401, with a challenge.
    let forged = RegisteredClient {
        id: rp.id.clone(),
        secret: Some("not-the-secret".into()),
    };
    let unknown = RegisteredClient {
        id: "nobody".into(),
        secret: None,
    };
    for client in [&forged, &unknown] {
        let r = as_client(&app, "/device/authorize", client, &[("scope", "openid")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key("www-authenticate"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // A form body only.
    let (status, body) = json(
        app.http
            .post(app.url("/device/authorize"))
            .basic_auth(&rp.id, rp.secret.as_ref())
            .json(&json!({"scope": "openid"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(app.count("device_codes"), 0);
    // What a good answer holds, and its headers.
    let r = as_client(&app, "/device/authorize", &rp, &[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let code = body["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 9);
    assert!(code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        "BCDFGHJKLMNPQRSTVWXZ".contains(c)
    }));
    assert!(body["device_code"].as_str().unwrap().len() >= 43);
    assert_eq!(body["verification_uri"], app.url("/device"));
}

async fn a_public_client_signs_in_with_its_client_id(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let cli = tv(&app, "Command-line tool", true);
    let device = start(&app, &cli, "openid email").await;
    assert_error(&poll(&app, &cli, &device).await, "authorization_pending");
    let browser = fixtures::signed_in(&app, "alice").await;
    answer(&app, &browser, user_code(&device), "allow").await;
    app.clock.advance(Duration::seconds(5));
    let (status, tokens) = poll(&app, &cli, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "email openid");
    assert!(tokens.get("refresh_token").is_none(), "no offline_access");
    // A public client has no secret to send.
    let (status, body) = json(
        app.http
            .post(app.url("/device/authorize"))
            .basic_auth(&cli.id, Some("made-up"))
            .form(&[("scope", "openid")]),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

async fn group_restricted_scopes_are_narrowed(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    fixtures::restricted_scope(&app, "read:payroll", "finance");
    let rp = fixtures::client("Payroll kiosk")
        .scopes("openid read:payroll")
        .grants(&[DEVICE_GRANT])
        .create(&app);
    let browser = fixtures::signed_in(&app, "alice").await;

    // alice is not in finance: the consent page and the tokens leave it out.
    let device = start(&app, &rp, "openid read:payroll").await;
    let (status, page) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<code>openid</code>"), "{page}");
    assert!(!page.contains("read:payroll"), "{page}");
    answer(&app, &browser, user_code(&device), "allow").await;
    let (status, tokens) = poll(&app, &rp, &device).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tokens["scope"], "openid");

    // Asking for nothing she may hold is denied at once.
    let device = start(&app, &rp, "read:payroll").await;
    let (status, page) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("Payroll kiosk asks only for permissions"),
        "{page}"
    );
    assert_error(&poll(&app, &rp, &device).await, "access_denied");
}

async fn the_prefilled_code_is_shown_and_never_approved_by_itself(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = tv(&app, "TV", false);
    let device = start(&app, &rp, "openid").await;
    let code = user_code(&device).to_owned();
    let typed = code.to_lowercase().replace('-', " ");
    let browser = fixtures::signed_in(&app, "alice").await;

    // The link prefills the code (normalized), and that is all it does.
    let prefilled =
        reqwest::Url::parse_with_params(&app.url("/device"), &[("user_code", &typed)]).unwrap();
    let page = text(browser.get(prefilled)).await;
    assert!(page.contains(&format!("value=\"{code}\"")), "{page}");
    assert!(page.contains("Continue"));
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");

    // Confirming the code shows the app and the code: still not approved.
    let (status, consent) = enter(&app, &browser, &typed).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        consent.contains("Allow TV to access your account?"),
        "{consent}"
    );
    assert!(consent.contains(&format!("<code class=\"secret\">{code}</code>")));
    assert!(!consent.contains("Not verified by your administrator"));
    app.clock.advance(Duration::seconds(5));
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");

    // The answer needs its CSRF token, and a choice.
    let mut form = consent_form(&consent, "allow");
    for (k, v) in &mut form {
        if k == "csrf_token" {
            *v = "A".repeat(43);
        }
    }
    let r = consent_post(&app, &browser, &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = consent_post(&app, &browser, &consent_form(&consent, "maybe")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.clock.advance(Duration::seconds(5));
    assert_error(&poll(&app, &rp, &device).await, "authorization_pending");

    // Another browser cannot answer for this one (no CSRF cookie there).
    let stranger = app.new_browser();
    let r = consent_post(&app, &stranger, &consent_form(&consent, "allow")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = consent_post(&app, &browser, &consent_form(&consent, "allow")).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.clock.advance(Duration::seconds(5));
    assert_eq!(poll(&app, &rp, &device).await.0, StatusCode::OK);
}

async fn every_way_of_registering_gives_the_device_grant(db: TestDb) {
    let url = db.url.clone();
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;
    fixtures::alice(&app);

    // The command line: no redirect URI needed.
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli::latchkey(dir.path())
        .args([
            "--database-url",
            &url,
            "client",
            "add",
            "--name",
            "CLI device",
        ])
        .args(["--public", "--grant-type", DEVICE_GRANT, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_client = RegisteredClient {
        id: added["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };

    // The console: the checkbox.
    fixtures::admin(&app, "root");
    let root = fixtures::signed_in(&app, "root").await;
    let page = text(root.get(app.url("/admin/clients"))).await;
    assert!(page.contains("name=\"grant_device_code\""), "{page}");
    let token = csrf_token_in(&page).unwrap();
    let created = text(root.post(app.url("/admin/clients")).form(&[
        ("csrf_token", token.as_str()),
        ("name", "Console device"),
        ("scopes", "openid"),
        ("grant_device_code", "on"),
    ]))
    .await;
    let secrets: Vec<&str> = created
        .split("<code class=\"secret\">")
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .collect();
    assert_eq!(secrets.len(), 2, "{created}");
    let console_client = RegisteredClient {
        id: secrets[0].to_owned(),
        secret: Some(secrets[1].to_owned()),
    };
    let shown = text(root.get(app.url(&format!("/admin/clients/{}", console_client.id)))).await;
    assert!(
        shown.contains("name=\"grant_device_code\" value=\"on\" checked"),
        "{shown}"
    );

    // The admin API.
    let api = fixtures::admin_api_token(&app).await;
    let (status, body) = json(
        app.http
            .post(app.url("/admin/api/v1/clients"))
            .bearer_auth(&api)
            .json(&json!({"name": "API device", "grant_types": [DEVICE_GRANT]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["grant_types"], json!([DEVICE_GRANT]));
    let api_client = RegisteredClient {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: body["client_secret"].as_str().map(str::to_owned),
    };

    // Dynamic registration: response_types empty, no redirect URI.
    let (status, info) = json(app.http.post(app.url("/register")).json(&json!({
        "client_name": "Self-registered device",
        "grant_types": [DEVICE_GRANT],
        "token_endpoint_auth_method": "none",
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["grant_types"], json!([DEVICE_GRANT]));
    assert_eq!(info["response_types"], json!([]));
    assert_eq!(info["redirect_uris"], json!([]));
    let (status, err) = json(app.http.post(app.url("/register")).json(&json!({
        "grant_types": [DEVICE_GRANT],
        "response_types": ["code"],
    })))
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    let dyn_client = RegisteredClient {
        id: info["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };

    for client in [&cli_client, &console_client, &api_client] {
        start(&app, client, "openid").await;
    }
    // The self-registered one is marked as such to the person.
    let device = start(&app, &dyn_client, "openid").await;
    let browser = fixtures::signed_in(&app, "alice").await;
    let (status, page) = enter(&app, &browser, user_code(&device)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Not verified by your administrator"),
        "{page}"
    );
    assert!(page.contains("Allow only if you trust it."), "{page}");
}

/// Public clients need no secret to start a device authorization, and each
/// start stores a request: one network may start
/// `device.max_starts_per_network` per window, then gets 429 with
/// `Retry-After` and nothing is stored; the next window starts afresh.
async fn starting_device_authorizations_is_limited_per_network(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.device.max_starts_per_network = 3).await;
    let cli = tv(&app, "Public CLI", true);
    let other = tv(&app, "Another CLI", false);
    start(&app, &cli, "openid").await;
    start(&app, &other, "openid").await;
    start(&app, &cli, "openid").await;
    for client in [&cli, &other] {
        let r = as_client(&app, "/device/authorize", client, &[("scope", "openid")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=app.config.login.throttle_window_secs).contains(&wait));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
    assert_eq!(app.count("device_codes"), 3, "refused starts store nothing");
    app.clock.advance(time::Duration::seconds(
        i64::try_from(app.config.login.throttle_window_secs).unwrap() + 1,
    ));
    start(&app, &cli, "openid").await;
    assert_eq!(app.count("device_codes"), 4);
}
