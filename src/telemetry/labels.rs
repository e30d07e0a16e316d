//! The label sets of `telemetry::metrics`: typed, and each value from a
//! fixed set (or the route pattern table), so no request can add series.

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};

use crate::domain::client::GrantType;

/// The route label of a request no route matched (404s, probes).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The grant type label: the short name of a grant the server knows,
/// `none` without a `grant_type`, `other` for anything else (never the
/// raw value: a client could send anything).
pub fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        None => "none",
        Some(raw) => match raw.parse::<GrantType>() {
            Ok(GrantType::AuthorizationCode) => "authorization_code",
            Ok(GrantType::RefreshToken) => "refresh_token",
            Ok(GrantType::ClientCredentials) => "client_credentials",
            Ok(GrantType::DeviceCode) => "device_code",
            Ok(GrantType::TokenExchange) => "token_exchange",
            Ok(GrantType::Password) => "password",
            Ok(GrantType::Implicit) | Err(_) => "other",
        },
    }
}

/// The method label: the standard methods by name, anything else `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

label_enum!(
    /// How a sign-in attempt ended.
    SignInResult {
        Success => "success",
        Failure => "failure",
        Throttled => "throttled",
        SecondFactor => "second_factor",
    }
);

label_enum!(
    /// What the person signed in with.
    SignInMethod {
        Password => "password",
    }
);

label_enum!(
    /// How a dynamic client registration ended: created, or the error
    /// code answered.
    RegistrationResult {
        Created => "created",
        InvalidRedirectUri => "invalid_redirect_uri",
        InvalidClientMetadata => "invalid_client_metadata",
        InvalidToken => "invalid_token",
        Throttled => "throttled",
        Error => "error",
    }
);

label_enum!(
    /// A signing key lifecycle step: the scheduled ones (`generate`,
    /// `activate`, `retire`, `remove`) and an administrator's (`rotate`,
    /// `retire_manual`, `revoke`).
    KeyEvent {
        Generate => "generate",
        Activate => "activate",
        Retire => "retire",
        Remove => "remove",
        Rotate => "rotate",
        RetireManual => "retire_manual",
        Revoke => "revoke",
    }
);

label_enum!(
    /// One back-channel logout delivery attempt: accepted by the relying
    /// party, failed (retried later, or given up after the last try), or
    /// abandoned unsent (too old, no URI any more, a refused address).
    DeliveryResult {
        Delivered => "delivered",
        Failed => "failed",
        Abandoned => "abandoned",
    }
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct SignInLabels {
    pub result: &'static str,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct EventLabel {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct AlgLabel {
    pub alg: &'static str,
}

/// `client_id` appears only when set (`metrics.client_id_labels`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) struct TokenLabels {
    pub grant_type: &'static str,
    pub alg: &'static str,
    pub client_id: Option<String>,
}

impl EncodeLabelSet for TokenLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabel::encode(&("grant_type", self.grant_type), encoder.encode_label())?;
        EncodeLabel::encode(&("alg", self.alg), encoder.encode_label())?;
        if let Some(id) = &self.client_id {
            EncodeLabel::encode(&("client_id", id.as_str()), encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) struct TokenErrorLabels {
    pub grant_type: &'static str,
    pub error: &'static str,
    pub client_id: Option<String>,
}

impl EncodeLabelSet for TokenErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabel::encode(&("grant_type", self.grant_type), encoder.encode_label())?;
        EncodeLabel::encode(&("error", self.error), encoder.encode_label())?;
        if let Some(id) = &self.client_id {
            EncodeLabel::encode(&("client_id", id.as_str()), encoder.encode_label())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_labels_never_echo_the_request() {
        assert_eq!(
            grant_label(Some("client_credentials")),
            "client_credentials"
        );
        assert_eq!(
            grant_label(Some("urn:ietf:params:oauth:grant-type:device_code")),
            "device_code"
        );
        assert_eq!(grant_label(Some("implicit")), "other");
        assert_eq!(grant_label(Some("alice's-secret-value")), "other");
        assert_eq!(grant_label(None), "none");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("GET"), "GET");
    }

    #[test]
    fn label_values_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for e in KeyEvent::ALL {
            assert!(seen.insert(e.as_str()));
        }
        assert_eq!(DeliveryResult::ALL.len(), 3);
        assert_eq!(SignInResult::ALL.len(), 4);
    }
}
