//! Pages a person sees: start page, sign in, sign out, My account,
//! connecting a device.

pub mod account;
pub mod account_mfa;
pub mod account_tokens;
pub mod device;
pub mod home;
pub mod login;
pub mod login_mfa;
pub mod logout;

/// A local path to return to after sign-in: starts with one `/`, no
/// scheme or host (no open redirect), bounded, no control characters.
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let v = raw?.trim();
    let ok = v.starts_with('/')
        && !v.starts_with("//")
        && !v.starts_with("/\\")
        && v.len() <= 2048
        && !v.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_local_paths() {
        assert_eq!(
            safe_return_to(Some("/authorize?x=1")).as_deref(),
            Some("/authorize?x=1")
        );
        assert_eq!(safe_return_to(Some("//evil.example")), None);
        assert_eq!(safe_return_to(Some("/\\evil.example")), None);
        assert_eq!(safe_return_to(Some("https://evil.example")), None);
        assert_eq!(safe_return_to(Some("/a\nb")), None);
        assert_eq!(safe_return_to(None), None);
    }
}
