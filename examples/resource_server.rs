//! A small notes API that trusts Latchkey access tokens, verified with
//! `latchkey-verify`: `GET /notes` needs the scope `read:notes`,
//! `POST /notes` needs `write:notes`, `GET /whoami` any valid token.
//! JWT access tokens are checked offline (the verifier fetches discovery
//! and the JWKS, then caches). Personal access tokens (`lkp_…`, for
//! scripts) are accepted too when the API has its own client credentials
//! to ask Latchkey about them (introspection, answers cached 60 s), sent
//! as `Authorization: Bearer lkp_…` or as the HTTP Basic password
//! (`curl -u "me:lkp_…"`).
//!
//! ```sh
//! LATCHKEY_ISSUER=http://127.0.0.1:8080 NOTES_AUDIENCE=http://127.0.0.1:9090 \
//!   NOTES_CLIENT_ID=… NOTES_CLIENT_SECRET=… \
//!   cargo run --example resource_server
//! ```
//!
//! Settings (environment):
//! - `LATCHKEY_ISSUER`: the issuer URL, as in Latchkey's `issuer` setting
//!   (default `http://127.0.0.1:8080`).
//! - `NOTES_AUDIENCE`: this API's identifier, registered as the client's
//!   `--audience` (default `http://127.0.0.1:9090`).
//! - `NOTES_CLIENT_ID`, `NOTES_CLIENT_SECRET` (optional, both or neither):
//!   this API's own confidential client, registered with
//!   `--resource-audience` set to `NOTES_AUDIENCE`. With them, personal
//!   access tokens are accepted; a revoked one keeps working for up to the
//!   cache time (60 s). Without them, they are refused with 401.
//! - `NOTES_BIND`: where to listen (default `127.0.0.1:9090`).

use std::sync::Mutex;

use actix_web::{App, HttpResponse, HttpServer, Responder, web};
use latchkey_verify::Verifier;
use latchkey_verify::actix::{Authenticated, Scoped};
use serde::{Deserialize, Serialize};

latchkey_verify::required_scopes!(ReadNotes = "read:notes");
latchkey_verify::required_scopes!(WriteNotes = "write:notes");

#[derive(Clone, Serialize)]
struct Note {
    id: usize,
    text: String,
    /// `sub` of the token that wrote it: a user, or the client itself.
    author: String,
    /// The app that wrote it; `null` when written with a personal access
    /// token (a user's own credential, not an app's).
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

#[derive(Default)]
pub struct Notes(Mutex<Vec<Note>>);

async fn list(_auth: Scoped<ReadNotes>, notes: web::Data<Notes>) -> impl Responder {
    let notes = notes.0.lock().map(|n| n.clone()).unwrap_or_default();
    HttpResponse::Ok().json(notes)
}

async fn create(
    auth: Scoped<WriteNotes>,
    notes: web::Data<Notes>,
    body: web::Json<NewNote>,
) -> impl Responder {
    let text = body.into_inner().text;
    if text.trim().is_empty() || text.len() > 10_000 {
        return HttpResponse::BadRequest().json(serde_json::json!({
            "error": "invalid_note", "error_description": "text must be 1 to 10000 bytes"
        }));
    }
    let Ok(mut notes) = notes.0.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    let note = Note {
        id: notes.len() + 1,
        text,
        author: auth.subject.clone(),
        client_id: auth.client_id.clone(),
    };
    notes.push(note.clone());
    HttpResponse::Created().json(note)
}

/// Who the token says is calling, and with which scopes.
async fn whoami(auth: Authenticated) -> impl Responder {
    HttpResponse::Ok().json(serde_json::json!({
        "sub": auth.subject,
        "client_id": auth.client_id,
        "personal_access_token": auth.is_personal_access_token(),
        "scopes": auth.scopes,
        "groups": auth.groups,
    }))
}

/// The app, for `main` and for tests that run it in-process.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/notes", web::get().to(list))
        .route("/notes", web::post().to(create))
        .route("/whoami", web::get().to(whoami));
}

/// The verifier the settings describe; `env` reads one setting (the
/// process environment in `main`, a table in tests).
pub fn verifier(env: impl Fn(&str) -> Option<String>) -> std::io::Result<Verifier> {
    let setting = |name: &str, default: &str| env(name).unwrap_or_else(|| default.to_owned());
    let mut builder = Verifier::builder(
        setting("LATCHKEY_ISSUER", "http://127.0.0.1:8080"),
        setting("NOTES_AUDIENCE", "http://127.0.0.1:9090"),
    );
    match (env("NOTES_CLIENT_ID"), env("NOTES_CLIENT_SECRET")) {
        (Some(id), Some(secret)) => builder = builder.introspection(id, secret),
        (None, None) => {}
        _ => {
            return Err(std::io::Error::other(
                "set both NOTES_CLIENT_ID and NOTES_CLIENT_SECRET, or neither",
            ));
        }
    }
    builder.build().map_err(std::io::Error::other)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let verifier = verifier(|name| std::env::var(name).ok())?;
    let issuer = verifier.issuer().to_owned();
    let audience = verifier.audience().to_owned();
    let bind = std::env::var("NOTES_BIND").unwrap_or_else(|_| "127.0.0.1:9090".to_owned());
    let pats = verifier.accepts_personal_access_tokens();
    match verifier.prefetch().await {
        Ok(n) => tracing::info!(%issuer, keys = n, "signing keys loaded"),
        Err(e) => {
            tracing::warn!(%issuer, error = %e, "issuer not reachable yet; will retry on the first request")
        }
    }
    tracing::info!(%bind, %audience, personal_access_tokens = pats, "notes API listening");
    let notes = web::Data::new(Notes::default());
    HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .app_data(notes.clone())
            .configure(configure)
    })
    .bind(bind)?
    .run()
    .await
}
