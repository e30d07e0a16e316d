//! `latchkey user tokens …`: a user's personal access tokens.

use clap::Subcommand;

use super::{CliResult, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::service::pat::{self, NewPat, PatView};
use crate::store::DbConn;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List a user's personal access tokens (not revoked). The tokens
    /// themselves are never shown again after creation: each is listed by
    /// id, name and hint (its first characters).
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a personal access token for a user and print it, this once.
    /// The user must be allowed tokens (`[pat]` in the config) and hold
    /// every scope given; `openid` and `offline_access` are refused.
    Create {
        username: String,
        /// What the token is for, e.g. "CI deploy" (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// A scope for the token; repeat for more (or give them
        /// space-separated). At least one.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// Lifetime in days: 1 to `pat.max_ttl_days` (default 365).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: i64,
        /// Print {"token": …, "id": …, …} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of a user's tokens by its id (see `list`): it stops
    /// working at once (resource servers that cache introspection answers
    /// stop accepting it when their cache ends).
    Revoke { username: String, token_id: String },
}

fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn row(t: &PatView) -> Vec<String> {
    vec![
        t.id.clone(),
        t.name.clone(),
        t.hint.clone(),
        t.scopes.join(" "),
        when(t.created_at),
        if t.expired {
            "expired".into()
        } else {
            when(t.expires_at)
        },
        t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
    ]
}

pub fn run(config: &Config, conn: &mut DbConn, cmd: &TokenCommand) -> CliResult {
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        TokenCommand::List { username, json } => {
            let list = pat::list_for(conn, username, now)?;
            if *json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list.iter().map(row).collect();
            output::table(
                &[
                    "ID",
                    "NAME",
                    "HINT",
                    "SCOPES",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                ],
                &rows,
            )
        }
        TokenCommand::Create {
            username,
            name,
            scopes,
            expires_in_days,
            json,
        } => {
            let input = NewPat {
                name: name.clone(),
                scopes: scopes.clone(),
                expires_in_days: *expires_in_days,
            };
            let issued = pat::create_for(conn, &config.pat, username, &input, &Actor::cli(), now)?;
            if *json {
                return output::json(&issued);
            }
            output::fields(&[
                ("id", issued.view.id.clone()),
                ("name", issued.view.name.clone()),
                ("scopes", issued.view.scopes.join(" ")),
                ("expires_at", when(issued.view.expires_at)),
                ("token", issued.token.clone()),
            ])?;
            output::line("\nStore the token now: it is shown only this once.")
        }
        TokenCommand::Revoke { username, token_id } => {
            pat::revoke_for(conn, username, token_id, &Actor::cli(), now)?;
            output::line(&format!(
                "revoked token {token_id} of {}",
                username.to_ascii_lowercase()
            ))
        }
    }
}
