//! Opening links: the `/federation` endpoint peers dial, and the dialers this node runs for
//! its configured peers and for the nodes its groups' members name as home. Both sides run
//! the `kith_protocol::link` handshake, then hand the link to [`super::link::run_link`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use kith_protocol::link::{Dialer, Listener, HANDSHAKE_TIMEOUT_MS};
use kith_protocol::PublicKey;
use rand::Rng as _;

use super::address::check_peer_url;
use super::frame::{FEDERATION_PATH, MAX_FED_FRAME_BYTES};
use super::link::run_link;
use super::peers::{key_id, PeerStatus};
use super::wire::{pump, Data, Pumped, Wire};
use crate::node::{now, Node, SharedNode};

/// `GET /federation`: a peer node linking with this one.
/// Links count towards the node's connection limit like client connections.
pub async fn upgrade(State(node): State<SharedNode>, ws: WebSocketUpgrade) -> Response {
    use axum::response::IntoResponse as _;
    use std::sync::atomic::Ordering::Relaxed;
    let limit = node.config.connections.max_connections as i64;
    if node.metrics.connections_open.load(Relaxed) >= limit {
        node.metrics.reject("too_many_connections");
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "this node has as many connections as it is configured to take; try again later",
        )
            .into_response();
    }
    ws.max_message_size(MAX_FED_FRAME_BYTES)
        .max_frame_size(MAX_FED_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let tracker = node.tracker.clone();
            tracker.track_future(accept(socket, node))
        })
}

async fn accept(socket: WebSocket, node: SharedNode) {
    use std::sync::atomic::Ordering::Relaxed;
    node.metrics.connections_open.fetch_add(1, Relaxed);
    accept_counted(socket, &node).await;
    node.metrics.connections_open.fetch_sub(1, Relaxed);
}

async fn accept_counted(socket: WebSocket, node: &SharedNode) {
    let (mut wire, reader, writer) = pump(
        socket,
        |m| match m {
            AxMessage::Text(text) => Pumped::Data(Data::Text(text.as_str().to_owned())),
            AxMessage::Binary(bytes) => Pumped::Data(Data::Binary(bytes.to_vec())),
            AxMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        |data| match data {
            Data::Text(text) => AxMessage::Text(text.into()),
            Data::Binary(bytes) => AxMessage::Binary(bytes.into()),
        },
    );
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill(&mut challenge);
    let listener = Listener::new(node.key.clone(), None, challenge, now());
    if let Some(peer) = handshake(Handshake::Listener(listener), &mut wire, node).await {
        if is_blocked(node, &peer).await {
            tracing::info!(%peer, "refused a link from a blocked node");
        } else {
            tracing::info!(%peer, "a peer linked with this node");
            run_link(node, wire, peer).await;
        }
    } else {
        drop(wire);
    }
    reader.abort();
    let _ = writer.await;
}

async fn is_blocked(node: &Node, peer: &PublicKey) -> bool {
    let id = key_id(peer);
    matches!(
        node.blocking(move |s| s.peer(&id)).await,
        Ok(Some(p)) if p.status == PeerStatus::Blocked
    )
}

enum Handshake {
    Dialer(Dialer),
    Listener(Listener),
}

impl Handshake {
    fn poll_frame(&mut self) -> Option<String> {
        match self {
            Handshake::Dialer(d) => d.poll_frame(),
            Handshake::Listener(l) => l.poll_frame(),
        }
    }
    fn established(&self) -> Option<PublicKey> {
        match self {
            Handshake::Dialer(d) => d.is_established(),
            Handshake::Listener(l) => l.is_established(),
        }
    }
    fn handle(&mut self, text: &str) -> Result<(), kith_protocol::link::LinkError> {
        match self {
            Handshake::Dialer(d) => d.handle_frame(text, now()),
            Handshake::Listener(l) => l.handle_frame(text, now()),
        }
    }
}

/// Runs the link handshake over `wire`; the peer's key once both sides are proven.
async fn handshake(mut hs: Handshake, wire: &mut Wire, node: &Node) -> Option<PublicKey> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
    loop {
        while let Some(frame) = hs.poll_frame() {
            if wire.tx.send(Data::Text(frame)).await.is_err() {
                return None;
            }
        }
        if let Some(peer) = hs.established() {
            return Some(peer);
        }
        let text = tokio::select! {
            _ = node.shutdown.cancelled() => return None,
            _ = tokio::time::sleep_until(deadline) => return None,
            data = wire.rx.recv() => match data? {
                Data::Text(text) => text,
                Data::Binary(_) => {
                    tracing::info!("link handshake failed: a binary frame before the handshake ended");
                    node.metrics.reject("link_handshake");
                    return None;
                }
            },
        };
        if let Err(e) = hs.handle(&text) {
            tracing::info!("link handshake failed: {e}");
            node.metrics.reject("link_handshake");
            return None;
        }
    }
}

/// Dials every configured and admin-added peer, each in its own task, for as long as the
/// node runs.
pub async fn start_dialers(node: SharedNode) {
    let mut urls: Vec<String> = node.config.federation.peers.clone();
    match node.blocking(|s| s.peers()).await {
        Ok(peers) => urls.extend(
            peers
                .into_iter()
                .filter(|p| p.status == PeerStatus::Added)
                .filter_map(|p| p.url),
        ),
        Err(e) => tracing::warn!("could not read the peer list: {}", e.message),
    }
    let mut seen = HashSet::new();
    for url in urls {
        let text = url.trim_end_matches('/').to_owned();
        if seen.insert(text.clone()) && node.federation.start_dialing(&text) {
            let tracker = node.tracker.clone();
            tracker.spawn(dial_forever(Arc::clone(&node), text, None));
        }
    }
}

