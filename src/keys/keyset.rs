//! The keys one instance holds in memory: signers for active keys,
//! verifiers for every published key, and the JWKS as precomputed bytes.

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier};
use josekit::jwt::{self, JwtPayload};
use sha2::{Digest, Sha256};

use super::lifecycle::KeyState;
use super::{JoseAlg, Kek, KeyError, SigningAlg};
use crate::oidc::document::Document;
use crate::store::models::SigningKeyRow;

pub struct LoadedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    /// When it began signing (`None` until it was activated).
    pub activated_at: Option<time::OffsetDateTime>,
    signer: Option<Box<dyn JwsSigner>>,
    verifier: Box<dyn JwsVerifier>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct KeySet {
    keys: Vec<LoadedKey>,
    jwks: Document,
    etag: String,
    /// Identifies the set (kids and states), to skip rebuilding it.
    fingerprint: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key id")]
    UnknownKey,
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("bad signature")]
    BadSignature,
}

/// What identifies a set of rows: their kids and states.
pub fn fingerprint(rows: &[SigningKeyRow]) -> String {
    let mut parts: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}", r.kid, r.state))
        .collect();
    parts.sort();
    parts.join(",")
}

impl KeySet {
    /// Decrypts and loads the rows. Fails on a wrong KEK or corrupt row.
    pub fn build(rows: &[SigningKeyRow], kek: &Kek) -> Result<KeySet, KeyError> {
        let mut keys = Vec::with_capacity(rows.len());
        let mut jwks = JwkSet::new();
        for row in rows {
            let alg: SigningAlg = row.alg.parse().map_err(|e: super::alg::UnsupportedAlg| {
                KeyError::Corrupt(format!("key {}: {e}", row.kid))
            })?;
            let state: KeyState = row
                .state
                .parse()
                .map_err(|e: String| KeyError::Corrupt(format!("key {}: {e}", row.kid)))?;
            let public = Jwk::from_bytes(row.public_jwk.as_bytes())
                .map_err(|e| KeyError::Corrupt(format!("key {}: public JWK: {e}", row.kid)))?;
            let verifier = alg
                .verifier(&public)
                .map_err(|e| KeyError::Corrupt(format!("key {}: {e}", row.kid)))?;
            let signer = if state == KeyState::Active {
                let private = kek.open(&row.private_jwk_enc, &row.kid)?;
                let jwk = Jwk::from_bytes(private.as_slice())
                    .map_err(|e| KeyError::Corrupt(format!("key {}: private JWK: {e}", row.kid)))?;
                Some(
                    alg.signer(&jwk)
                        .map_err(|e| KeyError::Corrupt(format!("key {}: {e}", row.kid)))?,
                )
            } else {
                // Still prove the KEK opens it, so a wrong KEK fails at start.
                kek.open(&row.private_jwk_enc, &row.kid)?;
                None
            };
            jwks.push_key(public);
            keys.push(LoadedKey {
                kid: row.kid.clone(),
                alg,
                state,
                activated_at: row.activated_at.map(crate::clock::from_db),
                signer,
                verifier,
            });
        }
        let body = jwks.to_string();
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!(
            "\"{}\"",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(KeySet {
            keys,
            jwks: Document::new(body),
            etag,
            fingerprint: fingerprint(rows),
        })
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The JWKS document and its strong ETag.
    pub fn jwks(&self) -> (&Document, &str) {
        (&self.jwks, &self.etag)
    }

    /// The key signing for `alg` now.
    pub fn active(&self, alg: SigningAlg) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active && k.signer.is_some())
    }

    /// Signs a JWT with the active key for `alg`. `typ` goes in the header
    /// (`JWT`, or `at+jwt` for access tokens, RFC 9068); `kid` always does.
    pub fn sign(
        &self,
        alg: SigningAlg,
        typ: &str,
        payload: &JwtPayload,
    ) -> Result<String, KeyError> {
        let key = self.active(alg).ok_or(KeyError::NoActiveKey(alg))?;
        let signer = key.signer.as_deref().ok_or(KeyError::NoActiveKey(alg))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        jwt::encode_with_signer(payload, &header, signer).map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Checks a JWT's signature against the published key its `kid` names,
    /// with that key's algorithm only. Claims are the caller's to check.
    pub fn verify(&self, token: &str) -> Result<(JwtPayload, JwsHeader), VerifyError> {
        let header = jwt::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header
            .claim("kid")
            .and_then(|v| v.as_str())
            .ok_or(VerifyError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        if header.claim("alg").and_then(|v| v.as_str()) != Some(key.alg.as_str()) {
            return Err(VerifyError::AlgorithmMismatch);
        }
        jwt::decode_with_verifier(token, key.verifier.as_ref())
            .map_err(|_| VerifyError::BadSignature)
    }
}
