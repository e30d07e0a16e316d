//! Test harness: a fresh database per test (a temp SQLite file, or its own
//! PostgreSQL schema), and `TestApp`, a real server on port 0 with a manual
//! clock and a cookie-keeping HTTP client.
#![allow(dead_code)]

pub mod fixtures;
pub mod proxy;

use std::net::TcpListener;
use std::sync::Arc;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use latchkey::app::{self, Application};
use latchkey::clock::{ManualClock, SharedClock};
use latchkey::config::Config;
use latchkey::service::users::{self, NewUser};
use latchkey::state::AppState;
use latchkey::store::{Db, DbConn};
use time::OffsetDateTime;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs each named async test function once per backend. The PostgreSQL
/// copies are ignored (with the reason shown) unless the suite is enabled,
/// see build.rs.
#[macro_export]
macro_rules! dual_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::common::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(
                    not(latchkey_pg),
                    ignore = "PostgreSQL suite skipped: set LATCHKEY_TEST_POSTGRES_URL (CI=true uses the local server)"
                )]
                async fn $name() {
                    super::$name($crate::common::TestDb::postgres()).await
                }
            )*
        }
    };
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

pub fn pg_base_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// Appends libpq's `options` parameter that puts `schema` first on the
/// search path, so migrations and queries stay inside it.
pub fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        Self {
            url,
            _dir: Some(dir),
            pg_cleanup: None,
        }
    }

    /// A fresh schema on the test PostgreSQL server. Panics (fails the
    /// test) when the server is unreachable: the suite is mandatory once
    /// enabled.
    pub fn postgres() -> Self {
        let base = pg_base_url();
        let schema = format!("lk_{}", uuid::Uuid::new_v4().simple());
        latchkey::store::init_openssl();
        let mut conn = diesel::PgConnection::establish(&base)
            .unwrap_or_else(|e| panic!("PostgreSQL test server unreachable at {base}: {e}"));
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create test schema");
        Self {
            url: with_search_path(&base, &schema),
            _dir: None,
            pg_cleanup: Some((base, schema)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_cleanup.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg_cleanup
            && let Ok(mut conn) = diesel::PgConnection::establish(base)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// A config for tests: the given database, fast pool timeouts.
pub fn test_config(db_url: &str) -> Config {
    let mut config = Config::default();
    config.database.url = db_url.to_owned();
    config.database.connect_timeout_secs = 2;
    config.database.pool_max_size = 4;
    config.server.workers = 1;
    // Tests reload keys themselves (`TestApp::refresh_keys`); a background
    // reload in the middle of a slow test would race their assertions.
    config.keys.reload_interval_secs = 3000;
    config.server.shutdown_timeout_secs = 1;
    config
}

/// Opens (and migrates) a pool on a test database.
pub fn open_db(db: &TestDb) -> Db {
    let config = test_config(&db.url);
    app::open_database(&config).expect("open test database")
}

pub fn conn(db: &Db) -> latchkey::store::PooledConn {
    db.get().expect("connection")
}

/// The manual clock's start: the real time at the test's first use, whole
/// seconds (relying-party libraries check token times against the real
/// clock). Kept per test thread: all the tests share one process, and a
/// start taken when the suite began would fall further behind the real
/// clock the longer the suite runs.
pub fn start_time() -> OffsetDateTime {
    thread_local! {
        static START: std::cell::OnceCell<i64> = const { std::cell::OnceCell::new() };
    }
    let secs = START.with(|s| *s.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp()));
    OffsetDateTime::from_unix_timestamp(secs).expect("time")
}

pub struct TestApp {
    pub base: String,
    pub db: Db,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub config: Config,
    pub keys: latchkey::keys::KeyStore,
    /// Owns the database (dropped with the app) unless the app shares one.
    pub test_db: Option<TestDb>,
    pub kek_dir: Option<tempfile::TempDir>,
    /// The metrics listener's port (`metrics.bind`), when it runs.
    pub metrics_port: Option<u16>,
    /// The running server, until [`TestApp::stop`].
    running: Option<(
        actix_web::dev::ServerHandle,
        actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    )>,
}

impl TestApp {
    pub async fn spawn(test_db: TestDb) -> Self {
        Self::spawn_with(test_db, |_| {}).await
    }

    pub async fn spawn_with(test_db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let url = test_db.url.clone();
        let mut app = Self::spawn_on(&url, tweak).await;
        app.test_db = Some(test_db);
        app
    }

    /// An app on a database it does not own (e.g. a second instance).
    pub async fn spawn_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut config = test_config(db_url);
        config.issuer = format!("http://127.0.0.1:{port}");
        let kek_dir = tempfile::tempdir().expect("tempdir");
        config.keys.kek_file = kek_dir.path().join("latchkey.kek").display().to_string();
        tweak(&mut config);
        let config = config.validate().expect("valid test config");
        let db = app::open_database(&config).expect("open test database");
        let clock = ManualClock::new(start_time());
        let shared: SharedClock = Arc::new(clock.clone());
        let keys = {
            let mut c = conn(&db);
            latchkey::keys::KeyStore::open(&mut c, &config, start_time()).expect("key store")
        };
        let state = AppState::new(Arc::new(config.clone()), db.clone(), shared, keys.clone())
            .expect("state");
        let app = Application::build(state, listener).expect("build app");
        let metrics_port = app.metrics_port();
        let handle = app.handle();
        let task = actix_web::rt::spawn(app.run_until_stopped());
        Self {
            base: format!("http://127.0.0.1:{port}"),
            db,
            clock,
            http: client(),
            config,
            keys,
            test_db: None,
            kek_dir: Some(kek_dir),
            metrics_port,
            running: Some((handle, task)),
        }
    }

    /// Stops the instance as SIGTERM would: the server, then its
    /// background work (logout deliveries in flight finish first).
    pub async fn stop(&mut self) {
        if let Some((handle, task)) = self.running.take() {
            handle.stop(true).await;
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A second browser: its own cookie jar.
    pub fn new_browser(&self) -> reqwest::Client {
        client()
    }

    pub fn create_user(&self, username: &str, password: &str) -> users::UserView {
        let mut c = conn(&self.db);
        users::create(
            &mut c,
            &NewUser {
                username,
                ..Default::default()
            },
            Some(password),
            self.clock_now(),
        )
        .expect("create user")
    }

    pub fn clock_now(&self) -> OffsetDateTime {
        use latchkey::clock::Clock;
        self.clock.now()
    }

    /// Opens the login page in `browser` and returns the form's CSRF token.
    pub async fn login_form_token(&self, browser: &reqwest::Client) -> String {
        login_form_token_at(browser, &self.base).await
    }

    /// Signs in through the login form.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        login_at(browser, &self.base, username, password).await
    }

    /// Posts the login form with a given CSRF token (None: field left out).
    pub async fn post_login(
        &self,
        browser: &reqwest::Client,
        token: Option<&str>,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        post_login_at(browser, &self.base, token, username, password).await
    }

    pub async fn home_html(&self, browser: &reqwest::Client) -> String {
        browser
            .get(self.url("/"))
            .send()
            .await
            .expect("GET /")
            .text()
            .await
            .expect("body")
    }

    /// GET `path` with a bearer token: the status and the JSON body
    /// (`null` if there is none).
    pub async fn get_with_bearer(
        &self,
        path: &str,
        token: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = conn(&self.db);
        let c: &mut DbConn = &mut c;
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(c)
            .expect("count")
            .n
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Pulls the hidden `csrf_token` value out of a page.
pub fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

pub async fn login_form_token_at(browser: &reqwest::Client, base: &str) -> String {
    let html = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET /login")
        .text()
        .await
        .expect("body");
    csrf_token_in(&html).expect("csrf token in login form")
}

pub async fn post_login_at(
    browser: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = vec![("username", username), ("password", password)];
    if let Some(t) = token {
        form.push(("csrf_token", t));
    }
    browser
        .post(format!("{base}/login"))
        .form(&form)
        .send()
        .await
        .expect("POST /login")
}

/// Opens the login page and submits it, as a person would.
pub async fn login_at(
    browser: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = login_form_token_at(browser, base).await;
    post_login_at(browser, base, Some(&token), username, password).await
}

/// Verifies a JWT against a JWKS document as a resource server would: the
/// key named by `kid`, with the algorithm the JWK names.
pub fn verify_with_jwks(jwks_json: &str, token: &str) -> Result<serde_json::Value, String> {
    use latchkey::keys::{JoseAlg, SigningAlg};
    let set = josekit::jwk::JwkSet::from_bytes(jwks_json.as_bytes()).map_err(|e| e.to_string())?;
    let header = josekit::jwt::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header
        .claim("kid")
        .and_then(|v| v.as_str())
        .ok_or("no kid")?;
    let jwk = *set
        .get(kid)
        .first()
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let alg: SigningAlg = jwk
        .algorithm()
        .ok_or("no alg")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    if header.claim("alg").and_then(|v| v.as_str()) != Some(alg.as_str()) {
        return Err("alg mismatch".into());
    }
    let verifier = alg.verifier(jwk).map_err(|e| e.to_string())?;
    let (payload, _) =
        josekit::jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|e| e.to_string())?;
    Ok(serde_json::Value::Object(payload.claims_set().clone()))
}

impl TestApp {
    pub async fn jwks(&self) -> String {
        self.http
            .get(self.url("/jwks"))
            .send()
            .await
            .expect("GET /jwks")
            .text()
            .await
            .expect("body")
    }

    /// Applies due key transitions and reloads, as the interval job does.
    pub fn refresh_keys(&self) -> bool {
        let mut c = conn(&self.db);
        self.keys
            .refresh(&mut c, self.clock_now())
            .expect("refresh keys")
    }

    pub fn sign(&self, alg: latchkey::keys::SigningAlg, sub: &str) -> String {
        let mut p = josekit::jwt::JwtPayload::new();
        p.set_subject(sub);
        p.set_issuer(&self.config.issuer);
        self.keys.current().sign(alg, "JWT", &p).expect("sign")
    }
}

/// The consent page's form fields, with `decision` added.
pub fn consent_form(page: &str, decision: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = Vec::new();
    for chunk in page.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = chunk.split_once('"').unwrap();
        let value = rest
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        form.push((name.to_owned(), html_unescape(value)));
    }
    form.push(("decision".into(), decision.into()));
    form
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// An `/authorize` URL for a code request with PKCE, `scope=openid
/// profile` and `state=s`; `extra` adds or replaces parameters.
pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile"),
        ("state", "s"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(key, _)| key != k);
        params.push((k, v));
    }
    reqwest::Url::parse_with_params(&app.url("/authorize"), &params)
        .unwrap()
        .to_string()
}

/// Runs `/authorize` with `params` in a signed-in `browser`, allowing the
/// consent page if shown; returns the redirect to the client.
pub async fn authorize_in(
    app: &TestApp,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
) -> String {
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), params).expect("url");
    authorize_url_in(app, browser, url.as_str()).await
}

