//! Signing out at an app's request: OpenID Connect RP-Initiated Logout
//! 1.0 at the `end_session_endpoint`, driven by real sign-ins (and once by
//! the `openidconnect` crate's logout support), on SQLite and PostgreSQL.
//! After every sign-out the single sign-on is gone: the next `/authorize`
//! asks for the password, and the old session cookie opens nothing.

use crate::common::fixtures::{self, PASSWORD, RegisteredClient as Rp, json, text};
use crate::common::{self, TestApp, TestDb, consent_form};
use latchkey::keys::{JoseAlg, SigningAlg};
use openidconnect::core::{CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    ClientId, CsrfToken, IssuerUrl, LanguageTag, LogoutRequest, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout,
};
use reqwest::StatusCode;
use serde_json::json;
use std::str::FromStr;
use time::Duration;

const CALLBACK: &str = "https://wiki.example/callback";
const BYE: &str = "https://wiki.example/signed-out";
const MAIL_CALLBACK: &str = "https://mail.example/callback";
const MAIL_BYE: &str = "https://mail.example/bye";
const END: &str = "/logout/end";

dual_backend!(
    openidconnect_rp_signs_out_with_a_matching_hint,
    an_expired_hint_still_signs_out,
    client_id_alone_asks_first,
    unregistered_redirect_is_an_error_page,
    hint_and_client_id_must_agree,
    no_parameters_asks_then_shows_signed_out,
    declining_keeps_the_session_and_still_returns,
    duplicated_parameters_are_invalid_request,
    forged_and_foreign_hints_are_refused,
    a_hint_signed_by_a_retired_key_still_works,
    the_confirmation_needs_its_csrf_token,
    a_hint_from_another_session_asks_first,
    every_way_of_registering_takes_post_logout_redirect_uris,
    hostile_input_gets_a_4xx_page,
);

/// A browser where alice signed in, and her session cookie's value.
struct Person {
    browser: reqwest::Client,
    cookie: String,
}

