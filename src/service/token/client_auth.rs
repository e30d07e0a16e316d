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

use crate::oidc::OAuthError;
use crate::service::clients::Client;
use crate::token::opaque::verify_secret;

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
