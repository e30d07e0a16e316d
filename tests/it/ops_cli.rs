//! Operations commands of the `latchkey` binary: `check` (the deploy
//! pipeline's gate) and `backup` (an online SQLite copy).

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use diesel::RunQueryDsl;
use latchkey::domain::audit::Actor;

use crate::cli::{Server, run, stderr, stdout};
use crate::common::{self, TestDb};

fn with_db(dir: &Path, url: &str, args: &[&str]) -> Output {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    run(dir, &all)
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        o.status,
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

fn kids(dir: &Path, url: &str) -> Vec<String> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&with_db(dir, url, &["keys", "list", "--json"]))).unwrap();
    list.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// `problems` lines on stderr, each `error: …`, and nothing else.
#[track_caller]
fn problem_lines(o: &Output) -> Vec<String> {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    err.lines()
        .map(|l| {
            l.strip_prefix("error: ")
                .unwrap_or_else(|| panic!("not a problem line: {l:?}"))
                .to_owned()
        })
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

fn applied_versions(db: &latchkey::store::Db) -> Vec<String> {
    let mut c = common::conn(db);
    diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
        .load::<Version>(&mut *c)
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect()
}

async fn check_passes_then_names_each_problem(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = db.url.as_str();

    // A migrated store without keys yet: fine, and nothing is created.
    ok(&with_db(d, url, &["migrate"]));
    let out = ok(&with_db(d, url, &["check"]));
    assert!(out.starts_with("OK ("), "{out}");
    assert!(out.contains("schema up to date"), "{out}");
    assert!(!d.join("keys").exists(), "check must not create the KEK");

    // Keys made: every one decrypts.
    ok(&with_db(d, url, &["keys", "rotate", "--now"]));
    let kids = kids(d, url);
    assert!(!kids.is_empty());
    let out = ok(&with_db(d, url, &["check"]));
    assert_eq!(out.trim().lines().count(), 1, "a short summary: {out}");
    assert!(
        out.contains(&format!("{} signing key(s) decrypt", kids.len())),
        "{out}"
    );

    // A wrong KEK: one line per key, naming it; nothing changed.
    let kek = d.join("keys/latchkey.kek");
    let good = std::fs::read(&kek).unwrap();
    std::fs::write(&kek, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let lines = problem_lines(&with_db(d, url, &["check"]));
    assert_eq!(lines.len(), kids.len(), "{lines:?}");
    for kid in &kids {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(kid) && l.contains("does not decrypt")),
            "{kid} not named in {lines:?}"
        );
    }
    // A KEK from the environment wins over the file, as in `serve`.
    let o = crate::cli::latchkey(d)
        .args(["--database-url", url, "check"])
        .env("LATCHKEY_KEK", "not base64 at all!")
        .output()
        .unwrap();
    let lines = problem_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("LATCHKEY_KEK"), "{lines:?}");

    // A missing KEK with keys stored: said once, with the count.
    std::fs::remove_file(&kek).unwrap();
    let lines = problem_lines(&with_db(d, url, &["check"]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("missing"), "{lines:?}");
    assert!(
        !kek.exists(),
        "check must not create a KEK over stored keys"
    );
    std::fs::write(&kek, &good).unwrap();
    ok(&with_db(d, url, &["check"]));

    // A pending migration (the binary is newer than the schema): named,
    // not applied.
    let pool = common::open_db(&db);
    let before = applied_versions(&pool);
    let newest = before.last().unwrap().clone();
    {
        let mut c = common::conn(&pool);
        diesel::sql_query(format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'"
        ))
        .execute(&mut *c)
        .unwrap();
    }
    let lines = problem_lines(&with_db(d, url, &["check"]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("pending migration") && lines[0].replace('-', "").contains(&newest),
        "{lines:?}"
    );
    assert_eq!(applied_versions(&pool).len(), before.len() - 1, "applied");
    // Problems add up: a pending migration and a wrong KEK, two lines.
    std::fs::write(&kek, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let lines = problem_lines(&with_db(d, url, &["check"]));
    assert_eq!(lines.len(), 1 + kids.len(), "{lines:?}");
}

#[test]
fn check_on_an_unreachable_database_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = with_db(
        d,
        "postgres://postgres:hunter2@127.0.0.1:1/none",
        &["check"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("database.url"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A SQLite path that does not exist is reported, not created.
    let o = with_db(d, "sqlite://nowhere/latchkey.db", &["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!d.join("nowhere").exists());
    assert!(!d.join("keys").exists());
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count_in(db: &latchkey::store::Db, sql: &str) -> i64 {
    let mut c = common::conn(db);
    diesel::sql_query(sql)
        .get_result::<Count>(&mut *c)
        .unwrap()
        .n
}

/// Writes audit rows as fast as it can until stopped; `committed` is how
/// many are in the database for sure.
fn spawn_writer(
    db: latchkey::store::Db,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicI64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let actor = Actor::system();
        while !stop.load(Ordering::SeqCst) {
            let mut c = common::conn(&db);
            let n = committed.load(Ordering::SeqCst);
            latchkey::store::audit::record(
                &mut c,
                &actor,
                "test.write",
                &format!("row-{n}"),
                None,
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
            committed.fetch_add(1, Ordering::SeqCst);
        }
    })
}

#[actix_web::test]
async fn backup_copies_sqlite_while_it_serves_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = TestDb::sqlite();
    let server = Server::start(d, &db.url);
    server.wait_ready().await;

    let pool = common::open_db(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let writer = spawn_writer(pool.clone(), stop.clone(), committed.clone());
    while committed.load(Ordering::SeqCst) < 50 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let floor = committed.load(Ordering::SeqCst);
    let copy = d.join("backup/copy.db");
    std::fs::create_dir_all(d.join("backup")).unwrap();
    let out = ok(&with_db(
        d,
        &db.url,
        &["backup", "--out", copy.to_str().unwrap()],
    ));
    let ceiling = committed.load(Ordering::SeqCst) + 1;
    // The server answered throughout.
    let ready = common::client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(out.contains("key-encryption key"), "{out}");
    assert!(out.contains("never"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The copy opens on its own, whole, with the rows written before it.
    let copy_url = format!("sqlite://{}", copy.display());
    let copy_db = latchkey::app::open_pool(&common::test_config(&copy_url)).unwrap();
    let mut c = common::conn(&copy_db);
    #[derive(diesel::QueryableByName)]
    struct Integrity {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let integrity = diesel::sql_query("PRAGMA integrity_check")
        .get_result::<Integrity>(&mut *c)
        .unwrap();
    assert_eq!(integrity.integrity_check, "ok");
    drop(c);
    let rows = count_in(
        &copy_db,
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'test.write'",
    );
    assert!(
        (floor..=ceiling).contains(&rows),
        "{rows} rows, expected {floor}..={ceiling}"
    );
    // Restored (the copy used as the database), the server's admin and
    // keys are there and the KEK opens them.
    let users = ok(&with_db(d, &copy_url, &["user", "list", "--json"]));
    assert!(users.contains("\"admin\""), "{users}");
    let out = ok(&with_db(d, &copy_url, &["check"]));
    assert!(out.contains("decrypt"), "{out}");

    // Never over an existing file.
    let before = std::fs::read(&copy).unwrap();
    let o = with_db(d, &db.url, &["backup", "--out", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn backup_on_postgres_gives_the_pg_dump_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("pg.copy");
    // Refused before connecting: the URL need not even answer.
    let o = with_db(
        d,
        "postgres://postgres@127.0.0.1:1/none",
        &["backup", "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("pg_dump"), "{}", stderr(&o));
    assert!(!out.exists());
}

async fn register_with(app: &common::TestApp, token: &str) -> reqwest::StatusCode {
    app.http
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "client_name": format!("App {}", uuid::Uuid::new_v4()),
            "redirect_uris": ["https://app.example/cb"],
        }))
        .send()
        .await
        .unwrap()
        .status()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    ok(o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object per line"))
        .collect()
}

async fn registration_tokens_and_audit_lines(db: TestDb) {
    let app = common::TestApp::spawn_on(&db.url, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = db.url.as_str();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);

    let o = with_db(
        d,
        url,
        &[
            "registration",
            "token",
            "create",
            "--max-uses",
            "2",
            "--expires-in",
            "3600",
            "--json",
        ],
    );
    let issued: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(issued["max_uses"], 2);
    let token = issued["initial_access_token"].as_str().unwrap().to_owned();
    assert!(!stderr(&o).contains(&token), "the token is not logged");
    assert_eq!(register_with(&app, &token).await, 201);
    assert_eq!(register_with(&app, &token).await, 201);
    assert_eq!(register_with(&app, &token).await, 401, "two uses only");

    // Bad input: clear error, nothing issued.
    let count = app.count("initial_access_tokens");
    for (args, field) in [
        (vec!["--max-uses", "0"], "max_uses"),
        (vec!["--expires-in", "5"], "expires_in"),
    ] {
        let mut all = vec!["registration", "token", "create"];
        all.extend(args);
        let o = with_db(d, url, &all);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(field), "{}", stderr(&o));
    }
    assert_eq!(app.count("initial_access_tokens"), count);
    // The human form shows the token once, with how to use it.
    let out = ok(&with_db(d, url, &["registration", "token", "create"]));
    assert!(out.contains("/register"), "{out}");

    // The audit log as JSON lines: one object per line, filtered, the
    // CLI as the actor.
    let lines = json_lines(&with_db(
        d,
        url,
        &["audit", "--action", "registration.", "--json"],
    ));
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["action"], "registration.initial_token");
        assert!(l["actor"].as_str().unwrap().starts_with("cli:"), "{l}");
        assert!(l["id"].is_string() && l["at"].is_string(), "{l}");
    }
    // Oldest first from --since; --limit caps; --actor is exact.
    let since = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let all = json_lines(&with_db(d, url, &["audit", "--since", &since, "--json"]));
    assert!(all.len() >= 4, "{all:?}");
    let ats: Vec<String> = all
        .iter()
        .map(|l| l["at"].as_str().unwrap().to_owned())
        .collect();
    let parsed: Vec<time::OffsetDateTime> = ats
        .iter()
        .map(|a| {
            time::OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).unwrap()
        })
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {ats:?}"
    );
    let first = json_lines(&with_db(
        d,
        url,
        &["audit", "--since", &since, "--limit", "1", "--json"],
    ));
    assert_eq!(first, all[..1].to_vec());
    let actor = lines[0]["actor"].as_str().unwrap();
    let mine = json_lines(&with_db(d, url, &["audit", "--actor", actor, "--json"]));
    assert!(mine.iter().all(|l| l["actor"] == actor), "{mine:?}");
    assert!(json_lines(&with_db(d, url, &["audit", "--actor", "nobody", "--json"])).is_empty());
    let o = with_db(d, url, &["audit", "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("since"), "{}", stderr(&o));
    // People get a table.
    let table = ok(&with_db(d, url, &["audit", "--action", "registration."]));
    assert!(table.starts_with("AT"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}

dual_backend!(
    check_passes_then_names_each_problem,
    registration_tokens_and_audit_lines
);

/// What `deploy/latchkey.service` and the Dockerfile rely on: the server
/// and the CLI run with a working directory they never write to, given
/// absolute data and key paths. (As root the mode alone would not stop a
/// write, so the directory is also checked to stay empty.)
#[actix_web::test]
async fn serves_from_a_read_only_working_directory() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("ro");
    let data = root.path().join("data");
    let keys = root.path().join("keys");
    for d in [&cwd, &data, &keys] {
        std::fs::create_dir(d).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let db_url = format!("sqlite://{}", data.join("latchkey.db").display());
    let kek = keys.join("latchkey.kek");
    let kek_env = kek.display().to_string();
    let env = [("LATCHKEY_KEYS__KEK_FILE", kek_env.as_str())];
    let server = Server::start_with(&cwd, &db_url, &env);
    server.wait_ready().await;
    let jwks = common::client()
        .get(format!("{}/jwks", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    let o = crate::cli::latchkey(&cwd)
        .envs(env)
        .args(["--database-url", &db_url, "check"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(kek.exists() && data.join("latchkey.db").exists());
    let written: Vec<_> = std::fs::read_dir(&cwd).unwrap().collect();
    assert!(
        written.is_empty(),
        "wrote into the working directory: {written:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
