//! The admin JSON API and dynamic client registration over HTTP, on
//! SQLite and PostgreSQL: who may call it, every documented operation
//! routed, client/user/group/key/audit operations with their bad-input
//! answers, locked pre-configured clients, and RFC 7591/7592.

use crate::common::fixtures::{self, Caller};
use crate::common::{self, TestApp, TestDb};
use latchkey::config::DeclaredClient;
use latchkey::http::admin::openapi::OPERATIONS;
use latchkey::service::clients;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

dual_backend!(
    api_needs_a_token_with_the_admin_scope,
    every_documented_operation_is_routed,
    clients_are_managed_and_audited,
    users_groups_and_scopes_are_managed,
    locked_clients_refuse_edits,
    keys_rotate_and_show_at_once,
    dynamic_registration_needs_an_initial_token,
    registered_clients_manage_themselves,
    an_admins_own_authorization_works_until_demoted,
);

fn cc_client(app: &TestApp, name: &str, scope: &str) -> Caller {
    fixtures::machine_client(app, name, scope)
}

async fn token_for(app: &TestApp, c: &Caller) -> String {
    fixtures::machine_token(app, c).await
}

async fn admin_token(app: &TestApp) -> String {
    fixtures::admin_api_token(app).await
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = app
        .http
        .request(method, app.url(&format!("/admin/api/v1{path}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body, headers)
}

async fn api_needs_a_token_with_the_admin_scope(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (status, _, headers) = call(&app, None, Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let (status, body, _) = call(&app, Some("not.a.token"), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");

    let reader = cc_client(&app, "Reader", "read:notes");
    let weak = token_for(&app, &reader).await;
    let (status, body, headers) = call(
        &app,
        Some(&weak),
        Method::POST,
        "/groups",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("latchkey:admin")
    );
    assert_eq!(app.count("groups"), 0, "nothing changed");

    // A browser session is no way in: the API takes bearer tokens only.
    let token = admin_token(&app).await;
    let (status, body, _) = call(&app, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_cursor"], Value::Null);

    // The OpenAPI document is public and lists every operation.
    let doc: Value = app
        .http
        .get(app.url("/admin/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, OPERATIONS.len());
}

async fn every_documented_operation_is_routed(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = admin_token(&app).await;
    let reader = cc_client(&app, "Reader", "read:notes");
    let weak = token_for(&app, &reader).await;
    let audit_rows = app.count("audit_log");
    for op in OPERATIONS {
        // Without a token: 401; with a token lacking latchkey:admin: 403.
        let path = op.path.replace('{', "x").replace('}', "");
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let body = op.body.map(|_| json!({}));
        let (status, _, _) = call(&app, None, method.clone(), &path, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            op.method,
            op.path
        );
        let (status, err, _) = call(&app, Some(&weak), method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{} {}", op.method, op.path);
        assert_eq!(err["error"], "insufficient_scope");
    }
    assert_eq!(
        app.count("audit_log"),
        audit_rows,
        "refused calls change nothing"
    );
    for op in OPERATIONS {
        let path = op
            .path
            .replace("{client_id}", "no-such-client")
            .replace("{name}", "no-such-thing")
            .replace("{username}", "no-such-user")
            .replace("{kid}", "no-such-key")
            .replace("{token_id}", "no-such-token");
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let body = op.body.map(|_| json!({}));
        let (status, body, _) = call(&app, Some(&token), method, &path, body).await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {}",
            op.method,
            op.path
        );
        assert_ne!(
            body["error_description"], "no such API endpoint or method",
            "{} {} is documented but not routed",
            op.method, op.path
        );
    }
    let (status, body, _) = call(&app, Some(&token), Method::GET, "/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

async fn clients_are_managed_and_audited(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = admin_token(&app).await;
    let t = Some(token.as_str());
    app.define_scopes(&["read:notes"]);

    let (status, created, _) = call(
        &app,
        t,
        Method::POST,
        "/clients",
        Some(json!({
            "name": "Notes sync",
            "scopes": ["read:notes"],
            "grant_types": ["client_credentials"],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let sync = Caller {
        id: id.clone(),
        secret: secret.clone(),
    };
    token_for(&app, &sync).await;
    let (_, shown, _) = call(&app, t, Method::GET, &format!("/clients/{id}"), None).await;
    assert!(shown.get("client_secret").is_none(), "shown once only");

    // Bad input: clear errors, nothing changed.
    for (body, needle) in [
        (
            json!({"name": "notes SYNC", "grant_types": ["client_credentials"]}),
            "already named",
        ),
        (
            json!({"name": "X", "redirect_uris": ["javascript:alert(1)"]}),
            "redirect_uri",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://a.example/cb#frag"]}),
            "redirect_uri",
        ),
        (
            json!({"name": "X", "redirect_uris": ["http://wiki.example/cb"]}),
            "redirect_uri",
        ),
        (
            json!({"name": "X", "redirect_uris": ["https://a.example/cb"], "scopes": ["read:everything"]}),
            "unknown scope",
        ),
        (
            json!({"name": "x".repeat(300), "redirect_uris": ["https://a.example/cb"]}),
            "name",
        ),
        (json!({"name": "X", "colour": "red"}), "unknown field"),
    ] {
        let (status, err, _) = call(&app, t, Method::POST, "/clients", Some(body.clone())).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT,
            "{body}: {status}"
        );
        assert!(
            err["error_description"].as_str().unwrap().contains(needle),
            "{body}: {err}"
        );
    }
    assert_eq!(app.count("clients"), 2);

    let (status, updated, _) = call(
        &app,
        t,
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({"name": "Notes sync v2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["name"], "Notes sync v2");
    assert_eq!(updated["scopes"], json!(["read:notes"]));

    let (status, rotated, _) = call(
        &app,
        t,
        Method::POST,
        &format!("/clients/{id}/secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret stopped working"
    );

    let (status, _, _) = call(&app, t, Method::DELETE, &format!("/clients/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, t, Method::DELETE, &format!("/clients/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, audit, _) = call(&app, t, Method::GET, "/audit?action=client.", None).await;
    let audit = &audit["items"];
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "client.delete",
            "client.rotate_secret",
            "client.update",
            "client.create"
        ]
    );
    let entry = &audit[0];
    assert!(entry["actor"].as_str().unwrap().starts_with("client:"));
    assert_eq!(entry["ip"], "127.0.0.1");
}

async fn users_groups_and_scopes_are_managed(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = admin_token(&app).await;
    let t = Some(token.as_str());

    let (status, _, _) = call(
        &app,
        t,
        Method::POST,
        "/groups",
        Some(json!({"name": "finance"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(
        &app,
        t,
        Method::POST,
        "/groups",
        Some(json!({"name": "finance"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, scope, _) = call(
        &app,
        t,
        Method::POST,
        "/scopes",
        Some(json!({"name": "read:payroll", "description": "Read payroll", "groups": ["finance"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(scope["groups"], json!(["finance"]));
    let (status, _, _) = call(&app, t, Method::DELETE, "/scopes/openid", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "built-ins stay");

    for name in ["ada", "alan", "grace"] {
        let (status, user, _) = call(
            &app,
            t,
            Method::POST,
            "/users",
            Some(json!({
                "username": name,
                "password": "correct horse battery",
                "email": format!("{name}@example.com"),
                "groups": if name == "ada" { json!(["finance"]) } else { json!([]) },
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
    }
    let (status, err, _) = call(
        &app,
        t,
        Method::POST,
        "/users",
        Some(json!({"username": "bad name", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    // The user's fields are checked before the password, as ever.
    for (body, field) in [
        (
            json!({"username": "mallory", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "bad name", "password": "short"}),
            "username",
        ),
    ] {
        let (status, err, _) = call(&app, t, Method::POST, "/users", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let description = err["error_description"].as_str().unwrap();
        assert!(description.starts_with(field), "{description}");
    }
    let (status, _, _) = call(
        &app,
        t,
        Method::POST,
        "/users",
        Some(json!({"username": "eve", "groups": ["nobody"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("users"), 3, "eve was not half-created");
    let (_, audit, _) = call(&app, t, Method::GET, "/audit?action=user.create", None).await;
    let audit = &audit["items"];
    assert_eq!(
        audit.as_array().unwrap().len(),
        3,
        "only what was created: {audit}"
    );
    let r = app
        .login(&app.new_browser(), "grace", "correct horse battery")
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the password set at creation"
    );

    let (_, page, _) = call(
        &app,
        t,
        Method::GET,
        "/users?q=EXAMPLE&limit=1&offset=1",
        None,
    )
    .await;
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["username"], "alan");
    let (_, page, _) = call(&app, t, Method::GET, "/users?q=ad", None).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["users"][0]["username"], "ada");
    let (_, page, _) = call(&app, t, Method::GET, "/users?q=%25", None).await;
    assert_eq!(page["total"], 0, "% is a literal, not a wildcard");
    let (_, ada, _) = call(&app, t, Method::GET, "/users/ada", None).await;
    assert_eq!(ada["groups"], json!(["finance"]));
    assert!(ada.get("password_hash").is_none());

    let (status, ada, _) = call(
        &app,
        t,
        Method::PATCH,
        "/users/ada",
        Some(json!({"name": "Ada Lovelace", "email": "ada@lovelace.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email_verified"], false, "a new address is unverified");
    let (status, _, _) = call(
        &app,
        t,
        Method::PATCH,
        "/users/ada",
        Some(json!({"picture": "javascript:alert(1)"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _, _) = call(
        &app,
        t,
        Method::PUT,
        "/users/alan/password",
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(
        &app,
        t,
        Method::PUT,
        "/users/alan/password",
        Some(json!({"password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let browser = app.new_browser();
    assert_eq!(
        app.login(&browser, "alan", "a brand new passphrase")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let (status, grace, _) = call(
        &app,
        t,
        Method::PUT,
        "/users/grace/groups",
        Some(json!({"groups": ["finance"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grace["groups"], json!(["finance"]));
    let (_, members, _) = call(&app, t, Method::GET, "/groups/finance/members", None).await;
    assert_eq!(members, json!(["ada", "grace"]));
    let (status, _, _) = call(
        &app,
        t,
        Method::PATCH,
        "/groups/finance",
        Some(json!({"name": "payroll"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, scopes, _) = call(&app, t, Method::GET, "/scopes", None).await;
    let payroll = scopes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "read:payroll")
        .unwrap()
        .clone();
    assert_eq!(payroll["groups"], json!(["payroll"]));

    let (status, _, _) = call(&app, t, Method::DELETE, "/users/grace", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, t, Method::GET, "/users/grace", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn locked_clients_refuse_edits(db: TestDb) {
    let app = TestApp::spawn(db).await;
    {
        let mut c = common::conn(&app.db);
        let declared = vec![
            DeclaredClient {
                client_id: "latchkey-cli".into(),
                name: "Latchkey CLI".into(),
                public: true,
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                ..Default::default()
            },
            DeclaredClient {
                client_id: "wiki".into(),
                name: "Wiki".into(),
                redirect_uris: vec!["https://wiki.example/cb".into()],
                secret_env: Some("WIKI_SECRET".into()),
                ..Default::default()
            },
        ];
        let env = |v: &str| (v == "WIKI_SECRET").then(|| "s".repeat(40));
        clients::sync_declared(&mut c, &declared, &env, app.clock_now()).unwrap();
        // A second start with the same declarations changes nothing.
        clients::sync_declared(&mut c, &declared, &env, app.clock_now()).unwrap();
        // A confidential client without its secret stops the start.
        let none = |_: &str| None;
        assert!(clients::sync_declared(&mut c, &declared, &none, app.clock_now()).is_err());
    }
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("wiki", Some("s".repeat(40)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the declared secret authenticates"
    );

    let token = admin_token(&app).await;
    let t = Some(token.as_str());
    let (_, cli, _) = call(&app, t, Method::GET, "/clients/latchkey-cli", None).await;
    assert_eq!(cli["locked"], true);
    for (method, path, body) in [
        (
            Method::PATCH,
            "/clients/latchkey-cli",
            Some(json!({"name": "Hijacked"})),
        ),
        (Method::DELETE, "/clients/latchkey-cli", None),
        (Method::POST, "/clients/wiki/secret", None),
    ] {
        let (status, err, _) = call(&app, t, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(err["error"], "locked");
    }
    let (_, cli, _) = call(&app, t, Method::GET, "/clients/latchkey-cli", None).await;
    assert_eq!(cli["name"], "Latchkey CLI");

    // No longer declared: unlocked, so admins can take over.
    {
        let mut c = common::conn(&app.db);
        clients::sync_declared(&mut c, &[], &|_: &str| None, app.clock_now()).unwrap();
    }
    let (status, _, _) = call(&app, t, Method::DELETE, "/clients/latchkey-cli", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn keys_rotate_and_show_at_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = admin_token(&app).await;
    let t = Some(token.as_str());
    let (_, keys, _) = call(&app, t, Method::GET, "/keys", None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let (status, rotated, _) = call(
        &app,
        t,
        Method::POST,
        "/keys/rotate",
        Some(json!({"alg": "RS256", "immediately": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let kid = rotated["kid"].as_str().unwrap();
    assert!(app.jwks().await.contains(kid), "published at once");
    let (status, _, _) = call(&app, t, Method::POST, "/keys/nope/retire", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(
        &app,
        t,
        Method::POST,
        "/keys/rotate",
        Some(json!({"alg": "HS256"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, audit, _) = call(&app, t, Method::GET, "/audit?action=key.rotate", None).await;
    let audit = &audit["items"];
    assert_eq!(audit[0]["target"], kid);
}

async fn register(app: &TestApp, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = app.http.post(app.url("/register")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn initial_token(app: &TestApp, admin: &str, uses: i32) -> String {
    let (status, body, _) = call(
        app,
        Some(admin),
        Method::POST,
        "/initial-access-tokens",
        Some(json!({"max_uses": uses, "expires_in": 600})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["initial_access_token"].as_str().unwrap().to_owned()
}

async fn dynamic_registration_needs_an_initial_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = admin_token(&app).await;
    let discovery: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["registration_endpoint"], app.url("/register"));

    let meta = json!({
        "client_name": "Field app",
        "redirect_uris": ["https://field.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid email",
    });
    let (status, err) = register(&app, None, meta.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"], "invalid_token");
    let (status, _) = register(&app, Some("made-up"), meta.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let once = initial_token(&app, &admin, 1).await;
    for (bad, code) in [
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://f.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://f.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://f.example/cb"], "scope": "openid latchkey:admin"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://f.example/cb"], "scope": "read:secrets"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://f.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let (status, err) = register(&app, Some(&once), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(err["error"], code, "{bad}: {err}");
    }
    // Refused requests did not spend the single use.
    let (status, info) = register(&app, Some(&once), meta.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["client_name"], "Field app");
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["client_secret_expires_at"], 0);
    assert!(info["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(
        info["registration_client_uri"],
        app.url(&format!(
            "/register/{}",
            info["client_id"].as_str().unwrap()
        ))
    );
    let (status, _) = register(&app, Some(&once), meta.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used up");

    // Open registration needs no token; public clients get no secret.
    let open = TestApp::spawn_with(TestDb::sqlite(), |c| c.registration.open = true).await;
    let (status, info) = register(
        &open,
        None,
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert!(info.get("client_secret").is_none());
    assert_eq!(info["client_name"], "127.0.0.1");
}

async fn registered_clients_manage_themselves(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = admin_token(&app).await;
    let it = initial_token(&app, &admin, 2).await;
    let (_, info) = register(
        &app,
        Some(&it),
        json!({"client_name": "Field app", "redirect_uris": ["https://field.example/cb"]}),
    )
    .await;
    let (_, other) = register(
        &app,
        Some(&it),
        json!({"client_name": "Other app", "redirect_uris": ["https://other.example/cb"]}),
    )
    .await;
    let id = info["client_id"].as_str().unwrap();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let rat = info["registration_access_token"].as_str().unwrap();

    // Another client's token does not open this one.
    let r = app
        .http
        .get(uri)
        .bearer_auth(other["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = app.http.get(uri).bearer_auth(rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["client_id"], id);
    assert!(read.get("client_secret").is_none());
    let rat2 = read["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rat2, rat, "rotated on use");
    let r = app.http.get(uri).bearer_auth(rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old one is spent");

    let r = app
        .http
        .put(uri)
        .bearer_auth(&rat2)
        .json(&json!({
            "client_id": id,
            "client_name": "Field app 2",
            "redirect_uris": ["https://field.example/cb2"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "cannot turn public");
    let r = app
        .http
        .put(uri)
        .bearer_auth(&rat2)
        .json(&json!({
            "client_id": id,
            "client_name": "Field app 2",
            "redirect_uris": ["https://field.example/cb2"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a refused update spends no token"
    );
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["client_name"], "Field app 2");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://field.example/cb2"])
    );
    let rat3 = updated["registration_access_token"].as_str().unwrap();

    let r = app
        .http
        .delete(uri)
        .bearer_auth(&rat2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.http.delete(uri).bearer_auth(rat3).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.http.get(uri).bearer_auth(rat3).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, audit, _) = call(
        &app,
        Some(&admin),
        Method::GET,
        &format!("/audit?target={id}"),
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client.unregister", "client.register"]);
}

async fn an_admins_own_authorization_works_until_demoted(db: TestDb) {
    let app = TestApp::spawn(db).await;
    fixtures::admin(&app, "root");
    fixtures::user(&app, "alice");
    let rp = fixtures::client("Admin CLI")
        .redirect("http://127.0.0.1/cb")
        .scopes("openid latchkey:admin")
        .create(&app);
    let mut tokens = Vec::new();
    for user in ["root", "alice"] {
        let b = fixtures::signed_in(&app, user).await;
        let (_, t) = common::code_flow(
            &app,
            &b,
            (&rp.id, rp.secret()),
            "http://127.0.0.1/cb",
            "openid latchkey:admin",
        )
        .await;
        tokens.push(t.unwrap()["access_token"].as_str().unwrap().to_owned());
    }
    let (status, _, _) = call(&app, Some(&tokens[0]), Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::OK, "root's own token works");
    let (status, body, _) = call(&app, Some(&tokens[1]), Method::GET, "/users", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "alice was never granted the scope"
    );
    assert_eq!(body["error"], "insufficient_scope");

    // Another admin demotes root: root's token stops working at once.
    let bot = admin_token(&app).await;
    let (status, _, _) = call(
        &app,
        Some(&bot),
        Method::PATCH,
        "/users/alice",
        Some(json!({"is_admin": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        &app,
        Some(&bot),
        Method::PATCH,
        "/users/root",
        Some(json!({"is_admin": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = call(&app, Some(&tokens[0]), Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, audit, _) = call(
        &app,
        Some(&bot),
        Method::GET,
        "/audit?action=user.update&target=root",
        None,
    )
    .await;
    assert!(
        audit["items"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("client:")
    );
}
