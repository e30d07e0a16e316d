//! "My account": authorized apps and Revoke, sessions, profile, password,
//! through the HTTP pages as a browser uses them, on SQLite and PostgreSQL.

use crate::common::fixtures::{self, PASSWORD, RegisteredClient as Rp, signed_in};
use crate::common::{self, PKCE_CHALLENGE, TestApp, TestDb, code_flow};
use reqwest::StatusCode;

const CALLBACK: &str = "https://wiki.example/callback";

dual_backend!(
    account_needs_a_session,
    revoke_ends_the_apps_access_at_once,
    revoke_needs_csrf_and_only_touches_own_apps,
    sessions_can_be_signed_out_one_by_one_or_all_others,
    password_change_needs_the_current_password,
    profile_edits_are_validated,
    disabling_a_user_revokes_their_refresh_tokens,
    authorized_apps_are_paged,
);

fn wiki(app: &TestApp) -> Rp {
    app.define_scopes(&["read:notes"]);
    fixtures::client("Team Wiki")
        .redirect(CALLBACK)
        .scopes("openid email offline_access read:notes")
        .create(app)
}

/// Signs `browser`'s user in to the wiki; returns the token response.
async fn connect(app: &TestApp, browser: &reqwest::Client, rp: &Rp) -> serde_json::Value {
    let scope = "openid offline_access read:notes";
    let (_, tokens) = code_flow(app, browser, (&rp.id, rp.secret()), CALLBACK, scope).await;
    tokens.expect("a code")
}

