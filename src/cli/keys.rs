//! `latchkey keys …`: running servers pick changes up within
//! `keys.reload_interval_secs`, or at once on SIGHUP.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::{CliError, CliResult, open_db, output};
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::keys::{KeyError, SigningAlg};
use crate::service::keys::{self, ExportFormat, load_kek};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their state and dates.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a new key: published now, signing after keys.prepublication_delay_secs
    /// (or at once with --now, retiring the current key).
    Rotate {
        /// Algorithm to rotate (default: every algorithm in keys.algorithms).
        #[arg(long, value_parser = parse_alg)]
        alg: Option<SigningAlg>,
        /// Start signing with the new key immediately.
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop signing with a key; it stays in the JWKS until its tokens expire.
    Retire {
        kid: String,
        /// Let a successor still inside keys.prepublication_delay_secs take
        /// over now (relying parties may not have it cached yet).
        #[arg(long)]
        force: bool,
    },
    /// Emergency: remove a key from the JWKS at once. Tokens it signed stop verifying.
    Revoke { kid: String },
    /// Write a key to a file or standard output: the public JWK, or with
    /// --private the private key (PKCS#8 PEM or JWK; the file gets mode 0600).
    Export {
        kid: String,
        /// Export the private key (audited).
        #[arg(long)]
        private: bool,
        #[arg(long, value_enum, default_value = "jwk")]
        format: FormatArg,
        /// Output file (default: standard output).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Import a private key (PEM or JWK file) as a new key, published now and
    /// signing after the pre-publication delay (or at once with --now).
    Import {
        path: PathBuf,
        #[arg(long, value_parser = parse_alg)]
        alg: SigningAlg,
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Pem,
    Jwk,
}

fn parse_alg(s: &str) -> Result<SigningAlg, String> {
    s.parse()
        .map_err(|e: crate::domain::alg::UnsupportedAlg| e.to_string())
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        let code = match e {
            KeyError::Kek(_) | KeyError::Store(_) | KeyError::Corrupt(_) => 2,
            _ => 1,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

pub fn run(config: &Config, cmd: &KeysCommand) -> CliResult {
    let db = open_db(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let now = time::OffsetDateTime::now_utc();
    let policy = keys::policy(config);
    let actor = Actor::cli();
    match cmd {
        KeysCommand::List { json } => {
            let list = keys::list(&mut conn, &policy)?;
            if *json {
                return output::json(&list);
            }
            let fmt = |t: Option<time::OffsetDateTime>| {
                t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
            };
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        k.alg.to_string(),
                        k.state.clone(),
                        k.created_at.to_string(),
                        if k.state == "next" {
                            k.activate_after.to_string()
                        } else {
                            fmt(k.activated_at)
                        },
                        fmt(k.remove_after),
                    ]
                })
                .collect();
            output::table(
                &[
                    "KID",
                    "ALG",
                    "STATE",
                    "CREATED",
                    "SIGNS FROM",
                    "REMOVED AFTER",
                ],
                &rows,
            )
        }
        KeysCommand::Rotate {
            alg,
            now: immediately,
            json,
        } => {
            let kek = load_kek(&mut conn, config)?;
            let algs = match alg {
                Some(a) => vec![*a],
                None => config.keys.algorithms.clone(),
            };
            let mut created = Vec::new();
            for a in algs {
                let kid = keys::rotate(&mut conn, &kek, &policy, a, *immediately, &actor, now)?;
                created.push(serde_json::json!({ "kid": kid, "alg": a }));
            }
            if *json {
                return output::json(&created);
            }
            for c in &created {
                output::line(&format!(
                    "created {} key {}",
                    c["alg"].as_str().unwrap_or_default(),
                    c["kid"].as_str().unwrap_or_default()
                ))?;
            }
            if *immediately {
                output::line(
                    "it signs now; the previous key is retired and stays published until its tokens expire",
                )
            } else {
                output::line(&format!(
                    "it is published now and signs after {} seconds",
                    config.keys.prepublication_delay_secs
                ))
            }
        }
        KeysCommand::Retire { kid, force } => {
            keys::retire(&mut conn, &policy, kid, &actor, now, *force)?;
            output::line(&format!(
                "retired {kid}; it stays published until its tokens expire"
            ))
        }
        KeysCommand::Revoke { kid } => {
            let kek = load_kek(&mut conn, config)?;
            keys::revoke(&mut conn, &kek, &policy, kid, &actor, now)?;
            output::line(&format!(
                "revoked {kid}: removed from the JWKS; send SIGHUP to running servers to apply it at once"
            ))
        }
        KeysCommand::Export {
            kid,
            private,
            format,
            out,
        } => {
            let kek = load_kek(&mut conn, config)?;
            let format = match format {
                FormatArg::Pem => ExportFormat::Pem,
                FormatArg::Jwk => ExportFormat::Jwk,
            };
            let bytes = keys::export(&mut conn, &kek, kid, format, *private, &actor, now)?;
            match out {
                Some(path) => write_private_file(path, &bytes),
                None => {
                    std::io::stdout().lock().write_all(&bytes)?;
                    Ok(())
                }
            }
        }
        KeysCommand::Import {
            path,
            alg,
            now: immediately,
            json,
        } => {
            let bytes = std::fs::read(path).map_err(|e| CliError {
                code: 1,
                message: format!("{}: {e}", path.display()),
            })?;
            let kek = load_kek(&mut conn, config)?;
            let kid = keys::import(
                &mut conn,
                &kek,
                &policy,
                &bytes,
                *alg,
                *immediately,
                &actor,
                now,
            )
            .map_err(|e| CliError {
                code: 1,
                message: format!("{}: {e}", path.display()),
            })?;
            if *json {
                output::json(&serde_json::json!({ "kid": kid, "alg": alg }))
            } else {
                output::line(&format!("imported {alg} key {kid}"))
            }
        }
    }
}

/// Writes key material readable by the owner only; never overwrites.
fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> CliResult {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| CliError {
        code: 1,
        message: format!("{}: {e}", path.display()),
    })?;
    f.write_all(bytes)?;
    Ok(())
}
