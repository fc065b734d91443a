//! A TLS-terminating proxy on loopback, standing in for the reverse proxy (Caddy, nginx) a
//! real node sits behind: it accepts TLS on `127.0.0.1:<free port>` with a certificate for
//! `localhost` and `127.0.0.1`, and forwards the decrypted bytes to one target (a node's
//! plain HTTP port).
//!
//! The certificate is issued on the spot by a test CA ([`TestCa`], made with `rcgen`); a node
//! trusts it only when given [`TlsProxy::ca_pem`] (`[federation] extra_root_certs`). The
//! proxy counts TCP connections, completed and failed TLS handshakes, and the plain bytes
//! forwarded, so a test can tell that a link really ran over TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A certificate authority made for one test, and a server certificate it issued for
/// `localhost` and `127.0.0.1`.
pub struct TestCa {
    /// The CA's certificate, PEM: what a node must trust.
    pub ca_pem: String,
    /// The server certificate (DER), then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server certificate's private key (PKCS#8 DER).
    pub key: Vec<u8>,
}

impl TestCa {
    /// A fresh CA and a server certificate for `localhost` and `127.0.0.1`.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("generate a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Kith test CA");
        let ca = ca_params.self_signed(&ca_key).expect("self-sign the CA");

        let key = KeyPair::generate().expect("generate a server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("the CA signs the server certificate");
        TestCa {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone(), ca.der().clone()],
            key: key.serialize_der(),
        }
    }

    /// The rustls server configuration presenting the server certificate.
    fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls's default protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .expect("the server certificate and key match")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// What the accept loop and the connection tasks count.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    handshakes: AtomicU64,
    failed_handshakes: AtomicU64,
    to_target: AtomicU64,
    to_client: AtomicU64,
}

/// A TLS-terminating forwarder from `127.0.0.1:<port>` to one target. Dropping it stops
/// the listener and every connection it forwards.
pub struct TlsProxy {
    addr: SocketAddr,
    ca_pem: String,
    counters: Arc<Counters>,
    accept: JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TlsProxy {
    /// Starts terminating TLS on a free loopback port, forwarding to `target`, with a fresh
    /// [`TestCa`].
    pub async fn start(target: SocketAddr) -> TlsProxy {
        let ca = TestCa::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the TLS proxy");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let counters = Arc::new(Counters::default());
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn(accept_loop(
            listener,
            acceptor,
            target,
            Arc::clone(&counters),
            Arc::clone(&connections),
        ));
        TlsProxy {
            addr,
            ca_pem: ca.ca_pem,
            counters,
            accept,
            connections,
        }
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:<port>`: the proxy as a peer URL (the certificate names
    /// `localhost`).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The PEM certificate of the CA that issued the proxy's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`TlsProxy::ca_pem`] to `<dir>/test-ca.pem` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the test CA certificate");
        path
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.counters.handshakes.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed (e.g. the client did not trust the certificate).
    pub fn failed_handshakes(&self) -> u64 {
        self.counters.failed_handshakes.load(Ordering::Relaxed)
    }

    /// Plain bytes forwarded so far: (client → target, target → client).
    pub fn bytes_forwarded(&self) -> (u64, u64) {
        (
            self.counters.to_target.load(Ordering::Relaxed),
            self.counters.to_client.load(Ordering::Relaxed),
        )
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let open = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for task in open.iter() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    target: SocketAddr,
    counters: Arc<Counters>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(serve(
            client,
            acceptor.clone(),
            target,
            Arc::clone(&counters),
        ));
        let mut open = connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|t| !t.is_finished());
        open.push(task.abort_handle());
    }
}

/// One connection: the TLS handshake, then plain bytes both ways until either side ends.
async fn serve(
    client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    target: SocketAddr,
    counters: Arc<Counters>,
) {
    let _ = client.set_nodelay(true);
    let tls = match acceptor.accept(client).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.failed_handshakes.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    counters.handshakes.fetch_add(1, Ordering::Relaxed);
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = tokio::io::split(tls);
    let (server_read, server_write) = server.into_split();
    let _ = tokio::try_join!(
        pump(client_read, server_write, &counters.to_target),
        pump(server_read, client_write, &counters.to_client),
    );
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    counter: &AtomicU64,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buffer[..n]).await?;
        to.flush().await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free loopback port.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    fn client_config(trusted: Option<&str>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = trusted {
            use rustls::pki_types::pem::PemObject as _;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn terminates_tls_for_clients_that_trust_the_test_ca() {
        let proxy = TlsProxy::start(echo_server().await).await;
        assert!(proxy.url().starts_with("https://localhost:"));
        for name in ["localhost", "127.0.0.1"] {
            let connector = tokio_rustls::TlsConnector::from(client_config(Some(proxy.ca_pem())));
            let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
            let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
            let mut tls = connector.connect(server_name, tcp).await.unwrap();
            tls.write_all(b"hello").await.unwrap();
            let mut back = [0u8; 5];
            tls.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hello", "{name}");
        }
        assert_eq!(proxy.handshakes(), 2);
        assert_eq!(proxy.failed_handshakes(), 0);
        assert!(
            crate::node::eventually(5, || async { proxy.bytes_forwarded() == (10, 10) }).await,
            "{:?}",
            proxy.bytes_forwarded()
        );

        // A client that does not trust the test CA gets no connection.
        let connector = tokio_rustls::TlsConnector::from(client_config(None));
        let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        assert!(connector.connect(server_name, tcp).await.is_err());
        assert!(crate::node::eventually(5, || async { proxy.failed_handshakes() == 1 }).await);
        assert_eq!(proxy.connections(), 3);
    }
}
