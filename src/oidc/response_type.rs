//! The response types `/authorize` answers: `code`, and, when the legacy
//! implicit flow is on, `id_token`, `id_token token` and `token` (OIDC Core
//! 3.2, RFC 6749 4.2), with the rules each brings: which grant the client
//! needs, how the answer travels (OAuth 2.0 Multiple Response Type
//! Encoding Practices 2.1 and 5: never in the query for these), and that an
//! ID token needs `openid` and a `nonce`.

use super::OAuthError;
use super::authorize::{AuthorizeParams, ResponseMode};
use crate::domain::client::{Client, GrantType, OOB_REDIRECT_URI};

/// A supported `response_type` (a space-separated set: order is free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    /// An ID token only (OIDC Core 3.2).
    IdToken,
    /// An ID token and an access token (OIDC Core 3.2).
    IdTokenToken,
    /// An access token only (RFC 6749 4.2).
    Token,
}

/// The implicit response types, as discovery and registration list them.
pub const IMPLICIT: [&str; 3] = ["id_token", "id_token token", "token"];

impl ResponseType {
    /// The value, if it is one Latchkey knows (`None` for hybrid and
    /// unknown ones).
    pub fn parse(raw: &str) -> Option<ResponseType> {
        let mut parts: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] => Some(ResponseType::Code),
            ["id_token"] => Some(ResponseType::IdToken),
            ["id_token", "token"] => Some(ResponseType::IdTokenToken),
            ["token"] => Some(ResponseType::Token),
            _ => None,
        }
    }

    pub fn is_implicit(self) -> bool {
        self != ResponseType::Code
    }

    pub fn returns_id_token(self) -> bool {
        matches!(self, ResponseType::IdToken | ResponseType::IdTokenToken)
    }

    pub fn returns_access_token(self) -> bool {
        matches!(self, ResponseType::IdTokenToken | ResponseType::Token)
    }

    /// The grant a client needs for this response type.
    pub fn grant(self) -> GrantType {
        if self.is_implicit() {
            GrantType::Implicit
        } else {
            GrantType::AuthorizationCode
        }
    }
}

/// How the answer (or an error) goes back: `response_mode` as asked,
/// else the default of the response type (fragment for the implicit ones,
/// even for an error that refuses them). The out-of-band URI is always
/// "query" (the page shows the result). An implicit request that asked for
/// query gets its refusal in the fragment: tokens are never put in a query.
pub fn response_mode(p: &AuthorizeParams, oob: bool) -> ResponseMode {
    let implicit = p
        .response_type
        .as_deref()
        .and_then(ResponseType::parse)
        .is_some_and(ResponseType::is_implicit);
    let default = if implicit {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    match p
        .response_mode
        .as_deref()
        .map(|m| ResponseMode::parse(Some(m)))
    {
        _ if oob => ResponseMode::Query,
        Some(Some(ResponseMode::Query)) if implicit => ResponseMode::Fragment,
        Some(Some(m)) => m,
        _ => default,
    }
}

/// The response type of a request for `client`, or the error to send back:
/// `invalid_request` when it is missing, `unsupported_response_type` for
/// one Latchkey does not answer (the implicit ones while `implicit` is off),
/// `unauthorized_client` when the client lacks the grant, and the implicit
/// flow's own rules (no query mode, no out-of-band page, `openid` and a
/// `nonce` with an ID token).
pub fn judge(
    p: &AuthorizeParams,
    client: &Client,
    implicit: bool,
) -> Result<ResponseType, OAuthError> {
    let Some(raw) = p.response_type.as_deref() else {
        return Err(OAuthError::invalid_request("response_type is required"));
    };
    let supported = if implicit {
        "code, id_token, \"id_token token\" or token"
    } else {
        "code"
    };
    let unsupported =
        || OAuthError::unsupported_response_type(format!("response_type must be {supported}"));
    let rt = ResponseType::parse(raw).ok_or_else(unsupported)?;
    if rt.is_implicit() && !implicit {
        return Err(unsupported());
    }
    if !client.settings.grant_types.contains(&rt.grant()) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {} grant",
            rt.grant()
        )));
    }
    if !rt.is_implicit() {
        return Ok(rt);
    }
    if p.response_mode.as_deref() == Some("query") {
        return Err(OAuthError::invalid_request(
            "tokens are never sent in the query: use response_mode fragment or form_post",
        ));
    }
    if p.redirect_uri.as_deref() == Some(OOB_REDIRECT_URI) {
        return Err(OAuthError::invalid_request(
            "the out-of-band redirect URI is for the code flow only",
        ));
    }
    if rt.returns_id_token() {
        let openid = p
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
        if !openid {
            return Err(OAuthError::invalid_request(
                "an ID token needs the openid scope",
            ));
        }
        if p.nonce.as_deref().is_none_or(str::is_empty) {
            return Err(OAuthError::invalid_request(
                "nonce is required when an ID token is returned from /authorize",
            ));
        }
    }
    Ok(rt)
}

