//! Client addresses: which one to believe behind proxies, and how to key
//! throttling by network rather than by address.

use std::net::{IpAddr, Ipv6Addr};

/// An address or a CIDR block (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an IP address or CIDR block")]
pub struct InvalidBlock(pub String);

impl IpBlock {
    pub fn parse(raw: &str) -> Result<Self, InvalidBlock> {
        let bad = || InvalidBlock(raw.to_owned());
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (raw.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) as the IPv4 they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client behind trusted proxies: `X-Forwarded-For` is read from the
/// right (each proxy appends the address it saw), skipping the proxies in
/// `trusted`; the first address that is not one of them is the client. The
/// left-most entries are whatever the client chose to send, so they are
/// never believed. No usable entry: the socket peer.
pub fn client_behind_proxies(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpBlock]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|b| b.contains(ip));
    // The peer vouches for the right-most entry; each trusted proxy found
    // vouches for the entry left of it.
    let mut client = canonical(peer);
    for entry in forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .rev()
        .map(str::trim)
    {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            return client;
        };
        client = canonical(ip);
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// The throttling key of an address: IPv4 as is, IPv6 by its /64 (one
/// subscriber usually holds a whole /64, so per-address limits on IPv6
/// would be free to dodge).
pub fn throttle_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{net}/64")
        }
    }
}

/// Blocks that are not the public internet: this host, private and
/// shared networks, link-local (`169.254.169.254` is the cloud metadata
/// service), documentation, benchmarking, multicast and reserved ranges
/// (RFC 6890), and their IPv6 counterparts (IPv4-mapped addresses are
/// judged as the IPv4 they are).
const NON_PUBLIC: [&str; 30] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    // IPv4-compatible (deprecated) addresses embed any IPv4 address.
    "::/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:10::/28",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// Whether `ip` is an address on the public internet (see [`NON_PUBLIC`]).
pub fn is_public(ip: IpAddr) -> bool {
    !NON_PUBLIC
        .iter()
        .filter_map(|b| IpBlock::parse(b).ok())
        .any(|b| b.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let b = IpBlock::parse("10.0.0.0/8").unwrap();
        assert!(b.contains(ip("10.1.2.3")) && !b.contains(ip("11.0.0.1")));
        assert!(b.contains(ip("::ffff:10.9.9.9")), "mapped IPv4");
        let one = IpBlock::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = IpBlock::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(
            IpBlock::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("203.0.113.5"))
        );
        assert!(IpBlock::parse("10.0.0.0/33").is_err());
        assert!(IpBlock::parse("nope").is_err());
    }

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let peer = ip("10.0.0.2");
        let trusted = [IpBlock::parse("10.0.0.0/8").unwrap()];
        // The client forged a left-most entry; the proxy appended the real one.
        let xff = ["6.6.6.6, 203.0.113.9"];
        assert_eq!(
            client_behind_proxies(peer, &xff, &trusted),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row.
        let xff = ["6.6.6.6, 203.0.113.9, 10.0.0.7"];
        assert_eq!(
            client_behind_proxies(peer, &xff, &trusted),
            ip("203.0.113.9")
        );
        // Several header lines count as one list.
        let xff = ["6.6.6.6", "203.0.113.9"];
        assert_eq!(
            client_behind_proxies(peer, &xff, &trusted),
            ip("203.0.113.9")
        );
        // With no proxies listed, only the peer's own entry is believed.
        assert_eq!(
            client_behind_proxies(peer, &["6.6.6.6, 198.51.100.4"], &[]),
            ip("198.51.100.4")
        );
        // Garbage stops the walk at the last address we could vouch for.
        assert_eq!(client_behind_proxies(peer, &["junk"], &trusted), peer);
        assert_eq!(client_behind_proxies(peer, &[], &trusted), peer);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:ffff::9")),
            throttle_key(ip("2001:db8:1:2::5"))
        );
        assert_ne!(
            throttle_key(ip("2001:db8:1:3::5")),
            throttle_key(ip("2001:db8:1:2::5"))
        );
        assert_eq!(throttle_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(throttle_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn public_addresses() {
        let public = |a: &str| is_public(a.parse().unwrap());
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(a), "{a}");
        }
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a9fe:a9fe",
        ] {
            assert!(!public(a), "{a}");
        }
        assert!(NON_PUBLIC.iter().all(|b| IpBlock::parse(b).is_ok()));
    }
}
