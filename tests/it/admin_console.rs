//! The admin console's pages through HTTP as a browser uses them, on SQLite
//! and PostgreSQL: who gets in, CSRF on every form, each page and its
//! forms, bad input refused with nothing changed, locked clients.

use crate::common::fixtures::{self, PASSWORD, signed_in};
use crate::common::{self, TestApp, TestDb, csrf_token_in};
use latchkey::config::DeclaredClient;
use latchkey::service::clients;
use latchkey::service::users;
use reqwest::StatusCode;

dual_backend!(
    console_is_for_admins_only,
    every_page_renders_for_an_admin,
    forms_need_a_csrf_token,
    clients_from_the_console,
    users_groups_and_scopes_from_the_console,
    keys_and_audit_from_the_console,
);

/// A page, with Tera's HTML escapes undone so tests read plain text.
async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let r = b.get(app.url(path)).send().await.unwrap();
    let s = r.status();
    (s, common::html_unescape(&r.text().await.unwrap()))
}

/// Posts a console form with the CSRF token from `page`.
async fn post(
    app: &TestApp,
    b: &reqwest::Client,
    page: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let r = fixtures::submit(app, b, page, path, form).await;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), location)
}

async fn console_is_for_admins_only(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    app.create_user("alice", PASSWORD);

    let anon = app.new_browser();
    let r = anon.get(app.url("/admin/users?q=x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/login?return_to=%2Fadmin%2Fusers%3Fq%3Dx"
    );

    let alice = signed_in(&app, "alice").await;
    for path in ["/admin", "/admin/clients", "/admin/keys", "/admin/audit"] {
        assert_eq!(
            get(&app, &alice, path).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let r = alice
        .post(app.url("/admin/groups"))
        .form(&[("csrf_token", "x".repeat(43).as_str()), ("name", "mine")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("groups"), 0);

    let root = signed_in(&app, "root").await;
    let (status, html) = get(&app, &root, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Administration"));
}

async fn every_page_renders_for_an_admin(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let root = signed_in(&app, "root").await;
    let id = fixtures::client("Wiki")
        .redirect("https://wiki.example/cb")
        .create(&app)
        .id;
    for path in [
        "/admin".to_owned(),
        "/admin/clients".into(),
        format!("/admin/clients/{id}"),
        "/admin/scopes".into(),
        "/admin/users".into(),
        "/admin/users?q=ro&offset=0".into(),
        "/admin/users/root".into(),
        "/admin/groups".into(),
        "/admin/keys".into(),
        "/admin/audit?action=key.".into(),
    ] {
        let (status, html) = get(&app, &root, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.contains("admin-nav"), "{path}");
    }
    assert_eq!(
        get(&app, &root, "/admin/users/nobody").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &root, "/admin/clients/nope").await.0,
        StatusCode::NOT_FOUND
    );
}

async fn forms_need_a_csrf_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let root = signed_in(&app, "root").await;
    get(&app, &root, "/admin/groups").await;
    for token in [None, Some("A".repeat(43))] {
        let mut form = vec![("name", "staff".to_owned())];
        if let Some(t) = token {
            form.push(("csrf_token", t));
        }
        let r = root
            .post(app.url("/admin/groups"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::BAD_REQUEST,
            "{}",
            r.status()
        );
    }
    // A cross-site Origin is refused even with the right token.
    let (_, html) = get(&app, &root, "/admin/groups").await;
    let token = csrf_token_in(&html).unwrap();
    let r = root
        .post(app.url("/admin/groups"))
        .header("Origin", "https://evil.example")
        .form(&[("csrf_token", token.as_str()), ("name", "staff")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("groups"), 0);
}

async fn clients_from_the_console(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let root = signed_in(&app, "root").await;
    let (status, html, _) = post(
        &app,
        &root,
        "/admin/clients",
        "/admin/clients",
        &[
            ("name", "Team wiki"),
            (
                "redirect_uris",
                "https://wiki.example/cb\r\nhttps://wiki.example/cb2",
            ),
            ("scopes", "openid email"),
            ("grant_authorization_code", "on"),
            ("grant_refresh_token", "on"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("shown only once"));
    let secrets: Vec<&str> = html
        .split("<code class=\"secret\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    let (id, secret) = (secrets[0].to_owned(), secrets[1].to_owned());
    assert_eq!(secret.len(), 43);

    let (_, page) = get(&app, &root, &format!("/admin/clients/{id}")).await;
    assert!(!page.contains(&secret), "the secret is never shown again");
    assert!(page.contains("https://wiki.example/cb2"));

    // Bad input: an error naming the problem, nothing changed.
    for (field, value, needle) in [
        ("redirect_uris", "javascript:alert(1)", "redirect_uri"),
        (
            "redirect_uris",
            "https://wiki.example/cb#top",
            "redirect_uri",
        ),
        ("scopes", "openid read:everything", "unknown scope"),
        ("name", "", "name"),
    ] {
        let mut form = vec![
            ("name", "Team wiki"),
            ("redirect_uris", "https://wiki.example/cb"),
            ("scopes", "openid"),
            ("grant_authorization_code", "on"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let (status, html, _) = post(
            &app,
            &root,
            &format!("/admin/clients/{id}"),
            &format!("/admin/clients/{id}"),
            &form,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {html}");
        assert!(html.contains(needle), "{field}={value}: {html}");
    }
    let (_, page) = get(&app, &root, &format!("/admin/clients/{id}")).await;
    assert!(page.contains("https://wiki.example/cb2"), "unchanged");

    let (status, _, location) = post(
        &app,
        &root,
        &format!("/admin/clients/{id}"),
        &format!("/admin/clients/{id}"),
        &[
            ("name", "Team wiki"),
            ("redirect_uris", "https://wiki.example/new"),
            ("scopes", "openid"),
            ("grant_authorization_code", "on"),
            ("first_party", "on"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.unwrap(), format!("/admin/clients/{id}?done=saved"));
    let view = {
        let mut c = common::conn(&app.db);
        clients::find(&mut c, &id).unwrap().view()
    };
    assert_eq!(view.redirect_uris, ["https://wiki.example/new"]);
    assert!(view.first_party);

    let (status, html, _) = post(
        &app,
        &root,
        &format!("/admin/clients/{id}"),
        &format!("/admin/clients/{id}/secret"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&secret) && html.contains("New client secret"));

    let (status, _, location) = post(
        &app,
        &root,
        &format!("/admin/clients/{id}"),
        &format!("/admin/clients/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.unwrap(), "/admin/clients?done=deleted");
    assert_eq!(app.count("clients"), 0);

    // A client from latchkey.toml is shown locked and refuses edits.
    {
        let mut c = common::conn(&app.db);
        let declared = [DeclaredClient {
            client_id: "latchkey-cli".into(),
            name: "Latchkey CLI".into(),
            public: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            ..Default::default()
        }];
        clients::sync_declared(&mut c, &declared, &|_: &str| None, app.clock_now()).unwrap();
    }
    let (_, page) = get(&app, &root, "/admin/clients/latchkey-cli").await;
    assert!(page.contains("cannot be changed here"));
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/clients",
        "/admin/clients/latchkey-cli/delete",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("clients"), 1);
}

async fn users_groups_and_scopes_from_the_console(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let root = signed_in(&app, "root").await;
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/groups",
        "/admin/groups",
        &[("name", "finance")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, html, _) = post(
        &app,
        &root,
        "/admin/groups",
        "/admin/groups",
        &[("name", "bad name")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");

    let (status, _, _) = post(
        &app,
        &root,
        "/admin/scopes",
        "/admin/scopes",
        &[
            ("name", "read:payroll"),
            ("description", "Read payroll"),
            ("groups", "finance"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = get(&app, &root, "/admin/scopes").await;
    assert!(html.contains("read%3Apayroll"), "encoded in form actions");
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/scopes",
        "/admin/scopes/openid/delete",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "built-ins stay");

    for name in (0..30).map(|i| format!("user{i:02}")) {
        let (status, html, location) = post(
            &app,
            &root,
            "/admin/users",
            "/admin/users",
            &[
                ("username", &name),
                ("password", PASSWORD),
                ("groups", "finance"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        assert_eq!(
            location.unwrap(),
            format!("/admin/users/{name}?done=created")
        );
    }
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/users",
        "/admin/users",
        &[("username", "user00"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate username");
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/users",
        "/admin/users",
        &[("username", "user99"), ("password", "short")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "short password");
    assert_eq!(app.count("users"), 31, "root and user00..user29");
    let b = app.new_browser();
    assert_eq!(
        app.login(&b, "user29", PASSWORD).await.status(),
        StatusCode::SEE_OTHER,
        "the password set at creation"
    );
    let (_, page) = get(&app, &root, "/admin/users?q=user").await;
    assert!(page.contains("30 user(s)"));
    assert!(page.contains("offset=25") && page.contains("user24") && !page.contains("user25<"));
    let (_, page2) = get(&app, &root, "/admin/users?q=user&offset=25").await;
    assert!(page2.contains("user29") && !page2.contains(">user00<"));

    let (status, _, _) = post(
        &app,
        &root,
        "/admin/users/user01",
        "/admin/users/user01",
        &[
            ("name", "Ada"),
            ("disabled", "on"),
            ("email", "ada@example.com"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let user01 = {
        let mut c = common::conn(&app.db);
        users::show(&mut c, "user01").unwrap()
    };
    assert!(user01.disabled && user01.name.as_deref() == Some("Ada"));
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/users/user02",
        "/admin/users/user02/groups",
        &[("groups", "finance nobody")],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "unknown group: nothing changed"
    );
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/users/user02",
        "/admin/users/user02/password",
        &[("password", "a fresh passphrase")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let b = app.new_browser();
    assert_eq!(
        app.login(&b, "user02", "a fresh passphrase").await.status(),
        StatusCode::SEE_OTHER
    );

    // The last admin cannot demote themselves.
    let (status, html, _) = post(&app, &root, "/admin/users/root", "/admin/users/root", &[]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
}

async fn keys_and_audit_from_the_console(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    let root = signed_in(&app, "root").await;
    let before = app.jwks().await;
    let (status, _, location) = post(
        &app,
        &root,
        "/admin/keys",
        "/admin/keys/rotate",
        &[("alg", "RS256"), ("immediately", "on")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.unwrap(), "/admin/keys?done=rotated");
    let after = app.jwks().await;
    assert_ne!(before, after, "the new key is published at once");
    let (status, _, _) = post(
        &app,
        &root,
        "/admin/keys",
        "/admin/keys/rotate",
        &[("alg", "HS256")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, page) = get(&app, &root, "/admin/audit?actor=user:root&action=key.").await;
    assert!(page.contains("key.rotate"), "{page}");
    assert!(page.contains("127.0.0.1"));
}
