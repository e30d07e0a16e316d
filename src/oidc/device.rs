//! The device authorization grant's protocol rules (RFC 8628): what the
//! device authorization request may ask for (3.1), the response (3.2), and
//! where people confirm the code.

use serde::{Deserialize, Serialize};

use super::OAuthError;
use super::authorize::{requested_resource, requested_scope};
use crate::domain::client::{Client, GrantType};
use crate::domain::device::UserCode;
use crate::domain::scope::ScopeSet;

/// The device authorization endpoint, below the issuer.
pub const AUTHORIZATION_PATH: &str = "/device/authorize";
/// Where people enter and confirm a user code (`verification_uri`).
pub const VERIFICATION_PATH: &str = "/device";

/// Longest value accepted for any request parameter.
pub const PARAM_MAX: usize = 2048;

/// The request parameters (RFC 8628 3.1), from a form body, with the
/// client's credentials when sent in the body (RFC 6749 2.3.1). `Debug`
/// redacts the secret.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct DeviceAuthorizationRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    /// RFC 8707 resource indicator.
    pub resource: Option<String>,
}

impl std::fmt::Debug for DeviceAuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationRequest")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish()
    }
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrantRequest {
    pub scope: ScopeSet,
    pub resource: Option<String>,
}

/// Checks the request of an authenticated client: it must be allowed the
/// device grant (`unauthorized_client`), ask for scopes within its allowed
/// ones (`invalid_scope`), and for a registered resource if any
/// (`invalid_target`), exactly as `/authorize` judges them.
pub fn validate(
    client: &Client,
    req: &DeviceAuthorizationRequest,
) -> Result<DeviceGrantRequest, OAuthError> {
    let too_long = [
        &req.client_id,
        &req.client_secret,
        &req.scope,
        &req.resource,
    ]
    .iter()
    .any(|v| v.as_ref().is_some_and(|v| v.len() > PARAM_MAX));
    if too_long {
        return Err(OAuthError::invalid_request("a parameter is too long"));
    }
    if !client.settings.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    Ok(DeviceGrantRequest {
        scope: requested_scope(req.scope.as_deref(), client)?,
        resource: requested_resource(req.resource.as_deref(), client)?,
    })
}

/// The device authorization response (RFC 8628 3.2). `Debug` redacts the
/// device code.
#[derive(Serialize, PartialEq, Eq)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DeviceAuthorizationResponse {
    /// The response for a new request: the code shown as `XXXX-XXXX`, and
    /// the verification URI with and without it (3.3.1).
    pub fn new(
        issuer: &str,
        device_code: String,
        user_code: &UserCode,
        expires_in: i64,
        interval: i64,
    ) -> Self {
        let shown = user_code.display();
        Self {
            device_code,
            verification_uri: format!("{issuer}{VERIFICATION_PATH}"),
            // The code is letters and one dash: nothing to escape.
            verification_uri_complete: format!("{issuer}{VERIFICATION_PATH}?user_code={shown}"),
            user_code: shown,
            expires_in,
            interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{ClientInput, ClientSettings};
    use crate::oidc::ErrorCode;

    fn client(grants: &[&str]) -> Client {
        let settings = ClientSettings::parse(&ClientInput {
            name: "TV".into(),
            scopes: vec!["openid profile offline_access".into()],
            grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
            audiences: vec!["https://api.example".into()],
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            public: true,
            ..Default::default()
        })
        .unwrap();
        Client::unsaved("tv", settings)
    }

    fn req(scope: Option<&str>) -> DeviceAuthorizationRequest {
        DeviceAuthorizationRequest {
            client_id: Some("tv".into()),
            scope: scope.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn a_device_client_gets_what_it_may_ask() {
        let c = client(&["urn:ietf:params:oauth:grant-type:device_code"]);
        let ok = validate(&c, &req(Some("openid offline_access"))).unwrap();
        assert_eq!(ok.scope.to_string(), "offline_access openid");
        let with_resource = DeviceAuthorizationRequest {
            resource: Some("https://api.example".into()),
            ..req(Some("openid"))
        };
        assert_eq!(
            validate(&c, &with_resource).unwrap().resource.as_deref(),
            Some("https://api.example")
        );
    }

    #[test]
    fn refusals_have_the_spec_codes() {
        let code_only = client(&["authorization_code"]);
        assert_eq!(
            validate(&code_only, &req(Some("openid")))
                .unwrap_err()
                .error,
            ErrorCode::UnauthorizedClient
        );
        let c = client(&["urn:ietf:params:oauth:grant-type:device_code"]);
        for scope in [None, Some(""), Some("openid email")] {
            assert_eq!(
                validate(&c, &req(scope)).unwrap_err().error,
                ErrorCode::InvalidScope,
                "{scope:?}"
            );
        }
        let elsewhere = DeviceAuthorizationRequest {
            resource: Some("https://other.example".into()),
            ..req(Some("openid"))
        };
        assert_eq!(
            validate(&c, &elsewhere).unwrap_err().error,
            ErrorCode::InvalidTarget
        );
        let long = req(Some(&"a".repeat(PARAM_MAX + 1)));
        assert_eq!(
            validate(&c, &long).unwrap_err().error,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_response_shows_the_code_and_hides_the_device_code() {
        let code = UserCode::parse("BCDFGHJK").unwrap();
        let r = DeviceAuthorizationResponse::new(
            "https://id.example",
            "secret-device-code".into(),
            &code,
            600,
            5,
        );
        assert_eq!(r.user_code, "BCDF-GHJK");
        assert_eq!(r.verification_uri, "https://id.example/device");
        assert_eq!(
            r.verification_uri_complete,
            "https://id.example/device?user_code=BCDF-GHJK"
        );
        assert!(!format!("{r:?}").contains("secret-device-code"));
    }
}
