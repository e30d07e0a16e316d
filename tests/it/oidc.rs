//! OpenID Connect end to end: the `openidconnect` crate as the relying
//! party against a running Latchkey, and every negative case, on SQLite
//! and PostgreSQL.

use crate::common::fixtures::{self, RegisteredClient as Rp};
use crate::common::{self, TestApp, TestDb, consent_form};
use latchkey::keys::SigningAlg;
use latchkey::service::clients;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;

const RP_CALLBACK: &str = "https://rp.example/callback";

dual_backend!(
    sign_in_refresh_and_userinfo_with_openidconnect,
    discovery_lists_what_is_implemented,
    unregistered_redirect_is_never_followed,
    replayed_code_fails_and_revokes_its_tokens,
    wrong_pkce_verifier_is_refused,
    public_client_needs_pkce,
    wrong_secret_is_invalid_client,
    unknown_scope_is_invalid_scope,
    prompt_none_without_session_is_login_required,
    reused_refresh_token_revokes_the_family,
    userinfo_refuses_bad_tokens,
    introspection_and_revocation,
    client_credentials_issues_an_access_token_only,
    deny_returns_access_denied,
    id_token_hint_for_another_user_needs_login,
    cors_only_for_configured_origins,
    resource_indicators_set_the_audience,
    client_id_token_alg_is_honoured,
    userinfo_query_token_only_when_enabled,
    oob_shows_the_code_and_fragment_mode_works,
    max_age_and_prompt_force_fresh_login_or_consent,
);

fn setup(app: &TestApp, public: bool) -> Rp {
    app.define_machine_scopes(&["read:notes"]);
    fixtures::alice(app);
    let grants: &[&str] = if public {
        &["authorization_code", "refresh_token"]
    } else {
        &["authorization_code", "refresh_token", "client_credentials"]
    };
    fixtures::client("Wonderland Wiki")
        .redirect(RP_CALLBACK)
        .redirect("http://127.0.0.1/cb")
        .scopes("openid profile email offline_access read:notes")
        .grants(grants)
        .public(public)
        .create(app)
}

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows the browser through login and consent; returns the final
/// redirect to the client (its Location).
async fn browse(app: &TestApp, browser: &reqwest::Client, auth_url: &str) -> String {
    let mut url = auth_url.to_owned();
    for _ in 0..6 {
        let r = browser.get(&url).send().await.unwrap();
        if r.status() == StatusCode::SEE_OTHER {
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            if !loc.starts_with('/') {
                return loc;
            }
            if loc.starts_with("/login") {
                url = app.url(&fixtures::sign_in_from(app, browser, &loc, "alice").await);
                continue;
            }
            url = app.url(&loc);
            continue;
        }
        let status = r.status();
        let page = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("Allow"), "expected the consent page: {page}");
        return submit_consent(app, browser, &page, "allow").await;
    }
    panic!("too many redirects");
}

async fn submit_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    decision: &str,
) -> String {
    let form = consent_form(page, decision);
    let r = browser
        .post(app.url("/authorize/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[track_caller]
fn assert_error(status: StatusCode, body: &serde_json::Value, code: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], code, "{body}");
}

/// The consent page's hidden fields plus the decision.
fn query(loc: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn sign_in_refresh_and_userinfo_with_openidconnect(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let http = http_client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.id.clone()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(RP_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.new_browser();
    let callback = browse(&app, &browser, auth_url.as_str()).await;
    assert!(callback.starts_with(RP_CALLBACK), "{callback}");
    let q = query(&callback);
    assert_eq!(q["state"], *state.secret());
    assert_eq!(q["iss"], app.base, "RFC 9207 iss");

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("id token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    let sub = claims.subject().clone();

    // The access token is an RFC 9068 JWT verifiable with the JWKS alone.
    let at = tokens.access_token().secret();
    let header = josekit::jwt::decode_header(at).unwrap();
    assert_eq!(header.claim("typ").unwrap(), "at+jwt");
    let at_claims = common::verify_with_jwks(&app.jwks().await, at).unwrap();
    assert_eq!(at_claims["client_id"], rp.id.as_str());
    assert_eq!(at_claims["sub"], sub.as_str());
    assert!(at_claims["scope"].as_str().unwrap().contains("email"));
    assert_eq!(
        at_claims["iat"].as_i64().unwrap(),
        app.clock_now().unix_timestamp()
    );

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(sub.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");

    // Refresh rotates the refresh token.
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret()
    );
    let info: CoreUserInfoClaims = client
        .user_info(refreshed.access_token().clone(), Some(sub))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");

    // Consent is remembered: a second sign-in goes straight back.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let r = browser.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(RP_CALLBACK)
    );
}

async fn discovery_lists_what_is_implemented(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: serde_json::Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], app.base);
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["request_uri_parameter_supported"], false);
        assert_eq!(doc["jwks_uri"], app.url("/jwks"));
    }
}

