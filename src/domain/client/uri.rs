//! Where a client's URIs may point: redirect URIs (RFC 6749 3.1.2, RFC 8252
//! for native apps), back-channel logout URIs, audiences (RFC 8707).

use std::net::IpAddr;

use super::{ClientKind, OOB_REDIRECT_URI, REDIRECT_URI_MAX, REDIRECT_URIS_MAX};
use crate::domain::Invalid;

pub const AUDIENCES_MAX: usize = 16;

/// Validates one redirect URI for a client of the given kind.
///
/// - exact string, absolute, no fragment, at most 2048 characters;
/// - `https`, or `http` on a loopback host (RFC 8252 7.3);
/// - private-use schemes (`com.example.app:/cb`, RFC 8252 7.1) for public
///   clients only;
/// - the out-of-band URN.
pub fn validate_redirect_uri(raw: &str, kind: ClientKind) -> Result<String, Invalid> {
    const F: &str = "redirect_uri";
    if raw.len() > REDIRECT_URI_MAX {
        return Err(Invalid::new(
            F,
            format!("at most {REDIRECT_URI_MAX} characters"),
        ));
    }
    if raw == OOB_REDIRECT_URI {
        return Ok(raw.to_owned());
    }
    let url = url::Url::parse(raw)
        .map_err(|_| Invalid::new(F, format!("{raw:?} is not an absolute URI")))?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(Invalid::new(F, format!("{raw:?} must not have a fragment")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(
            F,
            format!("{raw:?} must not contain credentials"),
        ));
    }
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if is_loopback_host(&url) => Ok(raw.to_owned()),
        "http" => Err(Invalid::new(
            F,
            format!("{raw:?} must use https (plain http only on a loopback host)"),
        )),
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about" => Err(Invalid::new(
            F,
            format!("scheme {:?} is not allowed", url.scheme()),
        )),
        scheme if kind == ClientKind::Public && scheme.contains('.') => Ok(raw.to_owned()),
        scheme if kind == ClientKind::Public => Err(Invalid::new(
            F,
            format!(
                "private-use scheme {scheme:?} must be a reverse domain name, like com.example.app"
            ),
        )),
        scheme => Err(Invalid::new(
            F,
            format!("scheme {scheme:?} is only allowed for public (native) clients"),
        )),
    }
}

