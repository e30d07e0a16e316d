//! Where logout tokens may be sent. A client that registered itself
//! (RFC 7591) chose its own back-channel logout URI, so Latchkey must not
//! become its way into the network Latchkey runs in (SSRF: an internal
//! admin API, `169.254.169.254`, a database's HTTP port). Its deliveries go
//! to public addresses only, checked after DNS resolution, since a public
//! name can resolve to a private address. Clients an administrator
//! registered may use any address: a relying party on the same host or
//! network is normal.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::net::is_public;

/// How a refused name is reported (the delivery's `last_error`).
pub const NOT_PUBLIC: &str = "resolves to no public address";

/// Resolves names as the system does, keeping only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} {NOT_PUBLIC}").into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The two HTTP clients of the delivery worker.
#[derive(Clone)]
pub struct Egress {
    /// For clients an administrator registered.
    any: reqwest::Client,
    /// For self-registered clients: public addresses only.
    public: reqwest::Client,
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
}

impl Egress {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let fail = |e: reqwest::Error| format!("logout delivery HTTP client: {e}");
        Ok(Self {
            any: builder(timeout).build().map_err(fail)?,
            // No proxy from the environment (HTTPS_PROXY …): through a
            // proxy, the proxy resolves the name and the check is lost.
            public: builder(timeout)
                .no_proxy()
                .dns_resolver(std::sync::Arc::new(PublicOnly))
                .build()
                .map_err(fail)?,
        })
    }

    /// The client to POST to `uri` with, or why it may not be reached.
    /// An IP literal never goes through the resolver, so it is checked
    /// here.
    pub fn for_uri(&self, uri: &str, self_registered: bool) -> Result<&reqwest::Client, String> {
        if !self_registered {
            return Ok(&self.any);
        }
        let url = url::Url::parse(uri).map_err(|_| "the back-channel logout URI is not a URL")?;
        let host = url.host().map(|h| h.to_owned());
        let literal = match host {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err("the back-channel logout URI has no host".into()),
        };
        match literal {
            Some(ip) if !is_public(ip) => Err(format!(
                "{ip} is not a public address (a self-registered client's logout URI must be)"
            )),
            _ if url.scheme() != "https" => {
                Err("a self-registered client's logout URI must use https".into())
            }
            _ => Ok(&self.public),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_registered_clients_reach_public_addresses_only() {
        let e = Egress::new(Duration::from_secs(1)).unwrap();
        assert!(e.for_uri("http://127.0.0.1:9/bc", false).is_ok());
        assert!(e.for_uri("https://10.0.0.1/bc", false).is_ok());
        assert!(e.for_uri("https://rp.example/bc", true).is_ok());
        assert!(e.for_uri("https://93.184.216.34/bc", true).is_ok());
        for uri in [
            "http://rp.example/bc",
            "http://127.0.0.1:9/bc",
            "https://169.254.169.254/latest",
            "https://[::1]/bc",
            "https://[::ffff:10.0.0.1]/bc",
        ] {
            assert!(e.for_uri(uri, true).is_err(), "{uri}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let name: Name = "localhost".parse().unwrap();
        let err = match PublicOnly.resolve(name).await {
            Ok(_) => panic!("localhost resolved to a public address"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(NOT_PUBLIC), "{err}");
    }
}
