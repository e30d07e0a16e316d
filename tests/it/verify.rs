//! `latchkey-verify` against a running Latchkey: a resource server's view.
//! Valid tokens pass; tampered, expired, foreign, mis-addressed, `none` and
//! HMAC-with-the-public-key tokens fail; verification goes on from cache
//! while Latchkey is unreachable; a rotated key is picked up without a
//! restart; and the example notes API answers as RFC 6750 says. The
//! introspection path (personal access tokens) is in `verify/introspection.rs`.

#[allow(dead_code)]
#[path = "../../examples/resource_server.rs"]
mod example;
mod introspection;
mod personal_access_tokens;

use std::time::Duration;

use crate::common::fixtures::{self, RegisteredClient};
use crate::common::proxy::Proxy;
use crate::common::{TestApp, TestDb};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwt::JwtPayload;
use latchkey::keys::SigningAlg;
use latchkey_verify::{Verifier, VerifyError};
use reqwest::StatusCode;

const API: &str = "https://notes.example/api";

dual_backend!(
    valid_tokens_are_accepted_for_every_algorithm,
    tampered_tokens_are_rejected,
    expired_tokens_are_rejected,
    wrong_issuer_and_audience_are_rejected,
    none_and_hmac_with_the_public_key_are_rejected,
    id_tokens_are_not_access_tokens,
    cached_keys_serve_while_latchkey_is_unreachable,
    rotated_key_is_picked_up_without_restart,
    unknown_kid_refresh_is_rate_limited,
    example_api_enforces_scopes_per_route,
);

fn api_client(app: &TestApp, scopes: &str) -> RegisteredClient {
    app.define_machine_scopes(&scopes.split(' ').collect::<Vec<_>>());
    fixtures::client(&format!("Notes CLI {scopes}"))
        .scopes(scopes)
        .grants(&["client_credentials"])
        .audience(API)
        .create(app)
}

async fn client_token(app: &TestApp, client: &RegisteredClient) -> String {
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn verifier(app: &TestApp) -> Verifier {
    Verifier::builder(&app.config.issuer, API)
        .min_refresh_interval(Duration::ZERO)
        .build()
        .unwrap()
}

/// An access-token payload as Latchkey writes it, for crafted tokens.
fn payload(app: &TestApp, edit: impl FnOnce(&mut JwtPayload)) -> JwtPayload {
    let now = std::time::SystemTime::from(app.clock_now());
    let mut p = JwtPayload::new();
    p.set_issuer(&app.config.issuer);
    p.set_audience(vec![API]);
    p.set_subject("crafted");
    p.set_jwt_id("j-1");
    p.set_issued_at(&now);
    p.set_expires_at(&(now + Duration::from_secs(300)));
    p.set_claim("client_id", Some("crafted".into())).unwrap();
    p.set_claim("scope", Some("read:notes".into())).unwrap();
    edit(&mut p);
    p
}

fn sign_at(app: &TestApp, alg: SigningAlg, p: &JwtPayload) -> String {
    app.keys.current().sign(alg, "at+jwt", p).unwrap()
}

fn header_of(token: &str) -> serde_json::Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

async fn valid_tokens_are_accepted_for_every_algorithm(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.keys.algorithms = vec![SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];
    })
    .await;
    let client = api_client(&app, "read:notes write:notes");
    let v = verifier(&app);

    let token = client_token(&app, &client).await;
    let t = v.verify(&token).await.unwrap();
    assert_eq!(t.kind, latchkey_verify::TokenKind::Jwt);
    assert_eq!(t.client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(t.subject, client.id);
    assert!(t.is_client_token());
    assert_eq!(t.issuer, app.config.issuer);
    assert!(t.audience.contains(&API.to_owned()));
    assert!(t.has_scope("read:notes") && t.has_scope("write:notes"));
    assert!(t.groups.is_empty());
    assert!(t.expires_at > std::time::SystemTime::now());

    // Every algorithm Latchkey publishes a key for verifies.
    for alg in [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA] {
        let token = sign_at(
            &app,
            alg,
            &payload(&app, |p| {
                p.set_claim("groups", Some(serde_json::json!(["staff", "ops"])))
                    .unwrap();
            }),
        );
        assert_eq!(header_of(&token)["alg"], alg.as_str());
        let t = v
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(t.subject, "crafted");
        assert_eq!(t.groups, ["ops", "staff"].map(String::from).into());
    }
    // The same verification with the keys already in memory.
    assert!(v.verify_cached(&token).is_ok());
}

