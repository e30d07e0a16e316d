//! A small notes API that trusts Latchkey access tokens, verified offline
//! with `latchkey-verify`: `GET /notes` needs the scope `read:notes`,
//! `POST /notes` needs `write:notes`. Nothing here calls Latchkey per
//! request; the verifier fetches discovery and the JWKS, then caches.
//!
//! ```sh
//! LATCHKEY_ISSUER=http://127.0.0.1:8080 NOTES_AUDIENCE=http://127.0.0.1:9090 \
//!   cargo run --example resource_server
//! ```
//!
//! Settings (environment):
//! - `LATCHKEY_ISSUER`: the issuer URL, as in Latchkey's `issuer` setting
//!   (default `http://127.0.0.1:8080`).
//! - `NOTES_AUDIENCE`: this API's identifier, registered as the client's
//!   `--audience` (default `http://127.0.0.1:9090`).
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
    /// The app that wrote it.
    client_id: String,
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

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let issuer = env("LATCHKEY_ISSUER", "http://127.0.0.1:8080");
    let audience = env("NOTES_AUDIENCE", "http://127.0.0.1:9090");
    let bind = env("NOTES_BIND", "127.0.0.1:9090");
    let verifier = Verifier::builder(issuer.clone(), audience.clone())
        .build()
        .map_err(std::io::Error::other)?;
    match verifier.prefetch().await {
        Ok(n) => tracing::info!(%issuer, keys = n, "signing keys loaded"),
        Err(e) => {
            tracing::warn!(%issuer, error = %e, "issuer not reachable yet; will retry on the first request")
        }
    }
    tracing::info!(%bind, %audience, "notes API listening");
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
