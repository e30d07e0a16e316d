//! A command-line tool that signs in through Latchkey with the device
//! authorization grant (RFC 8628), as a CLI on a machine without a browser
//! would: it asks for a code, tells you where to enter it (on any device
//! with a browser), polls until you allow it, then greets you by the name
//! userinfo gives. Everything goes through the `openidconnect` crate.
//!
//! ```sh
//! # once: a public client allowed the device grant
//! latchkey client add --name "Device login example" --public \
//!   --grant-type urn:ietf:params:oauth:grant-type:device_code \
//!   --scope openid --scope profile --json
//! # then, with the client_id it printed
//! DEVICE_CLIENT_ID=… cargo run --example device_login
//! ```
//!
//! Settings (environment):
//! - `LATCHKEY_ISSUER`: the issuer URL, as in Latchkey's `issuer` setting
//!   (default `http://127.0.0.1:8080`).
//! - `DEVICE_CLIENT_ID`: the client's id (required).
//! - `DEVICE_CLIENT_SECRET`: its secret, for a confidential client.

use std::env;
use std::error::Error;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl,
    OAuth2TokenResponse, ProviderMetadata, Scope, reqwest,
};
use serde::{Deserialize, Serialize};

/// The discovery member this example needs beyond OpenID Connect's own.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}

impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let issuer = env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client_id = env::var("DEVICE_CLIENT_ID").map_err(
        |_| "set DEVICE_CLIENT_ID to the client_id of a client allowed the device grant",
    )?;
    let secret = env::var("DEVICE_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(ClientSecret::new);

    // Following redirects would let a server send our requests elsewhere.
    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let metadata = Metadata::discover_async(IssuerUrl::new(issuer)?, &http).await?;
    let device_endpoint = metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id), secret)
        .set_device_authorization_url(device_endpoint);

    // 1. Ask for a code (the crate adds `openid`).
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await?;
    println!(
        "To sign in, open {} in a browser and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    );
    if let Some(link) = details.verification_uri_complete() {
        println!("(or open {} and confirm the code)", link.secret());
    }
    println!(
        "Waiting for you to allow access (the code expires in {} minutes)...",
        details.expires_in().as_secs().div_ceil(60)
    );

    // 2. Poll at the interval Latchkey asked for, slowing down if told to.
    let tokens = client
        .exchange_device_access_token(&details)?
        .request_async(&http, tokio::time::sleep, None)
        .await?;

    // 3. Who signed in.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)?
        .request_async(&http)
        .await?;
    let name = info
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| info.preferred_username().map(|u| u.to_string()))
        .unwrap_or_else(|| info.subject().to_string());
    println!("Signed in as {name}.");
    Ok(())
}
