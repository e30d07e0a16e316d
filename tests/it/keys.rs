//! Signing keys: every algorithm, rotation without downtime, retirement,
//! revocation, the KEK, the JWKS endpoint, and two instances on one
//! database. On SQLite and PostgreSQL.

use crate::common::{self, TestApp, TestDb, verify_with_jwks};
use latchkey::domain::audit::Actor;
use latchkey::keys::lifecycle::KeyState;
use latchkey::keys::ops;
use latchkey::keys::{KeyError, KeyStore, SigningAlg, VerifyError};
use latchkey::store::repo;
use reqwest::StatusCode;
use time::Duration;

/// A routine (not immediate) RS256 rotation by an admin; returns the kid.
fn rotate(app: &TestApp, c: &mut latchkey::store::DbConn) -> String {
    ops::rotate(
        c,
        app.keys.kek(),
        SigningAlg::RS256,
        false,
        app.clock_now(),
        app.keys.policy(),
        &Actor::cli(),
    )
    .unwrap()
}

fn kid_of(token: &str) -> String {
    let header = josekit::jwt::decode_header(token).unwrap();
    header.claim("kid").unwrap().as_str().unwrap().to_owned()
}

dual_backend!(
    every_algorithm_signs_and_verifies,
    rotation_keeps_old_tokens_valid_until_removal,
    revoked_key_tokens_fail_at_once,
    retire_rules,
    kek_problems_stop_startup_and_change_nothing,
    jwks_caching_headers,
    forged_tokens_are_refused,
);

async fn every_algorithm_signs_and_verifies(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| c.keys.algorithms = SigningAlg::ALL.to_vec()).await;
    let jwks = app.jwks().await;
    let doc: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(doc["keys"].as_array().unwrap().len(), 4);
    for key in doc["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| k.len() >= 16));
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private parts: {key}"
        );
    }
    for alg in SigningAlg::ALL {
        let token = app.sign(alg, "user-1");
        let header = josekit::jwt::decode_header(&token).unwrap();
        assert_eq!(header.claim("alg").unwrap(), alg.as_str());
        assert!(header.claim("kid").is_some());
        app.keys.current().verify(&token).unwrap();
        let claims = verify_with_jwks(&jwks, &token).unwrap();
        assert_eq!(claims["sub"], "user-1");
    }
}

async fn rotation_keeps_old_tokens_valid_until_removal(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let before = app.sign(SigningAlg::RS256, "u");
    let old_kid = kid_of(&before);

    // Rotate: the new key is published at once but does not sign yet.
    let new_kid = {
        let mut c = common::conn(&app.db);
        rotate(&app, &mut c)
    };
    assert!(app.refresh_keys());
    let jwks = app.jwks().await;
    assert!(jwks.contains(&new_kid) && jwks.contains(&old_kid));
    assert_eq!(
        kid_of(&app.sign(SigningAlg::RS256, "u")),
        old_kid,
        "next key must not sign yet"
    );

    // After the pre-publication delay it takes over; the old key retires.
    app.clock.advance(Duration::seconds(3600));
    assert!(app.refresh_keys());
    let during = app.sign(SigningAlg::RS256, "u");
    assert_eq!(kid_of(&during), new_kid);
    let jwks = app.jwks().await;
    verify_with_jwks(&jwks, &before).expect("old token still verifies");
    verify_with_jwks(&jwks, &during).unwrap();
    app.keys.current().verify(&before).unwrap();

    // The retired key stays until the longest token lifetime + margin…
    app.clock.advance(Duration::seconds(3600 + 3600 - 1));
    app.refresh_keys();
    assert!(app.jwks().await.contains(&old_kid));
    // …then it is removed, and its tokens stop verifying.
    app.clock.advance(Duration::seconds(1));
    assert!(app.refresh_keys());
    let jwks = app.jwks().await;
    assert!(!jwks.contains(&old_kid));
    assert!(verify_with_jwks(&jwks, &before).is_err());
    assert_eq!(
        app.keys.current().verify(&before).unwrap_err(),
        VerifyError::UnknownKey
    );
    verify_with_jwks(&jwks, &during).unwrap();

    let mut c = common::conn(&app.db);
    let actions: Vec<String> = repo::audit::recent(&mut c, Some("key."), 50)
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.action, r.target))
        .collect();
    for expected in [
        format!("key.rotate {new_kid}"),
        format!("key.activate {new_kid}"),
        format!("key.retire {old_kid}"),
        format!("key.remove {old_kid}"),
        format!("key.generate {old_kid}"),
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
}

