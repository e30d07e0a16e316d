//! Refresh token rotation under concurrency, across instances, and as the
//! client's registration and the family's age change, on SQLite and
//! PostgreSQL.

use crate::common::fixtures::{self, RegisteredClient};
use crate::common::{self, TestApp, TestDb, code_flow};
use latchkey::service::clients::{self, ClientChanges};
use reqwest::StatusCode;
use serde_json::Value;

const CALLBACK: &str = "https://rp.example/cb";

dual_backend!(
    concurrent_chains_of_different_families_never_fail,
    simultaneous_uses_of_one_token_within_grace_get_one_successor,
    simultaneous_uses_of_one_token_without_grace_revoke_the_family,
    replay_after_the_successor_was_used_revokes_the_family,
    refresh_drops_scopes_removed_from_the_client,
    family_ends_at_its_absolute_lifetime,
);

type Rp = RegisteredClient;

fn register(app: &TestApp, scopes: &str) -> Rp {
    fixtures::client("Refresh RP")
        .redirect(CALLBACK)
        .scopes(scopes)
        .grants(&["authorization_code", "refresh_token"])
        .first_party(true)
        .create(app)
}

/// A signed-in browser for a fresh user `alice`.
async fn signed_in(app: &TestApp) -> reqwest::Client {
    fixtures::user(app, "alice");
    fixtures::signed_in(app, "alice").await
}

/// A new refresh token family (one sign-in, one code exchange).
async fn family(app: &TestApp, browser: &reqwest::Client, rp: &Rp, scope: &str) -> String {
    let (_, tokens) = code_flow(app, browser, (&rp.id, rp.secret()), CALLBACK, scope).await;
    tokens.expect("tokens")["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

async fn refresh(base: &str, rp: &Rp, token: &str) -> (StatusCode, Value) {
    fixtures::refresh_at(base, rp, token).await
}

/// Refresh tokens of the family of `token` that are still live.
fn live_in_family(app: &TestApp, any_token_of_family: &str) -> i64 {
    use diesel::prelude::*;
    use latchkey::store::schema::refresh_tokens::dsl as rt;
    let mut c = common::conn(&app.db);
    let hash = latchkey::domain::secret::hash_secret(any_token_of_family);
    let grant: String = rt::refresh_tokens
        .filter(rt::token_hash.eq(hash))
        .select(rt::grant_id)
        .first(&mut *c)
        .expect("the token's row");
    rt::refresh_tokens
        .filter(rt::grant_id.eq(grant))
        .filter(rt::rotated_at.is_null())
        .count()
        .get_result(&mut *c)
        .unwrap()
}

/// 16 families refreshed 5 times each, all 16 chains at once: every answer
/// is a 200 (SQLite used to answer "database is locked" 500s here).
async fn concurrent_chains_of_different_families_never_fail(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = register(&app, "openid offline_access");
    let browser = signed_in(&app).await;
    let mut heads = Vec::new();
    for _ in 0..16 {
        heads.push(family(&app, &browser, &rp, "openid offline_access").await);
    }
    let rp = std::sync::Arc::new(rp);
    let mut chains = tokio::task::JoinSet::new();
    for head in heads {
        let (base, rp) = (app.base.clone(), rp.clone());
        chains.spawn_local(async move {
            let mut token = head;
            for _ in 0..5 {
                let (status, body) = refresh(&base, &rp, &token).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                token = body["refresh_token"].as_str().unwrap().to_owned();
            }
            token
        });
    }
    let mut last = Vec::new();
    while let Some(done) = chains.join_next().await {
        last.push(done.expect("chain task"));
    }
    assert_eq!(last.len(), 16);
    for token in &last {
        assert_eq!(live_in_family(&app, token), 1);
    }
}

/// With a grace window, 20 simultaneous uses of one token, split across two
/// instances, all succeed and all carry the same successor: the family
/// still has exactly one live refresh token, and it works.
async fn simultaneous_uses_of_one_token_within_grace_get_one_successor(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.tokens.refresh_reuse_grace_secs = 30).await;
    let kek = app.config.keys.kek_file.clone();
    let other = TestApp::spawn_on(&app.config.database.url, |c| {
        c.keys.kek_file = kek;
        c.tokens.refresh_reuse_grace_secs = 30;
    })
    .await;
    let rp = std::sync::Arc::new(register(&app, "openid offline_access"));
    let browser = signed_in(&app).await;
    let token = family(&app, &browser, &rp, "openid offline_access").await;
    let mut uses = tokio::task::JoinSet::new();
    for i in 0..20 {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            other.base.clone()
        };
        let (rp, token) = (rp.clone(), token.clone());
        uses.spawn_local(async move { refresh(&base, &rp, &token).await });
    }
    let mut successors = std::collections::BTreeSet::new();
    while let Some(done) = uses.join_next().await {
        let (status, body) = done.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["access_token"].is_string() && body["id_token"].is_string());
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        successors.len(),
        1,
        "every replay answers the same successor"
    );
    let successor = successors.pop_first().unwrap();
    assert_eq!(live_in_family(&app, &successor), 1);
    let (status, body) = refresh(&other.base, &rp, &successor).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Outside the window, the original token is reuse: the family ends.
    app.clock.advance(time::Duration::seconds(31));
    other.clock.advance(time::Duration::seconds(31));
    let (status, body) = refresh(&app.base, &rp, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let newest = body["refresh_token"].as_str().map(str::to_owned);
    assert!(newest.is_none());
    assert_eq!(
        app.count("refresh_tokens"),
        0,
        "the revoked family keeps no tokens"
    );
}

