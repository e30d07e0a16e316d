//! HTTP: the route table and the pieces handlers share. Handlers are thin:
//! read the request, call one service function, write the response.

pub mod cookies;
pub mod csrf;
pub mod extract;
pub mod health;
pub mod request_log;
pub mod templates;
pub mod ui;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

/// Bodies larger than this are refused before parsing (every form we take
/// is small; the biggest field is a 1 KiB password).
pub const FORM_LIMIT_BYTES: usize = 16 * 1024;

/// The one route table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(FORM_LIMIT_BYTES)
            .error_handler(extract::form_error),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/static/latchkey.css", web::get().to(stylesheet))
    .route("/", web::get().to(ui::home::show))
    .service(
        web::resource("/login")
            .route(web::get().to(ui::login::show))
            .route(web::post().to(ui::login::submit)),
    )
    .service(
        web::resource("/logout")
            .route(web::get().to(ui::logout::show))
            .route(web::post().to(ui::logout::submit)),
    );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(templates::STYLESHEET)
}

/// Answer for unknown paths.
pub async fn not_found() -> Result<HttpResponse, crate::error::AppError> {
    Err(crate::error::AppError::NotFound)
}
