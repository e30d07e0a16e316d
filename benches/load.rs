//! Load benchmark: `cargo bench --bench load` (release build).
//!
//! The server runs on core 0 (one HTTP worker), the load generator on
//! core 1, so the figures are "per server core". Reference rates measured
//! in the same run, on the same core, make the ratios hold on any machine:
//! the raw josekit signing rate, and a bare actix handler answering the
//! same bytes as discovery / JWKS (fetched from the server under test).
//!
//! Reports: client_credentials tokens/s (RS256 and ES256), discovery and
//! JWKS requests/s, full code exchange (code -> ID + access + refresh
//! token) latency at 16 concurrent clients, on SQLite and, when
//! LATCHKEY_TEST_POSTGRES_URL is set, on PostgreSQL; and the idle memory of
//! `latchkey serve`. BENCH_SECS sets the duration of each run (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use latchkey::app::{self, Application};
use latchkey::clock::{SharedClock, SystemClock};
use latchkey::config::Config;
use latchkey::domain::client::ClientInput;
use latchkey::keys::{JoseAlg, KeyStore, SigningAlg};
use latchkey::oidc::authorize::{AuthorizeParams, validate};
use latchkey::service::{authorize as authz, clients, sessions, users};
use latchkey::state::AppState;
use latchkey::store::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connections for the throughput runs: enough that the server core never
/// waits on the load generator.
const THROUGHPUT_CONNECTIONS: usize = 64;
/// Concurrent clients for the code exchange latency run (the target is
/// stated at 16).
const LATENCY_CLIENTS: usize = 16;

fn secs() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.get(core % ids.len())
    {
        core_affinity::set_for_current(*id);
    }
}

struct Stats {
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }
}

/// A keep-alive HTTP/1.1 client per connection: writes a request, reads
/// one response (Content-Length), repeats. Stops at the deadline or after
/// `limit` requests in all.
fn load(
    port: u16,
    make: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
    duration: Duration,
    limit: usize,
    connections: usize,
) -> Stats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (make, counter) = (make.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                s.set_nodelay(true).unwrap();
                let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= limit || Instant::now() >= deadline {
                        break;
                    }
                    let req = make(i);
                    let t = Instant::now();
                    s.write_all(&req).await.unwrap();
                    let mut filled = 0;
                    let (status, total) = loop {
                        let n = s.read(&mut buf[filled..]).await.unwrap();
                        assert!(n > 0, "server closed the connection");
                        filled += n;
                        if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = std::str::from_utf8(&buf[..end])
                                .unwrap()
                                .to_ascii_lowercase();
                            let status: u16 = head[9..12].parse().unwrap();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map(|v| v.trim().parse().unwrap())
                                .unwrap_or(0);
                            break (status, end + 4 + len);
                        }
                    };
                    while filled < total {
                        let n = s.read(&mut buf[filled..]).await.unwrap();
                        assert!(n > 0);
                        filled += n;
                    }
                    lat.push(t.elapsed().as_micros() as u64);
                    if status == 200 {
                        ok += 1
                    } else {
                        if errors == 0 {
                            eprintln!(
                                "HTTP {status}: {}",
                                String::from_utf8_lossy(&buf[..filled.min(600)])
                            );
                        }
                        errors += 1
                    }
                }
                (ok, errors, lat)
            }));
        }
        let mut st = Stats {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
        };
        for t in tasks {
            let (ok, errors, lat) = t.await.unwrap();
            st.ok += ok;
            st.errors += errors;
            st.latencies_us.extend(lat);
        }
        st.elapsed = started.elapsed();
        st
    })
}

fn get(path: &str) -> Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes();
    Arc::new(move |_| req.clone())
}

fn post_form(path: &str, auth: Option<String>, body: String) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Signs `n` access-token-shaped payloads on this thread: tokens/s.
fn raw_sign_rate(alg: SigningAlg) -> f64 {
    let kid = "bench";
    let jwk = latchkey::keys::material::generate(alg, kid).unwrap();
    let signer = alg.signer(&jwk).unwrap();
    let mut payload = josekit::jwt::JwtPayload::new();
    for (k, v) in [
        ("iss", "http://127.0.0.1:8080"),
        ("sub", "client"),
        ("aud", "http://127.0.0.1:8080"),
        ("client_id", "client"),
        ("scope", "read:notes"),
        ("jti", "6a0f0c9e-5d8f-4f57-9a53-6a3bd1f0a1c2"),
    ] {
        payload.set_claim(k, Some(v.into())).unwrap();
    }
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(kid);
    let n = if alg == SigningAlg::RS256 {
        3000
    } else {
        30000
    };
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            josekit::jwt::encode_with_signer(&payload, &header, signer.as_ref()).unwrap(),
        );
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The body of `GET path` from the server on `port` (sized, not chunked).
fn fetch_body(port: u16, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    raw[at..].to_vec()
}

