//! The verifier's introspection path against a scripted issuer on a local
//! socket: which tokens go to the issuer, what it is sent, what is cached
//! and what is not, timeouts and size limits. (The real server is tested
//! in the workspace's `tests/it/verify.rs`; this fake exists for the
//! failures a real Latchkey does not produce on demand.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::{ClientAuth, TokenKind, Verifier, VerifyError};

const GOOD: &str = "lkp_GoodGoodGoodGoodGoodGoodGoodGoodGoodGoodGoo";
const REVOKED: &str = "lkp_RevokedRevokedRevokedRevokedRevokedRevokedR";

/// What the scripted issuer answers to a POST to `/introspect`.
#[derive(Clone, Copy)]
enum Script {
    /// `GOOD` active, everything else inactive.
    Normal,
    /// As `Normal`, after this many milliseconds.
    Delayed(u64),
    Status(u16, &'static str),
    Huge,
    Slow,
}

/// What the scripted issuer counts and is told.
#[derive(Default)]
struct State {
    base: String,
    introspections: AtomicUsize,
    discoveries: AtomicUsize,
    /// Introspection requests being answered now, and the most at once.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// The last introspection request, headers and body.
    last: Mutex<String>,
    script: Mutex<Option<Script>>,
    /// The `introspection_endpoint` discovery names, if not its own.
    discovered_endpoint: Mutex<Option<String>>,
}

struct FakeIssuer(Arc<State>);

impl std::ops::Deref for FakeIssuer {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl FakeIssuer {
    fn start() -> FakeIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(State {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..State::default()
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || answer(stream, &state));
            }
        });
        FakeIssuer(state)
    }

    fn introspections(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }

    fn set(&self, script: Script) {
        *self.script.lock().unwrap() = Some(script);
    }

    /// A verifier with pinned (empty) keys, so JWTs never cause a request.
    fn verifier(
        &self,
        edit: impl FnOnce(crate::VerifierBuilder) -> crate::VerifierBuilder,
    ) -> Verifier {
        edit(
            Verifier::builder(&self.base, "https://api.example")
                .pinned_jwks(r#"{"keys":[]}"#)
                .introspection("notes api", "s3cr:et"),
        )
        .build()
        .unwrap()
    }
}