/// Audiences are absolute URIs without a fragment (RFC 8707 2).
pub(super) fn audience_list(raw: &[String], field: &'static str) -> Result<Vec<String>, Invalid> {
    if raw.len() > AUDIENCES_MAX {
        return Err(Invalid::new(field, format!("at most {AUDIENCES_MAX}")));
    }
    let mut out: Vec<String> = Vec::new();
    for a in raw {
        let ok = a.len() <= REDIRECT_URI_MAX
            && url::Url::parse(a).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
        if !ok {
            return Err(Invalid::new(
                field,
                format!("{a:?} must be an absolute URI without a fragment"),
            ));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// A `backchannel_logout_uri` (Back-Channel Logout 1.0 2.2): an absolute
/// https URI, or http on a loopback host (for development); no fragment.
pub fn validate_backchannel_logout_uri(raw: &str) -> Result<String, Invalid> {
    const F: &str = "backchannel_logout_uri";
    if raw.len() > REDIRECT_URI_MAX {
        return Err(Invalid::new(F, format!("at most {REDIRECT_URI_MAX} bytes")));
    }
    let url = url::Url::parse(raw).map_err(|_| Invalid::new(F, "must be an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(Invalid::new(F, "must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(F, "must not carry credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(raw.to_owned()),
        "http" if is_loopback_host(&url) => Ok(raw.to_owned()),
        "http" => Err(Invalid::new(
            F,
            "http is only allowed on a loopback host; use https",
        )),
        _ => Err(Invalid::new(F, "must be an https URI")),
    }
}

/// A back-channel logout URI a client chose for itself (dynamic
/// registration) must name a public host: Latchkey POSTs to it, and must
/// not be steered at its own network (SSRF). Refuses `localhost` names and
/// IP literals that are not public; names are checked again after DNS
/// resolution when a token is sent.
pub fn refuse_private_destination(raw: &str) -> Result<(), Invalid> {
    let refused = || {
        Invalid::new(
            "backchannel_logout_uri",
            "must name a public https host (not localhost, a private or a link-local address)",
        )
    };
    let url = url::Url::parse(raw).map_err(|_| refused())?;
    let public = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d != "localhost" && !d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => crate::domain::net::is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => crate::domain::net::is_public(IpAddr::V6(ip)),
        None => false,
    };
    if url.scheme() == "https" && public {
        Ok(())
    } else {
        Err(refused())
    }
}

pub(super) fn uri_list(
    raw: &[String],
    kind: ClientKind,
    field: &'static str,
) -> Result<Vec<String>, Invalid> {
    if raw.len() > REDIRECT_URIS_MAX {
        return Err(Invalid::new(
            field,
            format!("at most {REDIRECT_URIS_MAX} URIs"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for u in raw {
        let v = validate_redirect_uri(u, kind).map_err(|e| Invalid::new(field, e.problem))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Where a redirect URI sends the browser, as the consent page names it:
/// the host of an `http(s)` URI (IDNs in their ASCII form, so look-alike
/// letters show), or the private-use scheme of a native app. `None` for
/// the out-of-band URN (the code is shown, not sent).
pub fn redirect_destination(redirect_uri: &str) -> Option<String> {
    if redirect_uri == OOB_REDIRECT_URI {
        return None;
    }
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.host_str() {
        Some(host) => Some(host.to_owned()),
        None => Some(format!("{}: (an app on this device)", url.scheme())),
    }
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannel_logout_uri_rules() {
        let ok = |u: &str| validate_backchannel_logout_uri(u).is_ok();
        assert!(ok("https://rp.example/backchannel"));
        assert!(ok("http://127.0.0.1:8080/bc"));
        assert!(ok("http://[::1]/bc"));
        assert!(ok("http://localhost/bc"));
        assert!(!ok("http://rp.example/bc"));
        assert!(!ok("https://rp.example/bc#frag"));
        assert!(!ok("https://user:pw@rp.example/bc"));
        assert!(!ok("ftp://rp.example/bc"));
        assert!(!ok("/relative"));
        assert!(!ok(&format!(
            "https://rp.example/{}",
            "a".repeat(REDIRECT_URI_MAX)
        )));
    }

    #[test]
    fn self_registered_logout_uris_are_public() {
        let ok = |u: &str| refuse_private_destination(u).is_ok();
        assert!(ok("https://rp.example/bc"));
        assert!(ok("https://93.184.216.34/bc"));
        for u in [
            "http://127.0.0.1:8080/bc",
            "https://127.0.0.1/bc",
            "https://localhost/bc",
            "https://LOCALHOST./bc",
            "https://api.localhost/bc",
            "https://10.0.0.5/bc",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/bc",
            "https://[fd00::1]/bc",
            "https://[::ffff:127.0.0.1]/bc",
            "http://rp.example/bc",
        ] {
            assert!(!ok(u), "{u}");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        use ClientKind::*;
        assert!(validate_redirect_uri("https://app.example/cb", Confidential).is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:9000/cb", Confidential).is_ok());
        assert!(validate_redirect_uri("http://[::1]/cb", Public).is_ok());
        assert!(validate_redirect_uri("http://app.example/cb", Confidential).is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x", Confidential).is_err());
        assert!(validate_redirect_uri("javascript:alert(1)", Public).is_err());
        assert!(validate_redirect_uri("data:text/html,x", Public).is_err());
        assert!(validate_redirect_uri("com.example.app:/cb", Public).is_ok());
        assert!(validate_redirect_uri("com.example.app:/cb", Confidential).is_err());
        assert!(validate_redirect_uri("myapp:/cb", Public).is_err());
        assert!(validate_redirect_uri(OOB_REDIRECT_URI, Confidential).is_ok());
        assert!(validate_redirect_uri("/relative", Confidential).is_err());
        assert!(
            validate_redirect_uri(&format!("https://a.example/{}", "x".repeat(2100)), Public)
                .is_err()
        );
    }

    #[test]
    fn redirect_destinations() {
        let d = |u: &str| redirect_destination(u);
        assert_eq!(
            d("https://app.example:8443/cb?x=1").as_deref(),
            Some("app.example")
        );
        assert_eq!(d("http://127.0.0.1:9000/cb").as_deref(), Some("127.0.0.1"));
        assert_eq!(d("http://[::1]/cb").as_deref(), Some("[::1]"));
        assert_eq!(
            d("https://bücher.example/cb").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            d("com.example.app:/cb").as_deref(),
            Some("com.example.app: (an app on this device)")
        );
        assert_eq!(d(OOB_REDIRECT_URI), None);
    }
}
