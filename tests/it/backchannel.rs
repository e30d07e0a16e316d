//! OpenID Connect Back-Channel Logout 1.0, end to end, on SQLite and
//! PostgreSQL: a relying party inside the suite (`rp`) signs users in
//! through Latchkey, then receives and validates a logout token however
//! the session ends (sign-out, My account, a password change, an admin),
//! through outages of the relying party, across two instances and a
//! restart; and which tokens still work after a sign-out.

mod rp;

use diesel::prelude::*;
use latchkey::config::Config;
use latchkey::store::models::{LogoutDeliveryAttemptRow, LogoutOutboxRow};
use latchkey::store::schema::{logout_delivery_attempts, logout_outbox};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, Scope,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::common::fixtures::{
    self, PASSWORD, RegisteredClient as Rp, admin_api as api, page_text, signed_in, submit,
};
use crate::common::{self, TestApp, TestDb, code_flow};
use rp::{Expected, TestRp, eventually, validate};

const CALLBACK: &str = "https://wiki.example/callback";

dual_backend!(
    signing_out_at_latchkey_tells_the_relying_party,
    my_account_sign_outs_tell_the_relying_party,
    password_changes_and_admin_changes_tell_the_relying_party,
    an_admin_ends_sessions_in_the_console_the_api_and_the_cli,
    delivery_outlasts_a_relying_party_outage,
    two_instances_deliver_each_logout_token_once,
    a_restarted_instance_delivers_the_backlog,
    delivery_is_given_up_and_audited,
    tokens_after_sign_out_on_every_instance,
    offline_grants_end_too_when_configured,
    rp_initiated_logout_tells_every_app_of_the_session,
    self_registered_clients_never_reach_private_addresses,
);

fn fast(c: &mut Config) {
    c.logout.poll_interval_ms = 50;
}

async fn spawn(db: TestDb) -> TestApp {
    TestApp::spawn_with(db, fast).await
}

/// Another instance on the same database, as deployed: same issuer, same KEK.
async fn second_instance(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let kek = app.config.keys.kek_file.clone();
    let issuer = app.config.issuer.clone();
    TestApp::spawn_on(&app.config.database.url, |c| {
        c.keys.kek_file = kek;
        c.issuer = issuer;
        fast(c);
        tweak(c);
    })
    .await
}

fn wiki(app: &TestApp, rp: &TestRp) -> Rp {
    fixtures::client("Team Wiki")
        .redirect(CALLBACK)
        .scopes("openid profile email offline_access")
        .backchannel_logout(&rp.uri())
        .create(app)
}

/// Signs `browser`'s user in to the wiki: the claims of its ID token.
async fn sign_in_to(app: &TestApp, browser: &reqwest::Client, wiki: &Rp) -> Value {
    let (_, tokens) = code_flow(app, browser, (&wiki.id, wiki.secret()), CALLBACK, "openid").await;
    let id_token = tokens.expect("tokens")["id_token"]
        .as_str()
        .expect("an ID token")
        .to_owned();
    let claims = common::verify_with_jwks(&app.jwks().await, &id_token).unwrap();
    assert!(claims["sid"].is_string(), "the ID token carries sid");
    claims
}

fn expected<'a>(app: &'a TestApp, wiki: &'a Rp, id_token: &'a Value) -> Expected<'a> {
    Expected {
        issuer: &app.config.issuer,
        client_id: &wiki.id,
        id_token,
        now: app.clock_now().unix_timestamp(),
    }
}

fn outbox(app: &TestApp) -> Vec<LogoutOutboxRow> {
    let mut c = common::conn(&app.db);
    logout_outbox::table
        .order((logout_outbox::created_at.asc(), logout_outbox::id.asc()))
        .select(LogoutOutboxRow::as_select())
        .load(&mut *c)
        .unwrap()
}