async fn tampered_tokens_are_rejected(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let v = verifier(&app);
    let token = client_token(&app, &client).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();

    // Widen the scope in the payload, keep the signature.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["scope"] = "read:notes write:notes".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        v.verify(&forged).await.unwrap_err(),
        VerifyError::BadSignature
    );

    // Flip one bit of the signature.
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[10] ^= 1;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    assert_eq!(
        v.verify(&parts.join(".")).await.unwrap_err(),
        VerifyError::BadSignature
    );

    for junk in ["", "abc", "a.b", "a.b.c.d", "e30.e30.", "!!.e30.e30"] {
        assert!(
            matches!(
                v.verify(junk).await,
                Err(VerifyError::Malformed | VerifyError::BadSignature)
            ),
            "{junk:?}"
        );
    }
    assert!(
        v.verify(&token).await.is_ok(),
        "the original still verifies"
    );
}

async fn expired_tokens_are_rejected(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let v = verifier(&app);
    // Latchkey's clock two hours back: the token it issues expired long ago.
    app.clock.advance(time::Duration::hours(-2));
    let old = client_token(&app, &client).await;
    app.clock.advance(time::Duration::hours(2));
    assert_eq!(v.verify(&old).await.unwrap_err(), VerifyError::Expired);

    // nbf in the future, and iat in the future, beyond the leeway.
    let ahead = std::time::SystemTime::from(app.clock_now()) + Duration::from_secs(3600);
    let nbf = sign_at(
        &app,
        SigningAlg::RS256,
        &payload(&app, |p| p.set_not_before(&ahead)),
    );
    assert_eq!(v.verify(&nbf).await.unwrap_err(), VerifyError::NotYetValid);
    let iat = sign_at(
        &app,
        SigningAlg::RS256,
        &payload(&app, |p| p.set_issued_at(&ahead)),
    );
    assert_eq!(
        v.verify(&iat).await.unwrap_err(),
        VerifyError::IssuedInFuture
    );

    // Just expired, but within a generous leeway: accepted.
    let lenient = Verifier::builder(&app.config.issuer, API)
        .leeway(Duration::from_secs(3 * 3600))
        .build()
        .unwrap();
    assert!(lenient.verify(&old).await.is_ok());
}

async fn wrong_issuer_and_audience_are_rejected(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let token = client_token(&app, &client).await;

    // Signed by Latchkey's own key, but naming another issuer.
    let foreign = sign_at(
        &app,
        SigningAlg::RS256,
        &payload(&app, |p| {
            p.set_issuer("https://evil.example");
        }),
    );
    assert_eq!(
        verifier(&app).verify(&foreign).await.unwrap_err(),
        VerifyError::WrongIssuer
    );

    // A token from another Latchkey: its key is not trusted here.
    let other = TestApp::spawn(TestDb::sqlite()).await;
    let other_client = api_client(&other, "read:notes");
    let other_token = client_token(&other, &other_client).await;
    assert_eq!(
        verifier(&app).verify(&other_token).await.unwrap_err(),
        VerifyError::UnknownKey
    );

    // A verifier for another API refuses a token meant for this one.
    let files = Verifier::builder(&app.config.issuer, "https://files.example/api")
        .build()
        .unwrap();
    assert_eq!(
        files.verify(&token).await.unwrap_err(),
        VerifyError::WrongAudience
    );

    // A verifier configured for another issuer finds that discovery does
    // not match and never loads keys.
    let confused = Verifier::builder(format!("{}/", app.config.issuer), API)
        .build()
        .unwrap();
    assert_eq!(
        confused.verify(&token).await.unwrap_err(),
        VerifyError::KeysUnavailable
    );
}

