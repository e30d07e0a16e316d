//! The discovery document (built once in `oidc::discovery`), served as
//! precomputed bytes.

use actix_web::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.discovery.clone())
}
