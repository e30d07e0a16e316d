//! Why a token was not accepted.

/// A token was refused, or could not be checked. The `Display` text is
/// fixed per variant and never repeats token content, so it is safe to
/// send back in `error_description` or to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not three base64url parts, or a part is not the JSON it should be;
    /// or a token with the personal access token prefix that is not `lkp_`
    /// and 43 base64url characters (refused without asking the issuer).
    #[error("the token is not a well-formed JWS or personal access token")]
    Malformed,
    /// The header's `alg` is not on the allow-list (this covers `none`
    /// and HMAC, which no allow-list can contain).
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// The header's `typ` is not `at+jwt` (RFC 9068 section 4): an ID
    /// token or another JWT presented as an access token.
    #[error("the token is not a JWT access token (typ must be at+jwt)")]
    WrongType,
    /// The header lists `crit` extensions this verifier does not know.
    #[error("the token has critical header parameters that are not understood")]
    UnsupportedCritical,
    /// No trusted key has the token's `kid` and algorithm, even after a
    /// refresh of the JWKS (or a refresh was not due yet).
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not match the trusted key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` does not name this resource server.
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// A required claim is missing or has the wrong type.
    #[error("the token's {0} claim is missing or malformed")]
    InvalidClaim(&'static str),
    /// No keys could be fetched from the issuer yet (it is unreachable or
    /// its discovery document or JWKS is invalid). The token was not
    /// judged; retry later.
    #[error("the issuer's signing keys are not available")]
    KeysUnavailable,
    /// A personal access token was presented, but this verifier was built
    /// without introspection, so it cannot check one.
    #[error("personal access tokens are not accepted here")]
    IntrospectionNotConfigured,
    /// The issuer's introspection endpoint says the token is not active:
    /// unknown, revoked, expired, or not for this resource server.
    #[error("the token is not active")]
    Inactive,
    /// The issuer's introspection endpoint could not be asked (unreachable,
    /// timed out, an error status, or an answer that is not RFC 7662
    /// JSON), or, from [`Verifier::verify_cached`](crate::Verifier::verify_cached),
    /// no answer is cached. The token was not judged; retry later.
    #[error("token introspection is not available")]
    IntrospectionUnavailable,
    /// The issuer refused this resource server's own client credentials
    /// at its introspection endpoint: a configuration error (wrong client
    /// id or secret, or a public client). The token was not judged.
    #[error("the issuer refused this resource server's client credentials")]
    IntrospectionRefused,
    /// The issuer's discovery document names an introspection endpoint
    /// that this verifier will not send its client secret and users'
    /// tokens to: not https (while the issuer is), or not on the issuer's
    /// origin. A configuration error (or tampering) on the issuer's side;
    /// set the endpoint explicitly with
    /// [`VerifierBuilder::introspection_endpoint`](crate::VerifierBuilder::introspection_endpoint)
    /// if it really lives elsewhere. The token was not judged.
    #[error("the issuer's introspection endpoint is not trusted")]
    UntrustedIntrospectionEndpoint,
}

impl VerifyError {
    /// True when the token was not judged because the issuer could not be
    /// used (no signing keys, introspection unreachable, refusing this
    /// resource server, or at an untrusted endpoint): answer 503 rather than 401, and do not hold it
    /// against the token.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            VerifyError::KeysUnavailable
                | VerifyError::IntrospectionUnavailable
                | VerifyError::IntrospectionRefused
                | VerifyError::UntrustedIntrospectionEndpoint
        )
    }
}
