//! The issuer's discovery document (OpenID Connect Discovery 1.0): where
//! its keys and its introspection endpoint are. Fetched once per verifier
//! and only as far as needed.

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
}
