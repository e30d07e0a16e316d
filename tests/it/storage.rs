//! The storage suite: identical on SQLite and PostgreSQL.

use crate::common::{self, TestDb, conn, open_db, start_time};
use latchkey::domain::client::ClientInput;
use latchkey::domain::secret::verify_secret;
use latchkey::service::users::{self, NewUser};
use latchkey::service::{ServiceError, clients, sessions};
use latchkey::store::{migrations, repo};
use time::Duration;

dual_backend!(
    migrations_go_up_down_and_up_again,
    users_are_created_and_unique,
    bad_user_input_changes_nothing,
    user_lifecycle,
    clients_store_only_secret_hashes,
    duplicate_client_ids_conflict,
    client_update_revalidates,
    sessions_expire_idle_and_absolute,
    disabling_a_user_ends_sessions,
    throttle_counts_every_failure,
    housekeeping_purges_only_what_expired,
    concurrent_first_migrations_all_succeed,
);

async fn migrations_go_up_down_and_up_again(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    assert!(migrations::pending(&mut c).unwrap().is_empty());
    migrations::revert_all(&mut c).unwrap();
    assert!(!migrations::pending(&mut c).unwrap().is_empty());
    migrations::run_pending(&mut c).unwrap();
    assert!(migrations::pending(&mut c).unwrap().is_empty());
    // Running again is a no-op.
    assert!(migrations::run_pending(&mut c).unwrap().is_empty());
}

async fn users_are_created_and_unique(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let new = NewUser {
        username: "Ada",
        email: Some("ada@example.com"),
        ..Default::default()
    };
    let u = users::create(&mut c, &new, Some("correct horse"), start_time()).unwrap();
    assert_eq!(u.username, "ada");
    assert!(u.has_password);
    // The same name in another case is the same user.
    let dup = NewUser {
        username: "ADA",
        ..Default::default()
    };
    let err = users::create(&mut c, &dup, None, start_time()).unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    assert_eq!(repo::users::count(&mut c).unwrap(), 1);
    let row = repo::users::by_username(&mut c, "ada").unwrap().unwrap();
    let hash = row.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(!hash.contains("correct horse"));
    assert_eq!(row.created_at, latchkey::clock::to_db(start_time()));
}

async fn bad_user_input_changes_nothing(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let long = "x".repeat(300);
    let cases: Vec<(NewUser, Option<&str>)> = vec![
        (
            NewUser {
                username: "",
                ..Default::default()
            },
            None,
        ),
        (
            NewUser {
                username: "has space",
                ..Default::default()
            },
            None,
        ),
        (
            NewUser {
                username: &long,
                ..Default::default()
            },
            None,
        ),
        (
            NewUser {
                username: "bob",
                email: Some("not-an-email"),
                ..Default::default()
            },
            None,
        ),
        (
            NewUser {
                username: "bob",
                ..Default::default()
            },
            Some("short"),
        ),
    ];
    for (new, pw) in cases {
        let err = users::create(&mut c, &new, pw, start_time()).unwrap_err();
        assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    }
    assert_eq!(repo::users::count(&mut c).unwrap(), 0);
    assert!(matches!(
        users::show(&mut c, "nobody").unwrap_err(),
        ServiceError::NotFound { .. }
    ));
}

async fn user_lifecycle(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let new = NewUser {
        username: "carol",
        ..Default::default()
    };
    users::create(&mut c, &new, Some("first password"), start_time()).unwrap();
    users::set_password(&mut c, "carol", "second password", start_time()).unwrap();
    let row = users::find(&mut c, "carol").unwrap();
    assert!(latchkey::service::password::verify(
        "second password",
        row.password_hash.as_deref().unwrap()
    ));
    assert!(
        users::set_disabled(&mut c, "carol", true, start_time())
            .unwrap()
            .disabled
    );
    assert!(
        !users::set_disabled(&mut c, "carol", false, start_time())
            .unwrap()
            .disabled
    );
    users::delete(&mut c, "carol", start_time()).unwrap();
    assert!(matches!(
        users::delete(&mut c, "carol", start_time()),
        Err(ServiceError::NotFound { .. })
    ));
}

fn web_client() -> ClientInput {
    ClientInput {
        name: "Wiki".into(),
        redirect_uris: vec!["https://wiki.example/callback".into()],
        post_logout_redirect_uris: vec!["https://wiki.example/".into()],
        scopes: vec!["openid profile".into(), "email".into()],
        ..Default::default()
    }
}

