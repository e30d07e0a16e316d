//! Token request parsing: the body as a form (strict parser) and as JSON,
//! the parameter bounds, and the grant check against fixed clients.

#![no_main]

use std::sync::OnceLock;

use latchkey::domain::client::Client;
use latchkey::http::form;
use latchkey::oidc::OAuthError;
use latchkey::service::token::{PARAM_MAX, TokenRequest, check_grant};
use latchkey_fuzz::{confidential_client, public_client};
use libfuzzer_sys::fuzz_target;

fn clients() -> &'static [Client; 2] {
    static CLIENTS: OnceLock<[Client; 2]> = OnceLock::new();
    CLIENTS.get_or_init(|| [public_client(), confidential_client()])
}

fn check(req: &TokenRequest) {
    let bounded: Result<(), OAuthError> = req.check_bounds();
    let longest = [
        &req.grant_type,
        &req.code,
        &req.redirect_uri,
        &req.code_verifier,
        &req.refresh_token,
        &req.scope,
        &req.client_id,
        &req.client_secret,
        &req.resource,
        &req.device_code,
        &req.username,
        &req.password,
        &req.subject_token,
        &req.subject_token_type,
        &req.actor_token,
        &req.actor_token_type,
        &req.requested_token_type,
        &req.audience,
    ]
    .iter()
    .filter_map(|f| f.as_ref().map(String::len))
    .max()
    .unwrap_or(0);
    assert_eq!(bounded.is_ok(), longest <= PARAM_MAX);
    for client in clients() {
        if let Ok(grant) = check_grant(client, req, true) {
            assert!(client.settings.grant_types.contains(&grant));
            assert_eq!(req.grant_type.as_deref(), Some(grant.as_str()));
        }
    }
    // Debug must never show a secret: it cannot depend on their values.
    let mut blanked = req.clone();
    for secret in [
        &mut blanked.code,
        &mut blanked.code_verifier,
        &mut blanked.refresh_token,
        &mut blanked.client_secret,
        &mut blanked.device_code,
        &mut blanked.username,
        &mut blanked.password,
        &mut blanked.subject_token,
        &mut blanked.actor_token,
    ] {
        if let Some(s) = secret {
            *s = String::new();
        }
    }
    assert_eq!(
        format!("{req:?}"),
        format!("{blanked:?}"),
        "Debug shows a secret"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    if let Ok(req) = form::parse::<TokenRequest>(data) {
        check(&req);
    }
    if let Ok(req) = serde_json::from_slice::<TokenRequest>(data) {
        check(&req);
    }
});
