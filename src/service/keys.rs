//! Signing-key use cases for the console, the admin API and the CLI: list,
//! rotate, retire, revoke, import and export, over [`crate::keys::ops`]
//! (which writes the audit rows).
//!
//! The functions on `&mut DbConn` are for callers without a key set of
//! their own (the CLI): running servers pick their changes up at their
//! reload interval, or at once on SIGHUP. [`ServerKeys`] is for a running
//! server: its changes also reload this instance's key set, so its
//! `/jwks` and signing show them at once (other instances follow at their
//! interval).

use time::OffsetDateTime;

use super::admin;
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::keys::lifecycle::LifecyclePolicy;
use crate::keys::{Kek, KeyError, KeyStore, SigningAlg, key_store, ops};
use crate::store::{Db, DbConn};
use crate::telemetry::metrics::KeyEvent;

pub use crate::keys::ops::{ExportFormat, KeyInfo};

/// The lifecycle policy `config` sets (delays, retention, algorithms).
pub fn policy(config: &Config) -> LifecyclePolicy {
    LifecyclePolicy::from_config(config)
}

/// Loads the KEK `config` names; the file is created only for a store
/// without keys.
pub fn load_kek(conn: &mut DbConn, config: &Config) -> Result<Kek, KeyError> {
    key_store::load_kek(conn, config)
}

/// Every stored key with its state and dates, never private material.
pub fn list(conn: &mut DbConn, policy: &LifecyclePolicy) -> Result<Vec<KeyInfo>, KeyError> {
    ops::list(conn, policy)
}

/// Creates a new key for `alg`: published now, signing after the
/// pre-publication delay, or at once with `immediately` (the previous key
/// retires). Returns its kid.
pub fn rotate(
    conn: &mut DbConn,
    kek: &Kek,
    policy: &LifecyclePolicy,
    alg: SigningAlg,
    immediately: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<String, KeyError> {
    ops::rotate(conn, kek, alg, immediately, now, policy, actor)
}

/// Stops signing with a key; it stays published until its tokens expire.
/// Its pending successor takes over, if published long enough (see
/// [`ops::retire`]) or with `force`.
pub fn retire(
    conn: &mut DbConn,
    policy: &LifecyclePolicy,
    kid: &str,
    actor: &Actor,
    now: OffsetDateTime,
    force: bool,
) -> Result<(), KeyError> {
    ops::retire(conn, kid, now, policy, actor, force)
}

/// Emergency removal from the JWKS; an algorithm left without a signing
/// key gets a new one at once.
pub fn revoke(
    conn: &mut DbConn,
    kek: &Kek,
    policy: &LifecyclePolicy,
    kid: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(), KeyError> {
    ops::revoke(conn, kek, kid, now, policy, actor)
}

/// Imports a private key (PEM or JWK) as a new key. Returns its kid.
#[allow(clippy::too_many_arguments)]
pub fn import(
    conn: &mut DbConn,
    kek: &Kek,
    policy: &LifecyclePolicy,
    bytes: &[u8],
    alg: SigningAlg,
    immediately: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<String, KeyError> {
    ops::import(conn, kek, bytes, alg, immediately, now, policy, actor)
}

/// A key's public JWK, or with `private` its private key (audited).
pub fn export(
    conn: &mut DbConn,
    kek: &Kek,
    kid: &str,
    format: ExportFormat,
    private: bool,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    ops::export(conn, kek, kid, format, private, now, actor)
}

/// The key use cases on a running server, off the event loop: each change
/// runs in one transaction (through [`admin::change`]) and, once
/// committed, reloads this instance's key set.
#[derive(Clone, Copy)]
pub struct ServerKeys<'a> {
    db: &'a Db,
    keys: &'a KeyStore,
}

impl<'a> ServerKeys<'a> {
    pub fn new(db: &'a Db, keys: &'a KeyStore) -> Self {
        Self { db, keys }
    }

    pub async fn list(self) -> Result<Vec<KeyInfo>, KeyError> {
        let policy = self.keys.policy().clone();
        self.db.run(move |conn| list(conn, &policy)).await
    }

    /// See [`rotate`]. Returns the new kid.
    pub async fn rotate(
        self,
        actor: Actor,
        alg: SigningAlg,
        immediately: bool,
        now: OffsetDateTime,
    ) -> Result<String, KeyError> {
        self.change(
            KeyEvent::Rotate,
            actor,
            now,
            move |conn, keys, actor, now| {
                rotate(
                    conn,
                    keys.kek(),
                    keys.policy(),
                    alg,
                    immediately,
                    actor,
                    now,
                )
            },
        )
        .await
    }

    /// See [`retire`].
    pub async fn retire(
        self,
        actor: Actor,
        kid: String,
        now: OffsetDateTime,
        force: bool,
    ) -> Result<(), KeyError> {
        self.change(
            KeyEvent::RetireManual,
            actor,
            now,
            move |conn, keys, actor, now| retire(conn, keys.policy(), &kid, actor, now, force),
        )
        .await
    }

    /// See [`revoke`].
    pub async fn revoke(
        self,
        actor: Actor,
        kid: String,
        now: OffsetDateTime,
    ) -> Result<(), KeyError> {
        self.change(
            KeyEvent::Revoke,
            actor,
            now,
            move |conn, keys, actor, now| revoke(conn, keys.kek(), keys.policy(), &kid, actor, now),
        )
        .await
    }

    /// Runs a key change (counted as `event` once committed), then
    /// reloads this instance's key set.
    async fn change<T, F>(
        self,
        event: KeyEvent,
        actor: Actor,
        now: OffsetDateTime,
        f: F,
    ) -> Result<T, KeyError>
    where
        F: FnOnce(&mut DbConn, &KeyStore, &Actor, OffsetDateTime) -> Result<T, KeyError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let keys = self.keys.clone();
        let out = admin::change(self.db, actor, None, now, move |conn, actor, now| {
            f(conn, &keys, actor, now)
        })
        .await?;
        self.keys.metrics().key_event(event);
        let keys = self.keys.clone();
        self.db
            .run(move |conn| keys.refresh(conn, now).map(|_| ()))
            .await?;
        Ok(out)
    }
}
