//! Personal access tokens: their format and the pure rules about them.
//!
//! A token is `lkp_` followed by 256 random bits in base64url without
//! padding (43 characters): 47 characters in all. The prefix lets secret
//! scanners find leaked tokens and lets Latchkey tell a personal access
//! token from a JWT or a refresh token without a database lookup. Only
//! the SHA-256 of the whole token is stored, with a hint (the first
//! [`HINT_LEN`] characters after the prefix) so a person can tell their
//! tokens apart.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::Invalid;
use super::scope::ScopeSet;
use super::secret::{RngError, fill_random, hash_secret};
use super::text;

/// What every personal access token starts with.
pub const PREFIX: &str = "lkp_";
/// Random bytes in a token.
const SECRET_BYTES: usize = 32;
/// Characters after the prefix: 32 bytes in base64url without padding.
pub const SECRET_LEN: usize = 43;
/// Characters in a whole token.
pub const TOKEN_LEN: usize = PREFIX.len() + SECRET_LEN;
/// Characters of the secret kept (and shown) as the token's hint.
pub const HINT_LEN: usize = 8;
/// Longest token name, in characters.
pub const NAME_MAX: usize = 100;
/// How often one token's last use is written at most: uses within this
/// time of the recorded one are not written again.
pub const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

/// Scopes a personal access token never carries: it signs nobody in (no
/// ID token, so no `openid`) and is itself the long-lived credential (no
/// refresh tokens, so no `offline_access`).
pub const REFUSED_SCOPES: &[&str] = &["openid", "offline_access"];

/// A whole, well-formed token. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalAccessToken(Zeroizing<String>);

impl PersonalAccessToken {
    /// A new token: 256 bits from the operating system.
    pub fn generate() -> Result<Self, RngError> {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        fill_random(bytes.as_mut())?;
        let secret = URL_SAFE_NO_PAD.encode(bytes.as_ref());
        Ok(Self(Zeroizing::new(format!("{PREFIX}{secret}"))))
    }

    /// A presented token, if it has the form of one: the prefix, then 43
    /// base64url characters that decode to exactly 32 bytes. Anything else
    /// (wrong length, padding, other characters, stray bits) is `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let secret = raw.strip_prefix(PREFIX)?;
        if secret.len() != SECRET_LEN {
            return None;
        }
        let ok = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        // The strict decoder refuses non-zero trailing bits, so each
        // 32-byte value has exactly one spelling.
        let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).ok()?);
        (decoded.len() == SECRET_BYTES).then(|| Self(Zeroizing::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the whole token: what the database keeps.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }

    /// The first [`HINT_LEN`] characters after the prefix.
    pub fn hint(&self) -> String {
        self.0[PREFIX.len()..PREFIX.len() + HINT_LEN].to_owned()
    }
}

impl fmt::Debug for PersonalAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalAccessToken(<redacted>)")
    }
}

/// Whether a presented bearer value claims to be a personal access token
/// (it may still be malformed: see [`PersonalAccessToken::parse`]).
pub fn looks_like(raw: &str) -> bool {
    raw.starts_with(PREFIX)
}

/// How a hint is shown: `lkp_AbCdEfGh…`.
pub fn display_hint(hint: &str) -> String {
    format!("{PREFIX}{hint}…")
}

/// A token's name: trimmed, 1..=[`NAME_MAX`] characters, no control
/// characters.
pub fn name(raw: &str) -> Result<String, Invalid> {
    text::bounded("name", raw, NAME_MAX)
}

/// When a token created at `now` to live `days` days expires; `days` must
/// be 1..=`max_days`.
pub fn expiry(now: OffsetDateTime, days: i64, max_days: u32) -> Result<OffsetDateTime, Invalid> {
    if !(1..=i64::from(max_days)).contains(&days) {
        return Err(Invalid::new(
            "expires_in_days",
            format!("must be between 1 and {max_days} days"),
        ));
    }
    Ok(now + Duration::days(days))
}

/// The scopes asked for a new token, as a set: at least one, none of
/// [`REFUSED_SCOPES`].
pub fn requested_scopes<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, Invalid> {
    let set = ScopeSet::from_items(items)?;
    if set.is_empty() {
        return Err(Invalid::new("scope", "choose at least one scope"));
    }
    if let Some(s) = REFUSED_SCOPES.iter().find(|s| set.contains(s)) {
        return Err(Invalid::new(
            "scope",
            format!("{s:?} cannot be given to a personal access token"),
        ));
    }
    Ok(set)
}