async fn clients_store_only_secret_hashes(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let issued = clients::create(
        &mut c,
        None,
        &web_client(),
        &latchkey::domain::alg::SigningAlg::ALL,
        start_time(),
    )
    .unwrap();
    let secret = issued.client_secret.clone().unwrap();
    let row = repo::clients::by_id(&mut c, &issued.client.client_id)
        .unwrap()
        .unwrap();
    let hash = row.secret_hash.clone().unwrap();
    assert_ne!(hash, secret);
    assert!(verify_secret(&secret, &hash));
    let found = clients::find(&mut c, &issued.client.client_id).unwrap();
    assert_eq!(
        found.settings.redirect_uris,
        vec!["https://wiki.example/callback"]
    );
    assert_eq!(
        found.settings.allowed_scopes.to_string(),
        "email openid profile"
    );

    let rotated = clients::rotate_secret(&mut c, &issued.client.client_id, start_time()).unwrap();
    let new_secret = rotated.client_secret.unwrap();
    let row = repo::clients::by_id(&mut c, &issued.client.client_id)
        .unwrap()
        .unwrap();
    assert!(verify_secret(
        &new_secret,
        row.secret_hash.as_deref().unwrap()
    ));
    assert!(!verify_secret(&secret, row.secret_hash.as_deref().unwrap()));

    let public = ClientInput {
        public: true,
        name: "CLI".into(),
        ..web_client()
    };
    let issued = clients::create(
        &mut c,
        Some("cli"),
        &public,
        &latchkey::domain::alg::SigningAlg::ALL,
        start_time(),
    )
    .unwrap();
    assert!(issued.client_secret.is_none());
    assert!(matches!(
        clients::rotate_secret(&mut c, "cli", start_time()),
        Err(ServiceError::Conflict(_))
    ));
    assert_eq!(clients::list(&mut c).unwrap().len(), 2);
    clients::delete(&mut c, "cli").unwrap();
    assert!(matches!(
        clients::delete(&mut c, "cli"),
        Err(ServiceError::NotFound { .. })
    ));
}

async fn duplicate_client_ids_conflict(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    clients::create(
        &mut c,
        Some("git-helper"),
        &web_client(),
        &latchkey::domain::alg::SigningAlg::ALL,
        start_time(),
    )
    .unwrap();
    let err = clients::create(
        &mut c,
        Some("git-helper"),
        &web_client(),
        &latchkey::domain::alg::SigningAlg::ALL,
        start_time(),
    )
    .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let bad = ClientInput {
        redirect_uris: vec!["javascript:alert(1)".into()],
        ..web_client()
    };
    assert!(matches!(
        clients::create(
            &mut c,
            None,
            &bad,
            &latchkey::domain::alg::SigningAlg::ALL,
            start_time()
        ),
        Err(ServiceError::Invalid(_))
    ));
    assert_eq!(clients::list(&mut c).unwrap().len(), 1);
}

async fn client_update_revalidates(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let id = clients::create(
        &mut c,
        None,
        &web_client(),
        &latchkey::domain::alg::SigningAlg::ALL,
        start_time(),
    )
    .unwrap()
    .client
    .client_id;
    let later = start_time() + Duration::hours(1);
    let changes = clients::ClientChanges {
        name: Some("Wiki 2".into()),
        first_party: Some(true),
        ..Default::default()
    };
    let v = clients::update(
        &mut c,
        &id,
        changes,
        &latchkey::domain::alg::SigningAlg::ALL,
        later,
    )
    .unwrap();
    assert_eq!(v.name, "Wiki 2");
    assert!(v.first_party);
    assert_eq!(v.updated_at, later);
    assert_eq!(v.created_at, start_time());
    let bad = clients::ClientChanges {
        redirect_uris: Some(vec!["http://wiki.example/cb".into()]),
        ..Default::default()
    };
    assert!(matches!(
        clients::update(
            &mut c,
            &id,
            bad,
            &latchkey::domain::alg::SigningAlg::ALL,
            later
        ),
        Err(ServiceError::Invalid(_))
    ));
    assert_eq!(
        clients::find(&mut c, &id).unwrap().settings.redirect_uris,
        vec!["https://wiki.example/callback"]
    );
    assert!(matches!(
        clients::update(
            &mut c,
            "missing",
            Default::default(),
            &latchkey::domain::alg::SigningAlg::ALL,
            later
        ),
        Err(ServiceError::NotFound { .. })
    ));
}

fn policy() -> sessions::SessionPolicy {
    sessions::SessionPolicy {
        idle_timeout: Duration::minutes(30),
        absolute_timeout: Duration::hours(8),
    }
}

