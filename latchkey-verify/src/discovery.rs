//! The issuer's discovery document (OpenID Connect Discovery 1.0): where
//! its keys and its introspection endpoint are. Fetched once per verifier
//! and only as far as needed. Also which introspection endpoint may be
//! trusted with this resource server's client secret and users' tokens.

use reqwest::Url;

/// Largest discovery or JWKS document accepted.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The endpoints a verifier needs from discovery.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub jwks_uri: String,
    pub introspection_endpoint: Option<String>,
}

/// Fetches the discovery document at `url`. Section 4 of the spec: its
/// `issuer` must be exactly `issuer`.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: &str,
    issuer: &str,
) -> Result<Endpoints, String> {
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    let body = read_limited(resp, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    parse(&body, issuer)
}

fn parse(body: &[u8], issuer: &str) -> Result<Endpoints, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("discovery document: {e}"))?;
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err("discovery document names another issuer".into());
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "discovery document has no jwks_uri".to_owned())?;
    let introspection_endpoint = doc
        .get("introspection_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok(Endpoints {
        jwks_uri,
        introspection_endpoint,
    })
}

/// Why an introspection endpoint is not trusted with this resource
/// server's client credentials and its users' tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Untrusted {
    /// Not an absolute http(s) URL with a host, or one with user
    /// information (`https://user@host/`).
    NotAnHttpUrl,
    /// Plain http while the issuer is https.
    NotHttps,
    /// Learnt from discovery, and not on the issuer's origin (scheme,
    /// host and port).
    OtherOrigin,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Untrusted::NotAnHttpUrl => "not an absolute http(s) URL without user information",
            Untrusted::NotHttps => "not https, and the issuer is https",
            Untrusted::OtherOrigin => "not on the issuer's origin (scheme, host and port)",
        })
    }
}

/// `endpoint` parsed, if it may receive the client secret and users'
/// tokens: https unless the issuer itself is plain http (development on
/// loopback), and, unless it was set `explicit`ly by whoever configured
/// this verifier, on the issuer's own origin, so that a discovery
/// document (possibly tampered with, or served by a shared host) cannot
/// send them elsewhere.
pub(crate) fn trusted_introspection_endpoint(
    endpoint: &str,
    issuer: &Url,
    explicit: bool,
) -> Result<Url, Untrusted> {
    let url = Url::parse(endpoint).map_err(|_| Untrusted::NotAnHttpUrl)?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.has_host()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Untrusted::NotAnHttpUrl);
    }
    if url.scheme() != "https" && issuer.scheme() != "http" {
        return Err(Untrusted::NotHttps);
    }
    if !explicit && url.origin() != issuer.origin() {
        return Err(Untrusted::OtherOrigin);
    }
    Ok(url)
}

/// The response body, refused once it passes `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err("document too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_the_right_issuer_only() {
        let doc = br#"{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks",
            "introspection_endpoint":"https://id.example/introspect"}"#;
        let e = parse(doc, "https://id.example").unwrap();
        assert_eq!(e.jwks_uri, "https://id.example/jwks");
        assert_eq!(
            e.introspection_endpoint.as_deref(),
            Some("https://id.example/introspect")
        );
        assert!(parse(doc, "https://id.example/").is_err());
        let bare = br#"{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks"}"#;
        assert_eq!(
            parse(bare, "https://id.example")
                .unwrap()
                .introspection_endpoint,
            None
        );
        assert!(parse(br#"{"issuer":"https://id.example"}"#, "https://id.example").is_err());
    }

    fn trusted(endpoint: &str, issuer: &str, explicit: bool) -> Result<String, Untrusted> {
        let issuer = Url::parse(issuer).unwrap();
        trusted_introspection_endpoint(endpoint, &issuer, explicit).map(String::from)
    }

    #[test]
    fn a_discovered_introspection_endpoint_must_be_on_the_issuers_origin() {
        let issuer = "https://id.example/tenant";
        for same in [
            "https://id.example/introspect",
            "https://ID.example:443/oauth/introspect",
            "https://id.example/tenant/introspect?x=1",
        ] {
            assert!(trusted(same, issuer, false).is_ok(), "{same}");
        }
        for (other, why) in [
            ("https://evil.example/introspect", Untrusted::OtherOrigin),
            ("https://id.example.evil.example/", Untrusted::OtherOrigin),
            ("https://id.example:8443/introspect", Untrusted::OtherOrigin),
            ("https://sub.id.example/introspect", Untrusted::OtherOrigin),
            ("http://id.example/introspect", Untrusted::NotHttps),
            ("/introspect", Untrusted::NotAnHttpUrl),
            ("ftp://id.example/introspect", Untrusted::NotAnHttpUrl),
            ("https://me@id.example/introspect", Untrusted::NotAnHttpUrl),
            (
                "https://me:pw@id.example/introspect",
                Untrusted::NotAnHttpUrl,
            ),
            ("", Untrusted::NotAnHttpUrl),
        ] {
            assert_eq!(trusted(other, issuer, false), Err(why), "{other}");
        }
        // Plain http only with a plain http issuer, and on its origin.
        let local = "http://127.0.0.1:8080";
        assert!(trusted("http://127.0.0.1:8080/introspect", local, false).is_ok());
        for other in [
            "http://127.0.0.1:9090/introspect",
            "https://127.0.0.1:8080/introspect",
            "http://localhost:8080/introspect",
        ] {
            assert_eq!(
                trusted(other, local, false),
                Err(Untrusted::OtherOrigin),
                "{other}"
            );
        }
    }

    #[test]
    fn an_explicit_introspection_endpoint_may_be_elsewhere_but_https() {
        let issuer = "https://id.example";
        assert_eq!(
            trusted("https://introspect.example/x", issuer, true).as_deref(),
            Ok("https://introspect.example/x")
        );
        assert_eq!(
            trusted("http://introspect.example/x", issuer, true),
            Err(Untrusted::NotHttps)
        );
        assert_eq!(
            trusted("http://id.example/introspect", issuer, true),
            Err(Untrusted::NotHttps)
        );
        assert_eq!(
            trusted("introspect", issuer, true),
            Err(Untrusted::NotAnHttpUrl)
        );
        assert!(
            trusted(
                "http://127.0.0.1:9/introspect",
                "http://127.0.0.1:8080",
                true
            )
            .is_ok()
        );
        assert!(
            trusted(
                "https://127.0.0.1:9/introspect",
                "http://127.0.0.1:8080",
                true
            )
            .is_ok()
        );
    }
}