/// Whether a token with these times is usable at `now`: not revoked, and
/// `now` before its expiry.
pub fn usable(
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    revoked_at.is_none() && now < expires_at
}

/// Whether a use at `now` should be written, given the last recorded use:
/// only when there is none or it is at least [`LAST_USED_RESOLUTION`] old.
pub fn last_use_due(last_used_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    last_used_at.is_none_or(|t| now - t >= LAST_USED_RESOLUTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn generated_tokens_have_the_format_and_parse_back() {
        let a = PersonalAccessToken::generate().unwrap();
        let b = PersonalAccessToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert!(a.expose().starts_with("lkp_"));
        assert_eq!(PersonalAccessToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.hint().len(), HINT_LEN);
        assert_eq!(a.hint(), &a.expose()[4..12]);
        assert_eq!(a.hash(), hash_secret(a.expose()));
        assert!(looks_like(a.expose()));
    }

    #[test]
    fn debug_redacts() {
        let a = PersonalAccessToken::generate().unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.expose()) && !shown.contains(&a.hint()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = format!("lkp_{}", "A".repeat(42) + "A");
        assert!(PersonalAccessToken::parse(&good).is_some());
        for bad in [
            String::new(),
            "lkp_".into(),
            format!("lkp_{}", "A".repeat(42)),
            format!("lkp_{}", "A".repeat(44)),
            format!("LKP_{}", "A".repeat(43)),
            format!("lkq_{}", "A".repeat(43)),
            format!("lkp_{}=", "A".repeat(42)),
            format!("lkp_{}+", "A".repeat(42)),
            format!("lkp_{}/", "A".repeat(42)),
            format!("lkp_{}é", "A".repeat(41)),
            format!(" lkp_{}", "A".repeat(43)),
            // The 43rd character carries 4 bits and 2 zero bits: B sets one.
            format!("lkp_{}B", "A".repeat(42)),
            "A".repeat(47),
        ] {
            assert!(PersonalAccessToken::parse(&bad).is_none(), "{bad:?}");
        }
        assert!(!looks_like("eyJhbGciOi.x.y"));
    }

    #[test]
    fn hints_are_shown_with_the_prefix() {
        assert_eq!(display_hint("AbCdEfGh"), "lkp_AbCdEfGh…");
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(name("  CI deploy ").unwrap(), "CI deploy");
        assert!(name("").is_err());
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(NAME_MAX)).is_ok());
        assert!(name(&"x".repeat(NAME_MAX + 1)).is_err());
        assert!(name("a\nb").is_err());
    }

    #[test]
    fn expiry_is_required_and_bounded() {
        assert_eq!(expiry(t(0), 1, 365).unwrap(), t(86_400));
        assert_eq!(expiry(t(0), 365, 365).unwrap(), t(365 * 86_400));
        for days in [0, -1, 366, i64::MAX, i64::MIN] {
            let e = expiry(t(0), days, 365).unwrap_err();
            assert_eq!(e.field, "expires_in_days");
            assert!(e.problem.contains("between 1 and 365"), "{e}");
        }
        assert!(expiry(t(0), 2, 1).is_err());
    }

    #[test]
    fn scopes_need_one_and_refuse_sign_in_scopes() {
        let s = requested_scopes(["read:notes", "profile"]).unwrap();
        assert_eq!(s.to_string(), "profile read:notes");
        assert!(requested_scopes([]).is_err());
        assert!(requested_scopes([" "]).is_err());
        for refused in REFUSED_SCOPES {
            let e = requested_scopes(["read:notes", refused]).unwrap_err();
            assert!(e.problem.contains(refused), "{e}");
        }
        assert!(requested_scopes(["bad\"scope"]).is_err());
    }

    #[test]
    fn usable_until_expiry_unless_revoked() {
        assert!(usable(t(10), None, t(0)));
        assert!(usable(t(10), None, t(9)));
        assert!(!usable(t(10), None, t(10)), "the expiry second is past");
        assert!(!usable(t(10), None, t(11)));
        assert!(!usable(t(10), Some(t(1)), t(2)));
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute() {
        assert!(last_use_due(None, t(0)));
        assert!(!last_use_due(Some(t(0)), t(0)));
        assert!(!last_use_due(Some(t(0)), t(59)));
        assert!(last_use_due(Some(t(0)), t(60)));
        assert!(last_use_due(Some(t(0)), t(3600)));
    }
}
