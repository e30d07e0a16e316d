//! Faults: `latchkey serve` killed with SIGKILL in the middle of a load of
//! code exchanges and refresh chains, then started again on the same
//! database. Every transaction either happened or did not: no refresh family
//! is left half-rotated (more than one live token), no family is revoked by
//! a crash, and every client can go on with the last token it received
//! (a rotation it never heard of is replayed inside the grace window and
//! answers with the same successor). SQLite and PostgreSQL.
//!
//! And SQLite on a full disk (a small tmpfs; needs root, as CI has).

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

/// A tmpfs of `size` mounted for one test, unmounted when dropped. Needs
/// root (CI runs as root); elsewhere `None`.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        // The server's pool may still hold the database open: detach the
        // mount now, the kernel frees it when the last file closes.
        if !unmounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Fills the file system under `dir` until a write fails.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).and_then(|()| f.flush()).is_ok() {}
    // The last partial chunk too.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
    path
}

/// SQLite on a full disk: writes answer 503 with Retry-After (never a 500
/// or a panic), reads still answer, writes work again once space is freed,
/// and the database file is intact.
#[actix_web::test]
async fn sqlite_on_a_full_disk_answers_503_and_recovers() {
    let Some(disk) = Tmpfs::mount("8m") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI runs as root: the full-disk test must run"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("latchkey.db").display());
    let app = crate::common::TestApp::spawn_on(&url, |_| {}).await;
    crate::common::fixtures::user(&app, "alice");
    let rp = crate::common::fixtures::client("Full disk RP")
        .redirect(CALLBACK)
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token"])
        .first_party(true)
        .create(&app);
    let browser = crate::common::fixtures::signed_in(&app, "alice").await;
    let (_, tokens) = common::code_flow(
        &app,
        &browser,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let token = tokens.expect("tokens")["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let rp = Rp {
        id: rp.id.clone(),
        secret: rp.secret().to_owned(),
    };

    // Empty the WAL (so the next write must grow a file), then fill the disk.
    {
        let mut c = common::conn(&app.db);
        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *c)
            .expect("checkpoint");
    }
    let filler = fill(disk.path());

    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = common::login_at(&app.new_browser(), &app.base, "alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "sign-in writes a session"
    );
    assert!(r.headers().contains_key("retry-after"));
    let r = app.http.get(app.url("/jwks")).send().await.expect("jwks");
    assert_eq!(r.status(), StatusCode::OK, "reads still answer");

    // Space again: the same refresh token works (nothing was half written).
    std::fs::remove_file(&filler).expect("free space");
    let http = common::client();
    match refresh(&http, &app.base, &rp, &token).await {
        Outcome::Ok(_) => {}
        Outcome::Gone => panic!("no answer"),
        Outcome::Refused(s, b) => panic!("after freeing space: {s} {b}"),
    }
    let r = common::login_at(&app.new_browser(), &app.base, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut c = common::conn(&app.db);
    let check = diesel::sql_query("PRAGMA integrity_check")
        .get_result::<Check>(&mut *c)
        .expect("integrity check");
    assert_eq!(check.integrity_check, "ok");
    drop(c);
    drop(app);
}

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
