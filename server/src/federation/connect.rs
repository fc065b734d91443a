//! Opening links: the `/federation` endpoint peers dial, and the dialers this node runs for
//! its configured peers and for the nodes its groups' members name as home. Both sides run
//! the `kith_protocol::link` handshake, then hand the link to [`super::link::run_link`].
//!
//! A dialer first reads the peer's node information ([`super::fetch`]): a peer with another
//! key than the one its URL was named for, or speaking no protocol version this node
//! speaks, is not dialed. Then it connects to the checked addresses only, runs TLS for an
//! `https://` peer (`wss://`, certificate checked for the URL's host), and the WebSocket
//! upgrade. The node information is a hint; the signed handshake is the proof.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use kith_protocol::link::{Dialer, Listener, HANDSHAKE_TIMEOUT_MS};
use kith_protocol::PublicKey;
use rand::Rng as _;

use super::address::check_peer_url;
use super::fetch::tls_failure;
use super::frame::{FEDERATION_PATH, MAX_FED_FRAME_BYTES, MAX_GROUPS_LISTED};
use super::link::run_link;
use super::peers::{key_id, Peer, PeerStatus};
use super::wire::{pump, Codec, Data, Pumped, Wire};
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
    let codec = Codec {
        read: |m| match m {
            AxMessage::Text(text) => Pumped::Data(Data::Text(text.as_str().to_owned())),
            AxMessage::Binary(bytes) => Pumped::Data(Data::Binary(bytes.to_vec())),
            AxMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        write: |data| match data {
            Data::Text(text) => AxMessage::Text(text.into()),
            Data::Binary(bytes) => AxMessage::Binary(bytes.into()),
        },
        ping: || AxMessage::Ping(Default::default()),
    };
    let (mut wire, reader, writer) = pump(socket, codec, link_timeout(node));
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
    // The registry also holds the keys blocked with an address.
    if node.federation.is_blocked(peer) {
        return true;
    }
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

/// How long a link may stay silent before it is taken for dead (`link_timeout_secs`, at
/// least 3 s).
fn link_timeout(node: &Node) -> Duration {
    Duration::from_secs(node.config.federation.link_timeout_secs.max(3))
}

/// Dials every configured and admin-added peer, each in its own task, for as long as the
/// node runs; then the homes of the members of the groups held here and the peers with
/// queued events (see [`start_targets`]), so links come back after a restart without
/// waiting for a new event.
pub async fn start_dialers(node: SharedNode) {
    let mut urls: Vec<String> = node.config.federation.peers.clone();
    let records = match node.blocking(|s| s.peers()).await {
        Ok(peers) => peers,
        Err(e) => {
            tracing::warn!("could not read the peer list: {}", e.message);
            Vec::new()
        }
    };
    urls.extend(
        records
            .iter()
            .filter(|p| p.status == PeerStatus::Added)
            .filter_map(|p| p.url.clone()),
    );
    let mut seen = HashSet::new();
    for url in urls {
        let text = url.trim_end_matches('/').to_owned();
        if seen.insert(text.clone()) && node.federation.start_dialing(&text) {
            let tracker = node.tracker.clone();
            tracker.spawn(dial_forever(Arc::clone(&node), text, None));
        }
    }

    let dial_homes = node.config.federation.dial_member_homes;
    let shared = Arc::clone(&node);
    let found = node
        .blocking(move |s| {
            let homes = if dial_homes {
                member_homes(&shared)?
            } else {
                BTreeMap::new()
            };
            let queued: Vec<PublicKey> = s
                .outbox_stats()?
                .into_iter()
                .filter(|q| q.depth > 0)
                .map(|q| q.peer)
                .collect();
            Ok((homes, queued))
        })
        .await;
    let (homes, queued) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "could not read which nodes host this node's groups: {}",
                e.message
            );
            return;
        }
    };
    let me = node.key.public_key();
    for (key, url) in start_targets(&me, &homes, &records, &queued) {
        if !node.federation.is_linked(&key) && node.federation.start_dialing(&url) {
            let tracker = node.tracker.clone();
            tracker.spawn(dial_forever(Arc::clone(&node), url, Some(key)));
        }
    }
}

/// The nodes hosting the members of every group held here (node key → URL a member named).
/// Blocking: loads each group's state.
fn member_homes(node: &Node) -> Result<BTreeMap<PublicKey, String>, crate::store::StoreError> {
    let mut homes = BTreeMap::new();
    for group in node.store.group_ids(MAX_GROUPS_LISTED)? {
        match node.groups.hosts(&group) {
            Ok(Some((_, hosts))) => homes.extend(hosts),
            Ok(None) => {}
            // One damaged group must not keep the others' homes from being dialed.
            Err(e) => tracing::warn!(%group, "not dialing this group's homes: {e}"),
        }
    }
    Ok(homes)
}

