//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592). Registration needs an initial access token an admin issued,
//! unless the configuration opens it. A registered client manages itself
//! with its registration access token, which is stored hashed and rotated
//! on every use (RFC 7592 section 3 lets the server issue a new one; it
//! must be in every response, and only its hash is kept). Dynamically
//! registered clients are never first-party and never get
//! `latchkey:admin`; with `client_credentials` they may only hold custom
//! scopes an admin marked machine-grantable and no group restricts.

use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::ServiceError;
use super::clients::{self, Client};
use crate::clock::to_db;
use crate::domain::alg::SigningAlg;
use crate::domain::audit::Actor;
use crate::domain::client::{
    CLIENT_NAME_MAX, ClientId, ClientInput, ClientKind, ClientSettings, GrantType,
    OOB_REDIRECT_URI, TokenAuthMethod, check_id_token_alg, refuse_private_destination,
};
use crate::domain::scope::ADMIN_SCOPE;
use crate::domain::secret::{OpaqueSecret, ct_eq, hash_secret};
use crate::oidc::response_type;
use crate::store::audit;
use crate::store::{DbConn, repo};

mod initial_access;

pub use initial_access::{IssuedInitialToken, issue_initial_access_token};

/// Client metadata (RFC 7591 section 2) as sent. Unknown members are
/// accepted and ignored, as section 2 asks.
/// `Debug` redacts `client_secret`.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub scope: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    /// Present in RFC 7592 updates; must name the client.
    pub client_id: Option<String>,
    /// Present in RFC 7592 updates; if sent, must be the current secret.
    pub client_secret: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl std::fmt::Debug for ClientMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMetadata")
            .field("redirect_uris", &self.redirect_uris)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("grant_types", &self.grant_types)
            .field("response_types", &self.response_types)
            .field("client_name", &self.client_name)
            .field("scope", &self.scope)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field(
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
            )
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .field(
                "backchannel_logout_session_required",
                &self.backchannel_logout_session_required,
            )
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("other", &self.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// RFC 7591 section 3.2.2 errors, and the token errors of RFC 7592.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// Missing, unknown, expired or used-up token (401).
    #[error("{0}")]
    InvalidToken(&'static str),
    /// Too many open registrations from this network (429).
    #[error("too many registrations from this network; try again later")]
    TooMany { retry_after_secs: u64 },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::store::StoreError> for RegistrationError {
    fn from(e: crate::store::StoreError) -> Self {
        RegistrationError::Service(e.into())
    }
}

impl From<diesel::result::Error> for RegistrationError {
    fn from(e: diesel::result::Error) -> Self {
        RegistrationError::Service(e.into())
    }
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
            RegistrationError::InvalidToken(_) => "invalid_token",
            RegistrationError::TooMany { .. } => "temporarily_unavailable",
            RegistrationError::Service(_) => "server_error",
        }
    }
}

