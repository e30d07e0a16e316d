//! Scopes and groups: the scope registry's rules, group-restricted scopes
//! never reaching users outside the group, and the `groups` claim in ID
//! token, access token and userinfo, on SQLite and PostgreSQL.

use crate::common::fixtures::{self, PASSWORD, signed_in};
use crate::common::{self, TestApp, TestDb, code_flow};
use base64::Engine;
use latchkey::domain::audit::Actor;
use latchkey::domain::client::ClientInput;
use latchkey::service::scopes::{self, ScopeInput};
use latchkey::service::{ServiceError, clients, groups};
use reqwest::StatusCode;

const CALLBACK: &str = "https://hr.example/callback";

dual_backend!(
    scope_registry_refuses_bad_changes,
    restricted_scope_only_reaches_group_members,
    groups_claim_in_id_token_access_token_and_userinfo,
    refresh_narrows_when_a_user_leaves_a_group,
    admin_scope_only_for_admins,
    deleting_a_group_never_widens_a_scope,
);

fn claims_of(jwt: &str) -> serde_json::Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

fn join(app: &TestApp, user: &str, groups: &[&str]) {
    let mut c = common::conn(&app.db);
    let names: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    groups::set_user_groups(&mut c, user, &names, &Actor::system(), app.clock_now()).unwrap();
}

fn hr_app(app: &TestApp, scopes: &str) -> (String, String) {
    let rp = fixtures::client("HR portal")
        .redirect(CALLBACK)
        .scopes(scopes)
        .create(app);
    (rp.id.clone(), rp.secret().to_owned())
}

async fn scope_registry_refuses_bad_changes(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut c = common::conn(&app.db);
    let actor = Actor::system();
    let now = app.clock_now();
    let input = |d: &str, g: &[&str]| ScopeInput {
        description: d.into(),
        groups: g.iter().map(|s| (*s).to_owned()).collect(),
        machine_grantable: None,
    };

    // A client may only be given scopes that exist.
    let err = clients::create(
        &mut c,
        None,
        &ClientInput {
            name: "X".into(),
            redirect_uris: vec![CALLBACK.into()],
            scopes: vec!["openid read:issues".into()],
            ..Default::default()
        },
        &latchkey::domain::alg::SigningAlg::ALL,
        now,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown scope"), "{err}");
    assert_eq!(app.count("clients"), 0);

    // Built-ins cannot be redefined or deleted.
    for name in ["openid", "groups", "latchkey:admin"] {
        assert!(matches!(
            scopes::create(&mut c, name, &input("mine", &[]), &actor, now),
            Err(ServiceError::Conflict(_))
        ));
        assert!(scopes::delete(&mut c, name, &actor, now).is_err());
    }
    // Bad names, empty or long descriptions, unknown groups: refused.
    assert!(scopes::create(&mut c, "bad scope\"", &input("d", &[]), &actor, now).is_err());
    assert!(scopes::create(&mut c, "read:issues", &input(" ", &[]), &actor, now).is_err());
    let long = "d".repeat(201);
    assert!(scopes::create(&mut c, "read:issues", &input(&long, &[]), &actor, now).is_err());
    assert!(matches!(
        scopes::create(&mut c, "read:issues", &input("d", &["nobody"]), &actor, now),
        Err(ServiceError::NotFound { .. })
    ));
    assert_eq!(app.count("scopes"), 0, "nothing half-created");

    scopes::create(
        &mut c,
        "read:issues",
        &input("Read issues", &[]),
        &actor,
        now,
    )
    .unwrap();
    assert!(matches!(
        scopes::create(&mut c, "read:issues", &input("again", &[]), &actor, now),
        Err(ServiceError::Conflict(_))
    ));
    clients::create(
        &mut c,
        None,
        &ClientInput {
            name: "Tracker".into(),
            redirect_uris: vec![CALLBACK.into()],
            scopes: vec!["openid read:issues".into()],
            ..Default::default()
        },
        &latchkey::domain::alg::SigningAlg::ALL,
        now,
    )
    .unwrap();
    // In use by a client: not deletable.
    let err = scopes::delete(&mut c, "read:issues", &actor, now).unwrap_err();
    assert!(err.to_string().contains("Tracker"), "{err}");
    let listed = scopes::list(&mut c).unwrap();
    assert!(listed.iter().any(|s| s.name == "openid" && s.builtin));
    assert!(listed.iter().any(|s| s.name == "read:issues" && !s.builtin));
}

async fn restricted_scope_only_reaches_group_members(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    app.create_user("bob", PASSWORD);
    fixtures::restricted_scope(&app, "read:payroll", "finance");
    join(&app, "bob", &["finance"]);
    let (id, secret) = hr_app(&app, "openid read:payroll");

    // Alice is not in finance: the consent page never shows the scope
    // and her token lacks it.
    let alice = signed_in(&app, "alice").await;
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid read:payroll"),
            ("code_challenge", common::PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let consent = alice.get(url).send().await.unwrap().text().await.unwrap();
    assert!(consent.contains("Allow"), "{consent}");
    assert!(!consent.contains("<code>read:payroll</code>"), "{consent}");
    let (_, tokens) = code_flow(
        &app,
        &alice,
        (&id, &secret),
        CALLBACK,
        "openid read:payroll",
    )
    .await;
    let tokens = tokens.unwrap();
    assert_eq!(tokens["scope"], "openid");
    assert_eq!(
        claims_of(tokens["access_token"].as_str().unwrap())["scope"],
        "openid"
    );

    // Asking only for what she may not have is invalid_scope.
    let (loc, tokens) = code_flow(&app, &alice, (&id, &secret), CALLBACK, "read:payroll").await;
    assert!(tokens.is_none());
    assert!(loc.contains("error=invalid_scope"), "{loc}");

    // Bob is in finance: the consent page shows the scope's description.
    let bob = signed_in(&app, "bob").await;
    let (_, tokens) = code_flow(&app, &bob, (&id, &secret), CALLBACK, "openid read:payroll").await;
    let tokens = tokens.unwrap();
    assert_eq!(tokens["scope"], "openid read:payroll");
}

async fn groups_claim_in_id_token_access_token_and_userinfo(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("bob", PASSWORD);
    {
        let mut c = common::conn(&app.db);
        for g in ["staff", "finance"] {
            groups::create(&mut c, g, &Actor::system(), app.clock_now()).unwrap();
        }
    }
    join(&app, "bob", &["staff", "finance"]);
    let (id, secret) = hr_app(&app, "openid groups");
    let bob = signed_in(&app, "bob").await;
    let (_, tokens) = code_flow(&app, &bob, (&id, &secret), CALLBACK, "openid groups").await;
    let tokens = tokens.unwrap();
    let want = serde_json::json!(["finance", "staff"]);
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["groups"],
        want
    );
    assert_eq!(
        claims_of(tokens["access_token"].as_str().unwrap())["groups"],
        want
    );
    let info: serde_json::Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["groups"], want);

    // Renamed: the next userinfo answer says so. Without the scope: no claim.
    {
        let mut c = common::conn(&app.db);
        groups::rename(
            &mut c,
            "staff",
            "employees",
            &Actor::system(),
            app.clock_now(),
        )
        .unwrap();
    }
    let info: serde_json::Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["groups"], serde_json::json!(["employees", "finance"]));
    let (_, plain) = code_flow(&app, &bob, (&id, &secret), CALLBACK, "openid").await;
    let plain = plain.unwrap();
    assert!(
        claims_of(plain["id_token"].as_str().unwrap())
            .get("groups")
            .is_none()
    );
    assert!(
        claims_of(plain["access_token"].as_str().unwrap())
            .get("groups")
            .is_none()
    );
}