/// Which nodes to dial at start besides the configured peers, each URL once: every node in
/// `homes` (the members' homes, empty when the admin turned `dial_member_homes` off), and
/// every peer in `queued` (with events waiting in its outbound queue) whose URL is known,
/// from `homes` or from an added peer's record; never this node (`me`) nor a blocked one.
pub fn start_targets(
    me: &PublicKey,
    homes: &BTreeMap<PublicKey, String>,
    records: &[Peer],
    queued: &[PublicKey],
) -> Vec<(PublicKey, String)> {
    let recorded = |key: &PublicKey| {
        records
            .iter()
            .find(|p| p.key.as_ref() == Some(key) && p.status == PeerStatus::Added)
            .and_then(|p| p.url.clone())
    };
    let blocked = |key: &PublicKey, url: &str| {
        records.iter().any(|p| {
            p.status == PeerStatus::Blocked
                && (p.key.as_ref() == Some(key) || p.url.as_deref() == Some(url))
        })
    };
    let wanted = homes
        .iter()
        .map(|(key, url)| (*key, Some(url.clone())))
        .chain(
            queued
                .iter()
                .map(|key| (*key, homes.get(key).cloned().or_else(|| recorded(key)))),
        );
    let mut urls = HashSet::new();
    let mut out = Vec::new();
    for (key, url) in wanted {
        let Some(url) = url else { continue };
        let url = url.trim_end_matches('/').to_owned();
        if key != *me && !blocked(&key, &url) && urls.insert(url.clone()) {
            out.push((key, url));
        }
    }
    out
}

/// Starts linking with a node a member names as their home, unless it is this node, is
/// already linked or dialed, or the admin turned this off. Its URL is checked like any
/// peer's (a member could name an address inside this node's network); a URL refused once is
/// not tried again until the node restarts.
pub fn dial_home(node: &SharedNode, key: PublicKey, url: &str) {
    if !node.config.federation.dial_member_homes
        || key == node.key.public_key()
        || node.federation.is_linked(&key)
        || node.federation.is_blocked(&key)
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
        if address_blocked(&node, peer_url.as_str()).await {
            tracing::info!(url = %peer_url, "stopped dialing this address: an admin blocked it");
            // Adding it again (after unblocking it) starts a new dialer.
            node.federation.stop_dialing(&url);
            return;
        }
        let base = peer_url.as_str().trim_end_matches('/');
        let ws_url = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}{FEDERATION_PATH}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}{FEDERATION_PATH}")
        } else {
            tracing::warn!(%url, "not linking with this peer: unsupported scheme");
            return;
        };
        if peer_answers_for(&node, &peer_url, expected).await {
            match dial_once(&node, &peer_url, &ws_url, expected).await {
                Ok(true) => attempt = 0,
                Ok(false) => attempt = attempt.saturating_add(1),
                Err(e) => {
                    tracing::info!(%url, "could not link with a peer: {e:#}");
                    if tls_failure(e.as_ref()).is_some() {
                        node.metrics.reject("federation_tls_failed");
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        } else {
            attempt = attempt.saturating_add(1);
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff(attempt)) => {}
        }
    }
}

/// Reads the peer's node information; whether to dial it now. Not if the fetch failed
/// (a TLS failure is counted as `federation_tls_failed`), if the node has another key than
/// `expected`, or if it speaks no protocol version this node speaks (each logged).
async fn peer_answers_for(
    node: &Node,
    peer: &super::address::PeerUrl,
    expected: Option<PublicKey>,
) -> bool {
    let info = tokio::select! {
        _ = node.shutdown.cancelled() => return false,
        info = node.peer_client.node_info(peer) => info,
    };
    match info {
        Err(e) => {
            tracing::info!(url = %peer, "could not link with a peer: {e}");
            if e.is_tls() {
                node.metrics.reject("federation_tls_failed");
            }
            false
        }
        Ok(info) if expected.is_some_and(|k| k != info.node) => {
            tracing::warn!(url = %peer, named = %info.node, "the node at this URL has another key than the one named for it; not linking");
            node.metrics.reject("federation_wrong_key");
            false
        }
        Ok(info) if node.federation.is_blocked(&info.node) => {
            tracing::info!(url = %peer, node = %info.node, "not linking with a blocked node");
            false
        }
        Ok(info) if !info.speaks_ours() => {
            tracing::warn!(
                url = %peer,
                "not linking with this peer: it speaks protocol versions {:?} and this node speaks {:?}; one of the two nodes needs upgrading",
                info.protocol_versions,
                kith_protocol::SUPPORTED_VERSIONS
            );
            node.metrics.reject("federation_no_common_version");
            false
        }
        Ok(_) => true,
    }
}

