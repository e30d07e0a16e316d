//! Key operations over the database: what the CLI, the lifecycle loop and
//! (later) the admin console call. Each change writes an audit record.

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use super::lifecycle::{self, KeyFacts, KeyState, LifecyclePolicy, Transition};
use super::{JoseAlg, Kek, KeyError, SigningAlg, material};
use crate::clock::{from_db, to_db};
use crate::domain::audit::Actor;
use crate::store::audit;
use crate::store::models::SigningKeyRow;
use crate::store::{DbConn, repo};

/// A key as shown to admins: never private material.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a `next` key starts signing.
    #[serde(with = "time::serde::rfc3339")]
    pub activate_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// When a retired key leaves the JWKS.
    #[serde(with = "time::serde::rfc3339::option")]
    pub remove_after: Option<OffsetDateTime>,
}

fn facts(row: &SigningKeyRow) -> Result<KeyFacts, KeyError> {
    Ok(KeyFacts {
        kid: row.kid.clone(),
        alg: row
            .alg
            .parse()
            .map_err(|e: super::alg::UnsupportedAlg| KeyError::Corrupt(e.to_string()))?,
        state: row.state.parse().map_err(KeyError::Corrupt)?,
        created_at: from_db(row.created_at),
        activate_after: from_db(row.activate_after),
        activated_at: row.activated_at.map(from_db),
        retired_at: row.retired_at.map(from_db),
    })
}

pub fn list(conn: &mut DbConn, policy: &LifecyclePolicy) -> Result<Vec<KeyInfo>, KeyError> {
    repo::signing_keys::all(conn)?
        .iter()
        .map(|row| {
            let f = facts(row)?;
            Ok(KeyInfo {
                remove_after: f.retired_at.map(|t| t + policy.retention),
                kid: f.kid,
                alg: f.alg,
                state: f.state.to_string(),
                created_at: f.created_at,
                activate_after: f.activate_after,
                activated_at: f.activated_at,
                retired_at: f.retired_at,
            })
        })
        .collect()
}

/// When a stored key starts signing.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    activate_after: OffsetDateTime,
    /// Stored as `active` right away (only when nothing else signs).
    active_now: bool,
}

/// Stores a private JWK (sealed) as a `next` key, or `active` at once.
fn store_key(
    conn: &mut DbConn,
    kek: &Kek,
    jwk: &josekit::jwk::Jwk,
    alg: SigningAlg,
    kid: &str,
    schedule: Schedule,
    now: OffsetDateTime,
) -> Result<(), KeyError> {
    let Schedule {
        activate_after,
        active_now,
    } = schedule;
    let public = material::public_jwk(jwk)?;
    let private = zeroize::Zeroizing::new(jwk.to_string());
    let row = SigningKeyRow {
        kid: kid.to_owned(),
        alg: alg.as_str().to_owned(),
        state: if active_now { "active" } else { "next" }.to_owned(),
        private_jwk_enc: kek.seal(private.as_bytes(), kid)?,
        public_jwk: public.to_string(),
        created_at: to_db(now),
        activate_after: to_db(activate_after),
        activated_at: active_now.then(|| to_db(now)),
        retired_at: None,
    };
    repo::signing_keys::insert(conn, &row)?;
    Ok(())
}

fn generate(
    conn: &mut DbConn,
    kek: &Kek,
    alg: SigningAlg,
    activate_after: OffsetDateTime,
    active_now: bool,
    now: OffsetDateTime,
) -> Result<String, KeyError> {
    let kid = material::new_kid()?;
    let jwk = material::generate(alg, &kid)?;
    let schedule = Schedule {
        activate_after,
        active_now,
    };
    store_key(conn, kek, &jwk, alg, &kid, schedule, now)?;
    Ok(kid)
}

/// Applies every due lifecycle transition in one transaction. Transitions
/// are conditional updates, so instances racing on one database agree.
pub fn apply_lifecycle(
    conn: &mut DbConn,
    kek: &Kek,
    now: OffsetDateTime,
    policy: &LifecyclePolicy,
    actor: &Actor,
) -> Result<Vec<Transition>, KeyError> {
    conn.transaction(|conn| {
        let rows = repo::signing_keys::all(conn)?;
        let keys = rows.iter().map(facts).collect::<Result<Vec<_>, _>>()?;
        let plan = lifecycle::plan(&keys, now, policy);
        let mut applied = Vec::new();
        for t in plan {
            let (changed, action, target) = match &t {
                Transition::Activate { kid } => (
                    repo::signing_keys::activate(conn, kid, to_db(now))? > 0,
                    "key.activate",
                    kid.clone(),
                ),
                Transition::Retire { kid } => (
                    repo::signing_keys::retire(conn, kid, to_db(now))? > 0,
                    "key.retire",
                    kid.clone(),
                ),
                Transition::Remove { kid } => (
                    repo::signing_keys::delete(conn, kid)? > 0,
                    "key.remove",
                    kid.clone(),
                ),
                Transition::Generate { alg, activate_now } => {
                    let after = if *activate_now {
                        now
                    } else {
                        now + policy.prepublication_delay
                    };
                    let kid = generate(conn, kek, *alg, after, *activate_now, now)?;
                    (true, "key.generate", kid)
                }
            };
            if changed {
                let detail = match &t {
                    Transition::Generate { alg, activate_now } => Some(format!(
                        "alg={alg} state={}",
                        if *activate_now { "active" } else { "next" }
                    )),
                    _ => None,
                };
                audit::record(conn, actor, action, &target, detail, now)?;
                tracing::info!(action, kid = %target, "signing key lifecycle");
                applied.push(t);
            }
        }
        Ok(applied)
    })
}

