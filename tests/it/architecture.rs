//! The rules of ARCHITECTURE.md, checked on every test run (in the spirit
//! of rust-analyzer's tidy tests): layers import only downward, `http`
//! reaches storage and keys only through `service`, and no source file
//! grows past 600 lines. A failure names the file and the import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each layer (a top-level module of `src/`) and the top-level modules it
/// may import besides itself. Anything not listed is above it.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("oidc", &["domain"]),
    ("config", &["domain"]),
    ("telemetry", &["domain", "config"]),
    ("store", &["domain", "config", "clock", "telemetry"]),
    (
        "keys",
        &["domain", "oidc", "config", "clock", "telemetry", "store"],
    ),
    (
        "service",
        &[
            "domain",
            "oidc",
            "config",
            "clock",
            "telemetry",
            "store",
            "keys",
        ],
    ),
    (
        "state",
        &[
            "domain",
            "oidc",
            "config",
            "clock",
            "telemetry",
            "store",
            "keys",
            "service",
        ],
    ),
    (
        "http",
        &[
            "domain",
            "oidc",
            "config",
            "clock",
            "telemetry",
            "store",
            "keys",
            "service",
            "state",
        ],
    ),
    (
        "app",
        &[
            "domain",
            "oidc",
            "config",
            "clock",
            "telemetry",
            "store",
            "keys",
            "service",
            "state",
            "http",
        ],
    ),
    (
        "cli",
        &[
            "domain",
            "oidc",
            "config",
            "clock",
            "telemetry",
            "store",
            "keys",
            "service",
            "state",
            "app",
        ],
    ),
];

/// Modules below a layer that it must still not reach into: `http` gets
/// database handles and key types, never repositories, rows, the audit
/// writer or key operations (those are `service`'s).
const FORBIDDEN: &[(&str, &[&str])] = &[(
    "http",
    &[
        "store::repo",
        "store::models",
        "store::schema",
        "store::audit",
        "store::migrations",
        "keys::ops",
        "keys::key_store",
        "keys::kek",
        "keys::lifecycle",
        "keys::material",
    ],
)];

/// `app` mounts `http`; nothing else of http's is its business.
const APP_HTTP_ALLOWED: &[&str] = &[
    "http::configure",
    "http::not_found",
    "http::cors",
    "http::request_log",
    "http::templates",
    "http::headers",
    "http::metrics",
];

const MAX_LINES: usize = 600;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::a::b` paths a source text names, as `a::b` (or `a` alone),
/// with `use crate::a::{b, c::d}` groups expanded to `a::b`, `a::c`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let top: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if top.is_empty() {
                continue;
            }
            let after = &rest[top.len()..];
            let Some(after) = after.strip_prefix("::") else {
                found.insert(top);
                continue;
            };
            if let Some(group) = after.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let sub: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !sub.is_empty() && sub != "self" {
                        found.insert(format!("{top}::{sub}"));
                    }
                }
                found.insert(top.clone());
            } else {
                let sub: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if sub.is_empty() {
                    found.insert(top);
                } else {
                    found.insert(format!("{top}::{sub}"));
                }
            }
        }
    }
    found
}

/// The problems with one file's imports, given its layer.
fn violations(layer: &str, paths: &BTreeSet<String>) -> Vec<String> {
    let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == layer) else {
        return vec![format!("`{layer}` is not a known layer: add it to LAYERS")];
    };
    let forbidden: &[&str] = FORBIDDEN
        .iter()
        .find(|(name, _)| *name == layer)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for path in paths {
        let top = path.split("::").next().unwrap_or(path);
        if top == layer {
            continue;
        }
        if !allowed.contains(&top) {
            out.push(format!(
                "imports crate::{path}, which is not below `{layer}`"
            ));
        } else if forbidden
            .iter()
            .any(|f| path == f || path.starts_with(&format!("{f}::")))
        {
            out.push(format!(
                "imports crate::{path}: `{layer}` must go through `service` for this"
            ));
        } else if layer == "app"
            && top == "http"
            && path != "http"
            && !APP_HTTP_ALLOWED.iter().any(|a| path == a)
        {
            out.push(format!(
                "imports crate::{path}: `app` only mounts http (routes and middleware)"
            ));
        }
    }
    out
}

#[test]
fn layers_import_only_downward() {
    let root = src_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let layer = first.trim_end_matches(".rs");
        if layer == "lib" || layer == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        checked += 1;
        for v in violations(layer, &crate_paths(&text)) {
            problems.push(format!("src/{}: {v}", rel.display()));
        }
    }
    assert!(checked > 50, "only {checked} files found under {root:?}");
    assert!(
        problems.is_empty(),
        "layering violations (see ARCHITECTURE.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_source_file_is_too_long() {
    let root = src_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} has {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these (at most {MAX_LINES} lines a file):\n{}",
        long.join("\n")
    );
}

/// The checker itself: it must catch what it claims to catch.
#[test]
fn the_checker_flags_upward_and_sideways_imports() {
    let p = crate_paths(
        "use crate::store::{Db, repo};\nuse crate::service::token::TokenContext;\n// use crate::cli::x;\nlet x = crate::keys::ops::rotate();",
    );
    assert!(p.contains("store::repo") && p.contains("store::Db"));
    assert!(p.contains("service::token") && p.contains("keys::ops"));
    assert!(
        !p.iter().any(|x| x.starts_with("cli")),
        "comments are skipped"
    );
    assert_eq!(
        violations("http", &p).len(),
        2,
        "{:?}",
        violations("http", &p)
    );
    assert_eq!(violations("domain", &p).len(), p.len());
    assert!(violations("service", &p).is_empty());
    let up: BTreeSet<String> = ["http::templates".to_string()].into();
    assert_eq!(violations("store", &up).len(), 1);
    let app: BTreeSet<String> = ["http::oidc".to_string()].into();
    assert_eq!(violations("app", &app).len(), 1);
}
