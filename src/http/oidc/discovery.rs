//! OIDC Discovery 1.0 and RFC 8414 metadata: what is implemented, no more.
//! Built once at start; served as bytes.

use actix_web::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;
use crate::config::Config;

pub fn document(config: &Config) -> Bytes {
    let iss = &config.issuer;
    let algs: Vec<&str> = config.keys.algorithms.iter().map(|a| a.as_str()).collect();
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "registration_endpoint": format!("{iss}/register"),
        "scopes_supported": ["openid", "profile", "email", "offline_access", "groups"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
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
            "updated_at", "email", "email_verified", "groups"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    Bytes::from(doc.to_string())
}

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.discovery.clone())
}
