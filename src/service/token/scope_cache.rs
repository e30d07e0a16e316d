//! [`ScopeCache`]: the scope registry (which custom scopes are
//! machine-grantable or group-restricted) kept in memory for a few
//! seconds, so the `client_credentials` grant normally makes no database
//! round trip. One snapshot serves every client; a local scope change
//! forgets it at once, a change made by another instance (or the CLI)
//! applies within the TTL, like [`super::ClientCache`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::scope::ScopeRegistry;
use crate::oidc::OAuthError;
use crate::service::ServiceError;
use crate::service::scopes;
use crate::store::Db;

#[derive(Default)]
struct Slot {
    /// Bumped by [`ScopeCache::forget`], so a load that started before a
    /// change cannot store what it read.
    generation: u64,
    entry: Option<(Instant, Arc<ScopeRegistry>)>,
}

pub struct ScopeCache {
    ttl: Duration,
    slot: Mutex<Slot>,
}

impl ScopeCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// The cached registry if fresh, else the generation to load under.
    fn lookup(&self) -> Result<Arc<ScopeRegistry>, u64> {
        let Ok(slot) = self.slot.lock() else {
            return Err(u64::MAX);
        };
        match &slot.entry {
            Some((at, r)) if at.elapsed() < self.ttl => Ok(r.clone()),
            _ => Err(slot.generation),
        }
    }

    fn store(&self, generation: u64, registry: Arc<ScopeRegistry>) {
        if let Ok(mut slot) = self.slot.lock()
            && slot.generation == generation
        {
            slot.entry = Some((Instant::now(), registry));
        }
    }

    /// Forgets the registry at once (after a local scope change).
    pub fn forget(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.generation = slot.generation.wrapping_add(1);
            slot.entry = None;
        }
    }

    /// The registry from memory, else from the database (on the blocking
    /// pool, through `Db::run`).
    pub async fn get(&self, db: &Db) -> Result<Arc<ScopeRegistry>, OAuthError> {
        let generation = match self.lookup() {
            Ok(r) => return Ok(r),
            Err(g) => g,
        };
        let registry = db.run(scopes::registry).await.map_err(|e| match e {
            ServiceError::Unavailable(_) => {
                OAuthError::temporarily_unavailable("storage unavailable")
            }
            other => super::db_error(other),
        })?;
        let registry = Arc::new(registry);
        self.store(generation, registry.clone());
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_drops_the_entry_and_stale_loads() {
        let cache = ScopeCache::new(Duration::from_secs(60));
        let g = cache.lookup().unwrap_err();
        cache.store(g, Arc::new(ScopeRegistry::default()));
        assert!(cache.lookup().is_ok());
        let g = {
            cache.forget();
            cache.lookup().unwrap_err()
        };
        // A load that began before another change is not kept.
        cache.forget();
        cache.store(g, Arc::new(ScopeRegistry::default()));
        assert!(cache.lookup().is_err());
    }
}
