//! Users: usernames, emails, profile claims and password rules.

use super::Invalid;
use super::text;

pub const USERNAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const NAME_MAX: usize = 200;
pub const URL_MAX: usize = 2048;
pub const LOCALE_MAX: usize = 35;
pub const PASSWORD_MIN: usize = 8;
/// Longer passwords are refused before hashing (argon2 cost is per byte).
pub const PASSWORD_MAX: usize = 1024;

/// A username: lowercase ASCII letters, digits and `. _ - @`, starting with a
/// letter or digit, 1..=64 characters. Input is lowercased, so names are
/// unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let v = raw.trim().to_ascii_lowercase();
        if v.is_empty() {
            return Err(Invalid::new("username", "must not be empty"));
        }
        if v.len() > USERNAME_MAX {
            return Err(Invalid::new(
                "username",
                format!("at most {USERNAME_MAX} characters"),
            ));
        }
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c);
        if !v.chars().all(ok_char) {
            return Err(Invalid::new(
                "username",
                "only letters a-z, digits and . _ - @ are allowed",
            ));
        }
        if !v.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(Invalid::new(
                "username",
                "must start with a letter or digit",
            ));
        }
        Ok(Self(v))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address, checked for shape only (one `@`, no spaces, bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let v = raw.trim();
        if v.len() > EMAIL_MAX {
            return Err(Invalid::new(
                "email",
                format!("at most {EMAIL_MAX} characters"),
            ));
        }
        let Some((local, domain)) = v.split_once('@') else {
            return Err(Invalid::new("email", "must look like name@example.com"));
        };
        let bad = |s: &str| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '@')
        };
        if bad(local) || bad(domain) || domain.starts_with('.') || domain.ends_with('.') {
            return Err(Invalid::new("email", "must look like name@example.com"));
        }
        Ok(Self(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Optional OIDC profile claims (OIDC Core 5.1), each bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
}

/// Raw profile input as typed by an admin.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput<'a> {
    pub name: Option<&'a str>,
    pub given_name: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub picture: Option<&'a str>,
    pub locale: Option<&'a str>,
}

impl Profile {
    pub fn parse(input: &ProfileInput<'_>) -> Result<Self, Invalid> {
        let picture = match text::optional("picture", input.picture, URL_MAX)? {
            None => None,
            Some(p) => {
                let u = url::Url::parse(&p)
                    .map_err(|_| Invalid::new("picture", "must be an absolute URL"))?;
                if !matches!(u.scheme(), "https" | "http") {
                    return Err(Invalid::new("picture", "must be an http(s) URL"));
                }
                Some(p)
            }
        };
        let locale = match text::optional("locale", input.locale, LOCALE_MAX)? {
            None => None,
            Some(l)
                if l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Some(l)
            }
            Some(_) => return Err(Invalid::new("locale", "must be a language tag like en-GB")),
        };
        Ok(Self {
            name: text::optional("name", input.name, NAME_MAX)?,
            given_name: text::optional("given_name", input.given_name, NAME_MAX)?,
            family_name: text::optional("family_name", input.family_name, NAME_MAX)?,
            picture,
            locale,
        })
    }
}

/// Checks a new password's length (NIST SP 800-63B: at least 8, allow long).
pub fn check_new_password(pw: &str) -> Result<(), Invalid> {
    let n = pw.chars().count();
    if n < PASSWORD_MIN {
        return Err(Invalid::new(
            "password",
            format!("at least {PASSWORD_MIN} characters"),
        ));
    }
    if pw.len() > PASSWORD_MAX {
        return Err(Invalid::new(
            "password",
            format!("at most {PASSWORD_MAX} bytes"),
        ));
    }
    Ok(())
}

/// What ID tokens and userinfo may release about a user (OIDC Core 5.1),
/// borrowed from wherever the user was loaded.
#[derive(Debug, Clone, Copy)]
pub struct UserClaims<'a> {
    pub sub: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub name: Option<&'a str>,
    pub given_name: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub picture: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub updated_at: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("a.b_c-d@e").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("-x").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("ålice").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("a@b.example").is_ok());
        assert!(Email::parse("a@@b").is_err());
        assert!(Email::parse("a b@c").is_err());
        assert!(Email::parse("nope").is_err());
        assert!(Email::parse(&format!("{}@b.c", "a".repeat(260))).is_err());
    }

    #[test]
    fn profiles() {
        let p = Profile::parse(&ProfileInput {
            name: Some("Ada Lovelace"),
            picture: Some("https://x.example/a.png"),
            locale: Some("en-GB"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Ada Lovelace"));
        assert!(
            Profile::parse(&ProfileInput {
                picture: Some("javascript:alert(1)"),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn passwords() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough").is_ok());
        assert!(check_new_password(&"x".repeat(2000)).is_err());
    }
}
