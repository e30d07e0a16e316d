//! HTML templates, compiled into the binary so `latchkey` runs from any
//! directory. Names end in `.html`, so tera escapes every value.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use tera::{Context, Tera};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "login_mfa.html",
        include_str!("../../templates/login_mfa.html"),
    ),
    (
        "account_mfa.html",
        include_str!("../../templates/account_mfa.html"),
    ),
    (
        "account_mfa_enrol.html",
        include_str!("../../templates/account_mfa_enrol.html"),
    ),
    (
        "account_mfa_codes.html",
        include_str!("../../templates/account_mfa_codes.html"),
    ),
    (
        "account_mfa_remove.html",
        include_str!("../../templates/account_mfa_remove.html"),
    ),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    ("home.html", include_str!("../../templates/home.html")),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "account_token.html",
        include_str!("../../templates/account_token.html"),
    ),
    (
        "account_token_revoke.html",
        include_str!("../../templates/account_token_revoke.html"),
    ),
    (
        "admin/base.html",
        include_str!("../../templates/admin/base.html"),
    ),
    (
        "admin/home.html",
        include_str!("../../templates/admin/home.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../../templates/admin/clients.html"),
    ),
    (
        "admin/client.html",
        include_str!("../../templates/admin/client.html"),
    ),
    (
        "admin/client_fields.html",
        include_str!("../../templates/admin/client_fields.html"),
    ),
    (
        "admin/secret.html",
        include_str!("../../templates/admin/secret.html"),
    ),
    (
        "admin/scopes.html",
        include_str!("../../templates/admin/scopes.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../templates/admin/users.html"),
    ),
    (
        "admin/user.html",
        include_str!("../../templates/admin/user.html"),
    ),
    (
        "admin/user_mfa_reset.html",
        include_str!("../../templates/admin/user_mfa_reset.html"),
    ),
    (
        "admin/groups.html",
        include_str!("../../templates/admin/groups.html"),
    ),
    (
        "admin/keys.html",
        include_str!("../../templates/admin/keys.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("device.html", include_str!("../../templates/device.html")),
    (
        "device_done.html",
        include_str!("../../templates/device_done.html"),
    ),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
    ("oob.html", include_str!("../../templates/oob.html")),
];

/// The inline script of form_post.html, allowed by its CSP hash.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

pub const STYLESHEET: &str = include_str!("../../templates/latchkey.css");

fn engine() -> Result<&'static Tera, String> {
    static ENGINE: OnceLock<Result<Tera, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut tera = Tera::default();
            tera.add_raw_templates(TEMPLATES.iter().copied())
                .map_err(|e| format!("{e:?}"))?;
            Ok(tera)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks that every template parses (called at start and in tests).
pub fn check() -> Result<(), String> {
    engine().map(|_| ())
}

/// Renders a template to a string.
pub fn render(name: &str, ctx: &Context) -> Result<String, String> {
    engine().and_then(|t| t.render(name, ctx).map_err(|e| format!("{e:?}")))
}

/// Renders a page with the given status. Pages are never cached: they can
/// carry CSRF tokens and personal data.
pub fn page(status: StatusCode, name: &str, ctx: &Context) -> HttpResponse {
    match engine().and_then(|t| t.render(name, ctx).map_err(|e| format!("{e:?}"))) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template rendering failed");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("internal error")
        }
    }
}

/// An error page with a title and one sentence for the person reading it.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    page(status, "error.html", &ctx)
}

/// An error page with a link back to the page the form was on.
pub fn error_page_back(status: StatusCode, title: &str, message: &str, back: &str) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    ctx.insert("back", back);
    page(status, "error.html", &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_escape() {
        check().unwrap();
        let mut ctx = Context::new();
        ctx.insert("title", "<b>x</b>");
        ctx.insert("message", "<script>");
        let html = engine().unwrap().render("error.html", &ctx).unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
