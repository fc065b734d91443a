//! Which peer addresses a node may contact.
//!
//! A peer's address comes from someone else (an admin typing it, later another node naming
//! it), so before the node connects anywhere it checks that the address is a public one:
//! otherwise naming `http://10.0.0.5/` or a DNS name that resolves to `127.0.0.1` would let
//! anyone make the node reach services inside its own network (server-side request
//! forgery). **Rule:** never fetch private-range addresses on a peer's say-so; only the
//! node's admin may allow them (`[federation] allow_private_addresses`, for testing).
//!
//! [`check_peer_url`] parses, normalises and resolves an address and checks *every* address
//! the name resolves to. A name can resolve differently a second later (DNS rebinding), so
//! whoever connects must connect to [`PeerUrl::addresses`], the addresses that were checked,
//! and never resolve the name again on its own.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _};

use url::{Host, Url};

/// A peer address that passed [`check_peer_url`]: normalised, with the addresses it was
/// checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUrl {
    normalized: String,
    host: String,
    port: u16,
    addresses: Vec<SocketAddr>,
}

impl PeerUrl {
    /// The normalised base address, e.g. `https://kith.example.org` or `http://[2001:db8::1]:8080`:
    /// lower-case scheme and host, no default port, no trailing slash. Peers are stored under it.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The host as written in the URL (a DNS name in ASCII form, or an IP address).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when none was written).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every address the host resolved to, all checked. Connect only to these.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }
}

impl std::fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.normalized)
    }
}

/// Why a peer address was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not a URL at all.
    #[error("'{url}' is not a valid address ({reason}); write a peer's address like https://kith.example.org")]
    Invalid {
        /// What was given.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A scheme other than http or https.
    #[error(
        "'{url}' starts with {scheme}:, but a peer's address must start with https:// (or http://)"
    )]
    Scheme {
        /// What was given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// A user name or password in the URL.
    #[error(
        "'{url}' contains a user name or password; a peer's address must not carry credentials"
    )]
    UserInfo {
        /// What was given (credentials included, as typed by the admin).
        url: String,
    },
    /// No host.
    #[error("'{url}' has no host name; write a peer's address like https://kith.example.org")]
    NoHost {
        /// What was given.
        url: String,
    },
    /// A path, query or fragment: a peer is named by its base address only.
    #[error("'{url}' has a path, query or fragment; name a peer by its base address only, like https://kith.example.org")]
    NotBase {
        /// What was given.
        url: String,
    },
    /// The host name could not be resolved.
    #[error("could not look up {host}: {source}. Check the name and this machine's network")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The host name resolved to nothing.
    #[error("{host} resolves to no address; check the name")]
    NoAddresses {
        /// The host name.
        host: String,
    },
    /// The address, or one the name resolves to, is not public.
    #[error("{subject} {address}, {kind}; nodes never contact private addresses on a peer's say-so. An admin can allow this in [federation] for testing (allow_private_addresses = true in kithd.toml)")]
    NotPublic {
        /// "peer.example resolves to" or "the address is".
        subject: String,
        /// The refused address.
        address: IpAddr,
        /// What kind of address it is, e.g. "a private address".
        kind: &'static str,
    },
}

/// Parses and normalises a peer's base address without resolving or classifying it: only
/// http and https, no credentials, a host, and no path, query or fragment. Returns the
/// normalised URL (see [`PeerUrl::as_str`]). Enough for *blocking* an address; to contact one,
/// use [`check_peer_url`].
pub fn normalize_peer_url(url: &str) -> Result<Url, AddressError> {
    let parsed = Url::parse(url.trim()).map_err(|e| AddressError::Invalid {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AddressError::Scheme {
            url: url.to_owned(),
            scheme: parsed.scheme().to_owned(),
        });
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AddressError::UserInfo {
            url: url.to_owned(),
        });
    }
    if parsed.host().is_none() {
        return Err(AddressError::NoHost {
            url: url.to_owned(),
        });
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(AddressError::NotBase {
            url: url.to_owned(),
        });
    }
    Ok(parsed)
}

/// The normalised text of a URL accepted by [`normalize_peer_url`]: its origin,
/// `scheme://host[:port]`.
pub fn normalized_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Checks a peer's address with the system resolver; see [`check_peer_url_with`].
pub fn check_peer_url(url: &str, allow_private: bool) -> Result<PeerUrl, AddressError> {
    check_peer_url_with(url, allow_private, |host, port| {
        (host, port)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
    })
}