async fn sign_in(app: &TestApp) -> Person {
    let browser = app.new_browser();
    let r = app.login(&browser, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("latchkey_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    Person { browser, cookie }
}

/// alice, and the wiki app (first-party: no consent page) with its
/// post-logout redirect URI.
async fn setup(app: &TestApp) -> (Rp, Person) {
    fixtures::alice(app);
    let rp = fixtures::client("Team Wiki")
        .redirect(CALLBACK)
        .post_logout_redirect(BYE)
        .first_party(true)
        .create(app);
    (rp, sign_in(app).await)
}

/// The ID token `rp` gets in `person`'s session.
async fn id_token(app: &TestApp, person: &Person, rp: &Rp, callback: &str) -> String {
    let (_, tokens) = common::code_flow(
        app,
        &person.browser,
        (&rp.id, rp.secret()),
        callback,
        "openid",
    )
    .await;
    tokens.expect("tokens")["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned()
}

/// Where `/authorize` for `rp` sends a browser sending `cookie` (the jar
/// of `browser`, or the given value by hand).
async fn authorize_location(
    app: &TestApp,
    browser: &reqwest::Client,
    rp: &Rp,
    cookie: Option<&str>,
) -> String {
    let url = common::authorize_url(app, &rp.id, CALLBACK, &[]);
    let mut req = browser.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("latchkey_session={c}"));
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The session is over: the browser is asked to sign in again, and its
/// old cookie, replayed by hand, opens nothing.
async fn assert_signed_out(app: &TestApp, person: &Person, rp: &Rp) {
    let loc = authorize_location(app, &person.browser, rp, None).await;
    assert!(loc.starts_with("/login"), "SSO must be gone: {loc}");
    let replay = authorize_location(app, &app.new_browser(), rp, Some(&person.cookie)).await;
    assert!(
        replay.starts_with("/login"),
        "old cookie must be dead: {replay}"
    );
    let home = app.home_html(&person.browser).await;
    assert!(home.contains("You are not signed in"), "{home}");
}

/// The session still signs the person in to `rp` without a password.
async fn assert_still_signed_in(app: &TestApp, person: &Person, rp: &Rp) {
    let loc = authorize_location(app, &person.browser, rp, None).await;
    assert!(loc.starts_with(CALLBACK), "SSO must still work: {loc}");
}

async fn end_session(
    app: &TestApp,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&app.url(END), params).unwrap();
    browser.get(url).send().await.unwrap()
}

/// The request a wiki signing out sends: its hint, its registered
/// post-logout URI and `state`.
async fn back_to_the_wiki(
    app: &TestApp,
    person: &Person,
    hint: &str,
    state: &str,
) -> reqwest::Response {
    let params = [
        ("id_token_hint", hint),
        ("post_logout_redirect_uri", BYE),
        ("state", state),
    ];
    end_session(app, &person.browser, &params).await
}

/// The hint is from this session: signed out without a question, and
/// straight back to the wiki with `state`.
async fn signs_out_straight_back(app: &TestApp, person: &Person, rp: &Rp, hint: &str, state: &str) {
    let r = back_to_the_wiki(app, person, hint, state).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "no confirmation");
    assert_eq!(location(&r), format!("{BYE}?state={state}"));
    assert_signed_out(app, person, rp).await;
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// An error page: 400, no redirect, the message on it.
async fn assert_error_page(r: reqwest::Response, needle: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let html = common::html_unescape(&r.text().await.unwrap());
    assert!(html.contains("Cannot sign out"), "{html}");
    assert!(html.contains(needle), "{needle:?} in {html}");
}

/// The confirmation page for `person`; returns its form with `decision`.
async fn confirmation(r: reqwest::Response, decision: &str) -> (String, Vec<(String, String)>) {
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign out of Latchkey?"), "{page}");
    assert!(page.contains("Stay signed in"));
    let form = consent_form(&page, decision);
    (page, form)
}

async fn submit(app: &TestApp, person: &Person, form: &[(String, String)]) -> reqwest::Response {
    person
        .browser
        .post(app.url("/logout"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn openidconnect_rp_signs_out_with_a_matching_hint(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer.clone(), &http)
        .await
        .expect("a strict RP library reads the logout metadata");
    let endpoint = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint");
    assert_eq!(endpoint.url().as_str(), app.url(END));
    // The plain metadata type still reads the document too.
    CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap();

    let hint = CoreIdToken::from_str(&raw).unwrap();
    let url = LogoutRequest::from(endpoint)
        .set_id_token_hint(&hint)
        .set_client_id(ClientId::new(rp.id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(BYE.into()).unwrap())
        .set_state(CsrfToken::new("opaque state/with+chars".into()))
        .add_ui_locale(LanguageTag::new("de".into()))
        .add_ui_locale(LanguageTag::new("en".into()))
        .http_get_url();
    let r = person.browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "no confirmation");
    let back = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(back.as_str().split('?').next(), Some(BYE));
    let state: Vec<_> = back.query_pairs().collect();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].0, "state");
    assert_eq!(state[0].1, "opaque state/with+chars");
    assert_eq!(app.count("sessions"), 0);
    assert_signed_out(&app, &person, &rp).await;

    // Without a redirect, the same kind of request ends on the signed-out
    // page (the person signs in again first).
    let person = sign_in(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;
    let r = end_session(&app, &person.browser, &[("id_token_hint", &raw)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_signed_out(&app, &person, &rp).await;
}

async fn an_expired_hint_still_signs_out(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.tokens.id_token_ttl_secs = 60).await;
    let (rp, person) = setup(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;
    app.clock.advance(Duration::seconds(600));
    let claims = common::verify_with_jwks(&app.jwks().await, &raw).unwrap();
    assert!(claims["exp"].as_i64().unwrap() < app.clock_now().unix_timestamp());

    signs_out_straight_back(&app, &person, &rp, &raw, "s1").await;
}

async fn client_id_alone_asks_first(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let params = [
        ("client_id", rp.id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "s2"),
    ];
    // POST works like GET (a form body).
    let r = person
        .browser
        .post(app.url(END))
        .form(&params)
        .send()
        .await
        .unwrap();
    let (page, form) = confirmation(r, "signout").await;
    assert!(
        page.contains("<strong>Team Wiki</strong> asks you"),
        "{page}"
    );
    assert!(page.contains("signed in as <strong>alice</strong>"));
    assert_still_signed_in(&app, &person, &rp).await;

    let r = submit(&app, &person, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{BYE}?state=s2"));
    assert_signed_out(&app, &person, &rp).await;

    // Nobody signed in: nothing to confirm, straight back to the app.
    let r = end_session(&app, &app.new_browser(), &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{BYE}?state=s2"));
}

async fn unregistered_redirect_is_an_error_page(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;
    for uri in [
        "https://evil.example/",
        "https://wiki.example/signed-out/",
        "https://wiki.example/signed-out?x=1",
        CALLBACK,
    ] {
        let r = end_session(
            &app,
            &person.browser,
            &[("id_token_hint", &raw), ("post_logout_redirect_uri", uri)],
        )
        .await;
        assert_error_page(r, "not registered for this app").await;
        let r = end_session(
            &app,
            &person.browser,
            &[("client_id", &rp.id), ("post_logout_redirect_uri", uri)],
        )
        .await;
        assert_error_page(r, "not registered for this app").await;
    }
    // A URI with nothing naming the app cannot be checked.
    let r = end_session(&app, &person.browser, &[("post_logout_redirect_uri", BYE)]).await;
    assert_error_page(r, "needs an id_token_hint or a client_id").await;
    let r = end_session(&app, &person.browser, &[("client_id", "no-such-app")]).await;
    assert_error_page(r, "not registered").await;
    assert_still_signed_in(&app, &person, &rp).await;
}

async fn hint_and_client_id_must_agree(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (wiki, person) = setup(&app).await;
    let mail = fixtures::client("Mail")
        .redirect(MAIL_CALLBACK)
        .post_logout_redirect(MAIL_BYE)
        .first_party(true)
        .create(&app);
    let raw = id_token(&app, &person, &wiki, CALLBACK).await;
    let r = end_session(
        &app,
        &person.browser,
        &[
            ("id_token_hint", &raw),
            ("client_id", &mail.id),
            ("post_logout_redirect_uri", MAIL_BYE),
        ],
    )
    .await;
    assert_error_page(r, "client_id does not match").await;
    // The mail app's URI is not the wiki's either.
    let r = end_session(
        &app,
        &person.browser,
        &[
            ("id_token_hint", &raw),
            ("post_logout_redirect_uri", MAIL_BYE),
        ],
    )
    .await;
    assert_error_page(r, "not registered for this app").await;
    assert_still_signed_in(&app, &person, &wiki).await;
}

async fn no_parameters_asks_then_shows_signed_out(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    for path in [END, "/logout"] {
        let r = person.browser.get(app.url(path)).send().await.unwrap();
        let (page, _) = confirmation(r, "signout").await;
        assert!(!page.contains("asks you"), "no app named: {page}");
    }
    let r = person.browser.get(app.url(END)).send().await.unwrap();
    let (_, form) = confirmation(r, "signout").await;
    let r = submit(&app, &person, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert_signed_out(&app, &person, &rp).await;
    // Signed out already: the signed-out page, no question.
    let r = person.browser.get(app.url(END)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
}

async fn declining_keeps_the_session_and_still_returns(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let r = end_session(
        &app,
        &person.browser,
        &[
            ("client_id", &rp.id),
            ("post_logout_redirect_uri", BYE),
            ("state", "s3"),
        ],
    )
    .await;
    let (_, form) = confirmation(r, "stay").await;
    let r = submit(&app, &person, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("{BYE}?state=s3"));
    assert_still_signed_in(&app, &person, &rp).await;

    // No redirect asked for: back to the start page, still signed in.
    let r = end_session(&app, &person.browser, &[]).await;
    let (_, form) = confirmation(r, "stay").await;
    let r = submit(&app, &person, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");
    assert!(
        app.home_html(&person.browser)
            .await
            .contains("signed in as")
    );
    assert_still_signed_in(&app, &person, &rp).await;
}

async fn duplicated_parameters_are_invalid_request(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let r = person
        .browser
        .get(app.url(&format!("{END}?client_id={0}&client_id={0}", rp.id)))
        .send()
        .await
        .unwrap();
    assert_error_page(r, "invalid_request").await;
    let r = person
        .browser
        .post(app.url(END))
        .form(&[("state", "a"), ("state", "b")])
        .send()
        .await
        .unwrap();
    assert_error_page(r, "the parameter state is given more than once").await;
    // The confirmation form too.
    let r = end_session(&app, &person.browser, &[]).await;
    let (_, mut form) = confirmation(r, "signout").await;
    form.push(("decision".into(), "stay".into()));
    let r = submit(&app, &person, &form).await;
    assert_error_page(r, "invalid_request").await;
    assert_still_signed_in(&app, &person, &rp).await;
}

async fn forged_and_foreign_hints_are_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;
    let claims = common::verify_with_jwks(&app.jwks().await, &raw).unwrap();
    let header = josekit::jwt::decode_header(&raw).unwrap();
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    let payload = josekit::jwt::JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();

    // The same claims and kid, signed by a key that is not ours.
    let foreign_key = latchkey::keys::material::generate(SigningAlg::RS256, &kid).unwrap();
    let signer = SigningAlg::RS256.signer(&foreign_key).unwrap();
    let mut h = josekit::jws::JwsHeader::new();
    h.set_token_type("JWT");
    h.set_key_id(&kid);
    let forged = josekit::jwt::encode_with_signer(&payload, &h, signer.as_ref()).unwrap();
    // Our signature over other claims.
    let parts: Vec<&str> = raw.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(
            &serde_json::to_vec(&{
                let mut c = claims.clone();
                c["sub"] = "someone-else".into();
                c
            })
            .unwrap()
        ),
        parts[2]
    );
    // Signed by our key, but not an ID token: an access token, a token
    // from another issuer.
    let access = {
        let mut p = payload.clone();
        p.set_claim("client_id", Some(rp.id.clone().into()))
            .unwrap();
        app.keys
            .current()
            .sign(SigningAlg::RS256, "at+jwt", &p)
            .unwrap()
    };
    let other_issuer = {
        let mut p = payload.clone();
        p.set_issuer("https://other.example");
        app.keys
            .current()
            .sign(SigningAlg::RS256, "JWT", &p)
            .unwrap()
    };
    for bad in [
        forged.as_str(),
        tampered.as_str(),
        access.as_str(),
        other_issuer.as_str(),
        "not.a.jwt",
        "x",
    ] {
        let r = back_to_the_wiki(&app, &person, bad, "s").await;
        assert_error_page(r, "not an ID token issued by this server").await;
    }
    assert_still_signed_in(&app, &person, &rp).await;
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn a_hint_signed_by_a_retired_key_still_works(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let raw = id_token(&app, &person, &rp, CALLBACK).await;
    fixtures::rotate_keys_now(&app);
    let old_kid = josekit::jwt::decode_header(&raw).unwrap();
    let old_kid = old_kid.claim("kid").unwrap().as_str().unwrap();
    let newer = app.keys.current();
    let retired = newer.keys().iter().find(|k| k.kid == old_kid).unwrap();
    assert_eq!(retired.state.as_str(), "retired");

    signs_out_straight_back(&app, &person, &rp, &raw, "s4").await;
}

async fn the_confirmation_needs_its_csrf_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let r = end_session(
        &app,
        &person.browser,
        &[("client_id", &rp.id), ("post_logout_redirect_uri", BYE)],
    )
    .await;
    let (_, form) = confirmation(r, "signout").await;
    let without: Vec<_> = form
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    let forged: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "csrf_token" {
                "x".repeat(43)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    for bad in [without, forged] {
        let r = submit(&app, &person, &bad).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get("location").is_none());
    }
    // From another site: the right token, a foreign Origin.
    let r = person
        .browser
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_still_signed_in(&app, &person, &rp).await;
    // Tampered carried parameters are checked again.
    let tampered: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "post_logout_redirect_uri" {
                "https://evil.example/".to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    assert_error_page(submit(&app, &person, &tampered).await, "not registered").await;
    assert_still_signed_in(&app, &person, &rp).await;
}

async fn a_hint_from_another_session_asks_first(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, first) = setup(&app).await;
    let old = id_token(&app, &first, &rp, CALLBACK).await;
    // The same person in another browser: the hint's sid is not this one.
    let second = sign_in(&app).await;
    let r = back_to_the_wiki(&app, &second, &old, "s5").await;
    let (page, form) = confirmation(r, "signout").await;
    assert!(page.contains("Team Wiki"));
    let r = submit(&app, &second, &form).await;
    assert_eq!(location(&r), format!("{BYE}?state=s5"));
    assert_signed_out(&app, &second, &rp).await;
    // Only that browser's session ended.
    assert_still_signed_in(&app, &first, &rp).await;
}

/// Asks to sign out of `client_id` with `uri` from a browser signed in
/// nowhere: straight back, so the URI is registered for that client.
async fn assert_returns_to(app: &TestApp, client_id: &str, uri: &str) {
    let params = [
        ("client_id", client_id),
        ("post_logout_redirect_uri", uri),
        ("state", "reg"),
    ];
    let r = end_session(app, &app.new_browser(), &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{client_id} {uri}");
    assert_eq!(location(&r), format!("{uri}?state=reg"));
}

async fn every_way_of_registering_takes_post_logout_redirect_uris(db: TestDb) {
    let url = db.url.clone();
    let app = TestApp::spawn_with(db, |c| c.registration.open = true).await;

    // The command line: add, show, update.
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let o = crate::cli::latchkey(dir.path())
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{args:?}: {err}");
        String::from_utf8(o.stdout).unwrap()
    };
    let added: serde_json::Value = serde_json::from_str(&cli(&[
        "client",
        "add",
        "--name",
        "CLI app",
        "--redirect-uri",
        "https://cli.example/cb",
        "--post-logout-redirect-uri",
        "https://cli.example/bye",
        "--json",
    ]))
    .unwrap();
    let cli_id = added["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        added["post_logout_redirect_uris"],
        json!(["https://cli.example/bye"])
    );
    assert!(cli(&["client", "show", &cli_id]).contains("https://cli.example/bye"));
    let updated = cli(&[
        "client",
        "update",
        &cli_id,
        "--post-logout-redirect-uri",
        "https://cli.example/bye2",
        "--json",
    ]);
    assert!(updated.contains("https://cli.example/bye2"), "{updated}");
    assert_returns_to(&app, &cli_id, "https://cli.example/bye2").await;

    // The admin console: the form takes one URI per line, the page shows them.
    fixtures::admin(&app, "root");
    let root = fixtures::signed_in(&app, "root").await;
    let token = common::csrf_token_in(&text(root.get(app.url("/admin/clients"))).await).unwrap();
    let created = text(root.post(app.url("/admin/clients")).form(&[
        ("csrf_token", token.as_str()),
        ("name", "Console app"),
        ("redirect_uris", "https://console.example/cb"),
        (
            "post_logout_redirect_uris",
            "https://console.example/bye\r\nhttps://console.example/later",
        ),
        ("scopes", "openid"),
        ("grant_authorization_code", "on"),
    ]))
    .await;
    let console_id = created
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the new client's id")
        .to_owned();
    let shown = text(root.get(app.url(&format!("/admin/clients/{console_id}")))).await;
    assert!(
        common::html_unescape(&shown)
            .contains("https://console.example/bye\nhttps://console.example/later"),
        "{shown}"
    );
    assert_returns_to(&app, &console_id, "https://console.example/later").await;

    // The admin API: create, change, read.
    let api = fixtures::admin_api_token(&app).await;
    let (status, body) = json(
        app.http
            .post(app.url("/admin/api/v1/clients"))
            .bearer_auth(&api)
            .json(&json!({
                "name": "API app",
                "redirect_uris": ["https://api-app.example/cb"],
                "post_logout_redirect_uris": ["https://api-app.example/bye"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body["post_logout_redirect_uris"],
        json!(["https://api-app.example/bye"])
    );
    let api_url = app.url(&format!(
        "/admin/api/v1/clients/{}",
        body["client_id"].as_str().unwrap()
    ));
    let changes = json!({"post_logout_redirect_uris": ["https://api-app.example/bye2"]});
    let (status, _) = json(app.http.patch(&api_url).bearer_auth(&api).json(&changes)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, read) = json(app.http.get(&api_url).bearer_auth(&api)).await;
    assert_eq!(
        read["post_logout_redirect_uris"],
        changes["post_logout_redirect_uris"]
    );
    let api_id = read["client_id"].as_str().unwrap();
    assert_returns_to(&app, api_id, "https://api-app.example/bye2").await;

    // Dynamic registration (RFC 7591), read back (RFC 7592); a bad URI is
    // refused.
    let register = |meta: serde_json::Value| json(app.http.post(app.url("/register")).json(&meta));
    let (status, err) = register(json!({
        "redirect_uris": ["https://dyn.example/cb"],
        "post_logout_redirect_uris": ["javascript:alert(1)"],
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reason = err["error_description"].as_str().unwrap();
    assert!(reason.contains("post_logout_redirect_uri"), "{err}");
    let (status, info) = register(json!({
        "client_name": "Dynamic app",
        "redirect_uris": ["https://dyn.example/cb"],
        "post_logout_redirect_uris": ["https://dyn.example/bye"],
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        info["post_logout_redirect_uris"],
        json!(["https://dyn.example/bye"])
    );
    let (_, read) = json(
        app.http
            .get(info["registration_client_uri"].as_str().unwrap())
            .bearer_auth(info["registration_access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        read["post_logout_redirect_uris"],
        info["post_logout_redirect_uris"]
    );
    let dyn_id = info["client_id"].as_str().unwrap();
    assert_returns_to(&app, dyn_id, "https://dyn.example/bye").await;
    // Its name is its own claim: the confirmation page says so.
    let r = end_session(&app, &root, &[("client_id", dyn_id)]).await;
    let (page, _) = confirmation(r, "signout").await;
    assert!(
        page.contains("<strong>Dynamic app</strong> asks you"),
        "{page}"
    );
    assert!(page.contains("Not verified by your administrator"));
}

async fn hostile_input_gets_a_4xx_page(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (rp, person) = setup(&app).await;
    let long_state = format!("client_id={}&state={}", rp.id, "s".repeat(4096));
    let long_hint = format!("id_token_hint={}", "h".repeat(10_000));
    for query in [
        "state=%FF%FE",
        "client_id=a%C3",
        long_state.as_str(),
        long_hint.as_str(),
    ] {
        let r = person
            .browser
            .get(format!("{}{END}?{query}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", &query[..20]);
        assert!(r.headers().get("location").is_none());
    }
    let post = |ctype: &'static str, body: Vec<u8>| {
        person
            .browser
            .post(app.url(END))
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let r = post(form, b"state=\xff".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(form, long_state.into_bytes()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post("application/json", b"{}".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    if let Ok(r) = post(form, vec![b'a'; 3 << 20]).await {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // A NUL in `state` is just a byte to return, encoded.
    let r = end_session(
        &app,
        &app.new_browser(),
        &[
            ("client_id", &rp.id),
            ("post_logout_redirect_uri", BYE),
            ("state", "a\0b"),
        ],
    )
    .await;
    assert_eq!(location(&r), format!("{BYE}?state=a%00b"));
    assert_still_signed_in(&app, &person, &rp).await;
}
