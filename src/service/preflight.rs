//! `latchkey check`: what a deploy pipeline asks before it switches
//! traffic. Reads only: it applies no migration, creates no KEK and
//! generates no key.

use std::path::Path;

use crate::config::Config;
use crate::keys::{Kek, ops};
use crate::store::{DbConn, migrations, repo};

/// What the check found: `problems` (one line each) make it fail; `notes`
/// are the summary printed when it passes.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks an open database against `config`: pending migrations, and that
/// the KEK opens every stored signing key.
pub fn check(conn: &mut DbConn, config: &Config) -> CheckReport {
    let mut report = CheckReport::default();
    match migrations::pending(conn) {
        Ok(pending) if pending.is_empty() => report.notes.push("schema up to date".into()),
        Ok(pending) => {
            for name in pending {
                report.problems.push(format!(
                    "pending migration {name} (run `latchkey migrate`, or start with database.auto_migrate on)"
                ));
            }
            // Older schemas may not have the tables read below yet.
            if repo::signing_keys::count(conn).is_err() {
                return report;
            }
        }
        Err(e) => report.problems.push(format!("migrations: {e}")),
    }
    check_keys(conn, config, &mut report);
    report
}

fn check_keys(conn: &mut DbConn, config: &Config, report: &mut CheckReport) {
    let kek_file = Path::new(&config.keys.kek_file);
    let kek = match Kek::load_existing(kek_file) {
        Ok(k) => k,
        Err(e) => {
            report.problems.push(format!("key-encryption key: {e}"));
            return;
        }
    };
    let count = match repo::signing_keys::count(conn) {
        Ok(n) => n,
        Err(e) => {
            report.problems.push(format!("signing keys: {e}"));
            return;
        }
    };
    let Some(kek) = kek else {
        if count > 0 {
            report.problems.push(format!(
                "key-encryption key: {} is missing (and {} is not set), but the database holds {count} encrypted signing key(s); restore it from backup",
                kek_file.display(),
                crate::keys::kek::KEK_ENV,
            ));
        } else {
            report.notes.push(format!(
                "no signing keys and no key-encryption key yet: the first `latchkey serve` creates {} and the keys",
                kek_file.display()
            ));
        }
        return;
    };
    match ops::unreadable_keys(conn, &kek) {
        Ok((total, bad)) => {
            for key in &bad {
                report.problems.push(format!(
                    "signing key {} ({} {}): {}",
                    key.kid, key.alg, key.state, key.error
                ));
            }
            if bad.is_empty() {
                report.notes.push(format!(
                    "{total} signing key(s) decrypt with the key-encryption key from {}",
                    kek.source()
                ));
            }
        }
        Err(e) => report.problems.push(format!("signing keys: {e}")),
    }
}