/// The client information response (RFC 7591 3.2.1, RFC 7592 3).
#[derive(Serialize)]
pub struct ClientInformation {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub registration_access_token: String,
    pub registration_client_uri: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

fn metadata_error(e: crate::domain::Invalid) -> RegistrationError {
    let msg = e.to_string();
    if e.field.contains("redirect_uri") {
        RegistrationError::InvalidRedirectUri(msg)
    } else {
        RegistrationError::InvalidClientMetadata(msg)
    }
}

/// What registration takes from the configuration.
#[derive(Debug, Clone)]
pub struct RegistrationPolicy {
    pub issuer: String,
    /// `registration.open`: no initial access token needed.
    pub open: bool,
    /// `keys.algorithms`: the accepted `id_token_signed_response_alg`s.
    pub signing_algs: Vec<SigningAlg>,
    /// Open registrations one network may make per `window`; 0 = no limit.
    pub max_per_network: u32,
    pub window: time::Duration,
    /// The caller's network (`domain::net::throttle_key`), if known.
    pub network: Option<String>,
}

/// Checks metadata and turns it into client settings. The name is
/// `client_name`, or without one the first redirect URI's host (a
/// [`Named::Derived`] name). `held` are the legacy grants (implicit,
/// password) an administrator allowed the client: an RFC 7592 update keeps
/// them and may list them, but neither registration nor an update can ask
/// for one it does not hold.
fn settings_from(
    m: &ClientMetadata,
    policy: &RegistrationPolicy,
    held: &[GrantType],
) -> Result<(ClientSettings, Named), RegistrationError> {
    let bad = |s: &str| RegistrationError::InvalidClientMetadata(s.to_owned());
    let public = requested_auth_method(m)?.kind() == ClientKind::Public;
    // RFC 7591 2: grant_types defaults to authorization_code, and
    // response_types to code.
    let grant_types = m
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut parsed: Vec<GrantType> = grant_types
        .iter()
        .map(|g| g.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad(
                "grant_types may contain authorization_code, refresh_token, client_credentials \
                 and urn:ietf:params:oauth:grant-type:device_code",
            )
        })?;
    if let Some(g) = parsed.iter().find(|g| g.admin_only() && !held.contains(g)) {
        return Err(bad(&format!(
            "the {g} grant is not available through dynamic registration; \
             an administrator may allow it"
        )));
    }
    parsed.extend(held.iter().filter(|g| g.admin_only()));
    parsed.sort();
    parsed.dedup();
    if !response_type::consistent(m.response_types.as_deref(), &parsed) {
        return Err(bad(
            "response_types must be [\"code\"] with the authorization_code grant, and empty without it",
        ));
    }
    if m.scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == ADMIN_SCOPE))
    {
        return Err(bad("latchkey:admin cannot be registered dynamically"));
    }
    // The out-of-band page shows a code to whoever holds the browser; it is
    // for apps an administrator set up, never for self-registered ones.
    if m.redirect_uris.iter().any(|u| u == OOB_REDIRECT_URI) {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "{OOB_REDIRECT_URI} is only for clients an administrator registers"
        )));
    }
    let (name, named) = match m.client_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => (n.to_owned(), Named::Given),
        _ => (
            m.redirect_uris
                .first()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "Unnamed app".into()),
            Named::Derived,
        ),
    };
    let settings = ClientSettings::parse(&ClientInput {
        name,
        redirect_uris: m.redirect_uris.clone(),
        post_logout_redirect_uris: m.post_logout_redirect_uris.clone(),
        // Absent: the defaults every client gets (DEFAULT_SCOPES).
        scopes: m.scope.clone().into_iter().collect(),
        grant_types: parsed.iter().map(|g| g.as_str().to_owned()).collect(),
        public,
        first_party: false,
        require_mfa: false,
        audiences: Vec::new(),
        id_token_alg: m.id_token_signed_response_alg.clone(),
        // Which tokens a client may introspect is an administrator's call.
        resource_audiences: Vec::new(),
        backchannel_logout_uri: m.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: m.backchannel_logout_session_required.unwrap_or(false),
    })
    .map_err(metadata_error)?;
    if let Some(uri) = &settings.backchannel_logout_uri {
        refuse_private_destination(uri).map_err(metadata_error)?;
    }
    check_id_token_alg(settings.id_token_alg, &policy.signing_algs).map_err(|e| {
        RegistrationError::InvalidClientMetadata(format!(
            "id_token_signed_response_alg: {}",
            e.problem
        ))
    })?;
    Ok((settings, named))
}

/// A registration asking for `client_credentials` may only hold scopes
/// a dynamically registered client acting for itself may hold (custom
/// scopes an admin marked machine-grantable and not group-restricted);
/// anything else is `invalid_client_metadata`, not a silent narrowing.
fn check_machine_scopes(
    conn: &mut DbConn,
    settings: &ClientSettings,
) -> Result<(), RegistrationError> {
    if !settings.grant_types.contains(&GrantType::ClientCredentials) {
        return Ok(());
    }
    let registry = super::scopes::registry(conn)?;
    match registry.first_refused(&settings.allowed_scopes, true) {
        None => Ok(()),
        Some(s) => Err(RegistrationError::InvalidClientMetadata(format!(
            "scope: {s} is not grantable to a client acting for itself \
             (client_credentials); register without that grant or without that scope"
        ))),
    }
}

/// Whether the client chose its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Given,
    Derived,
}