/// Starts an authorization by hand (for negative cases).
fn auth_params(rp: &Rp, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), rp.id.clone()),
        ("redirect_uri".into(), RP_CALLBACK.into()),
        ("scope".into(), "openid email offline_access".into()),
        ("state".into(), "st4te".into()),
        (
            "code_challenge".into(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push(((*k).into(), (*v).into()));
        }
    }
    p
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn get_code(app: &TestApp, rp: &Rp, extra: &[(&str, &str)]) -> String {
    let browser = app.new_browser();
    let url =
        reqwest::Url::parse_with_params(&app.url("/authorize"), auth_params(rp, extra)).unwrap();
    let loc = browse(app, &browser, url.as_str()).await;
    query(&loc).remove("code").expect("code")
}

async fn token(app: &TestApp, rp: &Rp, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let mut req = app.http.post(app.url("/token")).form(form);
    if let Some(secret) = &rp.secret {
        req = req.basic_auth(&rp.id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

async fn redeem(
    app: &TestApp,
    rp: &Rp,
    code: &str,
    verifier: &str,
) -> (StatusCode, serde_json::Value) {
    token(
        app,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP_CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn unregistered_redirect_is_never_followed(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("redirect_uri", "https://evil.example/cb")]),
    )
    .unwrap();
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("client_id", "nope")]),
    )
    .unwrap();
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

async fn replayed_code_fails_and_revokes_its_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (status, first) = redeem(&app, &rp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    let (status, second) = redeem(&app, &rp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(second["error"], "invalid_grant");
    // What the first use issued is revoked.
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_error(status, &body, "invalid_grant");
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn wrong_pkce_verifier_is_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (status, body) = redeem(
        &app,
        &rp,
        &code,
        "wrongwrongwrongwrongwrongwrongwrongwrongwrongwrong",
    )
    .await;
    assert_error(status, &body, "invalid_grant");
    let code = get_code(&app, &rp, &[]).await;
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_error(status, &body, "invalid_grant");
}

async fn public_client_needs_pkce(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, true);
    let browser = fixtures::signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(
            &rp,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["iss"], app.base);
    // With PKCE the public client signs in and redeems with client_id only.
    let code = get_code(&app, &rp, &[]).await;
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", &rp.id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn wrong_secret_is_invalid_client(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // client_secret_post works; JSON bodies too.
    let r = app
        .http
        .post(app.url("/token"))
        .json(&serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": rp.id,
            "client_secret": rp.secret,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn unknown_scope_is_invalid_scope(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("scope", "openid admin:all")]),
    )
    .unwrap();
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_scope");
}

async fn prompt_none_without_session_is_login_required(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("prompt", "none")]),
    )
    .unwrap();
    let r = app.http.get(url).send().await.unwrap();
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "login_required");
    // Signed in but never consented: consent_required.
    let browser = fixtures::signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("prompt", "none")]),
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "consent_required");
}

async fn reused_refresh_token_revokes_the_family(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (_, first) = redeem(&app, &rp, &code, VERIFIER).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &app,
        &rp,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    // Narrowing is fine, widening is not.
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_error(status, &body, "invalid_scope");
    // Reusing r1 (already rotated) revokes everything, r2 included.
    let (status, body) = token(
        &app,
        &rp,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_error(status, &body, "invalid_grant");
    let (status, body) = token(
        &app,
        &rp,
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    )
    .await;
    assert_error(status, &body, "invalid_grant");
}

async fn userinfo_refuses_bad_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (_, tokens) = redeem(&app, &rp, &code, VERIFIER).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let get = |t: String| app.http.get(app.url("/userinfo")).bearer_auth(t).send();
    assert_eq!(get(at.clone()).await.unwrap().status(), StatusCode::OK);
    // Also from a form body (RFC 6750 2.2).
    let r = app
        .http
        .post(app.url("/userinfo"))
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // In the URL: refused unless tokens.allow_query_access_token is on.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .query(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Tampered.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let r = get(parts.join(".")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // No token.
    let r = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // An ID token is not an access token.
    let r = get(tokens["id_token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Expired.
    app.clock.advance(time::Duration::seconds(601));
    let r = get(at).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn introspection_and_revocation(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (_, tokens) = redeem(&app, &rp, &code, VERIFIER).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let introspect = |t: String| {
        app.http
            .post(app.url("/introspect"))
            .basic_auth(&rp.id, rp.secret.as_ref())
            .form(&[("token", t)])
            .send()
    };
    let body: serde_json::Value = introspect(at.into()).await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], rp.id.as_str());
    assert!(body["scope"].as_str().unwrap().contains("email"));
    let body: serde_json::Value = introspect(rt.into()).await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    let body: serde_json::Value = introspect("garbage".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));

    // Revoking the refresh token ends the grant: the access token reads inactive at once.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = introspect(at.into()).await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], false);
    let body: serde_json::Value = introspect(rt.into()).await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], false);
    // Unknown tokens still get 200.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Introspection needs client authentication.
    let r = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn client_credentials_issues_an_access_token_only(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let grants_before = app.count("grants");
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:notes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "read:notes");
    let claims =
        common::verify_with_jwks(&app.jwks().await, body["access_token"].as_str().unwrap())
            .unwrap();
    assert_eq!(claims["sub"], rp.id.as_str());
    assert_eq!(app.count("grants"), grants_before, "nothing written");
    let (status, body) = token(
        &app,
        &rp,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_error(status, &body, "invalid_scope");
    let (status, body) = token(&app, &rp, &[("grant_type", "password")]).await;
    assert_error(status, &body, "unsupported_grant_type");
}

