//! Personal access tokens (`lkp_…`): created in My account (a CSRF form),
//! through the admin API and the CLI; shown once, stored hashed; read by
//! resource servers through introspection (active with the user and the
//! scopes they may hold now), by nobody else; every use re-checks the
//! user, the `[pat]` settings and the token's expiry. Which tokens still
//! work after a sign-out, a password reset, a revoke, a password change
//! (with and without "Also revoke my personal access tokens"). Creating
//! one in My account needs the current password. SQLite and PostgreSQL.

use latchkey::config::Config;
use latchkey::domain::audit::Actor;
use latchkey::domain::secret::hash_secret;
use latchkey::service::audit_query::{self, AuditEntry, AuditFilter};
use latchkey::service::pat::{self, NewPat};
use latchkey::service::{groups, housekeeping, users};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::common::fixtures::{
    self, PASSWORD, RegisteredClient, admin_api, introspect, page_text, submit,
};
use crate::common::{TestApp, TestDb, conn};

dual_backend!(
    created_in_my_account_and_read_by_resource_servers_only,
    another_users_token_cannot_be_revoked_from_my_account,
    every_use_rechecks_the_user_and_the_expiry,
    creation_refuses_what_the_user_may_not_hold,
    settings_bar_creating_and_using_tokens,
    admins_manage_a_users_tokens_through_the_api_and_the_cli,
    creating_a_token_needs_the_current_password,
    a_password_change_revokes_every_token_when_asked,
);

const NOTES_API: &str = "https://notes.example/api";

/// The notes API: a confidential client serving an audience.
fn notes_api(app: &TestApp) -> RegisteredClient {
    fixtures::client("Notes API")
        .redirect("https://notes.example/cb")
        .resource_audience(NOTES_API)
        .create(app)
}

/// A confidential client that serves no audience.
fn plain_app(app: &TestApp) -> RegisteredClient {
    fixtures::client("Team Wiki")
        .redirect("https://wiki.example/cb")
        .create(app)
}

/// A token for `username`, made through the service as an admin would:
/// the token and its id.
fn token_for(app: &TestApp, username: &str, scopes: &str, days: i64) -> (String, String) {
    let issued = pat::create_for(
        &mut conn(&app.db),
        &app.config.pat,
        username,
        &NewPat {
            name: format!("{username}'s script"),
            scopes: vec![scopes.into()],
            expires_in_days: days,
        },
        &Actor::system(),
        app.clock_now(),
    )
    .expect("create token");
    (issued.token, issued.view.id)
}

/// The token on the page that shows it once.
fn token_in(page: &str) -> String {
    let at = page.find("lkp_").expect("a token on the page");
    page[at..at + 47].to_owned()
}

fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..Default::default()
    };
    audit_query::list(&mut conn(&app.db), &filter).unwrap()
}

fn join_group(app: &TestApp, username: &str, group: &[&str]) {
    let names: Vec<String> = group.iter().map(|g| (*g).to_owned()).collect();
    groups::set_user_groups(
        &mut conn(&app.db),
        username,
        &names,
        &Actor::system(),
        app.clock_now(),
    )
    .unwrap();
}

