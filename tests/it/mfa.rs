//! Multi-factor sign-in (issue 13): enrolling a TOTP authenticator from My
//! account, signing in with its codes (computed here, independently of the
//! server, with HMAC-SHA-1 as RFC 6238 says), replay, clock skew,
//! throttling, recovery codes, step-up through `acr_values` with the
//! `openidconnect` crate as the relying party (`acr`/`amr` in the ID
//! token, also after a refresh), and the password grant refusing users
//! with a second factor; on SQLite and PostgreSQL.

use hmac::{Hmac, Mac};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use time::Duration;

use crate::common::fixtures::{self, PASSWORD, RegisteredClient};
use crate::common::{self, TestApp, TestDb, csrf_token_in, html_unescape};

pub(crate) const CALLBACK: &str = "https://wiki.example/callback";
pub(crate) const ACR_MFA: &str = "urn:latchkey:acr:mfa";
pub(crate) const ACR_PWD: &str = "urn:latchkey:acr:pwd";

dual_backend!(
    totp_enrolment_and_sign_in,
    replayed_and_skewed_codes,
    wrong_codes_count_toward_the_sign_in_throttle,
    recovery_codes_work_once,
    turning_off_needs_the_password,
    step_up_through_acr_values_with_openidconnect,
    acr_values_for_a_user_without_a_second_factor,
    password_grant_refuses_users_with_a_second_factor,
    client_that_requires_a_second_factor,
    group_policy_with_a_grace_period,
    admin_sees_and_resets_factors,
    cli_shows_and_resets_factors,
);

