//! Hostile input at every door: over-long and malformed values for
//! `/authorize`, `/token`, `/register`, the admin API and the login form
//! (multi-megabyte bodies, invalid UTF-8, NUL bytes, duplicated
//! parameters, JSON bombs, wrong types). Every answer is a 4xx with a
//! body, never a 5xx or a dropped connection, and the server keeps
//! serving afterwards. SQLite and PostgreSQL.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::common::fixtures;
use crate::common::{TestApp, TestDb};

dual_backend!(every_door_answers_bad_input_with_a_4xx);

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Bodies that must never get past a 4xx: `good` (a valid request) with
/// hostile values in `param`, a parameter the endpoint reads (unknown
/// parameters are ignored, RFC 6749 3.1 and 3.2).
fn hostile_forms(good: &str, param: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut bodies: Vec<(&'static str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "3 MiB",
            [good.as_bytes(), b"&x=", &vec![b'a'; 3 << 20]].concat(),
        ),
        (
            "raw invalid UTF-8",
            [
                good.as_bytes(),
                format!("&{param}=").as_bytes(),
                b"\xff\xfe\xfd",
            ]
            .concat(),
        ),
        (
            "encoded invalid UTF-8",
            format!("{good}&{param}=%FF%FE").into_bytes(),
        ),
        ("NUL byte", format!("{good}&{param}=a%00b").into_bytes()),
        (
            "long value",
            format!("{good}&{param}={}", "x".repeat(64 * 1024)).into_bytes(),
        ),
        ("no equals", b"grant_type".to_vec()),
        ("bad escape", b"grant_type=%zz&%%%=1".to_vec()),
    ];
    // Every parameter of the good request given twice.
    let doubled: String = good
        .split('&')
        .flat_map(|p| [p, p])
        .collect::<Vec<_>>()
        .join("&");
    bodies.push(("duplicated parameters", doubled.into_bytes()));
    bodies
}

fn hostile_json() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("not JSON", b"{not json".to_vec()),
        (
            "deep nesting",
            [vec![b'['; 100_000], vec![b']'; 100_000]].concat(),
        ),
        (
            "deep object",
            ["{\"a\":".repeat(50_000), "1".into(), "}".repeat(50_000)]
                .concat()
                .into_bytes(),
        ),
        (
            "3 MiB string",
            format!("{{\"client_name\":\"{}\"}}", "a".repeat(3 << 20)).into_bytes(),
        ),
        (
            "wrong types",
            br#"{"redirect_uris":42,"grant_types":{"a":1},"scope":[1,2]}"#.to_vec(),
        ),
        (
            "huge number",
            format!("{{\"redirect_uris\":[{}]}}", "9".repeat(10_000)).into_bytes(),
        ),
        ("invalid UTF-8", b"{\"client_name\":\"\xff\xfe\"}".to_vec()),
        (
            "NUL",
            br#"{"client_name":"a\u0000b","redirect_uris":["https://a.example/\u0000"]}"#.to_vec(),
        ),
        (
            "duplicate keys",
            br#"{"client_name":"a","client_name":"b"}"#.to_vec(),
        ),
    ]
}

async fn post(
    app: &TestApp,
    path: &str,
    ctype: &str,
    body: Vec<u8>,
    bearer: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = app
        .http
        .post(app.url(path))
        .header(CONTENT_TYPE, ctype)
        .body(body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await
}

/// A 4xx. Only for a body over the size limit may the server also close
/// the connection while the client is still sending (after answering 413),
/// which the client sees as an error; for anything else an error means the
/// server dropped the request, and fails the test.
fn assert_refused(what: &str, answer: reqwest::Result<reqwest::Response>) {
    match answer {
        Ok(r) => {
            let s = r.status();
            assert!(s.is_client_error(), "{what}: answered {s}");
        }
        Err(_) if what.contains("MiB") => {}
        Err(e) => panic!("{what}: no answer: {e}"),
    }
}

async fn every_door_answers_bad_input_with_a_4xx(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;
    fixtures::user(&app, "alice");
    let rp = fixtures::client("Bad input RP")
        .redirect("https://rp.example/cb")
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token", "client_credentials"])
        .create(&app);
    let token = fixtures::admin_api_token(&app).await;

    // /token, form and JSON.
    let good_token = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        rp.id,
        rp.secret()
    );
    for (what, body) in hostile_forms(&good_token, "scope") {
        let answer = post(&app, "/token", FORM, body, None).await;
        assert_refused(&format!("/token form, {what}"), answer);
    }
    for (what, body) in hostile_json() {
        let answer = post(&app, "/token", JSON, body, None).await;
        assert_refused(&format!("/token JSON, {what}"), answer);
    }

    // /authorize, GET with a hostile query and POST with hostile forms.
    let good_authorize = format!(
        "response_type=code&client_id={}&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid",
        rp.id
    );
    for query in [
        format!("{good_authorize}&state=%FF%FE"),
        format!("{good_authorize}&state=a%00b"),
        format!("{good_authorize}&state={}", "x".repeat(32 * 1024)),
        format!("{good_authorize}&{good_authorize}"),
        "client_id=%zz&&&==".to_owned(),
        format!("client_id={}", "c".repeat(10_000)),
    ] {
        let r = app
            .http
            .get(format!("{}/authorize?{query}", app.base))
            .send()
            .await;
        match r {
            Ok(r) => {
                let s = r.status();
                // A redirect carrying the error back to the client is also
                // a correct answer to a bad parameter.
                assert!(
                    s.is_client_error() || s == StatusCode::SEE_OTHER,
                    "GET /authorize {}: {s}",
                    &query[..query.len().min(80)]
                );
            }
            Err(e) => panic!("GET /authorize: {e}"),
        }
    }
    for (what, body) in hostile_forms(&good_authorize, "state") {
        let answer = post(&app, "/authorize", FORM, body, None).await;
        if let Ok(r) = &answer
            && r.status() == StatusCode::SEE_OTHER
        {
            continue;
        }
        assert_refused(&format!("POST /authorize, {what}"), answer);
    }

    // The login form.
    for (what, body) in hostile_forms("password=x&csrf_token=y", "username") {
        let answer = post(&app, "/login", FORM, body, None).await;
        assert_refused(&format!("/login, {what}"), answer);
    }

    // Dynamic registration (open) and the admin API.
    for (what, body) in hostile_json() {
        let answer = post(&app, "/register", JSON, body, None).await;
        assert_refused(&format!("/register, {what}"), answer);
    }
    for (what, body) in hostile_json() {
        let answer = post(&app, "/admin/api/v1/clients", JSON, body, Some(&token)).await;
        assert_refused(&format!("admin API, {what}"), answer);
    }
    for (what, body) in hostile_forms("name=x", "username") {
        let answer = post(&app, "/admin/api/v1/users", FORM, body, Some(&token)).await;
        assert_refused(&format!("admin API (form body), {what}"), answer);
    }

    // Still serving, and still issuing tokens.
    let r = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .http
        .post(app.url("/token"))
        .header(CONTENT_TYPE, FORM)
        .body(good_token)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
}
