//! The device authorization grant (RFC 8628), except polling (that is
//! `token::device_code`): the device authorization endpoint's use case
//! ([`start`]), and what a signed-in person does at `/device` ([`enter`]):
//! enter the code, see which app asks for what, and allow or deny it.
//!
//! Entering codes is throttled per browser session and per network with
//! the login throttle's counters (own keys), so the 20^8 user codes cannot
//! be guessed (RFC 8628 5.1): every attempt is claimed first, a wrong code
//! stays counted, a right one is given back, and past the limit even a
//! right code waits for the window's end. Answers go through the same
//! door (the consent form carries the code again).
//!
//! Allowing makes a grant exactly as `/authorize` does (user, the
//! session's `sid` and `auth_time`, the scope narrowed to what the user
//! may hold), remembers the consent, and stores the refresh token the
//! device will collect when `offline_access` was granted.

use std::net::IpAddr;
use std::sync::Arc;

use diesel::Connection;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::clients::{self, Client};
use super::sessions::ActiveSession;
use super::token::{ClientCache, PresentedClient, authenticate_client};
use super::{ServiceError, ServiceResult, authorize, scopes};
use crate::clock::{from_db, to_db};
use crate::domain::client::GrantType;
use crate::domain::device::UserCode;
use crate::domain::net;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::OpaqueSecret;
use crate::oidc::OAuthError;
use crate::oidc::device::{
    self as protocol, DeviceAuthorizationRequest, DeviceAuthorizationResponse,
};
use crate::store::models::{DeviceCodeRow, GrantRow, RefreshRow};
use crate::store::{Db, DbConn, repo};

/// What starting a device authorization needs besides the request.
pub struct StartContext<'a> {
    pub issuer: &'a str,
    pub now: OffsetDateTime,
    pub code_ttl_secs: i64,
    pub interval_secs: i64,
    /// Derives the refresh token the grant will hand out
    /// (`token::device_code::refresh_token_for`).
    pub refresh_key: Arc<Zeroizing<[u8; 32]>>,
    /// The caller's network (`domain::net::throttle_key`), if known.
    pub network: Option<String>,
    /// `device.max_starts_per_network` per `window`; 0 = no limit.
    pub max_starts_per_network: u32,
    pub window: Duration,
}

/// Why a device authorization was not started.
#[derive(Debug)]
pub enum StartError {
    OAuth(OAuthError),
    /// The caller's network started too many: 429 with `Retry-After`.
    TooMany {
        retry_after_secs: u64,
    },
}

impl From<OAuthError> for StartError {
    fn from(e: OAuthError) -> Self {
        StartError::OAuth(e)
    }
}

impl From<ServiceError> for StartError {
    fn from(e: ServiceError) -> Self {
        StartError::OAuth(e.into())
    }
}

impl<'a> StartContext<'a> {
    pub fn new(
        config: &'a crate::config::Config,
        keys: &crate::keys::KeyStore,
        now: OffsetDateTime,
    ) -> Self {
        let s = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            issuer: &config.issuer,
            now,
            code_ttl_secs: s(config.device.code_ttl_secs),
            interval_secs: s(config.device.interval_secs),
            refresh_key: keys.refresh_successor_key(),
            network: None,
            max_starts_per_network: config.device.max_starts_per_network,
            window: Duration::seconds(s(config.login.throttle_window_secs)),
        }
    }

    /// The same, for a caller from `network`.
    pub fn from_network(mut self, network: Option<String>) -> Self {
        self.network = network;
        self
    }
}

/// Fresh user codes tried before giving up (a clash needs a live code
/// among 20^8; several in a row mean something else is wrong).
const USER_CODE_ATTEMPTS: usize = 5;

