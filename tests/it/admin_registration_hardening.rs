//! Security review fixes for the admin API and dynamic registration, on
//! SQLite and PostgreSQL: admin tokens of a client follow the client
//! (deleted, secret regenerated, scope removed); unique names and an
//! "unverified" mark for registered clients; no open redirector through
//! registered clients; `id_token_alg` limited to `keys.algorithms`.

use crate::common::fixtures::{self, Caller, admin_call as call};
use crate::common::{self, TestApp, TestDb};
use latchkey::domain::client::ClientInput;
use latchkey::service::clients;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

dual_backend!(
    a_deleted_clients_admin_token_stops_working,
    a_regenerated_secret_ends_older_admin_tokens,
    removing_the_admin_scope_ends_the_clients_admin_rights,
    id_token_alg_must_be_a_configured_signing_algorithm,
    registered_names_are_unique_ignoring_case,
    the_consent_page_names_the_destination_and_unverified_apps,
    registered_clients_are_no_open_redirector,
    the_out_of_band_uri_is_not_for_self_registered_clients,
    open_registration_is_rate_limited_per_network,
);

fn cc_client(app: &TestApp, name: &str, scope: &str) -> Caller {
    fixtures::machine_client(app, name, scope)
}

async fn token_response(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn token_for(app: &TestApp, c: &Caller) -> String {
    let r = token_response(app, &c.id, &c.secret).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn open_registration(db: TestDb) -> TestApp {
    TestApp::spawn_with(db, |c| c.registration.open = true).await
}

const PASSWORD: &str = "correct horse battery";

/// An admin-created confidential web app.
fn web_app(app: &TestApp, name: &str, redirect_uri: &str) -> String {
    let mut c = common::conn(&app.db);
    clients::create(
        &mut c,
        None,
        &ClientInput {
            name: name.into(),
            redirect_uris: vec![redirect_uri.into()],
            ..Default::default()
        },
        &app.config.keys.algorithms,
        app.clock_now(),
    )
    .unwrap()
    .client
    .client_id
}

async fn register(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

// ---- 1. admin tokens of a client follow the client ---------------------

async fn a_deleted_clients_admin_token_stops_working(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let robot = cc_client(&app, "Ops robot", "latchkey:admin");
    let other = cc_client(&app, "Second robot", "latchkey:admin");
    let token = token_for(&app, &robot).await;
    let other_token = token_for(&app, &other).await;
    let (status, _) = call(&app, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/clients/{}", robot.id);
    let (status, _) = call(&app, Some(&other_token), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = call(&app, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    // The remaining admin is unaffected.
    let (status, _) = call(&app, Some(&other_token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_regenerated_secret_ends_older_admin_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let robot = cc_client(&app, "Ops robot", "latchkey:admin");
    let old_token = token_for(&app, &robot).await;
    app.clock.advance(Duration::seconds(1));

    // The robot regenerates its own secret with its current token.
    let path = format!("/clients/{}/secret", robot.id);
    let (status, body) = call(&app, Some(&old_token), Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();

    let (status, body) = call(&app, Some(&old_token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("secret changed"),
        "{body}"
    );

    // The old secret no longer gets tokens; the new one does, and its
    // tokens (issued at or after the change) are accepted.
    let r = token_response(&app, &robot.id, &robot.secret).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let renewed = Caller {
        id: robot.id.clone(),
        secret: new_secret,
    };
    let new_token = token_for(&app, &renewed).await;
    let (status, body) = call(&app, Some(&new_token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn removing_the_admin_scope_ends_the_clients_admin_rights(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let robot = cc_client(&app, "Ops robot", "latchkey:admin read:notes");
    let other = cc_client(&app, "Second robot", "latchkey:admin");
    let token = token_for(&app, &robot).await;
    let other_token = token_for(&app, &other).await;

    let path = format!("/clients/{}", robot.id);
    let (status, body) = call(
        &app,
        Some(&other_token),
        Method::PATCH,
        &path,
        Some(json!({"scopes": ["read:notes"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = call(&app, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "forbidden");
}

// ---- 2. look-alike names and the consent page ---------------------------

async fn registered_names_are_unique_ignoring_case(db: TestDb) {
    let app = open_registration(db).await;
    web_app(&app, "Team Wiki", "https://wiki.example/cb");

    let (status, body) = register(
        &app,
        json!({"client_name": "team WIKI", "redirect_uris": ["https://evil.example/cb"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_name"),
        "{body}"
    );

    let (status, field) = register(
        &app,
        json!({"client_name": "Field app", "redirect_uris": ["https://field.example/cb"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{field}");
    let (status, body) = register(
        &app,
        json!({"client_name": "FIELD APP", "redirect_uris": ["https://other.example/cb"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");

    // RFC 7592: renaming itself to another app's name is refused too;
    // keeping its own name (in another case) is fine.
    let id = field["client_id"].as_str().unwrap();
    let uri = field["registration_client_uri"].as_str().unwrap();
    let rat = field["registration_access_token"].as_str().unwrap();
    let r = app
        .http
        .put(uri)
        .bearer_auth(rat)
        .json(&json!({
            "client_id": id,
            "client_name": "Team wiki",
            "redirect_uris": ["https://field.example/cb"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    // Refused as a whole: the name is unchanged.
    let mut c = common::conn(&app.db);
    assert_eq!(
        clients::find(&mut c, id).unwrap().settings.name,
        "Field app"
    );

    // Without client_name the name comes from the host; a second app on
    // the same host gets a distinct one rather than an error.
    let (s1, a) = register(&app, json!({"redirect_uris": ["https://twin.example/a"]})).await;
    let (s2, b) = register(&app, json!({"redirect_uris": ["https://twin.example/b"]})).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{a} {b}"
    );
    assert_eq!(a["client_name"], "twin.example");
    assert_ne!(
        a["client_name"].as_str().unwrap().to_lowercase(),
        b["client_name"].as_str().unwrap().to_lowercase()
    );
}

async fn the_consent_page_names_the_destination_and_unverified_apps(db: TestDb) {
    let app = open_registration(db).await;
    app.create_user("alice", PASSWORD);
    let browser = app.new_browser();
    app.login(&browser, "alice", PASSWORD).await;

    let wiki = web_app(&app, "Team Wiki", "https://wiki.example/cb");
    let page = browser
        .get(common::authorize_url(
            &app,
            &wiki,
            "https://wiki.example/cb",
            &[],
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow"), "{page}");
    assert!(
        page.contains(r#"<strong class="host">wiki.example</strong>"#),
        "{page}"
    );
    assert!(!page.contains("Not verified"), "{page}");

    let long_host = format!("{}.example", "a".repeat(60));
    let redirect = format!("https://{long_host}/cb");
    let (status, reg) = register(
        &app,
        json!({"client_name": "Field app", "redirect_uris": [redirect]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let id = reg["client_id"].as_str().unwrap();
    let r = browser
        .get(common::authorize_url(&app, id, &redirect, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Not verified by your administrator"),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"<strong class="host">{long_host}</strong>"#)),
        "{page}"
    );
    // Plain form, no script; long hosts wrap instead of widening the page.
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains(r#"<button type="submit" name="decision" value="allow">"#));
    let css = app
        .http
        .get(app.url("/static/latchkey.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.lines()
            .any(|l| l.contains(".host") && l.contains("overflow-wrap: anywhere")),
        "{css}"
    );
}

// ---- 3. no open redirector through registered clients -----------------

/// The redirect's target, or `None` when the answer is a page.
async fn bounce(browser: &reqwest::Client, url: &str) -> (StatusCode, Option<String>) {
    let r = browser.get(url).send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (r.status(), location)
}

async fn registered_clients_are_no_open_redirector(db: TestDb) {
    let app = open_registration(db).await;
    app.create_user("alice", PASSWORD);
    let evil = "https://evil.example/landing";
    let (status, reg) = register(
        &app,
        json!({"client_name": "Totally legit", "redirect_uris": [evil]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let none = [("prompt", "none")];
    let bad_scope = [("scope", "openid nonsense:scope")];

    // Nobody signed in: prompt=none and request errors show a page.
    let stranger = app.new_browser();
    for extra in [&none[..], &bad_scope[..]] {
        let (status, location) =
            bounce(&stranger, &common::authorize_url(&app, &id, evil, extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?} -> {location:?}");
        assert_eq!(location, None);
    }

    // Signed in but never approved: the same.
    let browser = app.new_browser();
    app.login(&browser, "alice", PASSWORD).await;
    for extra in [&none[..], &bad_scope[..]] {
        let (status, location) =
            bounce(&browser, &common::authorize_url(&app, &id, evil, extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra:?} -> {location:?}");
        assert_eq!(location, None);
    }

    // Deny on the consent page (which names evil.example) goes back.
    let page = browser
        .get(common::authorize_url(&app, &id, evil, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(app.url("/authorize/consent"))
        .form(&common::consent_form(&page, "deny"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with(evil) && loc.contains("error=access_denied"),
        "{loc}"
    );

    // Once approved, the code comes back as before, and so do errors.
    let (loc, tokens) = common::code_flow(&app, &browser, (&id, &secret), evil, "openid").await;
    assert!(loc.starts_with(evil), "{loc}");
    assert!(tokens.is_some(), "{loc}");
    let (status, location) = bounce(
        &browser,
        &common::authorize_url(&app, &id, evil, &bad_scope),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(
        location.starts_with(evil) && location.contains("error=invalid_scope"),
        "{location}"
    );
    // But still not for a stranger's browser.
    let (status, _) = bounce(&stranger, &common::authorize_url(&app, &id, evil, &none)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An admin-registered client gets its errors as before.
    let wiki = web_app(&app, "Team Wiki", "https://wiki.example/cb");
    let (status, location) = bounce(
        &stranger,
        &common::authorize_url(&app, &wiki, "https://wiki.example/cb", &none),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.unwrap().contains("error=login_required"));
}

// ---- 4. id_token_alg limited to keys.algorithms ------------------------

async fn id_token_alg_must_be_a_configured_signing_algorithm(db: TestDb) {
    // keys.algorithms is the default: RS256 only.
    let app = open_registration(db).await;
    let robot = cc_client(&app, "Ops robot", "latchkey:admin");
    let token = token_for(&app, &robot).await;

    let (status, body) = call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({
            "name": "Wiki",
            "redirect_uris": ["https://wiki.example/cb"],
            "id_token_alg": "ES256",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let msg = body["error_description"].as_str().unwrap();
    assert!(msg.contains("ES256") && msg.contains("RS256"), "{msg}");

    let (status, body) = call(
        &app,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({
            "name": "Wiki",
            "redirect_uris": ["https://wiki.example/cb"],
            "id_token_alg": "RS256",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = format!("/clients/{}", body["client_id"].as_str().unwrap());
    let (status, body) = call(
        &app,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({"id_token_alg": "EdDSA"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("keys.algorithms"),
        "{body}"
    );

    let (status, body) = register(
        &app,
        json!({
            "client_name": "Field app",
            "redirect_uris": ["https://field.example/cb"],
            "id_token_signed_response_alg": "PS256",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");
    let msg = body["error_description"].as_str().unwrap();
    assert!(
        msg.contains("id_token_signed_response_alg") && msg.contains("RS256"),
        "{msg}"
    );

    // Service callers (the CLI) pass keys.algorithms the same way.
    let mut c = common::conn(&app.db);
    let err = clients::create(
        &mut c,
        None,
        &ClientInput {
            name: "Desk app".into(),
            redirect_uris: vec!["https://desk.example/cb".into()],
            id_token_alg: Some("ES256".into()),
            ..Default::default()
        },
        &app.config.keys.algorithms,
        app.clock_now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("keys.algorithms"), "{err}");
}

/// The out-of-band page shows the code to whoever holds the browser: only
/// for clients an administrator registered with that URI.
async fn the_out_of_band_uri_is_not_for_self_registered_clients(db: TestDb) {
    let app = open_registration(db).await;
    let (status, body) = register(
        &app,
        json!({"client_name": "Copy paste", "redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_redirect_uri");
    let (status, body) = register(
        &app,
        json!({"client_name": "Copy paste", "redirect_uris": ["https://ok.example/cb"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Open registration is limited per network (IPv4 address, IPv6 /64) per
/// throttle window: 429 with Retry-After past it; other networks go on.
async fn open_registration_is_rate_limited_per_network(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.registration.open = true;
        c.registration.max_per_network = 3;
        c.server.trust_forwarded_for = true;
    })
    .await;
    let from = |ip: &'static str, n: usize| {
        app.http
            .post(app.url("/register"))
            .header("X-Forwarded-For", ip)
            .json(&json!({
                "client_name": format!("App {ip} {n}"),
                "redirect_uris": [format!("https://app{n}.example/cb")],
            }))
            .send()
    };
    for n in 0..3 {
        let r = from("203.0.113.5", n).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = from("203.0.113.5", 3).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = from("198.51.100.8", 4).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "another network");
    // A refused attempt did not register anything.
    assert_eq!(app.count("clients"), 4);
}
