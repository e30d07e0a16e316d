//! OpenID Connect RP-Initiated Logout 1.0 rules in plain Rust: the
//! request parameters (each at most once), what an `id_token_hint` must
//! say to be one of our ID tokens, the exact match of a
//! `post_logout_redirect_uri`, and the redirect back with `state`.
//! Signature checks and lookups are `service::end_session`'s.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::OAuthError;
use crate::domain::client::Client;

/// Longest value accepted for a parameter other than the hint.
pub const PARAM_MAX: usize = 2048;
/// Longest `id_token_hint` accepted (ID tokens with many claims and an
/// RSA-4096 signature stay well below it).
pub const HINT_MAX: usize = 8192;

/// The parameters of section 2, as received (query or form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// Accepted and ignored: every page is in English.
    pub ui_locales: Option<String>,
    /// Accepted and ignored: the hint and the session say who signs out.
    pub logout_hint: Option<String>,
}

/// The names this endpoint reads.
pub const PARAM_NAMES: [&str; 6] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
    "logout_hint",
];

/// The values of `names` among `pairs`, refusing any of them given more
/// than once (RFC 6749 3.1: parameters must not be repeated). Names not
/// asked for are left alone; empty values read as absent (RFC 6749 3.1).
pub fn single_values<'a>(
    pairs: &'a [(String, String)],
    names: &[&str],
) -> Result<HashMap<&'a str, &'a str>, OAuthError> {
    let mut seen: HashMap<&'a str, &'a str> = HashMap::new();
    let mut given: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if !names.contains(&k.as_str()) {
            continue;
        }
        if given.contains(&k.as_str()) {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {k} is given more than once"
            )));
        }
        given.push(k);
        if !v.is_empty() {
            seen.insert(k, v);
        }
    }
    Ok(seen)
}

impl EndSessionParams {
    /// The parameters from `(name, value)` pairs; unknown names are
    /// ignored, a repeated one is `invalid_request`, and so is an over-long
    /// value.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, OAuthError> {
        let values = single_values(pairs, &PARAM_NAMES)?;
        for (k, v) in &values {
            let max = if *k == "id_token_hint" {
                HINT_MAX
            } else {
                PARAM_MAX
            };
            if v.len() > max {
                return Err(OAuthError::invalid_request(format!("{k} is too long")));
            }
        }
        let get = |k: &str| values.get(k).map(|v| (*v).to_owned());
        Ok(Self {
            id_token_hint: get("id_token_hint"),
            client_id: get("client_id"),
            post_logout_redirect_uri: get("post_logout_redirect_uri"),
            state: get("state"),
            ui_locales: get("ui_locales"),
            logout_hint: get("logout_hint"),
        })
    }

    /// The parameters a confirmation form carries forward (hidden fields;
    /// validated again when the form comes back).
    pub fn carried(&self) -> Vec<(&'static str, String)> {
        [
            ("id_token_hint", &self.id_token_hint),
            ("client_id", &self.client_id),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintClaims {
    pub sub: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The session it was issued in, if it says.
    pub sid: Option<String>,
}

fn not_ours() -> OAuthError {
    OAuthError::invalid_request("the id_token_hint is not an ID token issued by this server")
}

/// Checks the claims of a hint whose signature verified with one of our
/// keys: issued by `issuer`, an ID token (no `typ`, or `JWT`: never an
/// access token `at+jwt` nor a logout token), with `sub` and an `aud`
/// naming one client. `exp` is not checked: an expired hint is still a
/// hint (section 2), and our key set bounds how old it can be.
pub fn check_hint_claims(
    typ: Option<&str>,
    claims: &Map<String, Value>,
    issuer: &str,
) -> Result<HintClaims, OAuthError> {
    if typ.is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
        return Err(not_ours());
    }
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(issuer) || claims.contains_key("events") {
        return Err(not_ours());
    }
    let sub = s("sub").filter(|v| !v.is_empty()).ok_or_else(not_ours)?;
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(v)) => v.iter().filter_map(Value::as_str).collect(),
        _ => return Err(not_ours()),
    };
    // OIDC Core 2: with several audiences, `azp` names the client.
    let client_id = match (aud.as_slice(), s("azp")) {
        (_, Some(azp)) if aud.contains(&azp) => azp,
        ([one], None) => *one,
        _ => return Err(not_ours()),
    };
    Ok(HintClaims {
        sub: sub.to_owned(),
        client_id: client_id.to_owned(),
        sid: s("sid").map(str::to_owned),
    })
}