/// `POST /device/authorize` (RFC 8628 3.1, 3.2): the client authenticates
/// as at the token endpoint (public clients send `client_id`), the request
/// is checked as `/authorize` would, and a new request is stored: hashes
/// of a 256-bit device code and of a user code no other stored request
/// holds.
pub async fn start(
    db: &Db,
    clients: &ClientCache,
    presented: PresentedClient,
    req: DeviceAuthorizationRequest,
    ctx: StartContext<'_>,
) -> Result<DeviceAuthorizationResponse, StartError> {
    let client = authenticate_client(db, clients, &presented).await?;
    let asked = protocol::validate(&client, &req)?;
    let device_code = OpaqueSecret::generate().map_err(ServiceError::from)?;
    let ttl = ctx.code_ttl_secs;
    let row = DeviceCodeRow {
        device_code_hash: device_code.hash(),
        user_code_hash: String::new(),
        client_id: client.client_id.clone(),
        scope: asked.scope.to_string(),
        resource: asked.resource,
        refresh_token_hash: super::token::device_code::refresh_token_for(
            &ctx.refresh_key,
            device_code.expose(),
        )
        .hash(),
        interval_secs: i32::try_from(ctx.interval_secs).unwrap_or(5),
        created_at: to_db(ctx.now),
        expires_at: to_db(ctx.now + Duration::seconds(ttl)),
        last_polled_at: None,
        grant_id: None,
        denied_at: None,
        redeemed_at: None,
    };
    let limit = StartLimit {
        network: ctx.network.clone(),
        max: ctx.max_starts_per_network,
        window: ctx.window,
        now: ctx.now,
    };
    let user_code = db
        .run(move |conn| match over_limit(conn, &limit)? {
            Some(retry_after_secs) => Ok(Err(retry_after_secs)),
            None => store_new(conn, row).map(Ok),
        })
        .await?
        .map_err(|retry_after_secs| StartError::TooMany { retry_after_secs })?;
    tracing::info!(client_id = %client.client_id, "device authorization started");
    Ok(DeviceAuthorizationResponse::new(
        ctx.issuer,
        device_code.expose().to_owned(),
        &user_code,
        ttl,
        ctx.interval_secs,
    ))
}

struct StartLimit {
    network: Option<String>,
    max: u32,
    window: Duration,
    now: OffsetDateTime,
}

/// Counts this start against the caller's network (the count is the
/// first statement, a write, as the claim-first rule says); the seconds
/// to wait when over the limit.
fn over_limit(conn: &mut DbConn, l: &StartLimit) -> ServiceResult<Option<u64>> {
    let Some(network) = l.network.as_deref().filter(|_| l.max > 0) else {
        return Ok(None);
    };
    let key = format!("device-start:{network}");
    Ok(repo::throttle::over_limit(
        conn, &key, l.max, l.window, l.now,
    )?)
}

/// Stores `row` under a fresh user code, drawing again when one is taken.
fn store_new(conn: &mut DbConn, mut row: DeviceCodeRow) -> ServiceResult<UserCode> {
    use diesel::result::{DatabaseErrorKind, Error};
    for _ in 0..USER_CODE_ATTEMPTS {
        let code = UserCode::generate()?;
        row.user_code_hash = code.hash();
        match repo::device_codes::insert(conn, &row) {
            Ok(()) => return Ok(code),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Internal(
        "no free user code after several attempts".into(),
    ))
}

/// Limits on entering user codes.
#[derive(Debug, Clone, Copy)]
pub struct EntryPolicy {
    pub max_failures_per_session: u32,
    pub max_failures_per_ip: u32,
    pub window: Duration,
}

impl EntryPolicy {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_failures_per_session: config.device.max_failures_per_session,
            max_failures_per_ip: config.device.max_failures_per_ip,
            window: Duration::seconds(
                i64::try_from(config.login.throttle_window_secs).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// What answering a device authorization needs besides the person.
#[derive(Debug, Clone, Copy)]
pub struct AnswerContext {
    pub now: OffsetDateTime,
    pub policy: EntryPolicy,
    /// The lifetime of the refresh token stored on approval: the shorter
    /// of `tokens.refresh_token_ttl_secs` and the family's absolute one.
    pub refresh_ttl: Duration,
}

impl AnswerContext {
    pub fn new(config: &crate::config::Config, now: OffsetDateTime) -> Self {
        let t = &config.tokens;
        let secs = t.refresh_token_ttl_secs.min(t.refresh_absolute_ttl_secs);
        Self {
            now,
            policy: EntryPolicy::from_config(config),
            refresh_ttl: Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)),
        }
    }
}

/// A code as a signed-in person typed it.
pub struct CodeAttempt {
    pub session: ActiveSession,
    pub user_code: String,
    pub ip: Option<IpAddr>,
}

/// Which app asks for what, for the person to confirm.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    /// The code as shown on the device: `XXXX-XXXX`.
    pub user_code: String,
    pub client_name: String,
    /// The client registered itself (RFC 7591): nobody vouched for its name.
    pub unverified: bool,
    /// `(scope, consent-page text)`, narrowed to what this user may hold.
    pub descriptions: Vec<(String, String)>,
    pub username: String,
}

