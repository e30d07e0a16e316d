//! Client registrations. Secrets are generated here, shown once to the
//! caller, and only their SHA-256 is stored.

use serde::Serialize;
use time::OffsetDateTime;

use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::domain::alg::SigningAlg;
use crate::domain::client::{
    ClientId, ClientInput, ClientKind, ClientSettings, GrantType, TokenAuthMethod,
    check_id_token_alg, secret_changed_at,
};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::OpaqueSecret;
use crate::store::models::ClientRow;
use crate::store::{DbConn, repo};

pub use crate::domain::client::Client;

/// A client as shown to admins (no secret, no hash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub client_type: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub first_party: bool,
    pub audiences: Vec<String>,
    pub id_token_alg: Option<String>,
    pub resource_audiences: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub require_mfa: bool,
    pub locked: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The answer to create and rotate-secret: the only time the secret exists
/// in clear.
#[derive(Serialize)]
pub struct IssuedClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for IssuedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedClient")
            .field("client", &self.client)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Client {
    pub fn from_row(row: ClientRow) -> ServiceResult<Self> {
        let corrupt = |what: &str| {
            ServiceError::Internal(format!(
                "client {:?}: stored {what} unreadable",
                row.client_id
            ))
        };
        let redirect_uris: Vec<String> =
            serde_json::from_str(&row.redirect_uris).map_err(|_| corrupt("redirect_uris"))?;
        let post_logout_redirect_uris: Vec<String> =
            serde_json::from_str(&row.post_logout_redirect_uris)
                .map_err(|_| corrupt("post_logout_redirect_uris"))?;
        let allowed_scopes = ScopeSet::parse(&row.allowed_scopes).map_err(|_| corrupt("scopes"))?;
        let audiences: Vec<String> =
            serde_json::from_str(&row.audiences).map_err(|_| corrupt("audiences"))?;
        let resource_audiences: Vec<String> = serde_json::from_str(&row.resource_audiences)
            .map_err(|_| corrupt("resource_audiences"))?;
        let id_token_alg = row
            .id_token_alg
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("id_token_alg"))?;
        let token_endpoint_auth_method = row
            .token_endpoint_auth_method
            .parse()
            .map_err(|()| corrupt("token_endpoint_auth_method"))?;
        let grant_types = row
            .grant_types
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::parse::<GrantType>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("grant_types"))?;
        Ok(Self {
            client_id: row.client_id,
            secret_hash: row.secret_hash,
            settings: ClientSettings {
                name: row.name,
                redirect_uris,
                post_logout_redirect_uris,
                allowed_scopes,
                grant_types,
                kind: if row.is_public {
                    ClientKind::Public
                } else {
                    ClientKind::Confidential
                },
                first_party: row.first_party,
                audiences,
                id_token_alg,
                resource_audiences,
                backchannel_logout_uri: row.backchannel_logout_uri,
                backchannel_logout_session_required: row.backchannel_logout_session_required,
                require_mfa: row.require_mfa,
            },
            created_at: from_db(row.created_at),
            updated_at: from_db(row.updated_at),
            locked: row.locked,
            registration_token_hash: row.registration_token_hash,
            secret_changed_at: row.secret_changed_at.map(from_db),
            token_endpoint_auth_method,
        })
    }

    pub fn view(&self) -> ClientView {
        let s = &self.settings;
        ClientView {
            client_id: self.client_id.clone(),
            name: s.name.clone(),
            client_type: match s.kind {
                ClientKind::Public => "public",
                ClientKind::Confidential => "confidential",
            },
            redirect_uris: s.redirect_uris.clone(),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            scopes: s.allowed_scopes.iter().map(str::to_owned).collect(),
            grant_types: s
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            first_party: s.first_party,
            audiences: s.audiences.clone(),
            id_token_alg: s.id_token_alg.map(|a| a.as_str().to_owned()),
            resource_audiences: s.resource_audiences.clone(),
            backchannel_logout_uri: s.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: s.backchannel_logout_session_required,
            require_mfa: s.require_mfa,
            locked: self.locked,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The row for `client` with `settings` (new or current) as of `updated_at`.
fn to_row(
    client: &Client,
    settings: &ClientSettings,
    updated_at: OffsetDateTime,
) -> ServiceResult<ClientRow> {
    let s = settings;
    let json = |v: &Vec<String>| {
        serde_json::to_string(v).map_err(|e| ServiceError::Internal(e.to_string()))
    };
    Ok(ClientRow {
        client_id: client.client_id.clone(),
        secret_hash: client.secret_hash.clone(),
        name: s.name.clone(),
        redirect_uris: json(&s.redirect_uris)?,
        post_logout_redirect_uris: json(&s.post_logout_redirect_uris)?,
        allowed_scopes: s.allowed_scopes.to_string(),
        grant_types: s
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        is_public: s.kind == ClientKind::Public,
        first_party: s.first_party,
        require_mfa: s.require_mfa,
        created_at: to_db(client.created_at),
        updated_at: to_db(updated_at),
        audiences: json(&s.audiences)?,
        id_token_alg: s.id_token_alg.map(|a| a.as_str().to_owned()),
        locked: client.locked,
        registration_token_hash: client.registration_token_hash.clone(),
        secret_changed_at: client.secret_changed_at.map(to_db),
        resource_audiences: json(&s.resource_audiences)?,
        backchannel_logout_uri: s.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: s.backchannel_logout_session_required,
        token_endpoint_auth_method: client
            .token_endpoint_auth_method
            .fitting(s.kind)
            .as_str()
            .to_owned(),
    })
}

/// Registers a client. `client_id` is generated unless given; a taken id is
/// a `Conflict`. Confidential clients get a secret, returned once. Every
/// scope must be built in or defined (see [`super::scopes`]), and an
/// `id_token_alg` must be one of `signing_algs` (`keys.algorithms`).
pub fn create(
    conn: &mut DbConn,
    client_id: Option<&str>,
    input: &ClientInput,
    signing_algs: &[SigningAlg],
    now: OffsetDateTime,
) -> ServiceResult<IssuedClient> {
    let settings = ClientSettings::parse(input)?;
    check_id_token_alg(settings.id_token_alg, signing_algs)?;
    super::scopes::check_known(conn, &settings.allowed_scopes)?;
    ensure_unique_name(conn, &settings.name, None)?;
    let client_id = match client_id {
        Some(id) => ClientId::parse(id)?,
        None => ClientId::generate(),
    };
    insert_new(conn, client_id, settings, false, None, None, now)
}

/// Inserts a validated client (scopes already checked) with a fresh secret
/// when confidential.
pub(crate) fn insert_new(
    conn: &mut DbConn,
    client_id: ClientId,
    settings: ClientSettings,
    locked: bool,
    registration_token_hash: Option<String>,
    auth_method: Option<TokenAuthMethod>,
    now: OffsetDateTime,
) -> ServiceResult<IssuedClient> {
    let secret = match settings.kind {
        ClientKind::Confidential => Some(OpaqueSecret::generate()?),
        ClientKind::Public => None,
    };
    let kind = settings.kind;
    let client = Client {
        client_id: client_id.as_str().to_owned(),
        secret_hash: secret.as_ref().map(OpaqueSecret::hash),
        settings,
        created_at: now,
        updated_at: now,
        locked,
        registration_token_hash,
        secret_changed_at: None,
        token_endpoint_auth_method: auth_method
            .unwrap_or(TokenAuthMethod::default_for(kind))
            .fitting(kind),
    };
    let row = to_row(&client, &client.settings, now)?;
    match repo::clients::insert(conn, &row) {
        Ok(()) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(ServiceError::Conflict(format!(
                "client_id {:?} is already registered",
                client_id.as_str()
            )));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(IssuedClient {
        client: client.view(),
        client_secret: secret.map(|s| s.expose().to_owned()),
    })
}

/// Two apps with one name would look alike on the consent page: names are
/// unique, ignoring case. Admin changes and dynamic registration alike.
pub(crate) fn ensure_unique_name(
    conn: &mut DbConn,
    name: &str,
    except: Option<&str>,
) -> ServiceResult<()> {
    let taken = repo::clients::list(conn)?.into_iter().any(|c| {
        Some(c.client_id.as_str()) != except && c.name.to_lowercase() == name.to_lowercase()
    });
    if taken {
        return Err(ServiceError::Conflict(format!(
            "another client is already named {name:?}"
        )));
    }
    Ok(())
}

/// Refuses changes to a client declared in the configuration file.
fn ensure_unlocked(client: &Client) -> ServiceResult<()> {
    if client.locked {
        return Err(ServiceError::Locked(format!(
            "client {:?} is declared in the configuration file; change it there",
            client.client_id
        )));
    }
    Ok(())
}

pub fn find(conn: &mut DbConn, client_id: &str) -> ServiceResult<Client> {
    let row = repo::clients::by_id(conn, client_id)?.ok_or_else(|| ServiceError::NotFound {
        what: "client",
        id: client_id.to_owned(),
    })?;
    Client::from_row(row)
}

/// Like [`find`], but an unknown client is `None`, not an error.
pub fn find_optional(conn: &mut DbConn, client_id: &str) -> ServiceResult<Option<Client>> {
    repo::clients::by_id(conn, client_id)?
        .map(Client::from_row)
        .transpose()
}

pub fn list(conn: &mut DbConn) -> ServiceResult<Vec<ClientView>> {
    repo::clients::list(conn)?
        .into_iter()
        .map(|r| Client::from_row(r).map(|c| c.view()))
        .collect()
}

/// Changes to apply; `None` keeps the current value.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` (JSON `null`) clears it.
    #[serde(deserialize_with = "present_or_null")]
    pub id_token_alg: Option<Option<String>>,
    pub resource_audiences: Option<Vec<String>>,
    /// `Some(None)` (JSON `null`) clears it.
    #[serde(deserialize_with = "present_or_null")]
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
    pub require_mfa: Option<bool>,
}

/// Applies changes, re-validating the whole registration. The client type
/// (public or confidential) does not change. A new `id_token_alg` must be
/// one of `signing_algs` (`keys.algorithms`); an unchanged one is kept
/// even if no longer configured, so other edits stay possible.
pub fn update(
    conn: &mut DbConn,
    client_id: &str,
    changes: ClientChanges,
    signing_algs: &[SigningAlg],
    now: OffsetDateTime,
) -> ServiceResult<ClientView> {
    let current = find(conn, client_id)?;
    ensure_unlocked(&current)?;
    let cur = current.settings.clone();
    let input = ClientInput {
        name: changes.name.unwrap_or(cur.name),
        redirect_uris: changes.redirect_uris.unwrap_or(cur.redirect_uris),
        post_logout_redirect_uris: changes
            .post_logout_redirect_uris
            .unwrap_or(cur.post_logout_redirect_uris),
        scopes: changes
            .scopes
            .unwrap_or_else(|| cur.allowed_scopes.iter().map(str::to_owned).collect()),
        grant_types: changes.grant_types.unwrap_or_else(|| {
            cur.grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect()
        }),
        public: cur.kind == ClientKind::Public,
        first_party: changes.first_party.unwrap_or(cur.first_party),
        audiences: changes.audiences.unwrap_or(cur.audiences),
        id_token_alg: changes
            .id_token_alg
            .unwrap_or(cur.id_token_alg.map(|a| a.as_str().to_owned())),
        resource_audiences: changes.resource_audiences.unwrap_or(cur.resource_audiences),
        backchannel_logout_uri: changes
            .backchannel_logout_uri
            .unwrap_or(cur.backchannel_logout_uri),
        backchannel_logout_session_required: changes
            .backchannel_logout_session_required
            .unwrap_or(cur.backchannel_logout_session_required),
        require_mfa: changes.require_mfa.unwrap_or(cur.require_mfa),
    };
    let settings = ClientSettings::parse(&input)?;
    if settings.id_token_alg != cur.id_token_alg {
        check_id_token_alg(settings.id_token_alg, signing_algs)?;
    }
    super::scopes::check_known(conn, &settings.allowed_scopes)?;
    ensure_unique_name(conn, &settings.name, Some(client_id))?;
    let row = to_row(&current, &settings, now)?;
    repo::clients::update(conn, &row)?;
    Client::from_row(row).map(|c| c.view())
}

/// Replaces a confidential client's secret; the old one stops working.
pub fn rotate_secret(
    conn: &mut DbConn,
    client_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<IssuedClient> {
    let mut current = find(conn, client_id)?;
    ensure_unlocked(&current)?;
    if current.settings.kind == ClientKind::Public {
        return Err(ServiceError::Conflict(format!(
            "client {client_id:?} is public and has no secret"
        )));
    }
    let secret = OpaqueSecret::generate()?;
    current.secret_hash = Some(secret.hash());
    current.secret_changed_at = Some(secret_changed_at(now));
    let row = to_row(&current, &current.settings, now)?;
    repo::clients::update(conn, &row)?;
    Ok(IssuedClient {
        client: Client::from_row(row)?.view(),
        client_secret: Some(secret.expose().to_owned()),
    })
}

/// Deletes a client. Its grants, refresh tokens, codes and consents go
/// with it (foreign keys), so its access tokens introspect as inactive.
pub fn delete(conn: &mut DbConn, client_id: &str) -> ServiceResult<()> {
    if let Some(c) = find_optional(conn, client_id)? {
        ensure_unlocked(&c)?;
    }
    if repo::clients::delete(conn, client_id)? == 0 {
        return Err(ServiceError::NotFound {
            what: "client",
            id: client_id.to_owned(),
        });
    }
    Ok(())
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Replaces a client's settings (already validated, scopes checked)
/// without the lock check: for its own RFC 7592 management and for the
/// configuration file. `secret_hash` and `registration_token_hash`, when
/// given, replace the stored ones; a different secret records the change
/// (its older `client_credentials` tokens stop working).
pub(crate) fn replace(
    conn: &mut DbConn,
    mut current: Client,
    settings: ClientSettings,
    secret_hash: Option<Option<String>>,
    registration_token_hash: Option<String>,
    now: OffsetDateTime,
) -> ServiceResult<Client> {
    if let Some(h) = secret_hash {
        if h != current.secret_hash {
            current.secret_changed_at = Some(secret_changed_at(now));
        }
        current.secret_hash = h;
    }
    if let Some(h) = registration_token_hash {
        current.registration_token_hash = Some(h);
    }
    let row = to_row(&current, &settings, now)?;
    repo::clients::update(conn, &row)?;
    Client::from_row(row)
}

/// Makes the clients declared in the configuration file exist as declared
/// and locked; a confidential one's secret comes from the environment
/// variable it names (via `secret_of`). Clients no longer declared are
/// unlocked, so admins can manage or delete them. Returns the ids touched.
pub fn sync_declared(
    conn: &mut DbConn,
    declared: &[crate::config::DeclaredClient],
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: OffsetDateTime,
) -> ServiceResult<Vec<String>> {
    let mut ids = Vec::new();
    for d in declared {
        let input = ClientInput {
            name: d.name.clone(),
            redirect_uris: d.redirect_uris.clone(),
            post_logout_redirect_uris: d.post_logout_redirect_uris.clone(),
            scopes: d.scopes.clone(),
            grant_types: d.grant_types.clone(),
            public: d.public,
            first_party: d.first_party,
            audiences: d.audiences.clone(),
            id_token_alg: d.id_token_alg.clone(),
            resource_audiences: d.resource_audiences.clone(),
            backchannel_logout_uri: d.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: d.backchannel_logout_session_required,
            require_mfa: d.require_mfa,
        };
        let in_config = |e: ServiceError| {
            ServiceError::Invalid(crate::domain::Invalid::new(
                "clients",
                format!("client {:?} in the configuration file: {e}", d.client_id),
            ))
        };
        let settings = ClientSettings::parse(&input).map_err(|e| in_config(e.into()))?;
        super::scopes::check_known(conn, &settings.allowed_scopes).map_err(in_config)?;
        let client_id = ClientId::parse(&d.client_id).map_err(|e| in_config(e.into()))?;
        let secret_hash = match (settings.kind, &d.secret_env) {
            (ClientKind::Public, None) => None,
            (ClientKind::Public, Some(_)) => {
                return Err(in_config(ServiceError::Conflict(
                    "a public client has no secret; remove secret_env".into(),
                )));
            }
            (ClientKind::Confidential, None) => {
                return Err(in_config(ServiceError::Conflict(
                    "a confidential client needs secret_env (the variable holding its secret)"
                        .into(),
                )));
            }
            (ClientKind::Confidential, Some(var)) => match secret_of(var) {
                Some(secret) if secret.len() >= 32 => {
                    Some(crate::domain::secret::hash_secret(&secret))
                }
                _ => {
                    return Err(in_config(ServiceError::Conflict(format!(
                        "environment variable {var} must hold its secret (at least 32 characters)"
                    ))));
                }
            },
        };
        match find_optional(conn, client_id.as_str())? {
            Some(current) => {
                let mut current = current;
                current.locked = true;
                replace(conn, current, settings, Some(secret_hash), None, now)?;
            }
            None => {
                insert_new(conn, client_id.clone(), settings, true, None, None, now)?;
                let current = find(conn, client_id.as_str())?;
                replace(
                    conn,
                    current.clone(),
                    current.settings,
                    Some(secret_hash),
                    None,
                    now,
                )?;
            }
        }
        ids.push(d.client_id.clone());
    }
    for row in repo::clients::list(conn)? {
        if row.locked && !ids.contains(&row.client_id) {
            let mut c = Client::from_row(row)?;
            c.locked = false;
            let settings = c.settings.clone();
            replace(conn, c, settings, None, None, now)?;
        }
    }
    Ok(ids)
}
