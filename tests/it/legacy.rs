//! The legacy grants of issue 12, opt-in: the implicit flow (OIDC Core
//! 3.2, RFC 6749 4.2) and the resource owner password grant (RFC 6749
//! 4.3), each refused while its `[legacy]` switch is off and for clients no
//! administrator allowed it, and working otherwise, on SQLite and
//! PostgreSQL. The implicit flow is also driven by the `openidconnect`
//! crate as a relying party.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AccessToken, AccessTokenHash, ClientId, CsrfToken, IssuerUrl, Nonce, RedirectUrl, Scope,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::common::fixtures::{self, PASSWORD, RegisteredClient, json};
use crate::common::{self, TestApp, TestDb, consent_form};

const CALLBACK: &str = "https://old.example/callback";

dual_backend!(
    implicit_is_unsupported_while_off,
    implicit_needs_a_client_an_admin_allowed,
    implicit_id_token_needs_a_nonce,
    implicit_id_token_and_token_with_openidconnect,
    implicit_token_by_form_post_and_never_in_the_query,
    implicit_tokens_end_with_the_session,
    registration_never_gives_legacy_grants,
    password_grant_is_unsupported_while_off,
    password_grant_refuses_clients_not_allowed,
    password_grant_failures_all_look_the_same,
    password_grant_shares_the_sign_in_throttle,
    password_grant_issues_tokens_that_refresh,
    password_grant_tokens_outlive_sign_out_not_disabling,
    discovery_lists_exactly_what_is_on,
    console_allows_legacy_grants_with_a_warning,
);

fn both_on(c: &mut latchkey::config::Config) {
    c.legacy.implicit = true;
    c.legacy.password_grant = true;
}

/// An old single-page app an admin allowed the implicit flow (public, as
/// such apps are).
fn spa(app: &TestApp) -> RegisteredClient {
    fixtures::client("Old portal")
        .redirect(CALLBACK)
        .scopes("openid profile email offline_access")
        .grants(&["implicit"])
        .public(true)
        .create(app)
}

/// An old server-side app an admin allowed the password grant (and
/// refresh tokens).
fn legacy_server(app: &TestApp, scopes: &str) -> RegisteredClient {
    fixtures::client("Old intranet")
        .scopes(scopes)
        .grants(&["password", "refresh_token"])
        .create(app)
}

/// The parameters in the fragment of a redirect.
fn fragment(loc: &str) -> HashMap<String, String> {
    let url = url::Url::parse(loc).unwrap();
    assert!(url.query().is_none(), "nothing in the query: {loc}");
    let frag = url
        .fragment()
        .unwrap_or_else(|| panic!("a fragment: {loc}"));
    url::form_urlencoded::parse(frag.as_bytes())
        .into_owned()
        .collect()
}

/// `/authorize` for `client` with `response_type`, `state=st` and
/// `extra`.
fn implicit_params<'a>(
    client: &'a str,
    response_type: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", response_type),
        ("client_id", client),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile"),
        ("state", "st"),
        ("nonce", "n-0S6_WzA2Mj"),
    ];
    for (k, v) in extra {
        p.retain(|(key, _)| key != k);
        p.push((k, v));
    }
    p
}

/// The redirect `/authorize` answers `browser` with, without following it.
async fn redirect_of(app: &TestApp, browser: &reqwest::Client, params: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), params).unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[track_caller]
fn assert_fragment_error(loc: &str, code: &str) {
    assert!(loc.starts_with(CALLBACK), "{loc}");
    let f = fragment(loc);
    assert_eq!(f["error"], code, "{loc}");
    assert_eq!(f["state"], "st");
    assert!(!f.contains_key("access_token") && !f.contains_key("id_token"));
}