async fn refresh_narrows_when_a_user_leaves_a_group(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("bob", PASSWORD);
    fixtures::restricted_scope(&app, "read:payroll", "finance");
    join(&app, "bob", &["finance"]);
    let (id, secret) = hr_app(&app, "openid offline_access read:payroll");
    let bob = signed_in(&app, "bob").await;
    let (_, tokens) = code_flow(
        &app,
        &bob,
        (&id, &secret),
        CALLBACK,
        "openid offline_access read:payroll",
    )
    .await;
    let tokens = tokens.unwrap();
    assert!(tokens["scope"].as_str().unwrap().contains("read:payroll"));

    join(&app, "bob", &[]);
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(refreshed["scope"], "offline_access openid");
    let at = claims_of(refreshed["access_token"].as_str().unwrap());
    assert!(!at["scope"].as_str().unwrap().contains("read:payroll"));
}

async fn admin_scope_only_for_admins(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.create_user("alice", PASSWORD);
    fixtures::admin(&app, "root");
    let (id, secret) = hr_app(&app, "openid latchkey:admin");
    let alice = signed_in(&app, "alice").await;
    let (_, t) = code_flow(
        &app,
        &alice,
        (&id, &secret),
        CALLBACK,
        "openid latchkey:admin",
    )
    .await;
    assert_eq!(t.unwrap()["scope"], "openid");
    let root = signed_in(&app, "root").await;
    let (_, t) = code_flow(
        &app,
        &root,
        (&id, &secret),
        CALLBACK,
        "openid latchkey:admin",
    )
    .await;
    assert_eq!(t.unwrap()["scope"], "latchkey:admin openid");
}

async fn deleting_a_group_never_widens_a_scope(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::restricted_scope(&app, "read:payroll", "finance");
    let mut c = common::conn(&app.db);
    let actor = Actor::system();
    let err = groups::delete(&mut c, "finance", &actor, app.clock_now()).unwrap_err();
    assert!(err.to_string().contains("read:payroll"), "{err}");
    assert_eq!(
        scopes::show(&mut c, "read:payroll").unwrap().groups,
        ["finance"]
    );
    // With a second group on the scope, deleting one narrows it.
    groups::create(&mut c, "auditors", &actor, app.clock_now()).unwrap();
    scopes::update(
        &mut c,
        "read:payroll",
        &ScopeInput {
            description: "Read payroll".into(),
            groups: vec!["finance".into(), "auditors".into()],
            machine_grantable: None,
        },
        &actor,
        app.clock_now(),
    )
    .unwrap();
    groups::delete(&mut c, "finance", &actor, app.clock_now()).unwrap();
    assert_eq!(
        scopes::show(&mut c, "read:payroll").unwrap().groups,
        ["auditors"]
    );
}
