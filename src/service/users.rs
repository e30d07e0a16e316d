//! User accounts: create, read, change, delete.

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use zeroize::Zeroizing;

use super::password::{NewPasswordHash, PasswordGate};
use super::{ServiceError, ServiceResult, logout};
use crate::clock::{from_db, to_db};
use crate::domain::user::{Email, Profile, ProfileInput, Username};
use crate::store::models::UserRow;
use crate::store::{DbConn, repo};

/// What an admin gives to create a user.
#[derive(Debug, Default)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub profile: ProfileInput<'a>,
    pub is_admin: bool,
}

/// A user as shown to admins (never the password hash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub has_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<UserRow> for UserView {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            username: r.username,
            email: r.email,
            email_verified: r.email_verified,
            name: r.name,
            given_name: r.given_name,
            family_name: r.family_name,
            picture: r.picture,
            locale: r.locale,
            is_admin: r.is_admin,
            disabled: r.disabled,
            has_password: r.password_hash.is_some(),
            created_at: from_db(r.created_at),
            updated_at: from_db(r.updated_at),
        }
    }
}

/// A new user, validated, with its password (if any) hashed: what
/// [`insert`] writes.
#[derive(Debug)]
pub struct PreparedUser {
    username: Username,
    email: Option<Email>,
    email_verified: bool,
    profile: Profile,
    is_admin: bool,
    password: Option<NewPasswordHash>,
}

impl NewUser<'_> {
    /// Username, email and profile, in that order (the password is checked
    /// after them), with no password yet.
    fn validate(&self) -> ServiceResult<PreparedUser> {
        Ok(PreparedUser {
            username: Username::parse(self.username)?,
            email: self.email.map(Email::parse).transpose()?,
            email_verified: self.email_verified,
            profile: Profile::parse(&self.profile)?,
            is_admin: self.is_admin,
            password: None,
        })
    }
}

/// Validates `input`, then checks and hashes the password behind `gate`,
/// holding no database connection: what a request handler does before
/// its audited write ([`insert`]).
pub async fn prepare(
    gate: &PasswordGate,
    input: &NewUser<'_>,
    password_plain: Option<Zeroizing<String>>,
) -> ServiceResult<PreparedUser> {
    let mut user = input.validate()?;
    if let Some(pw) = password_plain {
        user.password = Some(NewPasswordHash::gated(gate, pw).await?);
    }
    Ok(user)
}