/// Checks a peer's address: [`normalize_peer_url`], then an IP-literal host is classified
/// directly and a DNS name is resolved with `resolve(host, port)`; every resolved address must
/// be public (see [`non_public_kind`]) unless `allow_private`.
pub fn check_peer_url_with(
    url: &str,
    allow_private: bool,
    resolve: impl FnOnce(&str, u16) -> io::Result<Vec<IpAddr>>,
) -> Result<PeerUrl, AddressError> {
    let parsed = normalize_peer_url(url)?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let (host, ips, resolved) = match parsed.host() {
        Some(Host::Ipv4(ip)) => (ip.to_string(), vec![IpAddr::V4(ip)], false),
        Some(Host::Ipv6(ip)) => (ip.to_string(), vec![IpAddr::V6(ip)], false),
        Some(Host::Domain(name)) => {
            let ips = resolve(name, port).map_err(|source| AddressError::Resolve {
                host: name.to_owned(),
                source,
            })?;
            (name.to_owned(), ips, true)
        }
        None => {
            return Err(AddressError::NoHost {
                url: url.to_owned(),
            })
        }
    };
    if ips.is_empty() {
        return Err(AddressError::NoAddresses { host });
    }
    if !allow_private {
        for &address in &ips {
            if let Some(kind) = non_public_kind(address) {
                let subject = if resolved {
                    format!("{host} resolves to")
                } else {
                    "the address is".to_owned()
                };
                return Err(AddressError::NotPublic {
                    subject,
                    address,
                    kind,
                });
            }
        }
    }
    let mut addresses: Vec<SocketAddr> = ips.into_iter().map(|ip| (ip, port).into()).collect();
    addresses.dedup();
    Ok(PeerUrl {
        normalized: normalized_text(&parsed),
        host,
        port,
        addresses,
    })
}

