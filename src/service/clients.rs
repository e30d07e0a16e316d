//! Client registrations. Secrets are generated here, shown once to the
//! caller, and only their SHA-256 is stored.

use serde::Serialize;
use time::OffsetDateTime;

use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::domain::client::{ClientId, ClientInput, ClientKind, ClientSettings, GrantType};
use crate::domain::scope::ScopeSet;
use crate::store::models::ClientRow;
use crate::store::{DbConn, repo};
use crate::token::opaque::OpaqueSecret;

/// A client as stored, decoded into domain types.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub settings: ClientSettings,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Declared in the configuration file; admins cannot change it.
    pub locked: bool,
    /// SHA-256 of its RFC 7592 registration access token, if it
    /// registered itself.
    pub registration_token_hash: Option<String>,
}

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
        let id_token_alg = row
            .id_token_alg
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("id_token_alg"))?;
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
            },
            created_at: from_db(row.created_at),
            updated_at: from_db(row.updated_at),
            locked: row.locked,
            registration_token_hash: row.registration_token_hash,
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
        created_at: to_db(client.created_at),
        updated_at: to_db(updated_at),
        audiences: json(&s.audiences)?,
        id_token_alg: s.id_token_alg.map(|a| a.as_str().to_owned()),
        locked: client.locked,
        registration_token_hash: client.registration_token_hash.clone(),
    })
}

/// Registers a client. `client_id` is generated unless given; a taken id is
/// a `Conflict`. Confidential clients get a secret, returned once. Every
/// scope must be built in or defined (see [`super::scopes`]).
pub fn create(
    conn: &mut DbConn,
    client_id: Option<&str>,
    input: &ClientInput,
    now: OffsetDateTime,
) -> ServiceResult<IssuedClient> {
    let settings = ClientSettings::parse(input)?;
    super::scopes::check_known(conn, &settings.allowed_scopes)?;
    let client_id = match client_id {
        Some(id) => ClientId::parse(id)?,
        None => ClientId::generate(),
    };
    insert_new(conn, client_id, settings, false, now)
}

fn insert_new(
    conn: &mut DbConn,
    client_id: ClientId,
    settings: ClientSettings,
    locked: bool,
    now: OffsetDateTime,
) -> ServiceResult<IssuedClient> {
    let secret = match settings.kind {
        ClientKind::Confidential => Some(OpaqueSecret::generate()?),
        ClientKind::Public => None,
    };
    let client = Client {
        client_id: client_id.as_str().to_owned(),
        secret_hash: secret.as_ref().map(OpaqueSecret::hash),
        settings,
        created_at: now,
        updated_at: now,
        locked,
        registration_token_hash: None,
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
#[derive(Debug, Default, Clone)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` clears it.
    pub id_token_alg: Option<Option<String>>,
}

/// Applies changes, re-validating the whole registration. The client type
/// (public or confidential) does not change.
pub fn update(
    conn: &mut DbConn,
    client_id: &str,
    changes: ClientChanges,
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
    };
    let settings = ClientSettings::parse(&input)?;
    super::scopes::check_known(conn, &settings.allowed_scopes)?;
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