async fn sessions_expire_idle_and_absolute(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let user = users::create(
        &mut c,
        &NewUser {
            username: "dave",
            ..Default::default()
        },
        None,
        start_time(),
    )
    .unwrap();
    let t0 = start_time();
    let s = sessions::create(&mut c, &user.id, Default::default(), t0, policy()).unwrap();
    // The stored id is the hash, never the cookie value.
    assert!(
        repo::sessions::with_user(&mut c, s.expose())
            .unwrap()
            .is_none()
    );
    assert!(
        sessions::resolve(&mut c, s.expose(), t0, policy())
            .unwrap()
            .is_some()
    );

    // Active use keeps it alive past the idle timeout…
    let mut t = t0;
    for _ in 0..10 {
        t += Duration::minutes(20);
        assert!(
            sessions::resolve(&mut c, s.expose(), t, policy())
                .unwrap()
                .is_some(),
            "alive at {t}"
        );
    }
    // …but not past the absolute one.
    let t_abs = t0 + Duration::hours(8);
    assert!(
        sessions::resolve(&mut c, s.expose(), t_abs, policy())
            .unwrap()
            .is_none()
    );
    assert_eq!(repo::sessions::count_for_user(&mut c, &user.id).unwrap(), 0);

    // Idle expiry.
    let s2 = sessions::create(&mut c, &user.id, Default::default(), t0, policy()).unwrap();
    assert!(
        sessions::resolve(&mut c, s2.expose(), t0 + Duration::minutes(31), policy())
            .unwrap()
            .is_none()
    );

    // Garbage and ended sessions.
    assert!(
        sessions::resolve(&mut c, "nope", t0, policy())
            .unwrap()
            .is_none()
    );
    let s3 = sessions::create(&mut c, &user.id, Default::default(), t0, policy()).unwrap();
    sessions::end_with(&mut c, s3.expose(), Default::default(), t0).unwrap();
    assert!(
        sessions::resolve(&mut c, s3.expose(), t0, policy())
            .unwrap()
            .is_none()
    );

    // Purge removes what has expired, only that.
    let _live = sessions::create(&mut c, &user.id, Default::default(), t0, policy()).unwrap();
    let _old = sessions::create(
        &mut c,
        &user.id,
        Default::default(),
        t0 - Duration::hours(9),
        policy(),
    )
    .unwrap();
    assert_eq!(sessions::purge_expired(&mut c, t0, policy()).unwrap(), 1);
    assert_eq!(repo::sessions::count_for_user(&mut c, &user.id).unwrap(), 1);
}

async fn disabling_a_user_ends_sessions(db: TestDb) {
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let user = users::create(
        &mut c,
        &NewUser {
            username: "erin",
            ..Default::default()
        },
        None,
        start_time(),
    )
    .unwrap();
    let s = sessions::create(&mut c, &user.id, Default::default(), start_time(), policy()).unwrap();
    users::set_disabled(&mut c, "erin", true, start_time()).unwrap();
    assert!(
        sessions::resolve(&mut c, s.expose(), start_time(), policy())
            .unwrap()
            .is_none()
    );
    assert_eq!(repo::sessions::count_for_user(&mut c, &user.id).unwrap(), 0);
}