fn attempts(app: &TestApp) -> Vec<LogoutDeliveryAttemptRow> {
    let mut c = common::conn(&app.db);
    logout_delivery_attempts::table
        .order((
            logout_delivery_attempts::at.asc(),
            logout_delivery_attempts::attempt.asc(),
        ))
        .select(LogoutDeliveryAttemptRow::as_select())
        .load(&mut *c)
        .unwrap()
}

/// The audit log's `(actor, target, detail)` for `action`.
fn audit(app: &TestApp, action: &str) -> Vec<(String, String, String)> {
    use latchkey::store::schema::audit_log;
    let mut c = common::conn(&app.db);
    audit_log::table
        .filter(audit_log::action.eq(action))
        .order(audit_log::id.asc())
        .select((audit_log::actor, audit_log::target, audit_log::detail))
        .load::<(String, String, Option<String>)>(&mut *c)
        .unwrap()
        .into_iter()
        .map(|(a, t, d)| (a, t, d.unwrap_or_default()))
        .collect()
}

/// The relying party gets the logout token within seconds of a sign-out
/// at Latchkey, signed in with the `openidconnect` crate.
async fn signing_out_at_latchkey_tells_the_relying_party(db: TestDb) {
    let app = spawn(db).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    fixtures::alice(&app);
    let browser = signed_in(&app, "alice").await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap();
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let callback = common::authorize_url_in(&app, &browser, url.as_str()).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = openidconnect::TokenResponse::id_token(&tokens).expect("an ID token");
    let verified = id_token.claims(&oidc.id_token_verifier(), &nonce).unwrap();
    let id_claims = common::verify_with_jwks(&app.jwks().await, &id_token.to_string()).unwrap();
    assert_eq!(id_claims["sub"], verified.subject().as_str());

    let r = submit(&app, &browser, "/logout", "/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = rp.wait_for(1).await;
    let claims = validate(
        &app.jwks().await,
        &got[0],
        &expected(&app, &client, &id_claims),
    );
    assert_eq!(claims["sub"], verified.subject().as_str());
    assert_eq!(got[0].answered, 200);

    // Recorded as delivered, once; the admin sees it.
    let rows = eventually("the delivery recorded", || {
        let rows = outbox(&app);
        rows[0].delivered_at.is_some().then_some(rows)
    })
    .await;
    assert_eq!((rows.len(), rows[0].attempts), (1, 1));
    assert_eq!(rows[0].sid, id_claims["sid"].as_str().unwrap());
    let tried = attempts(&app);
    assert_eq!(tried.len(), 1);
    assert_eq!(
        (tried[0].http_status, tried[0].delivered),
        (Some(200), true)
    );
    let admin = fixtures::admin_api_token(&app).await;
    let path = format!("/clients/{}/logout-deliveries", client.id);
    let (status, s) = api(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(
        (s["pending"].clone(), s["given_up"].clone()),
        (json!(0), json!(0))
    );
    assert!(s["last_success_at"].is_string() && s["last_failure_at"].is_null());
    assert_eq!(s["recent"][0]["state"], "delivered");

    // Single sign-on ended with the session.
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
    ];
    let loc = common::authorize_in(&app, &browser, &params).await;
    assert!(loc.starts_with("/login"), "{loc}");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rp.received().len(), 1, "exactly one POST");
}

/// The claims of the logout token for `sid` among what was received.
fn token_for(jwks: &str, got: &[rp::Received], e: &Expected<'_>) -> Value {
    let sid = e.id_token["sid"].as_str().unwrap();
    let r = got
        .iter()
        .find(|r| {
            let t = r.logout_token.as_deref().unwrap_or_default();
            common::verify_with_jwks(jwks, t).is_ok_and(|c| c["sid"] == sid)
        })
        .unwrap_or_else(|| panic!("no logout token for sid {sid}"));
    validate(jwks, r, e)
}

