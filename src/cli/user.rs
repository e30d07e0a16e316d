//! `latchkey user …`

use clap::{Args, Subcommand};

use super::{CliResult, open_db, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::domain::user::ProfileInput;
use crate::service::logout;
use crate::service::users::{self, NewUser, UserView};
use crate::store::audit;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input.
    Add(AddArgs),
    /// List users.
    List {
        #[arg(long)]
        json: bool,
        /// Rows to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// Show one user.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password, read from standard input; ends their sessions.
    SetPassword {
        username: String,
        /// Read the new password from standard input (required: never on argv).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot sign in and its sessions end.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Delete a user and their sessions.
    Delete { username: String },
    /// List a user's browser sessions.
    Sessions {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Sign a user out everywhere: end all their sessions. Apps with
    /// back-channel logout are told by a running server.
    EndSessions { username: String },
    /// Manage a user's personal access tokens: list, create (printed
    /// once), revoke.
    #[command(subcommand)]
    Tokens(super::user_tokens::TokenCommand),
    /// A user's second factors: show them (never a secret) or reset them
    /// (ends the user's sessions).
    #[command(subcommand)]
    Mfa(super::user_mfa::MfaCommand),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Login name: letters a-z, digits and . _ - @ (stored lowercase).
    #[arg(long)]
    username: String,
    #[arg(long)]
    email: Option<String>,
    /// Mark the email as verified (the email_verified claim).
    #[arg(long)]
    email_verified: bool,
    /// Full name (the name claim).
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Make the user an administrator.
    #[arg(long)]
    admin: bool,
    /// Read the password from standard input. Without it the account has no
    /// password and cannot sign in until `user set-password`.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, cmd: &UserCommand) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        UserCommand::Tokens(t) => super::user_tokens::run(config, &mut conn, t),
        UserCommand::Mfa(m) => super::user_mfa::run(config, &mut conn, m),
        UserCommand::Add(a) => {
            let password = a
                .password_stdin
                .then(output::read_password_stdin)
                .transpose()?;
            let new = NewUser {
                username: &a.username,
                email: a.email.as_deref(),
                email_verified: a.email_verified,
                profile: ProfileInput {
                    name: a.name.as_deref(),
                    given_name: a.given_name.as_deref(),
                    family_name: a.family_name.as_deref(),
                    ..Default::default()
                },
                is_admin: a.admin,
            };
            let user = users::create(&mut conn, &new, password.as_deref(), now)?;
            if a.json {
                output::json(&user)
            } else {
                output::line(&format!("created user {} ({})", user.username, user.id))
            }
        }
        UserCommand::List {
            json,
            limit,
            offset,
        } => {
            let list = users::list(&mut conn, *limit, *offset)?;
            if *json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.email.clone().unwrap_or_default(),
                        u.name.clone().unwrap_or_default(),
                        if u.is_admin {
                            "admin".into()
                        } else {
                            String::new()
                        },
                        if u.disabled {
                            "disabled".into()
                        } else {
                            "active".into()
                        },
                    ]
                })
                .collect();
            output::table(&["USERNAME", "EMAIL", "NAME", "ROLE", "STATUS"], &rows)
        }
        UserCommand::Show { username, json } => {
            let user = users::show(&mut conn, username)?;
            if *json {
                output::json(&user)
            } else {
                print_user(&user)
            }
        }
        UserCommand::SetPassword { username, .. } => {
            let pw = output::read_password_stdin()?;
            users::set_password(&mut conn, username, &pw, now)?;
            output::line(&format!(
                "password changed for {}",
                username.to_ascii_lowercase()
            ))
        }
        UserCommand::Disable { username } => {
            let u = users::set_disabled(&mut conn, username, true, now)?;
            output::line(&format!("disabled {}", u.username))
        }
        UserCommand::Enable { username } => {
            let u = users::set_disabled(&mut conn, username, false, now)?;
            output::line(&format!("enabled {}", u.username))
        }
        UserCommand::Delete { username } => {
            users::delete(&mut conn, username, now)?;
            output::line(&format!("deleted {}", username.to_ascii_lowercase()))
        }
        UserCommand::Sessions { username, json } => {
            let list = logout::admin::user_sessions(&mut conn, username)?;
            if *json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.created_at.to_string(),
                        s.last_seen_at.to_string(),
                        s.ip.clone().unwrap_or_default(),
                        s.user_agent.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["SIGNED IN", "LAST SEEN", "IP", "BROWSER"], &rows)
        }
        UserCommand::EndSessions { username } => {
            let policy = logout::LogoutPolicy::from_config(&config.logout);
            let entry = Some(("user.end_sessions", username.as_str()));
            let ended = audit::audited(&mut conn, &Actor::cli(), entry, now, |conn| {
                logout::admin::end_user_sessions(conn, username, policy, now)
            })?;
            output::line(&format!(
                "ended {} session(s) of {}; {} logout token(s) queued (a running server delivers them)",
                ended.sessions,
                username.to_ascii_lowercase(),
                ended.logout_tokens
            ))
        }
    }
}

fn print_user(u: &UserView) -> CliResult {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    output::fields(&[
        ("id", u.id.clone()),
        ("username", u.username.clone()),
        ("email", opt(&u.email)),
        ("email_verified", u.email_verified.to_string()),
        ("name", opt(&u.name)),
        ("given_name", opt(&u.given_name)),
        ("family_name", opt(&u.family_name)),
        ("admin", u.is_admin.to_string()),
        ("disabled", u.disabled.to_string()),
        ("has_password", u.has_password.to_string()),
        ("created_at", u.created_at.to_string()),
        ("updated_at", u.updated_at.to_string()),
    ])
}