/// `None` if `ip` is a public unicast address a node may contact on a peer's say-so;
/// otherwise what kind of address it is, in words ("a loopback address").
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_broadcast() => "the broadcast address",
        (0, _, _) => "an unspecified (\"this network\") address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "a reserved (IETF protocol) address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4-mapped ::ffff:a.b.c.d: the embedded IPv4 address is the one contacted.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated).
    if s[..6] == [0; 6] {
        return v4_kind(embedded(s[6], s[7]));
    }
    // NAT64 64:ff9b::a.b.c.d reaches the embedded IPv4 address; the local-use prefix
    // 64:ff9b:1::/48 is for a site's own translators.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_kind(embedded(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("a local-use NAT64 address");
    }
    // 6to4 2002:a.b.c.d::/48 tunnels to the embedded IPv4 address.
    if s[0] == 0x2002 {
        return v4_kind(embedded(s[1], s[2]));
    }
    // Teredo 2001:0::/32: the client's IPv4 address is stored inverted in the last 32 bits.
    if s[0] == 0x2001 && s[1] == 0 {
        return v4_kind(embedded(!s[6], !s[7]));
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a unique-local (private) address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        0x2001 if s[1] == 0xdb8 => "a documentation address",
        0x3fff if s[1] <= 0x0fff => "a documentation address",
        0x2001 if s[1] == 2 && s[2] == 0 => "a benchmarking address",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard-only address",
        // Everything else outside 2000::/3 is not global unicast.
        0x2000..=0x3fff => return None,
        _ => "a reserved address (not global unicast)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dns(_: &str, _: u16) -> io::Result<Vec<IpAddr>> {
        panic!("an IP-literal host must not be resolved")
    }

    fn refused(url: &str) -> String {
        match check_peer_url_with(url, false, no_dns) {
            Err(e @ AddressError::NotPublic { .. }) => e.to_string(),
            other => panic!("{url} should be refused as not public, got {other:?}"),
        }
    }

    fn kind(ip: &str) -> Option<&'static str> {
        non_public_kind(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2002:808:808::1",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(kind(ip), None, "{ip} is public");
        }
        let peer = check_peer_url_with("HTTPS://8.8.8.8:443/", false, no_dns).unwrap();
        assert_eq!(peer.as_str(), "https://8.8.8.8");
        assert_eq!(peer.port(), 443);
        assert_eq!(peer.addresses(), &["8.8.8.8:443".parse().unwrap()]);
        let peer = check_peer_url_with("http://[2606:4700::1]:8080", false, no_dns).unwrap();
        assert_eq!(peer.as_str(), "http://[2606:4700::1]:8080");
    }

    #[test]
    fn every_ipv4_special_range_is_refused() {
        for (ip, what) in [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.5", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.255", "multicast"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.0.0.8", "IETF"),
            ("240.0.0.1", "reserved"),
        ] {
            let k = kind(ip).unwrap_or_else(|| panic!("{ip} must be refused"));
            assert!(k.contains(what), "{ip}: {k}");
        }
    }

    #[test]
    fn every_ipv6_special_range_is_refused() {
        for (ip, what) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001:2::1", "benchmarking"),
            ("100::1", "discard"),
            ("4000::1", "reserved"),
            // IPv4 embedded in IPv6: the embedded address decides.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.5", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("::10.1.2.3", "private"),
            ("64:ff9b::10.0.0.5", "private"),
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b:1::1", "NAT64"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("2002:a9fe:a9fe::", "link-local"),
            // Teredo with client 10.0.0.5 (stored inverted).
            ("2001:0:4136:e378:8000:63bf:f5ff:fffa", "private"),
        ] {
            let k = kind(ip).unwrap_or_else(|| panic!("{ip} must be refused"));
            assert!(k.contains(what), "{ip}: {k}");
        }
    }

    #[test]
    fn ip_literal_urls_are_classified_without_dns() {
        let msg = refused("http://10.0.0.5:8080");
        assert!(msg.contains("10.0.0.5, a private address"), "{msg}");
        assert!(msg.contains("[federation]"), "{msg}");
        refused("http://127.0.0.1");
        refused("http://[::1]:8080");
        refused("http://[::ffff:7f00:1]/");
        // Odd spellings of 127.0.0.1 are parsed as the address they are.
        refused("http://2130706433/");
        refused("http://0x7f.1/");
        refused("http://0177.0.0.1/");
        refused("https://169.254.169.254/");
        // Allowed by the admin: accepted as is.
        let peer = check_peer_url_with("http://10.0.0.5:8080", true, no_dns).unwrap();
        assert_eq!(peer.as_str(), "http://10.0.0.5:8080");
    }

    #[test]
    fn names_are_resolved_and_every_address_must_be_public() {
        let public = |_: &str, _: u16| Ok(vec!["8.8.8.8".parse().unwrap()]);
        let peer = check_peer_url_with("https://Kith.Example.ORG", false, public).unwrap();
        assert_eq!(peer.as_str(), "https://kith.example.org");
        assert_eq!(peer.host(), "kith.example.org");
        assert_eq!(peer.addresses(), &["8.8.8.8:443".parse().unwrap()]);

        // DNS rebinding: a public-looking name that resolves to a private address.
        let private = |host: &str, port: u16| {
            assert_eq!((host, port), ("peer.example.org", 443));
            Ok(vec!["10.0.0.5".parse().unwrap()])
        };
        let err = check_peer_url_with("https://peer.example.org", false, private).unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer.example.org resolves to 10.0.0.5, a private address; nodes never contact \
             private addresses on a peer's say-so. An admin can allow this in [federation] for \
             testing (allow_private_addresses = true in kithd.toml)"
        );

        // One bad address among good ones is enough to refuse.
        let mixed = |_: &str, _: u16| {
            Ok(vec![
                "8.8.8.8".parse().unwrap(),
                "2606:4700::1".parse().unwrap(),
                "::1".parse().unwrap(),
            ])
        };
        let err = check_peer_url_with("http://peer.example.org:8080", false, mixed).unwrap_err();
        assert!(
            err.to_string().contains("resolves to ::1, a loopback"),
            "{err}"
        );
        let peer = check_peer_url_with("http://peer.example.org:8080", true, mixed).unwrap();
        assert_eq!(peer.addresses().len(), 3);
        assert_eq!(peer.port(), 8080);

        let nothing = |_: &str, _: u16| Ok(vec![]);
        let err = check_peer_url_with("https://peer.example.org", true, nothing).unwrap_err();
        assert!(matches!(err, AddressError::NoAddresses { .. }), "{err}");
        let fails = |_: &str, _: u16| Err(io::Error::other("no such host"));
        let err = check_peer_url_with("https://peer.example.org", false, fails).unwrap_err();
        assert!(err
            .to_string()
            .contains("could not look up peer.example.org"));
    }

    #[test]
    fn malformed_addresses_are_refused_in_words() {
        let check = |url: &str| check_peer_url_with(url, true, no_dns).unwrap_err();
        assert!(matches!(check("not a url"), AddressError::Invalid { .. }));
        assert!(matches!(
            check("ftp://8.8.8.8"),
            AddressError::Scheme { .. }
        ));
        assert!(matches!(
            check("file:///etc/passwd"),
            AddressError::Scheme { .. }
        ));
        assert!(matches!(
            check("https://user:pw@8.8.8.8"),
            AddressError::UserInfo { .. }
        ));
        assert!(matches!(
            check("https://user@8.8.8.8"),
            AddressError::UserInfo { .. }
        ));
        assert!(matches!(
            check("https://8.8.8.8/path"),
            AddressError::NotBase { .. }
        ));
        assert!(matches!(
            check("https://8.8.8.8/?q=1"),
            AddressError::NotBase { .. }
        ));
        assert!(matches!(
            check("https://8.8.8.8/#x"),
            AddressError::NotBase { .. }
        ));
        assert!(check("ftp://8.8.8.8").to_string().contains("https://"));
    }
}