/// "Sign out" of one session and "sign out everywhere else" in My account:
/// each ended session's token, none for the session that stays.
async fn my_account_sign_outs_tell_the_relying_party(db: TestDb) {
    let app = spawn(db).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let (laptop, phone, tablet) = (
        signed_in(&app, "alice").await,
        signed_in(&app, "alice").await,
        signed_in(&app, "alice").await,
    );
    let on_laptop = sign_in_to(&app, &laptop, &client).await;
    let on_phone = sign_in_to(&app, &phone, &client).await;
    let on_tablet = sign_in_to(&app, &tablet, &client).await;

    let sid = on_phone["sid"].as_str().unwrap();
    let r = submit(
        &app,
        &laptop,
        "/account",
        "/account/sessions/end",
        &[("sid", sid)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    told(&app, &rp, 1, &client, &on_phone).await;
    let r = phone.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the phone is signed out");

    let r = submit(
        &app,
        &laptop,
        "/account",
        "/account/sessions/end-others",
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    told(&app, &rp, 2, &client, &on_tablet).await;
    let r = laptop.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the laptop stays signed in");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    let got = rp.received();
    assert_eq!(got.len(), 2, "nothing for the session that stays");
    let laptop_sid = on_laptop["sid"].as_str().unwrap();
    assert!(outbox(&app).iter().all(|r| r.sid != laptop_sid));
}

/// A password change (the user's own, then an admin's reset), disabling
/// and deleting a user: each ended session's relying party is told.
async fn password_changes_and_admin_changes_tell_the_relying_party(db: TestDb) {
    let app = spawn(db).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    let admin = fixtures::admin_api_token(&app).await;
    for name in ["alice", "bob", "carol"] {
        app.create_user(name, PASSWORD);
    }
    let (laptop, phone) = (
        signed_in(&app, "alice").await,
        signed_in(&app, "alice").await,
    );
    let on_laptop = sign_in_to(&app, &laptop, &client).await;
    let on_phone = sign_in_to(&app, &phone, &client).await;
    let bob = sign_in_to(&app, &signed_in(&app, "bob").await, &client).await;
    let carol = sign_in_to(&app, &signed_in(&app, "carol").await, &client).await;

    // Alice's own password change ends her other sessions.
    let new = "a much better passphrase";
    let fields = [("current_password", PASSWORD), ("new_password", new)];
    let r = submit(&app, &laptop, "/account", "/account/password", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    told(&app, &rp, 1, &client, &on_phone).await;

    // An admin disables her: the laptop's session ends too.
    let body = json!({"disabled": true});
    let (status, _) = api(&app, &admin, Method::PATCH, "/users/alice", Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    told(&app, &rp, 2, &client, &on_laptop).await;

    // An admin resets Bob's password; deletes Carol.
    let body = json!({"password": "another fine passphrase"});
    let (status, _) = api(&app, &admin, Method::PUT, "/users/bob/password", Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    told(&app, &rp, 3, &client, &bob).await;
    let (status, _) = api(&app, &admin, Method::DELETE, "/users/carol", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    told(&app, &rp, 4, &client, &carol).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rp.received().len(), 4, "one token per ended session");
}

/// "End all sessions" on the user's console page (CSRF, audited), the
/// admin API's DELETE …/sessions and `latchkey user end-sessions`.
async fn an_admin_ends_sessions_in_the_console_the_api_and_the_cli(db: TestDb) {
    let url = db.url.clone();
    let app = spawn(db).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    fixtures::admin(&app, "root");
    app.create_user("alice", PASSWORD);
    let console = signed_in(&app, "root").await;

    let first = sign_in_to(&app, &signed_in(&app, "alice").await, &client).await;
    let page = page_text(&app, &console, "/admin/users/alice").await;
    assert!(
        page.contains("End all sessions") && page.contains("127.0.0.1"),
        "{page}"
    );
    let r = console
        .post(app.url("/admin/users/alice/sessions/end"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "CSRF checked");
    let r = submit(
        &app,
        &console,
        "/admin/users/alice",
        "/admin/users/alice/sessions/end",
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    told(&app, &rp, 1, &client, &first).await;
    let page = page_text(&app, &console, "/admin/users/alice").await;
    assert!(page.contains("not signed in anywhere"), "{page}");

    // The admin API lists the sessions and ends them.
    let admin = fixtures::admin_api_token(&app).await;
    let second = sign_in_to(&app, &signed_in(&app, "alice").await, &client).await;
    let (status, list) = api(&app, &admin, Method::GET, "/users/alice/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["sid"], second["sid"]);
    assert!(list[0]["last_seen_at"].is_string() && list[0]["ip"] == "127.0.0.1");
    let (status, ended) = api(&app, &admin, Method::DELETE, "/users/alice/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["sessions"], 1);
    assert_eq!(ended["logout_tokens"], 1);
    told(&app, &rp, 2, &client, &second).await;

    // The CLI queues; the running server delivers.
    let third = sign_in_to(&app, &signed_in(&app, "alice").await, &client).await;
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli::latchkey(dir.path())
        .args(["--database-url", &url, "user", "end-sessions", "alice"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ended 1 session(s) of alice; 1 logout token(s)"),
        "{stdout}"
    );
    // The CLI dates the row by the system clock; this instance's manual
    // clock stands at the test's start.
    app.clock.advance(Duration::seconds(30));
    told(&app, &rp, 3, &client, &third).await;
    let actors: Vec<String> = audit(&app, "user.end_sessions")
        .into_iter()
        .map(|(actor, target, _)| {
            assert_eq!(target, "alice");
            actor
        })
        .collect();
    assert_eq!(
        actors.len(),
        3,
        "console, API and CLI are audited: {actors:?}"
    );
    assert!(
        actors.iter().any(|a| a == "user:root") && actors.iter().any(|a| a.starts_with("cli:"))
    );
}

/// Connection refused, then 500, then the relying party is back: the
/// token arrives, retried with back-off, every attempt recorded.
async fn delivery_outlasts_a_relying_party_outage(db: TestDb) {
    let app = spawn(db).await;
    let mut rp = TestRp::reserved();
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    let id_token = sign_in_to(&app, &browser, &client).await;
    submit(&app, &browser, "/logout", "/logout", &[]).await;

    let row = eventually("a refused attempt", || {
        outbox(&app).pop().filter(|r| r.attempts == 1)
    })
    .await;
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("connection failed"),
        "{row:?}"
    );
    assert!(row.next_attempt_at > row.created_at, "backed off");
    assert!(row.claimed_until.is_none());

    rp.listen();
    rp.answer(500);
    app.clock.advance(Duration::seconds(2));
    let got = rp.wait_for(1).await;
    assert_eq!(got[0].answered, 500);
    eventually("the failure recorded", || {
        outbox(&app).pop().filter(|r| r.attempts == 2)
    })
    .await;

    rp.answer(200);
    app.clock.advance(Duration::seconds(5));
    let got = rp.wait_for(2).await;
    let jwks = app.jwks().await;
    let first = validate(&jwks, &got[0], &expected(&app, &client, &id_token));
    let second = validate(&jwks, &got[1], &expected(&app, &client, &id_token));
    assert_ne!(first["jti"], second["jti"], "a fresh token per attempt");
    let row = eventually("delivered", || {
        outbox(&app).pop().filter(|r| r.delivered_at.is_some())
    })
    .await;
    assert_eq!(row.attempts, 3);
    let tried: Vec<(Option<i32>, bool)> = attempts(&app)
        .iter()
        .map(|a| (a.http_status, a.delivered))
        .collect();
    assert_eq!(
        tried,
        [(None, false), (Some(500), false), (Some(200), true)]
    );
    assert!(
        attempts(&app)
            .iter()
            .all(|a| !a.detail.as_deref().unwrap_or_default().contains("eyJ")),
        "never the token"
    );
}

/// Waits until the relying party has `n` POSTs; validates the logout
/// token among them for the session of `id_token`.
async fn told(app: &TestApp, rp: &TestRp, n: usize, client: &Rp, id_token: &Value) -> Value {
    let got = rp.wait_for(n).await;
    token_for(&app.jwks().await, &got, &expected(app, client, id_token))
}

/// Alice signed in to the wiki in `n` browsers: the ID tokens' claims.
async fn sessions_with_the_wiki(app: &TestApp, client: &Rp, n: usize) -> Vec<Value> {
    let mut id_tokens = Vec::new();
    for _ in 0..n {
        let browser = signed_in(app, "alice").await;
        id_tokens.push(sign_in_to(app, &browser, client).await);
    }
    id_tokens
}

/// The `sid`s of the logout tokens received, sorted (duplicates kept).
fn sids_received(jwks: &str, got: &[rp::Received]) -> Vec<String> {
    let mut sids: Vec<String> = got
        .iter()
        .map(|r| {
            let c = common::verify_with_jwks(jwks, r.logout_token.as_deref().unwrap()).unwrap();
            c["sid"].as_str().unwrap().to_owned()
        })
        .collect();
    sids.sort();
    sids
}

fn sids_of(id_tokens: &[Value]) -> Vec<String> {
    let mut sids: Vec<String> = id_tokens
        .iter()
        .map(|t| t["sid"].as_str().unwrap().to_owned())
        .collect();
    sids.sort();
    sids
}

/// Two instances on one database, both woken at once: each logout token
/// is claimed by one of them and POSTed exactly once.
async fn two_instances_deliver_each_logout_token_once(db: TestDb) {
    let app = spawn(db).await;
    let other = second_instance(&app, |_| {}).await;
    let rp = TestRp::start();
    rp.delay(100);
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let id_tokens = sessions_with_the_wiki(&app, &client, 6).await;
    let admin = fixtures::admin_api_token(&app).await;
    let (status, ended) = api(&app, &admin, Method::DELETE, "/users/alice/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["logout_tokens"], 6);

    let got = rp.wait_for(6).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let got_all = rp.received();
    assert_eq!(got_all.len(), 6, "each token exactly once");
    let jwks = app.jwks().await;
    assert_eq!(sids_received(&jwks, &got), sids_of(&id_tokens));
    for t in &id_tokens {
        token_for(&jwks, &got, &expected(&app, &client, t));
    }
    let rows = eventually("all recorded", || {
        let rows = outbox(&other);
        rows.iter()
            .all(|r| r.delivered_at.is_some())
            .then_some(rows)
    })
    .await;
    assert!(
        rows.iter()
            .all(|r| r.attempts == 1 && r.claimed_until.is_none())
    );
    assert_eq!(attempts(&app).len(), 6);
}

/// An instance stops with logout tokens still failing (the relying party
/// is down); another starts once it is back and delivers them all.
async fn a_restarted_instance_delivers_the_backlog(db: TestDb) {
    let mut app = spawn(db).await;
    let mut rp = TestRp::start();
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let id_tokens = sessions_with_the_wiki(&app, &client, 3).await;
    rp.stop().await;
    let admin = fixtures::admin_api_token(&app).await;
    api(&app, &admin, Method::DELETE, "/users/alice/sessions", None).await;
    eventually("three refused attempts", || {
        let rows = outbox(&app);
        (rows.len() == 3 && rows.iter().all(|r| r.attempts == 1)).then_some(())
    })
    .await;

    app.stop().await;
    let rows = outbox(&app);
    assert!(
        rows.iter()
            .all(|r| r.delivered_at.is_none() && r.claimed_until.is_none()),
        "pending, and no claim left behind: {rows:?}"
    );
    rp.listen();
    let restarted = second_instance(&app, |_| {}).await;
    restarted.clock.advance(Duration::seconds(2));
    let got = rp.wait_for(3).await;
    let jwks = restarted.jwks().await;
    assert_eq!(sids_received(&jwks, &got), sids_of(&id_tokens));
    for t in &id_tokens {
        token_for(&jwks, &got, &expected(&restarted, &client, t));
    }
    eventually("all delivered", || {
        outbox(&restarted)
            .iter()
            .all(|r| r.delivered_at.is_some() && r.attempts == 2)
            .then_some(())
    })
    .await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rp.received().len(), 3, "each once");
}

/// After `logout.max_attempts` failures, or once the client removed its
/// URI, delivery is given up: an audit entry, and the admin sees why.
async fn delivery_is_given_up_and_audited(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        fast(c);
        c.logout.max_attempts = 2;
    })
    .await;
    let rp = TestRp::start();
    rp.answer(500);
    let client = wiki(&app, &rp);
    fixtures::admin(&app, "root");
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    sign_in_to(&app, &browser, &client).await;
    submit(&app, &browser, "/logout", "/logout", &[]).await;
    rp.wait_for(1).await;
    eventually("one failure", || {
        outbox(&app).pop().filter(|r| r.attempts == 1)
    })
    .await;
    app.clock.advance(Duration::seconds(2));
    let row = eventually("given up", || {
        outbox(&app).pop().filter(|r| r.gave_up_at.is_some())
    })
    .await;
    assert_eq!(
        (row.attempts, row.last_error.as_deref()),
        (2, Some("HTTP 500"))
    );
    assert_eq!(rp.received().len(), 2);
    let gave_up = audit(&app, "logout.gave_up");
    assert_eq!(gave_up.len(), 1);
    let (actor, target, detail) = &gave_up[0];
    assert_eq!((actor.as_str(), target), ("system", &client.id));
    assert!(
        detail.contains("attempts=2") && detail.contains("HTTP 500"),
        "{detail}"
    );
    assert!(!detail.contains("eyJ"), "never the token");

    let admin = fixtures::admin_api_token(&app).await;
    let path = format!("/clients/{}/logout-deliveries", client.id);
    let (_, s) = api(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        (s["pending"].clone(), s["given_up"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(s["last_failure"], "HTTP 500");
    assert!(s["last_failure_at"].is_string() && s["last_success_at"].is_null());
    assert_eq!(s["recent"][0]["state"], "gave_up");
    let console = signed_in(&app, "root").await;
    let page = page_text(&app, &console, &format!("/admin/clients/{}", client.id)).await;
    assert!(
        page.contains("Back-channel logout") && page.contains("HTTP 500"),
        "{page}"
    );
    assert!(page.contains("given up"), "{page}");

    // A client that removed its URI: the pending token is given up, unsent.
    let browser = signed_in(&app, "alice").await;
    sign_in_to(&app, &browser, &client).await;
    submit(&app, &browser, "/logout", "/logout", &[]).await;
    rp.wait_for(3).await;
    eventually("one failure", || {
        outbox(&app).pop().filter(|r| r.attempts == 1)
    })
    .await;
    let body = json!({"backchannel_logout_uri": null});
    let (status, _) = api(
        &app,
        &admin,
        Method::PATCH,
        &format!("/clients/{}", client.id),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(Duration::seconds(2));
    let row = eventually("given up", || {
        outbox(&app).pop().filter(|r| r.gave_up_at.is_some())
    })
    .await;
    assert_eq!(
        row.last_error.as_deref(),
        Some("the client no longer has a backchannel_logout_uri")
    );
    assert_eq!(rp.received().len(), 3, "nothing sent anywhere");
    assert_eq!(audit(&app, "logout.gave_up").len(), 2);
}

/// Access token, refresh token and introspection on `instance`.
async fn active_at(instance: &TestApp, client: &Rp, access_token: &str) -> bool {
    fixtures::introspect(instance, client, access_token).await["active"] == true
}

/// After a sign-out, by default: the session's grant without
/// `offline_access` is revoked (its access token reads inactive at
/// introspection and userinfo on every instance); the offline grant's
/// refresh token keeps working, on every instance.
async fn tokens_after_sign_out_on_every_instance(db: TestDb) {
    let app = spawn(db).await;
    let other = second_instance(&app, |_| {}).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    let creds = (client.id.as_str(), client.secret());
    let offline = code_flow(&app, &browser, creds, CALLBACK, "openid offline_access")
        .await
        .1
        .unwrap();
    let online = code_flow(&app, &browser, creds, CALLBACK, "openid")
        .await
        .1
        .unwrap();
    let (offline_at, online_at) = (
        offline["access_token"].as_str().unwrap(),
        online["access_token"].as_str().unwrap(),
    );
    for instance in [&app, &other] {
        assert!(active_at(instance, &client, online_at).await);
        assert!(active_at(instance, &client, offline_at).await);
    }

    submit(&app, &browser, "/logout", "/logout", &[]).await;
    rp.wait_for(1).await;
    for instance in [&app, &other] {
        assert!(
            !active_at(instance, &client, online_at).await,
            "{}",
            instance.base
        );
        assert!(
            active_at(instance, &client, offline_at).await,
            "{}",
            instance.base
        );
        let r = instance
            .http
            .get(instance.url("/userinfo"))
            .bearer_auth(online_at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let refresh = offline["refresh_token"].as_str().unwrap();
    let (status, body) = fixtures::refresh_at(&other.base, &client, refresh).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "offline access survives a sign-out: {body}"
    );
    let next = body["refresh_token"].as_str().unwrap();
    let (status, _) = fixtures::refresh_at(&app.base, &client, next).await;
    assert_eq!(status, StatusCode::OK);
}

/// With `logout.revoke_offline_grants`, the offline grant ends with the
/// session: its refresh token fails and its access token reads inactive,
/// on every instance.
async fn offline_grants_end_too_when_configured(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        fast(c);
        c.logout.revoke_offline_grants = true;
    })
    .await;
    let other = second_instance(&app, |c| c.logout.revoke_offline_grants = true).await;
    let rp = TestRp::start();
    let client = wiki(&app, &rp);
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    let creds = (client.id.as_str(), client.secret());
    let offline = code_flow(&app, &browser, creds, CALLBACK, "openid offline_access")
        .await
        .1
        .unwrap();
    let access = offline["access_token"].as_str().unwrap();
    assert!(active_at(&other, &client, access).await);

    submit(&app, &browser, "/logout", "/logout", &[]).await;
    rp.wait_for(1).await;
    for instance in [&app, &other] {
        assert!(
            !active_at(instance, &client, access).await,
            "{}",
            instance.base
        );
        let refresh = offline["refresh_token"].as_str().unwrap();
        let (status, body) = fixtures::refresh_at(&instance.base, &client, refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
}

/// RP-initiated logout from one app (with its ID token as the hint, so no
/// confirmation): every app that took part in the session is told, the
/// one that asked included, each with its own logout token.
async fn rp_initiated_logout_tells_every_app_of_the_session(db: TestDb) {
    let app = spawn(db).await;
    let rp = TestRp::start();
    let bye = "https://wiki.example/signed-out";
    let wiki = fixtures::client("Team Wiki")
        .redirect(CALLBACK)
        .scopes("openid")
        .post_logout_redirect(bye)
        .backchannel_logout(&rp.uri())
        .create(&app);
    let chat = fixtures::client("Team Chat")
        .redirect(CALLBACK)
        .scopes("openid")
        .backchannel_logout(&rp.uri())
        .create(&app);
    app.create_user("alice", PASSWORD);
    let browser = signed_in(&app, "alice").await;
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&wiki.id, wiki.secret()),
        CALLBACK,
        "openid",
    )
    .await;
    let hint = tokens.expect("tokens")["id_token"]
        .as_str()
        .expect("an ID token")
        .to_owned();
    let on_wiki = common::verify_with_jwks(&app.jwks().await, &hint).unwrap();
    let on_chat = sign_in_to(&app, &browser, &chat).await;

    let url = reqwest::Url::parse_with_params(
        &app.url("/logout/end"),
        &[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", bye),
            ("state", "s1"),
        ],
    )
    .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], format!("{bye}?state=s1"));

    let got = rp.wait_for(2).await;
    let jwks = app.jwks().await;
    for (client, id_token) in [(&wiki, &on_wiki), (&chat, &on_chat)] {
        let r = got
            .iter()
            .find(|r| {
                let t = r.logout_token.as_deref().unwrap_or_default();
                common::verify_with_jwks(&jwks, t).is_ok_and(|c| c["aud"] == client.id.as_str())
            })
            .unwrap_or_else(|| panic!("no logout token for {}", client.id));
        validate(&jwks, r, &expected(&app, client, id_token));
    }
}

/// A client that registered itself chose its own logout URI: Latchkey
/// refuses private and loopback destinations at registration, and never
/// POSTs to one even if the URI points there later (an IP literal, or a
/// name that resolves to a private address), so open registration cannot
/// turn Latchkey into a proxy into its own network (SSRF).
async fn self_registered_clients_never_reach_private_addresses(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        fast(c);
        c.registration.open = true;
    })
    .await;
    let register = |uri: &str| {
        app.http.post(app.url("/register")).json(&json!({
            "client_name": "Self-made wiki",
            "redirect_uris": [CALLBACK],
            "backchannel_logout_uri": uri,
        }))
    };
    for private in [
        "https://127.0.0.1/bc",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/bc",
        "https://[::1]/bc",
        "https://10.0.0.7/bc",
        "http://127.0.0.1:8080/bc",
    ] {
        let r = register(private).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{private}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"], "invalid_client_metadata",
            "{private}: {body}"
        );
    }
    assert_eq!(app.count("clients"), 0, "nothing registered");
    let r = register("https://wiki.example/bc").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let reg: Value = r.json().await.unwrap();
    let client = Rp {
        id: reg["client_id"].as_str().unwrap().to_owned(),
        secret: reg["client_secret"].as_str().map(str::to_owned),
    };

    // Its URI is later pointed at a relying party on loopback (as an
    // administrator may for their own clients): still never reached.
    let rp = TestRp::start();
    let admin = fixtures::admin_api_token(&app).await;
    // (https: a self-registered client's URI must be; the RP is never
    // reached, so it need not speak TLS.)
    let literal = rp.uri().replace("http://", "https://");
    let name = literal.replace("127.0.0.1", "localhost");
    let cleartext = rp.uri().replace("127.0.0.1", "localhost");
    app.create_user("alice", PASSWORD);
    let cases = [
        (literal, "is not a public address"),
        (name, "resolves to no public address"),
        (cleartext, "must use https"),
    ];
    for (i, (uri, why)) in cases.into_iter().enumerate() {
        let (status, body) = api(
            &app,
            &admin,
            Method::PATCH,
            &format!("/clients/{}", client.id),
            Some(json!({"backchannel_logout_uri": uri})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let browser = signed_in(&app, "alice").await;
        sign_in_to(&app, &browser, &client).await;
        submit(&app, &browser, "/logout", "/logout", &[]).await;
        let row = eventually("a delivery attempt", || {
            outbox(&app)
                .into_iter()
                .nth(i)
                .filter(|r| r.attempts >= 1 && r.last_error.is_some())
        })
        .await;
        let error = row.last_error.unwrap_or_default();
        assert!(error.contains(why), "{uri}: {error}");
    }
    assert!(rp.received().is_empty(), "nothing reached the loopback RP");
}
