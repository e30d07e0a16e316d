//! Upgrades: a database at an older schema, holding users, clients, keys
//! and issued tokens, is migrated to the current schema by the next start
//! with everything intact, and tokens issued before still verify.
//!
//! The older schema is made by reverting the newest migrations (their
//! `down.sql`) on a populated database, not from a stored fixture of a
//! past release.

use latchkey::service::clients;
use latchkey::store::migrations;

use crate::common::{self, TestApp, TestDb, fixtures};

/// How many of the newest migrations to take back: the schema as it was
/// before personal access tokens and stored auth methods.
const STEPS_BACK: usize = 2;

async fn older_schema_upgrades_with_data_and_tokens_intact(db: TestDb) {
    let url = db.url.clone();
    let mut before = TestApp::spawn_on(&url, |_| {}).await;
    let kek_dir = before.kek_dir.take().expect("the app's KEK directory");
    let kek_file = kek_dir.path().join("latchkey.kek").display().to_string();
    let issuer = before.config.issuer.clone();
    before.create_user("ada", "correct horse battery");
    let caller = fixtures::machine_client(&before, "Robot", "latchkey:admin");
    let token = fixtures::machine_token(&before, &caller).await;
    let jwks = before.jwks().await;
    common::verify_with_jwks(&jwks, &token).expect("verifies before");
    before.stop().await;
    drop(before);

    // Back to the older schema.
    {
        let pool = common::open_db(&db);
        let mut c = common::conn(&pool);
        for _ in 0..STEPS_BACK {
            migrations::revert_last(&mut c).unwrap();
        }
        assert_eq!(migrations::pending(&mut c).unwrap().len(), STEPS_BACK);
    }

    // The next start (same KEK, same issuer; another port here) migrates
    // (database.auto_migrate) and serves.
    let k = kek_file.clone();
    let after = TestApp::spawn_on(&url, move |c| {
        c.keys.kek_file = k;
        c.issuer = issuer;
    })
    .await;
    {
        let mut c = common::conn(&after.db);
        assert!(migrations::pending(&mut c).unwrap().is_empty());
        let robot = clients::find(&mut c, &caller.id).unwrap();
        assert_eq!(
            robot.token_endpoint_auth_method,
            latchkey::domain::client::TokenAuthMethod::ClientSecretBasic
        );
    }
    assert_eq!(after.jwks().await, jwks, "the same keys");
    common::verify_with_jwks(&after.jwks().await, &token).expect("verifies after");
    // The token is still accepted where it is used, the client's secret
    // still works, and the user still signs in.
    let (status, _) = after.get_with_bearer("/admin/api/v1/clients", &token).await;
    assert_eq!(status, 200);
    fixtures::machine_token(&after, &caller).await;
    let r = after
        .login(&after.new_browser(), "ada", "correct horse battery")
        .await;
    assert_eq!(r.status(), 303);
    drop(kek_dir);
}

dual_backend!(older_schema_upgrades_with_data_and_tokens_intact);