/// `at_hash` as OIDC Core 3.2.2.9 defines it for RS256: the left half of
/// the SHA-256 of the access token, base64url.
fn at_hash_rs256(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// Signs `browser` out of Latchkey (`/logout`, confirmed).
async fn sign_out(app: &TestApp, browser: &reqwest::Client) {
    let page = fixtures::page_text(app, browser, "/logout").await;
    let r = browser
        .post(app.url("/logout"))
        .form(&consent_form(&page, "signout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn userinfo(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.get_with_bearer("/userinfo", token).await
}

// ---- implicit -----------------------------------------------------------

async fn implicit_is_unsupported_while_off(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let rp = spa(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    for rt in ["id_token", "id_token token", "token", "token id_token"] {
        let loc = redirect_of(&app, &browser, &implicit_params(&rp.id, rt, &[])).await;
        // In the fragment, as the implicit flow's errors go (RFC 6749 4.2.2.1).
        assert_fragment_error(&loc, "unsupported_response_type");
    }
    assert_eq!(app.count("grants"), 0);
}

async fn implicit_needs_a_client_an_admin_allowed(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let modern = fixtures::client("Modern app")
        .redirect(CALLBACK)
        .scopes("openid profile")
        .create(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    for rt in ["id_token", "id_token token", "token"] {
        let loc = redirect_of(&app, &browser, &implicit_params(&modern.id, rt, &[])).await;
        assert_fragment_error(&loc, "unauthorized_client");
    }
    // Nobody signed in: still refused before any sign-in is asked.
    let loc = redirect_of(
        &app,
        &app.new_browser(),
        &implicit_params(&modern.id, "token", &[]),
    )
    .await;
    assert_fragment_error(&loc, "unauthorized_client");
    // And the implicit client may not use the code flow it was not given.
    let rp = spa(&app);
    let loc = redirect_of(
        &app,
        &browser,
        &implicit_params(
            &rp.id,
            "code",
            &[
                ("code_challenge", common::PKCE_CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    let query: HashMap<String, String> = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["error"], "unauthorized_client", "{loc}");
    assert_eq!(app.count("grants"), 0);
}

async fn implicit_id_token_needs_a_nonce(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let rp = spa(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    let mut without = implicit_params(&rp.id, "id_token", &[]);
    without.retain(|(k, _)| *k != "nonce");
    let loc = redirect_of(&app, &browser, &without).await;
    assert_fragment_error(&loc, "invalid_request");
    // An ID token also needs openid.
    let loc = redirect_of(
        &app,
        &browser,
        &implicit_params(&rp.id, "id_token", &[("scope", "profile")]),
    )
    .await;
    assert_fragment_error(&loc, "invalid_request");

    // With a nonce: consent as for the code flow, then the ID token alone.
    let loc = common::authorize_in(
        &app,
        &browser,
        &implicit_params(
            &rp.id,
            "id_token",
            &[("scope", "openid profile offline_access")],
        ),
    )
    .await;
    let f = fragment(&loc);
    assert_eq!(f["state"], "st");
    assert_eq!(f["iss"], app.base);
    for absent in ["access_token", "token_type", "code", "refresh_token"] {
        assert!(!f.contains_key(absent), "{absent} in {loc}");
    }
    let claims = common::verify_with_jwks(&app.jwks().await, &f["id_token"]).unwrap();
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(
        claims["preferred_username"], "alice",
        "profile claims in the ID token"
    );
    assert!(
        claims.get("at_hash").is_none(),
        "no access token, no at_hash"
    );
    assert!(claims.get("sid").is_some());
    // offline_access is ignored without a code (OIDC Core 11).
    assert_eq!(app.count("refresh_tokens"), 0);
}

async fn implicit_id_token_and_token_with_openidconnect(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let rp = spa(&app);
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(rp.id.clone()), None)
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::Implicit(true),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .url();
    assert!(auth_url.as_str().contains("response_type=id_token+token"));
    let browser = fixtures::signed_in(&app, "alice").await;
    let loc = common::authorize_url_in(&app, &browser, auth_url.as_str()).await;
    let f = fragment(&loc);
    assert_eq!(f["state"], *state.secret());
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(
        f["expires_in"], "300",
        "legacy.implicit_access_token_ttl_secs"
    );
    assert_eq!(f["scope"], "email openid", "offline_access dropped");
    assert!(!f.contains_key("refresh_token") && !f.contains_key("code"));

    let id_token: CoreIdToken = serde_json::from_value(json!(f["id_token"])).unwrap();
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    let at = &f["access_token"];
    let expected = claims.access_token_hash().expect("at_hash");
    assert_eq!(expected.to_string(), at_hash_rs256(at), "computed here");
    let by_library = AccessTokenHash::from_token(
        &AccessToken::new(at.clone()),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&by_library, expected);

    let at_claims = common::verify_with_jwks(&app.jwks().await, at).unwrap();
    assert_eq!(
        at_claims["exp"].as_i64().unwrap() - at_claims["iat"].as_i64().unwrap(),
        300
    );
    let (status, info) = userinfo(&app, at).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(app.count("refresh_tokens"), 0, "never a refresh token");

    // Consent is remembered, as for the code flow: straight back next time.
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::Implicit(true),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .url();
    let r = browser.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(fragment(loc).contains_key("access_token"));
}

async fn implicit_token_by_form_post_and_never_in_the_query(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        both_on(c);
        c.legacy.implicit_access_token_ttl_secs = 1200;
    })
    .await;
    fixtures::alice(&app);
    let rp = spa(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    // Asked for the query: refused, and the refusal itself is in the fragment.
    let loc = redirect_of(
        &app,
        &browser,
        &implicit_params(&rp.id, "token", &[("response_mode", "query")]),
    )
    .await;
    assert_fragment_error(&loc, "invalid_request");

    // `token` alone (RFC 6749 4.2) needs neither openid nor a nonce.
    let mut params = implicit_params(&rp.id, "token", &[("response_mode", "form_post")]);
    params.retain(|(k, _)| *k != "nonce");
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &params).unwrap();
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    let r = browser
        .post(app.url("/authorize/consent"))
        .form(&consent_form(&page, "allow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action https://old.example"), "{csp}");
    assert!(
        csp.contains("script-src 'sha256-"),
        "no inline script beyond the hashed one: {csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = common::html_unescape(&r.text().await.unwrap());
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")), "{html}");
    assert!(
        html.contains("<noscript>") && html.contains("<button type=\"submit\">Continue</button>")
    );
    let field = |name: &str| {
        html.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    assert_eq!(field("token_type").as_deref(), Some("Bearer"));
    // Capped at tokens.access_token_ttl_secs (600).
    assert_eq!(field("expires_in").as_deref(), Some("600"));
    assert_eq!(field("state").as_deref(), Some("st"));
    assert!(field("id_token").is_none() && field("refresh_token").is_none());
    let at = field("access_token").expect("an access token");
    let (status, _) = userinfo(&app, &at).await;
    assert_eq!(status, StatusCode::OK);
}

async fn implicit_tokens_end_with_the_session(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let rp = spa(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    let loc = common::authorize_in(
        &app,
        &browser,
        &implicit_params(&rp.id, "id_token token", &[]),
    )
    .await;
    let at = fragment(&loc)["access_token"].clone();
    assert_eq!(userinfo(&app, &at).await.0, StatusCode::OK);
    // Signing out revokes the session's grants: the implicit token stops
    // working at userinfo (and introspection) at once.
    sign_out(&app, &browser).await;
    assert_eq!(userinfo(&app, &at).await.0, StatusCode::UNAUTHORIZED);
}

// ---- dynamic registration ------------------------------------------------

async fn registration_never_gives_legacy_grants(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        both_on(c);
        c.registration.open = true;
    })
    .await;
    let register = |body: Value| json(app.http.post(app.url("/register")).json(&body));
    for body in [
        json!({"redirect_uris": [CALLBACK], "grant_types": ["implicit"], "response_types": ["id_token token"]}),
        json!({"redirect_uris": [CALLBACK], "grant_types": ["authorization_code", "implicit"]}),
        json!({"redirect_uris": [CALLBACK], "grant_types": ["authorization_code"], "response_types": ["code", "token"]}),
        json!({"grant_types": ["password"], "response_types": []}),
        json!({"grant_types": ["password", "refresh_token"], "response_types": []}),
    ] {
        let (status, answer) = register(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_client_metadata", "{body}");
    }
    assert_eq!(app.count("clients"), 0);

    // Nor through an RFC 7592 update of a registered client.
    let (status, reg) = register(json!({"redirect_uris": [CALLBACK]})).await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["response_types"], json!(["code"]));
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let update = |token: String, grants: Value| {
        let body = json!({"client_id": id, "redirect_uris": [CALLBACK], "grant_types": grants});
        json(
            app.http
                .put(app.url(&format!("/register/{id}")))
                .bearer_auth(token)
                .json(&body),
        )
    };
    let token = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = update(token.clone(), json!(["authorization_code", "implicit"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid_client_metadata");

    // An administrator may allow it; the client's own updates keep it.
    let admin = fixtures::admin_api_token(&app).await;
    let (status, body) = fixtures::admin_api(
        &app,
        &admin,
        reqwest::Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({"grant_types": ["authorization_code", "implicit"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, answer) = update(token, json!(["authorization_code"])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["grant_types"],
        json!(["authorization_code", "implicit"])
    );
    assert_eq!(
        answer["response_types"],
        json!(["code", "id_token", "id_token token", "token"])
    );
}

// ---- password grant ------------------------------------------------------

/// `grant_type=password` as `client` (Basic auth when it has a secret).
async fn password_grant(
    app: &TestApp,
    client: &RegisteredClient,
    username: &str,
    password: &str,
    scope: &str,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("scope", scope),
    ];
    let r = app.http.post(app.url("/token"));
    let r = match &client.secret {
        Some(s) => r.basic_auth(&client.id, Some(s)),
        None => {
            form.push(("client_id", &client.id));
            r
        }
    };
    json(r.form(&form)).await
}

#[track_caller]
fn assert_error(answer: &(StatusCode, Value), code: &str) {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
}

async fn password_grant_is_unsupported_while_off(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.legacy.implicit = true).await;
    fixtures::alice(&app);
    let rp = legacy_server(&app, "openid");
    let answer = password_grant(&app, &rp, "alice", PASSWORD, "openid").await;
    assert_error(&answer, "unsupported_grant_type");
    // implicit is never a token endpoint grant.
    let spa = spa(&app);
    let (status, body) = json(
        app.http
            .post(app.url("/token"))
            .form(&[("grant_type", "implicit"), ("client_id", spa.id.as_str())]),
    )
    .await;
    assert_error(&(status, body), "unsupported_grant_type");
    assert_eq!(app.count("grants"), 0);
    assert_eq!(app.count("login_throttle"), 0, "no password work at all");
}

async fn password_grant_refuses_clients_not_allowed(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let modern = fixtures::client("Modern app")
        .redirect(CALLBACK)
        .scopes("openid")
        .create(&app);
    let answer = password_grant(&app, &modern, "alice", PASSWORD, "openid").await;
    assert_error(&answer, "unauthorized_client");
    // A public client can never hold the grant, so it is never allowed it.
    let public = fixtures::client("Public app")
        .redirect(CALLBACK)
        .scopes("openid")
        .public(true)
        .create(&app);
    let answer = password_grant(&app, &public, "alice", PASSWORD, "openid").await;
    assert_error(&answer, "unauthorized_client");
    let mut c = common::conn(&app.db);
    let refused = latchkey::service::clients::create(
        &mut c,
        None,
        &latchkey::domain::client::ClientInput {
            name: "Public legacy".into(),
            grant_types: vec!["password".into()],
            public: true,
            ..Default::default()
        },
        &app.config.keys.algorithms,
        app.clock_now(),
    );
    assert!(
        refused.is_err(),
        "the password grant needs a confidential client"
    );
    // A wrong client secret is the client's failure, before any password work.
    let rp = legacy_server(&app, "openid");
    let impostor = RegisteredClient {
        id: rp.id.clone(),
        secret: Some("not the secret".into()),
    };
    let (status, body) = password_grant(&app, &impostor, "alice", PASSWORD, "openid").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(app.count("grants"), 0);
}

async fn password_grant_failures_all_look_the_same(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    fixtures::user(&app, "bob");
    let rp = legacy_server(&app, "openid profile");
    {
        let mut c = common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "bob", true, app.clock_now()).unwrap();
    }
    let wrong = password_grant(&app, &rp, "alice", "not her password", "openid").await;
    let disabled = password_grant(&app, &rp, "bob", PASSWORD, "openid").await;
    let unknown = password_grant(&app, &rp, "nobody", PASSWORD, "openid").await;
    assert_error(&wrong, "invalid_grant");
    assert_eq!(
        wrong, disabled,
        "a disabled user looks like a wrong password"
    );
    assert_eq!(wrong, unknown, "so does an unknown one");
    // The request's own mistakes are told apart, before any password work.
    let (status, body) = json(
        app.http
            .post(app.url("/token"))
            .basic_auth(&rp.id, rp.secret.as_deref())
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("scope", "openid"),
            ]),
    )
    .await;
    assert_error(&(status, body), "invalid_request");
    let answer = password_grant(&app, &rp, "alice", PASSWORD, "openid email").await;
    assert_error(&answer, "invalid_scope");
    let long = "x".repeat(5000);
    let answer = password_grant(&app, &rp, "alice", &long, "openid").await;
    assert_error(&answer, "invalid_request");
    assert_eq!(app.count("grants"), 0);
}

async fn password_grant_shares_the_sign_in_throttle(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        both_on(c);
        c.login.max_failures_per_account = 3;
        c.login.throttle_window_secs = 600;
    })
    .await;
    fixtures::alice(&app);
    let rp = legacy_server(&app, "openid");
    for _ in 0..3 {
        let answer = password_grant(&app, &rp, "alice", "guess guess", "openid").await;
        assert_error(&answer, "invalid_grant");
    }
    // Throttled: even the right password is refused, with the same answer.
    let throttled = password_grant(&app, &rp, "alice", PASSWORD, "openid").await;
    let wrong = password_grant(&app, &rp, "alice", "guess guess", "openid").await;
    assert_error(&throttled, "invalid_grant");
    assert_eq!(throttled, wrong);
    // One throttle: the sign-in form from the same network is locked too.
    let browser = app.new_browser();
    let r = app.login(&browser, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.count("grants"), 0);
    // After the window the password works again.
    app.clock.advance(Duration::seconds(601));
    let (status, body) = password_grant(&app, &rp, "alice", PASSWORD, "openid").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn password_grant_issues_tokens_that_refresh(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    fixtures::restricted_scope(&app, "hr:read", "hr");
    let rp = legacy_server(&app, "openid profile email offline_access hr:read");

    // Without openid or offline_access: an access token alone.
    let (status, body) = password_grant(&app, &rp, "alice", PASSWORD, "profile").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);

    // A group-gated scope the user may not hold is left out (RFC 6749 3.3).
    let (status, body) = password_grant(
        &app,
        &rp,
        "alice",
        PASSWORD,
        "openid email offline_access hr:read",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "email offline_access openid");
    let jwks = app.jwks().await;
    let id = common::verify_with_jwks(&jwks, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["aud"], rp.id.as_str());
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(
        id["auth_time"].as_i64(),
        Some(app.clock_now().unix_timestamp())
    );
    assert!(id.get("sid").is_none(), "no browser session took part");
    assert!(id.get("nonce").is_none());
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        id["at_hash"].as_str().unwrap(),
        at_hash_rs256(at),
        "at_hash beside the access token"
    );
    let (status, info) = userinfo(&app, at).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["email"], "alice@example.com");
    // Only hr members get hr:read.
    let answer = password_grant(&app, &rp, "alice", PASSWORD, "hr:read").await;
    assert_error(&answer, "invalid_scope");

    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, refreshed) = fixtures::refresh_at(&app.base, &rp, refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], body["refresh_token"]);
    assert_eq!(refreshed["scope"], "email offline_access openid");

    // Each success is in the audit log, naming the client and the user.
    let mut c = common::conn(&app.db);
    let grants =
        latchkey::store::repo::audit::recent(&mut c, Some("token.password_grant"), 50).unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].actor, format!("client:{}", rp.id));
    assert_eq!(grants[0].target, "alice");
}