async fn none_and_hmac_with_the_public_key_are_rejected(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let v = verifier(&app);
    let token = client_token(&app, &client).await;
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    let body = token.split('.').nth(1).unwrap().to_owned();

    let header = |alg: &str| {
        URL_SAFE_NO_PAD
            .encode(serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string())
    };
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!("{}.{body}.", header(alg));
        assert_eq!(
            v.verify(&unsigned).await.unwrap_err(),
            VerifyError::AlgorithmNotAllowed
        );
    }

    // The classic key-confusion attack: HMAC keyed with the public key,
    // both as the published JWK's JSON and as its modulus bytes.
    let jwks: serde_json::Value = serde_json::from_str(&app.jwks().await).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let secrets = [
        jwk.to_string().into_bytes(),
        URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap(),
    ];
    for (alg, secret) in ["HS256", "HS384", "HS512"]
        .iter()
        .zip(secrets.iter().cycle())
    {
        let input = format!("{}.{body}", header(alg));
        let signer = josekit::jws::HS256.signer_from_bytes(secret).unwrap();
        let sig = josekit::jws::JwsSigner::sign(&signer, input.as_bytes()).unwrap();
        let hmac = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            v.verify(&hmac).await.unwrap_err(),
            VerifyError::AlgorithmNotAllowed,
            "{alg}"
        );
    }

    // A narrowed allow-list refuses even a genuine Latchkey signature.
    let es_only = Verifier::builder(&app.config.issuer, API)
        .algorithms([latchkey_verify::Algorithm::ES256])
        .build()
        .unwrap();
    assert_eq!(
        es_only.verify(&token).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed
    );

    // `crit` extensions the verifier does not understand.
    let mut h = header_of(&token);
    h["crit"] = serde_json::json!(["exp"]);
    let crit = format!(
        "{}.{body}.{}",
        URL_SAFE_NO_PAD.encode(h.to_string()),
        token.split('.').nth(2).unwrap()
    );
    assert_eq!(
        v.verify(&crit).await.unwrap_err(),
        VerifyError::UnsupportedCritical
    );
}

async fn id_tokens_are_not_access_tokens(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let v = verifier(&app);
    // Same issuer, same key, `typ: JWT`: an ID token or any other JWT.
    let mut jwt = payload(&app, |_| {});
    jwt.set_audience(vec![API]);
    let id_like = app
        .keys
        .current()
        .sign(SigningAlg::RS256, "JWT", &jwt)
        .unwrap();
    assert_eq!(
        v.verify(&id_like).await.unwrap_err(),
        VerifyError::WrongType
    );
    // The full media type form is accepted (RFC 9068 section 4).
    let long = app
        .keys
        .current()
        .sign(SigningAlg::RS256, "application/at+jwt", &jwt)
        .unwrap();
    assert!(v.verify(&long).await.is_ok());
}

async fn cached_keys_serve_while_latchkey_is_unreachable(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let proxy = Proxy::start(app.base.trim_start_matches("http://").to_owned());
    // Keys reach the verifier only through the proxy, and are stale at
    // once (cache TTL capped at zero), so every verification tries to
    // refresh.
    let v = Verifier::builder(&app.config.issuer, API)
        .jwks_uri(format!("http://127.0.0.1:{}/jwks", proxy.port))
        .min_refresh_interval(Duration::ZERO)
        .max_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    assert!(v.prefetch().await.unwrap() >= 1);
    let token = client_token(&app, &client).await;
    assert!(v.verify(&token).await.is_ok());

    proxy.cut();
    assert!(v.prefetch().await.is_err(), "Latchkey is unreachable now");
    for _ in 0..3 {
        let t = v
            .verify(&token)
            .await
            .expect("verified from the cached keys");
        assert_eq!(t.client_id.as_deref(), Some(client.id.as_str()));
    }
    // A new verifier that never saw the keys cannot judge the token.
    let cold = Verifier::builder(&app.config.issuer, API)
        .jwks_uri(format!("http://127.0.0.1:{}/jwks", proxy.port))
        .build()
        .unwrap();
    assert_eq!(
        cold.verify(&token).await.unwrap_err(),
        VerifyError::KeysUnavailable
    );
}