fn answer(mut stream: std::net::TcpStream, state: &State) {
    let request = read_request(&mut stream);
    let base = &state.base;
    let (status, body) = if request.starts_with("GET /.well-known/openid-configuration") {
        state.discoveries.fetch_add(1, Ordering::SeqCst);
        let endpoint = state.discovered_endpoint.lock().unwrap().clone();
        let doc = json!({
            "issuer": base, "jwks_uri": format!("{base}/jwks"),
            "introspection_endpoint": endpoint.unwrap_or(format!("{base}/introspect")),
        });
        (200, doc.to_string())
    } else if request.starts_with("POST /introspect") {
        state.introspections.fetch_add(1, Ordering::SeqCst);
        let now_in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now_in_flight, Ordering::SeqCst);
        *state.last.lock().unwrap() = request.clone();
        let script = state.script.lock().unwrap().unwrap_or(Script::Normal);
        let answer = introspection_answer(script, &request, base);
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    } else {
        (404, "{}".to_owned())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn introspection_answer(script: Script, request: &str, base: &str) -> (u16, String) {
    let now = crate::verifier::unix_now();
    match script {
        Script::Delayed(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            introspection_answer(Script::Normal, request, base)
        }
        Script::Normal if request.contains(&format!("token={GOOD}")) => {
            let active = json!({
                "active": true, "scope": "read:notes", "sub": "u1",
                "iss": base, "exp": now + 600, "iat": now - 5,
                "token_type": "Bearer",
            });
            (200, active.to_string())
        }
        Script::Normal => (200, r#"{"active":false}"#.to_owned()),
        Script::Status(s, error) => (s, json!({ "error": error }).to_string()),
        Script::Huge => (
            200,
            format!(r#"{{"active":false,"x":"{}"}}"#, "x".repeat(100_000)),
        ),
        Script::Slow => {
            std::thread::sleep(Duration::from_secs(2));
            (200, r#"{"active":false}"#.to_owned())
        }
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn only_personal_access_tokens_go_to_the_issuer_and_answers_are_cached() {
    let issuer = FakeIssuer::start();
    let v = issuer.verifier(|b| b);

    let t = v.verify(GOOD).await.unwrap();
    assert_eq!(t.kind, TokenKind::PersonalAccessToken);
    assert_eq!((t.subject.as_str(), t.client_id.as_ref()), ("u1", None));
    assert!(t.has_scope("read:notes"));
    assert_eq!(issuer.introspections(), 1);
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        1,
        "endpoint from discovery"
    );
    // Again: from the cache, no request; also without any request at all.
    assert_eq!(v.verify(GOOD).await.unwrap(), t);
    assert_eq!(v.verify_cached(GOOD).unwrap(), t);
    assert_eq!(issuer.introspections(), 1);

    // Refused, then refused from the cache for the negative lifetime.
    assert_eq!(v.verify(REVOKED).await, Err(VerifyError::Inactive));
    assert_eq!(v.verify(REVOKED).await, Err(VerifyError::Inactive));
    assert_eq!(issuer.introspections(), 2);

    // JWTs and malformed personal access tokens never reach the issuer.
    for not_asked in ["a.b.c", "eyJ", "lkp_short", &format!("{GOOD}A")] {
        assert!(v.verify(not_asked).await.is_err(), "{not_asked}");
    }
    assert_eq!(v.verify("lkp_short").await, Err(VerifyError::Malformed));
    assert_eq!(issuer.introspections(), 2);
    // Unless introspection is asked for explicitly.
    assert_eq!(v.introspect("a.b.c").await, Err(VerifyError::Inactive));
    assert_eq!(issuer.introspections(), 3);
}

#[tokio::test]
async fn zero_lifetimes_ask_every_time() {
    let issuer = FakeIssuer::start();
    let v = issuer.verifier(|b| {
        b.introspection_endpoint(format!("{}/introspect", issuer.base))
            .introspection_cache_ttl(Duration::ZERO)
            .introspection_negative_cache_ttl(Duration::ZERO)
    });
    for _ in 0..2 {
        assert!(v.verify(GOOD).await.is_ok());
        assert_eq!(v.verify(REVOKED).await, Err(VerifyError::Inactive));
    }
    assert_eq!(issuer.introspections(), 4);
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        0,
        "an endpoint set in the builder needs no discovery"
    );
    assert_eq!(
        v.verify_cached(GOOD),
        Err(VerifyError::IntrospectionUnavailable)
    );
}

#[tokio::test]
async fn credentials_are_sent_as_configured() {
    let issuer = FakeIssuer::start();
    let basic = issuer.verifier(|b| b);
    basic.verify(GOOD).await.unwrap();
    let sent = issuer.last.lock().unwrap().clone();
    let expected = base64::engine::general_purpose::STANDARD.encode("notes%20api:s3cr%3Aet");
    assert!(
        sent.to_ascii_lowercase().contains(&format!(
            "authorization: basic {}",
            expected.to_ascii_lowercase()
        )),
        "{sent}"
    );
    assert!(sent.ends_with(&format!("\r\n\r\ntoken={GOOD}")), "{sent}");

    let post = issuer.verifier(|b| b.introspection_client_auth(ClientAuth::SecretPost));
    post.verify(GOOD).await.unwrap();
    let sent = issuer.last.lock().unwrap().clone();
    assert!(
        !sent.to_ascii_lowercase().contains("authorization:"),
        "{sent}"
    );
    assert!(
        sent.ends_with(&format!(
            "token={GOOD}&client_id=notes+api&client_secret=s3cr%3Aet"
        )),
        "{sent}"
    );
}

#[tokio::test]
async fn failures_to_ask_are_outages_and_never_cached() {
    let issuer = FakeIssuer::start();
    let v = issuer.verifier(|b| b.introspection_timeout(Duration::from_millis(300)));
    let cases = [
        (
            Script::Status(401, "invalid_client"),
            VerifyError::IntrospectionRefused,
        ),
        (
            Script::Status(400, "invalid_client"),
            VerifyError::IntrospectionRefused,
        ),
        (
            Script::Status(503, "temporarily_unavailable"),
            VerifyError::IntrospectionUnavailable,
        ),
        (
            Script::Status(500, "server_error"),
            VerifyError::IntrospectionUnavailable,
        ),
        (Script::Huge, VerifyError::IntrospectionUnavailable),
        (Script::Slow, VerifyError::IntrospectionUnavailable),
    ];
    let mut asked = 0;
    for (script, want) in cases {
        issuer.set(script);
        for _ in 0..2 {
            let started = std::time::Instant::now();
            assert_eq!(v.verify(GOOD).await, Err(want.clone()));
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the timeout cuts a slow answer short"
            );
            asked += 1;
        }
        assert_eq!(issuer.introspections(), asked, "not cached");
    }
    // The issuer is back: the token is accepted at once.
    issuer.set(Script::Normal);
    assert!(v.verify(GOOD).await.is_ok());
}

#[tokio::test]
async fn without_introspection_personal_access_tokens_are_refused_clearly() {
    let v = Verifier::builder("https://id.example", "https://api.example")
        .pinned_jwks(r#"{"keys":[]}"#)
        .build()
        .unwrap();
    assert!(!v.accepts_personal_access_tokens());
    assert_eq!(
        v.verify(GOOD).await,
        Err(VerifyError::IntrospectionNotConfigured)
    );
    assert_eq!(
        v.introspect("a.b.c").await,
        Err(VerifyError::IntrospectionNotConfigured)
    );
    assert_eq!(
        v.verify_cached(GOOD),
        Err(VerifyError::IntrospectionNotConfigured)
    );
    // And an unreachable issuer is an outage, not a refusal.
    let down = Verifier::builder("http://127.0.0.1:9", "https://api.example")
        .pinned_jwks(r#"{"keys":[]}"#)
        .introspection("c", "s")
        .build()
        .unwrap();
    assert!(down.accepts_personal_access_tokens());
    assert_eq!(
        down.verify(GOOD).await,
        Err(VerifyError::IntrospectionUnavailable)
    );
}

#[tokio::test]
async fn a_discovered_endpoint_off_the_issuers_origin_is_never_sent_anything() {
    let issuer = FakeIssuer::start();
    let port = issuer.base.rsplit(':').next().unwrap().to_owned();
    // The same server under another name: another origin.
    let elsewhere = format!("http://localhost:{port}/introspect");
    *issuer.discovered_endpoint.lock().unwrap() = Some(elsewhere.clone());
    let v = issuer.verifier(|b| b);
    assert_eq!(
        v.prefetch().await,
        Err(VerifyError::UntrustedIntrospectionEndpoint)
    );
    for _ in 0..2 {
        assert_eq!(
            v.verify(GOOD).await,
            Err(VerifyError::UntrustedIntrospectionEndpoint)
        );
    }
    assert_eq!(issuer.discoveries.load(Ordering::SeqCst), 3, "not cached");
    assert_eq!(issuer.introspections(), 0);
    // Set explicitly, it is trusted: whoever configured it vouches for it.
    let explicit = issuer.verifier(|b| b.introspection_endpoint(elsewhere));
    assert!(explicit.verify(GOOD).await.is_ok());
    assert_eq!(issuer.introspections(), 1);
    assert_eq!(issuer.discoveries.load(Ordering::SeqCst), 3);
}

/// Runs `verify` for each token at once; the results in the same order.
async fn all_at_once(v: &Verifier, tokens: Vec<String>) -> Vec<Result<TokenKind, VerifyError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let v = v.clone();
        tasks.spawn(async move { (i, v.verify(&token).await.map(|t| t.kind)) });
    }
    let mut results = tasks.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test]
async fn concurrent_callers_with_the_same_token_share_one_request() {
    let issuer = FakeIssuer::start();
    issuer.set(Script::Delayed(300));
    // Nothing is cached, so only single flight saves requests.
    let v = issuer.verifier(|b| {
        b.introspection_cache_ttl(Duration::ZERO)
            .introspection_negative_cache_ttl(Duration::ZERO)
    });
    let mut tokens = vec![GOOD.to_owned(); 20];
    tokens.extend(vec![REVOKED.to_owned(); 10]);
    let results = all_at_once(&v, tokens).await;
    assert!(
        results[..20]
            .iter()
            .all(|r| *r == Ok(TokenKind::PersonalAccessToken)),
        "{results:?}"
    );
    assert!(
        results[20..]
            .iter()
            .all(|r| *r == Err(VerifyError::Inactive)),
        "{results:?}"
    );
    assert_eq!(issuer.introspections(), 2, "one per token");
    assert_eq!(
        issuer.discoveries.load(Ordering::SeqCst),
        1,
        "and one discovery"
    );
    // Once answered, the next caller asks anew (nothing cached).
    assert!(v.verify(GOOD).await.is_ok());
    assert_eq!(issuer.introspections(), 3);
}

fn made_up_tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("lkp_{i:0>43}")).collect()
}

#[tokio::test]
async fn a_flood_of_made_up_tokens_is_asked_about_a_few_at_a_time() {
    let issuer = FakeIssuer::start();
    issuer.set(Script::Delayed(200));
    let v = issuer.verifier(|b| {
        b.introspection_endpoint(format!("{}/introspect", issuer.base))
            .introspection_max_concurrent(3)
    });
    let results = all_at_once(&v, made_up_tokens(12)).await;
    assert!(
        results.iter().all(|r| *r == Err(VerifyError::Inactive)),
        "all judged, in turn: {results:?}"
    );
    assert_eq!(issuer.introspections(), 12);
    let peak = issuer.peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "at most 3 at once, saw {peak}");
}

