//! Authorization request validation (RFC 6749 4.1.1, OIDC Core 3.1.2.1,
//! RFC 7636, RFC 9700). Errors that must not be redirected (bad client or
//! redirect URI) are kept apart from those sent back to the client.

use serde::{Deserialize, Serialize};

use super::response_type::{self, ResponseType};
use super::{OAuthError, pkce};
use crate::domain::client::Client;
use crate::domain::client::{ClientKind, OOB_REDIRECT_URI};
use crate::domain::scope::ScopeSet;

/// Longest value accepted for any authorization request parameter.
pub const PARAM_MAX: usize = 2048;

/// The request parameters as received (query or form).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub response_mode: Option<String>,
    /// RFC 8707 resource indicator.
    pub resource: Option<String>,
    /// OIDC Core 3.1.2.1: requested `acr` values, in order of preference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// Request objects (OIDC Core 6): not supported, and refused as such
    /// before anyone signs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Ours, not the client's: on the way back from a sign-in that
    /// `prompt=login` asked for, the time (Unix seconds) the sign-in was
    /// asked at. The session must have signed in at or after it, so the
    /// return URL opened again without signing in is not a way round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latchkey_login_after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn parse(raw: Option<&str>) -> Option<ResponseMode> {
        match raw {
            None | Some("query") => Some(ResponseMode::Query),
            Some("fragment") => Some(ResponseMode::Fragment),
            Some("form_post") => Some(ResponseMode::FormPost),
            Some(_) => None,
        }
    }
}

/// Where and how an error or a code goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Shown to the person; never redirected (unknown client, bad redirect URI).
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect(ReturnTo, OAuthError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub client: Client,
    pub return_to: ReturnTo,
    pub response_type: ResponseType,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// A resource the client registered (RFC 8707), if asked.
    pub resource: Option<String>,
    /// See [`AuthorizeParams::latchkey_login_after`].
    pub login_after: Option<i64>,
    /// The request can only be met by a sign-in with a second factor
    /// (`acr_values` asked for it, or the client requires it).
    pub needs_mfa: bool,
}

impl ValidRequest {
    pub fn is_oob(&self) -> bool {
        self.return_to.redirect_uri == OOB_REDIRECT_URI
    }
}

/// Does `requested` match one of the client's redirect URIs? Exact match,
/// except that a public client's loopback IP URI matches on any port
/// (RFC 8252 7.3).
pub fn redirect_uri_matches(client: &Client, requested: &str) -> bool {
    let registered = &client.settings.redirect_uris;
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    if client.settings.kind != ClientKind::Public {
        return false;
    }
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    // RFC 8252 7.3: the loopback IP literals, not all of 127.0.0.0/8 and
    // not `localhost` (which a hostile resolver may point elsewhere).
    let is_loopback_ip = |u: &url::Url| {
        u.scheme() == "http"
            && (u.host() == Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                || u.host() == Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST)))
    };
    if !is_loopback_ip(&req) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|mut r| {
            if !is_loopback_ip(&r) {
                return false;
            }
            let mut q = req.clone();
            let _ = r.set_port(None);
            let _ = q.set_port(None);
            r == q
        })
}

fn bounded(name: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(s) if s.len() > PARAM_MAX => Err(format!("{name} is too long")),
        Some(s) if s.chars().any(char::is_control) => Err(format!("{name} has control characters")),
        _ => Ok(()),
    }
}

