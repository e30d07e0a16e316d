//! Second factors, as pure rules: TOTP (RFC 6238 over RFC 4226 HOTP:
//! HMAC-SHA-1, 6 digits, 30-second steps), recovery codes, and how a
//! sign-in is described (`amr`, RFC 8176) and rated (`acr`).
//!
//! Factor kinds are an enum so another kind (passkeys) is one more arm.

use std::fmt;

use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use super::secret::{RngError, ct_eq, fill_random};

/// The length of a TOTP step (RFC 6238 default, what apps expect).
pub const STEP_SECS: i64 = 30;
/// Digits of a TOTP code.
pub const DIGITS: u32 = 6;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a TOTP seed (160 bits, RFC 4226 R6 recommends it).
pub const SEED_LEN: usize = 20;
/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;

/// `acr` of a sign-in with a password alone.
pub const ACR_PWD: &str = "urn:latchkey:acr:pwd";
/// `acr` of a sign-in with a password and a second factor.
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
/// Every `acr` value Latchkey issues (discovery `acr_values_supported`).
pub const ACR_VALUES: [&str; 2] = [ACR_PWD, ACR_MFA];

/// The kinds of second factor a user may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    Totp,
    RecoveryCodes,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::RecoveryCodes => "recovery_codes",
        }
    }
}

