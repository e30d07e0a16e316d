//! CORS for the endpoints browser apps call (token, userinfo, revocation):
//! only origins listed in `server.cors_origins`, echoed exactly, with
//! preflight answered here. Discovery and JWKS are public (`*`).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::state::AppState;

const CORS_PATHS: &[&str] = &["/token", "/userinfo", "/revoke"];

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = match (&origin, req.app_data::<web::Data<AppState>>()) {
        (Some(o), Some(state)) if CORS_PATHS.contains(&req.path()) => {
            state.config.server.cors_origins.iter().any(|a| a == o)
        }
        _ => false,
    };
    if !allowed {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let origin = HeaderValue::from_str(origin.as_deref().unwrap_or_default()).ok();
    if req.method() == Method::OPTIONS {
        let mut resp = HttpResponse::NoContent();
        resp.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .insert_header((header::VARY, "Origin"));
        if let Some(o) = origin {
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o));
        }
        return Ok(req.into_response(resp.finish()));
    }
    let mut resp = next.call(req).await?.map_into_boxed_body();
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(resp)
}
