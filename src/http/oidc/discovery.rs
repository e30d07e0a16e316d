//! The discovery document (built once in `oidc::discovery`), served as
//! precomputed bytes.

use actix_web::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::headers;
use crate::state::AppState;

pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    headers::document(&req, &state.discovery, builder)
}