async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(rp.secret()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn introspect_active(app: &TestApp, rp: &Rp, token: &str) -> bool {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&rp.id, Some(rp.secret()))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

async fn page(app: &TestApp, browser: &reqwest::Client) -> (StatusCode, String) {
    let r = browser.get(app.url("/account")).send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    fixtures::submit(app, browser, "/account", path, form).await
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn account_needs_a_session(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let browser = app.new_browser();
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?return_to=/account");
    let r = browser
        .post(app.url("/account/sessions/end-others"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
}

async fn revoke_ends_the_apps_access_at_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let rp = wiki(&app);
    let browser = signed_in(&app, "alice").await;
    let tokens = connect(&app, &browser, &rp).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let (status, html) = page(&app, &browser).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Team Wiki"), "{html}");
    assert!(html.contains("<code>read:notes</code>"));
    assert!(introspect_active(&app, &rp, access_token).await);

    let r = post(
        &app,
        &browser,
        "/account/apps/revoke",
        &[("client_id", &rp.id)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account?done=revoked");

    // The refresh token fails at once, and introspection says inactive.
    let (status, body) = refresh(&app, &rp, refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(!introspect_active(&app, &rp, access_token).await);
    assert_eq!(app.count("consents"), 0);

    let html = browser
        .get(app.url("/account?done=revoked"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Team Wiki"));
    assert!(html.contains("No application has access"));
    assert!(html.contains("Access revoked."));

    // The consent is forgotten: the next sign-in asks again.
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Allow"));

    // Revoking again finds nothing.
    let r = post(
        &app,
        &browser,
        "/account/apps/revoke",
        &[("client_id", &rp.id)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn revoke_needs_csrf_and_only_touches_own_apps(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    app.create_user("bob", PASSWORD);
    let rp = wiki(&app);
    let alice = signed_in(&app, "alice").await;
    let tokens = connect(&app, &alice, &rp).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A forged form (wrong CSRF token) is refused and changes nothing.
    let r = alice
        .post(app.url("/account/apps/revoke"))
        .form(&[
            ("csrf_token", "A".repeat(43).as_str()),
            ("client_id", &rp.id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bob revoking the same app touches only his own (absent) grant.
    let bob = signed_in(&app, "bob").await;
    let r = post(&app, &bob, "/account/apps/revoke", &[("client_id", &rp.id)]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let (status, body) = refresh(&app, &rp, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.count("consents"), 1);
}

fn sids(html: &str) -> Vec<String> {
    html.split("name=\"sid\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

async fn sessions_can_be_signed_out_one_by_one_or_all_others(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    app.create_user("bob", PASSWORD);
    let laptop = signed_in(&app, "alice").await;
    let phone = signed_in(&app, "alice").await;

    let (_, html) = page(&app, &laptop).await;
    assert!(html.contains("this browser"));
    let others = sids(&html);
    assert_eq!(others.len(), 1, "one other session, with a sign-out button");

    // Bob cannot end Alice's session even knowing its sid.
    let bob = signed_in(&app, "bob").await;
    let r = post(&app, &bob, "/account/sessions/end", &[("sid", &others[0])]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(page(&app, &phone).await.0, StatusCode::OK);

    let r = post(
        &app,
        &laptop,
        "/account/sessions/end",
        &[("sid", &others[0])],
    )
    .await;
    assert_eq!(location(&r), "/account?done=session");
    assert_eq!(
        page(&app, &phone).await.0,
        StatusCode::SEE_OTHER,
        "phone signed out"
    );
    assert_eq!(page(&app, &laptop).await.0, StatusCode::OK);

    let tablet = signed_in(&app, "alice").await;
    let desktop = signed_in(&app, "alice").await;
    let r = post(&app, &laptop, "/account/sessions/end-others", &[]).await;
    assert_eq!(location(&r), "/account?done=sessions");
    assert_eq!(page(&app, &tablet).await.0, StatusCode::SEE_OTHER);
    assert_eq!(page(&app, &desktop).await.0, StatusCode::SEE_OTHER);
    assert_eq!(page(&app, &laptop).await.0, StatusCode::OK);
    assert_eq!(
        page(&app, &bob).await.0,
        StatusCode::OK,
        "other users untouched"
    );
}

async fn password_change_needs_the_current_password(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let laptop = signed_in(&app, "alice").await;
    let phone = signed_in(&app, "alice").await;
    let new = "a much better passphrase";

    let r = post(
        &app,
        &laptop,
        "/account/password",
        &[("current_password", "wrong"), ("new_password", new)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not your current password")
    );
    let r = post(
        &app,
        &laptop,
        "/account/password",
        &[("current_password", PASSWORD), ("new_password", "short")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        page(&app, &phone).await.0,
        StatusCode::OK,
        "nothing changed"
    );

    let r = post(
        &app,
        &laptop,
        "/account/password",
        &[("current_password", PASSWORD), ("new_password", new)],
    )
    .await;
    assert_eq!(location(&r), "/account?done=password");
    assert_eq!(
        page(&app, &laptop).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        page(&app, &phone).await.0,
        StatusCode::SEE_OTHER,
        "others end"
    );
    let fresh = app.new_browser();
    assert_eq!(
        app.login(&fresh, "alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&fresh, "alice", new).await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn profile_edits_are_validated(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    let r = post(
        &app,
        &browser,
        "/account/profile",
        &[
            ("name", "Alice Liddell"),
            ("given_name", "Alice"),
            ("locale", "en-GB"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/account?done=profile");
    let (_, html) = page(&app, &browser).await;
    assert!(html.contains("value=\"Alice Liddell\""), "{html}");

    for bad in [
        ("picture", "javascript:alert(1)"),
        ("locale", "en GB<script>"),
        ("name", &"x".repeat(201)),
    ] {
        let r = post(
            &app,
            &browser,
            "/account/profile",
            &[bad, ("name", "Mallory")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let (_, html) = page(&app, &browser).await;
    assert!(html.contains("value=\"Alice Liddell\""), "unchanged");
}

async fn disabling_a_user_revokes_their_refresh_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    let rp = wiki(&app);
    let browser = signed_in(&app, "alice").await;
    let tokens = connect(&app, &browser, &rp).await;
    {
        let mut c = common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "alice", true, app.clock_now()).unwrap();
    }
    let (status, body) = refresh(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(!introspect_active(&app, &rp, tokens["access_token"].as_str().unwrap()).await);
    assert_eq!(page(&app, &browser).await.0, StatusCode::SEE_OTHER);
}

/// The client ids of the Revoke forms on a page, top to bottom.
fn app_ids(html: &str) -> Vec<String> {
    html.split("name=\"client_id\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

async fn account_at(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let r = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    common::html_unescape(&r.text().await.unwrap())
}

async fn authorized_apps_are_paged(db: TestDb) {
    use std::collections::BTreeSet;
    use time::Duration;

    let app = TestApp::spawn(db).await;
    let alice = app.create_user("alice", PASSWORD);
    let rp = wiki(&app);
    let browser = signed_in(&app, "alice").await;
    // A real authorization (consent, grant, refresh token) at t0, and 44
    // remembered consents: 20 newer (page 1), 19 older (the rest of page
    // 2, under the wiki), and 5 older still, all at one time (page 3, by
    // name).
    let tokens = connect(&app, &browser, &rp).await;
    let t0 = app.clock_now();
    let apps = fixtures::consented_apps(&app, &alice.id, 44, CALLBACK, |i| {
        t0 + Duration::minutes(if i < 20 { i + 1 } else { -(i - 19).min(20) })
    });

    let p1 = account_at(&app, &browser, "/account").await;
    let p2 = account_at(&app, &browser, "/account?apps_page=2").await;
    let p3 = account_at(&app, &browser, "/account?apps_page=3").await;
    assert!(p1.contains("Page 1 of 3") && p2.contains("Page 2 of 3") && p3.contains("Page 3 of 3"));
    assert!(!p1.contains("rel=\"prev\"") && p1.contains("href=\"/account?apps_page=2#apps\""));
    assert!(
        p2.contains("href=\"/account#apps\"") && p2.contains("href=\"/account?apps_page=3#apps\"")
    );
    assert!(p3.contains("href=\"/account?apps_page=2#apps\"") && !p3.contains("rel=\"next\""));
    let (ids1, ids2, ids3) = (app_ids(&p1), app_ids(&p2), app_ids(&p3));
    assert_eq!((ids1.len(), ids2.len(), ids3.len()), (20, 20, 5));
    // Most recently used first, then by name.
    let newest_first: Vec<&String> = apps[..20].iter().rev().collect();
    assert_eq!(ids1.iter().collect::<Vec<_>>(), newest_first);
    assert_eq!(ids2[0], rp.id, "the wiki, used at t0, opens page 2");
    assert_eq!(ids2[1..], apps[20..39]);
    assert_eq!(ids3, apps[39..], "equal times: by name");
    let all: BTreeSet<&String> = ids1.iter().chain(&ids2).chain(&ids3).collect();
    assert_eq!(all.len(), 45, "each app exactly once across the pages");

    // Out of range or not a number: clamped, never an error.
    for (query, ids) in [
        ("4", &ids3),
        ("99999999999999999999999", &ids3),
        ("0", &ids1),
        ("-2", &ids1),
        ("abc", &ids1),
        ("", &ids1),
    ] {
        let html = account_at(&app, &browser, &format!("/account?apps_page={query}")).await;
        assert_eq!(&app_ids(&html), ids, "apps_page={query}");
    }
    let html = account_at(&app, &browser, "/account?apps_page=2&apps_page=3&done=x").await;
    assert_eq!(app_ids(&html), ids2, "the first value counts");

    // Revoking the wiki from page 2 goes back to page 2, without it.
    let r = post(
        &app,
        &browser,
        "/account/apps/revoke",
        &[("client_id", &rp.id), ("apps_page", "2")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account?done=revoked&apps_page=2");
    let html = account_at(&app, &browser, &location(&r)).await;
    assert!(html.contains("Access revoked.") && html.contains("Page 2 of 3"));
    assert_eq!(
        app_ids(&html),
        apps[20..40],
        "44 apps: the next one moves up"
    );
    let (status, body) = refresh(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(!introspect_active(&app, &rp, tokens["access_token"].as_str().unwrap()).await);
}