/// The client a request names: the hint's audience, which a `client_id`
/// sent as well must match (section 2).
pub fn requested_client<'a>(
    hint: Option<&'a HintClaims>,
    client_id: Option<&'a str>,
) -> Result<Option<&'a str>, OAuthError> {
    match (hint, client_id) {
        (Some(h), Some(c)) if h.client_id != c => Err(OAuthError::invalid_request(
            "client_id does not match the app the id_token_hint was issued to",
        )),
        (Some(h), _) => Ok(Some(&h.client_id)),
        (None, c) => Ok(c),
    }
}

/// Where to send the browser after sign-out (or after declining it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostLogoutRedirect {
    pub uri: String,
    pub state: Option<String>,
}

impl PostLogoutRedirect {
    /// The URI with `state` added to its query (section 3).
    pub fn location(&self) -> String {
        let Some(state) = &self.state else {
            return self.uri.clone();
        };
        match url::Url::parse(&self.uri) {
            Ok(mut u) => {
                u.query_pairs_mut().append_pair("state", state);
                u.to_string()
            }
            // Registered URIs are absolute URLs; this cannot happen.
            Err(_) => self.uri.clone(),
        }
    }
}

/// The redirect a request may use: none when it asks for none; an error
/// when it names a URI but no client, or a URI not registered for the
/// client exactly (simple string comparison, section 3.1 of RFC 3986 is not
/// applied: "exactly match" in section 2).
pub fn post_logout_redirect(
    client: Option<&Client>,
    params: &EndSessionParams,
) -> Result<Option<PostLogoutRedirect>, OAuthError> {
    let Some(uri) = params.post_logout_redirect_uri.as_deref() else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err(OAuthError::invalid_request(
            "post_logout_redirect_uri needs an id_token_hint or a client_id naming the app",
        ));
    };
    if !client
        .settings
        .post_logout_redirect_uris
        .iter()
        .any(|r| r == uri)
    {
        return Err(OAuthError::invalid_request(
            "post_logout_redirect_uri is not registered for this app",
        ));
    }
    Ok(Some(PostLogoutRedirect {
        uri: uri.to_owned(),
        state: params.state.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{ClientInput, ClientSettings};
    use serde_json::json;

    const ISS: &str = "https://id.example";

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn client(uris: &[&str]) -> Client {
        let settings = ClientSettings::parse(&ClientInput {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            post_logout_redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            ..Default::default()
        })
        .unwrap();
        Client::unsaved("wiki", settings)
    }

    #[test]
    fn parameters_once_each() {
        let p = EndSessionParams::from_pairs(&pairs(&[
            ("client_id", "wiki"),
            ("state", "s"),
            ("ui_locales", "fr en"),
            ("unknown", "1"),
            ("unknown", "2"),
            ("logout_hint", ""),
        ]))
        .unwrap();
        assert_eq!(p.client_id.as_deref(), Some("wiki"));
        assert_eq!(p.state.as_deref(), Some("s"));
        assert_eq!(p.logout_hint, None, "empty is absent");
        for name in PARAM_NAMES {
            let e = EndSessionParams::from_pairs(&pairs(&[(name, "a"), (name, "a")])).unwrap_err();
            assert_eq!(e.error.as_str(), "invalid_request");
            assert!(e.error_description.contains(name));
        }
        let e = EndSessionParams::from_pairs(&pairs(&[("state", ""), ("state", "x")]));
        assert!(e.is_err(), "an empty copy is still a copy");
        let long = "x".repeat(PARAM_MAX + 1);
        assert!(EndSessionParams::from_pairs(&pairs(&[("state", &long)])).is_err());
        assert!(EndSessionParams::from_pairs(&pairs(&[("id_token_hint", &long)])).is_ok());
    }

    #[test]
    fn carried_fields_are_the_ones_that_matter() {
        let p = EndSessionParams {
            id_token_hint: Some("h".into()),
            state: Some("s".into()),
            ui_locales: Some("de".into()),
            ..Default::default()
        };
        assert_eq!(
            p.carried(),
            vec![("id_token_hint", "h".into()), ("state", "s".into())]
        );
    }

    #[test]
    fn hint_claims() {
        let ok = claims(
            json!({"iss": ISS, "sub": "u1", "aud": "wiki", "azp": "wiki",
            "exp": 1, "sid": "s1"}),
        );
        let h = check_hint_claims(Some("JWT"), &ok, ISS).unwrap();
        assert_eq!(
            h,
            HintClaims {
                sub: "u1".into(),
                client_id: "wiki".into(),
                sid: Some("s1".into())
            }
        );
        assert!(check_hint_claims(None, &ok, ISS).is_ok(), "typ is optional");
        assert!(check_hint_claims(Some("jwt"), &ok, ISS).is_ok());
        for typ in ["at+jwt", "application/at+jwt", "logout+jwt"] {
            assert!(check_hint_claims(Some(typ), &ok, ISS).is_err(), "{typ}");
        }
        assert!(check_hint_claims(None, &ok, "https://other.example").is_err());
        let mut logout = ok.clone();
        logout.insert("events".into(), json!({}));
        assert!(check_hint_claims(None, &logout, ISS).is_err());
        let no_sub = claims(json!({"iss": ISS, "aud": "wiki"}));
        assert!(check_hint_claims(None, &no_sub, ISS).is_err());
        let no_aud = claims(json!({"iss": ISS, "sub": "u"}));
        assert!(check_hint_claims(None, &no_aud, ISS).is_err());
        let many = claims(json!({"iss": ISS, "sub": "u", "aud": ["a", "b"]}));
        assert!(check_hint_claims(None, &many, ISS).is_err());
        let many_azp = claims(json!({"iss": ISS, "sub": "u", "aud": ["a", "b"], "azp": "b"}));
        assert_eq!(
            check_hint_claims(None, &many_azp, ISS).unwrap().client_id,
            "b"
        );
        let foreign_azp = claims(json!({"iss": ISS, "sub": "u", "aud": "a", "azp": "b"}));
        assert!(check_hint_claims(None, &foreign_azp, ISS).is_err());
    }

    #[test]
    fn client_id_must_match_the_hint() {
        let h = HintClaims {
            sub: "u".into(),
            client_id: "wiki".into(),
            sid: None,
        };
        assert_eq!(requested_client(Some(&h), None).unwrap(), Some("wiki"));
        assert_eq!(
            requested_client(Some(&h), Some("wiki")).unwrap(),
            Some("wiki")
        );
        assert!(requested_client(Some(&h), Some("mail")).is_err());
        assert_eq!(requested_client(None, Some("mail")).unwrap(), Some("mail"));
        assert_eq!(requested_client(None, None).unwrap(), None);
    }

    #[test]
    fn redirect_only_to_an_exactly_registered_uri() {
        let c = client(&["https://wiki.example/bye", "https://wiki.example/out?x=1"]);
        let with = |uri: &str, state: Option<&str>| EndSessionParams {
            post_logout_redirect_uri: Some(uri.into()),
            state: state.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(
            post_logout_redirect(Some(&c), &EndSessionParams::default()).unwrap(),
            None
        );
        let r = post_logout_redirect(Some(&c), &with("https://wiki.example/bye", Some("a b")))
            .unwrap()
            .unwrap();
        assert_eq!(r.location(), "https://wiki.example/bye?state=a+b");
        let r = post_logout_redirect(Some(&c), &with("https://wiki.example/out?x=1", Some("s")))
            .unwrap()
            .unwrap();
        assert_eq!(r.location(), "https://wiki.example/out?x=1&state=s");
        let r = post_logout_redirect(Some(&c), &with("https://wiki.example/bye", None))
            .unwrap()
            .unwrap();
        assert_eq!(r.location(), "https://wiki.example/bye");
        for near in [
            "https://wiki.example/bye/",
            "https://WIKI.example/bye",
            "https://wiki.example/bye?x",
            "https://wiki.example:443/bye",
            "https://evil.example/bye",
        ] {
            assert!(
                post_logout_redirect(Some(&c), &with(near, None)).is_err(),
                "{near}"
            );
        }
        assert!(post_logout_redirect(None, &with("https://wiki.example/bye", None)).is_err());
    }
}
