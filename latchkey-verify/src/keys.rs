//! A set of trusted public keys, built from a JWKS document (RFC 7517).

use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;

use crate::algorithm::Algorithm;

/// One usable (key, algorithm) pair. A JWK without `alg` yields one entry
/// per algorithm its key type allows; one with `alg` yields exactly that.
struct Entry {
    kid: Option<String>,
    alg: Algorithm,
    verifier: Box<dyn JwsVerifier>,
}

/// The verification keys of one JWKS fetch, restricted to an allow-list of
/// algorithms. Encryption keys, symmetric keys and keys whose algorithm is
/// not allowed are left out.
#[derive(Default)]
pub struct KeySet {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (e.kid.as_deref(), e.alg)))
            .finish()
    }
}

/// The JWKS document was not a JSON object with a `keys` array.
#[derive(Debug, thiserror::Error)]
#[error("not a JWK Set: {0}")]
pub struct InvalidJwks(String);

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with `allowed`.
    /// Keys that are malformed or not for signatures are skipped, so one
    /// odd key in the set does not lock out the others.
    pub fn from_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<Self, InvalidJwks> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| InvalidJwks(e.to_string()))?;
        let keys = doc
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| InvalidJwks("no \"keys\" array".into()))?;
        let mut entries = Vec::new();
        for key in keys {
            let Some(map) = key.as_object() else { continue };
            let Ok(jwk) = Jwk::from_map(map.clone()) else {
                continue;
            };
            let candidates: Vec<Algorithm> = match jwk.algorithm() {
                Some(name) => Algorithm::from_name(name).into_iter().collect(),
                None => Algorithm::candidates_for(&jwk).to_vec(),
            };
            for alg in candidates.into_iter().filter(|a| allowed.contains(a)) {
                match alg.verifier(&jwk) {
                    Ok(verifier) => entries.push(Entry {
                        kid: jwk.key_id().map(str::to_owned),
                        alg,
                        verifier,
                    }),
                    Err(e) => {
                        tracing::debug!(kid = ?jwk.key_id(), %alg, error = %e, "JWK skipped");
                    }
                }
            }
        }
        Ok(Self { entries })
    }

    /// Number of usable (key, algorithm) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key in the set can verify anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key ids in the set.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| e.kid.as_deref())
    }

    /// The verifiers that may check a token with this `kid` and `alg`: the
    /// one with that kid, or, for a token without a kid, every key of
    /// that algorithm.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a dyn JwsVerifier> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.alg == alg && (kid.is_none() || e.kid.as_deref() == kid))
            .map(|e| e.verifier.as_ref())
    }
}
