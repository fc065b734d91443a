//! A TCP forwarder on loopback that a test can cut and heal: a real network partition
//! between two nodes, without touching the nodes themselves.
//!
//! Each [`Proxy`] listens on `127.0.0.1:<free port>` and forwards every connection to one
//! target address. [`Proxy::cut`] drops every forwarded connection at once (so a WebSocket
//! through it dies) and refuses new ones (they are accepted and closed straight away, as a
//! dead peer behind a load balancer would look); [`Proxy::heal`] forwards again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A cuttable TCP forwarder from `127.0.0.1:<port>` to one target address.
///
/// Dropping it stops the listener and closes every connection it forwards.
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// What the accept loop, the connection tasks and the test share.
struct Shared {
    /// Bytes written to the target (client → target).
    to_target: AtomicU64,
    /// Bytes written to the client (target → client).
    to_client: AtomicU64,
    state: Mutex<State>,
}

/// Whether the proxy is cut, and the connections it forwards now. One lock for both, so a
/// connection is either refused or registered before [`Proxy::cut`] can abort it.
#[derive(Default)]
struct State {
    cut: bool,
    next_id: u64,
    open: HashMap<u64, AbortHandle>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not hide what the test is about.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Proxy {
    /// Starts forwarding from a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the proxy");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            to_target: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        });
        let accept = tokio::spawn(accept_loop(listener, target, Arc::clone(&shared)));
        Proxy {
            addr,
            target,
            shared,
            accept,
        }
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// `http://127.0.0.1:<port>` of the proxy, to give a node as a peer URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Partitions: closes every forwarded connection now (both directions) and, until
    /// [`Proxy::heal`], accepts new connections only to close them at once.
    pub fn cut(&self) {
        let mut state = self.shared.state();
        state.cut = true;
        for (_, task) in state.open.drain() {
            task.abort();
        }
    }

    /// Forwards new connections again (connections closed by [`Proxy::cut`] stay closed).
    pub fn heal(&self) {
        self.shared.state().cut = false;
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.state().cut
    }

    /// Bytes forwarded so far, counted as written: (client → target, target → client).
    pub fn bytes_forwarded(&self) -> (u64, u64) {
        (
            self.shared.to_target.load(Ordering::Relaxed),
            self.shared.to_client.load(Ordering::Relaxed),
        )
    }

    /// How many connections the proxy forwards right now.
    pub fn open_connections(&self) -> usize {
        self.shared.state().open.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, task) in self.shared.state().open.drain() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: try again shortly rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let mut state = shared.state();
        if state.cut {
            drop(client);
            continue;
        }
        let id = state.next_id;
        state.next_id += 1;
        let task = tokio::spawn(forward_and_forget(client, target, Arc::clone(&shared), id));
        state.open.insert(id, task.abort_handle());
    }
}

/// Forwards one connection, then takes it off the open list.
async fn forward_and_forget(client: TcpStream, target: SocketAddr, shared: Arc<Shared>, id: u64) {
    let _ = forward(client, target, &shared).await;
    shared.state().open.remove(&id);
}

async fn forward(client: TcpStream, target: SocketAddr, shared: &Shared) -> std::io::Result<()> {
    let server = TcpStream::connect(target).await?;
    // Small frames (handshakes, pings) must not wait for Nagle.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction failing ends both; an end of stream is passed on as a half-close.
    tokio::try_join!(
        pump(client_read, server_write, &shared.to_target),
        pump(server_read, client_write, &shared.to_client),
    )?;
    Ok(())
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
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
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A server that echoes every byte back, on a free loopback port.
    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, task)
    }

    /// Sends `text` and reads the same number of bytes back.
    async fn round_trip(socket: &mut TcpStream, text: &[u8]) -> Vec<u8> {
        socket.write_all(text).await.unwrap();
        let mut back = vec![0u8; text.len()];
        tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut back))
            .await
            .expect("the echo comes back")
            .unwrap();
        back
    }

    /// Whether the connection ends (end of stream or an error) within a second.
    async fn closes_promptly(socket: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), socket.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    async fn counters_reach(proxy: &Proxy, expected: (u64, u64)) -> bool {
        crate::node::eventually(5, || async { proxy.bytes_forwarded() == expected }).await
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways_and_counts_them() {
        let (echo, _server) = echo_server().await;
        let proxy = Proxy::start(echo).await;
        assert_eq!(
            proxy.url(),
            format!("http://127.0.0.1:{}", proxy.addr().port())
        );
        assert_eq!(proxy.target(), echo);
        assert_eq!(proxy.bytes_forwarded(), (0, 0));
        let mut socket = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut socket, b"hello").await, b"hello");
        assert_eq!(round_trip(&mut socket, b", world").await, b", world");
        assert!(
            counters_reach(&proxy, (12, 12)).await,
            "{:?}",
            proxy.bytes_forwarded()
        );
        assert_eq!(proxy.open_connections(), 1);
        // A client's half-close is passed on; the echo server then closes too.
        socket.shutdown().await.unwrap();
        assert!(closes_promptly(&mut socket).await);
        assert!(crate::node::eventually(5, || async { proxy.open_connections() == 0 }).await);
    }

    #[tokio::test]
    async fn cut_kills_open_connections_and_refuses_new_ones_until_healed() {
        let (echo, _server) = echo_server().await;
        let proxy = Proxy::start(echo).await;
        let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut first, b"one").await, b"one");
        assert_eq!(round_trip(&mut second, b"two").await, b"two");

        proxy.cut();
        assert!(proxy.is_cut());
        assert!(
            closes_promptly(&mut first).await,
            "an open connection dies at once"
        );
        assert!(
            closes_promptly(&mut second).await,
            "every open connection dies"
        );
        assert_eq!(proxy.open_connections(), 0);
        let counted = proxy.bytes_forwarded();
        // New connections are accepted by the kernel, then closed without reaching the target.
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = refused.write_all(b"anyone there?").await;
        assert!(
            closes_promptly(&mut refused).await,
            "a new connection is refused"
        );
        assert_eq!(proxy.bytes_forwarded(), counted, "nothing crosses a cut");

        proxy.heal();
        assert!(!proxy.is_cut());
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut healed, b"back").await, b"back");
        assert!(
            counters_reach(&proxy, (10, 10)).await,
            "{:?}",
            proxy.bytes_forwarded()
        );
    }

    #[tokio::test]
    async fn a_dropped_proxy_closes_its_connections_and_port() {
        let (echo, _server) = echo_server().await;
        let proxy = Proxy::start(echo).await;
        let addr = proxy.addr();
        let mut socket = TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(&mut socket, b"ping").await, b"ping");
        drop(proxy);
        assert!(closes_promptly(&mut socket).await);
        // The listener is gone with the accept task (it may take a moment to be dropped).
        let gone =
            crate::node::eventually(5, || async { TcpStream::connect(addr).await.is_err() }).await;
        assert!(gone, "nothing listens on the proxy's port any more");
    }

    #[tokio::test]
    async fn an_unreachable_target_closes_the_client() {
        // A port that was free a moment ago: nothing listens there.
        let target = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = Proxy::start(target).await;
        let mut socket = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(closes_promptly(&mut socket).await);
        assert_eq!(proxy.bytes_forwarded(), (0, 0));
    }
}
