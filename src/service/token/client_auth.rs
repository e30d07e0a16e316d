//! Client authentication at the token, introspection and revocation
//! endpoints: `client_secret_basic`, `client_secret_post`, or `none` for
//! public clients. Secrets are compared as SHA-256 hashes in constant time.
//!
//! [`ClientCache`] keeps recently used registrations in memory for a few
//! seconds, so a busy client costs no database round trip; a change made
//! elsewhere (secret rotation, deletion) applies within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::client::CLIENT_ID_MAX;
use crate::domain::secret::verify_secret;
use crate::oidc::OAuthError;
use crate::service::ServiceError;
use crate::service::clients::{self, Client};
use crate::store::Db;

/// How the client presented itself.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedClient")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn bad_client() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// Client authentication at the token, introspection and revocation
/// endpoints, in one place: the registration from the cache (else the
/// database), then the credentials. Every failure is the same
/// `invalid_client`, so callers cannot tell unknown ids from bad secrets.
pub async fn authenticate_client(
    db: &Db,
    cache: &ClientCache,
    presented: &PresentedClient,
) -> Result<Arc<Client>, OAuthError> {
    if presented.client_id.is_empty() || presented.client_id.len() > CLIENT_ID_MAX {
        return Err(bad_client());
    }
    let client = match cache.get(&presented.client_id) {
        Some(c) => Some(c),
        None => {
            let id = presented.client_id.clone();
            let found = db
                .run(move |conn| clients::find_optional(conn, &id))
                .await
                .map_err(|e| match e {
                    ServiceError::Unavailable(_) => {
                        OAuthError::temporarily_unavailable("storage unavailable")
                    }
                    _ => OAuthError::server_error("storage error"),
                })?;
            found.map(|c| cache.put(c))
        }
    };
    authenticate(presented, client.as_deref())?;
    client.ok_or_else(bad_client)
}

/// Checks the credentials against the registration (`None`: unknown id).
pub fn authenticate(
    presented: &PresentedClient,
    client: Option<&Client>,
) -> Result<(), OAuthError> {
    // A fixed hash so unknown clients cost the same as known ones.
    const DUMMY: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let Some(client) = client else {
        let _ = verify_secret(presented.secret.as_deref().unwrap_or(""), DUMMY);
        return Err(bad_client());
    };
    match (&client.secret_hash, &presented.secret) {
        (Some(hash), Some(secret)) if verify_secret(secret, hash) => Ok(()),
        (None, None) => Ok(()),
        _ => Err(bad_client()),
    }
}

/// Registrations by client_id, each kept for `ttl`.
pub struct ClientCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Client>)>>,
}

const CACHE_MAX: usize = 10_000;

impl ClientCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, client_id: &str) -> Option<Arc<Client>> {
        let map = self.entries.lock().ok()?;
        match map.get(client_id) {
            Some((at, c)) if at.elapsed() < self.ttl => Some(c.clone()),
            _ => None,
        }
    }

    pub fn put(&self, client: Client) -> Arc<Client> {
        let client = Arc::new(client);
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(client.client_id.clone(), (Instant::now(), client.clone()));
        }
        client
    }

    /// Forgets a client at once (after a local change to it).
    pub fn forget(&self, client_id: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(client_id);
        }
    }
}
