//! The admin JSON API, `/admin/api/v1/…`: the console's operations for
//! scripts and tools. Every call needs a bearer token with
//! `latchkey:admin`; every change is audited with the caller and IP, in
//! the same transaction as the change. `openapi.json` describes it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::ApiError;
use super::principal::authenticated;
use crate::domain::audit::Actor;
use crate::domain::client::ClientInput;
use crate::domain::user::ProfileInput;
use crate::http::oidc::response::no_store_json as json;
use crate::keys::SigningAlg;
use crate::service::client_objects;
use crate::service::clients::{self, ClientChanges};
use crate::service::keys::ServerKeys;
use crate::service::password::NewPasswordHash;
use crate::service::scopes::{self, ScopeInput};
use crate::service::users::{self, NewUser, UserChanges, UserView};
use crate::service::{ServiceError, admin, groups};
use crate::state::AppState;
use crate::store::DbConn;

pub(super) type Data = web::Data<AppState>;
pub(super) type Answer = Result<HttpResponse, ApiError>;

/// A read by an authenticated admin.
pub(super) async fn read<T, F>(req: &HttpRequest, state: &AppState, f: F) -> Answer
where
    F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
    T: Serialize + Send + 'static,
{
    authenticated(req)?;
    let v = state.db.run(f).await?;
    Ok(json(StatusCode::OK, &v))
}

/// A change by an authenticated admin, through [`admin::change`]: with
/// `audit`, the audit row opens the transaction and is rolled back with a
/// change that fails.
pub(super) async fn change<T, F>(
    req: &HttpRequest,
    state: &AppState,
    audit: admin::AuditEntry,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConn, &Actor, OffsetDateTime) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let actor = authenticated(req)?;
    admin::change(&state.db, actor, audit, state.clock.now(), f).await
}

// ---- clients ----------------------------------------------------------

/// `?limit=&cursor=` for the list calls (cursor: a `next_cursor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list_clients(req: HttpRequest, state: Data, q: web::Query<PageQuery>) -> Answer {
    let PageQuery { limit, cursor } = q.into_inner();
    read(&req, &state, move |conn| {
        Ok(client_objects::page(conn, cursor.as_deref(), limit)?)
    })
    .await
}

pub async fn get_client(req: HttpRequest, state: Data, id: web::Path<String>) -> Answer {
    authenticated(&req)?;
    let id = id.into_inner();
    let (view, tag) = state
        .db
        .run(move |conn| client_objects::show(conn, &id))
        .await?;
    Ok(super::api_versions::tagged(
        json(StatusCode::OK, &view),
        tag,
    ))
}

pub async fn create_client(req: HttpRequest, state: Data, body: web::Json<ClientInput>) -> Answer {
    let input = body.into_inner();
    let target = input.name.clone();
    let algs = state.config.keys.algorithms.clone();
    let issued = change(
        &req,
        &state,
        Some(("client.create", target)),
        move |conn, _, now| Ok(clients::create(conn, None, &input, &algs, now)?),
    )
    .await?;
    Ok(json(StatusCode::CREATED, &issued))
}

pub async fn update_client(
    req: HttpRequest,
    state: Data,
    id: web::Path<String>,
    body: web::Json<ClientChanges>,
) -> Answer {
    let id = id.into_inner();
    let changes = body.into_inner();
    let cid = id.clone();
    let algs = state.config.keys.algorithms.clone();
    let tag = super::api_versions::if_match(&req);
    let (view, etag) = change(
        &req,
        &state,
        Some(("client.update", id.clone())),
        move |conn, _, now| {
            Ok(client_objects::update(
                conn,
                &cid,
                tag.as_deref(),
                changes,
                &algs,
                now,
            )?)
        },
    )
    .await?;
    state.clients.forget(&id);
    Ok(super::api_versions::tagged(
        json(StatusCode::OK, &view),
        etag,
    ))
}

