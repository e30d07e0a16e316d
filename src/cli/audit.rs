//! `latchkey audit` (the audit log as a table or JSON lines, for a SIEM)
//! and `latchkey registration token create` (initial access tokens for
//! dynamic client registration).

use std::io::Write;

use clap::{Args, Subcommand};

use super::{CliError, CliResult, open_db, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::service::ServiceError;
use crate::service::audit_query::{self, AuditEntry, AuditFilter};
use crate::service::registration;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries at or after this RFC 3339 time (e.g. 2026-11-29T08:00:00Z);
    /// then the oldest come first, so a shipper can resume from the last
    /// `at` it saw (entries carry a unique `id` to drop the overlap).
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    /// Only this actor, exactly (e.g. user:root, client:ci-bot, cli:deploy, system).
    #[arg(long)]
    actor: Option<String>,
    /// Only actions starting with this (e.g. client. or key.rotate).
    #[arg(long)]
    action: Option<String>,
    /// At most this many entries: without --since the newest ones.
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,
    /// One JSON object per line (JSON Lines), oldest first.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// Initial access tokens: what an app presents to POST /register when
    /// registration is not open (RFC 7591).
    #[command(subcommand)]
    Token(RegistrationTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Issue an initial access token and print it, this once (only its
    /// hash is stored). Audited as the CLI user.
    Create {
        /// How many registrations it allows (1 to 1000).
        #[arg(long, default_value_t = 1, value_name = "N")]
        max_uses: i32,
        /// Lifetime in seconds (60 to 2592000, i.e. 30 days).
        #[arg(long, default_value_t = 86_400, value_name = "SECS")]
        expires_in: i64,
        /// Print {"initial_access_token": …, "expires_at": …, "max_uses": …}.
        #[arg(long)]
        json: bool,
    },
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads up to `limit` entries page by page (the service caps a page).
fn entries(conn: &mut crate::store::DbConn, args: &AuditArgs) -> Result<Vec<AuditEntry>, CliError> {
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut filter = AuditFilter {
        actor: args.actor.clone(),
        action: args.action.clone(),
        since: args.since.clone(),
        oldest_first: args.since.is_some(),
        ..AuditFilter::default()
    };
    let mut out = Vec::new();
    while out.len() < limit {
        let want = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
        filter.limit = Some(want.min(1000));
        let page = audit_query::page(conn, &filter)?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    if !filter.oldest_first {
        out.reverse();
    }
    Ok(out)
}

pub fn audit(config: &Config, args: &AuditArgs) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(ServiceError::from)?;
    let list = entries(&mut conn, args)?;
    if args.json {
        let mut out = std::io::stdout().lock();
        for e in &list {
            let line = serde_json::to_string(e).map_err(|e| CliError {
                code: 1,
                message: e.to_string(),
            })?;
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                rfc3339(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"], &rows)
}

pub fn registration(config: &Config, cmd: &RegistrationCommand) -> CliResult {
    let RegistrationCommand::Token(RegistrationTokenCommand::Create {
        max_uses,
        expires_in,
        json,
    }) = cmd;
    let db = open_db(config)?;
    let mut conn = db.get().map_err(ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    let actor = Actor::cli();
    let issued = crate::store::audit::audited(&mut conn, &actor, None, now, |conn| {
        registration::issue_initial_access_token(conn, &actor, *expires_in, *max_uses, now)
    })?;
    if *json {
        return output::json(&issued);
    }
    output::fields(&[
        ("token", issued.initial_access_token.clone()),
        ("expires_at", rfc3339(issued.expires_at)),
        ("max_uses", issued.max_uses.to_string()),
    ])?;
    output::line(
        "\nGive it to the app's developer: POST /register with `Authorization: Bearer <token>`. \
         It is shown only this once.",
    )
}
