//! Rows as stored. Domain types live in `crate::domain`; these are plain data.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{
    audit_log, authorization_codes, clients, consents, device_codes, grants, groups,
    initial_access_tokens, logout_delivery_attempts, logout_outbox, mfa_challenges,
    mfa_recovery_codes, mfa_totp, personal_access_tokens, refresh_tokens, scopes, sessions,
    signing_keys, users,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, PartialEq)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
    /// An argon2id PHC string; never logged (see the Debug note in services).
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

impl UserRow {
    /// The claims view that `oidc::claims` releases from.
    pub fn claims(&self) -> crate::domain::user::UserClaims<'_> {
        crate::domain::user::UserClaims {
            sub: &self.id,
            username: &self.username,
            email: self.email.as_deref(),
            email_verified: self.email_verified,
            name: self.name.as_deref(),
            given_name: self.given_name.as_deref(),
            family_name: self.family_name.as_deref(),
            picture: self.picture.as_deref(),
            locale: self.locale.as_deref(),
            updated_at: self.updated_at.assume_utc(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// SHA-256 of the cookie value, hex.
    pub id_hash: String,
    pub user_id: String,
    pub auth_time: PrimitiveDateTime,
    pub created_at: PrimitiveDateTime,
    pub last_seen_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Opaque session id for ID tokens (`sid`); not the cookie secret.
    pub sid: Option<String>,
    /// How the user signed in (RFC 8176 values, space-separated); `None`
    /// for a password (see `domain::mfa::Amr::parse`).
    pub amr: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, PartialEq)]
#[diesel(table_name = clients)]
#[diesel(treat_none_as_null = true)]
pub struct ClientRow {
    pub client_id: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
    pub name: String,
    /// JSON array of strings.
    pub redirect_uris: String,
    /// JSON array of strings.
    pub post_logout_redirect_uris: String,
    /// Space-separated scope tokens.
    pub allowed_scopes: String,
    /// Space-separated grant type names.
    pub grant_types: String,
    pub is_public: bool,
    pub first_party: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    /// JSON array of audiences (RFC 8707 resource indicators); the first is
    /// the default `aud` of this client's access tokens.
    pub audiences: String,
    /// The client's `id_token_signed_response_alg`, if not the default.
    pub id_token_alg: Option<String>,
    /// Declared in the configuration file: not editable by admins.
    pub locked: bool,
    /// SHA-256 of the RFC 7592 registration access token, for clients
    /// that registered themselves.
    pub registration_token_hash: Option<String>,
    /// When the secret was last regenerated, rounded up to the whole
    /// second; `None` if never since creation.
    pub secret_changed_at: Option<PrimitiveDateTime>,
    /// JSON array of audiences this client serves as a resource server:
    /// it may introspect access tokens issued for them.
    pub resource_audiences: String,
    /// Where logout tokens are POSTed (Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// The client requires `sid` in logout tokens (we always send it).
    pub backchannel_logout_session_required: bool,
    /// Tokens only after a sign-in with a second factor.
    pub require_mfa: bool,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
}

#[derive(Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    /// The private JWK, sealed with the key-encryption key.
    pub private_jwk_enc: String,
    pub public_jwk: String,
    pub created_at: PrimitiveDateTime,
    pub activate_after: PrimitiveDateTime,
    pub activated_at: Option<PrimitiveDateTime>,
    pub retired_at: Option<PrimitiveDateTime>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub at: PrimitiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: PrimitiveDateTime,
    pub sid: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub revoked_at: Option<PrimitiveDateTime>,
    /// The RFC 8707 resource the grant is for, if one was asked.
    pub resource: Option<String>,
    /// The `amr` of the sign-in that made the grant (ID tokens on refresh
    /// say the same); `None` for grants made without a sign-in.
    pub amr: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    /// The S256 challenge, when PKCE was used.
    pub code_challenge: Option<String>,
    pub expires_at: PrimitiveDateTime,
    pub used_at: Option<PrimitiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub scope: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub rotated_at: Option<PrimitiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: PrimitiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = groups)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub created_at: PrimitiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = scopes)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    /// Whether a client acting for itself may hold it.
    pub machine_grantable: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = initial_access_tokens)]
