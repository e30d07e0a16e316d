//! Administration: the JSON API under `/admin/api/v1` (bearer tokens with
//! `latchkey:admin`) and the console pages under `/admin` (an admin's
//! browser session, CSRF on every form).

pub mod api;
pub mod api_logout;
pub mod api_tokens;
pub mod api_versions;
pub mod console;
pub mod error;
pub mod openapi;
pub mod principal;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, ResponseError, web};

use error::ApiError;

use crate::state::AppState;

/// Authenticates every admin API call before anything else reads the
/// request (a body that does not parse must not tell an anonymous caller
/// more than 401), and hands the [`Actor`](crate::domain::audit::Actor)
/// to the handler through the request extensions.
async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("no app state"));
    };
    match principal::api_caller(req.request(), &state).await {
        Ok(actor) => {
            req.extensions_mut().insert(actor);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(e) => Ok(req.into_response(e.error_response())),
    }
}

/// Largest JSON body the admin API reads.
const JSON_LIMIT: usize = 64 * 1024;

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|e, _| ApiError::invalid_request(format!("invalid JSON body: {e}")).into());
    let query = web::QueryConfig::default()
        .error_handler(|e, _| ApiError::invalid_request(format!("invalid query: {e}")).into());
    let path = web::PathConfig::default()
        .error_handler(|e, _| ApiError::invalid_request(format!("invalid path: {e}")).into());
    // Public: it describes the API and grants nothing.
    cfg.route(
        "/admin/api/v1/openapi.json",
        web::get().to(openapi::document),
    );
    cfg.service(
        web::scope("/admin/api/v1")
            .wrap(from_fn(require_admin))
            // JSON only (bearer-authenticated, so no BREACH exposure): lists
            // and the audit log compress well. See `http::headers`.
            .wrap(actix_web::middleware::Compress::default())
            .app_data(json)
            .app_data(query)
            .app_data(path)
            .service(
                web::resource("/clients")
                    .route(web::get().to(api::list_clients))
                    .route(web::post().to(api::create_client)),
            )
            .service(
                web::resource("/clients/{client_id}")
                    .route(web::get().to(api::get_client))
                    .route(web::patch().to(api::update_client))
                    .route(web::delete().to(api::delete_client)),
            )
            .route(
                "/clients/{client_id}/secret",
                web::post().to(api::rotate_client_secret),
            )
            .route(
                "/clients/{client_id}/logout-deliveries",
                web::get().to(api_logout::client_deliveries),
            )
            .service(
                web::resource("/scopes")
                    .route(web::get().to(api::list_scopes))
                    .route(web::post().to(api::create_scope)),
            )
            .service(
                web::resource("/scopes/{name}")
                    .route(web::put().to(api::update_scope))
                    .route(web::delete().to(api::delete_scope)),
            )
            .service(
                web::resource("/users")
                    .route(web::get().to(api::list_users))
                    .route(web::post().to(api::create_user)),
            )
            .service(
                web::resource("/users/{username}")
                    .route(web::get().to(api::get_user))
                    .route(web::patch().to(api::update_user))
                    .route(web::delete().to(api::delete_user)),
            )
            .route(
                "/users/{username}/password",
                web::put().to(api::set_user_password),
            )
            .route(
                "/users/{username}/groups",
                web::put().to(api::set_user_groups),
            )
            .service(
                web::resource("/users/{username}/sessions")
                    .route(web::get().to(api_logout::user_sessions))
                    .route(web::delete().to(api_logout::end_user_sessions)),
            )
            .service(
                web::resource("/users/{username}/mfa")
                    .route(web::get().to(api_logout::user_factors))
                    .route(web::delete().to(api_logout::reset_user_factors)),
            )
            .service(
                web::resource("/users/{username}/tokens")
                    .route(web::get().to(api_tokens::list))
                    .route(web::post().to(api_tokens::create)),
            )
            .route(
                "/users/{username}/tokens/{token_id}",
                web::delete().to(api_tokens::revoke),
            )
            .service(
                web::resource("/groups")
                    .route(web::get().to(api::list_groups))
                    .route(web::post().to(api::create_group)),
            )
            .service(
                web::resource("/groups/{name}")
                    .route(web::patch().to(api::rename_group))
                    .route(web::delete().to(api::delete_group)),
            )
            .route("/groups/{name}/members", web::get().to(api::group_members))
            .route("/keys", web::get().to(api::list_keys))
            .route("/keys/rotate", web::post().to(api::rotate_key))
            .route("/keys/{kid}/retire", web::post().to(api::retire_key))
            .route("/keys/{kid}/revoke", web::post().to(api::revoke_key))
            .route("/audit", web::get().to(api_versions::audit_log))
            .route(
                "/initial-access-tokens",
                web::post().to(api_versions::create_initial_access_token),
            )
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found())
            })),
    );
}