/// [`authorize_in`] for a whole authorization URL (as a relying-party
/// library builds it).
pub async fn authorize_url_in(app: &TestApp, browser: &reqwest::Client, url: &str) -> String {
    let r = browser.get(url).send().await.expect("GET /authorize");
    let r = if r.status() == reqwest::StatusCode::OK {
        let page = r.text().await.expect("consent page");
        assert!(page.contains("Allow"), "expected the consent page: {page}");
        browser
            .post(app.url("/authorize/consent"))
            .form(&consent_form(&page, "allow"))
            .send()
            .await
            .expect("POST consent")
    } else {
        r
    };
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

impl TestApp {
    /// Defines custom scopes (any user may be granted them), unless they
    /// already are.
    pub fn define_scopes(&self, names: &[&str]) {
        self.define_scopes_with(names, None)
    }

    /// [`TestApp::define_scopes`], marked grantable to clients acting for
    /// themselves (`client_credentials`), as for admin-created API clients.
    pub fn define_machine_scopes(&self, names: &[&str]) {
        self.define_scopes_with(names, Some(true))
    }

    fn define_scopes_with(&self, names: &[&str], machine_grantable: Option<bool>) {
        let mut c = conn(&self.db);
        for name in names {
            if latchkey::store::repo::scopes::get(&mut c, name)
                .expect("scope lookup")
                .is_some()
            {
                continue;
            }
            latchkey::service::scopes::create(
                &mut c,
                name,
                &latchkey::service::scopes::ScopeInput {
                    description: format!("Use {name}"),
                    groups: Vec::new(),
                    machine_grantable,
                },
                &latchkey::domain::audit::Actor::system(),
                self.clock_now(),
            )
            .expect("define scope");
        }
    }
}

/// The PKCE pair of RFC 7636 appendix B.
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The authorization code flow for a confidential client in a signed-in
/// `browser`: returns the authorization redirect and, when it carried a
/// code, the token response.
pub async fn code_flow(
    app: &TestApp,
    browser: &reqwest::Client,
    client: (&str, &str),
    redirect_uri: &str,
    scope: &str,
) -> (String, Option<serde_json::Value>) {
    let (id, secret) = client;
    let loc = authorize_in(
        app,
        browser,
        &[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", "s"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let Some(code) = url::Url::parse(&loc)
        .expect("redirect")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
    else {
        return (loc, None);
    };
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", PKCE_VERIFIER),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    (loc, Some(r.json().await.expect("token response")))
}
