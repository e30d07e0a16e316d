//! HTTP: the route table and the pieces handlers share. Handlers are thin:
//! read the request, call one service function, write the response.

pub mod admin;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod form;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod oidc;
pub mod request_log;
pub mod templates;
pub mod ui;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

/// The one route table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Bytes extraction (used by form::Form) stops reading past the limit.
    cfg.app_data(web::PayloadConfig::new(form::FORM_LIMIT_BYTES))
        // Load balancers probe with HEAD as often as with GET.
        .service(
            web::resource("/healthz")
                .route(web::get().to(health::healthz))
                .route(web::head().to(health::healthz)),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(health::readyz))
                .route(web::head().to(health::readyz)),
        )
        // Served here only with `[metrics]` on, no `metrics.bind`, and a
        // token (http::metrics); otherwise not found.
        .route("/metrics", web::get().to(metrics::on_main_listener))
        .route("/static/latchkey.css", web::get().to(stylesheet))
        .route("/jwks", web::get().to(oidc::jwks::jwks))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oidc::discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oidc::discovery::metadata),
        )
        .service(
            web::resource("/authorize")
                .route(web::get().to(oidc::authorize::get))
                .route(web::post().to(oidc::authorize::post)),
        )
        .route(
            "/authorize/consent",
            web::post().to(oidc::authorize::consent),
        )
        .route("/token", web::post().to(oidc::token::token))
        .route(
            crate::oidc::device::AUTHORIZATION_PATH,
            web::post().to(oidc::device::authorize),
        )
        .service(
            web::resource(crate::oidc::device::VERIFICATION_PATH)
                .route(web::get().to(ui::device::show))
                .route(web::post().to(ui::device::enter)),
        )
        .route("/device/consent", web::post().to(ui::device::answer))
        .service(
            web::resource("/userinfo")
                .route(web::get().to(oidc::userinfo::show))
                .route(web::post().to(oidc::userinfo::show)),
        )
        .route("/introspect", web::post().to(oidc::introspect::introspect))
        .route("/revoke", web::post().to(oidc::introspect::revoke))
        .route("/register", web::post().to(oidc::register::register))
        .service(
            web::resource("/register/{client_id}")
                .route(web::get().to(oidc::register::read))
                .route(web::put().to(oidc::register::update))
                .route(web::delete().to(oidc::register::delete)),
        )
        .configure(admin::configure_api)
        .configure(admin::configure_console)
        .route("/", web::get().to(ui::home::show))
        .service(
            web::resource("/login")
                .route(web::get().to(ui::login::show))
                .route(web::post().to(ui::login::submit)),
        )
        .service(
            web::resource("/login/mfa")
                .route(web::get().to(ui::login_mfa::show))
                .route(web::post().to(ui::login_mfa::submit)),
        )
        .route("/account/mfa", web::get().to(ui::account_mfa::show))
        .route("/account/mfa/totp", web::post().to(ui::account_mfa::begin))
        .route(
            "/account/mfa/totp/confirm",
            web::post().to(ui::account_mfa::confirm),
        )
        .route(
            "/account/mfa/recovery",
            web::post().to(ui::account_mfa::regenerate),
        )
        .service(
            web::resource("/account/mfa/remove")
                .route(web::get().to(ui::account_mfa::confirm_remove))
                .route(web::post().to(ui::account_mfa::remove)),
        )
        .route("/account", web::get().to(ui::account::show))
        .route(
            "/account/profile",
            web::post().to(ui::account::update_profile),
        )
        .route(
            "/account/password",
            web::post().to(ui::account::change_password),
        )
        .route(
            "/account/apps/revoke",
            web::post().to(ui::account::revoke_app),
        )
        .route(
            "/account/sessions/end",
            web::post().to(ui::account::end_session),
        )
        .route(
            "/account/sessions/end-others",
            web::post().to(ui::account::end_other_sessions),
        )
        .route(
            "/account/tokens",
            web::post().to(ui::account_tokens::create),
        )
        .service(
            web::resource("/account/tokens/{id}/revoke")
                .route(web::get().to(ui::account_tokens::confirm_revoke))
                .route(web::post().to(ui::account_tokens::revoke)),
        )
        .service(
            web::resource("/logout")
                .route(web::get().to(ui::logout::show))
                .route(web::post().to(ui::logout::submit)),
        )
        .service(
            web::resource(oidc::end_session::PATH)
                .route(web::get().to(oidc::end_session::get))
                .route(web::post().to(oidc::end_session::post)),
        );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(templates::STYLESHEET)
}

/// Answer for unknown paths.
pub async fn not_found() -> Result<HttpResponse, crate::http::error::AppError> {
    Err(crate::http::error::AppError::NotFound)
}