/// The outcome of entering or answering a code.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A pending request's code: ask the person.
    Prompt(DevicePrompt),
    /// No pending request has this code (mistyped, expired, already
    /// answered). Counted against the limits.
    Unknown,
    /// Too many wrong codes: wait this long.
    Throttled {
        retry_after_secs: u64,
    },
    /// Nothing the app asks for may be granted to this user: the request
    /// was denied.
    NothingGrantable {
        client_name: String,
    },
    /// The app requires two-step sign-in and this session signed in with
    /// a password only: nothing was answered; the person steps up (gives
    /// their second factor) and enters the code again.
    NeedsSecondFactor,
    /// The app requires two-step sign-in and the person has no second
    /// factor: the request was denied.
    NoSecondFactor {
        client_name: String,
    },
    Approved {
        client_name: String,
    },
    Denied {
        client_name: String,
    },
}

/// The person typed a code (`allow` is `None`): the prompt for it, or why
/// not; or answered the prompt: allowed (`Some(true)`) or denied.
pub async fn enter(
    db: &Db,
    attempt: CodeAttempt,
    allow: Option<bool>,
    ctx: AnswerContext,
) -> ServiceResult<Entry> {
    db.run(move |conn| decide(conn, &attempt, allow, &ctx))
        .await
}

/// The throttle counters one attempt claims, each with its limit: this
/// session, and this network (IPv4 address, IPv6 /64).
fn throttle_keys(attempt: &CodeAttempt, p: &EntryPolicy) -> Vec<(String, u32)> {
    let mut keys = vec![(
        format!("device:session:{}", attempt.session.sid),
        p.max_failures_per_session,
    )];
    if let Some(ip) = attempt.ip {
        keys.push((
            format!("device:ip:{}", net::throttle_key(ip)),
            p.max_failures_per_ip,
        ));
    }
    keys
}

