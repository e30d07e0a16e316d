//! Cookie names and attributes (the policy itself is decided in `state`). Cookies are HttpOnly and SameSite=Lax;
//! on an https issuer they are Secure and carry the `__Host-` prefix (bound
//! to this host, path `/`, no Domain).

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

pub use crate::state::CookiePolicy;

impl CookiePolicy {
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_session"
        } else {
            "latchkey_session"
        }
    }

    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_csrf"
        } else {
            "latchkey_csrf"
        }
    }

    fn base<'a>(&self, name: &'a str, value: String) -> Cookie<'a> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .finish()
    }

    pub fn session(&self, value: &str) -> Cookie<'static> {
        let mut c = self.base(self.session_name(), value.to_owned());
        c.set_max_age(CookieDuration::seconds(self.session_max_age_secs));
        c
    }

    pub fn clear_session(&self) -> Cookie<'static> {
        let mut c = self.base(self.session_name(), String::new());
        c.make_removal();
        c
    }

    /// A sign-in waiting for its second factor (`service::mfa`).
    pub fn mfa_challenge_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_mfa"
        } else {
            "latchkey_mfa"
        }
    }

    pub fn mfa_challenge(&self, value: &str) -> Cookie<'static> {
        let mut c = self.base(self.mfa_challenge_name(), value.to_owned());
        c.set_max_age(CookieDuration::seconds(
            crate::service::mfa::verify::CHALLENGE_TTL.whole_seconds(),
        ));
        c
    }

    pub fn clear_mfa_challenge(&self) -> Cookie<'static> {
        let mut c = self.base(self.mfa_challenge_name(), String::new());
        c.make_removal();
        c
    }

    pub fn csrf(&self, value: &str) -> Cookie<'static> {
        self.base(self.csrf_name(), value.to_owned())
    }
}