pub async fn delete_client(req: HttpRequest, state: Data, id: web::Path<String>) -> Answer {
    let id = id.into_inner();
    let cid = id.clone();
    let tag = super::api_versions::if_match(&req);
    change(
        &req,
        &state,
        Some(("client.delete", id.clone())),
        move |conn, _, _| Ok(client_objects::delete(conn, &cid, tag.as_deref())?),
    )
    .await?;
    state.clients.forget(&id);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn rotate_client_secret(req: HttpRequest, state: Data, id: web::Path<String>) -> Answer {
    let id = id.into_inner();
    let cid = id.clone();
    let issued = change(
        &req,
        &state,
        Some(("client.rotate_secret", id.clone())),
        move |conn, _, now| Ok(clients::rotate_secret(conn, &cid, now)?),
    )
    .await?;
    state.clients.forget(&id);
    Ok(json(StatusCode::OK, &issued))
}

// ---- scopes -------------------------------------------------------------

pub async fn list_scopes(req: HttpRequest, state: Data) -> Answer {
    read(&req, &state, |conn| Ok(scopes::list(conn)?)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScope {
    name: String,
    description: String,
    #[serde(default)]
    groups: Vec<String>,
    /// Grantable to clients acting for themselves; off if absent.
    #[serde(default)]
    machine_grantable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    description: String,
    #[serde(default)]
    groups: Vec<String>,
    /// Absent: unchanged.
    #[serde(default)]
    machine_grantable: Option<bool>,
}

pub async fn create_scope(req: HttpRequest, state: Data, body: web::Json<NewScope>) -> Answer {
    let b = body.into_inner();
    let view = change(&req, &state, None, move |conn, actor, now| {
        let input = ScopeInput {
            description: b.description,
            groups: b.groups,
            machine_grantable: b.machine_grantable,
        };
        Ok(scopes::create(conn, &b.name, &input, actor, now)?)
    })
    .await?;
    state.scopes.forget();
    Ok(json(StatusCode::CREATED, &view))
}

pub async fn update_scope(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<ScopeBody>,
) -> Answer {
    let name = name.into_inner();
    let b = body.into_inner();
    let view = change(&req, &state, None, move |conn, actor, now| {
        let input = ScopeInput {
            description: b.description,
            groups: b.groups,
            machine_grantable: b.machine_grantable,
        };
        Ok(scopes::update(conn, &name, &input, actor, now)?)
    })
    .await;
    state.scopes.forget();
    let view = view?;
    Ok(json(StatusCode::OK, &view))
}

pub async fn delete_scope(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    change(&req, &state, None, move |conn, actor, now| {
        Ok(scopes::delete(conn, &name, actor, now)?)
    })
    .await?;
    state.scopes.forget();
    Ok(HttpResponse::NoContent().finish())
}

// ---- users --------------------------------------------------------------

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list_users(req: HttpRequest, state: Data, q: web::Query<UserQuery>) -> Answer {
    let q = q.into_inner();
    read(&req, &state, move |conn| {
        Ok(users::search(
            conn,
            &q.q,
            q.limit.unwrap_or(50),
            q.offset.unwrap_or(0),
        )?)
    })
    .await
}

/// A user with their groups.
#[derive(Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    user: UserView,
    groups: Vec<String>,
}

fn detail(conn: &mut DbConn, username: &str) -> Result<UserDetail, ApiError> {
    let user = users::show(conn, username)?;
    let groups = groups::of_user(conn, &user.id)?;
    Ok(UserDetail { user, groups })
}

pub async fn get_user(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    read(&req, &state, move |conn| detail(conn, &name)).await
}

/// [`change`] for a change that needs slow work first (argon2): the
/// caller is checked, `prepare` runs holding no database connection, then
/// `f(conn, actor, now, prepared)` runs through [`admin::change`].
async fn change_after<P, T, F>(
    req: &HttpRequest,
    state: &AppState,
    prepare: impl Future<Output = Result<P, ServiceError>>,
    audit: admin::AuditEntry,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConn, &Actor, OffsetDateTime, P) -> Result<T, ApiError> + Send + 'static,
    P: Send + 'static,
    T: Send + 'static,
{
    authenticated(req)?;
    let prepared = prepare.await?;
    change(req, state, audit, move |conn, actor, now| {
        f(conn, actor, now, prepared)
    })
    .await
}

/// A new user. Without `password` the account cannot sign in until one
/// is set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    password: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    locale: Option<String>,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    groups: Vec<String>,
}

pub async fn create_user(req: HttpRequest, state: Data, body: web::Json<NewUserBody>) -> Answer {
    let b = body.into_inner();
    let new = NewUser {
        username: &b.username,
        email: b.email.as_deref(),
        email_verified: b.email_verified,
        profile: ProfileInput {
            name: b.name.as_deref(),
            given_name: b.given_name.as_deref(),
            family_name: b.family_name.as_deref(),
            picture: b.picture.as_deref(),
            locale: b.locale.as_deref(),
        },
        is_admin: b.is_admin,
    };
    let password = b.password.map(Zeroizing::new);
    let prepared = users::prepare(&state.password_gate, &new, password);
    let groups = b.groups;
    let created = change_after(
        &req,
        &state,
        prepared,
        Some(("user.create", b.username.clone())),
        move |conn, actor, now, user| {
            let user = users::insert(conn, user, now)?;
            if !groups.is_empty() {
                groups::set_user_groups(conn, &user.username, &groups, actor, now)?;
            }
            detail(conn, &user.username)
        },
    )
    .await?;
    Ok(json(StatusCode::CREATED, &created))
}

pub async fn update_user(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<UserChanges>,
) -> Answer {
    let name = name.into_inner();
    let changes = body.into_inner();
    let updated = change(
        &req,
        &state,
        Some(("user.update", name.clone())),
        move |conn, _, now| {
            users::update(conn, &name, &changes, now)?;
            detail(conn, &name)
        },
    )
    .await?;
    Ok(json(StatusCode::OK, &updated))
}

pub async fn delete_user(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    change(
        &req,
        &state,
        Some(("user.delete", name.clone())),
        move |conn, _, now| Ok(users::delete(conn, &name, now)?),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
}

pub async fn set_user_password(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<PasswordBody>,
) -> Answer {
    let name = name.into_inner();
    let password = Zeroizing::new(body.into_inner().password);
    change_after(
        &req,
        &state,
        NewPasswordHash::gated(&state.password_gate, password),
        Some(("user.set_password", name.clone())),
        move |conn, _, now, password| Ok(users::reset_password(conn, &name, &password, now)?),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsBody {
    groups: Vec<String>,
}

pub async fn set_user_groups(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<GroupsBody>,
) -> Answer {
    let name = name.into_inner();
    let names = body.into_inner().groups;
    let updated = change(&req, &state, None, move |conn, actor, now| {
        groups::set_user_groups(conn, &name, &names, actor, now)?;
        detail(conn, &name)
    })
    .await?;
    Ok(json(StatusCode::OK, &updated))
}

// ---- groups -------------------------------------------------------------

pub async fn list_groups(req: HttpRequest, state: Data) -> Answer {
    read(&req, &state, |conn| Ok(groups::list(conn)?)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    name: String,
}

pub async fn create_group(req: HttpRequest, state: Data, body: web::Json<GroupBody>) -> Answer {
    let name = body.into_inner().name;
    let created = change(&req, &state, None, move |conn, actor, now| {
        Ok(groups::create(conn, &name, actor, now)?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &created))
}

pub async fn rename_group(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<GroupBody>,
) -> Answer {
    let name = name.into_inner();
    let new_name = body.into_inner().name;
    let members = change(&req, &state, None, move |conn, actor, now| {
        groups::rename(conn, &name, &new_name, actor, now)?;
        Ok(groups::list(conn)?
            .into_iter()
            .find(|g| g.name == new_name.trim()))
    })
    .await?;
    Ok(json(StatusCode::OK, &members))
}

pub async fn delete_group(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    change(&req, &state, None, move |conn, actor, now| {
        Ok(groups::delete(conn, &name, actor, now)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn group_members(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    read(&req, &state, move |conn| Ok(groups::members(conn, &name)?)).await
}

// ---- signing keys -------------------------------------------------------

pub async fn list_keys(req: HttpRequest, state: Data) -> Answer {
    authenticated(&req)?;
    let keys = ServerKeys::new(&state.db, &state.keys).list().await?;
    Ok(json(StatusCode::OK, &keys))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    alg: Option<String>,
    /// Sign with the new key now (the old one retires), instead of after
    /// the pre-publication delay.
    #[serde(default)]
    immediately: bool,
}

pub async fn rotate_key(req: HttpRequest, state: Data, body: web::Json<RotateBody>) -> Answer {
    let b = body.into_inner();
    let alg = match b.alg.as_deref() {
        None => state.keys.access_token_alg(),
        Some(a) => a
            .parse::<SigningAlg>()
            .map_err(|e| ApiError::invalid_request(e.to_string()))?,
    };
    let actor = authenticated(&req)?;
    let kid = ServerKeys::new(&state.db, &state.keys)
        .rotate(actor, alg, b.immediately, state.clock.now())
        .await?;
    let out = serde_json::json!({ "kid": kid, "alg": alg.as_str() });
    Ok(json(StatusCode::CREATED, &out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireQuery {
    /// Promote a successor still inside its pre-publication delay.
    #[serde(default)]
    force: bool,
}

pub async fn retire_key(
    req: HttpRequest,
    state: Data,
    kid: web::Path<String>,
    q: web::Query<RetireQuery>,
) -> Answer {
    let actor = authenticated(&req)?;
    ServerKeys::new(&state.db, &state.keys)
        .retire(actor, kid.into_inner(), state.clock.now(), q.force)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn revoke_key(req: HttpRequest, state: Data, kid: web::Path<String>) -> Answer {
    let actor = authenticated(&req)?;
    ServerKeys::new(&state.db, &state.keys)
        .revoke(actor, kid.into_inner(), state.clock.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