async fn deny_returns_access_denied(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let browser = fixtures::signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("response_mode", "form_post")]),
    )
    .unwrap();
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Wonderland Wiki") && page.contains("See your email address"));
    let form = consent_form(&page, "deny");
    let r = browser
        .post(app.url("/authorize/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    // form_post: an auto-submitting form that also works without JavaScript.
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action https://rp.example")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("action=\"https:&#x2F;&#x2F;rp.example&#x2F;callback\"")
            || html.contains("action=\"https://rp.example/callback\""),
        "{html}"
    );
    assert!(html.contains("name=\"error\" value=\"access_denied\""));
    assert!(html.contains("<button type=\"submit\">Continue</button>"));
}

async fn id_token_hint_for_another_user_needs_login(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (_, tokens) = redeem(&app, &rp, &code, VERIFIER).await;
    let alice_hint = tokens["id_token"].as_str().unwrap().to_owned();
    app.create_user("bob", "another good password");
    let browser = app.new_browser();
    app.login(&browser, "bob", "another good password").await;
    // Bob's session, Alice's hint: not the same user, so no silent sign-in.
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("prompt", "none"), ("id_token_hint", &alice_hint)]),
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "login_required"
    );
    // Alice's own session with her hint signs in silently (consent was given).
    let alice = fixtures::signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("prompt", "none"), ("id_token_hint", &alice_hint)]),
    )
    .unwrap();
    let r = alice.get(url).send().await.unwrap();
    assert!(query(r.headers()["location"].to_str().unwrap()).contains_key("code"));
}

async fn cors_only_for_configured_origins(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.server.cors_origins = vec!["https://spa.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/token"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    let r = preflight("https://spa.example").await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
    let r = app
        .http
        .get(app.url("/jwks"))
        .header("Origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// A confidential client with registered audiences (and maybe an ID token alg).
fn api_client(app: &TestApp, id_token_alg: Option<&str>) -> Rp {
    app.define_machine_scopes(&["read:notes"]);
    fixtures::client("Notes")
        .redirect(RP_CALLBACK)
        .scopes("openid email offline_access read:notes")
        .grants(&["authorization_code", "refresh_token", "client_credentials"])
        .audience("https://notes.example/api")
        .audience("https://files.example/api")
        .id_token_alg(id_token_alg)
        .create(app)
}

fn aud_of(app_jwks: &str, token: &str) -> serde_json::Value {
    common::verify_with_jwks(app_jwks, token).unwrap()["aud"].clone()
}

async fn resource_indicators_set_the_audience(db: TestDb) {
    let app = TestApp::spawn(db).await;
    setup(&app, false);
    let rp = api_client(&app, None);
    let jwks = app.jwks().await;
    // client_credentials: the first audience by default, or the one asked.
    let (_, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:notes"),
        ],
    )
    .await;
    assert_eq!(
        aud_of(&jwks, body["access_token"].as_str().unwrap()),
        "https://notes.example/api"
    );
    let (_, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://files.example/api"),
        ],
    )
    .await;
    assert_eq!(
        aud_of(&jwks, body["access_token"].as_str().unwrap()),
        "https://files.example/api"
    );
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://evil.example/api"),
        ],
    )
    .await;
    assert_error(status, &body, "invalid_target");

    // authorization_code with a resource: the API and, for userinfo, the issuer.
    let code = get_code(&app, &rp, &[("resource", "https://files.example/api")]).await;
    let (status, body) = redeem(&app, &rp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        aud_of(&jwks, at),
        serde_json::json!(["https://files.example/api", app.base])
    );
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "sign-in tokens work at userinfo"
    );
    // A refresh may not switch to another resource than the authorized one.
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("resource", "https://notes.example/api"),
        ],
    )
    .await;
    assert_error(status, &body, "invalid_target");
    // An unregistered resource at /authorize goes back as invalid_target.
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("resource", "https://evil.example/api")]),
    )
    .unwrap();
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_target"
    );
}

