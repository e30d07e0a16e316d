//! Introspection by a resource server (RFC 7662): a confidential client
//! reads an access token at `/introspect` when the token is its own or
//! meant for it (`aud` names an audience an administrator says it
//! serves); every other token reads `active: false`, refresh tokens
//! included. Which tokens still read active after a grant ends. Only
//! administrators set what a client serves. SQLite and PostgreSQL.

use crate::common::fixtures::{self, RegisteredClient, introspect};
use crate::common::{TestApp, TestDb, code_flow};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CALLBACK: &str = "https://rp.example/cb";
const NOTES_API: &str = "https://notes.example/api";

dual_backend!(
    a_resource_server_reads_access_tokens_meant_for_it,
    what_a_client_serves_is_set_by_administrators_only,
);

/// An app whose access tokens are for the notes API.
fn notes_app(app: &TestApp) -> RegisteredClient {
    fixtures::client("Notes web app")
        .redirect(CALLBACK)
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token"])
        .audience(NOTES_API)
        .create(app)
}

/// The notes API, registered as a confidential client serving its audience.
fn notes_api(app: &TestApp) -> RegisteredClient {
    fixtures::client("Notes API")
        .redirect("https://notes.example/cb")
        .resource_audience(NOTES_API)
        .create(app)
}

async fn a_resource_server_reads_access_tokens_meant_for_it(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let alice = fixtures::alice(&app);
    let rp = notes_app(&app);
    let api = notes_api(&app);
    let stranger = fixtures::client("Unrelated app")
        .redirect(CALLBACK)
        .create(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let tokens = tokens.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // The API the token is for reads it, with who and what it grants.
    let body = introspect(&app, &api, access).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], alice.id.as_str());
    assert_eq!(body["client_id"], rp.id.as_str());
    assert!(
        body["aud"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == NOTES_API),
        "{body}"
    );
    // The app it was issued to still reads it too.
    assert_eq!(introspect(&app, &rp, access).await["active"], true);
    // A client the token is not for learns nothing about it.
    assert_eq!(
        introspect(&app, &stranger, access).await,
        json!({"active": false})
    );
    // Refresh tokens are only ever the app's own business.
    assert_eq!(
        introspect(&app, &api, refresh).await,
        json!({"active": false})
    );
    assert_eq!(introspect(&app, &rp, refresh).await["active"], true);

    // When the app revokes its grant, the API reads the access token as
    // inactive at once (on every instance: the revocation is in the database).
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&rp.id, Some(rp.secret()))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let kek = app.config.keys.kek_file.clone();
    let other = TestApp::spawn_on(&app.config.database.url, |c| c.keys.kek_file = kek).await;
    for instance in [&app, &other] {
        assert_eq!(
            introspect(instance, &api, access).await,
            json!({"active": false}),
            "on {}",
            instance.base
        );
    }
}

async fn admin_api(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = app
        .http
        .request(method, app.url(&format!("/admin/api/v1{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn what_a_client_serves_is_set_by_administrators_only(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;
    let admin = fixtures::admin_api_token(&app).await;

    // Dynamic registration: the member is not client metadata; it is
    // ignored (RFC 7591 2), and the client serves nothing.
    let r = app
        .http
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": ["https://self.example/cb"],
            "client_name": "Self-registered",
            "resource_audiences": [NOTES_API],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let reg: Value = r.json().await.unwrap();
    let id = reg["client_id"].as_str().unwrap();
    let (status, view) = admin_api(
        &app,
        &admin,
        Method::GET,
        &format!("/clients/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["resource_audiences"], json!([]), "{view}");

    // An administrator sets it through the API; bad values are refused
    // with the field named, and change nothing.
    let path = format!("/clients/{id}");
    let (status, body) = admin_api(
        &app,
        &admin,
        Method::PATCH,
        &path,
        json!({"resource_audiences": ["not a uri"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("resource_audience"),
        "{body}"
    );
    let (status, view) = admin_api(
        &app,
        &admin,
        Method::PATCH,
        &path,
        json!({"resource_audiences": [NOTES_API]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["resource_audiences"], json!([NOTES_API]));

    // The client's own RFC 7592 update keeps what the administrator set.
    let mut update = reg.clone();
    for k in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        update.as_object_mut().unwrap().remove(k);
    }
    update["client_name"] = json!("Self-registered, renamed");
    let r = app
        .http
        .put(reg["registration_client_uri"].as_str().unwrap())
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (_, view) = admin_api(&app, &admin, Method::GET, &path, Value::Null).await;
    assert_eq!(view["name"], "Self-registered, renamed");
    assert_eq!(view["resource_audiences"], json!([NOTES_API]));
}
