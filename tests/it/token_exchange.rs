//! Token exchange (RFC 8693): service A, which received a user's access
//! token, trades it at `/token` for a token to call service B for the same
//! user; what the new token says (`act`, audience, narrowed scope, bounded
//! lifetime), every refusal with the code RFC 8693 2.2.2 requires, and
//! which exchanged tokens still work once the user's grant ends or the
//! user is disabled. SQLite and PostgreSQL.

use crate::common::fixtures::{self, RegisteredClient, introspect};
use crate::common::{TestApp, TestDb, code_flow, verify_with_jwks};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CALLBACK: &str = "https://rp.example/cb";
const SERVICE_A: &str = "https://a.example/api";
const SERVICE_B: &str = "https://b.example/api";
const SERVICE_C: &str = "https://c.example/api";
pub(crate) const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

dual_backend!(
    a_service_exchanges_a_users_token_for_another_audience,
    exchanges_refused_as_rfc_8693_says,
    exchanged_tokens_end_with_the_grant_and_the_user,
    only_administrators_allow_token_exchange,
    a_resource_server_exchanges_a_personal_access_token,
);

/// The web app alice signs in to; its access tokens are for service A.
struct World {
    web: RegisteredClient,
    a: RegisteredClient,
    b: RegisteredClient,
    alice_id: String,
}

fn world(app: &TestApp) -> World {
    app.define_scopes(&["read:notes", "write:notes"]);
    let alice = fixtures::alice(app);
    let web = fixtures::client("Web app")
        .redirect(CALLBACK)
        .scopes("openid offline_access read:notes write:notes")
        .grants(&["authorization_code", "refresh_token"])
        .audience(SERVICE_A)
        .create(app);
    // Service A serves SERVICE_A and may exchange for SERVICE_B, reading
    // notes only. It also has client_credentials, for its own tokens.
    let a = fixtures::client("Service A")
        .scopes("read:notes")
        .grants(&[EXCHANGE, "client_credentials"])
        .resource_audience(SERVICE_A)
        .audience(SERVICE_B)
        .create(app);
    // Service B serves SERVICE_B and may exchange on for SERVICE_C.
    let b = fixtures::client("Service B")
        .scopes("read:notes write:notes")
        .grants(&[EXCHANGE])
        .resource_audience(SERVICE_B)
        .audience(SERVICE_C)
        .create(app);
    World {
        web,
        a,
        b,
        alice_id: alice.id,
    }
}

/// alice's token response from the web app (code flow).
async fn alice_tokens(app: &TestApp, w: &World) -> Value {
    let browser = fixtures::signed_in(app, "alice").await;
    let (_, tokens) = code_flow(
        app,
        &browser,
        (&w.web.id, w.web.secret()),
        CALLBACK,
        "openid offline_access read:notes write:notes",
    )
    .await;
    tokens.expect("tokens")
}