async fn created_in_my_account_and_read_by_resource_servers_only(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let alice = fixtures::alice(&app);
    app.define_scopes(&["read:notes"]);
    let api = notes_api(&app);
    let wiki = plain_app(&app);
    let browser = fixtures::signed_in(&app, "alice").await;

    let page = page_text(&app, &browser, "/account").await;
    assert!(page.contains("Personal access tokens"), "{page}");
    assert!(page.contains(r#"name="scope" value="read:notes""#));
    assert!(
        !page.contains(r#"value="openid""#) && !page.contains(r#"value="offline_access""#),
        "sign-in scopes are not offered"
    );
    let t0 = app.clock_now();
    let r = submit(
        &app,
        &browser,
        "/account",
        "/account/tokens",
        &[
            ("name", "Notes sync"),
            ("scope", "read:notes"),
            ("scope", "profile"),
            ("expires_in_days", "30"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let shown = r.text().await.unwrap();
    assert!(shown.contains("shown only this once"), "{shown}");
    let token = token_in(&shown);

    // Shown once: the account page lists it by name and hint only, and
    // the database holds its hash.
    let page = page_text(&app, &browser, "/account").await;
    assert!(page.contains("Notes sync") && page.contains(&token[..12]));
    assert!(!page.contains(&token));
    let listed = pat::list(&mut conn(&app.db), &alice.id, app.clock_now()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, None);
    assert_eq!(app.count("personal_access_tokens"), 1);
    let admin_list: Value = {
        let (status, list) = admin_api(
            &app,
            &fixtures::admin_api_token(&app).await,
            Method::GET,
            "/users/alice/tokens",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        list
    };
    assert!(!admin_list.to_string().contains(&token), "{admin_list}");

    // A resource server reads who and what, and no client_id.
    let body = introspect(&app, &api, &token).await;
    assert_eq!(
        body,
        json!({
            "active": true,
            "scope": "profile read:notes",
            "sub": alice.id,
            "iss": app.config.issuer,
            "exp": (t0 + Duration::days(30)).unix_timestamp(),
            "iat": t0.unix_timestamp(),
            "token_type": "Bearer",
        })
    );
    // Any other client learns nothing, and records no use.
    assert_eq!(
        introspect(&app, &wiki, &token).await,
        json!({"active": false})
    );
    // Its use is written at most once a minute.
    let last_used =
        || pat::list(&mut conn(&app.db), &alice.id, app.clock_now()).unwrap()[0].last_used_at;
    assert_eq!(last_used(), Some(t0));
    app.clock.advance(Duration::seconds(59));
    assert_eq!(introspect(&app, &api, &token).await["active"], true);
    assert_eq!(last_used(), Some(t0), "not written again within a minute");
    app.clock.advance(Duration::seconds(1));
    assert_eq!(introspect(&app, &api, &token).await["active"], true);
    assert_eq!(last_used(), Some(t0 + Duration::seconds(60)));

    // No client can revoke it at /revoke (it is the user's): a no-op.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&api.id, Some(api.secret()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &api, &token).await["active"], true);

    // Signing out and a password reset leave it working.
    submit(&app, &browser, "/logout", "/logout", &[]).await;
    users::set_password(
        &mut conn(&app.db),
        "alice",
        "another password!",
        app.clock_now(),
    )
    .unwrap();
    assert_eq!(introspect(&app, &api, &token).await["active"], true);

    // Revoking in My account: a confirmation first, then it stops.
    let browser = app.new_browser();
    app.login(&browser, "alice", "another password!").await;
    let id = &listed[0].id;
    let confirm = format!("/account/tokens/{id}/revoke");
    let page = page_text(&app, &browser, &confirm).await;
    assert!(page.contains("Revoke this token?") && page.contains("Notes sync"));
    assert_eq!(
        introspect(&app, &api, &token).await["active"],
        true,
        "GET changes nothing"
    );
    let r = submit(&app, &browser, &confirm, &confirm, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?done=token_revoked");
    assert_eq!(
        introspect(&app, &api, &token).await,
        json!({"active": false})
    );
    let page = page_text(&app, &browser, "/account?done=token_revoked").await;
    assert!(page.contains("Token revoked") && !page.contains("Notes sync"));
    assert_eq!(
        submit(&app, &browser, "/account", &confirm, &[])
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "revoked once"
    );

    // The audit log has both, never the token.
    let entries = audit(&app, "pat.");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["pat.revoke", "pat.create"]);
    for e in &entries {
        assert_eq!(e.actor, "user:alice");
        assert_eq!(e.target, "alice");
        let detail = e.detail.clone().unwrap_or_default();
        assert!(detail.contains(id), "{detail}");
        assert!(!detail.contains(&token) && !detail.contains(&token[4..]));
    }
    assert!(!format!("{entries:?}").contains(&hash_secret(&token)));
}

async fn another_users_token_cannot_be_revoked_from_my_account(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    fixtures::user(&app, "bob");
    let api = notes_api(&app);
    let (bobs, bobs_id) = token_for(&app, "bob", "profile", 7);
    let browser = fixtures::signed_in(&app, "alice").await;
    let path = format!("/account/tokens/{bobs_id}/revoke");
    let r = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("bob's script"));
    let r = submit(&app, &browser, "/account", &path, &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without the CSRF token: refused before anything is looked up.
    let r = browser
        .post(app.url(&path))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(introspect(&app, &api, &bobs).await["active"], true);
    assert!(audit(&app, "pat.revoke").is_empty(), "nothing recorded");
    assert!(
        !page_text(&app, &browser, "/account")
            .await
            .contains("bob's script")
    );
    // Deleting the user deletes their tokens.
    users::delete(&mut conn(&app.db), "bob", app.clock_now()).unwrap();
    assert_eq!(app.count("personal_access_tokens"), 0);
    assert_eq!(
        introspect(&app, &api, &bobs).await,
        json!({"active": false})
    );
}

async fn every_use_rechecks_the_user_and_the_expiry(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    app.define_scopes(&["read:notes"]);
    fixtures::restricted_scope(&app, "deploy:prod", "ops");
    join_group(&app, "alice", &["ops"]);
    let api = notes_api(&app);
    let (both, _) = token_for(&app, "alice", "read:notes deploy:prod", 30);
    let (deploy_only, _) = token_for(&app, "alice", "deploy:prod", 30);
    assert_eq!(
        introspect(&app, &api, &both).await["scope"],
        "deploy:prod read:notes"
    );

    // Leaving the group takes the scope off her tokens; a token left with
    // no scope at all reads inactive. Joining again gives it back.
    join_group(&app, "alice", &[]);
    assert_eq!(introspect(&app, &api, &both).await["scope"], "read:notes");
    assert_eq!(
        introspect(&app, &api, &deploy_only).await,
        json!({"active": false})
    );
    join_group(&app, "alice", &["ops"]);
    assert_eq!(introspect(&app, &api, &deploy_only).await["active"], true);

    // A disabled account's tokens stop (and work again once re-enabled:
    // revoke them to end them).
    let now = app.clock_now();
    users::set_disabled(&mut conn(&app.db), "alice", true, now).unwrap();
    assert_eq!(
        introspect(&app, &api, &both).await,
        json!({"active": false})
    );
    users::set_disabled(&mut conn(&app.db), "alice", false, now).unwrap();
    assert_eq!(introspect(&app, &api, &both).await["active"], true);

    // Malformed and unknown tokens are inactive.
    for t in [
        "lkp_".to_owned(),
        format!("{both}x"),
        format!("lkp_{}", "A".repeat(43)),
    ] {
        assert_eq!(
            introspect(&app, &api, &t).await,
            json!({"active": false}),
            "{t}"
        );
    }

    // A token is good until its expiry second, not at it.
    let (short, short_id) = token_for(&app, "alice", "read:notes", 1);
    app.clock.advance(Duration::days(1) - Duration::seconds(1));
    assert_eq!(introspect(&app, &api, &short).await["active"], true);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(
        introspect(&app, &api, &short).await,
        json!({"active": false})
    );
    let alice = users::find(&mut conn(&app.db), "alice").unwrap();
    let listed = pat::list(&mut conn(&app.db), &alice.id, app.clock_now()).unwrap();
    assert!(listed.iter().any(|t| t.id == short_id && t.expired));

    // Housekeeping deletes tokens expired (or revoked) 30 days ago.
    let purge = |at| {
        housekeeping::purge(
            &mut conn(&app.db),
            at,
            latchkey::service::sessions::SessionPolicy::from_config(&app.config.session),
            Duration::minutes(15),
            Duration::days(90),
        )
        .unwrap()
        .personal_access_tokens
    };
    assert_eq!(purge(app.clock_now() + Duration::days(29)), 0);
    assert_eq!(purge(app.clock_now() + Duration::days(31)), 1);
    assert_eq!(app.count("personal_access_tokens"), 2);
}

async fn creation_refuses_what_the_user_may_not_hold(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    app.define_scopes(&["read:notes"]);
    fixtures::restricted_scope(&app, "deploy:prod", "ops");
    let browser = fixtures::signed_in(&app, "alice").await;
    let page = page_text(&app, &browser, "/account").await;
    assert!(!page.contains(r#"value="deploy:prod""#), "not offered");

    // From the form: the page again, with the reason and the input kept.
    for (fields, reason) in [
        (
            vec![("scope", "read:notes"), ("scope", "deploy:prod")],
            "\"deploy:prod\" is not a scope this account may hold",
        ),
        (vec![("scope", "read:notes"), ("scope", "openid")], "openid"),
        (
            vec![("scope", "read:notes"), ("scope", "nope:x")],
            "unknown scope",
        ),
        (vec![], "choose at least one scope"),
    ] {
        let mut form = vec![
            ("name", "Deploy bot"),
            ("expires_in_days", "14"),
            ("current_password", PASSWORD),
        ];
        form.extend(fields);
        let r = submit(&app, &browser, "/account", "/account/tokens", &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{reason}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&reason.replace('"', "&quot;")),
            "{reason}: {page}"
        );
        assert!(page.contains(r#"value="Deploy bot""#) && page.contains(r#"value="14""#));
        if form.contains(&("scope", "read:notes")) {
            assert!(page.contains(r#"value="read:notes" checked"#), "ticks kept");
        }
        assert!(!page.contains("lkp_"));
    }
    for (days, name) in [("0", "x"), ("366", "x"), ("soon", "x"), ("7", " ")] {
        let r = submit(
            &app,
            &browser,
            "/account",
            "/account/tokens",
            &[
                ("name", name),
                ("scope", "read:notes"),
                ("expires_in_days", days),
                ("current_password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{days} {name:?}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("between 1 and 365 days") || page.contains("must not be empty"),
            "{page}"
        );
    }

    // Through the admin API: the same rules, clear errors.
    let admin = fixtures::admin_api_token(&app).await;
    for (scopes, days, needle) in [
        (json!(["latchkey:admin"]), 7, "created by their owner"),
        (
            json!(["deploy:prod"]),
            7,
            "not a scope this account may hold",
        ),
        (json!(["offline_access"]), 7, "offline_access"),
        (json!(["read:notes"]), 400, "between 1 and 365"),
    ] {
        let (status, body) = admin_api(
            &app,
            &admin,
            Method::POST,
            "/users/alice/tokens",
            Some(json!({"name": "x", "scopes": scopes, "expires_in_days": days})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    // Not even for an administrator: admin tokens are made by their
    // owner, with their password, in My account.
    fixtures::admin(&app, "root");
    let (status, body) = admin_api(
        &app,
        &admin,
        Method::POST,
        "/users/root/tokens",
        Some(json!({"name": "x", "scopes": ["latchkey:admin"], "expires_in_days": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("created by their owner"),
        "{body}"
    );
    assert_eq!(app.count("personal_access_tokens"), 0, "nothing stored");
    assert!(audit(&app, "pat.").is_empty(), "nothing recorded");

    // Once she is in the group, the same request works.
    join_group(&app, "alice", &["ops"]);
    let r = submit(
        &app,
        &browser,
        "/account",
        "/account/tokens",
        &[
            ("name", "Deploy bot"),
            ("scope", "deploy:prod"),
            ("expires_in_days", "14"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.count("personal_access_tokens"), 1);
}

/// Another instance on the same database with other `[pat]` settings.
async fn instance_with(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (kek, issuer) = (app.config.keys.kek_file.clone(), app.config.issuer.clone());
    TestApp::spawn_on(&app.config.database.url, |c| {
        c.keys.kek_file = kek;
        c.issuer = issuer;
        tweak(c);
    })
    .await
}

async fn settings_bar_creating_and_using_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    fixtures::user(&app, "bob");
    groups::create(
        &mut conn(&app.db),
        "staff",
        &Actor::system(),
        app.clock_now(),
    )
    .unwrap();
    join_group(&app, "bob", &["staff"]);
    let api = notes_api(&app);
    let (alices, _) = token_for(&app, "alice", "profile", 30);
    let (bobs, _) = token_for(&app, "bob", "profile", 30);

    // Only staff: alice's token stops, she is told why, and cannot make one.
    let staff_only = instance_with(&app, |c| c.pat.allowed_groups = vec!["staff".into()]).await;
    assert_eq!(
        introspect(&staff_only, &api, &alices).await,
        json!({"active": false})
    );
    assert_eq!(introspect(&staff_only, &api, &bobs).await["active"], true);
    assert_eq!(
        introspect(&app, &api, &alices).await["active"],
        true,
        "elsewhere"
    );
    let browser = fixtures::signed_in(&staff_only, "alice").await;
    let page = page_text(&staff_only, &browser, "/account").await;
    assert!(
        page.contains("may not have personal access tokens"),
        "{page}"
    );
    assert!(page.contains("the tokens above do not work"));
    assert!(!page.contains(r#"action="/account/tokens""#));
    let form = [
        ("name", "x"),
        ("scope", "profile"),
        ("expires_in_days", "7"),
        ("current_password", PASSWORD),
    ];
    let r = submit(&staff_only, &browser, "/account", "/account/tokens", &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("ask an administrator"));
    let bobs_browser = fixtures::signed_in(&staff_only, "bob").await;
    let r = submit(
        &staff_only,
        &bobs_browser,
        "/account",
        "/account/tokens",
        &form,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.count("personal_access_tokens"), 3);

    // Turned off: no section, no creation, no use.
    let off = instance_with(&app, |c| c.pat.enabled = false).await;
    let browser = fixtures::signed_in(&off, "bob").await;
    let page = page_text(&off, &browser, "/account").await;
    assert!(!page.contains("Personal access tokens"), "{page}");
    assert!(
        page.contains(r#"<input type="hidden" name="revoke_tokens" value="1">"#),
        "no box to tick: a password change revokes what tokens there are"
    );
    let r = submit(&off, &browser, "/account", "/account/tokens", &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("turned off"));
    assert_eq!(
        introspect(&off, &api, &bobs).await,
        json!({"active": false})
    );
    let admin = fixtures::admin_api_token(&off).await;
    let (status, body) = admin_api(
        &off,
        &admin,
        Method::POST,
        "/users/bob/tokens",
        Some(json!({"name": "x", "scopes": ["profile"], "expires_in_days": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.count("personal_access_tokens"), 3);
    // The instance that allows them still reads bob's token.
    assert_eq!(introspect(&app, &api, &bobs).await["active"], true);
}

async fn admins_manage_a_users_tokens_through_the_api_and_the_cli(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let alice = fixtures::alice(&app);
    app.define_scopes(&["read:notes"]);
    let api = notes_api(&app);
    let admin = fixtures::admin_api_token(&app).await;

    let (status, issued) = admin_api(
        &app,
        &admin,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"name": "Backup job", "scopes": ["read:notes"], "expires_in_days": 90})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    assert_eq!(issued["hint"], format!("{}…", &token[..12]));
    let body = introspect(&app, &api, &token).await;
    assert_eq!(
        (body["sub"].as_str(), body["scope"].as_str()),
        (Some(alice.id.as_str()), Some("read:notes"))
    );
    let (status, list) = admin_api(&app, &admin, Method::GET, "/users/alice/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0].get("token").is_none());
    let path = format!("/users/alice/tokens/{id}");
    let (status, _) = admin_api(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        introspect(&app, &api, &token).await,
        json!({"active": false})
    );
    let (status, _) = admin_api(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin_api(&app, &admin, Method::GET, "/users/nobody/tokens", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let entries = audit(&app, "pat.");
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.actor.starts_with("client:") && e.target == "alice")
    );

    // The CLI, on the same database.
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let o = crate::cli::latchkey(dir.path())
            .arg("--database-url")
            .arg(&app.config.database.url)
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (
            o.status.code(),
            out,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for help in [
        &["user", "tokens", "--help"][..],
        &["user", "tokens", "create", "--help"],
    ] {
        let (code, out, _) = cli(help);
        assert_eq!(code, Some(0));
        assert!(out.contains("Usage:"), "{out}");
    }
    let (code, out, err) = cli(&[
        "user",
        "tokens",
        "create",
        "alice",
        "--name",
        "Nightly",
        "--scope",
        "read:notes",
        "--expires-in-days",
        "7",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, &api, &token).await["active"], true);
    let (_, out, _) = cli(&["user", "tokens", "list", "alice"]);
    assert!(out.contains("Nightly") && !out.contains(&token), "{out}");
    let (code, _, err) = cli(&[
        "user",
        "tokens",
        "create",
        "alice",
        "--name",
        "x",
        "--scope",
        "openid",
        "--expires-in-days",
        "7",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("openid"), "{err}");
    let made_id = made["id"].as_str().unwrap();
    let (code, _, err) = cli(&["user", "tokens", "revoke", "alice", made_id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        introspect(&app, &api, &token).await,
        json!({"active": false})
    );
    let cli_entries = audit(&app, "pat.");
    assert_eq!(cli_entries.len(), 4);
    assert!(cli_entries[..2].iter().all(|e| e.actor.starts_with("cli:")));
}

/// Whether a resource server reads `token` as active.
async fn active(app: &TestApp, api: &RegisteredClient, token: &str) -> bool {
    introspect(app, api, token).await["active"] == true
}

/// The new-token form in My account, as `browser` sends it.
async fn create_in_my_account(
    app: &TestApp,
    browser: &reqwest::Client,
    password: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("name", "Deploy bot"),
        ("scope", "read:notes"),
        ("scope", "profile"),
        ("expires_in_days", "14"),
    ];
    form.extend(password.map(|p| ("current_password", p)));
    submit(app, browser, "/account", "/account/tokens", &form).await
}

async fn creating_a_token_needs_the_current_password(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.login.max_failures_per_account = 3;
        c.login.throttle_window_secs = 600;
    })
    .await;
    fixtures::alice(&app);
    app.define_scopes(&["read:notes"]);
    let api = notes_api(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    let page = page_text(&app, &browser, "/account").await;
    assert!(
        page.contains(r#"id="token_password" name="current_password""#),
        "{page}"
    );

    // Without it, or with a wrong one: the form again, with the reason and
    // everything but the password; nothing stored or audited.
    for (password, reason) in [
        (None, "current_password: is required"),
        (Some(""), "current_password: is required"),
        (
            Some("guess guess"),
            "current_password: is not your current password",
        ),
    ] {
        let r = create_in_my_account(&app, &browser, password).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{password:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains(reason), "{password:?}: {page}");
        assert!(page.contains(r#"value="Deploy bot""#) && page.contains(r#"value="14""#));
        assert!(page.contains(r#"value="read:notes" checked"#));
        assert!(page.contains(r#"value="profile" checked"#));
        assert!(
            !page.contains("guess guess"),
            "the password is not shown again"
        );
        assert!(!page.contains("lkp_"));
    }
    assert_eq!(app.count("personal_access_tokens"), 0);
    assert!(audit(&app, "pat.").is_empty());

    // Wrong passwords count with the sign-in form's and the password
    // change's failures (one throttle): past the allowance even the right
    // one is refused here, and the sign-in form is locked too.
    create_in_my_account(&app, &browser, Some("guess again")).await;
    let fields = [
        ("current_password", "guess a third time"),
        ("new_password", "a much better passphrase"),
    ];
    let r = submit(&app, &browser, "/account", "/account/password", &fields).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = create_in_my_account(&app, &browser, Some(PASSWORD)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("wrong too many times"));
    let r = app.login(&app.new_browser(), "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.count("personal_access_tokens"), 0);

    // Once the back-off has passed, the right password creates it.
    app.clock.advance(Duration::seconds(2));
    let r = create_in_my_account(&app, &browser, Some(PASSWORD)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = token_in(&r.text().await.unwrap());
    assert_eq!(
        introspect(&app, &api, &token).await["scope"],
        "profile read:notes"
    );
    let entries = audit(&app, "pat.create");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "user:alice");

    // The admin API needs no password (admins authenticate otherwise).
    let (status, body) = admin_api(
        &app,
        &fixtures::admin_api_token(&app).await,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"name": "x", "scopes": ["profile"], "expires_in_days": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// My account's password form, with "Also revoke my personal access
/// tokens" ticked or not.
async fn change_password(
    app: &TestApp,
    browser: &reqwest::Client,
    current: &str,
    new: &str,
    revoke_tokens: bool,
) -> reqwest::Response {
    let mut form = vec![("current_password", current), ("new_password", new)];
    form.extend(revoke_tokens.then_some(("revoke_tokens", "1")));
    submit(app, browser, "/account", "/account/password", &form).await
}

async fn a_password_change_revokes_every_token_when_asked(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::alice(&app);
    fixtures::user(&app, "bob");
    app.define_scopes(&["read:notes"]);
    let api = notes_api(&app);
    let (first, _) = token_for(&app, "alice", "read:notes", 30);
    let (second, _) = token_for(&app, "alice", "profile", 30);
    let (bobs, _) = token_for(&app, "bob", "profile", 30);
    let browser = fixtures::signed_in(&app, "alice").await;

    // Ticked by default.
    let page = page_text(&app, &browser, "/account").await;
    assert!(
        page.contains(r#"name="revoke_tokens" value="1" checked>"#),
        "{page}"
    );

    // Ending sessions (hers, or an admin's for her) leaves tokens working.
    let phone = fixtures::signed_in(&app, "alice").await;
    let r = submit(
        &app,
        &phone,
        "/account",
        "/account/sessions/end-others",
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let admin = fixtures::admin_api_token(&app).await;
    let (status, _) = admin_api(&app, &admin, Method::DELETE, "/users/alice/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(active(&app, &api, &first).await && active(&app, &api, &second).await);
    let browser = fixtures::signed_in(&app, "alice").await;

    // Refused (wrong current password) with the box unticked: the page
    // keeps it unticked, and nothing changes.
    let r = change_password(&app, &browser, "guess guess", "a new passphrase", false).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"name="revoke_tokens" value="1">"#),
        "{page}"
    );
    assert!(active(&app, &api, &first).await);

    // Unticked: the password changes, the tokens keep working.
    let new = "a much better passphrase";
    let r = change_password(&app, &browser, PASSWORD, new, false).await;
    assert_eq!(r.headers()["location"], "/account?done=password");
    assert!(active(&app, &api, &first).await && active(&app, &api, &second).await);
    assert!(audit(&app, "pat.revoke_all").is_empty());

    // Ticked: every one of her tokens stops at once, in the same change;
    // bob's is untouched.
    let newer = "an even better passphrase";
    let r = change_password(&app, &browser, new, newer, true).await;
    assert_eq!(r.headers()["location"], "/account?done=password_tokens");
    for token in [&first, &second] {
        assert_eq!(
            introspect(&app, &api, token).await,
            json!({"active": false})
        );
    }
    assert!(active(&app, &api, &bobs).await);
    let page = page_text(&app, &browser, "/account?done=password_tokens").await;
    assert!(page.contains("personal access tokens revoked"), "{page}");
    assert!(page.contains("You have no personal access tokens."));
    let entries = audit(&app, "pat.revoke_all");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].actor.as_str(), entries[0].target.as_str()),
        ("user:alice", "alice")
    );
    assert_eq!(
        entries[0].detail.as_deref(),
        Some("count=2 reason=password_change")
    );
    let alice = users::find(&mut conn(&app.db), "alice").unwrap();
    assert!(
        pat::list(&mut conn(&app.db), &alice.id, app.clock_now())
            .unwrap()
            .is_empty()
    );

    // Nothing left to revoke: the plain notice, no audit entry.
    let r = change_password(&app, &browser, newer, new, true).await;
    assert_eq!(r.headers()["location"], "/account?done=password");
    assert_eq!(audit(&app, "pat.revoke_all").len(), 1);
}
