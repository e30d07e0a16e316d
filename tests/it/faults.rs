//! Faults: `latchkey serve` killed with SIGKILL in the middle of a load of
//! code exchanges and refresh chains, then started again on the same
//! database. Every transaction either happened or did not: no refresh family
//! is left half-rotated (more than one live token), no family is revoked by
//! a crash, and every client can go on with the last token it received
//! (a rotation it never heard of is replayed inside the grace window and
//! answers with the same successor). SQLite and PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::RunQueryDsl;
use latchkey::domain::alg::SigningAlg;
use latchkey::domain::client::ClientInput;
use latchkey::service::{clients, users};
use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::Server;
use crate::common::{self, PKCE_CHALLENGE, PKCE_VERIFIER, TestDb};

const CALLBACK: &str = "https://rp.example/cb";
const PASSWORD: &str = "correct horse battery";

dual_backend!(sigkill_mid_load_loses_no_grant_and_leaves_no_family_half_rotated);

#[derive(Clone)]
struct Rp {
    id: String,
    secret: String,
}

/// What one request of the load ended in.
enum Outcome {
    Ok(String),
    /// The server went away (the kill): the request may or may not have
    /// been carried out.
    Gone,
    Refused(StatusCode, Value),
}

async fn refresh(http: &reqwest::Client, base: &str, rp: &Rp, token: &str) -> Outcome {
    let sent = http
        .post(format!("{base}/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await;
    let Ok(r) = sent else {
        return Outcome::Gone;
    };
    let status = r.status();
    match r.json::<Value>().await {
        Ok(body) if status == StatusCode::OK => match body["refresh_token"].as_str() {
            Some(t) => Outcome::Ok(t.to_owned()),
            None => Outcome::Refused(status, body),
        },
        Ok(body) => Outcome::Refused(status, body),
        Err(_) => Outcome::Gone,
    }
}

/// A new family: `/authorize` in the signed-in browser, then the code at
/// `/token`.
async fn exchange(browser: &reqwest::Client, base: &str, rp: &Rp) -> Outcome {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid offline_access"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("url");
    let Ok(r) = browser.get(url).send().await else {
        return Outcome::Gone;
    };
    let code = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        });
    let Some(code) = code else {
        return Outcome::Refused(r.status(), Value::Null);
    };
    let sent = browser
        .post(format!("{base}/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", PKCE_VERIFIER),
        ])
        .send()
        .await;
    let Ok(r) = sent else {
        return Outcome::Gone;
    };
    let status = r.status();
    match r.json::<Value>().await {
        Ok(body) if status == StatusCode::OK => match body["refresh_token"].as_str() {
            Some(t) => Outcome::Ok(t.to_owned()),
            None => Outcome::Refused(status, body),
        },
        Ok(body) => Outcome::Refused(status, body),
        Err(_) => Outcome::Gone,
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(db: &latchkey::store::Db, sql: &str) -> i64 {
    let mut c = common::conn(db);
    diesel::sql_query(sql)
        .get_result::<Count>(&mut *c)
        .expect("count")
        .n
}

async fn sigkill_mid_load_loses_no_grant_and_leaves_no_family_half_rotated(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("LATCHKEY_TOKENS__REFRESH_REUSE_GRACE_SECS", "30"),
        ("LATCHKEY_LOG__LEVEL", "warn"),
    ];
    let server = Server::start_with(dir.path(), &db.url, &env);
    server.wait_ready().await;
    let base = server.base.clone();

    let pool = common::open_db(&db);
    let rp = {
        let mut c = common::conn(&pool);
        users::create(
            &mut c,
            &users::NewUser {
                username: "alice",
                ..Default::default()
            },
            Some(PASSWORD),
            time::OffsetDateTime::now_utc(),
        )
        .expect("user");
        let issued = clients::create(
            &mut c,
            None,
            &ClientInput {
                name: "Crash RP".into(),
                redirect_uris: vec![CALLBACK.into()],
                scopes: vec!["openid offline_access".into()],
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                first_party: true,
                ..Default::default()
            },
            &SigningAlg::ALL,
            time::OffsetDateTime::now_utc(),
        )
        .expect("client");
        Rp {
            id: issued.client.client_id,
            secret: issued.client_secret.expect("secret"),
        }
    };
    let browser = common::client();
    let r = common::login_at(&browser, &base, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The load: 8 refresh chains and 2 loops of code exchanges, each
    // remembering the last refresh token it was given.
    let mut heads = Vec::new();
    for _ in 0..8 {
        match exchange(&browser, &base, &rp).await {
            Outcome::Ok(t) => heads.push(t),
            _ => panic!("setup exchange failed"),
        }
    }
    let known: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let refused: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut load = tokio::task::JoinSet::new();
    for head in heads {
        let (base, rp, known, refused) = (base.clone(), rp.clone(), known.clone(), refused.clone());
        load.spawn_local(async move {
            let http = common::client();
            let mut token = head;
            loop {
                match refresh(&http, &base, &rp, &token).await {
                    Outcome::Ok(next) => token = next,
                    Outcome::Gone => break,
                    Outcome::Refused(s, b) => {
                        refused
                            .lock()
                            .expect("lock")
                            .push(format!("refresh {s}: {b}"));
                        break;
                    }
                }
            }
            known.lock().expect("lock").push(token);
        });
    }
    for _ in 0..2 {
        let (base, rp, known, refused) = (base.clone(), rp.clone(), known.clone(), refused.clone());
        let browser = browser.clone();
        load.spawn_local(async move {
            loop {
                match exchange(&browser, &base, &rp).await {
                    Outcome::Ok(t) => known.lock().expect("lock").push(t),
                    Outcome::Gone => break,
                    Outcome::Refused(s, b) => {
                        refused
                            .lock()
                            .expect("lock")
                            .push(format!("exchange {s}: {b}"));
                        break;
                    }
                }
            }
        });
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut child = server.child;
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    let _ = child.wait();
    while load.join_next().await.is_some() {}
    let refused = refused.lock().expect("lock").clone();
    assert!(refused.is_empty(), "answers before the kill: {refused:?}");

    // Nothing half done in the database.
    let split = count(
        &pool,
        "SELECT COUNT(*) AS n FROM (SELECT grant_id FROM refresh_tokens \
         WHERE rotated_at IS NULL GROUP BY grant_id HAVING COUNT(*) > 1) AS t",
    );
    assert_eq!(split, 0, "a family with two live refresh tokens");
    let revoked = count(
        &pool,
        "SELECT COUNT(*) AS n FROM grants WHERE revoked_at IS NOT NULL",
    );
    assert_eq!(revoked, 0, "the crash revoked a family");
    let rotations = count(
        &pool,
        "SELECT COUNT(*) AS n FROM refresh_tokens WHERE rotated_at IS NOT NULL",
    );
    assert!(
        rotations > 8,
        "the load did some work before the kill: {rotations}"
    );

    // Started again: every client goes on with the last token it had.
    let server = Server::start_with(dir.path(), &db.url, &env);
    server.wait_ready().await;
    let known = known.lock().expect("lock").clone();
    assert!(known.len() >= 8);
    let http = common::client();
    for token in &known {
        match refresh(&http, &server.base, &rp, token).await {
            Outcome::Ok(_) => {}
            Outcome::Gone => panic!("the restarted server went away"),
            Outcome::Refused(s, b) => panic!("a grant was lost: {s} {b}"),
        }
    }
    let live_families = count(
        &pool,
        "SELECT COUNT(DISTINCT grant_id) AS n FROM refresh_tokens WHERE rotated_at IS NULL",
    );
    assert!(live_families >= known.len() as i64);
    let split = count(
        &pool,
        "SELECT COUNT(*) AS n FROM (SELECT grant_id FROM refresh_tokens \
         WHERE rotated_at IS NULL GROUP BY grant_id HAVING COUNT(*) > 1) AS t",
    );
    assert_eq!(split, 0);
    let mut child = server.child;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