/// One connection to a peer; `Ok(true)` if the link was established (and has now ended).
///
/// It connects only to `peer_url`'s addresses, the ones [`check_peer_url`] resolved and found
/// public, and never looks the name up again (a second lookup could answer with a private
/// address).
/// For a `wss://` URL it runs TLS over that connection with the node's trust roots, the
/// server name (SNI, and the name the certificate must carry) being the URL's host.
async fn dial_once(
    node: &SharedNode,
    peer_url: &super::address::PeerUrl,
    ws_url: &str,
    expected: Option<PublicKey>,
) -> anyhow::Result<bool> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    let addresses = peer_url.addresses();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FED_FRAME_BYTES))
        .max_frame_size(Some(MAX_FED_FRAME_BYTES));
    let connect = async {
        let stream = tokio::net::TcpStream::connect(addresses).await?;
        // Used for wss:// only; a ws:// URL stays plain.
        let tls = tokio_tungstenite::Connector::Rustls(node.peer_client.tls());
        let (socket, response) = tokio_tungstenite::client_async_tls_with_config(
            ws_url,
            stream,
            Some(config),
            Some(tls),
        )
        .await?;
        anyhow::Ok((socket, response))
    };
    let (socket, _) = tokio::select! {
        _ = node.shutdown.cancelled() => return Ok(false),
        r = tokio::time::timeout(Duration::from_secs(10), connect) => r??,
    };
    let codec = Codec {
        read: |m| match m {
            TMessage::Text(text) => Pumped::Data(Data::Text(text.as_str().to_owned())),
            TMessage::Binary(bytes) => Pumped::Data(Data::Binary(bytes.to_vec())),
            TMessage::Close(_) => Pumped::Close,
            _ => Pumped::Skip,
        },
        write: |data| match data {
            Data::Text(text) => TMessage::Text(text.into()),
            Data::Binary(bytes) => TMessage::Binary(bytes.into()),
        },
        ping: || TMessage::Ping(Default::default()),
    };
    let (mut wire, reader, writer) = pump(socket, codec, link_timeout(node));
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill(&mut challenge);
    let dialer = Dialer::new(node.key.clone(), None, challenge, now());
    let proven = handshake(Handshake::Dialer(dialer), &mut wire, node).await;
    if let Some(peer) = proven {
        // Which node answers at this address: a block of the address cuts that node off.
        node.federation.note_address(peer_url.as_str(), peer);
    }
    let linked = match proven {
        Some(peer) if expected.is_some_and(|k| k != peer) => {
            tracing::warn!(%peer, url = ws_url, "the node at this URL has another key than the one named for it; not linking");
            node.metrics.reject("federation_wrong_key");
            false
        }
        Some(peer) if is_blocked(node, &peer).await => {
            tracing::info!(%peer, "not linking with a blocked node");
            false
        }
        // Blocked while the handshake ran, before its key was noted.
        Some(peer) if address_blocked(node, peer_url.as_str()).await => {
            tracing::info!(%peer, url = %peer_url, "not linking with a blocked address");
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

/// Whether an admin blocked the address `url` (normalised).
async fn address_blocked(node: &Node, url: &str) -> bool {
    let id = url.to_owned();
    matches!(
        node.blocking(move |s| s.peer(&id)).await,
        Ok(Some(p)) if p.status == PeerStatus::Blocked
    )
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

    fn key(n: u8) -> PublicKey {
        kith_protocol::SecretKey::from_seed(&[n; 32]).public_key()
    }

    fn record(key: Option<PublicKey>, url: Option<&str>, status: PeerStatus) -> Peer {
        Peer {
            url: url.map(str::to_owned),
            key,
            status,
            reason: String::new(),
            since_ms: 0,
        }
    }

    #[test]
    fn homes_and_queued_peers_are_dialed_at_start_once_each() {
        let me = key(1);
        let homes: BTreeMap<PublicKey, String> = [
            (me, "http://me.example".to_owned()),
            (key(2), "http://two.example/".to_owned()),
            (key(3), "http://shared.example".to_owned()),
            // Another key at the same URL: the URL is dialed once.
            (key(4), "http://shared.example".to_owned()),
            (key(5), "http://blocked-by-key.example".to_owned()),
            (key(6), "http://blocked-by-url.example".to_owned()),
        ]
        .into();
        let records = vec![
            record(Some(key(5)), None, PeerStatus::Blocked),
            record(
                None,
                Some("http://blocked-by-url.example"),
                PeerStatus::Blocked,
            ),
            record(
                Some(key(7)),
                Some("http://seven.example"),
                PeerStatus::Added,
            ),
            record(
                Some(key(8)),
                Some("http://eight.example"),
                PeerStatus::Added,
            ),
        ];
        // Queued for: a home (already listed), an added peer, one with no known URL.
        let queued = [key(2), key(7), key(9)];
        let targets = start_targets(&me, &homes, &records, &queued);
        let urls: Vec<&str> = targets.iter().map(|(_, url)| url.as_str()).collect();
        assert_eq!(urls.len(), 3, "{targets:?}");
        assert!(targets.contains(&(key(2), "http://two.example".to_owned())));
        assert!(targets.contains(&(key(7), "http://seven.example".to_owned())));
        assert!(urls.contains(&"http://shared.example"), "{targets:?}");
        // With member homes off (empty), only queued peers with a recorded URL.
        let targets = start_targets(&me, &BTreeMap::new(), &records, &queued);
        assert_eq!(targets, vec![(key(7), "http://seven.example".to_owned())]);
    }
}