/// Creates a `next` key for `alg`: published at once, signing after the
/// pre-publication delay, or right away with `immediately` (then the old
/// active key retires now). Returns the new kid.
pub fn rotate(
    conn: &mut DbConn,
    kek: &Kek,
    alg: SigningAlg,
    immediately: bool,
    now: OffsetDateTime,
    policy: &LifecyclePolicy,
    actor: &Actor,
) -> Result<String, KeyError> {
    let after = if immediately {
        now
    } else {
        now + policy.prepublication_delay
    };
    let kid = conn.transaction(|conn| {
        let kid = generate(conn, kek, alg, after, false, now)?;
        audit::record(
            conn,
            actor,
            "key.rotate",
            &kid,
            Some(format!("alg={alg} activate_after={}", to_db(after))),
            now,
        )?;
        Ok::<_, KeyError>(kid)
    })?;
    if immediately {
        apply_lifecycle(conn, kek, now, policy, actor)?;
    }
    Ok(kid)
}

fn find(conn: &mut DbConn, kid: &str) -> Result<SigningKeyRow, KeyError> {
    repo::signing_keys::by_kid(conn, kid)?.ok_or_else(|| KeyError::NotFound(kid.to_owned()))
}

/// Retires a key: it stops signing but stays published until its tokens
/// expire. An active key hands over to the newest pending key; the only
/// key of a configured algorithm cannot be retired (rotate first).
/// Retiring the active key promotes the newest pending key of its
/// algorithm. A pending key still inside its pre-publication delay may not
/// be in every relying party's cached JWKS (nor in other instances' key
/// sets) yet, so that is refused unless `force`.
pub fn retire(
    conn: &mut DbConn,
    kid: &str,
    now: OffsetDateTime,
    policy: &LifecyclePolicy,
    actor: &Actor,
    force: bool,
) -> Result<(), KeyError> {
    conn.transaction(|conn| {
        let row = find(conn, kid)?;
        let key = facts(&row)?;
        match key.state {
            KeyState::Retired => return Err(KeyError::Conflict(format!("key {kid} is already retired"))),
            KeyState::Next => {}
            KeyState::Active => {
                let successor = repo::signing_keys::all(conn)?
                    .iter()
                    .map(facts)
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .filter(|k| k.alg == key.alg && k.state == KeyState::Next)
                    .max_by_key(|k| k.created_at);
                match successor {
                    Some(next)
                        if !force && next.created_at + policy.prepublication_delay > now =>
                    {
                        return Err(KeyError::Conflict(format!(
                            "its successor {next_kid} was published at {published} and may not be in relying parties' cached JWKS before {ready} (keys.prepublication_delay_secs); retire {kid} then, or force it (`latchkey keys retire {kid} --force`, or ?force=true in the admin API)",
                            next_kid = next.kid,
                            published = next.created_at,
                            ready = next.created_at + policy.prepublication_delay,
                        )));
                    }
                    Some(next) => {
                        repo::signing_keys::activate(conn, &next.kid, to_db(now))?;
                        audit::record(conn, actor, "key.activate", &next.kid, None, now)?;
                    }
                    None if policy.algorithms.contains(&key.alg) => {
                        return Err(KeyError::Conflict(format!(
                            "key {kid} is the only active {alg} key; run `latchkey keys rotate --alg {alg} --now` first",
                            alg = key.alg
                        )));
                    }
                    None => {}
                }
            }
        }
        repo::signing_keys::retire(conn, kid, to_db(now))?;
        audit::record(conn, actor, "key.retire", kid, None, now)?;
        Ok(())
    })
}

