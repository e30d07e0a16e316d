//! What a logout token says (OpenID Connect Back-Channel Logout 1.0, 2.4):
//! a JWT like an ID token, explicitly typed `logout+jwt`, that names the
//! user (`sub`) and the session (`sid`) that ended, carries the
//! back-channel logout event, and never a `nonce` (so it can never pass
//! for an ID token).

use josekit::jwt::JwtPayload;
use serde_json::{Map, json};
use time::OffsetDateTime;

/// The JWS `typ` header of a logout token (2.4, and 4.1 on cross-JWT
/// confusion).
pub const TYP: &str = "logout+jwt";

/// The member of `events` that makes a JWT a logout token.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Lifetime of a logout token: the spec recommends at most two minutes.
/// A fresh token (new `jti`, `iat`, `exp`) is signed for every attempt.
pub const TTL_SECS: i64 = 120;

/// Everything a logout token says.
#[derive(Debug, Clone, Copy)]
pub struct LogoutTokenInput<'a> {
    pub issuer: &'a str,
    /// The client it is for (`aud`).
    pub client_id: &'a str,
    /// Exactly the `sub` of the client's ID tokens (the user's id).
    pub subject: &'a str,
    /// The `sid` of the ended session, as in the client's ID tokens.
    pub sid: &'a str,
    pub now: OffsetDateTime,
    /// Unique per token.
    pub jti: &'a str,
}

/// The claims set. Both `sub` and `sid` are always present: some relying
/// parties refuse a token without `sub`, others need `sid`
/// (`backchannel_logout_session_required`).
pub fn claims(i: LogoutTokenInput<'_>) -> Result<JwtPayload, josekit::JoseError> {
    let mut m = Map::new();
    m.insert("iss".into(), json!(i.issuer));
    m.insert("sub".into(), json!(i.subject));
    m.insert("aud".into(), json!(i.client_id));
    m.insert("iat".into(), json!(i.now.unix_timestamp()));
    m.insert("exp".into(), json!(i.now.unix_timestamp() + TTL_SECS));
    m.insert("jti".into(), json!(i.jti));
    m.insert("sid".into(), json!(i.sid));
    m.insert("events".into(), json!({ EVENT: {} }));
    JwtPayload::from_map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_required_claim_and_no_nonce() {
        let now = OffsetDateTime::from_unix_timestamp(1_471_566_154).unwrap();
        let p = claims(LogoutTokenInput {
            issuer: "https://id.example",
            client_id: "wiki",
            subject: "8f1c",
            sid: "08a5019c",
            now,
            jti: "bWJq",
        })
        .unwrap();
        let c = p.claims_set();
        assert_eq!(c["iss"], "https://id.example");
        assert_eq!(c["aud"], "wiki", "one audience, as a string");
        assert_eq!(c["sub"], "8f1c");
        assert_eq!(c["sid"], "08a5019c");
        assert_eq!(c["jti"], "bWJq");
        assert_eq!(c["iat"], 1_471_566_154);
        assert_eq!(c["exp"], 1_471_566_154 + 120);
        assert_eq!(c["events"], json!({ EVENT: {} }));
        assert!(c["events"][EVENT].as_object().unwrap().is_empty());
        assert!(!c.contains_key("nonce"), "a nonce is prohibited (2.4)");
        let mut keys: Vec<&str> = c.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"]
        );
    }
}
