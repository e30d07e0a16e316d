//! End to end: a script calls the example notes API with alice's personal
//! access token, through Bearer and through HTTP Basic; the API asks
//! Latchkey by introspection. Refused beyond the token's scopes, after
//! revocation (within the API's cache time, at once without a cache), and
//! once alice is disabled.

use std::time::Duration;

use actix_web::http::Method;
use latchkey_verify::{TokenKind, Verifier};
use reqwest::StatusCode;

use super::API;
use super::introspection::{NotesExample, Via, resource_server};
use crate::common::fixtures;
use crate::common::{TestApp, TestDb, conn};
use latchkey::domain::audit::Actor;
use latchkey::service::pat;

dual_backend!(a_script_calls_the_notes_api_with_a_personal_access_token);

async fn a_script_calls_the_notes_api_with_a_personal_access_token(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.define_scopes(&["read:notes", "write:notes"]);
    let alice = fixtures::alice(&app);
    let issued = pat::create_for(
        &mut conn(&app.db),
        &app.config.pat,
        "alice",
        &pat::NewPat {
            name: "nightly export".into(),
            scopes: vec!["read:notes".into()],
            expires_in_days: 7,
        },
        &Actor::system(),
        app.clock_now(),
    )
    .expect("a personal access token");
    let token = issued.token.as_str();
    assert!(token.starts_with("lkp_"));

    let rs = resource_server(&app);
    // As deployed: the example with its default cache (60 s) ...
    let example = NotesExample::with_introspection(&app, &rs);
    // ... and one that asks Latchkey every time.
    let uncached = NotesExample::with_verifier(
        Verifier::builder(&app.config.issuer, API)
            .introspection(&rs.id, rs.secret())
            .introspection_cache_ttl(Duration::ZERO)
            .introspection_negative_cache_ttl(Duration::ZERO)
            .build()
            .unwrap(),
    );
    for api in [&example, &uncached] {
        for via in [Via::Bearer(token), Via::Basic(token)] {
            let me = api
                .assert_accepts(via, &alice.id, TokenKind::PersonalAccessToken)
                .await;
            assert_eq!(me["scopes"], serde_json::json!(["read:notes"]), "{me}");
            let r = api.call(Method::GET, "/notes", via).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            // Writing needs write:notes, which the token was not given.
            let r = api.call(Method::POST, "/notes", via).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            assert!(
                r.challenge
                    .as_deref()
                    .is_some_and(|c| c.contains("insufficient_scope")),
                "{:?}",
                r.challenge
            );
        }
    }

    // alice revokes it: refused at once where nothing is cached; the
    // cached answer holds for the cache time, as documented.
    pat::revoke_for(
        &mut conn(&app.db),
        "alice",
        &issued.view.id,
        &Actor::system(),
        app.clock_now(),
    )
    .unwrap();
    for via in [Via::Bearer(token), Via::Basic(token)] {
        let r = uncached.call(Method::GET, "/notes", via).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = example.call(Method::GET, "/notes", via).await;
        assert_eq!(r.status, StatusCode::OK, "within the cache time");
    }

    // A new token; then alice is disabled: refused.
    let issued = pat::create_for(
        &mut conn(&app.db),
        &app.config.pat,
        "alice",
        &pat::NewPat {
            name: "second".into(),
            scopes: vec!["read:notes".into()],
            expires_in_days: 7,
        },
        &Actor::system(),
        app.clock_now(),
    )
    .unwrap();
    let r = uncached
        .call(Method::GET, "/notes", Via::Bearer(&issued.token))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    latchkey::service::users::set_disabled(&mut conn(&app.db), "alice", true, app.clock_now())
        .unwrap();
    let r = uncached
        .call(Method::GET, "/notes", Via::Basic(&issued.token))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
