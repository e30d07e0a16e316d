//! `latchkey user mfa …`: a user's second factors (never a secret), and
//! resetting them.

use clap::Subcommand;

use super::{CliResult, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::service::{logout, mfa};
use crate::store::{DbConn, audit};

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Show a user's second factors: whether an authenticator app is set
    /// up (and when it was last used), and how many recovery codes are
    /// left. Never a secret.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a user's authenticator app and recovery codes (they lost
    /// their phone) and end their sessions; their next sign-in is with the
    /// password alone (and, under an `[mfa]` policy, leads them to set one
    /// up again). Audited.
    Reset { username: String },
}

pub fn run(config: &Config, conn: &mut DbConn, cmd: &MfaCommand) -> CliResult {
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        MfaCommand::Show { username, json } => {
            let f = mfa::factors_of(conn, username)?;
            if *json {
                return output::json(&f);
            }
            let app = match &f.totp {
                Some(t) if t.confirmed => format!(
                    "set up {}; last used {}",
                    t.created_at,
                    t.last_used_at
                        .map_or_else(|| "never".to_owned(), |u| u.to_string())
                ),
                Some(_) => "being set up (not confirmed)".to_owned(),
                None => "none".to_owned(),
            };
            output::line(&format!(
                "authenticator app: {app}\nrecovery codes: {} of {} left",
                f.recovery_codes_left, f.recovery_codes
            ))
        }
        MfaCommand::Reset { username } => {
            let policy = logout::LogoutPolicy::from_config(&config.logout);
            let entry = Some(("user.mfa_reset", username.as_str()));
            let done = audit::audited(conn, &Actor::cli(), entry, now, |conn| {
                mfa::reset(conn, username, policy, now)
            })?;
            output::line(&format!(
                "second factors of {} {}; {} session(s) ended",
                username.to_ascii_lowercase(),
                if done.had_factor {
                    "removed"
                } else {
                    "were none"
                },
                done.sessions_ended
            ))
        }
    }
}