/// Names are unique ignoring case, as for clients admins create (the
/// consent page shows the name; a look-alike of another app's name is
/// refused with `invalid_client_metadata`). A derived name that is taken
/// gets the start of the client id appended instead.
fn with_unique_name(
    conn: &mut DbConn,
    mut settings: ClientSettings,
    named: Named,
    client_id: &str,
    except: Option<&str>,
) -> Result<ClientSettings, RegistrationError> {
    let refused = |e: ServiceError| match e {
        ServiceError::Conflict(m) => RegistrationError::InvalidClientMetadata(format!(
            "client_name: {m}; choose another name"
        )),
        other => RegistrationError::Service(other),
    };
    match clients::ensure_unique_name(conn, &settings.name, except) {
        Ok(()) => Ok(settings),
        Err(ServiceError::Conflict(_)) if named == Named::Derived => {
            let suffix = format!(" ({})", client_id.get(..8).unwrap_or(client_id));
            let keep = CLIENT_NAME_MAX.saturating_sub(suffix.chars().count());
            settings.name = settings.name.chars().take(keep).collect::<String>() + &suffix;
            clients::ensure_unique_name(conn, &settings.name, except).map_err(refused)?;
            Ok(settings)
        }
        Err(e) => Err(refused(e)),
    }
}

fn information(
    client: &Client,
    secret: Option<String>,
    registration_access_token: String,
    issuer: &str,
) -> ClientInformation {
    let s = &client.settings;
    let grant_types: Vec<String> = s
        .grant_types
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    ClientInformation {
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        client_id_issued_at: client.created_at.unix_timestamp(),
        registration_access_token,
        registration_client_uri: format!("{issuer}/register/{}", client.client_id),
        client_name: s.name.clone(),
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        response_types: response_type::registered(&s.grant_types)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        grant_types,
        token_endpoint_auth_method: client.token_endpoint_auth_method.as_str(),
        scope: s.allowed_scopes.to_string(),
        id_token_signed_response_alg: s.id_token_alg.map(|a| a.as_str().to_owned()),
        backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: s.backchannel_logout_session_required,
        client_id: client.client_id.clone(),
    }
}

/// The method the metadata asks for; absent means `client_secret_basic`
/// (RFC 7591 2).
fn requested_auth_method(m: &ClientMetadata) -> Result<TokenAuthMethod, RegistrationError> {
    match m.token_endpoint_auth_method.as_deref() {
        None => Ok(TokenAuthMethod::ClientSecretBasic),
        Some(raw) => raw.parse().map_err(|()| {
            RegistrationError::InvalidClientMetadata(
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none"
                    .into(),
            )
        }),
    }
}

/// Counts an open registration against the caller's network, as the
/// transaction's first write; past the limit, refuses with the wait.
fn claim_open_registration(
    conn: &mut DbConn,
    policy: &RegistrationPolicy,
    now: OffsetDateTime,
) -> Result<(), RegistrationError> {
    let Some(network) = &policy.network else {
        return Ok(());
    };
    if policy.max_per_network == 0 {
        return Ok(());
    }
    let key = format!("register:{network}");
    match repo::throttle::over_limit(conn, &key, policy.max_per_network, policy.window, now)? {
        Some(retry_after_secs) => Err(RegistrationError::TooMany { retry_after_secs }),
        None => Ok(()),
    }
}