/// Validates an authorization request against its client (`None` when the
/// client_id is unknown); `implicit` is the `legacy.implicit` switch.
pub fn validate(
    p: &AuthorizeParams,
    client: Option<Client>,
    implicit: bool,
) -> Result<ValidRequest, Rejection> {
    let client = match (&p.client_id, client) {
        (None, _) => return Err(Rejection::Page("The request has no client_id.".into())),
        (Some(_), None) => {
            return Err(Rejection::Page(
                "The application (client_id) is not registered.".into(),
            ));
        }
        (Some(_), Some(c)) => c,
    };
    let Some(redirect_uri) = p.redirect_uri.clone() else {
        return Err(Rejection::Page("The request has no redirect_uri.".into()));
    };
    if redirect_uri.len() > PARAM_MAX || !redirect_uri_matches(&client, &redirect_uri) {
        return Err(Rejection::Page(
            "The redirect_uri is not registered for this application.".into(),
        ));
    }
    let mode = response_type::response_mode(p, redirect_uri == OOB_REDIRECT_URI);
    let return_to = ReturnTo {
        redirect_uri,
        mode,
        state: p.state.clone().filter(|s| s.len() <= PARAM_MAX),
    };
    let fail = |e: OAuthError| Err(Rejection::Redirect(return_to.clone(), e));

    // OIDC Core 6.1 / 6.2: say exactly what is not supported.
    if p.request.is_some() {
        return fail(OAuthError::request_not_supported(
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return fail(OAuthError::request_uri_not_supported(
            "request_uri is not supported",
        ));
    }

    for (name, v) in [
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("scope", &p.scope),
        ("prompt", &p.prompt),
        ("login_hint", &p.login_hint),
        ("id_token_hint", &p.id_token_hint),
        ("code_challenge", &p.code_challenge),
        ("max_age", &p.max_age),
        ("acr_values", &p.acr_values),
    ] {
        if let Err(e) = bounded(name, v) {
            return fail(OAuthError::invalid_request(e));
        }
    }
    if ResponseMode::parse(p.response_mode.as_deref()).is_none() {
        return fail(OAuthError::invalid_request(
            "response_mode must be query, fragment or form_post",
        ));
    }
    let response_type = match response_type::judge(p, &client, implicit) {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };

    let mut scope = match requested_scope(p.scope.as_deref(), &client) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let code_challenge = if response_type.is_implicit() {
        // OIDC Core 11: offline_access is ignored unless a code is
        // returned (no refresh token ever comes from /authorize); PKCE
        // protects codes, and there is none.
        scope = ScopeSet::from_items(scope.iter().filter(|s| *s != "offline_access"))
            .unwrap_or_default();
        if scope.is_empty() {
            return fail(OAuthError::invalid_scope(
                "offline_access needs the code flow",
            ));
        }
        None
    } else {
        match pkce::challenge(
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
            client.settings.kind == ClientKind::Public,
        ) {
            Ok(c) => c,
            Err(e) => return fail(e),
        }
    };

    let mut prompt = Prompt::default();
    for v in p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        match v {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => {
                return fail(OAuthError::invalid_request(format!(
                    "unsupported prompt value {other:?}"
                )));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return fail(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    let resource = match requested_resource(p.resource.as_deref(), &client) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return fail(OAuthError::invalid_request(
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    // A malformed marker is ignored: the sign-in is simply asked again.
    let login_after = p
        .latchkey_login_after
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok());
    let needs_mfa = client.settings.require_mfa
        || crate::domain::mfa::acr_values_need_mfa(p.acr_values.as_deref());
    Ok(ValidRequest {
        client,
        return_to,
        response_type,
        scope,
        nonce: p.nonce.clone(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint.clone(),
        resource,
        login_after,
        needs_mfa,
    })
}

/// The scope a request asks for: required, and within the client's
/// allowed scopes (anything else is `invalid_scope`, naming the extras).
/// Shared by `/authorize` and the device authorization endpoint.
pub fn requested_scope(raw: Option<&str>, client: &Client) -> Result<ScopeSet, OAuthError> {
    let scope = match raw.map(ScopeSet::parse) {
        None => return Err(OAuthError::invalid_scope("scope is required")),
        Some(Err(e)) => return Err(OAuthError::invalid_scope(e.problem)),
        Some(Ok(s)) if s.is_empty() => return Err(OAuthError::invalid_scope("scope is required")),
        Some(Ok(s)) => s,
    };
    if !scope.is_subset(&client.settings.allowed_scopes) {
        let extra: Vec<&str> = scope
            .iter()
            .filter(|s| !client.settings.allowed_scopes.contains(s))
            .collect();
        return Err(OAuthError::invalid_scope(format!(
            "not allowed for this client: {}",
            extra.join(" ")
        )));
    }
    Ok(scope)
}

/// The RFC 8707 resource a request asks for, if any: one of the client's
/// registered audiences, else `invalid_target`.
pub fn requested_resource(
    raw: Option<&str>,
    client: &Client,
) -> Result<Option<String>, OAuthError> {
    match raw {
        None => Ok(None),
        Some(r) if client.settings.audiences.iter().any(|a| a == r) => Ok(Some(r.to_owned())),
        Some(_) => Err(OAuthError::invalid_target(
            "the resource is not registered for this client",
        )),
    }
}

/// The redirect for a result: `params` in the query or fragment (form_post
/// is rendered by the HTTP layer). `iss` is always included (RFC 9207).
pub fn redirect_url(to: &ReturnTo, issuer: &str, params: &[(&str, &str)]) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        pairs.append_pair(k, v);
    }
    if let Some(state) = &to.state {
        pairs.append_pair("state", state);
    }
    pairs.append_pair("iss", issuer);
    let encoded = pairs.finish();
    let sep = match to.mode {
        ResponseMode::Fragment => '#',
        _ if to.redirect_uri.contains('?') => '&',
        _ => '?',
    };
    format!("{}{sep}{encoded}", to.redirect_uri)
}

/// All parameters of a result, for form_post or the out-of-band page.
pub fn result_params(
    to: &ReturnTo,
    issuer: &str,
    params: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(state) = &to.state {
        out.push(("state".into(), state.clone()));
    }
    out.push(("iss".into(), issuer.to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{ClientInput, ClientSettings};

    fn client(public: bool) -> Client {
        let settings = ClientSettings::parse(&ClientInput {
            name: "App".into(),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://127.0.0.1/cb".into(),
            ],
            scopes: vec!["openid profile email offline_access".into()],
            public,
            ..Default::default()
        })
        .unwrap();
        Client::unsaved("app", settings)
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            scope: Some("openid email".into()),
            state: Some("xyz".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        }
    }

    fn error_of(r: Result<ValidRequest, Rejection>) -> &'static str {
        match r {
            Err(Rejection::Redirect(_, e)) => e.error.as_str(),
            Err(Rejection::Page(_)) => "page",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn good_request_passes() {
        let v = validate(&params(), Some(client(true)), false).unwrap();
        assert_eq!(v.scope.to_string(), "email openid");
        assert_eq!(v.return_to.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn client_and_redirect_problems_are_never_redirected() {
        assert_eq!(error_of(validate(&params(), None, false)), "page");
        let mut p = params();
        p.redirect_uri = Some("https://evil.example/cb".into());
        assert_eq!(error_of(validate(&p, Some(client(false)), false)), "page");
        p.redirect_uri = None;
        assert_eq!(error_of(validate(&p, Some(client(false)), false)), "page");
    }

    #[test]
    fn loopback_any_port_for_public_clients_only() {
        let mut p = params();
        p.redirect_uri = Some("http://127.0.0.1:53124/cb".into());
        assert_eq!(error_of(validate(&p, Some(client(true)), false)), "ok");
        assert_eq!(error_of(validate(&p, Some(client(false)), false)), "page");
        p.redirect_uri = Some("http://127.0.0.1:53124/other".into());
        assert_eq!(error_of(validate(&p, Some(client(true)), false)), "page");
    }

    #[test]
    fn loopback_means_the_two_literals_only() {
        // RFC 8252 7.3: 127.0.0.1 and [::1]; not the rest of 127.0.0.0/8.
        let mut p = params();
        p.redirect_uri = Some("http://127.0.0.2:53124/cb".into());
        assert_eq!(error_of(validate(&p, Some(client(true)), false)), "page");
        p.redirect_uri = Some("http://127.1.2.3/cb".into());
        assert_eq!(error_of(validate(&p, Some(client(true)), false)), "page");
    }

    #[test]
    fn request_objects_are_refused_as_not_supported() {
        let mut p = params();
        p.request = Some("eyJhbGciOiJub25lIn0.e30.".into());
        assert_eq!(
            error_of(validate(&p, Some(client(true)), false)),
            "request_not_supported"
        );
        let mut p = params();
        p.request_uri = Some("https://app.example/req.jwt".into());
        assert_eq!(
            error_of(validate(&p, Some(client(true)), false)),
            "request_uri_not_supported"
        );
        // Still never to an unregistered redirect URI.
        p.redirect_uri = Some("https://evil.example/cb".into());
        assert_eq!(error_of(validate(&p, Some(client(true)), false)), "page");
    }

    #[test]
    fn protocol_errors_go_back_to_the_client() {
        let c = || Some(client(true));
        let mut p = params();
        p.response_type = Some("token".into());
        assert_eq!(
            error_of(validate(&p, c(), false)),
            "unsupported_response_type"
        );
        let mut p = params();
        p.scope = Some("openid admin".into());
        assert_eq!(error_of(validate(&p, c(), false)), "invalid_scope");
        let mut p = params();
        p.code_challenge = None;
        p.code_challenge_method = None;
        assert_eq!(
            error_of(validate(&p, c(), false)),
            "invalid_request",
            "public client without PKCE"
        );
        assert_eq!(
            error_of(validate(&p, Some(client(false)), false)),
            "ok",
            "confidential may skip PKCE"
        );
        let mut p = params();
        p.code_challenge_method = Some("plain".into());
        assert_eq!(error_of(validate(&p, c(), false)), "invalid_request");
        let mut p = params();
        p.prompt = Some("none login".into());
        assert_eq!(error_of(validate(&p, c(), false)), "invalid_request");
        let mut p = params();
        p.max_age = Some("-1".into());
        assert_eq!(error_of(validate(&p, c(), false)), "invalid_request");
        let mut p = params();
        p.state = Some("x".repeat(5000));
        assert_eq!(error_of(validate(&p, c(), false)), "invalid_request");
    }

    #[test]
    fn redirects_carry_state_and_iss() {
        let to = ReturnTo {
            redirect_uri: "https://app.example/cb?x=1".into(),
            mode: ResponseMode::Query,
            state: Some("s t".into()),
        };
        assert_eq!(
            redirect_url(&to, "https://id.example", &[("code", "abc")]),
            "https://app.example/cb?x=1&code=abc&state=s+t&iss=https%3A%2F%2Fid.example"
        );
        let frag = ReturnTo {
            mode: ResponseMode::Fragment,
            redirect_uri: "https://a.example/cb".into(),
            state: None,
        };
        assert_eq!(
            redirect_url(&frag, "https://id.example", &[("error", "access_denied")]),
            "https://a.example/cb#error=access_denied&iss=https%3A%2F%2Fid.example"
        );
    }
}