#[tokio::test]
async fn callers_that_get_no_turn_in_time_are_told_it_is_unavailable() {
    let issuer = FakeIssuer::start();
    issuer.set(Script::Delayed(400));
    let v = issuer.verifier(|b| {
        b.introspection_endpoint(format!("{}/introspect", issuer.base))
            .introspection_max_concurrent(1)
            .introspection_timeout(Duration::from_millis(1000))
    });
    // One at a time, 400 ms each: the fourth would wait 1.2 s for a turn.
    let results = all_at_once(&v, made_up_tokens(4)).await;
    let judged = results
        .iter()
        .filter(|r| **r == Err(VerifyError::Inactive))
        .count();
    let turned_away = results
        .iter()
        .filter(|r| **r == Err(VerifyError::IntrospectionUnavailable))
        .count();
    assert_eq!(judged + turned_away, 4, "{results:?}");
    assert!(judged >= 1 && turned_away >= 1, "{results:?}");
    assert_eq!(issuer.introspections(), judged, "the others never asked");
    assert_eq!(issuer.peak.load(Ordering::SeqCst), 1);
    // Turned away is not remembered: once it is quiet, it is judged.
    issuer.set(Script::Normal);
    let last = made_up_tokens(4).pop().unwrap();
    assert_eq!(v.verify(&last).await, Err(VerifyError::Inactive));
}
