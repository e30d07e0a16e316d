//! Prometheus metrics (`[metrics]`), recorded through [`Metrics`], a cheap
//! handle every layer from `store` up may hold. Off, the handle is `None`
//! inside and every recording call is one branch. On, it owns its own
//! `prometheus_client` registry (no global one) with typed label sets.
//!
//! Cardinality is bounded by construction: labels are `&'static str` from
//! fixed sets (grant types, error codes, results, algorithms), the HTTP
//! status, and the route *pattern* (`/admin/api/v1/users/{username}`,
//! never the raw path; unmatched requests share one label). No user,
//! token or session value is ever a label; the `client_id` of an
//! authenticated client only with `metrics.client_id_labels`.
//!
//! Gauges that describe state (pool, key age, logout backlog) are set at
//! scrape time from a [`Sample`] (`service::metrics::scrape`).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{
    AlgLabel, EventLabel, HttpLabels, ResultLabel, RouteLabel, SignInLabels, TokenErrorLabels,
    TokenLabels,
};
pub use super::labels::{
    DeliveryResult, KeyEvent, RegistrationResult, SignInMethod, SignInResult, UNMATCHED_ROUTE,
    grant_label, method_label,
};
use crate::config::MetricsConfig;
use crate::domain::alg::SigningAlg;

/// `Content-Type` of a scrape: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Seconds; from half a millisecond (a cached `client_credentials` token)
/// to 10 s (a request that waited for the database).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Seconds to check out a pooled connection: usually microseconds.
const CHECKOUT_BUCKETS: [f64; 12] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The handle services record through. Clone is an `Arc` clone (or
/// nothing, when off).
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Metrics").field(&self.is_enabled()).finish()
    }
}

struct Inner {
    registry: Registry,
    client_id_labels: bool,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    tokens_issued: Family<TokenLabels, Counter>,
    token_errors: Family<TokenErrorLabels, Counter>,
    refresh_reuse: Counter,
    sign_ins: Family<SignInLabels, Counter>,
    registrations: Family<ResultLabel, Counter>,
    key_events: Family<EventLabel, Counter>,
    key_age: Family<AlgLabel, Gauge>,
    logout_deliveries: Family<ResultLabel, Counter>,
    logout_backlog: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    pool_waiting: Gauge<i64, AtomicI64>,
    checkout: Histogram,
    blocking_queued: Gauge<i64, AtomicI64>,
}

/// What a scrape reads from the rest of the server, set as gauges.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Connections the pool holds, idle ones among them, and its maximum.
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    /// Seconds since each algorithm's active key began signing.
    pub key_ages: Vec<(SigningAlg, i64)>,
    /// Logout tokens neither delivered nor given up; `None` when the
    /// database could not be asked (the gauge keeps its last value).
    pub logout_backlog: Option<i64>,
}

impl Metrics {
    /// The handle `[metrics]` asks for: recording, or off.
    pub fn from_config(config: &MetricsConfig) -> Self {
        if config.enabled {
            Self::enabled(config.client_id_labels)
        } else {
            Self::disabled()
        }
    }

    /// Off: every call does nothing.
    pub fn disabled() -> Self {
        Metrics(None)
    }

