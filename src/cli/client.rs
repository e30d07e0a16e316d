//! `latchkey client …`

use clap::{Args, Subcommand};

use super::{CliResult, open_db, output};
use crate::config::Config;
use crate::domain::client::ClientInput;
use crate::service::clients::{self, ClientChanges, ClientView, IssuedClient};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Add(AddArgs),
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client (never its secret).
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a client. List options replace the whole list.
    Update(UpdateArgs),
    /// Delete a client.
    Delete { client_id: String },
    /// Issue a new secret (printed once); the old one stops working.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Display name shown on the consent page.
    #[arg(long)]
    name: String,
    /// Use this client_id instead of a generated one.
    #[arg(long)]
    client_id: Option<String>,
    /// Allowed redirect URI (exact match); repeat for several.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI; repeat for several.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// Allowed scope; repeat or space-separate (default: openid profile email).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Allowed grant type; repeat for several (default: authorization_code refresh_token).
    /// Also client_credentials (confidential clients) and
    /// urn:ietf:params:oauth:grant-type:device_code (devices and CLIs without
    /// a browser; no redirect URI needed) and
    /// urn:ietf:params:oauth:grant-type:token-exchange (a confidential service
    /// trading a user's access token for one to call its --audience values).
    /// Legacy, discouraged (RFC 9700), usable only while turned on in
    /// [legacy]: implicit (needs a redirect URI) and password (confidential
    /// clients).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// A public client (native or browser app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    /// A first-party app: users are not asked for consent.
    #[arg(long)]
    first_party: bool,
    /// Issue its tokens only after a sign-in with a second factor (users
    /// without one get unmet_authentication_requirements).
    #[arg(long)]
    require_mfa: bool,
    /// Audience (RFC 8707 resource) its access tokens may be for; repeat for
    /// several. The first is the default `aud`.
    #[arg(long = "audience", value_name = "URI")]
    audiences: Vec<String>,
    /// Algorithm for its ID tokens (RS256, PS256, ES256, EdDSA); must be in keys.algorithms.
    #[arg(long, value_name = "ALG")]
    id_token_alg: Option<String>,
    /// An audience this client serves as a resource server: it may then
    /// introspect access tokens issued for it. Repeat for several.
    #[arg(long = "resource-audience", value_name = "URI")]
    resource_audiences: Vec<String>,
    /// Back-Channel Logout: where logout tokens are POSTed when a user's
    /// session ends (https, or http on a loopback host).
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// The client requires `sid` in logout tokens (always sent anyway).
    #[arg(long)]
    backchannel_logout_session_required: bool,
    /// Print {"client_id": …, "client_secret": …, …} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    client_id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Option<Vec<String>>,
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Option<Vec<String>>,
    /// Replaces the allowed grant types (as for `client add`).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Option<Vec<String>>,
    /// true or false.
    #[arg(long, value_name = "BOOL")]
    first_party: Option<bool>,
    /// true or false: tokens only after a sign-in with a second factor.
    #[arg(long, value_name = "BOOL")]
    require_mfa: Option<bool>,
    #[arg(long = "audience", value_name = "URI")]
    audiences: Option<Vec<String>>,
    /// ID token algorithm, or `default` for the server's.
    #[arg(long, value_name = "ALG")]
    id_token_alg: Option<String>,
    /// Replaces the audiences it serves as a resource server.
    #[arg(long = "resource-audience", value_name = "URI")]
    resource_audiences: Option<Vec<String>>,
    /// Back-channel logout URI, or `none` to remove it.
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// true or false.
    #[arg(long, value_name = "BOOL")]
    backchannel_logout_session_required: Option<bool>,
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, cmd: &ClientCommand) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        ClientCommand::Add(a) => {
            let input = ClientInput {
                name: a.name.clone(),
                redirect_uris: a.redirect_uris.clone(),
                post_logout_redirect_uris: a.post_logout_redirect_uris.clone(),
                scopes: a.scopes.clone(),
                grant_types: a.grant_types.clone(),
                public: a.public,
                first_party: a.first_party,
                audiences: a.audiences.clone(),
                id_token_alg: a.id_token_alg.clone(),
                resource_audiences: a.resource_audiences.clone(),
                backchannel_logout_uri: a.backchannel_logout_uri.clone(),
                backchannel_logout_session_required: a.backchannel_logout_session_required,
                require_mfa: a.require_mfa,
            };
            let issued = clients::create(
                &mut conn,
                a.client_id.as_deref(),
                &input,
                &config.keys.algorithms,
                now,
            )?;
            print_issued(&issued, a.json)
        }
        ClientCommand::List { json } => {
            let list = clients::list(&mut conn)?;
            if *json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.clone(),
                        c.name.clone(),
                        c.client_type.to_owned(),
                        c.grant_types.join(","),
                        c.redirect_uris.join(" "),
                    ]
                })
                .collect();
            output::table(
                &["CLIENT_ID", "NAME", "TYPE", "GRANTS", "REDIRECT_URIS"],
                &rows,
            )
        }
        ClientCommand::Show { client_id, json } => {
            let view = clients::find(&mut conn, client_id)?.view();
            if *json {
                output::json(&view)
            } else {
                print_client(&view)
            }
        }
        ClientCommand::Update(u) => {
            let changes = ClientChanges {
                name: u.name.clone(),
                redirect_uris: u.redirect_uris.clone(),
                post_logout_redirect_uris: u.post_logout_redirect_uris.clone(),
                scopes: u.scopes.clone(),
                grant_types: u.grant_types.clone(),
                first_party: u.first_party,
                require_mfa: u.require_mfa,
                audiences: u.audiences.clone(),
                id_token_alg: u
                    .id_token_alg
                    .clone()
                    .map(|a| if a == "default" { None } else { Some(a) }),
                resource_audiences: u.resource_audiences.clone(),
                backchannel_logout_uri: u
                    .backchannel_logout_uri
                    .clone()
                    .map(|a| if a == "none" { None } else { Some(a) }),
                backchannel_logout_session_required: u.backchannel_logout_session_required,
            };
            let view = clients::update(
                &mut conn,
                &u.client_id,
                changes,
                &config.keys.algorithms,
                now,
            )?;
            if u.json {
                output::json(&view)
            } else {
                print_client(&view)
            }
        }
        ClientCommand::Delete { client_id } => {
            clients::delete(&mut conn, client_id)?;
            output::line(&format!("deleted client {client_id}"))
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let issued = clients::rotate_secret(&mut conn, client_id, now)?;
            print_issued(&issued, *json)
        }
    }
}

