//! Talking to peers over HTTPS and TLS: the certificates this node trusts for `https://`
//! peers, and the HTTP client it reads a peer's node information with before linking.
//!
//! - [`PeerClient::new`] builds, once at start, one rustls configuration (ring backend) that
//!   trusts the Mozilla roots compiled in plus the PEM certificates named in
//!   `[federation] extra_root_certs`. The dialers use it for `wss://` links
//!   ([`PeerClient::tls`]) and the HTTP client below uses the same one, so a peer reachable
//!   over one is reachable over the other.
//! - [`PeerClient::node_info`] fetches `<peer>/.well-known/kith` with `reqwest`: the node's
//!   key and the protocol versions it speaks, a hint checked before dialing (the signed link
//!   handshake is the proof). [`PeerClient::fetch_event`] reads one event by id.
//!
//! **Rule** (as in [`super::address`]): never fetch private-range addresses on a peer's
//! say-so. The base URL a fetch starts from is a [`PeerUrl`], already checked. Every name
//! the client resolves goes through a resolver that refuses names resolving to any
//! non-public address ([`non_public_kind`]); at most [`MAX_REDIRECTS`] redirects are
//! followed, and never to a scheme other than http/https or to an IP-literal host in a
//! non-public range ([`redirect_refusal`]); a redirect to a name meets the resolver. System
//! proxy settings are ignored (a proxy would connect on the node's behalf, unchecked). Only
//! the admin's `allow_private_addresses` lifts the address rule (for tests).

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kith_protocol::event::{Event, EventId};
use kith_protocol::PublicKey;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use url::{Host, Url};

use super::address::{non_public_kind, AddressError, PeerUrl};
use crate::config::FederationConfig;
use crate::http::WELL_KNOWN_PATH;

/// Most redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 3;
/// How long connecting (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one fetch may take in all, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest node-information document read.
pub const MAX_NODE_INFO_BYTES: usize = 64 * 1024;
/// Largest answer to an event fetch (an event's JSON view: the signed event in base64 and
/// its body again as JSON, for the largest event allowed by default).
pub const MAX_EVENT_ANSWER_BYTES: usize = 512 * 1024;

/// Why the node's TLS trust roots or peer HTTP client could not be set up. Stops the node
/// at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The extra root certificate file could not be read.
    #[error("could not read [federation] extra_root_certs = \"{path}\": {error}. Point it at a PEM file of CA certificates, or set it to \"\" to trust only the built-in roots")]
    Read {
        /// The configured path.
        path: String,
        /// The OS error (in the message, so not repeated as a cause).
        error: io::Error,
    },
    /// The file is not PEM, or holds no certificate.
    #[error("[federation] extra_root_certs = \"{path}\" {problem}; it must hold CA certificates in PEM form (-----BEGIN CERTIFICATE----- blocks), or set it to \"\" to trust only the built-in roots")]
    Pem {
        /// The configured path.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A certificate could not be used as a trust root.
    #[error("certificate {index} in [federation] extra_root_certs = \"{path}\" cannot be used as a trust root ({reason}); replace it with the CA's certificate in PEM form")]
    BadRoot {
        /// The configured path.
        path: String,
        /// Which certificate in the file (from 1).
        index: usize,
        /// rustls's complaint.
        reason: String,
    },
    /// rustls or reqwest refused the configuration (should not happen).
    #[error("could not set up TLS for links with peers: {0}")]
    Tls(String),
}

/// Why a fetch from a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The TLS handshake failed (e.g. a certificate this node does not trust).
    #[error("a secure (https) connection to {url} could not be set up ({detail}); if the peer's certificate comes from a private CA, name that CA's certificate in [federation] extra_root_certs")]
    Tls {
        /// What was fetched.
        url: String,
        /// rustls's reason.
        detail: String,
    },
    /// The peer could not be reached, did not answer in time, or redirected somewhere the
    /// node does not follow.
    #[error("could not fetch {url}: {detail}")]
    Unreachable {
        /// What was fetched.
        url: String,
        /// The causes, in words.
        detail: String,
    },
    /// The peer answered with an unexpected HTTP status.
    #[error("{url} answered with HTTP status {status}; is this the address of a Kith node?")]
    Status {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer was larger than allowed.
    #[error("{url} answered with more than {max} bytes; not reading it")]
    TooLarge {
        /// What was fetched.
        url: String,
        /// The bound.
        max: usize,
    },
    /// The answer is not what a Kith node sends.
    #[error("{url} did not answer like a Kith node: {reason}")]
    Invalid {
        /// What was fetched.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl FetchError {
    /// Whether the fetch failed in the TLS handshake.
    pub fn is_tls(&self) -> bool {
        matches!(self, FetchError::Tls { .. })
    }
}

/// What a peer says about itself at `/.well-known/kith` (only the fields the node uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's key.
    pub node: PublicKey,
    /// The protocol versions it speaks (events and links share the version numbers).
    pub protocol_versions: Vec<u64>,
}