/// Emergency removal: the key leaves the JWKS at once, so every token it
/// signed stops verifying. An algorithm left without a signing key gets
/// one immediately.
pub fn revoke(
    conn: &mut DbConn,
    kek: &Kek,
    kid: &str,
    now: OffsetDateTime,
    policy: &LifecyclePolicy,
    actor: &Actor,
) -> Result<(), KeyError> {
    conn.transaction(|conn| {
        let row = find(conn, kid)?;
        repo::signing_keys::delete(conn, kid)?;
        audit::record(
            conn,
            actor,
            "key.revoke",
            kid,
            Some(format!("alg={} state={}", row.alg, row.state)),
            now,
        )?;
        Ok::<_, KeyError>(())
    })?;
    tracing::warn!(kid, "signing key revoked");
    apply_lifecycle(conn, kek, now, policy, actor)?;
    Ok(())
}

/// Imports a private key (PEM or JWK) as a `next` key, or signing at once
/// with `immediately`. The store is unchanged if the file is unusable.
#[allow(clippy::too_many_arguments)]
pub fn import(
    conn: &mut DbConn,
    kek: &Kek,
    bytes: &[u8],
    alg: SigningAlg,
    immediately: bool,
    now: OffsetDateTime,
    policy: &LifecyclePolicy,
    actor: &Actor,
) -> Result<String, KeyError> {
    let kid = material::new_kid()?;
    let jwk = material::import(bytes, alg, &kid)?;
    let after = if immediately {
        now
    } else {
        now + policy.prepublication_delay
    };
    conn.transaction(|conn| {
        let schedule = Schedule {
            activate_after: after,
            active_now: false,
        };
        store_key(conn, kek, &jwk, alg, &kid, schedule, now)?;
        audit::record(
            conn,
            actor,
            "key.import",
            &kid,
            Some(format!("alg={alg}")),
            now,
        )?;
        Ok::<_, KeyError>(())
    })?;
    if immediately {
        apply_lifecycle(conn, kek, now, policy, actor)?;
    }
    Ok(kid)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Pem,
    Jwk,
}

/// Exports a key: the public JWK, or with `private` the private key as
/// PKCS#8 PEM or JWK (audited).
pub fn export(
    conn: &mut DbConn,
    kek: &Kek,
    kid: &str,
    format: ExportFormat,
    private: bool,
    now: OffsetDateTime,
    actor: &Actor,
) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    let row = find(conn, kid)?;
    let alg: SigningAlg = row
        .alg
        .parse()
        .map_err(|e: super::alg::UnsupportedAlg| KeyError::Corrupt(e.to_string()))?;
    if !private {
        let public = josekit::jwk::Jwk::from_bytes(row.public_jwk.as_bytes())
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        return match format {
            ExportFormat::Jwk => Ok(zeroize::Zeroizing::new(format!("{public}\n").into_bytes())),
            ExportFormat::Pem => Err(KeyError::Conflict(
                "public keys export as JWK (--format jwk); PEM is for --private".into(),
            )),
        };
    }
    let sealed = kek.open(&row.private_jwk_enc, kid)?;
    let jwk = josekit::jwk::Jwk::from_bytes(sealed.as_slice())
        .map_err(|e| KeyError::Corrupt(e.to_string()))?;
    let out = match format {
        ExportFormat::Jwk => {
            let mut v = jwk.to_string().into_bytes();
            v.push(b'\n');
            v
        }
        ExportFormat::Pem => material::to_pem(&jwk, alg)?,
    };
    audit::record(conn, actor, "key.export", kid, Some("private".into()), now)?;
    Ok(zeroize::Zeroizing::new(out))
}

/// A stored key the KEK cannot open, with why.
#[derive(Debug)]
pub struct UnreadableKey {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub error: KeyError,
}

/// Opens every stored private key with `kek` (nothing is written) and
/// returns how many there are and those that did not open or parse.
pub fn unreadable_keys(
    conn: &mut DbConn,
    kek: &Kek,
) -> Result<(usize, Vec<UnreadableKey>), KeyError> {
    let rows = repo::signing_keys::all(conn)?;
    let bad = rows
        .iter()
        .filter_map(|row| {
            usable(row, kek).err().map(|error| UnreadableKey {
                kid: row.kid.clone(),
                alg: row.alg.clone(),
                state: row.state.clone(),
                error,
            })
        })
        .collect();
    Ok((rows.len(), bad))
}

/// Whether `row` decrypts with `kek` into a private key that can sign.
fn usable(row: &SigningKeyRow, kek: &Kek) -> Result<(), KeyError> {
    let alg: SigningAlg = row
        .alg
        .parse()
        .map_err(|e: super::alg::UnsupportedAlg| KeyError::Corrupt(e.to_string()))?;
    let plain = kek.open(&row.private_jwk_enc, &row.kid)?;
    let jwk = josekit::jwk::Jwk::from_bytes(plain.as_slice())
        .map_err(|e| KeyError::Corrupt(format!("private JWK: {e}")))?;
    alg.signer(&jwk)
        .map(|_| ())
        .map_err(|e| KeyError::Corrupt(e.to_string()))
}
