//! Compact JWS parsing and signature checking (RFC 7515), strict: the
//! algorithm must be on the allow-list and match the key, the header must
//! say `at+jwt`, and unknown `crit` extensions are refused. Keys come only
//! from the trusted set; `jku`, `x5u` and embedded `jwk` headers are
//! ignored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::VerifyError;
use crate::keys::KeySet;

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    crit: Option<Value>,
}

/// The parts of a compact JWS, decoded only as far as routing needs.
pub(crate) struct Parsed<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    signing_input: &'t str,
    signature: Vec<u8>,
    payload_b64: &'t str,
}

/// RFC 9068 section 4: `at+jwt`, or the full media type; media types
/// compare case-insensitively (RFC 7515 section 4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// Splits and checks the header of `token` against `allowed`.
pub(crate) fn parse<'t>(token: &'t str, allowed: &[Algorithm]) -> Result<Parsed<'t>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| VerifyError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
    let alg = Algorithm::from_name(&header.alg)
        .filter(|a| allowed.contains(a))
        .ok_or(VerifyError::AlgorithmNotAllowed)?;
    if !header.typ.as_deref().is_some_and(is_access_token_type) {
        return Err(VerifyError::WrongType);
    }
    if header.crit.is_some() {
        return Err(VerifyError::UnsupportedCritical);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| VerifyError::Malformed)?;
    if signature.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    Ok(Parsed {
        alg,
        kid: header.kid.map(|k| k.into_owned()),
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        signature,
        payload_b64,
    })
}

impl Parsed<'_> {
    /// Verifies the signature with the matching key in `keys` and decodes
    /// the payload. `UnknownKey` tells the caller a JWKS refresh may help.
    pub(crate) fn verify(&self, keys: &KeySet) -> Result<Map<String, Value>, VerifyError> {
        let mut found = false;
        let mut verified = false;
        for verifier in keys.candidates(self.kid.as_deref(), self.alg) {
            found = true;
            if verifier
                .verify(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
            {
                verified = true;
                break;
            }
        }
        if !found {
            return Err(VerifyError::UnknownKey);
        }
        if !verified {
            return Err(VerifyError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)
    }
}