async fn password_grant_tokens_outlive_sign_out_not_disabling(db: TestDb) {
    let app = TestApp::spawn_with(db, both_on).await;
    fixtures::alice(&app);
    let rp = legacy_server(&app, "openid offline_access");
    let (status, body) =
        password_grant(&app, &rp, "alice", PASSWORD, "openid offline_access").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // Alice signs in and out in a browser: the password grant belongs to no
    // session, so its tokens keep working.
    let browser = fixtures::signed_in(&app, "alice").await;
    sign_out(&app, &browser).await;
    assert_eq!(userinfo(&app, &at).await.0, StatusCode::OK);
    let (status, refreshed) = fixtures::refresh_at(&app.base, &rp, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let at = refreshed["access_token"].as_str().unwrap().to_owned();

    // Disabling her ends them all.
    {
        let mut c = common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "alice", true, app.clock_now()).unwrap();
    }
    assert_eq!(userinfo(&app, &at).await.0, StatusCode::UNAUTHORIZED);
    let answer = fixtures::refresh_at(&app.base, &rp, &refresh).await;
    assert_error(&answer, "invalid_grant");
}

// ---- discovery and the console ---------------------------------------------

async fn discovery_lists_exactly_what_is_on(db: TestDb) {
    let first = TestApp::spawn(db).await;
    for (implicit, password) in [(false, false), (true, false), (false, true), (true, true)] {
        // Instances of one database with different switches (the key store
        // is the first one's).
        let mut app = TestApp::spawn_on(&first.config.database.url, |c| {
            c.keys.kek_file = first.config.keys.kek_file.clone();
            c.legacy.implicit = implicit;
            c.legacy.password_grant = password;
        })
        .await;
        let (_, doc) = json(app.http.get(app.url("/.well-known/openid-configuration"))).await;
        let expected = if implicit {
            json!(["code", "id_token", "id_token token", "token"])
        } else {
            json!(["code"])
        };
        assert_eq!(doc["response_types_supported"], expected);
        assert_eq!(
            doc["response_modes_supported"],
            json!(["query", "fragment", "form_post"])
        );
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert_eq!(grants.contains(&json!("implicit")), implicit);
        assert_eq!(grants.contains(&json!("password")), password);
        app.stop().await;
    }
}

