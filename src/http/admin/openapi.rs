//! The OpenAPI 3.1 description of the admin API, built once from the
//! operation table below. A test calls every operation listed here, so the
//! document and the routes cannot drift apart.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

/// One documented operation.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Request body schema name, if any.
    pub body: Option<&'static str>,
    /// Success status and response schema name (`None`: no body).
    pub status: u16,
    pub response: Option<&'static str>,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        body,
        status,
        response,
    }
}

pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/clients",
        "List clients by name, a page at a time (?limit=1..1000, default 100; ?cursor= a previous page's next_cursor)",
        None,
        200,
        Some("ClientList"),
    ),
    op(
        "post",
        "/clients",
        "Register a client (the secret is in this response only)",
        Some("ClientInput"),
        201,
        Some("IssuedClient"),
    ),
    op(
        "get",
        "/clients/{client_id}",
        "Show a client (with an ETag header)",
        None,
        200,
        Some("Client"),
    ),
    op(
        "patch",
        "/clients/{client_id}",
        "Change a client (absent fields keep their value; locked clients refuse; If-Match: an ETag from GET, 412 if the client changed since; answers the new ETag)",
        Some("ClientChanges"),
        200,
        Some("Client"),
    ),
    op(
        "delete",
        "/clients/{client_id}",
        "Delete a client, its grants, tokens and consents (If-Match: an ETag from GET, 412 if the client changed since)",
        None,
        204,
        None,
    ),
    op(
        "post",
        "/clients/{client_id}/secret",
        "Issue a new secret (the old one stops working)",
        None,
        200,
        Some("IssuedClient"),
    ),
    op(
        "get",
        "/clients/{client_id}/logout-deliveries",
        "Back-channel logout delivery status: pending, last success, last failure and reason, recent logout tokens",
        None,
        200,
        Some("DeliveryStatus"),
    ),
    op(
        "get",
        "/scopes",
        "List built-in and custom scopes",
        None,
        200,
        Some("ScopeList"),
    ),
    op(
        "post",
        "/scopes",
        "Define a custom scope",
        Some("NewScope"),
        201,
        Some("Scope"),
    ),
    op(
        "put",
        "/scopes/{name}",
        "Change a custom scope's description, groups and machine_grantable flag",
        Some("ScopeBody"),
        200,
        Some("Scope"),
    ),
    op(
        "delete",
        "/scopes/{name}",
        "Delete a custom scope no client is allowed",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/users",
        "Search users (q, limit, offset)",
        None,
        200,
        Some("UserPage"),
    ),
    op(
        "post",
        "/users",
        "Create a user",
        Some("NewUser"),
        201,
        Some("User"),
    ),
    op(
        "get",
        "/users/{username}",
        "Show a user and their groups",
        None,
        200,
        Some("User"),
    ),
    op(
        "patch",
        "/users/{username}",
        "Change a user; disabled=true ends sessions and revokes grants",
        Some("UserChanges"),
        200,
        Some("User"),
    ),
    op(
        "delete",
        "/users/{username}",
        "Delete a user",
        None,
        204,
        None,
    ),
    op(
        "put",
        "/users/{username}/password",
        "Set a user's password (ends their sessions)",
        Some("Password"),
        204,
        None,
    ),
    op(
        "put",
        "/users/{username}/groups",
        "Replace a user's groups",
        Some("Groups"),
        200,
        Some("User"),
    ),
    op(
        "get",
        "/users/{username}/sessions",
        "A user's browser sessions (signed in, last seen, IP, browser)",
        None,
        200,
        Some("SessionList"),
    ),
    op(
        "delete",
        "/users/{username}/sessions",
        "End all of a user's sessions; apps with back-channel logout are told",
        None,
        200,
        Some("Ended"),
    ),
    op(
        "get",
        "/users/{username}/mfa",
        "A user's second factors (authenticator app, recovery codes left and used; never a secret)",
        None,
        200,
        Some("Factors"),
    ),
    op(
        "delete",
        "/users/{username}/mfa",
        "Reset a user's second factors and end their sessions (audited)",
        None,
        200,
        Some("MfaReset"),
    ),
    op(
        "get",
        "/users/{username}/tokens",
        "A user's personal access tokens (not revoked; never the tokens themselves)",
        None,
        200,
        Some("TokenList"),
    ),
    op(
        "post",
        "/users/{username}/tokens",
        "Create a personal access token for a user (the token is in this response only)",
        Some("NewToken"),
        201,
        Some("IssuedToken"),
    ),
    op(
        "delete",
        "/users/{username}/tokens/{token_id}",
        "Revoke one of a user's personal access tokens",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/groups",
        "List groups with member counts",
        None,
        200,
        Some("GroupList"),
    ),
    op(
        "post",
        "/groups",
        "Create a group",
        Some("GroupName"),
        201,
        Some("Group"),
    ),
    op(
        "patch",
        "/groups/{name}",
        "Rename a group",
        Some("GroupName"),
        200,
        Some("Group"),
    ),
    op(
        "delete",
        "/groups/{name}",
        "Delete a group",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/groups/{name}/members",
        "A group's usernames",
        None,
        200,
        Some("StringList"),
    ),
    op(
        "get",
        "/keys",
        "List signing keys with their state",
        None,
        200,
        Some("KeyList"),
    ),
    op(
        "post",
        "/keys/rotate",
        "Create a new signing key (now, or after the pre-publication delay)",
        Some("Rotate"),
        201,
        Some("Rotated"),
    ),
    op(
        "post",
        "/keys/{kid}/retire",
        "Retire a key (it stays published until its tokens expire); 409 if its successor is still inside the pre-publication delay, unless ?force=true",
        None,
        204,
        None,
    ),
    op(
        "post",
        "/keys/{kid}/revoke",
        "Revoke a key at once (its tokens stop verifying)",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/audit",
        "Audit log, newest first (actor, action prefix, target, since RFC 3339; ?limit=1..1000, default 100; ?cursor= a previous page's next_cursor)",
        None,
        200,
        Some("AuditList"),
    ),
    op(
        "post",
        "/initial-access-tokens",
        "Issue an initial access token for /register (shown once)",
        Some("InitialTokenRequest"),
        201,
        Some("InitialToken"),
    ),
];