/// The console pages (an admin's browser session, CSRF on every form).
pub fn configure_console(cfg: &mut web::ServiceConfig) {
    use console as c;
    cfg.route("/admin", web::get().to(c::home))
        .service(
            web::resource("/admin/clients")
                .route(web::get().to(c::clients::clients_page))
                .route(web::post().to(c::clients::create_client)),
        )
        .service(
            web::resource("/admin/clients/{client_id}")
                .route(web::get().to(c::clients::client_page))
                .route(web::post().to(c::clients::update_client)),
        )
        .route(
            "/admin/clients/{client_id}/secret",
            web::post().to(c::clients::rotate_client_secret),
        )
        .route(
            "/admin/clients/{client_id}/delete",
            web::post().to(c::clients::delete_client),
        )
        .route(
            "/admin/registration-tokens",
            web::post().to(c::clients::issue_initial_token),
        )
        .service(
            web::resource("/admin/scopes")
                .route(web::get().to(c::scopes::scopes_page))
                .route(web::post().to(c::scopes::create_scope)),
        )
        .route(
            "/admin/scopes/{name}",
            web::post().to(c::scopes::update_scope),
        )
        .route(
            "/admin/scopes/{name}/delete",
            web::post().to(c::scopes::delete_scope),
        )
        .service(
            web::resource("/admin/users")
                .route(web::get().to(c::users::users_page))
                .route(web::post().to(c::users::create_user)),
        )
        .service(
            web::resource("/admin/users/{username}")
                .route(web::get().to(c::users::user_page))
                .route(web::post().to(c::users::update_user)),
        )
        .route(
            "/admin/users/{username}/groups",
            web::post().to(c::users::set_user_groups),
        )
        .route(
            "/admin/users/{username}/password",
            web::post().to(c::users::set_user_password),
        )
        .route(
            "/admin/users/{username}/sessions/end",
            web::post().to(c::users::end_user_sessions),
        )
        .service(
            web::resource("/admin/users/{username}/mfa/reset")
                .route(web::get().to(c::users::confirm_reset_user_mfa))
                .route(web::post().to(c::users::reset_user_mfa)),
        )
        .route(
            "/admin/users/{username}/delete",
            web::post().to(c::users::delete_user),
        )
        .service(
            web::resource("/admin/groups")
                .route(web::get().to(c::groups::groups_page))
                .route(web::post().to(c::groups::create_group)),
        )
        .route(
            "/admin/groups/{name}/rename",
            web::post().to(c::groups::rename_group),
        )
        .route(
            "/admin/groups/{name}/delete",
            web::post().to(c::groups::delete_group),
        )
        .route("/admin/keys", web::get().to(c::keys::keys_page))
        .route("/admin/keys/rotate", web::post().to(c::keys::rotate_key))
        .route(
            "/admin/keys/{kid}/retire",
            web::post().to(c::keys::retire_key),
        )
        .route(
            "/admin/keys/{kid}/revoke",
            web::post().to(c::keys::revoke_key),
        )
        .route("/admin/audit", web::get().to(c::audit::audit_page));
}
