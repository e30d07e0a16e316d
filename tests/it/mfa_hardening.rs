//! Multi-factor sign-in, after the security review (issue 13): setting up
//! an authenticator ends the sessions that signed in with the password
//! alone, a pending enrolment's key is shown only to the session that
//! started it, changing a factor needs a two-factor session, pages that
//! show a key are not cached; a client that requires a second factor gets
//! no token from a sign-in without one, by token exchange or refresh, and
//! keeps requiring it across an RFC 7592 update; a step-up renews the
//! session; the console's reset asks first; the device flow steps up or
//! denies; on SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fixtures::{self, RegisteredClient};
use crate::common::{self, TestApp, TestDb, csrf_token_in};
use crate::device::{DEVICE_GRANT, answer, assert_error, enter_raw, poll, start, user_code};
use crate::mfa::{
    ACR_MFA, CALLBACK, base32_decode, csrf_of, enrol, is_signed_in, now, password_only_sessions,
    post_password, second_step, totp, wiki,
};
use crate::token_exchange::{EXCHANGE, alice_pat, exchange};

dual_backend!(
    enrolment_ends_password_only_sessions,
    pending_key_is_shown_only_to_its_session,
    factor_changes_need_a_two_factor_session,
    token_exchange_for_a_client_that_requires_a_second_factor,
    refresh_for_a_client_that_requires_a_second_factor,
    registration_update_keeps_require_mfa,
    step_up_renews_the_session,
    console_reset_is_behind_a_confirmation_page,
    device_flow_for_a_client_that_requires_a_second_factor,
    recovery_codes_are_stored_keyed,
);