/// Writes a [`prepare`]d user. A duplicate username is a `Conflict` and
/// nothing is written.
pub fn insert(
    conn: &mut DbConn,
    user: PreparedUser,
    now: OffsetDateTime,
) -> ServiceResult<UserView> {
    let now = to_db(now);
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: user.username.into_inner(),
        email: user.email.map(Email::into_inner),
        email_verified: user.email_verified,
        name: user.profile.name,
        given_name: user.profile.given_name,
        family_name: user.profile.family_name,
        picture: user.profile.picture,
        locale: user.profile.locale,
        password_hash: user.password.map(|p| p.phc().to_owned()),
        is_admin: user.is_admin,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match repo::users::insert(conn, &row) {
        Ok(()) => Ok(row.into()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(ServiceError::Conflict(format!(
            "username {:?} is already taken",
            row.username
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Validates and creates a user, hashing the password on this thread while
/// `conn` is held: for callers with a connection of their own (the CLI,
/// first-start bootstrap, tests). Request handlers use [`prepare`] and
/// [`insert`]. A duplicate username is a `Conflict` and nothing is written.
pub fn create(
    conn: &mut DbConn,
    input: &NewUser<'_>,
    password_plain: Option<&str>,
    now: OffsetDateTime,
) -> ServiceResult<UserView> {
    let mut user = input.validate()?;
    user.password = password_plain.map(NewPasswordHash::now).transpose()?;
    insert(conn, user, now)
}

/// Finds a user by username (case-insensitive input).
pub fn find(conn: &mut DbConn, username: &str) -> ServiceResult<UserRow> {
    let not_found = || ServiceError::NotFound {
        what: "user",
        id: username.to_owned(),
    };
    let name = Username::parse(username).map_err(|_| not_found())?;
    repo::users::by_username(conn, name.as_str())?.ok_or_else(not_found)
}

pub fn show(conn: &mut DbConn, username: &str) -> ServiceResult<UserView> {
    find(conn, username).map(UserView::from)
}

pub fn list(conn: &mut DbConn, limit: i64, offset: i64) -> ServiceResult<Vec<UserView>> {
    Ok(
        repo::users::list(conn, limit.clamp(1, 1000), offset.max(0))?
            .into_iter()
            .map(UserView::from)
            .collect(),
    )
}

/// Sets a new password (an admin's reset), ends the user's sessions and
/// revokes every grant, so no refresh token outlives the old password.
/// The password was checked and hashed beforehand
/// ([`NewPasswordHash::gated`]), so argon2 never runs on `conn`.
pub fn reset_password(
    conn: &mut DbConn,
    username: &str,
    password: &NewPasswordHash,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let user = find(conn, username)?;
    conn.transaction(|conn| {
        repo::users::set_password_hash(conn, &user.id, password.phc(), to_db(now))?;
        logout::end_all_of(conn, &user.id, now)?;
        repo::grants::revoke_for_user(conn, &user.id, None, to_db(now))?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// [`reset_password`] from the plain password, hashed on this thread while
/// `conn` is held: for the CLI and tests.
pub fn set_password(
    conn: &mut DbConn,
    username: &str,
    password_plain: &str,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    reset_password(conn, username, &NewPasswordHash::now(password_plain)?, now)
}

/// Disables or enables an account; disabling ends its sessions and
/// revokes its grants (so every refresh token) at once.
pub fn set_disabled(
    conn: &mut DbConn,
    username: &str,
    disabled: bool,
    now: OffsetDateTime,
) -> ServiceResult<UserView> {
    let user = find(conn, username)?;
    conn.transaction(|conn| {
        repo::users::set_disabled(conn, &user.id, disabled, to_db(now))?;
        if disabled {
            logout::end_all_of(conn, &user.id, now)?;
            repo::grants::revoke_for_user(conn, &user.id, None, to_db(now))?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    show(conn, username)
}

/// Deletes a user, signing their sessions out first (back-channel logout
/// to the apps they used); grants and consents go with the user (foreign
/// key cascade).
pub fn delete(conn: &mut DbConn, username: &str, now: OffsetDateTime) -> ServiceResult<()> {
    let user = find(conn, username)?;
    conn.transaction(|conn| {
        logout::end_all_of(conn, &user.id, now)?;
        repo::users::delete(conn, &user.id)?;
        if user.is_admin && !user.disabled && repo::users::count_active_admins(conn)? == 0 {
            return Err(ServiceError::Conflict(
                "this is the last enabled admin; make someone else an admin first".into(),
            ));
        }
        Ok(())
    })
}

/// A page of users matching a search.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserPage {
    pub users: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// How many users there are.
pub fn count(conn: &mut DbConn) -> ServiceResult<i64> {
    Ok(repo::users::count(conn)?)
}

/// Users whose username, email or name contains `q` (all when empty).
pub fn search(conn: &mut DbConn, q: &str, limit: i64, offset: i64) -> ServiceResult<UserPage> {
    let (limit, offset) = (limit.clamp(1, 1000), offset.max(0));
    let q: String = q.trim().chars().take(200).collect();
    let (rows, total) = repo::users::search(conn, &q, limit, offset)?;
    Ok(UserPage {
        users: rows.into_iter().map(UserView::from).collect(),
        total,
        limit,
        offset,
    })
}

/// Changes an admin may make to a user; `None` keeps the current value.
/// For email and profile fields, an empty string clears the value.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub is_admin: Option<bool>,
    pub disabled: Option<bool>,
}

/// Applies `changes`, all or nothing. Taking away the last enabled
/// admin's rights (demoting or disabling) is a `Conflict`. Disabling ends
/// the user's sessions and revokes their grants.
pub fn update(
    conn: &mut DbConn,
    username: &str,
    changes: &UserChanges,
    now: OffsetDateTime,
) -> ServiceResult<UserView> {
    let user = find(conn, username)?;
    let pick = |new: &Option<String>, old: &Option<String>| -> Option<String> {
        match new {
            None => old.clone(),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v.clone()),
        }
    };
    let email = pick(&changes.email, &user.email)
        .map(|e| Email::parse(&e).map(Email::into_inner))
        .transpose()?;
    let (name, given_name, family_name, picture, locale) = (
        pick(&changes.name, &user.name),
        pick(&changes.given_name, &user.given_name),
        pick(&changes.family_name, &user.family_name),
        pick(&changes.picture, &user.picture),
        pick(&changes.locale, &user.locale),
    );
    let profile = Profile::parse(&ProfileInput {
        name: name.as_deref(),
        given_name: given_name.as_deref(),
        family_name: family_name.as_deref(),
        picture: picture.as_deref(),
        locale: locale.as_deref(),
    })?;
    let email_changed = email != user.email;
    let email_verified = changes
        .email_verified
        .unwrap_or(user.email_verified && !email_changed);
    let is_admin = changes.is_admin.unwrap_or(user.is_admin);
    let disabled = changes.disabled.unwrap_or(user.disabled);
    conn.transaction(|conn| {
        repo::users::set_account(
            conn,
            &user.id,
            email.as_deref(),
            email_verified,
            is_admin,
            to_db(now),
        )?;
        repo::users::set_profile(conn, &user.id, &profile, to_db(now))?;
        if disabled != user.disabled {
            repo::users::set_disabled(conn, &user.id, disabled, to_db(now))?;
            if disabled {
                logout::end_all_of(conn, &user.id, now)?;
                repo::grants::revoke_for_user(conn, &user.id, None, to_db(now))?;
            }
        }
        if user.is_admin
            && !user.disabled
            && (!is_admin || disabled)
            && repo::users::count_active_admins(conn)? == 0
        {
            return Err(ServiceError::Conflict(
                "this is the last enabled admin; make someone else an admin first".into(),
            ));
        }
        Ok(())
    })?;
    show(conn, username)
}