async fn revoked_key_tokens_fail_at_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = app.sign(SigningAlg::RS256, "u");
    let kid = kid_of(&token);
    {
        let mut c = common::conn(&app.db);
        ops::revoke(
            &mut c,
            app.keys.kek(),
            &kid,
            app.clock_now(),
            app.keys.policy(),
            &Actor::cli(),
        )
        .unwrap();
    }
    app.refresh_keys();
    let jwks = app.jwks().await;
    assert!(!jwks.contains(&kid));
    assert!(verify_with_jwks(&jwks, &token).is_err());
    assert!(app.keys.current().verify(&token).is_err());
    // A replacement signs right away.
    let fresh = app.sign(SigningAlg::RS256, "u");
    verify_with_jwks(&jwks, &fresh).unwrap();
}

async fn retire_rules(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut c = common::conn(&app.db);
    let (now, policy, actor) = (app.clock_now(), app.keys.policy().clone(), Actor::cli());
    let keys = ops::list(&mut c, &policy).unwrap();
    assert_eq!(keys.len(), 1);
    let active = keys[0].kid.clone();
    let err = ops::retire(&mut c, &active, now, &policy, &actor, false).unwrap_err();
    assert!(
        matches!(err, KeyError::Conflict(_)),
        "the only key cannot retire: {err}"
    );
    assert!(matches!(
        ops::retire(&mut c, "nope", now, &policy, &actor, false),
        Err(KeyError::NotFound(_))
    ));
    assert_eq!(
        ops::list(&mut c, &policy).unwrap()[0].state,
        "active",
        "unchanged"
    );

    // A pending key just published may not be in relying parties' cached
    // JWKS yet: handing over to it is refused inside the pre-publication
    // delay, unless forced, and allowed once the delay has passed.
    let next = ops::rotate(
        &mut c,
        app.keys.kek(),
        SigningAlg::RS256,
        false,
        now,
        &policy,
        &actor,
    )
    .unwrap();
    let err = ops::retire(&mut c, &active, now, &policy, &actor, false).unwrap_err();
    assert!(
        matches!(&err, KeyError::Conflict(m) if m.contains("--force")),
        "{err}"
    );
    let later = now + policy.prepublication_delay;
    ops::retire(&mut c, &active, later, &policy, &actor, false).unwrap();
    let keys = ops::list(&mut c, &policy).unwrap();
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().state.clone();
    assert_eq!(state(&active), KeyState::Retired.as_str());
    assert_eq!(state(&next), KeyState::Active.as_str());
    assert!(matches!(
        ops::retire(&mut c, &active, later, &policy, &actor, false),
        Err(KeyError::Conflict(_))
    ));
    // Forced, a fresh successor takes over at once.
    let newest = ops::rotate(
        &mut c,
        app.keys.kek(),
        SigningAlg::RS256,
        false,
        later,
        &policy,
        &actor,
    )
    .unwrap();
    ops::retire(&mut c, &next, later, &policy, &actor, true).unwrap();
    let keys = ops::list(&mut c, &policy).unwrap();
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().state.clone();
    assert_eq!(state(&newest), KeyState::Active.as_str());
}

async fn kek_problems_stop_startup_and_change_nothing(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut c = common::conn(&app.db);
    let before = repo::signing_keys::all(&mut c).unwrap();

    // Another KEK file: the keys do not decrypt.
    let other_dir = tempfile::tempdir().unwrap();
    let mut config = app.config.clone();
    config.keys.kek_file = other_dir.path().join("other.kek").display().to_string();
    std::fs::write(
        &config.keys.kek_file,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let err = KeyStore::open(&mut c, &config, app.clock_now())
        .err()
        .expect("wrong KEK fails");
    assert!(err.to_string().contains("does not decrypt"), "{err}");

    // No KEK at all while keys exist: refused, and no new KEK is written.
    config.keys.kek_file = other_dir.path().join("missing.kek").display().to_string();
    let err = KeyStore::open(&mut c, &config, app.clock_now())
        .err()
        .expect("missing KEK fails");
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!std::path::Path::new(&config.keys.kek_file).exists());

    assert_eq!(
        repo::signing_keys::all(&mut c).unwrap(),
        before,
        "store unchanged"
    );
}