/// One transaction: claim the attempt on every counter (the first
/// statements are writes, so SQLite takes its write lock before anything
/// is read), then look the code up, then do what was asked.
fn decide(
    conn: &mut DbConn,
    attempt: &CodeAttempt,
    allow: Option<bool>,
    ctx: &AnswerContext,
) -> ServiceResult<Entry> {
    let (now, p) = (ctx.now, ctx.policy);
    let keys = throttle_keys(attempt, &p);
    conn.transaction(|conn| {
        let mut wait: Option<Duration> = None;
        for (key, max) in &keys {
            let (count, started) =
                repo::throttle::claim(conn, key, to_db(now), to_db(now - p.window))?;
            if i64::from(count) > i64::from(*max) {
                let left = from_db(started) + p.window - now;
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        let release = |conn: &mut DbConn| -> ServiceResult<()> {
            for (key, _) in &keys {
                repo::throttle::release(conn, key)?;
            }
            Ok(())
        };
        if let Some(wait) = wait {
            // A refused attempt is not counted again.
            release(conn)?;
            return Ok(Entry::Throttled {
                retry_after_secs: u64::try_from(wait.whole_seconds().max(1)).unwrap_or(1),
            });
        }
        let found = match UserCode::parse(&attempt.user_code) {
            Some(code) => repo::device_codes::pending_by_user_code(conn, &code.hash(), to_db(now))?
                .map(|row| (code, row)),
            None => None,
        };
        let Some((code, row)) = found else {
            return Ok(Entry::Unknown);
        };
        // A right code does not count against the person.
        release(conn)?;
        let client = clients::find(conn, &row.client_id)?;
        if !client.settings.grant_types.contains(&GrantType::DeviceCode) {
            // An administrator took the grant away since: nothing to allow.
            repo::device_codes::deny(conn, &row.device_code_hash, to_db(now))?;
            return Ok(Entry::Unknown);
        }
        let asked = ScopeSet::parse(&row.scope).map_err(ServiceError::Invalid)?;
        let scope = scopes::permitted_for_user(conn, &attempt.session.user, &asked)?;
        let client_name = client.settings.name.clone();
        if scope.is_empty() {
            repo::device_codes::deny(conn, &row.device_code_hash, to_db(now))?;
            return Ok(Entry::NothingGrantable { client_name });
        }
        if client.settings.require_mfa && !attempt.session.amr.is_mfa() {
            if super::mfa::has_factor(conn, &attempt.session.user.id)? {
                return Ok(Entry::NeedsSecondFactor);
            }
            repo::device_codes::deny(conn, &row.device_code_hash, to_db(now))?;
            return Ok(Entry::NoSecondFactor { client_name });
        }
        match allow {
            None => Ok(Entry::Prompt(DevicePrompt {
                user_code: code.display(),
                unverified: client.registration_token_hash.is_some(),
                descriptions: scopes::descriptions(conn, &scope)?,
                username: attempt.session.user.username.clone(),
                client_name,
            })),
            Some(false) => {
                if repo::device_codes::deny(conn, &row.device_code_hash, to_db(now))? == 0 {
                    return Ok(Entry::Unknown);
                }
                tracing::info!(client_id = %client.client_id, user_id = %attempt.session.user.id, "device authorization denied");
                Ok(Entry::Denied { client_name })
            }
            Some(true) => {
                if !approve(conn, &row, &client, &scope, &attempt.session, ctx)? {
                    return Ok(Entry::Unknown);
                }
                tracing::info!(client_id = %client.client_id, user_id = %attempt.session.user.id, "device authorized");
                Ok(Entry::Approved { client_name })
            }
        }
    })
}

/// Makes the grant and ties the request to it; `false` when the request
/// was answered meanwhile or expired (then nothing is kept).
fn approve(
    conn: &mut DbConn,
    row: &DeviceCodeRow,
    client: &Client,
    scope: &ScopeSet,
    session: &ActiveSession,
    ctx: &AnswerContext,
) -> ServiceResult<bool> {
    let now = to_db(ctx.now);
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        user_id: session.user.id.clone(),
        scope: scope.to_string(),
        auth_time: to_db(session.auth_time),
        sid: Some(session.sid.clone()),
        created_at: now,
        revoked_at: None,
        resource: row.resource.clone(),
        amr: Some(session.amr.to_string()),
    };
    // In a savepoint: if the request was answered meanwhile, the grant
    // goes, the throttle claims of the outer transaction stay.
    let tied = conn.transaction(|conn| {
        repo::grants::insert_grant(conn, &grant)?;
        if repo::device_codes::approve(conn, &row.device_code_hash, &grant.id, now)? == 0 {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        Ok(())
    });
    match tied {
        Ok(()) => {}
        Err(diesel::result::Error::RollbackTransaction) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    if scope.contains("offline_access") {
        repo::grants::insert_refresh(
            conn,
            &RefreshRow {
                token_hash: row.refresh_token_hash.clone(),
                grant_id: grant.id.clone(),
                scope: grant.scope.clone(),
                created_at: now,
                expires_at: to_db(ctx.now + ctx.refresh_ttl),
                rotated_at: None,
            },
        )?;
    }
    authorize::record_consent(conn, &session.user.id, &client.client_id, scope, ctx.now)?;
    Ok(true)
}