fn print_issued(issued: &IssuedClient, json: bool) -> CliResult {
    if json {
        return output::json(issued);
    }
    print_client(&issued.client)?;
    if let Some(secret) = &issued.client_secret {
        output::fields(&[("client_secret", secret.clone())])?;
        output::line("\nStore the secret now: it is shown only this once.")?;
    }
    Ok(())
}

fn print_client(c: &ClientView) -> CliResult {
    output::fields(&[
        ("client_id", c.client_id.clone()),
        ("name", c.name.clone()),
        ("type", c.client_type.to_owned()),
        ("redirect_uris", c.redirect_uris.join(" ")),
        (
            "post_logout_redirect_uris",
            c.post_logout_redirect_uris.join(" "),
        ),
        ("scopes", c.scopes.join(" ")),
        ("grant_types", c.grant_types.join(" ")),
        ("first_party", c.first_party.to_string()),
        ("require_mfa", c.require_mfa.to_string()),
        ("audiences", c.audiences.join(" ")),
        ("resource_audiences", c.resource_audiences.join(" ")),
        (
            "backchannel_logout_uri",
            c.backchannel_logout_uri
                .clone()
                .unwrap_or_else(|| "none".into()),
        ),
        (
            "backchannel_logout_session_required",
            c.backchannel_logout_session_required.to_string(),
        ),
        (
            "id_token_alg",
            c.id_token_alg.clone().unwrap_or_else(|| "default".into()),
        ),
        ("created_at", c.created_at.to_string()),
        ("updated_at", c.updated_at.to_string()),
    ])
}