/// `POST /token` with the token-exchange grant as `client`, with
/// `subject_token` as an access token and `extra` parameters.
pub(crate) async fn exchange(
    app: &TestApp,
    client: &RegisteredClient,
    subject_token: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn claims(app: &TestApp, token: &str) -> Value {
    verify_with_jwks(&app.jwks().await, token).expect("a token signed with a published key")
}

async fn a_service_exchanges_a_users_token_for_another_audience(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let w = world(&app);
    let tokens = alice_tokens(&app, &w).await;
    let subject = tokens["access_token"].as_str().unwrap();
    let subject_claims = claims(&app, subject).await;

    let (status, body) = exchange(&app, &w.a, subject, &[("audience", SERVICE_B)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read:notes", "narrowed to what A may hold");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    let c = claims(&app, token).await;
    assert_eq!(c["sub"], w.alice_id.as_str(), "the same user");
    assert_eq!(
        c["client_id"],
        w.a.id.as_str(),
        "issued to the exchanging client"
    );
    assert_eq!(c["aud"], SERVICE_B);
    assert_eq!(c["act"], json!({"sub": w.a.id}));
    assert_eq!(c["auth_time"], subject_claims["auth_time"]);
    assert!(c["exp"].as_i64() <= subject_claims["exp"].as_i64());
    assert_eq!(
        body["expires_in"].as_i64().unwrap(),
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap()
    );

    // Service B reads it at introspection: it is meant for B.
    let seen = introspect(&app, &w.b, token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["sub"], w.alice_id.as_str());
    assert_eq!(seen["client_id"], w.a.id.as_str());

    // `resource` names the target as well as `audience` does; a narrower
    // scope may be asked for; with no target the client's default audience.
    let (status, body) = exchange(
        &app,
        &w.a,
        subject,
        &[("resource", SERVICE_B), ("scope", "read:notes")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = exchange(&app, &w.a, subject, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(&app, body["access_token"].as_str().unwrap()).await["aud"],
        SERVICE_B
    );

    // B, receiving A's token, exchanges it on for C: the actors nest, and
    // the scope cannot grow back beyond what A's token carried.
    let (status, body) = exchange(&app, &w.b, token, &[("audience", SERVICE_C)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:notes");
    let c = claims(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["act"], json!({"sub": w.b.id, "act": {"sub": w.a.id}}));
    assert_eq!(c["sub"], w.alice_id.as_str());
    let (status, body) = exchange(
        &app,
        &w.b,
        token,
        &[("audience", SERVICE_C), ("scope", "read:notes write:notes")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope", "{body}");
}

async fn exchanges_refused_as_rfc_8693_says(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let w = world(&app);
    let tokens = alice_tokens(&app, &w).await;
    let subject = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let error = |expected: &'static str| {
        move |(status, body): (StatusCode, Value)| {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], expected, "{body}");
        }
    };
    // A client not allowed the grant.
    error("unauthorized_client")(exchange(&app, &w.web, subject, &[]).await);
    // A client allowed it, but the token is neither its own nor for an
    // audience it serves.
    let stranger = fixtures::client("Stranger")
        .scopes("read:notes")
        .grants(&[EXCHANGE])
        .resource_audience("https://stranger.example")
        .create(&app);
    error("invalid_request")(exchange(&app, &stranger, subject, &[]).await);
    // Not a Latchkey access token: garbage, a refresh token, an ID token.
    for not_access in ["garbage", refresh, id_token] {
        error("invalid_request")(exchange(&app, &w.a, not_access, &[]).await);
    }
    // Token types Latchkey does not exchange, or none.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&w.a.id, Some(w.a.secret()))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", refresh),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    error("invalid_request")((r.status(), r.json().await.unwrap()));
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&w.a.id, Some(w.a.secret()))
        .form(&[("grant_type", EXCHANGE), ("subject_token", subject)])
        .send()
        .await
        .unwrap();
    error("invalid_request")((r.status(), r.json().await.unwrap()));
    error("invalid_request")(
        exchange(
            &app,
            &w.a,
            subject,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        )
        .await,
    );
    error("invalid_request")(
        exchange(
            &app,
            &w.a,
            subject,
            &[("actor_token", subject), ("actor_token_type", ACCESS_TOKEN)],
        )
        .await,
    );
    // A target the client is not registered for, or two targets.
    error("invalid_target")(exchange(&app, &w.a, subject, &[("audience", SERVICE_C)]).await);
    error("invalid_target")(
        exchange(
            &app,
            &w.a,
            subject,
            &[("audience", SERVICE_B), ("resource", SERVICE_C)],
        )
        .await,
    );
    // More scope than A may hold (write:notes), or a malformed scope.
    error("invalid_scope")(exchange(&app, &w.a, subject, &[("scope", "write:notes")]).await);
    // A token that acts for a client, not a user (A's own).
    let caller = fixtures::Caller {
        id: w.a.id.clone(),
        secret: w.a.secret().to_owned(),
    };
    let own = fixtures::machine_token(&app, &caller).await;
    error("invalid_request")(exchange(&app, &w.a, &own, &[]).await);
}

async fn exchanged_tokens_end_with_the_grant_and_the_user(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let w = world(&app);
    let tokens = alice_tokens(&app, &w).await;
    let subject = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (_, body) = exchange(&app, &w.a, subject, &[]).await;
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, &w.b, &exchanged).await["active"], true);

    // The web app revokes alice's grant: the subject token can no longer
    // be exchanged, and the token already exchanged from it reads
    // inactive too (it carries the grant), on every instance.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&w.web.id, Some(w.web.secret()))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = exchange(&app, &w.a, subject, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let kek = app.config.keys.kek_file.clone();
    let other = TestApp::spawn_on(&app.config.database.url, |c| c.keys.kek_file = kek).await;
    for instance in [&app, &other] {
        assert_eq!(
            introspect(instance, &w.b, &exchanged).await,
            json!({"active": false})
        );
    }

    // A fresh grant; then alice is disabled: no exchange for her any more.
    let tokens = alice_tokens(&app, &w).await;
    let subject = tokens["access_token"].as_str().unwrap();
    assert_eq!(exchange(&app, &w.a, subject, &[]).await.0, StatusCode::OK);
    {
        let mut c = crate::common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "alice", true, app.clock_now()).unwrap();
    }
    let (status, body) = exchange(&app, &w.a, subject, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
}

async fn only_administrators_allow_token_exchange(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;
    let r = app
        .http
        .post(app.url("/register"))
        .json(&json!({
            "client_name": "Self-made service",
            "grant_types": [EXCHANGE],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    assert_eq!(app.count("clients"), 0);
}

/// alice's personal access token with `scopes`, through the service.
pub(crate) fn alice_pat(app: &TestApp, scopes: &str) -> latchkey::service::pat::IssuedPat {
    use latchkey::service::pat;
    let mut c = crate::common::conn(&app.db);
    pat::create_for(
        &mut c,
        &app.config.pat,
        "alice",
        &pat::NewPat {
            name: "backup script".into(),
            scopes: vec![scopes.into()],
            expires_in_days: 30,
        },
        &latchkey::domain::audit::Actor::system(),
        app.clock_now(),
    )
    .expect("create a personal access token")
}

/// Service A receives a script's personal access token and trades it for
/// a JWT for B, so B can verify it offline; only resource servers may,
/// and only while the token is usable.
async fn a_resource_server_exchanges_a_personal_access_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let w = world(&app);
    let issued = alice_pat(&app, "read:notes write:notes");
    let pat = issued.token.as_str();

    let (status, body) = exchange(&app, &w.a, pat, &[("audience", SERVICE_B)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["scope"], "read:notes", "narrowed to what A may hold");
    assert!(body.get("refresh_token").is_none());
    assert!(body["expires_in"].as_i64().unwrap() <= 60, "{body}");
    let c = claims(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["sub"], w.alice_id.as_str());
    assert_eq!(c["client_id"], w.a.id.as_str());
    assert_eq!(c["aud"], SERVICE_B);
    assert_eq!(c["act"], json!({"sub": w.a.id}));
    assert!(c.get("auth_time").is_none(), "nobody signed in: a script");
    assert_eq!(
        introspect(&app, &w.b, body["access_token"].as_str().unwrap()).await["active"],
        true
    );

    // Presented as a JWT: wrong type. By a client that serves no audience
    // (it could not even introspect the token): refused.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&w.a.id, Some(w.a.secret()))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", pat),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let not_a_server = fixtures::client("Not a resource server")
        .scopes("read:notes")
        .grants(&[EXCHANGE])
        .create(&app);
    let (status, body) = exchange(&app, &not_a_server, pat, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // A made-up token of the right shape.
    let fake = format!("lkp_{}", "A".repeat(43));
    let (status, body) = exchange(&app, &w.a, &fake, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // Revoked by alice: no more exchanges.
    {
        let mut c = crate::common::conn(&app.db);
        latchkey::service::pat::revoke_for(
            &mut c,
            "alice",
            &issued.view.id,
            &latchkey::domain::audit::Actor::system(),
            app.clock_now(),
        )
        .unwrap();
    }
    let (status, body) = exchange(&app, &w.a, pat, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // A new token, then alice is disabled: refused too.
    let issued = alice_pat(&app, "read:notes");
    assert_eq!(
        exchange(&app, &w.a, &issued.token, &[]).await.0,
        StatusCode::OK
    );
    {
        let mut c = crate::common::conn(&app.db);
        latchkey::service::users::set_disabled(&mut c, "alice", true, app.clock_now()).unwrap();
    }
    let (status, _) = exchange(&app, &w.a, &issued.token, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