/// Without a grace window, one of 20 simultaneous uses wins and the others
/// are reuse: the family is revoked, and no answer is a 5xx.
async fn simultaneous_uses_of_one_token_without_grace_revoke_the_family(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let rp = std::sync::Arc::new(register(&app, "openid offline_access"));
    let browser = signed_in(&app).await;
    let token = family(&app, &browser, &rp, "openid offline_access").await;
    let mut uses = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (base, rp, token) = (app.base.clone(), rp.clone(), token.clone());
        uses.spawn_local(async move { refresh(&base, &rp, &token).await });
    }
    let (mut ok, mut refused) = (Vec::new(), 0);
    while let Some(done) = uses.join_next().await {
        let (status, body) = done.expect("task");
        match status {
            StatusCode::OK => ok.push(body["refresh_token"].as_str().unwrap().to_owned()),
            StatusCode::BAD_REQUEST => {
                assert_eq!(body["error"], "invalid_grant");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok.len(), refused), (1, 19));
    let (status, _) = refresh(&app.base, &rp, &ok[0]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "reuse revoked the family");
    assert_eq!(app.count("refresh_tokens"), 0);
}

/// Inside the window, a replay after the successor was itself used is
/// reuse, not a retry: the family ends.
async fn replay_after_the_successor_was_used_revokes_the_family(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.tokens.refresh_reuse_grace_secs = 30).await;
    let rp = register(&app, "openid offline_access");
    let browser = signed_in(&app).await;
    let r1 = family(&app, &browser, &rp, "openid offline_access").await;
    let (status, body) = refresh(&app.base, &rp, &r1).await;
    assert_eq!(status, StatusCode::OK);
    let r2 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&app.base, &rp, &r2).await;
    assert_eq!(status, StatusCode::OK);
    let r3 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = refresh(&app.base, &rp, &r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh(&app.base, &rp, &r3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the whole family ended");
}

/// A scope an admin removed from the client leaves every existing family
/// at the next refresh, on an instance that never cached the client.
async fn refresh_drops_scopes_removed_from_the_client(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.define_scopes(&["read:notes"]);
    let rp = register(&app, "openid offline_access read:notes");
    let browser = signed_in(&app).await;
    let token = family(&app, &browser, &rp, "openid offline_access read:notes").await;
    {
        let mut c = common::conn(&app.db);
        clients::update(
            &mut c,
            &rp.id,
            ClientChanges {
                scopes: Some(vec!["openid offline_access".into()]),
                ..Default::default()
            },
            &latchkey::domain::alg::SigningAlg::ALL,
            app.clock_now(),
        )
        .unwrap();
    }
    let kek = app.config.keys.kek_file.clone();
    let other = TestApp::spawn_on(&app.config.database.url, |c| c.keys.kek_file = kek).await;
    let (status, body) = refresh(&other.base, &rp, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|s| s == "read:notes"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
}

/// Rotation never extends a family past `refresh_absolute_ttl_secs` from
/// the sign-in; after it the user must sign in again.
async fn family_ends_at_its_absolute_lifetime(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        c.tokens.refresh_token_ttl_secs = 100;
        c.tokens.refresh_absolute_ttl_secs = 150;
    })
    .await;
    let rp = register(&app, "openid offline_access");
    let browser = signed_in(&app).await;
    let r1 = family(&app, &browser, &rp, "openid offline_access").await;
    app.clock.advance(time::Duration::seconds(90));
    let (status, body) = refresh(&app.base, &rp, &r1).await;
    assert_eq!(status, StatusCode::OK);
    let r2 = body["refresh_token"].as_str().unwrap().to_owned();
    // r2 would live 100 s, to t=190, but the family ends at t=150.
    app.clock.advance(time::Duration::seconds(61));
    let (status, body) = refresh(&app.base, &rp, &r2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(app.count("refresh_tokens"), 0);
}
