//! Console: the audit log (`/admin/audit`).

use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;

use super::{Data, admin, finish, read, render};
use crate::service::audit_query::{self, AuditFilter};

pub async fn audit_page(req: HttpRequest, state: Data, q: web::Query<AuditFilter>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let filter = q.into_inner();
            let f = filter.clone();
            let entries = read(&state, "/admin", move |conn| audit_query::list(conn, &f)).await?;
            let mut ctx = Context::new();
            ctx.insert("entries", &entries);
            ctx.insert(
                "filter",
                &serde_json::json!({
                    "actor": filter.actor, "action": filter.action, "target": filter.target,
                }),
            );
            render(&req, &state, "admin/audit.html", ctx, None).await
        }
        .await,
    )
}