/// A bare actix handler answering `body` at `/static` (the reference for
/// precomputed documents: the same bytes, no middleware).
fn start_static(body: Vec<u8>) -> (u16, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin(0);
        actix_web::rt::System::new().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let body = web::Bytes::from(body);
            let server = HttpServer::new(move || {
                let body = body.clone();
                App::new().route(
                    "/static",
                    web::get().to(move || {
                        let body = body.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("application/json")
                                .body(body)
                        }
                    }),
                )
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
            tx.send((port, server.handle())).unwrap();
            server.await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Running {
    port: u16,
    handle: actix_web::dev::ServerHandle,
    db: Db,
    /// The metrics listener, when `[metrics]` is on.
    metrics_port: Option<u16>,
}

fn start_latchkey(db_url: String, access_alg: SigningAlg, dir: std::path::PathBuf) -> Running {
    start_latchkey_with(db_url, access_alg, dir, false)
}

fn start_latchkey_with(
    db_url: String,
    access_alg: SigningAlg,
    dir: std::path::PathBuf,
    metrics: bool,
) -> Running {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin(0);
        actix_web::rt::System::new().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let mut config = Config {
                issuer: format!("http://127.0.0.1:{port}"),
                ..Default::default()
            };
            config.database.url = db_url;
            config.server.workers = 1;
            config.log.level = "warn".into();
            config.keys.algorithms = vec![SigningAlg::RS256, SigningAlg::ES256];
            config.keys.access_token_alg = access_alg;
            config.keys.id_token_alg = access_alg;
            config.keys.kek_file = dir.join("bench.kek").display().to_string();
            if metrics {
                config.metrics.enabled = true;
                config.metrics.bind = "127.0.0.1:0".into();
            }
            let config = config.validate().unwrap();
            let db = app::open_database(&config).unwrap();
            let keys = KeyStore::open(
                &mut db.get().unwrap(),
                &config,
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
            let clock: SharedClock = Arc::new(SystemClock);
            let state = AppState::new(Arc::new(config), db.clone(), clock, keys).unwrap();
            let application = Application::build(state, listener).unwrap();
            tx.send(Running {
                port,
                handle: application.handle(),
                db,
                metrics_port: application.metrics_port(),
            })
            .unwrap();
            application.run_until_stopped().await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Client {
    id: String,
    basic: String,
}

fn setup_client(db: &Db) -> Client {
    let mut c = db.get().unwrap();
    latchkey::service::scopes::create(
        &mut c,
        "read:notes",
        &latchkey::service::scopes::ScopeInput {
            description: "Read your notes".into(),
            groups: Vec::new(),
            machine_grantable: Some(true),
        },
        &latchkey::domain::audit::Actor::system(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let issued = clients::create(
        &mut c,
        None,
        &ClientInput {
            name: "Bench".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            scopes: vec!["openid email offline_access read:notes".into()],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
            ],
            ..Default::default()
        },
        &latchkey::domain::alg::SigningAlg::ALL,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let secret = issued.client_secret.unwrap();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{secret}", issued.client.client_id));
    Client {
        id: issued.client.client_id,
        basic,
    }
}

/// Codes issued through the library, as /authorize would after consent.
fn make_codes(db: &Db, client_id: &str, n: usize) -> Vec<String> {
    let mut c = db.get().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let user = users::create(
        &mut c,
        &users::NewUser {
            username: "bench",
            email: Some("bench@example.com"),
            ..Default::default()
        },
        None,
        now,
    )
    .or_else(|_| users::show(&mut c, "bench"))
    .unwrap();
    let policy = sessions::SessionPolicy {
        idle_timeout: time::Duration::hours(1),
        absolute_timeout: time::Duration::hours(2),
    };
    let cookie = sessions::create(&mut c, &user.id, Default::default(), now, policy).unwrap();
    let session = sessions::resolve(&mut c, cookie.expose(), now, policy)
        .unwrap()
        .unwrap();
    let client = clients::find(&mut c, client_id).unwrap();
    let params = AuthorizeParams {
        response_type: Some("code".into()),
        client_id: Some(client_id.into()),
        redirect_uri: Some("https://rp.example/cb".into()),
        scope: Some("openid email offline_access".into()),
        nonce: Some("n".into()),
        ..Default::default()
    };
    let valid = validate(&params, Some(client), false).unwrap();
    (0..n)
        .map(|_| {
            authz::issue_code(&mut c, &valid, &session, now, 600)
                .unwrap()
                .expose()
                .to_owned()
        })
        .collect()
}

fn idle_rss_kib() -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env("LATCHKEY_ADMIN_PASSWORD", "bench-admin-password")
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok();
    let _ = child.kill();
    let _ = child.wait();
    status?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    latchkey::store::init_openssl();
    let d = secs();
    println!(
        "Latchkey load benchmark: server on core 0 (1 worker), load generator on core 1; \
         throughput runs {THROUGHPUT_CONNECTIONS} connections, latency run {LATENCY_CLIENTS} clients; {}s per run\n",
        d.as_secs()
    );

    pin(0);
    let raw_rs = raw_sign_rate(SigningAlg::RS256);
    let raw_es = raw_sign_rate(SigningAlg::ES256);
    pin(1);

    let static_rate = |body: Vec<u8>| {
        let (sport, shandle) = start_static(body);
        let st = load(sport, get("/static"), d, usize::MAX, THROUGHPUT_CONNECTIONS);
        actix_web::rt::System::new().block_on(shandle.stop(true));
        st.rate()
    };

    println!("| measure | rate | reference | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| raw josekit RS256 sign (1 core) | {raw_rs:.0}/s ({:.0} µs) | | |",
        1e6 / raw_rs
    );
    println!(
        "| raw josekit ES256 sign (1 core) | {raw_es:.0}/s ({:.0} µs) | | |",
        1e6 / raw_es
    );

    // BENCH_ONLY=metrics: client_credentials ES256 with [metrics] off
    // and on, alternating, on the same core (the cost of recording).
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "metrics") {
        metrics_cost(d, raw_es);
        return;
    }
    // BENCH_ONLY=es256: just that scenario (for profiling).
    let only_es256 = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "es256");
    let mut backends = vec![("SQLite", None)];
    if let Ok(pg) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") {
        backends.push(("PostgreSQL", Some(pg)));
    }
    let mut latency_rows = Vec::new();
    for (name, pg) in backends {
        let algs: &[SigningAlg] = if only_es256 {
            &[SigningAlg::ES256]
        } else {
            &[SigningAlg::RS256, SigningAlg::ES256]
        };
        for &alg in algs {
            let dir = tempfile::tempdir().unwrap();
            let (url, schema) = match &pg {
                None => (
                    format!("sqlite://{}", dir.path().join("bench.db").display()),
                    None,
                ),
                Some(base) => {
                    use diesel::Connection;
                    use diesel::connection::SimpleConnection;
                    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                    let mut c = diesel::PgConnection::establish(base).unwrap();
                    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
                    let sep = if base.contains('?') { '&' } else { '?' };
                    (
                        format!("{base}{sep}options=-csearch_path%3D{schema}"),
                        Some((base.clone(), schema)),
                    )
                }
            };
            let srv = start_latchkey(url, alg, dir.path().to_owned());
            let client = setup_client(&srv.db);
            let body = "grant_type=client_credentials&scope=read%3Anotes".to_string();
            let req = post_form("/token", Some(client.basic.clone()), body);
            let make: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync> = Arc::new(move |_| req.clone());
            let _warm = load(
                srv.port,
                make.clone(),
                Duration::from_secs(1),
                usize::MAX,
                THROUGHPUT_CONNECTIONS,
            );
            let cc = load(srv.port, make, d, usize::MAX, THROUGHPUT_CONNECTIONS);
            assert_eq!(cc.errors, 0, "client_credentials errors");
            let raw = if alg == SigningAlg::RS256 {
                raw_rs
            } else {
                raw_es
            };
            println!(
                "| client_credentials {alg} ({name}) | {:.0} tokens/s, p99 {:.2} ms | raw sign {raw:.0}/s | {:.0}% |",
                cc.rate(),
                cc.pct(0.99),
                100.0 * cc.rate() / raw
            );
            if alg == SigningAlg::RS256 && !only_es256 {
                for path in ["/.well-known/openid-configuration", "/jwks"] {
                    // The reference answers the very same bytes, measured
                    // right before ours.
                    let body = fetch_body(srv.port, path);
                    let size = body.len();
                    let reference = static_rate(body);
                    let s = load(srv.port, get(path), d, usize::MAX, THROUGHPUT_CONNECTIONS);
                    println!(
                        "| GET {path} ({name}, {size} B) | {:.0} req/s | bare handler, same bytes {reference:.0} req/s | {:.0}% |",
                        s.rate(),
                        100.0 * s.rate() / reference
                    );
                }
            }
            {
                let n = 3000;
                let codes = Arc::new(make_codes(&srv.db, &client.id, n));
                let basic = client.basic.clone();
                let make: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync> = Arc::new(move |i| {
                    post_form(
                        "/token",
                        Some(basic.clone()),
                        format!(
                            "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Frp.example%2Fcb",
                            codes[i]
                        ),
                    )
                });
                let ex = load(srv.port, make, Duration::from_secs(600), n, LATENCY_CLIENTS);
                assert_eq!(ex.errors, 0, "code exchange errors");
                latency_rows.push(format!(
                    "| code exchange, {alg} tokens, {LATENCY_CLIENTS} clients ({name}) | {:.0} exchanges/s | p50 {:.2} ms | p99 {:.2} ms |",
                    ex.rate(),
                    ex.pct(0.5),
                    ex.pct(0.99)
                ));
            }
            actix_web::rt::System::new().block_on(srv.handle.stop(true));
            if let Some((base, schema)) = schema {
                use diesel::Connection;
                use diesel::connection::SimpleConnection;
                let mut c = diesel::PgConnection::establish(&base).unwrap();
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
    println!("\n| measure | throughput | p50 | p99 |");
    println!("|---|---|---|---|");
    for row in latency_rows {
        println!("{row}");
    }
    match idle_rss_kib() {
        Some(kib) => println!(
            "\nidle memory of `latchkey serve` (SQLite, RS256): {:.1} MB RSS",
            kib as f64 / 1024.0
        ),
        None => println!("\nidle memory: could not be measured"),
    }
}

/// `client_credentials` ES256 on SQLite with `[metrics]` off and on, in
/// alternating rounds (so drift of the machine hits both alike); prints
/// each round and the median of each side.
fn metrics_cost(d: Duration, raw_es: f64) {
    const ROUNDS: usize = 3;
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    println!("\n| round | metrics | tokens/s | p99 | share of raw ES256 |");
    println!("|---|---|---|---|---|");
    for round in 1..=ROUNDS {
        for (side, on) in [(0, false), (1, true)] {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let srv = start_latchkey_with(url, SigningAlg::ES256, dir.path().to_owned(), on);
            let client = setup_client(&srv.db);
            let body = "grant_type=client_credentials&scope=read%3Anotes".to_string();
            let req = post_form("/token", Some(client.basic.clone()), body);
            let make: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync> = Arc::new(move |_| req.clone());
            let _warm = load(
                srv.port,
                make.clone(),
                Duration::from_secs(1),
                usize::MAX,
                THROUGHPUT_CONNECTIONS,
            );
            let cc = load(srv.port, make, d, usize::MAX, THROUGHPUT_CONNECTIONS);
            assert_eq!(cc.errors, 0, "client_credentials errors");
            if let Some(port) = srv.metrics_port {
                // The scrape saw the run: recording was really on.
                let text = String::from_utf8(fetch_body(port, "/metrics")).unwrap();
                assert!(
                    text.contains(
                        "latchkey_tokens_issued_total{grant_type=\"client_credentials\",alg=\"ES256\"}"
                    ),
                    "{text}"
                );
            }
            println!(
                "| {round} | {} | {:.0} | {:.2} ms | {:.0}% |",
                if on { "on" } else { "off" },
                cc.rate(),
                cc.pct(0.99),
                100.0 * cc.rate() / raw_es
            );
            rates[side].push(cc.rate());
            actix_web::rt::System::new().block_on(srv.handle.stop(true));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (off, on) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "\nmedian: off {off:.0} tokens/s, on {on:.0} tokens/s: on is {:.1}% of off",
        100.0 * on / off
    );
}