    /// On, with a fresh registry.
    pub fn enabled(client_id_labels: bool) -> Self {
        Metrics(Some(Arc::new(Inner::new(client_id_labels))))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Whether token counters carry `client_id` (so callers only copy it
    /// when it is used).
    pub fn wants_client_id(&self) -> bool {
        self.0.as_ref().is_some_and(|m| m.client_id_labels)
    }

    /// One HTTP request: `route` is the matched pattern (`None`: no route
    /// matched), `method` from [`method_label`].
    pub fn http_request(
        &self,
        route: Option<String>,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let Some(m) = &self.0 else { return };
        let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
        m.http_duration
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        m.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// A successful token response; `alg` signed its access token.
    pub fn token_issued(&self, grant_type: &'static str, alg: SigningAlg, client_id: Option<&str>) {
        let Some(m) = &self.0 else { return };
        m.tokens_issued
            .get_or_create(&TokenLabels {
                grant_type,
                alg: alg.as_str(),
                client_id: m.client_id(client_id),
            })
            .inc();
    }

    /// A token endpoint error answer with its OAuth error code;
    /// `client_id` only of an authenticated client.
    pub fn token_error(
        &self,
        grant_type: &'static str,
        error: &'static str,
        client_id: Option<&str>,
    ) {
        let Some(m) = &self.0 else { return };
        m.token_errors
            .get_or_create(&TokenErrorLabels {
                grant_type,
                error,
                client_id: m.client_id(client_id),
            })
            .inc();
    }

    /// A rotated refresh token used again (its family was revoked).
    pub fn refresh_token_reuse(&self) {
        if let Some(m) = &self.0 {
            m.refresh_reuse.inc();
        }
    }

    pub fn sign_in(&self, result: SignInResult, method: SignInMethod) {
        let Some(m) = &self.0 else { return };
        m.sign_ins
            .get_or_create(&SignInLabels {
                result: result.as_str(),
                method: method.as_str(),
            })
            .inc();
    }

    /// A dynamic client registration (RFC 7591) attempt.
    pub fn registration(&self, result: RegistrationResult) {
        let Some(m) = &self.0 else { return };
        m.registrations
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    /// A signing key lifecycle step this instance applied.
    pub fn key_event(&self, event: KeyEvent) {
        let Some(m) = &self.0 else { return };
        m.key_events
            .get_or_create(&EventLabel {
                event: event.as_str(),
            })
            .inc();
    }

    /// One back-channel logout delivery attempt.
    pub fn logout_delivery(&self, result: DeliveryResult) {
        let Some(m) = &self.0 else { return };
        m.logout_deliveries
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    /// Time spent waiting for a pooled connection.
    pub fn db_checkout(&self, elapsed: Duration) {
        if let Some(m) = &self.0 {
            m.checkout.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a task queued for the blocking pool until the guard drops
    /// (when the task starts, or is dropped unstarted).
    pub fn blocking_queued(&self) -> GaugeGuard {
        GaugeGuard::enter(self.0.as_ref().map(|m| &m.blocking_queued))
    }

    /// Counts a task waiting for a pooled connection until the guard drops.
    pub fn pool_waiting(&self) -> GaugeGuard {
        GaugeGuard::enter(self.0.as_ref().map(|m| &m.pool_waiting))
    }

    /// Sets the scrape-time gauges from `sample` and encodes everything
    /// in the Prometheus text format; `None` when off.
    pub fn render(&self, sample: &Sample) -> Option<String> {
        let m = self.0.as_ref()?;
        m.pool_connections.set(i64::from(sample.pool_connections));
        m.pool_idle.set(i64::from(sample.pool_idle));
        m.pool_max.set(i64::from(sample.pool_max));
        m.key_age.clear();
        for (alg, age) in &sample.key_ages {
            m.key_age
                .get_or_create(&AlgLabel { alg: alg.as_str() })
                .set(*age);
        }
        if let Some(n) = sample.logout_backlog {
            m.logout_backlog.set(n);
        }
        let mut out = String::with_capacity(8 * 1024);
        match prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry) {
            Ok(()) => Some(out),
            Err(e) => {
                tracing::error!(error = %e, "encoding metrics failed");
                None
            }
        }
    }
}

/// Decrements its gauge when dropped (a no-op guard when metrics are off).
pub struct GaugeGuard(Option<Gauge<i64, AtomicI64>>);

impl GaugeGuard {
    fn enter(gauge: Option<&Gauge<i64, AtomicI64>>) -> Self {
        GaugeGuard(gauge.map(|g| {
            g.inc();
            g.clone()
        }))
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
    }
}

impl Inner {
    fn client_id(&self, client_id: Option<&str>) -> Option<String> {
        if self.client_id_labels {
            client_id.map(str::to_owned)
        } else {
            None
        }
    }

    fn new(client_id_labels: bool) -> Self {
        let mut r = Registry::with_prefix("latchkey");
        let http_requests = Family::<HttpLabels, Counter>::default();
        r.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern",
            http_duration.clone(),
        );
        let tokens_issued = Family::<TokenLabels, Counter>::default();
        r.register(
            "tokens_issued",
            "Token endpoint responses that issued tokens, by grant type and access token algorithm",
            tokens_issued.clone(),
        );
        let token_errors = Family::<TokenErrorLabels, Counter>::default();
        r.register(
            "token_errors",
            "Token endpoint error responses by grant type and OAuth error code",
            token_errors.clone(),
        );
        let refresh_reuse = Counter::default();
        r.register(
            "refresh_token_reuse",
            "Rotated refresh tokens used again (the family was revoked)",
            refresh_reuse.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        r.register(
            "sign_ins",
            "Sign-in attempts by result and method",
            sign_ins.clone(),
        );
        let registrations = Family::<ResultLabel, Counter>::default();
        r.register(
            "client_registrations",
            "Dynamic client registrations (RFC 7591) by result",
            registrations.clone(),
        );
        let key_events = Family::<EventLabel, Counter>::default();
        r.register(
            "signing_key_events",
            "Signing key lifecycle steps this instance applied",
            key_events.clone(),
        );
        let key_age = Family::<AlgLabel, Gauge>::default();
        r.register(
            "signing_key_age_seconds",
            "Seconds since the active signing key of each algorithm began signing",
            key_age.clone(),
        );
        let logout_deliveries = Family::<ResultLabel, Counter>::default();
        r.register(
            "logout_deliveries",
            "Back-channel logout delivery attempts by result",
            logout_deliveries.clone(),
        );
        let logout_backlog = Gauge::default();
        r.register(
            "logout_outbox_backlog",
            "Logout tokens waiting for delivery (neither delivered nor given up)",
            logout_backlog.clone(),
        );
        let pool_connections = Gauge::default();
        r.register(
            "db_pool_connections",
            "Database connections the pool holds (in use and idle)",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        r.register(
            "db_pool_idle_connections",
            "Idle database connections in the pool",
            pool_idle.clone(),
        );
        let pool_max = Gauge::default();
        r.register(
            "db_pool_max_connections",
            "The pool's maximum size (database.pool_max_size)",
            pool_max.clone(),
        );
        let pool_waiting = Gauge::<i64, AtomicI64>::default();
        r.register(
            "db_pool_waiting",
            "Tasks waiting for a database connection",
            pool_waiting.clone(),
        );
        let checkout = Histogram::new(CHECKOUT_BUCKETS);
        r.register(
            "db_checkout_duration_seconds",
            "Time to check out a pooled database connection",
            checkout.clone(),
        );
        let blocking_queued = Gauge::<i64, AtomicI64>::default();
        r.register(
            "blocking_queue_depth",
            "Database tasks queued for the blocking thread pool, not yet started",
            blocking_queued.clone(),
        );
        let build = Family::<BuildInfo, Gauge>::default();
        build.get_or_create(&BuildInfo).set(1);
        r.register("build_info", "Latchkey's version (always 1)", build);
        Inner {
            registry: r,
            client_id_labels,
            http_requests,
            http_duration,
            tokens_issued,
            token_errors,
            refresh_reuse,
            sign_ins,
            registrations,
            key_events,
            key_age,
            logout_deliveries,
            logout_backlog,
            pool_connections,
            pool_idle,
            pool_max,
            pool_waiting,
            checkout,
            blocking_queued,
        }
    }
}

/// `latchkey_build_info{version="…"} 1`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct BuildInfo;

impl EncodeLabelSet for BuildInfo {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [("version", env!("CARGO_PKG_VERSION"))].encode(encoder)
    }
}

/// How long ago `since` was, in whole seconds (never negative).
pub fn age_secs(now: time::OffsetDateTime, since: time::OffsetDateTime) -> i64 {
    (now - since).whole_seconds().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry with one event of every kind, rendered.
    fn one_of_each(client_id_labels: bool) -> String {
        let m = Metrics::enabled(client_id_labels);
        m.http_request(
            Some("/users/{username}".into()),
            "GET",
            200,
            Duration::from_millis(3),
        );
        m.http_request(None, "GET", 404, Duration::from_micros(200));
        m.token_issued("client_credentials", SigningAlg::ES256, Some("app-1"));
        m.token_error("refresh_token", "invalid_grant", None);
        m.refresh_token_reuse();
        m.sign_in(SignInResult::Throttled, SignInMethod::Password);
        m.registration(RegistrationResult::Created);
        m.key_event(KeyEvent::Rotate);
        m.logout_delivery(DeliveryResult::Delivered);
        m.db_checkout(Duration::from_micros(20));
        let queued = m.blocking_queued();
        let waiting = m.pool_waiting();
        let text = m
            .render(&Sample {
                pool_connections: 3,
                pool_idle: 2,
                pool_max: 10,
                key_ages: vec![(SigningAlg::RS256, 42)],
                logout_backlog: Some(5),
            })
            .unwrap();
        drop((queued, waiting));
        text
    }

    fn family_names(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn off_records_nothing_and_renders_nothing() {
        let m = Metrics::disabled();
        m.token_issued("client_credentials", SigningAlg::ES256, Some("x"));
        drop(m.blocking_queued());
        assert!(!m.is_enabled() && !m.wants_client_id());
        assert_eq!(m.render(&Sample::default()), None);
    }

    #[test]
    fn every_family_renders_with_its_labels() {
        let text = one_of_each(false);
        for line in [
            "latchkey_http_requests_total{route=\"/users/{username}\",method=\"GET\",status=\"200\"} 1",
            "latchkey_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            "latchkey_tokens_issued_total{grant_type=\"client_credentials\",alg=\"ES256\"} 1",
            "latchkey_token_errors_total{grant_type=\"refresh_token\",error=\"invalid_grant\"} 1",
            "latchkey_refresh_token_reuse_total 1",
            "latchkey_sign_ins_total{result=\"throttled\",method=\"password\"} 1",
            "latchkey_client_registrations_total{result=\"created\"} 1",
            "latchkey_signing_key_events_total{event=\"rotate\"} 1",
            "latchkey_signing_key_age_seconds{alg=\"RS256\"} 42",
            "latchkey_logout_deliveries_total{result=\"delivered\"} 1",
            "latchkey_logout_outbox_backlog 5",
            "latchkey_db_pool_connections 3",
            "latchkey_db_pool_idle_connections 2",
            "latchkey_db_pool_max_connections 10",
            "latchkey_db_checkout_duration_seconds_count 1",
            "latchkey_http_request_duration_seconds_bucket{route=\"/users/{username}\",le=\"0.005\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // The guards were counted while held: 1 at render, 0 after.
        assert!(text.lines().any(|l| l == "latchkey_blocking_queue_depth 1"));
        assert!(text.lines().any(|l| l == "latchkey_db_pool_waiting 1"));
        assert!(text.contains("latchkey_build_info{version=\""));
        // client_id only when asked for.
        assert!(!text.contains("client_id"));
        assert!(one_of_each(true).contains(
            "latchkey_tokens_issued_total{grant_type=\"client_credentials\",alg=\"ES256\",client_id=\"app-1\"} 1"
        ));
    }

    /// The Grafana dashboard names only metrics that exist.
    #[test]
    fn the_dashboard_uses_these_names() {
        let families = family_names(&one_of_each(false));
        let dashboard = include_str!("../../deploy/grafana-latchkey.json");
        let mut used = Vec::new();
        let mut rest = dashboard;
        while let Some(at) = rest.find("latchkey_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            used.push(name);
        }
        assert!(used.len() > 15, "{used:?}");
        for name in used {
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                families.iter().any(|f| f == family),
                "the dashboard names {name}, which is not among {families:?}"
            );
        }
    }
}