/// Starts linking with a node a member names as their home, unless it is this node, is
/// already linked or dialed, or the admin turned this off. Its URL is checked like any
/// peer's (a member could name an address inside this node's network); a URL refused once is
/// not tried again until the node restarts.
pub fn dial_home(node: &SharedNode, key: PublicKey, url: &str) {
    if !node.config.federation.dial_member_homes
        || key == node.key.public_key()
        || node.federation.is_linked(&key)
    {
        return;
    }
    let text = url.trim_end_matches('/').to_owned();
    if node.federation.start_dialing(&text) {
        let tracker = node.tracker.clone();
        tracker.spawn(dial_forever(Arc::clone(node), text, Some(key)));
    }
}

/// Backoff before reconnection attempt `attempt` (0-based): 0.5 s doubling up to 60 s,
/// with jitter taking between half and all of it.
pub fn backoff(attempt: u32) -> Duration {
    let full = (500u64 << attempt.min(7)).min(60_000);
    let jittered = rand::thread_rng().gen_range(full / 2..=full);
    Duration::from_millis(jittered)
}

/// Dials `url` until the node stops, with backoff between attempts. With `expected`, a node
/// answering with another key is dropped (the URL was named for that key).
async fn dial_forever(node: SharedNode, url: String, expected: Option<PublicKey>) {
    let allow_private = node.config.federation.allow_private_addresses;
    let mut attempt = 0u32;
    loop {
        if node.shutdown.is_cancelled() {
            return;
        }
        let checked = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || check_peer_url(&url, allow_private)).await
        };
        let peer_url = match checked {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(%url, "not linking with this peer: {e}");
                node.metrics.reject("federation_refused_address");
                return;
            }
            Err(_) => return,
        };
        let base = peer_url.as_str().trim_end_matches('/');
        let ws_url = if base.starts_with("https://") {
            tracing::warn!(%url, "not linking with this peer: linking over TLS (https) is not built yet");
            return;
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}{FEDERATION_PATH}")
        } else {
            tracing::warn!(%url, "not linking with this peer: unsupported scheme");
            return;
        };
        match dial_once(&node, &ws_url, peer_url.addresses(), expected).await {
            Ok(true) => attempt = 0,
            Ok(false) => attempt = attempt.saturating_add(1),
            Err(e) => {
                tracing::info!(%url, "could not link with a peer: {e}");
                attempt = attempt.saturating_add(1);
            }
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff(attempt)) => {}
        }
    }
}

/// One connection to a peer; `Ok(true)` if the link was established (and has now ended).
///
/// It connects only to `addresses`, the ones [`check_peer_url`] resolved and found public,
/// and never looks the name up again (a second lookup could answer with a private address).
async fn dial_once(
    node: &SharedNode,
    ws_url: &str,
    addresses: &[std::net::SocketAddr],
    expected: Option<PublicKey>,
) -> anyhow::Result<bool> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FED_FRAME_BYTES))
        .max_frame_size(Some(MAX_FED_FRAME_BYTES));
    let connect = async {
        let stream = tokio::net::TcpStream::connect(addresses).await?;
        let (socket, response) =
            tokio_tungstenite::client_async_with_config(ws_url, stream, Some(config)).await?;
        anyhow::Ok((socket, response))
    };
    let (socket, _) = tokio::select! {
        _ = node.shutdown.cancelled() => return Ok(false),
        r = tokio::time::timeout(Duration::from_secs(10), connect) => r??,
    };
    let (mut wire, reader, writer) = pump(
        socket,
        |m| match m {
            TMessage::Text(text) => Pumped::Data(Data::Text(text.as_str().to_owned())),
            TMessage::Binary(bytes) => Pumped::Data(Data::Binary(bytes.to_vec())),
            TMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        |data| match data {
            Data::Text(text) => TMessage::Text(text.into()),
            Data::Binary(bytes) => TMessage::Binary(bytes.into()),
        },
    );
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill(&mut challenge);
    let dialer = Dialer::new(node.key.clone(), None, challenge, now());
    let linked = match handshake(Handshake::Dialer(dialer), &mut wire, node).await {
        Some(peer) if expected.is_some_and(|k| k != peer) => {
            tracing::warn!(%peer, url = ws_url, "the node at this URL has another key than the one named for it; not linking");
            node.metrics.reject("federation_wrong_key");
            false
        }
        Some(peer) if is_blocked(node, &peer).await => {
            tracing::info!(%peer, "not linking with a blocked node");
            false
        }
        Some(peer) => {
            tracing::info!(%peer, url = ws_url, "linked with a peer");
            run_link(node, wire, peer).await;
            true
        }
        None => {
            drop(wire);
            false
        }
    };
    reader.abort();
    let _ = writer.await;
    Ok(linked)
}

// ---------------------------------------------------------------------------------------
// Added for `kithd admin peer add` while the node runs (federation::peers applies the admin
// log live). Kept apart so the owner of this file can move or fold it in.

/// Starts dialing one peer URL (a peer an admin just added), unless a dialer for it already
/// runs. Like [`start_dialers`], for a single URL.
pub fn dial_peer(node: &SharedNode, url: &str) {
    let url = url.trim_end_matches('/').to_owned();
    if node.federation.start_dialing(&url) {
        let tracker = node.tracker.clone();
        tracker.spawn(dial_forever(Arc::clone(node), url, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..40 {
            let full = (500u64 << attempt.min(7)).min(60_000);
            let d = backoff(attempt).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
        }
        assert!(backoff(100) <= Duration::from_secs(60));
    }
}