/// RFC 7591 3: registers a client. `initial_token` is required unless
/// the policy is `open`; each use counts against the token's allowance.
pub fn register(
    conn: &mut DbConn,
    metadata: &ClientMetadata,
    initial_token: Option<&str>,
    policy: &RegistrationPolicy,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<ClientInformation, RegistrationError> {
    let (open, issuer) = (policy.open, policy.issuer.as_str());
    let (settings, named) = settings_from(metadata, policy, &[])?;
    conn.transaction(|conn| {
        // Claim first: spending the initial token is the first write.
        match initial_token {
            Some(t) => {
                if !repo::initial_access::consume(conn, &hash_secret(t), to_db(now))? {
                    return Err(RegistrationError::InvalidToken(
                        "the initial access token is invalid, expired or used up",
                    ));
                }
            }
            None if open => claim_open_registration(conn, policy, now)?,
            None => {
                return Err(RegistrationError::InvalidToken(
                    "registration needs an initial access token",
                ));
            }
        }
        super::scopes::check_known(conn, &settings.allowed_scopes)
            .map_err(|e| RegistrationError::InvalidClientMetadata(e.to_string()))?;
        check_machine_scopes(conn, &settings)?;
        let client_id = ClientId::generate();
        let settings = with_unique_name(conn, settings, named, client_id.as_str(), None)?;
        let reg_token = OpaqueSecret::generate().map_err(ServiceError::from)?;
        let method = requested_auth_method(metadata)?;
        let issued = clients::insert_new(
            conn,
            client_id,
            settings,
            false,
            Some(reg_token.hash()),
            Some(method),
            now,
        )?;
        audit::record(
            conn,
            actor,
            "client.register",
            &issued.client.client_id,
            None,
            now,
        )?;
        let client = clients::find(conn, &issued.client.client_id)?;
        Ok(information(
            &client,
            issued.client_secret,
            reg_token.expose().to_owned(),
            issuer,
        ))
    })
}

/// Checks the registration access token by replacing it (one conditional
/// write, the transaction's first statement) and returns the client and
/// the new token. Unknown clients and wrong tokens look the same.
fn authorize_and_rotate(
    conn: &mut DbConn,
    client_id: &str,
    token: &str,
) -> Result<(Client, OpaqueSecret), RegistrationError> {
    let next = OpaqueSecret::generate().map_err(ServiceError::from)?;
    if !repo::clients::swap_registration_token(conn, client_id, &hash_secret(token), &next.hash())?
    {
        return Err(RegistrationError::InvalidToken(
            "the registration access token is invalid",
        ));
    }
    Ok((clients::find(conn, client_id)?, next))
}

/// RFC 7592 2.1: reads the client's registration (with a new
/// registration access token).
pub fn read(
    conn: &mut DbConn,
    client_id: &str,
    token: &str,
    issuer: &str,
) -> Result<ClientInformation, RegistrationError> {
    conn.transaction(|conn| {
        let (client, reg_token) = authorize_and_rotate(conn, client_id, token)?;
        Ok(information(
            &client,
            None,
            reg_token.expose().to_owned(),
            issuer,
        ))
    })
}

/// RFC 7592 2.2: replaces the registration with `metadata` (omitted
/// fields take their defaults). The client type cannot change.
pub fn update(
    conn: &mut DbConn,
    client_id: &str,
    token: &str,
    metadata: &ClientMetadata,
    policy: &RegistrationPolicy,
    now: OffsetDateTime,
) -> Result<ClientInformation, RegistrationError> {
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(RegistrationError::InvalidClientMetadata(
            "client_id must be sent and match the client".into(),
        ));
    }
    let issuer = policy.issuer.as_str();
    conn.transaction(|conn| {
        let (client, reg_token) = authorize_and_rotate(conn, client_id, token)?;
        let (mut settings, named) = settings_from(metadata, policy, &client.settings.grant_types)?;
        // Not client metadata: set by an administrator, kept on update.
        settings
            .resource_audiences
            .clone_from(&client.settings.resource_audiences);
        settings.require_mfa = client.settings.require_mfa;
        if settings.kind != client.settings.kind {
            return Err(RegistrationError::InvalidClientMetadata(
                "token_endpoint_auth_method cannot change between none and a secret".into(),
            ));
        }
        if let Some(sent) = &metadata.client_secret {
            let ok = client
                .secret_hash
                .as_deref()
                .is_some_and(|h| ct_eq(h.as_bytes(), hash_secret(sent).as_bytes()));
            if !ok {
                return Err(RegistrationError::InvalidClientMetadata(
                    "client_secret does not match".into(),
                ));
            }
        }
        super::scopes::check_known(conn, &settings.allowed_scopes)
            .map_err(|e| RegistrationError::InvalidClientMetadata(e.to_string()))?;
        check_machine_scopes(conn, &settings)?;
        let settings = with_unique_name(conn, settings, named, client_id, Some(client_id))?;
        let mut client = client;
        client.token_endpoint_auth_method = requested_auth_method(metadata)?;
        let client = clients::replace(conn, client, settings, None, None, now)?;
        Ok(information(
            &client,
            None,
            reg_token.expose().to_owned(),
            issuer,
        ))
    })
}

/// RFC 7592 2.3: deletes the client (its grants and tokens go with it).
pub fn delete(
    conn: &mut DbConn,
    client_id: &str,
    token: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(), RegistrationError> {
    conn.transaction(|conn| {
        if !repo::clients::delete_registered(conn, client_id, &hash_secret(token))? {
            return Err(RegistrationError::InvalidToken(
                "the registration access token is invalid",
            ));
        }
        audit::record(conn, actor, "client.unregister", client_id, None, now)?;
        Ok(())
    })
}
