//! `latchkey group …` and `latchkey scope …`: groups, their members, and
//! custom scopes (with the groups that may be granted them).

use clap::{Args, Subcommand};

use super::{CliResult, open_db, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::service::groups;
use crate::service::scopes::{self, ScopeInput, ScopeView};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// List groups with their member counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename a group (the `groups` claim shows the new name from the next token on).
    Rename { name: String, new_name: String },
    /// Delete a group; its members lose the scopes it permitted.
    Delete { name: String },
    /// List a group's members.
    Members {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's groups (replaces them all; no --group: none).
    SetUserGroups {
        username: String,
        /// Group name; repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Define a custom scope, e.g. read:issues.
    Add(ScopeArgs),
    /// Change a custom scope's description and groups (replaces both) and,
    /// with --machine or --no-machine, whether machine clients may hold it.
    Update(ScopeArgs),
    /// List built-in and custom scopes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a custom scope (refused while a client is allowed it).
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// The scope, e.g. read:issues.
    name: String,
    /// What the consent page says it allows.
    #[arg(long)]
    description: String,
    /// Only members of this group may be granted it; repeat for several.
    /// Without --group, any user may.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Clients acting for themselves (client_credentials) may hold it
    /// (never a group-restricted one, for self-registered clients). Off
    /// for a new scope unless given.
    #[arg(long, conflicts_with = "no_machine")]
    machine: bool,
    /// Machine clients may not hold it (update keeps the flag without
    /// --machine or --no-machine).
    #[arg(long)]
    no_machine: bool,
    #[arg(long)]
    json: bool,
}

pub fn run_group(config: &Config, cmd: &GroupCommand) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    let actor = Actor::cli();
    match cmd {
        GroupCommand::Add { name } => {
            let g = groups::create(&mut conn, name, &actor, now)?;
            output::line(&format!("created group {}", g.name))
        }
        GroupCommand::List { json } => {
            let all = groups::list(&mut conn)?;
            if *json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|g| vec![g.name.clone(), g.members.to_string()])
                .collect();
            output::table(&["NAME", "MEMBERS"], &rows)
        }
        GroupCommand::Rename { name, new_name } => {
            groups::rename(&mut conn, name, new_name, &actor, now)?;
            output::line(&format!("renamed group {name} to {new_name}"))
        }
        GroupCommand::Delete { name } => {
            groups::delete(&mut conn, name, &actor, now)?;
            output::line(&format!("deleted group {name}"))
        }
        GroupCommand::Members { name, json } => {
            let members = groups::members(&mut conn, name)?;
            if *json {
                return output::json(&members);
            }
            output::line(&members.join("\n"))
        }
        GroupCommand::SetUserGroups {
            username,
            groups: names,
        } => {
            let set = groups::set_user_groups(&mut conn, username, names, &actor, now)?;
            output::line(&format!("{username}: {}", set.join(", ")))
        }
    }
}

fn print_scope(s: &ScopeView, json: bool) -> CliResult {
    if json {
        return output::json(s);
    }
    let groups = if s.groups.is_empty() {
        "any user".to_owned()
    } else {
        s.groups.join(", ")
    };
    let machine = if s.machine_grantable { "yes" } else { "no" };
    output::line(&format!(
        "{}: {} (granted to: {groups}; machine clients: {machine})",
        s.name, s.description
    ))
}

pub fn run_scope(config: &Config, cmd: &ScopeCommand) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    let actor = Actor::cli();
    let input = |a: &ScopeArgs| ScopeInput {
        description: a.description.clone(),
        groups: a.groups.clone(),
        machine_grantable: match (a.machine, a.no_machine) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    match cmd {
        ScopeCommand::Add(a) => {
            let s = scopes::create(&mut conn, &a.name, &input(a), &actor, now)?;
            print_scope(&s, a.json)
        }
        ScopeCommand::Update(a) => {
            let s = scopes::update(&mut conn, &a.name, &input(a), &actor, now)?;
            print_scope(&s, a.json)
        }
        ScopeCommand::List { json } => {
            let all = scopes::list(&mut conn)?;
            if *json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        if s.builtin { "built-in" } else { "custom" }.to_owned(),
                        if s.groups.is_empty() {
                            "-".to_owned()
                        } else {
                            s.groups.join(",")
                        },
                        if s.machine_grantable { "yes" } else { "no" }.to_owned(),
                        s.description.clone(),
                    ]
                })
                .collect();
            output::table(
                &["SCOPE", "KIND", "GROUPS", "MACHINE", "DESCRIPTION"],
                &rows,
            )
        }
        ScopeCommand::Delete { name } => {
            scopes::delete(&mut conn, name, &actor, now)?;
            output::line(&format!("deleted scope {name}"))
        }
    }
}
