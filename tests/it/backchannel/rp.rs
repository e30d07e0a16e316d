//! The relying party's side of back-channel logout, for the tests: an
//! actix app on a loopback port that records every POST to its logout URI
//! and answers what it is told (200, 500, …), or does not listen at all
//! (connection refused) until told to; and the checks a relying party
//! makes on a logout token (Back-Channel Logout 1.0, 2.6).

use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::common;

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One POST the relying party received.
#[derive(Debug, Clone)]
pub struct Received {
    pub logout_token: Option<String>,
    pub content_type: String,
    /// The status it answered with.
    pub answered: u16,
}

#[derive(Default)]
struct Endpoint {
    answer: AtomicU16,
    delay_ms: AtomicU64,
    received: Mutex<Vec<Received>>,
}

async fn backchannel_logout(
    endpoint: web::Data<Endpoint>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let delay = endpoint.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
    }
    let answered = endpoint.answer.load(Ordering::SeqCst);
    endpoint.received.lock().unwrap().push(Received {
        logout_token: form
            .into_iter()
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v),
        content_type: req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        answered,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap())
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// A relying party's back-channel logout endpoint.
pub struct TestRp {
    port: u16,
    endpoint: web::Data<Endpoint>,
    server: Option<ServerHandle>,
}

impl TestRp {
    /// Listening now, answering 200.
    pub fn start() -> Self {
        let mut rp = Self::reserved();
        rp.listen();
        rp
    }

    /// A port picked but nobody listening on it yet: deliveries are
    /// refused until [`TestRp::listen`].
    pub fn reserved() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = web::Data::new(Endpoint::default());
        endpoint.answer.store(200, Ordering::SeqCst);
        Self {
            port,
            endpoint,
            server: None,
        }
    }

    pub fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("the reserved port");
        let endpoint = self.endpoint.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(endpoint.clone())
                .route("/backchannel-logout", web::post().to(backchannel_logout))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        self.server = Some(server.handle());
        actix_web::rt::spawn(server);
    }

    /// Stops listening (connection refused again).
    pub async fn stop(&mut self) {
        if let Some(h) = self.server.take() {
            h.stop(false).await;
        }
    }

    /// The status later POSTs are answered with.
    pub fn answer(&self, status: u16) {
        self.endpoint.answer.store(status, Ordering::SeqCst);
    }

    /// Time taken before answering (so deliveries overlap).
    pub fn delay(&self, ms: u64) {
        self.endpoint.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/backchannel-logout", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.endpoint.received.lock().unwrap().clone()
    }

    /// What was received once `n` POSTs have arrived (within 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} back-channel POST(s)"), || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// Polls `check` until it gives a value (at most 10 s).
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the relying party expects of a logout token: the issuer, itself
/// as audience, and the `sub` and `sid` of the ID token it got.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub id_token: &'a Value,
    /// The time the relying party checks `iat`/`exp` against.
    pub now: i64,
}

/// Validates a logout token as Back-Channel Logout 1.0, 2.6 asks, against
/// the JWKS, and returns its claims.
#[track_caller]
pub fn validate(jwks: &str, r: &Received, e: &Expected<'_>) -> Value {
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    let token = r.logout_token.as_deref().expect("a logout_token parameter");
    let header = josekit::jwt::decode_header(token).unwrap();
    assert_eq!(header.claim("typ"), Some(&json!("logout+jwt")), "typ");
    let c = common::verify_with_jwks(jwks, token).expect("signed with a key in the JWKS");
    assert_eq!(c["iss"], e.issuer, "iss");
    assert_eq!(c["aud"], e.client_id, "aud");
    assert_eq!(c["sub"], e.id_token["sub"], "sub: the ID token's");
    assert!(c["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["sid"], e.id_token["sid"], "sid: the ID token's");
    assert!(c["sid"].as_str().is_some_and(|s| !s.is_empty()));
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 120, "two minutes");
    assert!(
        iat <= e.now + 5 && exp > e.now,
        "iat {iat} exp {exp} now {}",
        e.now
    );
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "jti");
    assert_eq!(c["events"], json!({ EVENT: {} }), "events");
    assert!(c.get("nonce").is_none(), "never a nonce");
    c
}
