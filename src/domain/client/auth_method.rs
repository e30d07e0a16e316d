//! `token_endpoint_auth_method` (RFC 7591 2): how a client authenticates
//! at the token endpoint, as it registered it.

use std::fmt;
use std::str::FromStr;

use super::ClientKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// Public clients: no secret.
    None,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    /// What a client of `kind` that asked for nothing uses (RFC 7591 2:
    /// `client_secret_basic` by default; a public client has no secret).
    pub fn default_for(kind: ClientKind) -> Self {
        match kind {
            ClientKind::Public => Self::None,
            ClientKind::Confidential => Self::ClientSecretBasic,
        }
    }

    /// `self` if it fits a client of `kind`, else that kind's default: a
    /// public client never has a secret method, a confidential one never
    /// `none`.
    pub fn fitting(self, kind: ClientKind) -> Self {
        match (kind, self) {
            (ClientKind::Public, _) => Self::None,
            (ClientKind::Confidential, Self::None) => Self::ClientSecretBasic,
            (ClientKind::Confidential, m) => m,
        }
    }

    /// The client kind this method means.
    pub fn kind(self) -> ClientKind {
        match self {
            Self::None => ClientKind::Public,
            _ => ClientKind::Confidential,
        }
    }
}

impl fmt::Display for TokenAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenAuthMethod {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "none" => Ok(Self::None),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints_and_nothing_else() {
        for m in [
            TokenAuthMethod::ClientSecretBasic,
            TokenAuthMethod::ClientSecretPost,
            TokenAuthMethod::None,
        ] {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        assert!("private_key_jwt".parse::<TokenAuthMethod>().is_err());
        assert!("Client_Secret_Basic".parse::<TokenAuthMethod>().is_err());
    }

    #[test]
    fn a_method_always_fits_the_client_kind() {
        use ClientKind::{Confidential, Public};
        use TokenAuthMethod::*;
        assert_eq!(ClientSecretPost.fitting(Public), None);
        assert_eq!(None.fitting(Confidential), ClientSecretBasic);
        assert_eq!(ClientSecretPost.fitting(Confidential), ClientSecretPost);
        assert_eq!(TokenAuthMethod::default_for(Public), None);
        assert_eq!(
            TokenAuthMethod::default_for(Confidential),
            ClientSecretBasic
        );
        assert_eq!(ClientSecretPost.kind(), Confidential);
        assert_eq!(None.kind(), Public);
    }
}
