//! `GET /metrics` (`[metrics]`): off by default, on its own listener or
//! behind a bearer token on the main one, and what a scrape says after
//! real traffic. Scrapes are parsed as the Prometheus text format, not
//! searched for substrings.

use std::collections::BTreeMap;

use latchkey::config::Config;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::common::fixtures;
use crate::common::{TestApp, TestDb, code_flow};

dual_backend!(
    off_by_default_nothing_is_served,
    its_own_listener_serves_it_and_the_main_one_does_not,
    on_the_main_listener_a_bearer_token_is_required,
    a_scrape_counts_flows_failures_and_sign_ins_with_their_labels,
    client_id_labels_only_when_asked,
);

const TOKEN: &str = "metrics-scrape-token-0123456789";
const CALLBACK: &str = "https://rp.example/cb";

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One sample line: `name{label="value",…} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: the samples and each family's `# TYPE`.
#[derive(Debug)]
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses the Prometheus text format (0.0.4); panics on a malformed
    /// line, so a broken exposition fails the test.
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            samples.push(parse_sample(line));
        }
        Scrape { samples, types }
    }

    /// The value of the one sample named `name` whose labels include all
    /// of `labels`; 0 when none (a counter never touched), panics when
    /// more than one match.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} is ambiguous: {found:?}"
        );
        found.first().map_or(0.0, |s| s.value)
    }

    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Every value label `key` takes in samples named `name`.
    fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(key).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => {
            let (n, v) = line.split_once(' ').expect("sample line");
            return Sample {
                name: n.to_owned(),
                labels: BTreeMap::new(),
                value: parse_value(v),
            };
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest[1..].chars().peekable();
    loop {
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value quoted in {line}");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next().expect("escape") {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    let value: String = chars.collect();
    Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value.trim()),
    }
}

fn parse_value(v: &str) -> f64 {
    match v.split(' ').next().expect("value") {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        x => x.parse().unwrap_or_else(|_| panic!("bad value {v:?}")),
    }
}

fn on_own_listener(c: &mut Config) {
    c.metrics.enabled = true;
    c.metrics.bind = "127.0.0.1:0".into();
}

fn metrics_url(app: &TestApp) -> String {
    let port = app.metrics_port.expect("the metrics listener runs");
    format!("http://127.0.0.1:{port}/metrics")
}

async fn scrape(app: &TestApp) -> Scrape {
    let r = app
        .http
        .get(metrics_url(app))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&r.text().await.expect("body"))
}