pub struct InitialAccessTokenRow {
    pub token_hash: String,
    pub created_by: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub max_uses: i32,
    pub uses: i32,
}

/// A logout token to deliver: one ended session, one participating client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = logout_outbox)]
#[diesel(treat_none_as_null = true)]
pub struct LogoutOutboxRow {
    /// UUIDv7.
    pub id: String,
    pub client_id: String,
    /// The `sub` of the logout token (the user's id).
    pub user_id: String,
    pub sid: String,
    pub created_at: PrimitiveDateTime,
    pub next_attempt_at: PrimitiveDateTime,
    pub attempts: i32,
    /// A worker owns the row until then.
    pub claimed_until: Option<PrimitiveDateTime>,
    pub delivered_at: Option<PrimitiveDateTime>,
    pub gave_up_at: Option<PrimitiveDateTime>,
    pub last_error: Option<String>,
}

/// One delivery attempt's outcome.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = logout_delivery_attempts)]
pub struct LogoutDeliveryAttemptRow {
    pub outbox_id: String,
    pub attempt: i32,
    pub at: PrimitiveDateTime,
    pub http_status: Option<i32>,
    pub delivered: bool,
    pub detail: Option<String>,
}

/// A device authorization request (RFC 8628): pending, then approved
/// (`grant_id`) or denied, then redeemed once. Holds hashes only.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = device_codes)]
pub struct DeviceCodeRow {
    /// SHA-256 of the device code the device polls with.
    pub device_code_hash: String,
    /// SHA-256 of the normalized user code (8 letters, no dash).
    pub user_code_hash: String,
    pub client_id: String,
    /// The scope asked for, within the client's allowed scopes.
    pub scope: String,
    /// The RFC 8707 resource asked for, if any.
    pub resource: Option<String>,
    /// SHA-256 of the refresh token the grant hands out with
    /// `offline_access` (derived from the device code, stored on approval).
    pub refresh_token_hash: String,
    /// Seconds the device must wait between polls; grows on `slow_down`.
    pub interval_secs: i32,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub last_polled_at: Option<PrimitiveDateTime>,
    /// The grant the person approved.
    pub grant_id: Option<String>,
    pub denied_at: Option<PrimitiveDateTime>,
    pub redeemed_at: Option<PrimitiveDateTime>,
}

/// A personal access token: a user's long-lived credential for scripts.
/// Holds the token's hash only, and a hint of 8 characters of it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = personal_access_tokens)]
pub struct PersonalAccessTokenRow {
    /// A UUID, shown to users and admins (to revoke by).
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// SHA-256 of the whole token (prefix included).
    pub token_hash: String,
    /// The first 8 characters after the `lkp_` prefix.
    pub hint: String,
    /// The scopes chosen at creation, space-separated.
    pub scope: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    /// Written at most once a minute (see `repo::personal_access_tokens`).
    pub last_used_at: Option<PrimitiveDateTime>,
    pub revoked_at: Option<PrimitiveDateTime>,
}

/// A user's TOTP authenticator. The seed is sealed (see `service::mfa`).
#[derive(Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = mfa_totp)]
pub struct TotpRow {
    pub user_id: String,
    pub secret_enc: String,
    pub created_at: PrimitiveDateTime,
    /// `None` until a first code confirmed the enrolment.
    pub confirmed_at: Option<PrimitiveDateTime>,
    /// The last TOTP step accepted (no code is accepted twice).
    pub last_step: Option<i32>,
    pub last_used_at: Option<PrimitiveDateTime>,
    /// The SHA-256 of the session that started a pending enrolment: only
    /// that session sees its seed or confirms it.
    pub started_by: Option<String>,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow")
            .field("user_id", &self.user_id)
            .field("secret_enc", &"<sealed>")
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// One recovery code, by its HMAC-SHA-256 (key derived from the KEK).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = mfa_recovery_codes)]
pub struct RecoveryCodeRow {
    pub code_hash: String,
    pub user_id: String,
    pub created_at: PrimitiveDateTime,
    pub used_at: Option<PrimitiveDateTime>,
}

/// A sign-in waiting for its second factor (SHA-256 of the cookie value).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = mfa_challenges)]
pub struct ChallengeRow {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub attempts: i32,
}