impl NodeInfo {
    /// Whether the peer speaks a protocol version this node speaks.
    pub fn speaks_ours(&self) -> bool {
        self.protocol_versions
            .iter()
            .any(|&v| u8::try_from(v).is_ok_and(|v| kith_protocol::SUPPORTED_VERSIONS.contains(&v)))
    }
}

/// Resolves a host name to addresses (blocking); the system resolver in production.
pub type Lookup = Arc<dyn Fn(&str) -> io::Result<Vec<IpAddr>> + Send + Sync>;

/// The TLS configuration and HTTP client for peers, built once at start.
#[derive(Clone)]
pub struct PeerClient {
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").finish_non_exhaustive()
    }
}

impl PeerClient {
    /// Reads `extra_root_certs` (if set) and builds the client, with the system resolver.
    pub fn new(config: &FederationConfig) -> Result<PeerClient, SetupError> {
        PeerClient::with_lookup(
            &config.extra_root_certs,
            config.allow_private_addresses,
            Arc::new(system_lookup),
        )
    }

    /// Like [`PeerClient::new`], resolving names with `lookup` (tests pass a fake).
    pub fn with_lookup(
        extra_root_certs: &str,
        allow_private: bool,
        lookup: Lookup,
    ) -> Result<PeerClient, SetupError> {
        let roots = root_store(extra_root_certs)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .dns_resolver(Arc::new(PublicOnlyResolver {
                allow_private,
                lookup,
            }))
            .redirect(redirect_policy(allow_private))
            .no_proxy()
            // One fetch per dial attempt: keeping idle connections to peers gains nothing.
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("kithd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Tls(describe(&e)))?;
        Ok(PeerClient {
            tls: Arc::new(tls),
            http,
        })
    }

    /// The TLS configuration for `wss://` links (SNI and certificate checks for the URL's
    /// host).
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.tls)
    }

    /// Fetches `<peer>/.well-known/kith`: the peer's key and protocol versions.
    pub async fn node_info(&self, peer: &PeerUrl) -> Result<NodeInfo, FetchError> {
        let url = format!("{}{WELL_KNOWN_PATH}", peer.as_str());
        let (status, body) = self.get(&url, MAX_NODE_INFO_BYTES).await?;
        if status != 200 {
            return Err(FetchError::Status { url, status });
        }
        parse_node_info(&url, &body)
    }

    /// Fetches one event by id from the peer's `GET /events/{id}`: `None` if the peer holds
    /// none (404). The event is decoded and must have the id asked for; its signature and
    /// rules are checked by whoever stores it (`Node::ingest_from_peer`).
    pub async fn fetch_event(
        &self,
        peer: &PeerUrl,
        id: &EventId,
    ) -> Result<Option<Event>, FetchError> {
        let url = format!("{}/events/{id}", peer.as_str());
        let (status, body) = self.get(&url, MAX_EVENT_ANSWER_BYTES).await?;
        match status {
            200 => {}
            404 => return Ok(None),
            status => return Err(FetchError::Status { url, status }),
        }
        let invalid = |reason: String| FetchError::Invalid {
            url: url.clone(),
            reason,
        };
        let view: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| invalid(format!("not JSON ({e})")))?;
        let text = view
            .get("event")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| invalid("no \"event\" field".to_owned()))?;
        let bytes = kith_protocol::encoding::from_base64(text)
            .map_err(|e| invalid(format!("the event is not base64 ({e})")))?;
        let event =
            Event::decode(&bytes).map_err(|e| invalid(format!("the event is damaged ({e})")))?;
        if event.id() != *id {
            return Err(invalid(format!(
                "asked for event {id}, it sent event {}",
                event.id()
            )));
        }
        Ok(Some(event))
    }

    /// `GET url`: the status and at most `max` bytes of body.
    async fn get(&self, url: &str, max: usize) -> Result<(u16, Vec<u8>), FetchError> {
        let failed = |e: reqwest::Error| classify(url, &e);
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            max,
        };
        if response
            .content_length()
            .is_some_and(|length| length > max as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// The Mozilla roots compiled in, plus every certificate in the PEM file at `path` (none if
/// `path` is empty).
fn root_store(path: &str) -> Result<rustls::RootCertStore, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let path = path.trim();
    if path.is_empty() {
        return Ok(roots);
    }
    let pem = std::fs::read(Path::new(path)).map_err(|error| SetupError::Read {
        path: path.to_owned(),
        error,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SetupError::Pem {
            path: path.to_owned(),
            problem: format!("could not be read as PEM ({e})"),
        })?;
    if certs.is_empty() {
        return Err(SetupError::Pem {
            path: path.to_owned(),
            problem: "holds no certificate".to_owned(),
        });
    }
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| SetupError::BadRoot {
            path: path.to_owned(),
            index: i + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Reads the fields the node uses from a node-information document.
fn parse_node_info(url: &str, body: &[u8]) -> Result<NodeInfo, FetchError> {
    let invalid = |reason: &str| FetchError::Invalid {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let info: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| invalid("the answer is not JSON"))?;
    let node = info
        .get("node")
        .and_then(serde_json::Value::as_str)
        .and_then(|text| text.parse::<PublicKey>().ok())
        .ok_or_else(|| invalid("it names no valid node key (\"node\")"))?;
    let protocol_versions = info
        .get("protocol_versions")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(serde_json::Value::as_u64)
                .collect::<Vec<_>>()
        })
        .ok_or_else(|| invalid("it lists no protocol versions (\"protocol_versions\")"))?;
    Ok(NodeInfo {
        node,
        protocol_versions,
    })
}

/// A fetch error in words, TLS failures told apart.
fn classify(url: &str, error: &reqwest::Error) -> FetchError {
    if let Some(tls) = tls_failure(error) {
        return FetchError::Tls {
            url: url.to_owned(),
            detail: tls,
        };
    }
    let detail = if error.is_timeout() {
        format!("no answer within {} seconds", REQUEST_TIMEOUT.as_secs())
    } else {
        describe(error)
    };
    FetchError::Unreachable {
        url: url.to_owned(),
        detail,
    }
}

/// The rustls error behind `error`, in words, if a TLS handshake is what failed. Looks
/// through the whole chain of causes, inside I/O errors too (an `io::Error`'s `source` skips
/// the error it wraps).
pub fn tls_failure(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            if let Some(found) = tls_failure(inner) {
                return Some(found);
            }
        }
        if let Some(tokio_tungstenite::tungstenite::Error::Tls(tls)) =
            e.downcast_ref::<tokio_tungstenite::tungstenite::Error>()
        {
            return Some(tls.to_string());
        }
        next = e.source();
    }
    None
}

