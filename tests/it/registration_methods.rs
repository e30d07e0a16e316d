//! RFC 7592: a registered client's `token_endpoint_auth_method` is stored
//! and reported back as registered; clients older than the column get the
//! method their type implies.

use latchkey::domain::audit::Actor;
use latchkey::domain::client::{ClientInput, TokenAuthMethod};
use latchkey::service::{clients, registration};
use latchkey::store::migrations;
use serde_json::{Value, json};

use crate::common::{self, TestApp, TestDb};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn reads_report_the_registered_method(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let initial = registration::issue_initial_access_token(
        &mut common::conn(&app.db),
        &Actor::system(),
        600,
        10,
        app.clock_now(),
    )
    .unwrap()
    .initial_access_token;
    for method in ["client_secret_post", "client_secret_basic", "none"] {
        let (status, info) = send(
            &app,
            reqwest::Method::POST,
            "/register",
            &initial,
            Some(json!({
                "client_name": format!("App {method}"),
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": method,
            })),
        )
        .await;
        assert_eq!(status, 201, "{info}");
        assert_eq!(info["token_endpoint_auth_method"], method);
        let id = info["client_id"].as_str().unwrap().to_owned();
        let path = format!("/register/{id}");
        let token = info["registration_access_token"].as_str().unwrap();
        let (status, read) = send(&app, reqwest::Method::GET, &path, token, None).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["token_endpoint_auth_method"], method, "{read}");

        // An update may switch between the secret methods; omitted, it is
        // the default (RFC 7591 2), as every omitted field.
        if method == "client_secret_post" {
            let token = read["registration_access_token"].as_str().unwrap();
            let (status, updated) = send(
                &app,
                reqwest::Method::PUT,
                &path,
                token,
                Some(json!({
                    "client_id": id,
                    "client_name": "App renamed",
                    "redirect_uris": ["https://app.example/cb"],
                })),
            )
            .await;
            assert_eq!(status, 200, "{updated}");
            assert_eq!(updated["token_endpoint_auth_method"], "client_secret_basic");
            let token = updated["registration_access_token"].as_str().unwrap();
            let (_, read) = send(&app, reqwest::Method::GET, &path, token, None).await;
            assert_eq!(read["token_endpoint_auth_method"], "client_secret_basic");
        }
    }
}

async fn clients_older_than_the_column_get_their_type_s_method(db: TestDb) {
    let pool = common::open_db(&db);
    let now = common::start_time();
    let mut c = common::conn(&pool);
    let make = |c: &mut latchkey::store::DbConn, name: &str, public: bool| {
        let input = ClientInput {
            name: name.into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            public,
            ..Default::default()
        };
        clients::create(c, None, &input, &[], now)
            .unwrap()
            .client
            .client_id
    };
    let public = make(&mut c, "Native", true);
    let confidential = make(&mut c, "Web", false);

    // Back to the schema before the column, and forward again.
    let reverted = migrations::revert_last(&mut c).unwrap();
    assert!(reverted.ends_with("000013"), "{reverted}");
    assert_eq!(migrations::run_pending(&mut c).unwrap().len(), 1);

    let method = |c: &mut latchkey::store::DbConn, id: &str| {
        clients::find(c, id).unwrap().token_endpoint_auth_method
    };
    assert_eq!(method(&mut c, &public), TokenAuthMethod::None);
    assert_eq!(
        method(&mut c, &confidential),
        TokenAuthMethod::ClientSecretBasic
    );
}

dual_backend!(
    reads_report_the_registered_method,
    clients_older_than_the_column_get_their_type_s_method
);