async fn throttle_counts_every_failure(db: TestDb) {
    let pool = open_db(&db);
    let now = latchkey::clock::to_db(start_time());
    let cutoff = latchkey::clock::to_db(start_time() - Duration::minutes(15));
    // Concurrent failures from several connections are all counted.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut c = conn(&pool);
                for _ in 0..5 {
                    repo::throttle::record_failure(&mut c, "ip:192.0.2.1", now, cutoff).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = conn(&pool);
    assert_eq!(
        repo::throttle::failures(&mut c, "ip:192.0.2.1", cutoff).unwrap(),
        20
    );
    // Once the window has passed, counting starts again.
    let later = start_time() + Duration::minutes(16);
    let later_cutoff = latchkey::clock::to_db(later - Duration::minutes(15));
    assert_eq!(
        repo::throttle::failures(&mut c, "ip:192.0.2.1", later_cutoff).unwrap(),
        0
    );
    repo::throttle::record_failure(
        &mut c,
        "ip:192.0.2.1",
        latchkey::clock::to_db(later),
        later_cutoff,
    )
    .unwrap();
    assert_eq!(
        repo::throttle::failures(&mut c, "ip:192.0.2.1", later_cutoff).unwrap(),
        1
    );
    repo::throttle::clear(&mut c, "ip:192.0.2.1").unwrap();
    assert_eq!(
        repo::throttle::failures(&mut c, "ip:192.0.2.1", later_cutoff).unwrap(),
        0
    );
}

async fn housekeeping_purges_only_what_expired(db: TestDb) {
    use latchkey::clock::to_db;
    use latchkey::store::models::{CodeRow, GrantRow, RefreshRow};
    let pool = open_db(&db);
    let mut c = conn(&pool);
    let t0 = start_time();
    let user = users::create(
        &mut c,
        &NewUser {
            username: "hk",
            ..Default::default()
        },
        None,
        t0,
    )
    .unwrap();
    let client = clients::create(
        &mut c,
        None,
        &web_client(),
        &latchkey::domain::alg::SigningAlg::ALL,
        t0,
    )
    .unwrap()
    .client
    .client_id;
    let grant = GrantRow {
        id: "g1".into(),
        client_id: client,
        user_id: user.id.clone(),
        scope: "openid".into(),
        auth_time: to_db(t0),
        sid: None,
        created_at: to_db(t0),
        revoked_at: None,
        resource: None,
        amr: None,
    };
    repo::grants::insert_grant(&mut c, &grant).unwrap();
    for (hash, expires) in [
        ("old-code", t0 - Duration::seconds(1)),
        ("live-code", t0 + Duration::seconds(60)),
    ] {
        let row = CodeRow {
            code_hash: hash.into(),
            grant_id: "g1".into(),
            redirect_uri: "https://wiki.example/callback".into(),
            nonce: None,
            code_challenge: None,
            expires_at: to_db(expires),
            used_at: None,
        };
        repo::grants::insert_code(&mut c, &row).unwrap();
    }
    for (hash, expires, approved) in [
        ("old-device-code", t0 - Duration::seconds(1), true),
        ("live-device-code", t0 + Duration::seconds(60), false),
    ] {
        let row = latchkey::store::models::DeviceCodeRow {
            device_code_hash: hash.into(),
            user_code_hash: format!("user-code-of-{hash}"),
            client_id: grant.client_id.clone(),
            scope: "openid".into(),
            resource: None,
            refresh_token_hash: format!("rt-of-{hash}"),
            interval_secs: 5,
            created_at: to_db(t0 - Duration::minutes(10)),
            expires_at: to_db(expires),
            last_polled_at: None,
            grant_id: approved.then(|| "g1".to_owned()),
            denied_at: None,
            redeemed_at: None,
        };
        repo::device_codes::insert(&mut c, &row).unwrap();
    }
    for (hash, expires) in [
        ("old-rt", t0 - Duration::seconds(1)),
        ("live-rt", t0 + Duration::days(1)),
    ] {
        let row = RefreshRow {
            token_hash: hash.into(),
            grant_id: "g1".into(),
            scope: "openid".into(),
            created_at: to_db(t0),
            expires_at: to_db(expires),
            rotated_at: None,
        };
        repo::grants::insert_refresh(&mut c, &row).unwrap();
    }
    repo::revocations::revoke(&mut c, "old-jti", to_db(t0 - Duration::seconds(1))).unwrap();
    repo::revocations::revoke(&mut c, "live-jti", to_db(t0 + Duration::minutes(5))).unwrap();
    let _old = sessions::create(
        &mut c,
        &user.id,
        Default::default(),
        t0 - Duration::hours(9),
        policy(),
    )
    .unwrap();
    let live = sessions::create(&mut c, &user.id, Default::default(), t0, policy()).unwrap();
    let cutoff = to_db(t0 - Duration::minutes(30));
    repo::throttle::record_failure(&mut c, "ip:old", to_db(t0 - Duration::hours(1)), cutoff)
        .unwrap();

    // Ended grants: revoked 31 days ago (gone, with its still-unexpired
    // refresh token), revoked yesterday (kept), started before any family
    // could still be alive (gone).
    for (id, created, revoked) in [
        (
            "g-revoked-long-ago",
            t0 - Duration::days(40),
            Some(t0 - Duration::days(31)),
        ),
        (
            "g-revoked-yesterday",
            t0 - Duration::days(40),
            Some(t0 - Duration::days(1)),
        ),
        ("g-ancient", t0 - Duration::days(121), None),
    ] {
        repo::grants::insert_grant(
            &mut c,
            &GrantRow {
                id: id.into(),
                created_at: to_db(created),
                revoked_at: revoked.map(to_db),
                ..grant.clone()
            },
        )
        .unwrap();
    }
    // Logout tokens: delivered 8 days ago and given up 8 days ago (gone),
    // delivered yesterday and pending (kept).
    let day = |d: i64| Some(to_db(t0 - Duration::days(d)));
    for (id, delivered_at, gave_up_at) in [
        ("lo-delivered-long-ago", day(8), None),
        ("lo-given-up-long-ago", None, day(8)),
        ("lo-delivered-yesterday", day(1), None),
        ("lo-pending", None, None),
    ] {
        repo::logout::insert(
            &mut c,
            &latchkey::store::models::LogoutOutboxRow {
                id: id.into(),
                client_id: grant.client_id.clone(),
                user_id: user.id.clone(),
                sid: "s".into(),
                created_at: to_db(t0 - Duration::days(9)),
                next_attempt_at: to_db(t0 - Duration::days(9)),
                attempts: 1,
                claimed_until: None,
                delivered_at,
                gave_up_at,
                last_error: None,
            },
        )
        .unwrap();
    }
    repo::grants::insert_refresh(
        &mut c,
        &RefreshRow {
            token_hash: "rt-of-revoked".into(),
            grant_id: "g-revoked-long-ago".into(),
            scope: "openid".into(),
            created_at: to_db(t0),
            expires_at: to_db(t0 + Duration::days(1)),
            rotated_at: None,
        },
    )
    .unwrap();

    let purged = latchkey::service::housekeeping::purge(
        &mut c,
        t0,
        policy(),
        Duration::minutes(15),
        Duration::days(90),
    )
    .unwrap();
    assert_eq!(
        purged,
        latchkey::service::housekeeping::Purged {
            sessions: 1,
            throttles: 1,
            codes: 1,
            device_codes: 1,
            refresh_tokens: 1,
            revocations: 1,
            grants: 2,
            logout_tokens: 2,
            personal_access_tokens: 0,
            mfa_challenges: 0,
        }
    );
    for (id, kept) in [
        ("lo-delivered-long-ago", false),
        ("lo-given-up-long-ago", false),
        ("lo-delivered-yesterday", true),
        ("lo-pending", true),
    ] {
        assert_eq!(
            repo::logout::get(&mut c, id).unwrap().is_some(),
            kept,
            "{id}"
        );
    }
    assert!(
        repo::grants::grant(&mut c, "g-revoked-yesterday")
            .unwrap()
            .is_some()
    );
    assert!(
        repo::grants::grant(&mut c, "g-revoked-long-ago")
            .unwrap()
            .is_none()
    );
    assert!(repo::grants::grant(&mut c, "g-ancient").unwrap().is_none());
    assert!(repo::grants::grant(&mut c, "g1").unwrap().is_some());
    // The expired device code went; the grant it led to did not.
    let pending = repo::device_codes::poll_view(&mut c, "live-device-code").unwrap();
    assert!(pending.is_some_and(|(_, grant, user)| grant.is_none() && user.is_none()));
    assert!(
        repo::device_codes::poll_view(&mut c, "old-device-code")
            .unwrap()
            .is_none()
    );
    assert!(
        repo::grants::refresh(&mut c, "rt-of-revoked")
            .unwrap()
            .is_none(),
        "cascade"
    );
    assert!(repo::grants::code(&mut c, "live-code").unwrap().is_some());
    assert!(repo::grants::code(&mut c, "old-code").unwrap().is_none());
    assert!(repo::grants::refresh(&mut c, "live-rt").unwrap().is_some());
    assert!(repo::revocations::is_revoked(&mut c, "live-jti").unwrap());
    assert!(!repo::revocations::is_revoked(&mut c, "old-jti").unwrap());
    assert!(
        sessions::resolve(&mut c, live.expose(), t0, policy())
            .unwrap()
            .is_some()
    );
}

/// Instances starting at once on a fresh database all migrate it: on
/// PostgreSQL they queue on an advisory lock, on SQLite the losers retry.
async fn concurrent_first_migrations_all_succeed(db: TestDb) {
    let url = db.url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let config = common::test_config(&url);
                let pool = latchkey::app::open_pool(&config).expect("pool");
                latchkey::app::migrate(&pool).map(|applied| applied.len())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every instance migrates");
    }
    // Fully migrated, each migration recorded exactly once.
    let pool = open_db(&db);
    let mut c = conn(&pool);
    assert!(migrations::pending(&mut c).unwrap().is_empty());
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations"),
        &mut *c,
    )
    .unwrap();
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(rows[0].n, i64::try_from(embedded).unwrap());
}