/// The response types a client with `grants` may use, as client
/// registration lists them (RFC 7591 2).
pub fn registered(grants: &[GrantType]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if grants.contains(&GrantType::AuthorizationCode) {
        out.push("code");
    }
    if grants.contains(&GrantType::Implicit) {
        out.extend(IMPLICIT);
    }
    out
}

/// Whether registered `response_types` (RFC 7591 2; absent means all that
/// `grants` allow) fit the grants: each one allowed, and `code` exactly
/// when the client has the code grant.
pub fn consistent(sent: Option<&[String]>, grants: &[GrantType]) -> bool {
    let allowed = registered(grants);
    let Some(sent) = sent else {
        return true;
    };
    sent.iter().all(|r| allowed.contains(&r.as_str()))
        && grants.contains(&GrantType::AuthorizationCode) == sent.iter().any(|r| r == "code")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{ClientInput, ClientSettings};
    use crate::oidc::authorize::{Rejection, ValidRequest, validate};

    fn client(grants: &[&str]) -> Client {
        let settings = ClientSettings::parse(&ClientInput {
            name: "Old app".into(),
            redirect_uris: vec!["https://old.example/cb".into()],
            grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        })
        .unwrap();
        Client::unsaved("old", settings)
    }

    fn params(response_type: &str) -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some(response_type.into()),
            client_id: Some("old".into()),
            redirect_uri: Some("https://old.example/cb".into()),
            scope: Some("openid".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            ..Default::default()
        }
    }

    fn error(r: Result<ResponseType, OAuthError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.error.as_str(),
        }
    }

    #[test]
    fn values_are_sets() {
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(
            ResponseType::parse("token id_token"),
            Some(ResponseType::IdTokenToken)
        );
        assert_eq!(
            ResponseType::parse("id_token  token"),
            Some(ResponseType::IdTokenToken)
        );
        assert_eq!(ResponseType::parse("code id_token"), None);
        assert_eq!(ResponseType::parse("none"), None);
        assert_eq!(ResponseType::parse(""), None);
    }

    #[test]
    fn implicit_needs_the_switch_then_the_client_grant() {
        let legacy = client(&["implicit"]);
        let modern = client(&["authorization_code"]);
        for rt in IMPLICIT {
            assert_eq!(
                error(judge(&params(rt), &legacy, false)),
                "unsupported_response_type"
            );
            assert_eq!(
                error(judge(&params(rt), &modern, true)),
                "unauthorized_client"
            );
            assert_eq!(error(judge(&params(rt), &legacy, true)), "ok", "{rt}");
        }
        // And the code flow needs its own grant.
        assert_eq!(
            error(judge(&params("code"), &legacy, true)),
            "unauthorized_client"
        );
        assert_eq!(error(judge(&params("code"), &modern, false)), "ok");
        assert_eq!(
            error(judge(&params("code token"), &modern, true)),
            "unsupported_response_type"
        );
        let mut p = params("code");
        p.response_type = None;
        assert_eq!(error(judge(&p, &modern, true)), "invalid_request");
    }

    #[test]
    fn id_tokens_need_openid_and_a_nonce() {
        let c = client(&["implicit"]);
        for rt in ["id_token", "id_token token"] {
            let mut p = params(rt);
            p.nonce = None;
            assert_eq!(error(judge(&p, &c, true)), "invalid_request");
            p.nonce = Some(String::new());
            assert_eq!(error(judge(&p, &c, true)), "invalid_request");
            let mut p = params(rt);
            p.scope = Some("profile".into());
            assert_eq!(error(judge(&p, &c, true)), "invalid_request");
        }
        // A bare access token (RFC 6749 4.2) needs neither.
        let mut p = params("token");
        p.nonce = None;
        p.scope = Some("profile".into());
        assert_eq!(error(judge(&p, &c, true)), "ok");
    }

    #[test]
    fn tokens_never_travel_in_the_query() {
        let c = client(&["implicit"]);
        let mut p = params("id_token token");
        assert_eq!(response_mode(&p, false), ResponseMode::Fragment);
        p.response_mode = Some("form_post".into());
        assert_eq!(response_mode(&p, false), ResponseMode::FormPost);
        assert_eq!(error(judge(&p, &c, true)), "ok");
        p.response_mode = Some("query".into());
        assert_eq!(error(judge(&p, &c, true)), "invalid_request");
        // ...and that refusal itself goes in the fragment.
        assert_eq!(response_mode(&p, false), ResponseMode::Fragment);
        // The code flow keeps its query default; OOB is always "query".
        let mut p = params("code");
        assert_eq!(response_mode(&p, false), ResponseMode::Query);
        p.response_mode = Some("fragment".into());
        assert_eq!(response_mode(&p, false), ResponseMode::Fragment);
        assert_eq!(response_mode(&p, true), ResponseMode::Query);
        // An unknown mode falls back to the default (the request is refused).
        p.response_mode = Some("web_message".into());
        assert_eq!(response_mode(&p, false), ResponseMode::Query);
    }

    #[test]
    fn registration_lists_what_the_grants_allow() {
        use GrantType::*;
        assert_eq!(registered(&[AuthorizationCode, RefreshToken]), ["code"]);
        assert_eq!(
            registered(&[AuthorizationCode, Implicit]),
            ["code", "id_token", "id_token token", "token"]
        );
        assert!(registered(&[ClientCredentials, Password]).is_empty());
        let v = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let code = [AuthorizationCode];
        assert!(consistent(None, &code));
        assert!(consistent(Some(&v(&["code"])), &code));
        assert!(!consistent(Some(&v(&[])), &code));
        assert!(!consistent(Some(&v(&["code", "token"])), &code));
        assert!(consistent(Some(&v(&[])), &[ClientCredentials]));
        assert!(!consistent(Some(&v(&["code"])), &[ClientCredentials]));
        // With the implicit grant (an administrator's), either list fits.
        let both = [AuthorizationCode, Implicit];
        assert!(consistent(Some(&v(&["code"])), &both));
        assert!(consistent(Some(&v(&["code", "id_token token"])), &both));
    }

    fn error_of_validate(r: Result<ValidRequest, Rejection>) -> &'static str {
        match r {
            Err(Rejection::Redirect(_, e)) => e.error.as_str(),
            Err(Rejection::Page(_)) => "page",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn implicit_requests_when_on() {
        let settings = ClientSettings::parse(&ClientInput {
            name: "Old app".into(),
            redirect_uris: vec!["https://old.example/cb".into()],
            scopes: vec!["openid profile offline_access".into()],
            grant_types: vec!["implicit".into()],
            public: true,
            ..Default::default()
        })
        .unwrap();
        let old = || Some(Client::unsaved("old", settings.clone()));
        let p = AuthorizeParams {
            response_type: Some("id_token token".into()),
            client_id: Some("old".into()),
            redirect_uri: Some("https://old.example/cb".into()),
            scope: Some("openid offline_access".into()),
            nonce: Some("n".into()),
            state: Some("s".into()),
            ..Default::default()
        };
        // Off: refused, in the fragment (as the implicit flow answers).
        match validate(&p, old(), false) {
            Err(Rejection::Redirect(to, e)) => {
                assert_eq!(e.error.as_str(), "unsupported_response_type");
                assert_eq!(to.mode, ResponseMode::Fragment);
            }
            other => panic!("{other:?}"),
        }
        // On: a public client needs no PKCE, and offline_access is dropped.
        let v = validate(&p, old(), true).unwrap();
        assert_eq!(v.response_type, ResponseType::IdTokenToken);
        assert_eq!(v.return_to.mode, ResponseMode::Fragment);
        assert_eq!(v.scope.to_string(), "openid");
        assert_eq!(v.code_challenge, None);
        let only_offline = AuthorizeParams {
            response_type: Some("token".into()),
            scope: Some("offline_access".into()),
            ..p
        };
        assert_eq!(
            error_of_validate(validate(&only_offline, old(), true)),
            "invalid_scope"
        );
    }
}
