//! Printing for the CLI: JSON for scripts, aligned tables for people.

use std::io::Write;

use serde::Serialize;

use super::{CliError, CliResult};

pub fn json<T: Serialize>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError {
        code: 1,
        message: e.to_string(),
    })?;
    line(&text)
}

pub fn line(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> CliResult {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let fmt_row = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", fmt_row(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", fmt_row(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Key/value lines for `show` commands.
pub fn fields(pairs: &[(&str, String)]) -> CliResult {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in pairs {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// Reads a password from standard input: the first line, without its line
/// ending. Passwords never come from argv (visible in `ps`).
pub fn read_password_stdin() -> Result<String, CliError> {
    let mut buf = String::new();
    std::io::stdin().read_line(&mut buf)?;
    let pw = buf.strip_suffix('\n').unwrap_or(&buf);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() {
        return Err(CliError {
            code: 1,
            message: "no password on standard input".into(),
        });
    }
    Ok(pw.to_owned())
}
