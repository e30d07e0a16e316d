//! Fixtures shared by the fuzz targets: realistic clients built through
//! the same validation the admin API and the config loader use.

use latchkey::domain::client::{Client, ClientInput, ClientSettings, TokenAuthMethod};

pub const ISSUER: &str = "https://id.example";
pub const AUDIENCE: &str = "https://api.example";

fn client(client_id: &str, input: ClientInput) -> Client {
    let settings = match ClientSettings::parse(&input) {
        Ok(s) => s,
        Err(e) => panic!("fixture client {client_id} is invalid: {e:?}"),
    };
    let token_endpoint_auth_method = TokenAuthMethod::default_for(settings.kind);
    Client {
        client_id: client_id.into(),
        secret_hash: None,
        settings,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
        locked: false,
        registration_token_hash: None,
        secret_changed_at: None,
        token_endpoint_auth_method,
    }
}

/// A native app: public, PKCE required, loopback + private-use scheme +
/// out-of-band redirect URIs, one resource.
pub fn public_client() -> Client {
    client(
        "native",
        ClientInput {
            name: "Native app".into(),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://127.0.0.1/cb".into(),
                "http://[::1]:8000/cb".into(),
                "com.example.app:/cb".into(),
                "urn:ietf:wg:oauth:2.0:oob".into(),
            ],
            scopes: vec!["openid profile email offline_access".into()],
            public: true,
            audiences: vec![AUDIENCE.into()],
            ..Default::default()
        },
    )
}

/// A web app: confidential, every grant it may have, a redirect URI
/// with a query, two resources.
pub fn confidential_client() -> Client {
    client(
        "webapp",
        ClientInput {
            name: "Web app".into(),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "https://app.example/cb?tenant=1".into(),
            ],
            scopes: vec!["openid profile email offline_access read:notes".into()],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
            ],
            audiences: vec![AUDIENCE.into(), "https://other.example/".into()],
            ..Default::default()
        },
    )
}