async fn jwks_caching_headers(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app.http.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = app
        .http
        .get(app.url("/jwks"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    {
        let mut c = common::conn(&app.db);
        rotate(&app, &mut c);
    }
    app.refresh_keys();
    let r = app
        .http
        .get(app.url("/jwks"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a new key changes the ETag");
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
}

async fn forged_tokens_are_refused(db: TestDb) {
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let app = TestApp::spawn(db).await;
    let good = app.sign(SigningAlg::RS256, "alice");
    let parts: Vec<&str> = good.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let set = app.keys.current();

    // Tampered payload.
    let evil = b64(&serde_json::json!({"sub": "mallory", "iss": app.config.issuer}));
    assert_eq!(
        set.verify(&format!("{}.{}.{}", parts[0], evil, parts[2]))
            .unwrap_err(),
        VerifyError::BadSignature
    );
    // alg: none.
    let none = b64(&serde_json::json!({"alg": "none", "kid": kid}));
    assert_eq!(
        set.verify(&format!("{none}.{}.", parts[1])).unwrap_err(),
        VerifyError::AlgorithmMismatch
    );
    // HS256 keyed with the public key's bytes.
    let hs = b64(&serde_json::json!({"alg": "HS256", "kid": kid}));
    assert_eq!(
        set.verify(&format!("{hs}.{}.{}", parts[1], parts[2]))
            .unwrap_err(),
        VerifyError::AlgorithmMismatch
    );
    // Unknown kid, no kid, garbage.
    let other = b64(&serde_json::json!({"alg": "RS256", "kid": "nope"}));
    assert_eq!(
        set.verify(&format!("{other}.{}.{}", parts[1], parts[2]))
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(set.verify("not.a.jwt").unwrap_err(), VerifyError::Malformed);
    set.verify(&good).unwrap();
}

/// Two servers on one PostgreSQL database: a rotation through the CLI is
/// published by both within the reload interval, and tokens signed by
/// either verify against either's JWKS.
#[actix_web::test]
#[cfg_attr(
    not(latchkey_pg),
    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
)]
async fn two_instances_share_keys() {
    let db = TestDb::postgres();
    let tweak = |kek: String| {
        move |c: &mut latchkey::config::Config| {
            c.keys.reload_interval_secs = 1;
            c.keys.jwks_max_age_secs = 1;
            c.keys.prepublication_delay_secs = 2;
            c.keys.kek_file = kek;
        }
    };
    // The first app owns the schema and created the KEK and the first key.
    let owner = TestApp::spawn_with(db, |_| {}).await;
    let kek = owner.config.keys.kek_file.clone();
    let url = owner.config.database.url.clone();
    // A and B: two more instances with fast reloads on the same KEK.
    let a = TestApp::spawn_on(&url, tweak(kek.clone())).await;
    let b = TestApp::spawn_on(&url, tweak(kek.clone())).await;
    assert_eq!(a.jwks().await, b.jwks().await);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["--database-url", &url, "keys", "rotate", "--now", "--json"])
        .env("LATCHKEY_KEYS__KEK_FILE", &kek)
        .env_remove("LATCHKEY_KEK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_kid = created[0]["kid"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (ja, jb) = (a.jwks().await, b.jwks().await);
        if ja.contains(&new_kid) && jb.contains(&new_kid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new key not published by both"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (ja, jb) = (a.jwks().await, b.jwks().await);
    for token in [
        a.sign(SigningAlg::RS256, "x"),
        b.sign(SigningAlg::RS256, "y"),
    ] {
        verify_with_jwks(&ja, &token).unwrap();
        verify_with_jwks(&jb, &token).unwrap();
        let kid = kid_of(&token);
        assert_eq!(kid, new_kid, "both sign with the new key");
    }
}