fn string_list() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn schemas() -> Value {
    let s = json!({"type": "string"});
    let b = json!({"type": "boolean"});
    let i = json!({"type": "integer"});
    let factors = json!({"type": "object", "properties": {
        "totp": {"type": ["object", "null"], "properties": {
            "confirmed": b, "created_at": s, "last_used_at": {"type": ["string", "null"]}}},
        "recovery_codes": i, "recovery_codes_left": i, "recovery_codes_used": string_list()}});
    let mfa_reset = json!({"type": "object", "properties": {"had_factor": b, "sessions_ended": i}});
    let t = json!({"type": "string", "format": "date-time"});
    let client = json!({"type": "object", "properties": {
        "client_id": s, "name": s, "client_type": {"enum": ["public", "confidential"]},
        "redirect_uris": string_list(), "post_logout_redirect_uris": string_list(),
        "scopes": string_list(), "grant_types": string_list(), "first_party": b, "require_mfa": b,
        "audiences": string_list(), "id_token_alg": {"type": ["string", "null"]},
            "resource_audiences": string_list(), "backchannel_logout_uri": {"type": ["string", "null"]},
            "backchannel_logout_session_required": b,
        "locked": b, "created_at": t, "updated_at": t}});
    let user = json!({"type": "object", "properties": {
        "id": s, "username": s, "email": {"type": ["string", "null"]}, "email_verified": b,
        "name": {"type": ["string", "null"]}, "given_name": {"type": ["string", "null"]},
        "family_name": {"type": ["string", "null"]}, "picture": {"type": ["string", "null"]},
        "locale": {"type": ["string", "null"]}, "is_admin": b, "disabled": b, "has_password": b,
        "created_at": t, "updated_at": t, "groups": string_list()}});
    let scope = json!({"type": "object", "properties": {
        "name": s, "description": s, "groups": string_list(), "builtin": b,
        "machine_grantable": b}});
    let group = json!({"type": "object", "properties": {"name": s, "members": i, "created_at": t}});
    let key = json!({"type": "object", "properties": {
        "kid": s, "alg": {"enum": ["RS256", "PS256", "ES256", "EdDSA"]},
        "state": {"enum": ["next", "active", "retired"]}, "created_at": t, "activate_after": t,
        "activated_at": {"type": ["string", "null"]}, "retired_at": {"type": ["string", "null"]},
        "remove_after": {"type": ["string", "null"]}}});
    let opt_t = json!({"type": ["string", "null"], "format": "date-time"});
    let opt_s = json!({"type": ["string", "null"]});
    let delivery = json!({"type": "object", "properties": {
        "id": s, "sid": s, "user_id": s, "state": {"enum": ["pending", "delivered", "gave_up"]},
        "attempts": i, "created_at": t, "next_attempt_at": opt_t, "delivered_at": opt_t,
        "gave_up_at": opt_t, "last_error": opt_s}});
    let session = json!({"type": "object", "properties": {
        "sid": s, "current": b, "ip": opt_s, "user_agent": opt_s, "created_at": t,
        "last_seen_at": t}});
    let token = json!({"type": "object", "properties": {
        "id": s, "name": s, "hint": s, "scopes": string_list(), "created_at": t,
        "expires_at": t, "last_used_at": opt_t, "expired": b}});
    let audit = json!({"type": "object", "properties": {
        "id": s, "at": t, "actor": s, "action": s, "target": s,
        "ip": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}}});
    let mut schemas = json!({
        "Error": {"type": "object", "required": ["error", "error_description"], "properties": {
            "error": s, "error_description": s}},
        "Client": client,
        "ClientList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Client"}},
            "next_cursor": {"type": ["string", "null"]}}},
        "IssuedClient": {"allOf": [{"$ref": "#/components/schemas/Client"},
            {"type": "object", "properties": {"client_secret": s}}]},
        "ClientInput": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": s, "redirect_uris": string_list(), "post_logout_redirect_uris": string_list(),
            "scopes": string_list(), "grant_types": string_list(), "public": b, "first_party": b, "require_mfa": b,
            "audiences": string_list(), "id_token_alg": {"type": ["string", "null"]},
            "resource_audiences": string_list(), "backchannel_logout_uri": {"type": ["string", "null"]},
            "backchannel_logout_session_required": b}},
        "ClientChanges": {"type": "object", "additionalProperties": false, "properties": {
            "name": s, "redirect_uris": string_list(), "post_logout_redirect_uris": string_list(),
            "scopes": string_list(), "grant_types": string_list(), "first_party": b, "require_mfa": b,
            "audiences": string_list(), "id_token_alg": {"type": ["string", "null"]},
            "resource_audiences": string_list(), "backchannel_logout_uri": {"type": ["string", "null"]},
            "backchannel_logout_session_required": b}},
        "Scope": scope,
        "ScopeList": {"type": "array", "items": {"$ref": "#/components/schemas/Scope"}},
        "NewScope": {"type": "object", "required": ["name", "description"], "additionalProperties": false,
            "properties": {"name": s, "description": s, "groups": string_list(), "machine_grantable": b}},
        "ScopeBody": {"type": "object", "required": ["description"], "additionalProperties": false,
            "properties": {"description": s, "groups": string_list(), "machine_grantable": b}},
        "User": user,
        "UserPage": {"type": "object", "properties": {
            "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
            "total": i, "limit": i, "offset": i}},
        "NewUser": {"type": "object", "required": ["username"], "additionalProperties": false, "properties": {
            "username": s, "password": s, "email": s, "email_verified": b, "name": s,
            "given_name": s, "family_name": s, "picture": s, "locale": s, "is_admin": b,
            "groups": string_list()}},
        "UserChanges": {"type": "object", "additionalProperties": false, "properties": {
            "email": s, "email_verified": b, "name": s, "given_name": s, "family_name": s,
            "picture": s, "locale": s, "is_admin": b, "disabled": b}},
        "Password": {"type": "object", "required": ["password"], "additionalProperties": false,
            "properties": {"password": s}},
        "Groups": {"type": "object", "required": ["groups"], "additionalProperties": false,
            "properties": {"groups": string_list()}},
        "Group": group,
        "GroupList": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}},
        "GroupName": {"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": s}},
        "StringList": string_list(),
        "Key": key,
        "KeyList": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}},
        "Rotate": {"type": "object", "additionalProperties": false, "properties": {
            "alg": {"enum": ["RS256", "PS256", "ES256", "EdDSA"]}, "immediately": b}},
        "Rotated": {"type": "object", "properties": {"kid": s, "alg": s}},
        "AuditEntry": audit,
        "AuditList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
            "next_cursor": {"type": ["string", "null"]}}},
        "DeliveryStatus": {"type": "object", "properties": {
            "client_id": s, "backchannel_logout_uri": opt_s, "pending": i, "given_up": i,
            "last_success_at": opt_t, "last_failure_at": opt_t, "last_failure": opt_s,
            "recent": {"type": "array", "items": delivery}}},
        "SessionList": {"type": "array", "items": session},
        "Ended": {"type": "object", "properties": {
            "sessions": i, "logout_tokens": i, "grants_revoked": i}},
        "Token": token,
        "TokenList": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}},
        "NewToken": {"type": "object", "required": ["name", "scopes", "expires_in_days"],
            "additionalProperties": false, "properties": {
            "name": s, "scopes": string_list(), "expires_in_days": i}},
        "IssuedToken": {"allOf": [{"$ref": "#/components/schemas/Token"},
            {"type": "object", "properties": {"token": s}}]},
        "InitialTokenRequest": {"type": "object", "additionalProperties": false, "properties": {
            "expires_in": i, "max_uses": i}},
        "InitialToken": {"type": "object", "properties": {
            "initial_access_token": s, "expires_at": t, "max_uses": i}},
    });
    // Added after: one more member would overflow the macro's recursion.
    schemas["Factors"] = factors;
    schemas["MfaReset"] = mfa_reset;
    schemas
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The document for an API served at `issuer`.
pub fn build(issuer: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for o in OPERATIONS {
        let mut operation = json!({
            "summary": o.summary,
            "security": [{"bearer": ["latchkey:admin"]}],
            "responses": {
                "400": error_response("Invalid input; nothing changed"),
                "401": error_response("Missing or invalid bearer token"),
                "403": error_response("The token lacks latchkey:admin, or the object is locked"),
                "404": error_response("No such object"),
                "409": error_response("Conflicts with the current state"),
            }
        });
        let ok = match o.response {
            Some(schema) => json!({"description": "Success", "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
            None => json!({"description": "Success"}),
        };
        operation["responses"][o.status.to_string()] = ok;
        if let Some(schema) = o.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        let entry = paths
            .entry(o.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Latchkey admin API",
            "version": "1",
            "description": "Manage clients, scopes, users, groups, signing keys and the audit log. \
                Authenticate with a Latchkey access token carrying the latchkey:admin scope."
        },
        "servers": [{"url": format!("{issuer}/admin/api/v1")}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    })
}

/// `GET /admin/api/v1/openapi.json` (public: it describes, it grants
/// nothing). Built per request: it is small and rarely fetched.
pub async fn document(state: web::Data<crate::state::AppState>) -> HttpResponse {
    let body = build(&state.config.issuer).to_string();
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}