/// The HOTP value (RFC 4226 5.3) of `counter`, `digits` long.
pub fn hotp(seed: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(seed) else {
        // HMAC takes keys of any length; never reached.
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The TOTP step (RFC 6238 4.2: T = floor(unix / 30)) a Unix time is in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The six-digit code of a step, zero-padded.
pub fn code_at_step(seed: &[u8], step: i64) -> String {
    let counter = u64::try_from(step).unwrap_or(0);
    format!("{:06}", hotp(seed, counter, DIGITS))
}

/// A presented code with spaces removed, if it has the shape of a TOTP
/// code (exactly six ASCII digits).
pub fn totp_shape(presented: &str) -> Option<String> {
    let code: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// Checks a TOTP code at `unix_secs`: one step of skew either way, never
/// a step at or before `last_used_step` (a code is accepted once). The
/// step that matched, to be stored as the new last used step.
pub fn verify_totp(
    seed: &[u8],
    presented: &str,
    unix_secs: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code = totp_shape(presented)?;
    let now = step_at(unix_secs);
    let mut matched = None;
    // Every candidate is computed and compared, so timing does not tell
    // which step matched.
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let fresh = last_used_step.is_none_or(|last| step > last);
        let same = ct_eq(code_at_step(seed, step).as_bytes(), code.as_bytes());
        if fresh && same && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// A new random TOTP seed.
pub fn new_seed() -> Result<Zeroizing<Vec<u8>>, RngError> {
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    fill_random(&mut seed)?;
    Ok(seed)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (how authenticator apps take seeds).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buf >> bits) & 31) as usize]));
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The base32 seed in groups of four, easier to type by hand.
pub fn grouped(seed_b32: &str) -> String {
    let chars: Vec<char> = seed_b32.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` URI authenticator apps read from the QR code (the
/// Key Uri Format: label `issuer:account`, `secret`, `issuer`).
pub fn otpauth_uri(issuer_label: &str, account: &str, seed_b32: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={seed_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer_label),
        enc(account),
        enc(issuer_label),
    )
}

/// One recovery code as shown: ten characters from an alphabet without
/// look-alikes, in two groups (`abcde-fghij`), 50 bits.
pub struct RecoveryCode(Zeroizing<String>);

impl RecoveryCode {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps: the HMAC-SHA-256 of the normalised code
    /// under `key` (see [`recovery_hash`]).
    pub fn hash(&self, key: &[u8; 32]) -> String {
        recovery_hash(key, &self.0).unwrap_or_default()
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// 31 symbols, none of them easy to mistake for another (no i, l, o, 0, 1).
const RECOVERY_SYMBOLS: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new set of [`RECOVERY_CODES`] codes. Symbols are drawn by rejection
/// (5 random bits, the value 31 drawn again), so each is equally likely.
pub fn new_recovery_codes() -> Result<Vec<RecoveryCode>, RngError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut pool = Zeroizing::new([0u8; 64]);
    let mut next = pool.len();
    for _ in 0..RECOVERY_CODES {
        let mut s = String::with_capacity(11);
        while s.len() < 11 {
            if s.len() == 5 {
                s.push('-');
                continue;
            }
            if next == pool.len() {
                fill_random(pool.as_mut())?;
                next = 0;
            }
            let v = usize::from(pool[next] & 31);
            next += 1;
            if let Some(&sym) = RECOVERY_SYMBOLS.get(v) {
                s.push(char::from(sym));
            }
        }
        codes.push(RecoveryCode(Zeroizing::new(s)));
    }
    Ok(codes)
}

/// The hash a presented recovery code is looked up by: lowercase, with
/// spaces and dashes removed, exactly ten symbols; `None` for anything
/// else (never a recovery code, so never a lookup).
pub fn recovery_hash(key: &[u8; 32], presented: &str) -> Option<String> {
    let norm: Zeroizing<String> = Zeroizing::new(
        presented
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let ok = norm.len() == 10 && norm.bytes().all(|b| RECOVERY_SYMBOLS.contains(&b));
    if !ok {
        return None;
    }
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(norm.as_bytes());
    Some(
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// How a session signed in: RFC 8176 method values, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amr(Vec<String>);

impl Amr {
    /// A password alone.
    pub fn password() -> Self {
        Amr(vec!["pwd".into()])
    }

    /// A password and a one-time code (TOTP or recovery code).
    pub fn password_and_otp() -> Self {
        Amr(vec!["pwd".into(), "otp".into(), "mfa".into()])
    }

    /// As stored (space-separated); a missing value is a password sign-in
    /// (sessions from before second factors existed).
    pub fn parse(stored: Option<&str>) -> Self {
        match stored {
            Some(s) if !s.trim().is_empty() => {
                Amr(s.split_whitespace().map(str::to_owned).collect())
            }
            _ => Self::password(),
        }
    }

    pub fn values(&self) -> &[String] {
        &self.0
    }

    pub fn is_mfa(&self) -> bool {
        self.0.iter().any(|v| v == "mfa")
    }

    /// The `acr` this sign-in reaches.
    pub fn acr(&self) -> &'static str {
        if self.is_mfa() { ACR_MFA } else { ACR_PWD }
    }
}

impl fmt::Display for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Whether a request's `acr_values` (voluntary, in order of preference)
/// can only be met by a second factor: some value Latchkey knows was
/// asked, and none of the known ones asked is reached by a password
/// alone. Unknown values are ignored (OIDC Core 3.1.2.1: a voluntary
/// request).
pub fn acr_values_need_mfa(acr_values: Option<&str>) -> bool {
    let known: Vec<&str> = acr_values
        .unwrap_or_default()
        .split(' ')
        .filter(|v| ACR_VALUES.contains(v))
        .collect();
    !known.is_empty() && known.iter().all(|v| *v == ACR_MFA)
}

/// Whether an `[mfa]` policy covers a user in groups `mine`: everyone,
/// or a member of one of `groups`.
pub fn policy_covers(required: bool, groups: &[String], mine: &[String]) -> bool {
    required || groups.iter().any(|g| mine.iter().any(|m| m == g))
}

/// What a policy asks of a covered user without a second factor: set one
/// up by the deadline (they may still sign in), or, past it, before any
/// app gets a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolment {
    By(time::OffsetDateTime),
    Overdue,
}

pub fn enrolment_due(deadline: time::OffsetDateTime, now: time::OffsetDateTime) -> Enrolment {
    if now >= deadline {
        Enrolment::Overdue
    } else {
        Enrolment::By(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, counter as u64, 6), *want);
        }
    }

    #[test]
    fn totp_matches_rfc_6238_appendix_b_sha1() {
        for (t, want) in [
            (59_i64, 94287082_u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(RFC_SEED, step_at(t) as u64, 8), want, "T = {t}");
        }
        assert_eq!(code_at_step(RFC_SEED, step_at(59)), "287082");
    }

    #[test]
    fn one_step_of_skew_either_way_and_not_two() {
        let t = 1_700_000_015;
        let now = step_at(t);
        for (delta, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at_step(RFC_SEED, now + delta);
            assert_eq!(
                verify_totp(RFC_SEED, &code, t, None).is_some(),
                ok,
                "delta {delta}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_once() {
        let t = 1_700_000_015;
        let code = code_at_step(RFC_SEED, step_at(t));
        let used = verify_totp(RFC_SEED, &code, t, None).unwrap();
        assert_eq!(used, step_at(t));
        assert_eq!(verify_totp(RFC_SEED, &code, t, Some(used)), None);
        // Nor an older one after a newer one was used.
        let older = code_at_step(RFC_SEED, step_at(t) - 1);
        assert_eq!(verify_totp(RFC_SEED, &older, t, Some(used)), None);
        // The next step's code still works.
        let next = code_at_step(RFC_SEED, step_at(t) + 1);
        assert_eq!(verify_totp(RFC_SEED, &next, t, Some(used)), Some(used + 1));
    }

    #[test]
    fn code_shape() {
        assert_eq!(totp_shape(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(totp_shape("12345"), None);
        assert_eq!(totp_shape("1234567"), None);
        assert_eq!(totp_shape("12345a"), None);
        assert_eq!(totp_shape("١٢٣٤٥٦"), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(&[0u8; SEED_LEN]).len(), 32);
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }

    #[test]
    fn otpauth_uri_escapes_the_label() {
        assert_eq!(
            otpauth_uri("Latchkey", "a b", "MZXW6"),
            "otpauth://totp/Latchkey:a%20b?secret=MZXW6&issuer=Latchkey&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_hashes_are_keyed() {
        // RFC 4231 test case 2 shape: HMAC-SHA-256, hex; a plain SHA-256
        // of the code (guessable offline from a database copy) it is not.
        let code = "abcde-fghjk";
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let ha = recovery_hash(&a, code).unwrap();
        assert_eq!(ha.len(), 64);
        assert_ne!(ha, recovery_hash(&b, code).unwrap());
        assert_ne!(ha, crate::domain::secret::hash_secret("abcdefghjk"));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&a).unwrap();
        mac.update(b"abcdefghjk");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(ha, want);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let key = [7u8; 32];
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut hashes: Vec<String> = codes.iter().map(|c| c.hash(&key)).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), RECOVERY_CODES);
        let c = codes[0].expose();
        assert_eq!(c.len(), 11);
        assert_eq!(
            recovery_hash(&key, &c.to_uppercase().replace('-', " ")),
            Some(codes[0].hash(&key))
        );
        assert_eq!(recovery_hash(&key, "123456"), None);
        assert_eq!(recovery_hash(&key, "abcde-fghi0"), None);
        assert!(!format!("{:?}", codes[0]).contains(c));
    }

    #[test]
    fn policies() {
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(policy_covers(true, &[], &[]));
        assert!(!policy_covers(false, &[], &g(&["staff"])));
        assert!(policy_covers(
            false,
            &g(&["admins"]),
            &g(&["staff", "admins"])
        ));
        assert!(!policy_covers(false, &g(&["admins"]), &g(&["staff"])));
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let day = time::Duration::days(1);
        assert_eq!(enrolment_due(t + day, t), Enrolment::By(t + day));
        assert_eq!(enrolment_due(t, t), Enrolment::Overdue);
    }

    #[test]
    fn amr_and_acr() {
        assert_eq!(Amr::parse(None), Amr::password());
        assert_eq!(Amr::parse(Some("pwd otp mfa")), Amr::password_and_otp());
        assert_eq!(Amr::password().acr(), ACR_PWD);
        assert_eq!(Amr::password_and_otp().acr(), ACR_MFA);
        assert_eq!(Amr::password_and_otp().to_string(), "pwd otp mfa");
    }

    #[test]
    fn which_acr_values_need_a_second_factor() {
        assert!(!acr_values_need_mfa(None));
        assert!(!acr_values_need_mfa(Some("")));
        assert!(acr_values_need_mfa(Some(ACR_MFA)));
        assert!(acr_values_need_mfa(Some("urn:other urn:latchkey:acr:mfa")));
        // A password is one of the levels asked for: it meets the request.
        assert!(!acr_values_need_mfa(Some(
            "urn:latchkey:acr:mfa urn:latchkey:acr:pwd"
        )));
        // Unknown values alone: voluntary, ignored.
        assert!(!acr_values_need_mfa(Some("urn:other")));
    }
}
