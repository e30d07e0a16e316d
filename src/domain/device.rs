//! User codes of the device authorization grant (RFC 8628 6.1): eight
//! characters from an alphabet without vowels (no words) and without
//! look-alikes (no 0/O, 1/I/L, 5/S…), shown as `XXXX-XXXX`. What a person
//! types is upper-cased and stripped of spaces and dashes before it is
//! compared, so `bcdf ghjk` and `BCDF-GHJK` are the same code.
//!
//! 20^8 (about 2^34.6) codes: short enough to type, and guessing is
//! bounded by throttling code entry, not by the size of the space alone.

use std::fmt;

use super::secret::{RngError, fill_random, hash_secret};

/// The characters of a user code.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (without the dash).
pub const USER_CODE_LEN: usize = 8;
/// Longest input accepted as a user code before normalizing (spaces and
/// dashes a person may type or paste).
pub const USER_CODE_INPUT_MAX: usize = 32;

/// A well-formed user code, normalized. `Debug` redacts it: a live code
/// binds a device to whoever enters it first.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A new random code: each character uniform over the alphabet
    /// (bytes of 240 or more are drawn again, so none is favoured).
    pub fn generate() -> Result<Self, RngError> {
        let mut out = String::with_capacity(USER_CODE_LEN);
        let mut buf = [0u8; 16];
        while out.len() < USER_CODE_LEN {
            fill_random(&mut buf)?;
            for b in buf {
                if out.len() < USER_CODE_LEN && b < 240 {
                    out.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
                }
            }
        }
        Ok(Self(out))
    }

    /// What a person typed, normalized: `None` unless it is eight
    /// characters of the alphabet once upper-cased and stripped of spaces
    /// and dashes.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > USER_CODE_INPUT_MAX {
            return None;
        }
        let code: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let ok =
            code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        ok.then_some(Self(code))
    }

    /// The eight characters, as compared.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to people: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }

    /// What is stored and looked up: its SHA-256.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_the_alphabet_and_show_with_a_dash() {
        for _ in 0..200 {
            let c = UserCode::generate().unwrap();
            assert_eq!(c.as_str().len(), USER_CODE_LEN);
            assert!(c.as_str().bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            let shown = c.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown), Some(c));
        }
    }

    #[test]
    fn input_is_upper_cased_and_stripped() {
        let want = UserCode::parse("BCDFGHJK").unwrap();
        for typed in [
            "bcdf-ghjk",
            " BCDF GHJK ",
            "bcdfghjk",
            "B-C-D-F-G-H-J-K",
            "bcdf\tghjk",
        ] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&want), "{typed:?}");
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(UserCode::parse(&"-".repeat(40)), None);
    }

    #[test]
    fn debug_hides_the_code() {
        let c = UserCode::parse("BCDFGHJK").unwrap();
        assert!(!format!("{c:?}").contains("BCDF"));
    }
}