async fn rotated_key_is_picked_up_without_restart(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let v = verifier(&app);
    let before = client_token(&app, &client).await;
    assert!(v.verify(&before).await.is_ok());
    let old_kids = v.key_ids();

    let new_kid = fixtures::rotate_keys_now(&app);
    assert!(!old_kids.contains(&new_kid));
    let after = client_token(&app, &client).await;
    assert_eq!(header_of(&after)["kid"], new_kid.as_str());
    assert!(
        v.verify(&after).await.is_ok(),
        "unknown kid triggers a JWKS refresh"
    );
    assert!(v.key_ids().contains(&new_kid));
    // The retired key stays published until its tokens expire.
    assert!(v.verify(&before).await.is_ok());
}

async fn unknown_kid_refresh_is_rate_limited(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let client = api_client(&app, "read:notes");
    let patient = Verifier::builder(&app.config.issuer, API)
        .min_refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert!(
        patient
            .verify(&client_token(&app, &client).await)
            .await
            .is_ok()
    );
    fixtures::rotate_keys_now(&app);
    let after = client_token(&app, &client).await;
    // Fetched moments ago: no second fetch until the interval has passed.
    assert_eq!(
        patient.verify(&after).await.unwrap_err(),
        VerifyError::UnknownKey
    );
}

fn challenge_of(r: &actix_web::dev::ServiceResponse) -> String {
    let h = r.headers().get("www-authenticate").expect("a challenge");
    h.to_str().unwrap().to_owned()
}

async fn example_api_enforces_scopes_per_route(db: TestDb) {
    use actix_web::test;
    let app = TestApp::spawn(db).await;
    let reader = api_client(&app, "read:notes");
    let writer = api_client(&app, "read:notes write:notes");
    let read_token = client_token(&app, &reader).await;
    let write_token = client_token(&app, &writer).await;
    let api = test::init_service(
        actix_web::App::new()
            .app_data(verifier(&app))
            .app_data(actix_web::web::Data::new(example::Notes::default()))
            .configure(example::configure),
    )
    .await;
    let call = |method: actix_web::http::Method, auth: Option<String>, body: Option<&str>| {
        let mut req = test::TestRequest::default().method(method).uri("/notes");
        if let Some(a) = auth {
            req = req.insert_header(("Authorization", a));
        }
        if let Some(b) = body {
            req = req
                .insert_header(("Content-Type", "application/json"))
                .set_payload(b.to_owned());
        }
        req.to_request()
    };
    use actix_web::http::Method;

    // No token: 401 with a bare Bearer challenge (RFC 6750 section 3.1).
    let r = test::call_service(&api, call(Method::GET, None, None)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    // Another scheme counts as no bearer token.
    let r = test::call_service(&api, call(Method::GET, Some("Basic YTpi".into()), None)).await;
    assert_eq!(r.status(), 401);
    // Malformed header: 400 invalid_request.
    let r = test::call_service(&api, call(Method::GET, Some("Bearer a b".into()), None)).await;
    assert_eq!(r.status(), 400);
    // Invalid token: 401 invalid_token.
    let r = test::call_service(&api, call(Method::GET, Some("Bearer x.y.z".into()), None)).await;
    assert_eq!(r.status(), 401);
    let challenge = challenge_of(&r);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let body: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(body["error"], "invalid_token");

    // read:notes reads but cannot write: 403 naming the missing scope.
    let r = test::call_service(
        &api,
        call(Method::GET, Some(format!("Bearer {read_token}")), None),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = test::call_service(
        &api,
        call(
            Method::POST,
            Some(format!("bearer {read_token}")),
            Some(r#"{"text":"hi"}"#),
        ),
    )
    .await;
    assert_eq!(r.status(), 403);
    let challenge = challenge_of(&r);
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"write:notes\""),
        "{challenge}"
    );

    // write:notes writes; the note records who wrote it.
    let r = test::call_service(
        &api,
        call(
            Method::POST,
            Some(format!("Bearer {write_token}")),
            Some(r#"{"text":"hello"}"#),
        ),
    )
    .await;
    assert_eq!(r.status(), 201);
    let note: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(note["client_id"], writer.id.as_str());
    let r = test::call_service(
        &api,
        call(Method::GET, Some(format!("Bearer {read_token}")), None),
    )
    .await;
    let notes: serde_json::Value = test::read_body_json(r).await;
    assert_eq!(notes[0]["text"], "hello");
}