/// Starts (or shows again) an enrolment in `browser`: the response's
/// `Cache-Control` and the key as the page shows it.
async fn begin(app: &TestApp, browser: &reqwest::Client) -> (String, String) {
    let csrf = csrf_of(browser, &app.url("/account/mfa")).await;
    let r = browser
        .post(app.url("/account/mfa/totp"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let secret = page
        .split("<code class=\"wrap\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the key as text")
        .to_owned();
    (cache, secret)
}

async fn enrolment_ends_password_only_sessions(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let rp = wiki(&app);
    // Someone with bob's password signs in before bob sets up an app, and
    // gets tokens: one grant without offline_access, one with.
    let intruder = fixtures::signed_in(&app, "bob").await;
    let (loc, tokens) =
        common::code_flow(&app, &intruder, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let online = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let online_access = online["access_token"].as_str().unwrap().to_owned();
    let (loc, tokens) = common::code_flow(
        &app,
        &intruder,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let offline = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let refresh = offline["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = app.get_with_bearer("/userinfo", &online_access).await;
    assert_eq!(status, StatusCode::OK);

    let bob = fixtures::signed_in(&app, "bob").await;
    enrol(&app, &bob).await;

    // The intruder's session is over: its cookie no longer signs anyone in.
    assert!(!is_signed_in(&app, &intruder).await);
    assert!(is_signed_in(&app, &bob).await);
    assert_eq!(app.count("sessions"), 1);
    // As at any sign-out: the grant made in that session without
    // offline_access is revoked, so its access token no longer works...
    let (status, _) = app.get_with_bearer("/userinfo", &online_access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // ...while an offline_access grant outlives the session unless
    // `logout.revoke_offline_grants` is set (its refresh token still works,
    // and its ID tokens say the password alone).
    let (status, body) = fixtures::refresh_at(&app.base, &rp, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id =
        common::verify_with_jwks(&app.jwks().await, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));

    // The enrolling session now counts as signed in with both factors:
    // apps get codes saying so, and it may remove the factor.
    let (loc, tokens) =
        common::code_flow(&app, &bob, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let tokens = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let r = bob
        .get(app.url("/account/mfa/remove"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn pending_key_is_shown_only_to_its_session(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let first = fixtures::signed_in(&app, "bob").await;
    let second = fixtures::signed_in(&app, "bob").await;
    let (cache, key) = begin(&app, &first).await;
    assert_eq!(cache, "no-store", "a page with a key is not cached");
    // The same session sees its pending key again...
    assert_eq!(begin(&app, &first).await.1, key);
    // ...another session never does: it starts over with a key of its own,
    let (_, other) = begin(&app, &second).await;
    assert_ne!(other, key);
    // and cannot confirm with the first session's key either: the code is
    // refused beside the field, its own key shown, never the first one's.
    let code = totp(&base32_decode(&key), now(&app));
    let csrf = csrf_of(&second, &app.url("/account/mfa")).await;
    let r = second
        .post(app.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains(&other) && !page.contains(&key), "{page}");
    assert_eq!(app.count("mfa_totp"), 1);
    // The first session starts over (the second one's key is not shown to
    // it either) and confirms.
    let (_, key) = begin(&app, &first).await;
    assert_ne!(key, other);
    let code = totp(&base32_decode(&key), now(&app));
    let csrf = csrf_token_in(&fixtures::page_text(&app, &first, "/account/mfa").await).unwrap();
    let r = first
        .post(app.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Which ended the second session.
    assert!(!is_signed_in(&app, &second).await);
    assert!(is_signed_in(&app, &first).await);
}

async fn factor_changes_need_a_two_factor_session(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let browser = fixtures::signed_in(&app, "bob").await;
    let (seed, codes) = enrol(&app, &browser).await;
    // A session that signed in with the password alone (as those from
    // before second factors existed read).
    password_only_sessions(&app);
    let step_up = "/login/mfa?return_to=%2Faccount%2Fmfa";
    let r = browser
        .get(app.url("/account/mfa/remove"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], step_up);
    let csrf = csrf_of(&browser, &app.url("/account/mfa")).await;
    for path in ["/account/mfa/remove", "/account/mfa/recovery"] {
        let r = post_password(&app, &browser, path, &csrf, fixtures::PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], step_up, "{path}");
    }
    // Nothing changed: the app and the same recovery codes are there.
    assert_eq!(app.count("mfa_totp"), 1);
    assert_eq!(app.count("mfa_recovery_codes"), codes.len() as i64);
    // After the code, the same session may.
    let r = second_step(
        &app,
        &browser,
        &totp(&seed, now(&app)),
        Some("/account/mfa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let csrf = csrf_of(&browser, &app.url("/account/mfa")).await;
    let r = post_password(
        &app,
        &browser,
        "/account/mfa/remove",
        &csrf,
        fixtures::PASSWORD,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account/mfa?done=removed");
    assert_eq!(app.count("mfa_totp"), 0);
}

const NOTES: &str = "https://notes.example/api";
const PAYROLL: &str = "https://payroll.example/api";

/// The notes app (no second factor required) whose tokens are for the
/// notes API.
fn notes_app(app: &TestApp) -> RegisteredClient {
    app.define_scopes(&["read:notes"]);
    fixtures::client("Notes")
        .redirect(CALLBACK)
        .scopes("openid offline_access read:notes")
        .grants(&["authorization_code", "refresh_token"])
        .audience(NOTES)
        .first_party(true)
        .create(app)
}

/// The user's tokens from the notes app, signed in in `browser`.
async fn notes_tokens(app: &TestApp, rp: &RegisteredClient, browser: &reqwest::Client) -> Value {
    let (loc, tokens) = common::code_flow(
        app,
        browser,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access read:notes",
    )
    .await;
    tokens.unwrap_or_else(|| panic!("tokens: {loc}"))
}

async fn token_exchange_for_a_client_that_requires_a_second_factor(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let notes = notes_app(&app);
    // The notes API may trade tokens for payroll ones; payroll tokens are
    // only for two-factor sign-ins.
    let api = fixtures::client("Notes API")
        .scopes("read:notes")
        .grants(&[EXCHANGE])
        .resource_audience(NOTES)
        .audience(PAYROLL)
        .require_mfa(true)
        .create(&app);
    let audience = [("audience", PAYROLL)];

    // Signed in with the password alone: refused, as RFC 8693 2.2.2 says.
    let browser = fixtures::signed_in(&app, "alice").await;
    let pwd = notes_tokens(&app, &notes, &browser).await;
    let pwd_token = pwd["access_token"].as_str().unwrap();
    let (status, body) = exchange(&app, &api, pwd_token, &audience).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{body}"
    );
    // A personal access token carries no second factor: refused.
    let issued = alice_pat(&app, "read:notes");
    let (status, body) = exchange(&app, &api, issued.token.as_str(), &audience).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");

    // After a sign-in with the second factor (enrolling counts as one).
    enrol(&app, &browser).await;
    let mfa = notes_tokens(&app, &notes, &browser).await;
    let (status, body) =
        exchange(&app, &api, mfa["access_token"].as_str().unwrap(), &audience).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The password-only token still is refused (its offline grant lives).
    let (status, _) = exchange(&app, &api, pwd_token, &audience).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// An administrator requires a second factor for a client (admin API).
async fn require_mfa_for(app: &TestApp, client_id: &str) {
    fixtures::admin(app, "root");
    let token = fixtures::admin_api_token(app).await;
    let (status, view) = fixtures::admin_api(
        app,
        &token,
        reqwest::Method::PATCH,
        &format!("/clients/{client_id}"),
        Some(serde_json::json!({ "require_mfa": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["require_mfa"], true);
}

async fn refresh_for_a_client_that_requires_a_second_factor(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    let notes = notes_app(&app);
    // Tokens from a password-only sign-in, then the client starts to
    // require a second factor: the refresh token no longer works.
    let browser = fixtures::signed_in(&app, "alice").await;
    let pwd = notes_tokens(&app, &notes, &browser).await;
    let (status, _) =
        fixtures::refresh_at(&app.base, &notes, pwd["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "refreshes before");
    let (status, body) = {
        let pwd = notes_tokens(&app, &notes, &browser).await;
        require_mfa_for(&app, &notes.id).await;
        fixtures::refresh_at(&app.base, &notes, pwd["refresh_token"].as_str().unwrap()).await
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // One from a two-factor sign-in does.
    enrol(&app, &browser).await;
    let mfa = notes_tokens(&app, &notes, &browser).await;
    let (status, body) =
        fixtures::refresh_at(&app.base, &notes, mfa["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id =
        common::verify_with_jwks(&app.jwks().await, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_MFA);
}

async fn registration_update_keeps_require_mfa(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;
    let r = app
        .http
        .post(app.url("/register"))
        .json(&json!({"client_name": "Field app", "redirect_uris": ["https://field.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let field: Value = r.json().await.unwrap();
    let id = field["client_id"].as_str().unwrap();
    require_mfa_for(&app, id).await;
    // RFC 7592 update by the app itself: an administrator's setting, kept.
    let r = app
        .http
        .put(field["registration_client_uri"].as_str().unwrap())
        .bearer_auth(field["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": id,
            "client_name": "Field app 2",
            "redirect_uris": ["https://field.example/cb"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut c = common::conn(&app.db);
    let client = latchkey::service::clients::find(&mut c, id).unwrap();
    assert_eq!(client.settings.name, "Field app 2", "the update took");
    assert!(client.settings.require_mfa);
}

/// The session cookie (`name=value`) a response sets, if any.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_session=") && !v.starts_with("latchkey_session=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Whether `cookie` (`name=value`) alone signs anyone in.
async fn cookie_signs_in(app: &TestApp, cookie: &str) -> bool {
    let r = common::client()
        .get(app.url("/account"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

async fn step_up_renews_the_session(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let rp = wiki(&app);
    let browser = app.new_browser();
    let r = app.login(&browser, "bob", fixtures::PASSWORD).await;
    let before = session_cookie(&r).expect("a session cookie");
    let (seed, _) = enrol(&app, &browser).await;
    // A session that signed in with the password alone steps up a while
    // later.
    password_only_sessions(&app);
    assert!(cookie_signs_in(&app, &before).await);
    app.clock.advance(time::Duration::minutes(10));
    let r = second_step(&app, &browser, &totp(&seed, now(&app)), Some("/account")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = session_cookie(&r).expect("a new session cookie");
    assert_ne!(after, before);
    // The cookie from before no longer works; the new one does.
    assert!(!cookie_signs_in(&app, &before).await);
    assert!(cookie_signs_in(&app, &after).await);
    assert!(is_signed_in(&app, &browser).await);
    assert_eq!(app.count("sessions"), 1);
    // The sign-in counts from the step-up: auth_time is its time.
    let (loc, tokens) =
        common::code_flow(&app, &browser, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let tokens = tokens.unwrap_or_else(|| panic!("tokens: {loc}"));
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["auth_time"], now(&app));
    assert_eq!(id["acr"], ACR_MFA);
}

async fn console_reset_is_behind_a_confirmation_page(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let bob = fixtures::signed_in(&app, "bob").await;
    enrol(&app, &bob).await;
    fixtures::admin(&app, "root");
    let console = fixtures::signed_in(&app, "root").await;
    let page = fixtures::page_text(&app, &console, "/admin/users/bob").await;
    assert!(
        page.contains("href=\"/admin/users/bob/mfa/reset\"")
            && !page.contains("action=\"/admin/users/bob/mfa/reset\""),
        "a link to the confirmation page, not a form: {page}"
    );
    // The page says what will happen, and changes nothing.
    let page = fixtures::page_text(&app, &console, "/admin/users/bob/mfa/reset").await;
    for said in [
        "Reset two-step sign-in of bob?",
        "authenticator app is removed",
        "10 unused recovery codes stop working",
        "1 session ends",
        "href=\"/admin/users/bob\">Cancel</a>",
    ] {
        assert!(page.contains(said), "{said}: {page}");
    }
    assert_eq!(app.count("mfa_totp"), 1);
    assert!(is_signed_in(&app, &bob).await);
    // Without the CSRF token: refused, nothing changed.
    let r = console
        .post(app.url("/admin/users/bob/mfa/reset"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("mfa_totp"), 1);
    // Confirmed: the factors go, bob's session ends.
    let csrf = csrf_token_in(&page).unwrap();
    let r = console
        .post(app.url("/admin/users/bob/mfa/reset"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/users/bob?done=mfa_reset");
    assert_eq!(app.count("mfa_totp") + app.count("mfa_recovery_codes"), 0);
    assert!(!is_signed_in(&app, &bob).await);
    // An unknown user: no page.
    let r = console
        .get(app.url("/admin/users/nobody/mfa/reset"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
}

async fn device_flow_for_a_client_that_requires_a_second_factor(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let kiosk = fixtures::client("Payroll kiosk")
        .scopes("openid profile")
        .grants(&[DEVICE_GRANT])
        .require_mfa(true)
        .create(&app);

    // A user without a second factor: the request is denied.
    fixtures::user(&app, "carol");
    let carol = fixtures::signed_in(&app, "carol").await;
    let device = start(&app, &kiosk, "openid profile").await;
    let r = enter_raw(&app, &carol, user_code(&device)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(page.contains("requires two-step sign-in"), "{page}");
    assert_error(&poll(&app, &kiosk, &device).await, "access_denied");

    // A user with one, in a session that signed in with the password
    // alone: sent for the code, then back to the device page.
    fixtures::user(&app, "bob");
    let bob = fixtures::signed_in(&app, "bob").await;
    let (seed, _) = enrol(&app, &bob).await;
    password_only_sessions(&app);
    let device = start(&app, &kiosk, "openid profile").await;
    let code = user_code(&device);
    let r = enter_raw(&app, &bob, code).await;
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
    assert!(return_to.starts_with("/device?user_code="), "{return_to}");
    // Nothing was answered meanwhile.
    assert_error(&poll(&app, &kiosk, &device).await, "authorization_pending");
    let r = second_step(&app, &bob, &totp(&seed, now(&app)), Some(&return_to)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = answer(&app, &bob, code, "allow").await;
    assert!(page.contains("Device connected"), "{page}");
    let (status, tokens) = poll(&app, &kiosk, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id =
        common::verify_with_jwks(&app.jwks().await, tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["acr"], ACR_MFA);
}

async fn recovery_codes_are_stored_keyed(db: TestDb) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        code_hash: String,
    }
    let app = TestApp::spawn(db).await;
    fixtures::user(&app, "bob");
    let browser = fixtures::signed_in(&app, "bob").await;
    let (_, codes) = enrol(&app, &browser).await;
    let stored: Vec<String> = {
        let mut c = common::conn(&app.db);
        diesel::sql_query("SELECT code_hash FROM mfa_recovery_codes")
            .load::<Row>(&mut *c)
            .unwrap()
            .into_iter()
            .map(|r| r.code_hash)
            .collect()
    };
    assert_eq!(stored.len(), codes.len());
    // Not the plain SHA-256 of any code (in any form a person types it):
    // a copy of the database alone does not allow trying them offline.
    for code in &codes {
        for form in [code.clone(), code.replace('-', "")] {
            let plain = latchkey::domain::secret::hash_secret(&form);
            assert!(!stored.contains(&plain), "{form}");
        }
    }
    // Still one use each.
    let other = app.new_browser();
    crate::mfa::password_step(&app, &other, "bob").await;
    let r = second_step(&app, &other, &codes[0], None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(is_signed_in(&app, &other).await);
}
