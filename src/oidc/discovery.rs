//! OIDC Discovery 1.0 and RFC 8414 metadata: what is implemented, no more.
//! Built once at start (`state`), served as bytes by `http`.

use serde_json::json;

/// The legacy grants turned on (`[legacy]`): discovery lists them only
/// then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Legacy {
    pub implicit: bool,
    pub password_grant: bool,
}

/// The metadata document for `issuer`, signing ID tokens with
/// `signing_algs`.
pub fn document(issuer: &str, signing_algs: &[&str], legacy: Legacy) -> Vec<u8> {
    let iss = issuer;
    let algs = signing_algs;
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let mut doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "registration_endpoint": format!("{iss}/register"),
        "end_session_endpoint": format!("{iss}/logout/end"),
        "device_authorization_endpoint": format!("{iss}{}", super::device::AUTHORIZATION_PATH),
        "scopes_supported": ["openid", "profile", "email", "offline_access", "groups"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
            "name", "given_name", "family_name", "preferred_username", "picture", "locale",
            "updated_at", "email", "email_verified", "groups", "amr", "acr"
        ],
        "acr_values_supported": crate::domain::mfa::ACR_VALUES,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        // Front-channel logout needs third-party cookies, which browsers block.
        "frontchannel_logout_supported": false,
    });
    let mut push = |member: &str, values: &[&str]| {
        if let Some(list) = doc.get_mut(member).and_then(|v| v.as_array_mut()) {
            list.extend(values.iter().map(|v| json!(v)));
        }
    };
    if legacy.implicit {
        push("response_types_supported", &super::response_type::IMPLICIT);
        push("grant_types_supported", &["implicit"]);
    }
    if legacy.password_grant {
        push("grant_types_supported", &["password"]);
    }
    doc.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(legacy: Legacy) -> (Vec<String>, Vec<String>) {
        let doc: serde_json::Value =
            serde_json::from_slice(&document("https://id.example", &["RS256"], legacy)).unwrap();
        let list = |m: &str| -> Vec<String> {
            doc[m]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        (
            list("response_types_supported"),
            list("grant_types_supported"),
        )
    }

    #[test]
    fn legacy_grants_are_listed_only_when_on() {
        let (responses, grants) = members(Legacy::default());
        assert_eq!(responses, ["code"]);
        assert!(!grants.iter().any(|g| g == "implicit" || g == "password"));
        let (responses, grants) = members(Legacy {
            implicit: true,
            password_grant: false,
        });
        assert_eq!(responses, ["code", "id_token", "id_token token", "token"]);
        assert!(grants.iter().any(|g| g == "implicit"));
        assert!(!grants.iter().any(|g| g == "password"));
        let (responses, grants) = members(Legacy {
            implicit: false,
            password_grant: true,
        });
        assert_eq!(responses, ["code"]);
        assert!(grants.iter().any(|g| g == "password"));
        assert!(!grants.iter().any(|g| g == "implicit"));
    }
}
