//! `latchkey-verify`'s introspection path against a running Latchkey, as
//! the notes example uses it for personal access tokens: a JWT read
//! through introspection gives the same `AccessToken` as offline; `lkp_`
//! tokens the issuer does not vouch for are refused through Bearer and
//! Basic; wrong client credentials are an outage, not a refusal; answers
//! are cached (a revoked token stays accepted within the cache time, and
//! no request is made), refusals briefly, outages never.
//!
//! [`NotesExample`] and [`Via`] are also what the end-to-end test of
//! personal access tokens uses once the server creates them:
//! `example.assert_accepts(Via::Bearer(&pat), &user.id, TokenKind::PersonalAccessToken)`
//! and the same with `Via::Basic(&pat)`.

use std::time::Duration;

use actix_web::http::Method;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey_verify::{AccessToken, TokenKind, Verifier, VerifyError};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{API, api_client, client_token, example, verifier};
use crate::common::fixtures::{self, RegisteredClient};
use crate::common::proxy::Proxy;
use crate::common::{TestApp, TestDb, code_flow};

const CALLBACK: &str = "https://notes.example/cb";

dual_backend!(
    a_jwt_reads_the_same_through_introspection_as_offline,
    unknown_personal_access_tokens_are_refused_through_bearer_and_basic,
    wrong_introspection_credentials_are_an_outage_not_a_refusal,
    answers_are_cached_for_their_time_and_outages_never,
);

/// The notes API's own confidential client: it serves [`API`], so
/// Latchkey answers it about tokens for that audience and about personal
/// access tokens.
pub(crate) fn resource_server(app: &TestApp) -> RegisteredClient {
    fixtures::client("Notes API")
        .grants(&["client_credentials"])
        .resource_audience(API)
        .create(app)
}

/// The example's settings, as its environment would give them.
fn example_env(
    app: &TestApp,
    credentials: Option<(&str, &str)>,
) -> impl Fn(&str) -> Option<String> {
    let issuer = app.config.issuer.clone();
    let credentials = credentials.map(|(id, secret)| (id.to_owned(), secret.to_owned()));
    move |name| match name {
        "LATCHKEY_ISSUER" => Some(issuer.clone()),
        "NOTES_AUDIENCE" => Some(API.to_owned()),
        "NOTES_CLIENT_ID" => credentials.as_ref().map(|c| c.0.clone()),
        "NOTES_CLIENT_SECRET" => credentials.as_ref().map(|c| c.1.clone()),
        _ => None,
    }
}

/// How a script presents its token to the notes example.
#[derive(Clone, Copy)]
pub(crate) enum Via<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: Basic base64(script:<token>)`, as `curl -u
    /// "script:$TOKEN"` sends it.
    Basic(&'a str),
}

impl Via<'_> {
    fn header(self) -> String {
        match self {
            Via::Bearer(t) => format!("Bearer {t}"),
            Via::Basic(t) => format!("Basic {}", STANDARD.encode(format!("script:{t}"))),
        }
    }
}

/// What the example answered.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Value,
}

/// The notes example (`examples/resource_server.rs`), in process, with
/// the verifier its settings build.
pub(crate) struct NotesExample {
    pub verifier: Verifier,
    notes: actix_web::web::Data<example::Notes>,
}

impl NotesExample {
    /// With introspection on: its own client `resource_server`.
    pub(crate) fn with_introspection(app: &TestApp, resource_server: &RegisteredClient) -> Self {
        Self::from_env(example_env(
            app,
            Some((&resource_server.id, resource_server.secret())),
        ))
    }

    /// With a verifier built otherwise (e.g. a cache time of zero).
    pub(crate) fn with_verifier(verifier: Verifier) -> Self {
        NotesExample {
            verifier,
            notes: actix_web::web::Data::new(example::Notes::default()),
        }
    }

    fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        NotesExample {
            verifier: example::verifier(env).expect("the example's verifier"),
            notes: actix_web::web::Data::new(example::Notes::default()),
        }
    }

    pub(crate) async fn call(&self, method: Method, path: &str, send: Via<'_>) -> Reply {
        use actix_web::test;
        let api = test::init_service(
            actix_web::App::new()
                .app_data(self.verifier.clone())
                .app_data(self.notes.clone())
                .configure(example::configure),
        )
        .await;
        let mut req = test::TestRequest::default()
            .method(method.clone())
            .uri(path)
            .insert_header(("Authorization", send.header()));
        if method == Method::POST {
            req = req.set_json(json!({"text": "from a script"}));
        }
        let r = test::call_service(&api, req.to_request()).await;
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|h| h.to_str().unwrap().to_owned());
        let bytes = test::read_body(r).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            challenge,
            body,
        }
    }

    /// The example accepts the token sent as `send`: `/whoami` names
    /// `subject`, and says what kind of token it was.
    pub(crate) async fn assert_accepts(
        &self,
        send: Via<'_>,
        subject: &str,
        kind: TokenKind,
    ) -> Value {
        let r = self.call(Method::GET, "/whoami", send).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["sub"], subject);
        let pat = kind == TokenKind::PersonalAccessToken;
        assert_eq!(r.body["personal_access_token"], pat, "{}", r.body);
        assert_eq!(r.body["client_id"].is_null(), pat, "{}", r.body);
        r.body
    }
}