async fn console_allows_legacy_grants_with_a_warning(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.legacy.password_grant = true).await;
    fixtures::admin(&app, "root");
    let root = fixtures::signed_in(&app, "root").await;
    let form = fixtures::page_text(&app, &root, "/admin/clients").await;
    assert!(form.contains("RFC 9700"), "the warning is beside the boxes");
    assert!(form.contains("off on this server (<code>legacy.implicit</code>)"));
    assert!(!form.contains("legacy.password_grant</code>)"));
    let r = fixtures::submit(
        &app,
        &root,
        "/admin/clients",
        "/admin/clients",
        &[
            ("name", "Old intranet"),
            ("redirect_uris", CALLBACK),
            ("scopes", "openid"),
            ("grant_implicit", "on"),
            ("grant_password", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = common::html_unescape(&r.text().await.unwrap());
    let id = page
        .split("href=\"/admin/clients/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a link to the new client: {page}"))
        .to_owned();
    let mut c = common::conn(&app.db);
    let client = latchkey::service::clients::find(&mut c, &id).unwrap();
    let grants: Vec<&str> = client
        .settings
        .grant_types
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert_eq!(grants, ["implicit", "password"]);
    let page = fixtures::page_text(&app, &root, &format!("/admin/clients/{id}")).await;
    assert!(page.contains("name=\"grant_implicit\" value=\"on\" checked"));
    assert!(page.contains("name=\"grant_password\" value=\"on\" checked"));
}
