//! The `latchkey` binary: config errors, user and client commands, and
//! `serve` (bootstrap, sign-in of CLI-made users, restart on the same DB).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, TestDb};

pub(crate) fn latchkey(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    latchkey(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub(crate) fn run_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = latchkey(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn assert_clean_failure(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear message: {err}");
}

#[test]
fn config_errors_name_the_setting_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_clean_failure(
        &run(d, &["--config", "missing.toml", "user", "list"]),
        2,
        "missing.toml",
    );

    std::fs::write(
        d.join("latchkey.toml"),
        "issuer = \"http://id.example.com\"\n",
    )
    .unwrap();
    assert_clean_failure(&run(d, &["user", "list"]), 2, "issuer");

    std::fs::write(d.join("latchkey.toml"), "[server]\nbnd = \"x\"\n").unwrap();
    assert_clean_failure(&run(d, &["user", "list"]), 2, "bnd");

    std::fs::write(
        d.join("latchkey.toml"),
        "[database]\npool_max_size = \"many\"\n",
    )
    .unwrap();
    assert_clean_failure(&run(d, &["user", "list"]), 2, "pool_max_size");
    std::fs::remove_file(d.join("latchkey.toml")).unwrap();

    let o = latchkey(d)
        .args(["user", "list"])
        .env("LATCHKEY_DATABASE__POOL_MAX_SIZE", "0")
        .output()
        .unwrap();
    assert_clean_failure(&o, 2, "database.pool_max_size");

    assert_clean_failure(
        &run(d, &["--database-url", "mysql://u:pw@h/db", "user", "list"]),
        2,
        "database.url",
    );
    let o = run(
        d,
        &[
            "--database-url",
            "postgres://postgres:secret@127.0.0.1:1/none",
            "user",
            "list",
        ],
    );
    assert_clean_failure(&o, 2, "database.url");
    assert!(
        !stderr(&o).contains("secret"),
        "password leaked: {}",
        stderr(&o)
    );

    assert_clean_failure(
        &run(d, &["serve", "--issuer", "http://example.com"]),
        2,
        "issuer",
    );
    assert_clean_failure(&run(d, &["serve", "--bind", "nowhere"]), 2, "server.bind");
    // Nothing was created by any of the failed runs.
    assert!(!d.join("data").exists());
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["check", "--help"],
        vec!["backup", "--help"],
        vec!["audit", "--help"],
        vec!["registration", "token", "create", "--help"],
        vec!["user", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "set-password", "--help"],
        vec!["client", "--help"],
        vec!["client", "add", "--help"],
        vec!["client", "update", "--help"],
        vec!["client", "rotate-secret", "--help"],
        vec!["group", "--help"],
        vec!["scope", "add", "--help"],
    ] {
        let o = run(dir.path(), &args);
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn user_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(d, &["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        d.join("data/latchkey.db").exists(),
        "SQLite file under data/"
    );

    let o = run_stdin(
        d,
        &[
            "user",
            "add",
            "--username",
            "Ada",
            "--email",
            "ada@example.com",
            "--name",
            "Ada L",
            "--password-stdin",
            "--json",
        ],
        "correct horse battery\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let user: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(user["username"], "ada");
    assert_eq!(user["has_password"], true);
    assert!(!stdout(&o).contains("correct horse"));

    let o = run_stdin(
        d,
        &["user", "add", "--username", "ada", "--password-stdin"],
        "another password\n",
    );
    assert_clean_failure(&o, 1, "already taken");
    let o = run_stdin(
        d,
        &["user", "add", "--username", "bad name", "--password-stdin"],
        "another password\n",
    );
    assert_clean_failure(&o, 1, "username");
    let o = run_stdin(
        d,
        &["user", "add", "--username", "bob", "--password-stdin"],
        "short\n",
    );
    assert_clean_failure(&o, 1, "password");

    let o = run(d, &["user", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "failed adds changed nothing"
    );
    assert!(stdout(&run(d, &["user", "list"])).contains("ada@example.com"));

    let o = run(d, &["user", "show", "ada", "--json"]);
    assert!(!stdout(&o).contains("argon2"), "hash never shown");
    assert_clean_failure(&run(d, &["user", "show", "nobody"]), 1, "not found");

    let o = run_stdin(
        d,
        &["user", "set-password", "ada", "--password-stdin"],
        "a new password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run(d, &["user", "disable", "ada"]).status.success());
    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&run(d, &["user", "show", "ada", "--json"]))).unwrap();
    assert_eq!(shown["disabled"], true);
    assert!(run(d, &["user", "enable", "ada"]).status.success());
    assert!(run(d, &["user", "delete", "ada"]).status.success());
    assert_clean_failure(&run(d, &["user", "delete", "ada"]), 1, "not found");
}

#[test]
fn client_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(
        d,
        &[
            "client",
            "add",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example/cb",
            "--scope",
            "openid",
            "--scope",
            "profile email",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(
        c["scopes"],
        serde_json::json!(["email", "openid", "profile"])
    );

    let shown = stdout(&run(d, &["client", "show", &id, "--json"]));
    assert!(!shown.contains(&secret), "secret shown only once");
    assert!(!shown.contains("secret"), "{shown}");

    let o = run(
        d,
        &[
            "client",
            "add",
            "--name",
            "CLI",
            "--client-id",
            "git-helper",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--json",
        ],
    );
    let c: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        c.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_clean_failure(
        &run(
            d,
            &[
                "client",
                "add",
                "--name",
                "Again",
                "--client-id",
                "git-helper",
                "--redirect-uri",
                "https://a.example/cb",
            ],
        ),
        1,
        "already registered",
    );
    assert_clean_failure(
        &run(
            d,
            &[
                "client",
                "add",
                "--name",
                "Evil",
                "--redirect-uri",
                "javascript:alert(1)",
            ],
        ),
        1,
        "redirect_uri",
    );
    assert_clean_failure(
        &run(
            d,
            &[
                "client",
                "add",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--grant-type",
                "hybrid",
            ],
        ),
        1,
        "grant",
    );
    // The legacy password grant is an admin's choice, for confidential
    // clients only.
    assert_clean_failure(
        &run(
            d,
            &[
                "client",
                "add",
                "--name",
                "X",
                "--public",
                "--grant-type",
                "password",
            ],
        ),
        1,
        "confidential",
    );
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&run(d, &["client", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let o = run(
        d,
        &[
            "client",
            "add",
            "--name",
            "Old intranet",
            "--grant-type",
            "password",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let old: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(old["grant_types"], serde_json::json!(["password"]));

    let o = run(d, &["client", "rotate-secret", &id, "--json"]);
    let rotated: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    assert_clean_failure(
        &run(d, &["client", "rotate-secret", "git-helper"]),
        1,
        "public",
    );

    let o = run(
        d,
        &[
            "client",
            "update",
            &id,
            "--name",
            "Wiki 2",
            "--first-party",
            "true",
            "--json",
        ],
    );
    let updated: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(updated["name"], "Wiki 2");
    assert_eq!(updated["first_party"], true);
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://wiki.example/cb"])
    );

    assert!(run(d, &["client", "delete", &id]).status.success());
    assert_clean_failure(&run(d, &["client", "show", &id]), 1, "not found");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `latchkey serve` as a separate process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(dir: &Path, db_url: &str) -> Server {
        Self::start_with(dir, db_url, &[])
    }

    /// With extra `LATCHKEY_*` settings in the environment.
    pub(crate) fn start_with(dir: &Path, db_url: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let child = latchkey(dir)
            .envs(env.iter().copied())
            .args([
                "--database-url",
                db_url,
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--issuer",
                &base,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Server { child, base }
    }

    pub(crate) async fn wait_ready(&self) {
        let http = common::client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status and everything written to stderr.
    pub(crate) fn stop(self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let out = self.child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn sign_in(base: &str, username: &str, password: &str) -> reqwest::StatusCode {
    common::login_at(&common::client(), base, username, password)
        .await
        .status()
}

async fn serve_bootstraps_and_restarts_cleanly(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d, &db.url);
    server.wait_ready().await;

    // A user made with the CLI while the server runs can sign in.
    let o = run_stdin(
        d,
        &[
            "--database-url",
            &db.url,
            "user",
            "add",
            "--username",
            "eve",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        sign_in(&server.base, "eve", "correct horse battery").await,
        303
    );
    assert_eq!(sign_in(&server.base, "eve", "wrong password").await, 401);

    let (status, log) = server.stop();
    assert!(
        status.success(),
        "graceful stop on SIGTERM: {status:?}\n{log}"
    );
    let password = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("first start prints the admin password")
        .to_owned();

    // Second start on the same database: no new admin, no migration errors.
    let server = Server::start(d, &db.url);
    server.wait_ready().await;
    assert_eq!(sign_in(&server.base, "admin", &password).await, 303);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("password:"), "bootstrap runs once: {log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[actix_web::test]
async fn serve_twice_on_sqlite() {
    serve_bootstraps_and_restarts_cleanly(TestDb::sqlite()).await
}

#[actix_web::test]
#[cfg_attr(
    not(latchkey_pg),
    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
)]
async fn serve_twice_on_postgres() {
    serve_bootstraps_and_restarts_cleanly(TestDb::postgres()).await
}

#[test]
fn admin_password_from_env_is_used_and_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Migrate first, so the polling below only reads while serve starts.
    let o = run(d, &["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let port = free_port();
    let child = latchkey(d)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("LATCHKEY_ADMIN_PASSWORD", "from the environment")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the bootstrap itself (it runs before the bind), not for the
    // port: a port picked as free may be taken by a parallel test, and then
    // another test's server would answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    let admin = loop {
        let o = run(d, &["user", "show", "admin", "--json"]);
        if o.status.success() {
            break serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap();
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve exited early: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "no admin after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(admin["is_admin"], true);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("from the environment"), "{err}");
    assert!(!err.contains("password: "), "{err}");
}

#[test]
fn keys_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys_json = |d: &Path| -> Vec<serde_json::Value> {
        let o = run(d, &["keys", "list", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    // Rotating on an empty store creates the KEK (mode 0600) and a next key.
    let o = run(d, &["keys", "rotate", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let kek = d.join("keys/latchkey.kek");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first = keys_json(d);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["state"], "next");
    let kid = first[0]["kid"].as_str().unwrap().to_owned();
    assert!(stdout(&run(d, &["keys", "list"])).contains(&kid));

    // Export: public JWK to stdout, private PEM to a 0600 file.
    let o = run(d, &["keys", "export", &kid]);
    let public: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(public["kid"], kid.as_str());
    assert!(public.get("d").is_none());
    let pem = d.join("exported.pem");
    let o = run(
        d,
        &[
            "keys",
            "export",
            &kid,
            "--private",
            "--format",
            "pem",
            "--out",
            pem.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Import it back as a new key that signs at once.
    let o = run(
        d,
        &[
            "keys",
            "import",
            pem.to_str().unwrap(),
            "--alg",
            "RS256",
            "--now",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let imported: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let keys = keys_json(d);
    let state_of = |kid: &str| keys.iter().find(|k| k["kid"] == kid).unwrap()["state"].clone();
    assert_eq!(state_of(imported["kid"].as_str().unwrap()), "active");

    // Bad input: clear error, non-zero exit, store unchanged.
    let count = keys_json(d).len();
    std::fs::write(
        d.join("corrupt.pem"),
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_clean_failure(
        &run(d, &["keys", "import", "corrupt.pem", "--alg", "RS256"]),
        1,
        "corrupt.pem",
    );
    assert_clean_failure(
        &run(
            d,
            &["keys", "import", pem.to_str().unwrap(), "--alg", "ES256"],
        ),
        1,
        "ES256",
    );
    assert_clean_failure(
        &run(d, &["keys", "import", "missing.pem", "--alg", "RS256"]),
        1,
        "missing.pem",
    );
    let o = run(d, &["keys", "rotate", "--alg", "HS256"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unsupported signing algorithm"),
        "{}",
        stderr(&o)
    );
    assert_clean_failure(
        &run(d, &["keys", "retire", "no-such-kid"]),
        1,
        "no-such-kid",
    );
    assert_clean_failure(
        &run(d, &["keys", "revoke", "no-such-kid"]),
        1,
        "no-such-kid",
    );
    assert_eq!(keys_json(d).len(), count);

    // A wrong KEK is a clear error, and nothing is regenerated over it.
    std::fs::write(&kek, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    assert_clean_failure(
        &run(d, &["keys", "export", &kid, "--private"]),
        2,
        "does not decrypt",
    );
    std::fs::remove_file(&kek).unwrap();
    assert_clean_failure(&run(d, &["keys", "rotate"]), 2, "missing");
    assert!(!kek.exists());
    assert_clean_failure(&run(d, &["serve"]), 2, "missing");
}

#[actix_web::test]
async fn sighup_reloads_keys_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db_url = format!("sqlite://{}", d.join("lk.db").display());
    let server = Server::start(d, &db_url);
    server.wait_ready().await;
    let o = run(
        d,
        &[
            "--database-url",
            &db_url,
            "keys",
            "rotate",
            "--now",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let created: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kid = created[0]["kid"].as_str().unwrap().to_owned();
    let jwks_url = format!("{}/jwks", server.base);
    let http = common::client();
    assert!(
        !http
            .get(&jwks_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains(&kid)
    );
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    // Well inside the 30 s reload interval.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !http
        .get(&jwks_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains(&kid)
    {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the keys");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, log) = server.stop();
    assert!(status.success(), "SIGHUP must not stop the server: {log}");
}

#[test]
fn group_and_scope_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |o: &Output| assert!(o.status.success(), "{}", stderr(o));
    ok(&run(d, &["migrate"]));
    let add_scope = [
        "scope",
        "add",
        "read:payroll",
        "--description",
        "Read payroll",
        "--group",
        "finance",
    ];
    assert_clean_failure(&run(d, &add_scope), 1, "finance");
    ok(&run(d, &["group", "add", "finance"]));
    assert_clean_failure(&run(d, &["group", "add", "finance"]), 1, "already exists");
    assert_clean_failure(&run(d, &["group", "add", "bad name"]), 1, "group");
    ok(&run(d, &add_scope));
    assert_clean_failure(
        &run(d, &["scope", "add", "openid", "--description", "x"]),
        1,
        "built-in",
    );
    ok(&run_stdin(
        d,
        &["user", "add", "--username", "ada", "--password-stdin"],
        "correct horse battery\n",
    ));
    ok(&run(
        d,
        &["group", "set-user-groups", "ada", "--group", "finance"],
    ));
    let members: Vec<String> =
        serde_json::from_str(&stdout(&run(d, &["group", "members", "finance", "--json"]))).unwrap();
    assert_eq!(members, ["ada"]);

    assert_clean_failure(
        &run(
            d,
            &[
                "client",
                "add",
                "--name",
                "HR",
                "--redirect-uri",
                "https://hr.example/cb",
                "--scope",
                "openid read:salaries",
            ],
        ),
        1,
        "unknown scope",
    );
    ok(&run(
        d,
        &[
            "client",
            "add",
            "--name",
            "HR",
            "--redirect-uri",
            "https://hr.example/cb",
            "--scope",
            "openid read:payroll",
        ],
    ));
    assert_clean_failure(&run(d, &["scope", "delete", "read:payroll"]), 1, "HR");
    let scopes: serde_json::Value =
        serde_json::from_str(&stdout(&run(d, &["scope", "list", "--json"]))).unwrap();
    let payroll = scopes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "read:payroll")
        .unwrap();
    assert_eq!(payroll["groups"], serde_json::json!(["finance"]));
    assert_eq!(payroll["builtin"], false);
    ok(&run(d, &["group", "rename", "finance", "payroll-team"]));
    // The scope is limited to this group alone: deleting it would open
    // the scope to everyone, so it is refused until the scope changes.
    assert_clean_failure(
        &run(d, &["group", "delete", "payroll-team"]),
        1,
        "read:payroll",
    );
    ok(&run(d, &["group", "add", "auditors"]));
    ok(&run(
        d,
        &[
            "scope",
            "update",
            "read:payroll",
            "--description",
            "Read payroll",
            "--group",
            "payroll-team",
            "--group",
            "auditors",
        ],
    ));
    ok(&run(d, &["group", "delete", "payroll-team"]));
    assert_clean_failure(&run(d, &["group", "delete", "auditors"]), 1, "read:payroll");
    let groups: serde_json::Value =
        serde_json::from_str(&stdout(&run(d, &["group", "list", "--json"]))).unwrap();
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auditors"]);
}