async fn client_id_token_alg_is_honoured(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.keys.algorithms = vec![SigningAlg::RS256, SigningAlg::ES256]
    })
    .await;
    setup(&app, false);
    let rp = api_client(&app, Some("ES256"));
    let code = get_code(&app, &rp, &[]).await;
    let (status, body) = redeem(&app, &rp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let header = josekit::jwt::decode_header(id_token).unwrap();
    assert_eq!(header.claim("alg").unwrap(), "ES256");
    common::verify_with_jwks(&app.jwks().await, id_token).unwrap();
    // Access tokens keep the server's access_token_alg.
    let header = josekit::jwt::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.claim("alg").unwrap(), "RS256");
}

async fn userinfo_query_token_only_when_enabled(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.tokens.allow_query_access_token = true).await;
    let rp = setup(&app, false);
    let code = get_code(&app, &rp, &[]).await;
    let (_, body) = redeem(&app, &rp, &code, VERIFIER).await;
    let at = body["access_token"].as_str().unwrap();
    let r = app
        .http
        .get(app.url("/userinfo"))
        .query(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Still only one way at a time.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .query(&[("access_token", at)])
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn oob_shows_the_code_and_fragment_mode_works(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    {
        let mut c = common::conn(&app.db);
        let changes = clients::ClientChanges {
            redirect_uris: Some(vec![RP_CALLBACK.into(), "urn:ietf:wg:oauth:2.0:oob".into()]),
            first_party: Some(true),
            ..Default::default()
        };
        clients::update(
            &mut c,
            &rp.id,
            changes,
            &latchkey::domain::alg::SigningAlg::ALL,
            app.clock_now(),
        )
        .unwrap();
    }
    let browser = fixtures::signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("redirect_uri", "urn:ietf:wg:oauth:2.0:oob")]),
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "first-party: no consent page");
    let page = r.text().await.unwrap();
    assert!(page.contains("Copy this code"), "{page}");
    let code = page
        .split("readonly value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "urn:ietf:wg:oauth:2.0:oob"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        auth_params(&rp, &[("response_mode", "fragment")]),
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    let fragment = loc.split_once('#').expect("fragment").1;
    assert!(
        fragment.contains("code=") && fragment.contains("state=st4te") && fragment.contains("iss="),
        "{loc}"
    );
}

async fn max_age_and_prompt_force_fresh_login_or_consent(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = setup(&app, false);
    let browser = app.new_browser();
    // Sign in and consent once.
    let url =
        reqwest::Url::parse_with_params(&app.url("/authorize"), auth_params(&rp, &[])).unwrap();
    assert!(
        browse(&app, &browser, url.as_str())
            .await
            .starts_with(RP_CALLBACK)
    );
    let direct = |extra: &[(&str, &str)]| {
        reqwest::Url::parse_with_params(&app.url("/authorize"), auth_params(&rp, extra)).unwrap()
    };

    // Within max_age: straight back. Past it: to the login page.
    app.clock.advance(time::Duration::seconds(120));
    let r = browser
        .get(direct(&[("max_age", "300")]))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(RP_CALLBACK)
    );
    let r = browser
        .get(direct(&[("max_age", "60")]))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    // prompt=login always asks again.
    let r = browser
        .get(direct(&[("prompt", "login")]))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    // After signing in again, auth_time is fresh in the ID token.
    let loc = browse(&app, &browser, direct(&[("max_age", "60")]).as_str()).await;
    let code = query(&loc)["code"].clone();
    let (_, body) = redeem(&app, &rp, &code, VERIFIER).await;
    let claims =
        common::verify_with_jwks(&app.jwks().await, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims["auth_time"].as_i64().unwrap(),
        app.clock_now().unix_timestamp()
    );

    // A new scope, or prompt=consent, shows the consent page again.
    let r = browser
        .get(direct(&[("scope", "openid email profile")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("See your name"));
    let r = browser
        .get(direct(&[("prompt", "consent")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Allow"));
}
