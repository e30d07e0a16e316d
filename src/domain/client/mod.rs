//! Client registrations: names, redirect URIs, grant types, and the rules
//! that tie them together (RFC 6749 3.1.2, RFC 8252, RFC 9700 2.1).

use std::fmt;
use std::str::FromStr;

mod auth_method;
mod uri;

pub use auth_method::TokenAuthMethod;

pub use uri::{
    AUDIENCES_MAX, is_loopback_host, redirect_destination, refuse_private_destination,
    validate_backchannel_logout_uri, validate_redirect_uri,
};
use uri::{audience_list, uri_list};

use super::alg::SigningAlg;
use super::scope::ScopeSet;
use super::{Invalid, text};

pub const CLIENT_ID_MAX: usize = 128;
pub const CLIENT_NAME_MAX: usize = 200;
pub const REDIRECT_URI_MAX: usize = 2048;
pub const REDIRECT_URIS_MAX: usize = 32;

/// The out-of-band redirect: the code is shown on a page to copy.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

/// A client identifier: printable ASCII without spaces, 1..=128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > CLIENT_ID_MAX {
            return Err(Invalid::new(
                "client_id",
                format!("1 to {CLIENT_ID_MAX} characters"),
            ));
        }
        // RFC 6749 A.1: VSCHAR; we also forbid space and ':' (Basic auth).
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b':') {
            return Err(Invalid::new(
                "client_id",
                "printable ASCII without spaces or ':'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn client_name(raw: &str) -> Result<String, Invalid> {
    text::bounded("name", raw, CLIENT_NAME_MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
    /// RFC 8693: a confidential client trades a user's access token for
    /// one it may use itself. Set by administrators only.
    TokenExchange,
    /// Legacy (RFC 9700 2.1.2): tokens straight from `/authorize`. Named
    /// as RFC 7591 2 names it.
    Implicit,
    /// Legacy (RFC 9700 2.4): the resource owner password grant.
    Password,
}

impl GrantType {
    pub const ALL: [GrantType; 7] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
        GrantType::Implicit,
        GrantType::Password,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
        }
    }

    /// Grants only an administrator may allow a client (console, admin
    /// API, CLI, `[[clients]]`), never dynamic registration: the legacy
    /// ones, which also work only while `[legacy]` turns them on, and
    /// token exchange, which lets a service act for users.
    pub fn admin_only(self) -> bool {
        matches!(
            self,
            GrantType::Implicit | GrantType::Password | GrantType::TokenExchange
        )
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    "grant_type",
                    format!(
                        "unknown grant type {s:?} (expected one of: {})",
                        GrantType::ALL.map(GrantType::as_str).join(", ")
                    ),
                )
            })
    }
}

/// Confidential clients authenticate with a secret; public ones cannot keep
/// one (native and browser apps) and must use PKCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Confidential,
    Public,
}

/// A validated set of client settings shared by create and update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_scopes: ScopeSet,
    pub grant_types: Vec<GrantType>,
    pub kind: ClientKind,
    pub first_party: bool,
    /// Resource indicators (RFC 8707) this client may ask tokens for; the
    /// first is the default `aud` of its access tokens.
    pub audiences: Vec<String>,
    /// `id_token_signed_response_alg`; `None` uses the server default.
    pub id_token_alg: Option<SigningAlg>,
    /// Audiences this client serves as a resource server: it may
    /// introspect access tokens whose `aud` names one of them. Set by
    /// admins only (never through dynamic registration).
    pub resource_audiences: Vec<String>,
    /// Back-Channel Logout 1.0: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// The client requires `sid` in logout tokens (always sent anyway).
    pub backchannel_logout_session_required: bool,
    /// Its tokens are issued only after a sign-in with a second factor.
    pub require_mfa: bool,
}

/// Raw client settings as typed by an admin or a registration request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientInput {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub audiences: Vec<String>,
    pub id_token_alg: Option<String>,
    pub resource_audiences: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub require_mfa: bool,
}