/// A well-formed personal access token no one issued.
fn unknown_pat() -> String {
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("lkp_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Everything but `claims` (the JWT's payload, or the introspection
/// answer's members).
fn without_claims(t: AccessToken) -> AccessToken {
    AccessToken {
        claims: Default::default(),
        ..t
    }
}

async fn a_jwt_reads_the_same_through_introspection_as_offline(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rs = resource_server(&app);
    let example = NotesExample::with_introspection(&app, &rs);
    let introspecting = &example.verifier;

    // An app's own token (client_credentials).
    let cli = api_client(&app, "read:notes write:notes");
    let token = client_token(&app, &cli).await;
    let offline = verifier(&app).verify(&token).await.unwrap();
    let asked = introspecting.introspect(&token).await.unwrap();
    assert_eq!(asked.claims["active"], true, "the issuer's answer");
    assert_eq!(without_claims(asked), without_claims(offline.clone()));
    assert_eq!(offline.kind, TokenKind::Jwt);
    // `verify` itself keeps JWTs offline, and the example serves them.
    assert_eq!(introspecting.verify(&token).await.unwrap(), offline);
    example
        .assert_accepts(Via::Bearer(&token), &cli.id, TokenKind::Jwt)
        .await;

    // A user's token from the code flow: auth_time and the user as sub.
    let alice = fixtures::alice(&app);
    let rp = fixtures::client("Notes web app")
        .redirect(CALLBACK)
        .scopes("openid")
        .audience(API)
        .create(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    let (_, tokens) = code_flow(&app, &browser, (&rp.id, rp.secret()), CALLBACK, "openid").await;
    let access = tokens.unwrap()["access_token"].as_str().unwrap().to_owned();
    let offline = verifier(&app).verify(&access).await.unwrap();
    assert_eq!(offline.subject, alice.id);
    assert!(offline.auth_time.is_some() && !offline.is_client_token());
    let asked = introspecting.introspect(&access).await.unwrap();
    assert_eq!(without_claims(asked), without_claims(offline));

    // A refresh token is never an access token, even one the issuer
    // shows as active: an API that is also an app reads its own.
    let api_with_ui = fixtures::client("Notes API with a web UI")
        .redirect(CALLBACK)
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token"])
        .resource_audience(API)
        .create(&app);
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&api_with_ui.id, api_with_ui.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let refresh = tokens.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fixtures::introspect(&app, &api_with_ui, &refresh).await["token_type"],
        "refresh_token",
        "the issuer says active"
    );
    let own = NotesExample::with_introspection(&app, &api_with_ui);
    assert_eq!(
        own.verifier.introspect(&refresh).await,
        Err(VerifyError::InvalidClaim("token_type"))
    );
}

async fn unknown_personal_access_tokens_are_refused_through_bearer_and_basic(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rs = resource_server(&app);
    let example = NotesExample::with_introspection(&app, &rs);
    let pat = unknown_pat();

    // The issuer is asked and says inactive: 401 invalid_token.
    assert_eq!(
        example.verifier.verify(&pat).await,
        Err(VerifyError::Inactive)
    );
    let r = example.call(Method::GET, "/notes", Via::Bearer(&pat)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenge = r.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(r.body["error"], "invalid_token");
    assert!(
        !r.body.to_string().contains(&pat),
        "the token is not echoed"
    );

    // As the Basic password: the same refusal, with a Basic challenge.
    let r = example.call(Method::GET, "/notes", Via::Basic(&pat)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.challenge.as_deref().unwrap().starts_with("Basic realm="),
        "{:?}",
        r.challenge
    );
    assert_eq!(r.body["error"], "invalid_token");
    let r = example.call(Method::POST, "/notes", Via::Basic(&pat)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "writing too");

    // A malformed one is refused without asking.
    let r = example
        .call(Method::GET, "/whoami", Via::Bearer("lkp_short"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");

    // Basic carries personal access tokens only: a valid JWT as the
    // password counts as no token (a bare Bearer challenge), while the
    // same JWT as a Bearer token is accepted.
    let cli = api_client(&app, "read:notes");
    let jwt = client_token(&app, &cli).await;
    let r = example.call(Method::GET, "/notes", Via::Basic(&jwt)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.challenge.as_deref(), Some("Bearer"));
    let r = example.call(Method::GET, "/notes", Via::Bearer(&jwt)).await;
    assert_eq!(r.status, StatusCode::OK);

    // Without its client credentials the example refuses personal access
    // tokens clearly, whichever way they come, and still serves JWTs.
    let offline = NotesExample::from_env(example_env(&app, None));
    assert!(!offline.verifier.accepts_personal_access_tokens());
    for send in [Via::Bearer(&pat), Via::Basic(&pat)] {
        let r = offline.call(Method::GET, "/notes", send).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.body["error_description"],
            "personal access tokens are not accepted here"
        );
    }
    offline
        .assert_accepts(Via::Bearer(&jwt), &cli.id, TokenKind::Jwt)
        .await;
    // Half the credentials is a configuration error at start-up.
    let env = example_env(&app, Some((&rs.id, "x")));
    let half = move |name: &str| (name != "NOTES_CLIENT_SECRET").then(|| env(name)).flatten();
    assert!(example::verifier(half).is_err());
}

async fn wrong_introspection_credentials_are_an_outage_not_a_refusal(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rs = resource_server(&app);
    let cli = api_client(&app, "read:notes");
    let jwt = client_token(&app, &cli).await;
    let pat = unknown_pat();

    for (id, secret) in [(rs.id.as_str(), "not-the-secret"), ("no-such-client", "x")] {
        let example = NotesExample::from_env(example_env(&app, Some((id, secret))));
        assert_eq!(
            example.verifier.verify(&pat).await,
            Err(VerifyError::IntrospectionRefused)
        );
        assert_eq!(
            example.verifier.introspect(&jwt).await,
            Err(VerifyError::IntrospectionRefused)
        );
        // The caller is not told its token is bad: 503, retry later.
        for send in [Via::Bearer(&pat), Via::Basic(&pat)] {
            let r = example.call(Method::GET, "/notes", send).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
            assert_eq!(r.challenge, None);
        }
        // JWTs need no introspection and are still served.
        example
            .assert_accepts(Via::Bearer(&jwt), &cli.id, TokenKind::Jwt)
            .await;
    }
}

async fn answers_are_cached_for_their_time_and_outages_never(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rs = resource_server(&app);
    let cli = api_client(&app, "read:notes");
    let token = client_token(&app, &cli).await;
    let pat = unknown_pat();
    // Introspection reaches Latchkey only through a proxy the test cuts.
    let proxy = Proxy::start(app.base.trim_start_matches("http://").to_owned());
    let through_proxy = |ttl: Duration, negative_ttl: Duration| {
        Verifier::builder(&app.config.issuer, API)
            .introspection(&rs.id, rs.secret())
            .introspection_endpoint(format!("http://127.0.0.1:{}/introspect", proxy.port))
            .introspection_cache_ttl(ttl)
            .introspection_negative_cache_ttl(negative_ttl)
            .build()
            .unwrap()
    };
    let cached = through_proxy(Duration::from_secs(60), Duration::from_secs(60));
    let uncached = through_proxy(Duration::ZERO, Duration::ZERO);
    for v in [&cached, &uncached] {
        assert!(v.introspect(&token).await.is_ok());
        assert_eq!(v.verify(&pat).await, Err(VerifyError::Inactive));
    }

    // The app revokes its token. Offline verification cannot see that;
    // introspection sees it, except within the cache time.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&cli.id, Some(cli.secret()))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(verifier(&app).verify(&token).await.is_ok());
    assert!(
        cached.introspect(&token).await.is_ok(),
        "within the cache time"
    );
    assert_eq!(
        uncached.introspect(&token).await,
        Err(VerifyError::Inactive),
        "no cache: the revocation shows at once"
    );

    // With Latchkey unreachable, cached answers still come (so they cost
    // no request), positive and negative alike; the rest is an outage.
    proxy.cut();
    assert!(cached.introspect(&token).await.is_ok());
    assert_eq!(cached.verify(&pat).await, Err(VerifyError::Inactive));
    assert_eq!(cached.verify_cached(&pat), Err(VerifyError::Inactive));
    assert_eq!(
        uncached.verify(&pat).await,
        Err(VerifyError::IntrospectionUnavailable)
    );
    let other_pat = unknown_pat();
    assert_eq!(
        cached.verify(&other_pat).await,
        Err(VerifyError::IntrospectionUnavailable)
    );
    // The outage was not remembered: back up, the issuer is asked again.
    proxy.restore();
    assert_eq!(cached.verify(&other_pat).await, Err(VerifyError::Inactive));
    assert_eq!(
        uncached.introspect(&token).await,
        Err(VerifyError::Inactive)
    );
}