/// A reqwest error's causes joined (its own message only says the request failed).
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

fn system_lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    (host, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
}

/// reqwest's resolver for peers: every address a name resolves to must be public (unless
/// the admin allows private ones), or the name is refused.
struct PublicOnlyResolver {
    allow_private: bool,
    lookup: Lookup,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let lookup = Arc::clone(&self.lookup);
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = {
                let host = host.clone();
                tokio::task::spawn_blocking(move || lookup(&host)).await?
            };
            let ips = found.map_err(|source| AddressError::Resolve {
                host: host.clone(),
                source,
            })?;
            let addresses = checked_addresses(&host, ips, allow_private)?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The addresses `host` resolved to, as socket addresses with port 0 (reqwest puts in the
/// URL's port), if all of them may be contacted.
pub fn checked_addresses(
    host: &str,
    ips: Vec<IpAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, AddressError> {
    if ips.is_empty() {
        return Err(AddressError::NoAddresses {
            host: host.to_owned(),
        });
    }
    if !allow_private {
        if let Some((address, kind)) = ips
            .iter()
            .find_map(|&ip| non_public_kind(ip).map(|kind| (ip, kind)))
        {
            return Err(AddressError::NotPublic {
                subject: format!("{host} resolves to"),
                address,
                kind,
            });
        }
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectRefused {
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("it redirected more than {max} times; not following further")]
    TooMany {
        /// The bound.
        max: usize,
    },
    /// A redirect to something other than http or https.
    #[error("it redirected to {url}, which is not an http:// or https:// address; not following")]
    Scheme {
        /// Where it pointed.
        url: String,
    },
    /// A redirect to an IP address in a non-public range.
    #[error("it redirected to {url}, and {address} is {kind}; nodes never follow a peer to private addresses. An admin can allow this in [federation] for testing (allow_private_addresses = true in kithd.toml)")]
    NotPublic {
        /// Where it pointed.
        url: String,
        /// The address.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
}

/// Whether a redirect to `next` may be followed, `previous` being the number of URLs
/// fetched so far (1 for the first redirect). Names are not looked up here: the resolver
/// refuses those resolving to non-public addresses when the redirect is followed.
pub fn redirect_refusal(
    next: &Url,
    previous: usize,
    allow_private: bool,
) -> Option<RedirectRefused> {
    if previous > MAX_REDIRECTS {
        return Some(RedirectRefused::TooMany { max: MAX_REDIRECTS });
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Some(RedirectRefused::Scheme {
            url: next.to_string(),
        });
    }
    let address = match next.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return None,
    };
    if allow_private {
        return None;
    }
    non_public_kind(address).map(|kind| RedirectRefused::NotPublic {
        url: next.to_string(),
        address,
        kind,
    })
}

fn redirect_policy(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match redirect_refusal(attempt.url(), attempt.previous().len(), allow_private) {
            None => attempt.follow(),
            Some(refused) => attempt.error(refused),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::address::check_peer_url_with;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn no_dns() -> Lookup {
        Arc::new(|host: &str| panic!("{host} must not be looked up"))
    }

    fn loopback_peer(addr: SocketAddr) -> PeerUrl {
        check_peer_url_with(&format!("http://{addr}"), true, |_, _| unreachable!()).unwrap()
    }

    /// Serves the answers `answer(request path)` on a loopback port, one connection each;
    /// returns the address and a count of requests served.
    async fn serve(
        answer: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&served);
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = Arc::clone(&answer);
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = stream.write_all(answer(&path).as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, served)
    }

    fn redirect_to(location: &str) -> String {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    fn ok_json(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn info_json(key: &PublicKey, versions: &str) -> String {
        format!("{{\"software\":\"kithd\",\"node\":\"{key}\",\"url\":\"http://x\",\"protocol_versions\":{versions},\"limits\":{{}}}}")
    }

    fn key(n: u8) -> PublicKey {
        kith_protocol::SecretKey::from_seed(&[n; 32]).public_key()
    }

    fn unreachable_detail(err: FetchError) -> String {
        match err {
            FetchError::Unreachable { detail, .. } => detail,
            other => panic!("expected an unreachable fetch, got {other:?}"),
        }
    }

    #[test]
    fn redirects_to_private_addresses_or_other_schemes_are_refused() {
        let url = |text: &str| Url::parse(text).unwrap();
        assert_eq!(
            redirect_refusal(&url("https://kith.example.org/x"), 1, false),
            None
        );
        assert_eq!(redirect_refusal(&url("http://8.8.8.8/"), 3, false), None);
        assert_eq!(
            redirect_refusal(&url("http://8.8.8.8/"), 4, false),
            Some(RedirectRefused::TooMany { max: 3 })
        );
        for private in [
            "http://127.0.0.1:8080/",
            "http://10.0.0.5/",
            "https://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.1.1]/",
            "http://2130706433/",
        ] {
            match redirect_refusal(&url(private), 1, false) {
                Some(e @ RedirectRefused::NotPublic { .. }) => {
                    assert!(e.to_string().contains("never follow"), "{e}")
                }
                other => panic!("{private}: {other:?}"),
            }
            assert_eq!(redirect_refusal(&url(private), 1, true), None, "{private}");
        }
        for scheme in ["file:///etc/passwd", "ftp://8.8.8.8/", "gopher://8.8.8.8/"] {
            assert!(
                matches!(
                    redirect_refusal(&url(scheme), 1, true),
                    Some(RedirectRefused::Scheme { .. })
                ),
                "{scheme}"
            );
        }
        // Names are left to the resolver.
        assert_eq!(
            redirect_refusal(&url("http://localhost:1/"), 1, false),
            None
        );
    }

    #[test]
    fn resolved_names_must_be_public_unless_allowed() {
        let public: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap()];
        assert_eq!(
            checked_addresses("peer.example.org", public, false).unwrap(),
            vec!["8.8.8.8:0".parse::<SocketAddr>().unwrap()]
        );
        let mixed: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap(), "10.1.2.3".parse().unwrap()];
        let err = checked_addresses("rebind.example.org", mixed.clone(), false).unwrap_err();
        assert!(
            err.to_string()
                .contains("rebind.example.org resolves to 10.1.2.3, a private address"),
            "{err}"
        );
        assert_eq!(
            checked_addresses("rebind.example.org", mixed, true)
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            checked_addresses("nothing.example.org", vec![], true),
            Err(AddressError::NoAddresses { .. })
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        use reqwest::dns::Resolve as _;
        let lookup: Lookup = Arc::new(|host: &str| match host {
            "public.test" => Ok(vec!["8.8.4.4".parse().unwrap()]),
            "inside.test" => Ok(vec!["192.168.0.10".parse().unwrap()]),
            _ => Err(io::Error::other("no such host")),
        });
        let resolver = PublicOnlyResolver {
            allow_private: false,
            lookup: Arc::clone(&lookup),
        };
        let addrs: Vec<SocketAddr> = resolver
            .resolve("public.test".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec!["8.8.4.4:0".parse::<SocketAddr>().unwrap()]);
        let err = resolver
            .resolve("inside.test".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("a private address"), "{err}");
        let err = resolver
            .resolve("missing.test".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("could not look up"), "{err}");
        let allowed = PublicOnlyResolver {
            allow_private: true,
            lookup,
        };
        assert!(allowed
            .resolve("inside.test".parse().unwrap())
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn node_info_is_read_and_bounded() {
        let k = key(5);
        let info = info_json(&k, "[1, 7]");
        let (addr, _) = serve(move |path| match path {
            "/.well-known/kith" => ok_json(&info),
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
        })
        .await;
        let client = PeerClient::with_lookup("", true, no_dns()).unwrap();
        let got = client.node_info(&loopback_peer(addr)).await.unwrap();
        assert_eq!(got.node, k);
        assert_eq!(got.protocol_versions, vec![1, 7]);
        assert!(got.speaks_ours());
        let other = NodeInfo {
            node: k,
            protocol_versions: vec![2, 257],
        };
        assert!(!other.speaks_ours());

        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_NODE_INFO_BYTES));
        let (addr, _) = serve(move |_| ok_json(&big)).await;
        let err = client.node_info(&loopback_peer(addr)).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");

        let (addr, _) = serve(|_| ok_json("{\"node\":\"not a key\"}")).await;
        let err = client.node_info(&loopback_peer(addr)).await.unwrap_err();
        assert!(err.to_string().contains("no valid node key"), "{err}");

        let (addr, _) =
            serve(|_| "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()).await;
        let err = client.node_info(&loopback_peer(addr)).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 404, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn at_most_three_redirects_are_followed() {
        let k = key(6);
        let info = info_json(&k, "[1]");
        // /.well-known/kith → /r1 → /r2 → /r3 → /r4 → info; /s1 → /s2 → /s3 → info.
        let (addr, served) = serve(move |path| match path {
            "/.well-known/kith" => redirect_to("/r1"),
            "/r1" => redirect_to("/r2"),
            "/r2" => redirect_to("/r3"),
            "/r3" => redirect_to("/r4"),
            _ => ok_json(&info),
        })
        .await;
        let client = PeerClient::with_lookup("", true, no_dns()).unwrap();
        let err = client.node_info(&loopback_peer(addr)).await.unwrap_err();
        let detail = unreachable_detail(err);
        assert!(detail.contains("more than 3 times"), "{detail}");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 4);

        let info = info_json(&k, "[1]");
        let (addr, served) = serve(move |path| match path {
            "/.well-known/kith" => redirect_to("/s1"),
            "/s1" => redirect_to("/s2"),
            "/s2" => redirect_to("/s3"),
            _ => ok_json(&info),
        })
        .await;
        let got = client.node_info(&loopback_peer(addr)).await.unwrap();
        assert_eq!(got.node, k);
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn redirects_into_private_ranges_are_not_followed() {
        // The target would answer, were it reached.
        let k = key(7);
        let info = info_json(&k, "[1]");
        let (inside, reached) = serve(move |_| ok_json(&info)).await;
        let port = inside.port();
        let (addr, _) = serve(move |path| match path {
            "/.well-known/kith" => redirect_to(&format!("http://127.0.0.1:{port}/")),
            "/by-name" => redirect_to(&format!("http://inside.test:{port}/")),
            _ => redirect_to(&format!("ftp://8.8.8.8:{port}/")),
        })
        .await;
        let lookup: Lookup = Arc::new(|host: &str| {
            assert_eq!(host, "inside.test");
            Ok(vec!["127.0.0.1".parse().unwrap()])
        });
        // Private addresses not allowed: the first (checked) peer URL is on loopback, as in
        // a test; the redirects out of it are what is judged.
        let client = PeerClient::with_lookup("", false, lookup).unwrap();
        let peer = loopback_peer(addr);
        let detail = unreachable_detail(client.node_info(&peer).await.unwrap_err());
        assert!(
            detail.contains("127.0.0.1 is a loopback address"),
            "{detail}"
        );

        let by_name = client
            .get(&format!("http://{addr}/by-name"), 1024)
            .await
            .unwrap_err();
        let detail = unreachable_detail(by_name);
        assert!(
            detail.contains("inside.test resolves to 127.0.0.1, a loopback address"),
            "{detail}"
        );
        let scheme = client
            .get(&format!("http://{addr}/other"), 1024)
            .await
            .unwrap_err();
        assert!(
            scheme
                .to_string()
                .contains("not an http:// or https:// address"),
            "{scheme}"
        );
        assert_eq!(
            reached.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing reached the private address"
        );
    }

    #[tokio::test]
    async fn an_event_is_fetched_by_id_and_must_be_the_one_asked_for() {
        use kith_protocol::event::{EventBuilder, Timestamp};
        use kith_protocol::kind::{Kind, PostBody};
        let author = kith_protocol::SecretKey::from_seed(&[9; 32]);
        let sign = |text: &str| {
            EventBuilder::new(
                Kind::POST,
                Timestamp(1_700_000_000_000),
                PostBody { text: text.into() }.to_bytes(),
            )
            .sign(&author)
            .unwrap()
        };
        let (one, two) = (sign("one"), sign("two"));
        let view = serde_json::to_string(&kith_protocol::view::EventView::from(&one)).unwrap();
        let (id_one, id_two) = (one.id(), two.id());
        let (addr, _) = serve(move |path| {
            if path == format!("/events/{id_one}") || path == format!("/events/{id_two}") {
                // Answers event one whatever is asked.
                ok_json(&view)
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}".to_owned()
            }
        })
        .await;
        let client = PeerClient::with_lookup("", true, no_dns()).unwrap();
        let peer = loopback_peer(addr);
        let got = client.fetch_event(&peer, &one.id()).await.unwrap();
        assert_eq!(got.map(|e| e.id()), Some(one.id()));
        let err = client.fetch_event(&peer, &two.id()).await.unwrap_err();
        assert!(err.to_string().contains("it sent event"), "{err}");
        let missing = sign("three").id();
        assert!(client.fetch_event(&peer, &missing).await.unwrap().is_none());
    }

    #[test]
    fn extra_roots_must_be_a_readable_pem_file_of_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().unwrap();
        let err = PeerClient::with_lookup(missing, false, no_dns()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SetupError::Read { .. }), "{text}");
        assert!(
            text.contains("extra_root_certs") && text.contains(missing),
            "{text}"
        );
        assert!(text.contains("set it to \"\""), "{text}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just some text\n").unwrap();
        let err = PeerClient::with_lookup(empty.to_str().unwrap(), false, no_dns()).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = PeerClient::with_lookup(garbage.to_str().unwrap(), false, no_dns()).unwrap_err();
        assert!(matches!(err, SetupError::BadRoot { index: 1, .. }), "{err}");

        // None named: the built-in roots alone.
        let client = PeerClient::with_lookup("", false, no_dns()).unwrap();
        assert!(client.tls().alpn_protocols.is_empty());
    }

    #[test]
    fn tls_failures_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, tls);
        let ws = tokio_tungstenite::tungstenite::Error::Io(io);
        let wrapped = anyhow::Error::from(ws);
        let chain: &(dyn StdError + 'static) = wrapped.as_ref();
        let found = tls_failure(chain).unwrap();
        assert!(found.contains("UnknownIssuer"), "{found}");
        let plain = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_failure(&plain), None);
    }
}