pub const DEFAULT_SCOPES: &str = "openid profile email";
pub const DEFAULT_GRANT_TYPES: [GrantType; 2] =
    [GrantType::AuthorizationCode, GrantType::RefreshToken];

impl ClientSettings {
    pub fn parse(input: &ClientInput) -> Result<Self, Invalid> {
        let kind = if input.public {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        };
        let name = client_name(&input.name)?;
        let redirect_uris = uri_list(&input.redirect_uris, kind, "redirect_uri")?;
        let post_logout_redirect_uris = uri_list(
            &input.post_logout_redirect_uris,
            kind,
            "post_logout_redirect_uri",
        )?;
        if post_logout_redirect_uris
            .iter()
            .any(|u| u == OOB_REDIRECT_URI)
        {
            return Err(Invalid::new(
                "post_logout_redirect_uri",
                "the out-of-band URN is not a logout target",
            ));
        }
        let allowed_scopes = if input.scopes.is_empty() {
            ScopeSet::parse(DEFAULT_SCOPES)?
        } else {
            ScopeSet::from_items(input.scopes.iter().map(String::as_str))?
        };
        let mut grant_types = if input.grant_types.is_empty() {
            DEFAULT_GRANT_TYPES.to_vec()
        } else {
            input
                .grant_types
                .iter()
                .map(|g| g.parse())
                .collect::<Result<Vec<_>, _>>()?
        };
        grant_types.sort();
        grant_types.dedup();
        if kind == ClientKind::Public && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(Invalid::new(
                "grant_type",
                "client_credentials needs a confidential client (a public client has no secret)",
            ));
        }
        if kind == ClientKind::Public && grant_types.contains(&GrantType::TokenExchange) {
            return Err(Invalid::new(
                "grant_type",
                "token exchange needs a confidential client (a service that can keep a secret)",
            ));
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
            return Err(Invalid::new(
                "redirect_uri",
                "at least one is needed for the authorization_code grant",
            ));
        }
        legacy_grant_rules(&grant_types, kind, &redirect_uris)?;
        let audiences = audience_list(&input.audiences, "audience")?;
        let resource_audiences = audience_list(&input.resource_audiences, "resource_audience")?;
        let backchannel_logout_uri = input
            .backchannel_logout_uri
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(validate_backchannel_logout_uri)
            .transpose()?;
        let id_token_alg = input
            .id_token_alg
            .as_deref()
            .map(|a| {
                a.parse::<SigningAlg>()
                    .map_err(|e| Invalid::new("id_token_alg", e.to_string()))
            })
            .transpose()?;
        Ok(Self {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            allowed_scopes,
            grant_types,
            kind,
            first_party: input.first_party,
            audiences,
            id_token_alg,
            resource_audiences,
            backchannel_logout_uri,
            backchannel_logout_session_required: input.backchannel_logout_session_required,
            require_mfa: input.require_mfa,
        })
    }
}

/// What the legacy grants need: the password grant a confidential client
/// (RFC 6749 4.3.2 authenticates the client); the implicit flow a redirect
/// URI, and never the out-of-band page (it would show the tokens).
fn legacy_grant_rules(
    grant_types: &[GrantType],
    kind: ClientKind,
    redirect_uris: &[String],
) -> Result<(), Invalid> {
    if kind == ClientKind::Public && grant_types.contains(&GrantType::Password) {
        return Err(Invalid::new(
            "grant_type",
            "password needs a confidential client (it must authenticate with its secret)",
        ));
    }
    if grant_types.contains(&GrantType::Implicit) {
        if redirect_uris.is_empty() {
            return Err(Invalid::new(
                "redirect_uri",
                "at least one is needed for the implicit grant",
            ));
        }
        if redirect_uris.iter().any(|u| u == OOB_REDIRECT_URI) {
            return Err(Invalid::new(
                "redirect_uri",
                "the out-of-band URN cannot be used with the implicit grant",
            ));
        }
    }
    Ok(())
}