/// RFC 4648 base32 (no padding), as an authenticator app reads the key.
pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base32") as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// The TOTP code of `seed` at Unix time `t` (RFC 6238, SHA-1, 6 digits,
/// 30 s), written out here as an authenticator app computes it.
pub(crate) fn totp(seed: &[u8], t: i64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(seed).unwrap();
    mac.update(&((t / 30) as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = ((h[o] as u32 & 0x7f) << 24)
        | ((h[o + 1] as u32) << 16)
        | ((h[o + 2] as u32) << 8)
        | h[o + 3] as u32;
    format!("{:06}", bin % 1_000_000)
}

pub(crate) fn now(app: &TestApp) -> i64 {
    app.clock_now().unix_timestamp()
}

/// Moves the clock to the start of the next 30-second step.
pub(crate) fn next_step(app: &TestApp) {
    let t = now(app);
    app.clock.advance(Duration::seconds(30 - t.rem_euclid(30)));
}

pub(crate) async fn csrf_of(browser: &reqwest::Client, url: &str) -> String {
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    csrf_token_in(&page).unwrap_or_else(|| panic!("a form at {url}: {page}"))
}

/// Sets up an authenticator app for the user signed in in `browser`:
/// returns the seed (read from the page as a person would type it) and
/// the recovery codes shown once.
pub(crate) async fn enrol(app: &TestApp, browser: &reqwest::Client) -> (Vec<u8>, Vec<String>) {
    let csrf = csrf_of(browser, &app.url("/account/mfa")).await;
    let r = browser
        .post(app.url("/account/mfa/totp"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code, inline: {page}");
    assert!(!page.contains("<script"), "no JavaScript");
    let secret = page
        .split("<code class=\"wrap\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the key as text")
        .to_owned();
    let seed = base32_decode(&secret);
    assert_eq!(seed.len(), 20, "160-bit seed");
    // A wrong code: the page again, the same key, the reason by the field.
    let csrf = csrf_token_in(&page).unwrap();
    let wrong = if totp(&seed, now(app)) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = browser
        .post(app.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let again = r.text().await.unwrap();
    assert!(
        again.contains(&secret) && again.contains("code-error"),
        "{again}"
    );
    let code = totp(&seed, now(app));
    let r = browser
        .post(app.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    // The confirming code counts as used.
    next_step(app);
    (seed, codes)
}

/// Posts the login form in `browser`; returns where it sent the browser.
pub(crate) async fn password_step(
    app: &TestApp,
    browser: &reqwest::Client,
    username: &str,
) -> String {
    let r = app.login(browser, username, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Posts a code to `/login/mfa` in `browser`.
pub(crate) async fn second_step(
    app: &TestApp,
    browser: &reqwest::Client,
    code: &str,
    return_to: Option<&str>,
) -> reqwest::Response {
    let csrf = csrf_of(browser, &app.url("/login/mfa")).await;
    let mut form = vec![("csrf_token", csrf.as_str()), ("code", code)];
    if let Some(to) = return_to {
        form.push(("return_to", to));
    }
    browser
        .post(app.url("/login/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Posts a form that asks for the current password.
pub(crate) async fn post_password(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    csrf: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(&[("csrf_token", csrf), ("current_password", password)])
        .send()
        .await
        .unwrap()
}

/// Makes every session one that signed in with the password alone, as
/// sessions from before second factors existed read (`amr` NULL).
pub(crate) fn password_only_sessions(app: &TestApp) {
    use diesel::RunQueryDsl;
    let mut c = common::conn(&app.db);
    diesel::sql_query("UPDATE sessions SET amr = NULL")
        .execute(&mut *c)
        .unwrap();
}

pub(crate) async fn is_signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let r = browser.get(app.url("/account")).send().await.unwrap();
    r.status() == StatusCode::OK
}

/// A user who has set up an authenticator app, and a fresh browser.
pub(crate) async fn enrolled_user(app: &TestApp, name: &str) -> (Vec<u8>, Vec<String>) {
    fixtures::user(app, name);
    let browser = fixtures::signed_in(app, name).await;
    enrol(app, &browser).await
}

async fn totp_enrolment_and_sign_in(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (seed, _) = enrolled_user(&app, "bob").await;
    assert_eq!(app.count("mfa_totp"), 1);
    assert_eq!(app.count("mfa_recovery_codes"), 10);

    // The password alone no longer gives a session.
    let browser = app.new_browser();
    let to = password_step(&app, &browser, "bob").await;
    assert!(to.starts_with("/login/mfa"), "{to}");
    assert!(!is_signed_in(&app, &browser).await, "no session yet");
    assert_eq!(app.count("mfa_challenges"), 1);
    // A wrong code: the form again, still no session.
    let wrong = if totp(&seed, now(&app)) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let r = second_step(&app, &browser, wrong, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!is_signed_in(&app, &browser).await);
    // The right one: signed in, the challenge gone.
    let r = second_step(&app, &browser, &totp(&seed, now(&app)), Some("/account")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account");
    assert!(is_signed_in(&app, &browser).await);
    assert_eq!(app.count("mfa_challenges"), 0);
    let page = fixtures::page_text(&app, &browser, "/account/mfa").await;
    assert!(page.contains("10 of 10 left"), "{page}");
    assert!(
        !page.contains(&base32_of(&seed)),
        "the key is never shown again"
    );

    // No pending sign-in and no session: back to the password.
    let stranger = app.new_browser();
    let r = stranger.get(app.url("/login/mfa")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A pending sign-in expires after five minutes.
    let late = app.new_browser();
    password_step(&app, &late, "bob").await;
    let csrf = csrf_of(&late, &app.url("/login/mfa")).await;
    app.clock.advance(Duration::minutes(6));
    let code = totp(&seed, now(&app));
    let r = late
        .post(app.url("/login/mfa"))
        .form(&[("csrf_token", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    assert!(!is_signed_in(&app, &late).await);
}

fn base32_of(seed: &[u8]) -> String {
    latchkey::domain::mfa::base32(seed)
}

async fn replayed_and_skewed_codes(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (seed, _) = enrolled_user(&app, "bob").await;
    let code = totp(&seed, now(&app));
    let first = app.new_browser();
    password_step(&app, &first, "bob").await;
    let r = second_step(&app, &first, &code, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "accepted once");
    // The same code again, in its window: refused.
    let second = app.new_browser();
    password_step(&app, &second, "bob").await;
    let r = second_step(&app, &second, &code, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no replay");

    // One step of skew either way is accepted; two are not.
    for (delta, ok) in [(-60, false), (60, false), (-30, true), (30, true)] {
        next_step(&app);
        next_step(&app);
        let b = app.new_browser();
        password_step(&app, &b, "bob").await;
        let r = second_step(&app, &b, &totp(&seed, now(&app) + delta), None).await;
        let want = if ok {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status(), want, "skew {delta} s");
    }
}

async fn wrong_codes_count_toward_the_sign_in_throttle(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (seed, _) = enrolled_user(&app, "bob").await;
    let right = totp(&seed, now(&app));
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let max = app.config.login.max_failures_per_account;
    let mut throttled = false;
    // Each pending sign-in allows five codes; new ones keep coming.
    for _ in 0..=(max + 1) {
        let b = app.new_browser();
        let r = app.login(&b, "bob", PASSWORD).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
        let r = second_step(&app, &b, wrong, None).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            throttled = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(throttled, "wrong codes back off like wrong passwords");
    // And the password form backs off for the account too.
    let b = app.new_browser();
    let r = app.login(&b, "bob", "wrong password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn recovery_codes_work_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (_, codes) = enrolled_user(&app, "bob").await;
    let browser = app.new_browser();
    password_step(&app, &browser, "bob").await;
    // Typed in capitals, with spaces for the dash: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = second_step(&app, &browser, &typed, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(is_signed_in(&app, &browser).await);
    let page = fixtures::page_text(&app, &browser, "/account/mfa").await;
    assert!(page.contains("9 of 10 left"), "{page}");
    assert!(page.contains("Recovery codes used"), "{page}");
    let used = {
        let mut c = common::conn(&app.db);
        latchkey::store::repo::audit::recent(&mut c, Some("mfa.recovery_code_used"), 100)
            .unwrap()
            .len()
    };
    assert_eq!(used, 1, "audited");

    // Used: refused the second time.
    let again = app.new_browser();
    password_step(&app, &again, "bob").await;
    let r = second_step(&app, &again, &codes[0], None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // New codes (after the password) replace the old ones.
    let csrf = csrf_of(&browser, &app.url("/account/mfa")).await;
    let r = post_password(&app, &browser, "/account/mfa/recovery", &csrf, "nope").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "needs the password");
    let r = post_password(&app, &browser, "/account/mfa/recovery", &csrf, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let fresh: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    let r = second_step(&app, &again, &codes[1], None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "old set gone");
    let r = second_step(&app, &again, &fresh[0], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "new set works");
}

async fn turning_off_needs_the_password(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let browser = fixtures::signed_in(&app, "bob").await;
    enrol(&app, &browser).await;
    let csrf = csrf_of(&browser, &app.url("/account/mfa/remove")).await;
    let r = post_password(&app, &browser, "/account/mfa/remove", &csrf, "nope").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("mfa_totp"), 1, "nothing changed");
    let r = post_password(&app, &browser, "/account/mfa/remove", &csrf, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("mfa_totp") + app.count("mfa_recovery_codes"), 0);
    // The password alone signs in again.
    let b = app.new_browser();
    assert_eq!(password_step(&app, &b, "bob").await, "/");
    assert!(is_signed_in(&app, &b).await);
}

pub(crate) fn wiki(app: &TestApp) -> RegisteredClient {
    fixtures::client("Team Wiki")
        .redirect(CALLBACK)
        .scopes("openid profile offline_access")
        .first_party(true)
        .create(app)
}

async fn step_up_through_acr_values_with_openidconnect(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let rp = wiki(&app);
    let browser = fixtures::signed_in(&app, "bob").await;
    let (seed, _) = enrol(&app, &browser).await;
    // Enrolling made this session a two-factor one; a session that signed
    // in with the password alone (as those from before second factors
    // existed read: `amr` NULL) is what steps up.
    password_only_sessions(&app);

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let supported: Vec<String> = metadata
        .acr_values_supported()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(supported, [ACR_PWD, ACR_MFA]);
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.id.clone()),
        Some(ClientSecret::new(rp.secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());

    // prompt=none cannot ask for the code.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()))
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .set_pkce_challenge(challenge)
        .url();
    let r = browser.get(url.as_str()).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with(CALLBACK) && loc.contains("error=interaction_required"),
        "{loc}"
    );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()))
        .set_pkce_challenge(challenge)
        .url();
    // The password-only session is sent for its second factor first.
    let r = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login/mfa?return_to="), "{to}");
    let return_to: String = url::Url::parse(&app.url(&to))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1
        .into_owned();
    let r = second_step(&app, &browser, &totp(&seed, now(&app)), Some(&return_to)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = html_unescape(r.headers()["location"].to_str().unwrap());
    let loc = common::authorize_url_in(&app, &browser, &app.url(&back)).await;
    assert!(loc.starts_with(CALLBACK), "{loc}");
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("id token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), ACR_MFA);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);

    // The ID token of a refresh says the same.
    let refresh = tokens.refresh_token().expect("refresh token").secret();
    let (status, body) = fixtures::refresh_at(&app.base, &rp, refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id =
        common::verify_with_jwks(&app.jwks().await, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // A user with a password only gets acr pwd without acr_values.
    fixtures::user(&app, "carol");
    let carol = fixtures::signed_in(&app, "carol").await;
    let (_, tokens) =
        common::code_flow(&app, &carol, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let tokens = tokens.expect("tokens");
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_PWD);
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
}

async fn acr_values_for_a_user_without_a_second_factor(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "carol");
    let rp = wiki(&app);
    let browser = fixtures::signed_in(&app, "carol").await;
    let url = common::authorize_url(&app, &rp.id, CALLBACK, &[("acr_values", ACR_MFA)]);
    let r = browser.get(&url).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(CALLBACK), "{loc}");
    assert!(
        loc.contains("error=unmet_authentication_requirements"),
        "{loc}"
    );
    // Asking for either level is met by the password.
    let either = format!("{ACR_MFA} {ACR_PWD}");
    let url = common::authorize_url(&app, &rp.id, CALLBACK, &[("acr_values", &either)]);
    let loc = common::authorize_url_in(&app, &browser, &url).await;
    assert!(loc.contains("code="), "{loc}");
}

async fn password_grant_refuses_users_with_a_second_factor(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.legacy.password_grant = true).await;
    let rp = fixtures::client("Old intranet")
        .scopes("openid profile")
        .grants(&["password"])
        .create(&app);
    fixtures::user(&app, "carol");
    let grant = |user: &'static str| {
        app.http
            .post(app.url("/token"))
            .basic_auth(&rp.id, Some(rp.secret()))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", PASSWORD),
                ("scope", "openid"),
            ])
    };
    let (status, _) = fixtures::json(grant("carol")).await;
    assert_eq!(status, StatusCode::OK, "a password-only user may");
    enrolled_user(&app, "bob").await;
    let (status, body) = fixtures::json(grant("bob")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant", "as a wrong password");
}

async fn client_that_requires_a_second_factor(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.legacy.password_grant = true).await;
    let rp = fixtures::client("Payroll")
        .redirect(CALLBACK)
        .scopes("openid profile")
        .grants(&["authorization_code", "password"])
        .first_party(true)
        .create(&app);
    // Set through the admin API (and shown by it).
    fixtures::admin(&app, "root");
    let token = fixtures::admin_api_token(&app).await;
    let (status, view) = fixtures::admin_api(
        &app,
        &token,
        reqwest::Method::PATCH,
        &format!("/clients/{}", rp.id),
        Some(serde_json::json!({ "require_mfa": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["require_mfa"], true);

    // Without acr_values: a user with no second factor is refused.
    fixtures::user(&app, "carol");
    let carol = fixtures::signed_in(&app, "carol").await;
    let r = carol
        .get(common::authorize_url(&app, &rp.id, CALLBACK, &[]))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.contains("error=unmet_authentication_requirements"),
        "{loc}"
    );
    // A user with one signs in with it, and the ID token says so.
    let (seed, _) = enrolled_user(&app, "bob").await;
    let bob = app.new_browser();
    password_step(&app, &bob, "bob").await;
    let r = second_step(&app, &bob, &totp(&seed, now(&app)), None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (loc, tokens) =
        common::code_flow(&app, &bob, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let tokens = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_MFA);
    // The password grant cannot ask for the second factor: refused to all.
    let (status, body) = fixtures::json(
        app.http
            .post(app.url("/token"))
            .basic_auth(&rp.id, Some(rp.secret()))
            .form(&[
                ("grant_type", "password"),
                ("username", "carol"),
                ("password", PASSWORD),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
}

async fn group_policy_with_a_grace_period(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.mfa.required_groups = vec!["finance".into()];
        c.mfa.enrol_grace_days = 2;
    })
    .await;
    let rp = wiki(&app);
    fixtures::user(&app, "dave");
    fixtures::user(&app, "erin");
    {
        use latchkey::domain::audit::Actor;
        let mut c = common::conn(&app.db);
        latchkey::service::groups::create(&mut c, "finance", &Actor::system(), app.clock_now())
            .unwrap();
        latchkey::service::groups::set_user_groups(
            &mut c,
            "dave",
            &["finance".into()],
            &Actor::system(),
            app.clock_now(),
        )
        .unwrap();
    }
    // Outside the group: nothing changes.
    let erin = app.new_browser();
    assert_eq!(password_step(&app, &erin, "erin").await, "/");
    // In it, without a second factor: signed in, led to set one up, and
    // apps still get codes during the grace period.
    let dave = app.new_browser();
    assert_eq!(
        password_step(&app, &dave, "dave").await,
        "/account/mfa?done=required"
    );
    let page = fixtures::page_text(&app, &dave, "/account/mfa?done=required").await;
    assert!(page.contains("requires two-step sign-in"), "{page}");
    let url = common::authorize_url(&app, &rp.id, CALLBACK, &[]);
    let loc = common::authorize_url_in(&app, &dave, &url).await;
    assert!(loc.contains("code="), "{loc}");
    // Past it: no code until it is set up.
    app.clock.advance(Duration::days(3));
    let dave = app.new_browser();
    password_step(&app, &dave, "dave").await;
    let r = dave.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/account/mfa?done=required");
    let r = dave
        .get(common::authorize_url(
            &app,
            &rp.id,
            CALLBACK,
            &[("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.contains("error=interaction_required"), "{loc}");
    // Set up: confirming the app's first code was the second factor, so
    // this session gets codes at once, as a two-factor sign-in.
    enrol(&app, &dave).await;
    let (loc, tokens) =
        common::code_flow(&app, &dave, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let tokens = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_MFA);
    // Erin, outside the group, still signs in with her password alone.
    let erin = fixtures::signed_in(&app, "erin").await;
    let loc = common::authorize_url_in(&app, &erin, &url).await;
    assert!(loc.contains("code="), "{loc}");
}

async fn admin_sees_and_resets_factors(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let token = fixtures::admin_api_token(&app).await;
    let (seed, _) = enrolled_user(&app, "bob").await;
    let bob = app.new_browser();
    password_step(&app, &bob, "bob").await;
    let r = second_step(&app, &bob, &totp(&seed, now(&app)), None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(is_signed_in(&app, &bob).await);

    let (status, f) =
        fixtures::admin_api(&app, &token, reqwest::Method::GET, "/users/bob/mfa", None).await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(f["totp"]["confirmed"], true);
    assert_eq!(f["recovery_codes_left"], 10);
    let text = f.to_string();
    assert!(
        !text.contains(&base32_of(&seed)) && !text.contains("secret"),
        "{text}"
    );
    let (status, _) = fixtures::admin_api(
        &app,
        &token,
        reqwest::Method::GET,
        "/users/nobody/mfa",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, done) = fixtures::admin_api(
        &app,
        &token,
        reqwest::Method::DELETE,
        "/users/bob/mfa",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["had_factor"], true);
    assert!(done["sessions_ended"].as_u64().unwrap() >= 1);
    // Bob's sessions ended: the browser is signed out.
    assert!(!is_signed_in(&app, &bob).await);
    assert_eq!(app.count("mfa_totp") + app.count("mfa_recovery_codes"), 0);
    let audited = {
        let mut c = common::conn(&app.db);
        latchkey::store::repo::audit::recent(&mut c, Some("user.mfa_reset"), 10)
            .unwrap()
            .len()
    };
    assert_eq!(audited, 1);
    // The next sign-in is with the password alone.
    let b = app.new_browser();
    assert_eq!(password_step(&app, &b, "bob").await, "/");
    // The console shows it (and offers no reset for a user without one).
    let console = fixtures::signed_in(&app, "root").await;
    let page = fixtures::page_text(&app, &console, "/admin/users/bob").await;
    assert!(page.contains("Not set up"), "{page}");
}

async fn cli_shows_and_resets_factors(db: TestDb) {
    let url = db.url.clone();
    let app = TestApp::spawn(db).await;
    let (seed, _) = enrolled_user(&app, "bob").await;
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let o = crate::cli::latchkey(dir.path())
            .args(["--database-url", &url, "user", "mfa"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), String::from_utf8(o.stdout).unwrap(), err)
    };
    let (code, out, err) = cli(&["show", "bob", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["totp"]["confirmed"], true);
    assert_eq!(f["recovery_codes_left"], 10);
    assert!(!out.contains(&base32_of(&seed)));
    let (code, _, _) = cli(&["show", "nobody"]);
    assert_eq!(code, Some(1), "not found");
    let (code, out, err) = cli(&["reset", "bob"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("removed"), "{out}");
    assert_eq!(app.count("mfa_totp") + app.count("mfa_recovery_codes"), 0);
    let (_, out, _) = cli(&["show", "bob"]);
    assert!(out.contains("authenticator app: none"), "{out}");
}