async fn off_by_default_nothing_is_served(db: TestDb) {
    let app = TestApp::spawn(db).await;
    assert!(!app.config.metrics.enabled);
    assert_eq!(app.metrics_port, None, "no metrics listener");
    for auth in [None, Some(TOKEN)] {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

async fn its_own_listener_serves_it_and_the_main_one_does_not(db: TestDb) {
    let app = TestApp::spawn_with(db, on_own_listener).await;
    // The main listener answers /metrics as any unknown page.
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let s = scrape(&app).await;
    assert_eq!(
        s.value(
            "latchkey_http_requests_total",
            &[("route", "/metrics"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(s.types["latchkey_http_requests_total"], "counter");
    assert_eq!(
        s.types["latchkey_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(s.value("latchkey_build_info", &[]), 1.0);
    assert_eq!(s.value("latchkey_db_pool_max_connections", &[]), 4.0);
    assert!(s.value("latchkey_db_pool_connections", &[]) >= 1.0);
    assert_eq!(s.value("latchkey_logout_outbox_backlog", &[]), 0.0);
    let age = s.value("latchkey_signing_key_age_seconds", &[("alg", "RS256")]);
    assert!((0.0..3600.0).contains(&age), "{age}");
    // The metrics listener answers nothing else.
    let other = metrics_url(&app).replace("/metrics", "/jwks");
    assert_eq!(
        app.http.get(other).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn on_the_main_listener_a_bearer_token_is_required(db: TestDb) {
    // Enabled on the main listener without a token: refused at start.
    let mut bare = Config::default();
    bare.metrics.enabled = true;
    let e = bare.validate().unwrap_err().to_string();
    assert!(e.starts_with("metrics.bind:"), "{e}");

    let app = TestApp::spawn_with(db, |c| {
        c.metrics.enabled = true;
        c.metrics.token_sha256 = sha256_hex(TOKEN);
    })
    .await;
    assert_eq!(app.metrics_port, None);
    let get = |auth: Option<String>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    for wrong in [
        None,
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[1..])),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {}", sha256_hex(TOKEN))),
    ] {
        let r = get(wrong.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"metrics\"");
        assert!(!r.text().await.unwrap().contains("latchkey_"));
    }
    let r = get(Some(format!("Bearer {TOKEN}"))).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let s = Scrape::parse(&r.text().await.unwrap());
    // The refused scrapes were counted under their route pattern.
    assert_eq!(
        s.value(
            "latchkey_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ),
        5.0
    );
}

async fn a_scrape_counts_flows_failures_and_sign_ins_with_their_labels(db: TestDb) {
    let app = TestApp::spawn_with(db, on_own_listener).await;
    fixtures::alice(&app);
    let rp = fixtures::client("Metrics RP")
        .redirect(CALLBACK)
        .scopes("openid offline_access")
        .grants(&["authorization_code", "refresh_token"])
        .first_party(true)
        .create(&app);
    let browser = fixtures::signed_in(&app, "alice").await;
    // A code flow with a refresh token, then that token used twice.
    let (_, tokens) = code_flow(
        &app,
        &browser,
        (&rp.id, rp.secret()),
        CALLBACK,
        "openid offline_access",
    )
    .await;
    let refresh = tokens.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, _) = fixtures::refresh_at(&app.base, &rp, &refresh).await;
    assert_eq!(ok, StatusCode::OK);
    let (reuse, _) = fixtures::refresh_at(&app.base, &rp, &refresh).await;
    assert_eq!(reuse, StatusCode::BAD_REQUEST);
    // client_credentials, as the admin API's robot.
    let admin_token = fixtures::admin_api_token(&app).await;
    // A failed token request: a code that was never issued.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(rp.secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A grant type nobody knows: its raw value never becomes a label.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&rp.id, Some(rp.secret()))
        .form(&[("grant_type", "urn:example:secret-grant-alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A failed sign-in.
    let stranger = app.new_browser();
    let r = app.login(&stranger, "alice", "not her password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A path with a user name in it.
    let (status, _) = app
        .get_with_bearer("/admin/api/v1/users/alice", &admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = app.http.get(app.url("/no/such/page/alice")).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::NOT_FOUND);

    let s = scrape(&app).await;
    let issued = "latchkey_tokens_issued_total";
    assert_eq!(
        s.value(
            issued,
            &[("grant_type", "authorization_code"), ("alg", "RS256")]
        ),
        1.0
    );
    assert_eq!(
        s.value(issued, &[("grant_type", "refresh_token"), ("alg", "RS256")]),
        1.0
    );
    assert_eq!(
        s.value(
            issued,
            &[("grant_type", "client_credentials"), ("alg", "RS256")]
        ),
        1.0
    );
    let errors = "latchkey_token_errors_total";
    assert_eq!(
        s.value(
            errors,
            &[
                ("grant_type", "authorization_code"),
                ("error", "invalid_grant")
            ]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            errors,
            &[("grant_type", "refresh_token"), ("error", "invalid_grant")]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            errors,
            &[("grant_type", "other"), ("error", "unsupported_grant_type")]
        ),
        1.0
    );
    assert_eq!(s.value("latchkey_refresh_token_reuse_total", &[]), 1.0);
    let sign_ins = "latchkey_sign_ins_total";
    assert_eq!(
        s.value(sign_ins, &[("result", "success"), ("method", "password")]),
        1.0
    );
    assert_eq!(
        s.value(sign_ins, &[("result", "failure"), ("method", "password")]),
        1.0
    );
    assert_eq!(s.value(sign_ins, &[("result", "throttled")]), 0.0);
    // Routes are patterns: the user's name is in no label.
    let requests = "latchkey_http_requests_total";
    assert_eq!(
        s.value(
            requests,
            &[
                ("route", "/admin/api/v1/users/{username}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            requests,
            &[("route", "/token"), ("method", "POST"), ("status", "400")]
        ),
        3.0
    );
    assert!(
        s.value(
            requests,
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ) >= 1.0
    );
    let routes = s.label_values(requests, "route");
    assert!(
        routes.iter().all(|r| !r.contains("alice")),
        "a raw path became a label: {routes:?}"
    );
    for sample in &s.samples {
        for v in sample.labels.values() {
            assert!(
                !v.contains("alice") && !v.contains(&rp.id) && !v.contains("secret-grant"),
                "{sample:?}"
            );
        }
    }
    let latency = s.value(
        "latchkey_http_request_duration_seconds_count",
        &[("route", "/token")],
    );
    assert_eq!(latency, 6.0, "every /token request timed once");
    assert!(
        s.value(
            "latchkey_http_request_duration_seconds_bucket",
            &[("route", "/token"), ("le", "+Inf")]
        ) == 6.0
    );
    assert!(s.value("latchkey_db_checkout_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(s.value("latchkey_blocking_queue_depth", &[]), 0.0);
}

async fn client_id_labels_only_when_asked(db: TestDb) {
    let app = TestApp::spawn_with(db, |c| {
        on_own_listener(c);
        c.metrics.client_id_labels = true;
    })
    .await;
    let robot = fixtures::machine_client(&app, "Robot", "latchkey:admin");
    fixtures::machine_token(&app, &robot).await;
    // An unauthenticated client's claimed id never becomes a label.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("made-up-client", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let s = scrape(&app).await;
    assert_eq!(
        s.value(
            "latchkey_tokens_issued_total",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &robot.id)
            ]
        ),
        1.0
    );
    let failed = s.matching(
        "latchkey_token_errors_total",
        &[("error", "invalid_client")],
    );
    assert_eq!(failed.len(), 1);
    assert!(!failed[0].labels.contains_key("client_id"), "{failed:?}");
}