/// Refuses an `id_token_alg` the server does not sign with: every token
/// request of such a client would fail. `allowed` is `keys.algorithms`.
pub fn check_id_token_alg(alg: Option<SigningAlg>, allowed: &[SigningAlg]) -> Result<(), Invalid> {
    match alg {
        Some(a) if !allowed.contains(&a) => Err(Invalid::new(
            "id_token_alg",
            format!(
                "{a} is not one of the configured signing algorithms (keys.algorithms: {})",
                allowed
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// A client as stored, decoded into domain types.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub settings: ClientSettings,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
    /// Declared in the configuration file; admins cannot change it.
    pub locked: bool,
    /// SHA-256 of its RFC 7592 registration access token, if it
    /// registered itself.
    pub registration_token_hash: Option<String>,
    /// When its secret was last regenerated, rounded up to the whole
    /// second (see [`secret_changed_at`]).
    pub secret_changed_at: Option<time::OffsetDateTime>,
    /// How it authenticates at the token endpoint, as registered.
    pub token_endpoint_auth_method: TokenAuthMethod,
}

/// The time to record for a secret change at `now`: rounded *up* to the
/// whole second. JWT `iat` is whole seconds, so a token whose `iat` is the
/// change's own second may have been minted just before the change; only
/// from the next whole second on is a token certainly newer. Recording the
/// rounded-up time makes [`Client::issued_after_secret_change`] a plain
/// `iat >= secret_changed_at`: it never accepts a token minted with the old
/// secret, at the cost of refusing tokens minted with the new one during
/// the rest of that second (the client asks again a second later).
/// Accepting the change's own second instead would let a client that
/// mints tokens in a loop keep one minted moments before the change.
pub fn secret_changed_at(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let whole = now.replace_nanosecond(0).unwrap_or(now);
    if whole == now {
        now
    } else {
        whole + time::Duration::SECOND
    }
}

impl Client {
    /// Whether a token the client obtained for itself with `iat` (whole
    /// seconds) postdates its current secret: issued at or after its last
    /// secret change, and not before it was created (a token for an
    /// earlier client with the same id does not count).
    pub fn issued_after_secret_change(&self, iat: i64) -> bool {
        let since = self.secret_changed_at.unwrap_or(self.created_at);
        iat >= since.max(self.created_at).unix_timestamp()
    }

    /// A client as unit tests need one: created at the epoch, no secret,
    /// registered by an administrator.
    #[cfg(test)]
    pub fn unsaved(client_id: &str, settings: ClientSettings) -> Client {
        let settings_kind = settings.kind;
        Client {
            client_id: client_id.into(),
            secret_hash: None,
            settings,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            locked: false,
            registration_token_hash: None,
            secret_changed_at: None,
            token_endpoint_auth_method: TokenAuthMethod::default_for(settings_kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert!(ClientId::parse("my-cli").is_ok());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("a:b").is_err());
        assert!(ClientId::parse("").is_err());
    }

    #[test]
    fn id_token_alg_must_be_configured() {
        use SigningAlg::*;
        assert!(check_id_token_alg(None, &[RS256]).is_ok());
        assert!(check_id_token_alg(Some(ES256), &[RS256, ES256]).is_ok());
        let e = check_id_token_alg(Some(EdDSA), &[ES256, RS256]).unwrap_err();
        assert_eq!(e.field, "id_token_alg");
        assert!(e.problem.contains("EdDSA"), "{e}");
        assert!(e.problem.contains("ES256, RS256"), "{e}");
    }

    #[test]
    fn secret_changes_round_up_to_the_whole_second() {
        let t = |s: i64, ms: i64| {
            time::OffsetDateTime::from_unix_timestamp(s).unwrap() + time::Duration::milliseconds(ms)
        };
        assert_eq!(secret_changed_at(t(100, 0)), t(100, 0));
        assert_eq!(secret_changed_at(t(100, 1)), t(101, 0));
        assert_eq!(secret_changed_at(t(100, 999)), t(101, 0));

        let settings = ClientSettings::parse(&ClientInput {
            name: "App".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .unwrap();
        let mut c = Client {
            client_id: "app".into(),
            secret_hash: None,
            settings,
            created_at: t(50, 0),
            updated_at: t(50, 0),
            locked: false,
            registration_token_hash: None,
            secret_changed_at: None,
            token_endpoint_auth_method: TokenAuthMethod::ClientSecretBasic,
        };
        // Never changed: any token since creation.
        assert!(c.issued_after_secret_change(50));
        assert!(!c.issued_after_secret_change(49));
        // Changed at 100.4: a token of second 100 may predate it.
        c.secret_changed_at = Some(secret_changed_at(t(100, 400)));
        assert!(!c.issued_after_secret_change(99));
        assert!(!c.issued_after_secret_change(100));
        assert!(c.issued_after_secret_change(101));
        // Changed exactly at 100.000: a token of second 100 is not older.
        c.secret_changed_at = Some(secret_changed_at(t(100, 0)));
        assert!(c.issued_after_secret_change(100));
        assert!(!c.issued_after_secret_change(99));
    }

    #[test]
    fn settings_rules() {
        let base = ClientInput {
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Default::default()
        };
        let s = ClientSettings::parse(&base).unwrap();
        assert_eq!(s.grant_types, DEFAULT_GRANT_TYPES.to_vec());
        assert_eq!(s.allowed_scopes.to_string(), "email openid profile");

        let public_cc = ClientInput {
            public: true,
            grant_types: vec!["client_credentials".into()],
            ..base.clone()
        };
        assert!(ClientSettings::parse(&public_cc).is_err());
        let public_exchange = ClientInput {
            public: true,
            grant_types: vec![GrantType::TokenExchange.as_str().into()],
            ..base.clone()
        };
        assert!(ClientSettings::parse(&public_exchange).is_err());

        let no_uri = ClientInput {
            redirect_uris: vec![],
            ..base.clone()
        };
        assert!(ClientSettings::parse(&no_uri).is_err());

        let cc_only = ClientInput {
            redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            ..base.clone()
        };
        assert!(ClientSettings::parse(&cc_only).is_ok());

        let bad_grant = ClientInput {
            grant_types: vec!["hybrid".into()],
            ..base.clone()
        };
        assert!(ClientSettings::parse(&bad_grant).is_err());
    }

    #[test]
    fn legacy_grant_rules() {
        let base = ClientInput {
            name: "Old app".into(),
            redirect_uris: vec!["https://old.example/cb".into()],
            ..Default::default()
        };
        let with = |grants: &[&str], public: bool, uris: &[&str]| ClientInput {
            grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
            public,
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            ..base.clone()
        };
        let cb = ["https://old.example/cb"];
        let s = ClientSettings::parse(&with(&["password", "implicit"], false, &cb)).unwrap();
        assert_eq!(
            s.grant_types,
            vec![GrantType::Implicit, GrantType::Password]
        );
        assert!(s.grant_types.iter().all(|g| g.admin_only()));
        assert!(!GrantType::AuthorizationCode.admin_only());
        // The password grant: confidential clients only; no redirect URI needed.
        assert!(ClientSettings::parse(&with(&["password"], false, &[])).is_ok());
        let e = ClientSettings::parse(&with(&["password"], true, &[])).unwrap_err();
        assert_eq!(e.field, "grant_type");
        // The implicit flow: public clients too, but a redirect URI and no OOB.
        assert!(ClientSettings::parse(&with(&["implicit"], true, &cb)).is_ok());
        let e = ClientSettings::parse(&with(&["implicit"], false, &[])).unwrap_err();
        assert_eq!(e.field, "redirect_uri");
        let oob = [OOB_REDIRECT_URI, "https://old.example/cb"];
        assert!(ClientSettings::parse(&with(&["implicit"], false, &oob)).is_err());
        assert!(ClientSettings::parse(&with(&["authorization_code"], false, &oob)).is_ok());
    }
}
