//! Authorization request validation: the bytes are the request's query or
//! form (parsed by the strict form parser), the first byte picks the
//! client. Valid requests and redirected errors go through the same
//! response builders as in the server.

#![no_main]

use std::sync::OnceLock;

use latchkey::domain::client::{Client, ClientKind};
use latchkey::http::form;
use latchkey::oidc::authorize::{
    AuthorizeParams, Rejection, ResponseMode, redirect_uri_matches, redirect_url, result_params,
    validate,
};
use latchkey_fuzz::{ISSUER, confidential_client, public_client};
use libfuzzer_sys::fuzz_target;

fn clients() -> &'static [Client; 2] {
    static CLIENTS: OnceLock<[Client; 2]> = OnceLock::new();
    CLIENTS.get_or_init(|| [public_client(), confidential_client()])
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let Ok(params) = form::parse::<AuthorizeParams>(query) else {
        return;
    };
    let client = match selector % 3 {
        0 => None,
        n => Some(clients()[usize::from(n - 1)].clone()),
    };
    let known = client.clone();
    match validate(&params, client, false) {
        Ok(valid) => {
            let Some(client) = known else {
                panic!("a request for an unknown client was accepted");
            };
            // What was accepted must be what the client registered.
            assert!(redirect_uri_matches(&client, &valid.return_to.redirect_uri));
            assert!(valid.scope.is_subset(&client.settings.allowed_scopes));
            assert!(!valid.scope.is_empty());
            if client.settings.kind == ClientKind::Public {
                assert!(valid.code_challenge.is_some(), "public client without PKCE");
            }
            if let Some(r) = &valid.resource {
                assert!(client.settings.audiences.contains(r));
            }
            assert!(!(valid.prompt.none && (valid.prompt.login || valid.prompt.consent)));
            if valid.is_oob() {
                assert_eq!(valid.return_to.mode, ResponseMode::Query);
            }
            let code = [("code", "SplxlOBeZQQYbYS6WxSbIA")];
            let url = redirect_url(&valid.return_to, ISSUER, &code);
            assert!(url.starts_with(&valid.return_to.redirect_uri));
            let all = result_params(&valid.return_to, ISSUER, &code);
            assert_eq!(all.last().map(|(k, _)| k.as_str()), Some("iss"));
        }
        Err(Rejection::Redirect(to, error)) => {
            // Errors are only ever sent to a registered redirect URI.
            let Some(client) = known else {
                panic!("an error for an unknown client was redirected");
            };
            assert!(redirect_uri_matches(&client, &to.redirect_uri));
            let pairs = [
                ("error", error.error.as_str()),
                ("error_description", error.error_description.as_str()),
            ];
            let url = redirect_url(&to, ISSUER, &pairs);
            assert!(url.starts_with(&to.redirect_uri));
            let _ = result_params(&to, ISSUER, &pairs);
        }
        Err(Rejection::Page(message)) => assert!(!message.is_empty()),
    }
});
