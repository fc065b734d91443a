//! The peers an admin added or blocked, and the admin request log.
//!
//! A [`Peer`] record lives in the store's `peers` tree under [`Peer::id`]: the normalised
//! base URL (`https://kith.example.org`), or `key:<kith1…>` for a block by node key.
//!
//! `kithd admin peer add|block|unblock` and `kithd admin refuse [--withdraw]` must work while
//! the node runs, and the running node holds the store's lock. So, like `kithd admin invite`,
//! they never open the store: they append one [`AdminRequest`] per line to
//! `<data-dir>/admin/peers.jsonl` (mode 0600, fsynced), and the node applies them:
//!
//! - when it starts, the peer requests it has not applied yet ([`apply_pending_admin`]), so
//!   the dialers start with the full peer list;
//! - while it runs, every [`ADMIN_POLL`] ([`apply_admin_while_running`]): whatever was
//!   appended since. An added peer is dialed at once. A block by node key is stored, and the
//!   [`super::Registry`] is told: every link open with that node closes, and from then on
//!   links with it are refused at the handshake. A block by address stops the dialer of that
//!   address; if the node knows which node key answers there (the key that proved itself in
//!   a handshake with this node's dialer at that address since the node started,
//!   [`super::Registry::key_at`], else the key the stored record holds), that key is stored
//!   with the block and cut off like a block by key. If it does not know (it has not linked
//!   with that address since it started), its log says so and no link is closed. An unblock
//!   deletes the block records ([`Store::remove_peer`]); once no block holds a node key any
//!   more, the registry lifts it ([`super::Registry::unblock`]) and links with that node
//!   are accepted and opened again, without a restart. Unblocking what is not blocked
//!   changes nothing, and the log says so. A refusal, or the
//!   withdrawal of one, is published as a signed kind-107 or kind-108 event in its group
//!   ([`crate::refusal`]); it needs the running node's groups, so the start-up pass stops at
//!   the first one and leaves the rest to the running node.
//!
//! At the start of [`apply_admin_while_running`] the registry also learns every node key
//! blocked before (by key, or with a blocked address), so a link with a blocked node that
//! slips past the handshake check closes at once.
//!
//! The store remembers how many bytes of the log it has applied, so each request is applied
//! once. The log is append-only: do not edit it by hand.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kith_protocol::{EventId, GroupId, PublicKey};
use serde::{Deserialize, Serialize};

use super::address::{normalize_peer_url, normalized_text};
use crate::node::SharedNode;
use crate::store::{Store, StoreError};

/// Directory for admin request logs, inside the data directory.
pub const ADMIN_DIR: &str = "admin";
/// The peer request log inside [`ADMIN_DIR`].
pub const PEERS_LOG: &str = "peers.jsonl";
/// How often a running node looks for requests appended to the log.
pub const ADMIN_POLL: Duration = Duration::from_secs(2);
/// Written by the node after applying the log: the byte offset applied so far, as text. Only
/// a hint for `kithd admin peer list` while the node runs; the store holds the real offset.
pub const PEERS_APPLIED_HINT: &str = "peers.applied";

/// Whether a peer was added or blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerStatus {
    /// An admin added it: the node may sync with it.
    Added,
    /// An admin blocked it: the node must not sync with it nor accept its connections.
    Blocked,
}

/// One peer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The normalised base URL; `None` for a block by key alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The peer's node key, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PublicKey>,
    /// Added or blocked.
    pub status: PeerStatus,
    /// Why it was blocked (empty for an added peer).
    #[serde(default)]
    pub reason: String,
    /// When it got this status, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl Peer {
    /// The record's key in the store: its URL, else `key:<kith1…>`.
    pub fn id(&self) -> String {
        match (&self.url, &self.key) {
            (Some(url), _) => url.clone(),
            (None, Some(key)) => key_id(key),
            (None, None) => String::new(),
        }
    }
}

/// The store id of a block by node key.
pub fn key_id(key: &PublicKey) -> String {
    format!("key:{key}")
}

/// One line of the admin request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Add a peer (the URL was checked by [`super::check_peer_url`] when it was written).
    Add {
        /// The normalised base URL.
        url: String,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Block a peer by address.
    BlockUrl {
        /// The normalised base URL.
        url: String,
        /// Why.
        reason: String,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Block a peer by node key, whatever address it uses.
    BlockKey {
        /// The node key.
        key: PublicKey,
        /// Why.
        reason: String,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Lift the block of an address (and of the node key stored with it, unless that key is
    /// also blocked another way).
    UnblockUrl {
        /// The normalised base URL.
        url: String,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Lift the block of a node key, and of every address blocked with that key.
    UnblockKey {
        /// The node key.
        key: PublicKey,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Refuse to host a group, or one member's events in it: the running node publishes a
    /// signed refusal (kind 107) in the group, see [`crate::refusal`].
    Refuse {
        /// The group.
        group: GroupId,
        /// The member whose events the node will not host; absent, the whole group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<PublicKey>,
        /// Why, for the group's log (required).
        reason: String,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
    /// Withdraw one of this node's refusals: the running node publishes a signed withdrawal
    /// (kind 108) in the refusal's group, see [`crate::refusal`].
    WithdrawRefusal {
        /// The refusal's event id (a kind-107 event this node signed).
        refusal: EventId,
        /// Why, for the group's log (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When the admin asked, in ms since the epoch.
        at_ms: u64,
    },
}

impl AdminRequest {
    /// Whether the request publishes an event, which needs the running node's groups
    /// (a refusal or its withdrawal).
    fn publishes(&self) -> bool {
        matches!(
            self,
            AdminRequest::Refuse { .. } | AdminRequest::WithdrawRefusal { .. }
        )
    }
}

impl std::fmt::Display for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminRequest::Add { url, .. } => write!(f, "add {url}"),
            AdminRequest::BlockUrl { url, reason, .. } => write!(f, "block {url} ({reason})"),
            AdminRequest::BlockKey { key, reason, .. } => write!(f, "block {key} ({reason})"),
            AdminRequest::UnblockUrl { url, .. } => write!(f, "unblock {url}"),
            AdminRequest::UnblockKey { key, .. } => write!(f, "unblock {key}"),
            AdminRequest::Refuse {
                group,
                member: None,
                reason,
                ..
            } => write!(f, "refuse group {group} ({reason})"),
            AdminRequest::Refuse {
                group,
                member: Some(member),
                reason,
                ..
            } => write!(f, "refuse member {member} in group {group} ({reason})"),
            AdminRequest::WithdrawRefusal {
                refusal,
                reason: None,
                ..
            } => write!(f, "withdraw refusal {refusal}"),
            AdminRequest::WithdrawRefusal {
                refusal,
                reason: Some(reason),
                ..
            } => write!(f, "withdraw refusal {refusal} ({reason})"),
        }
    }
}

/// Reading, writing or applying the admin request log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminLogError {
    /// A file operation failed.
    #[error("could not {action} {path}: {source}. Check the data directory's permissions")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `<data_dir>/admin/peers.jsonl`.
pub fn admin_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_DIR).join(PEERS_LOG)
}

/// Appends one request to the log (creating `admin/` 0700 and the file 0600) and fsyncs it.
pub fn append_admin_request(data_dir: &Path, request: &AdminRequest) -> Result<(), AdminLogError> {
    let dir = data_dir.join(ADMIN_DIR);
    let path = admin_log_path(data_dir);
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| AdminLogError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io("create", &dir))?;
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(io("open", &path))?;
    let mut line = serde_json::to_string(request).map_err(|e| AdminLogError::Io {
        action: "encode a request for",
        path: path.clone(),
        source: e.into(),
    })?;
    line.push('\n');
    // One write of the whole line: appends from concurrent admin commands do not interleave.
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &path))?;
    if !existed {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", &dir))?;
    }
    Ok(())
}

/// The complete lines of the log from byte `from` on, each parsed (or the unreadable line's
/// text), and the offset just past the last complete line. A last line without its newline is
/// still being written and is left for next time.
pub type LogTail = (Vec<Result<AdminRequest, String>>, u64);

/// The complete lines of the log from some offset on, each with the offset just past it.
#[derive(Debug, Default)]
pub struct LogLines {
    /// Where reading started: the offset asked for, or 0 if the log is shorter than that (it
    /// was replaced).
    pub start: u64,
    /// Each complete, non-blank line: its request (or its text, if unreadable) and the offset
    /// just past its newline.
    pub lines: Vec<(Result<AdminRequest, String>, u64)>,
    /// The offset just past the last complete line. A last line without its newline is still
    /// being written and is left for next time.
    pub end: u64,
}

/// Reads the log from byte `from` (from 0 if the file is shorter: it was replaced). A missing
/// log reads as empty.
pub fn read_admin_log(data_dir: &Path, from: u64) -> Result<LogTail, AdminLogError> {
    let tail = read_admin_lines(data_dir, from)?;
    let requests = tail.lines.into_iter().map(|(request, _)| request).collect();
    Ok((requests, tail.end))
}

/// Reads the log from byte `from` line by line, like [`read_admin_log`], keeping where each
/// line ends.
pub fn read_admin_lines(data_dir: &Path, from: u64) -> Result<LogLines, AdminLogError> {
    let path = admin_log_path(data_dir);
    let fail = |action| {
        let path = path.clone();
        move |source| AdminLogError::Io {
            action,
            path,
            source,
        }
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogLines::default()),
        Err(e) => return Err(fail("open")(e)),
    };
    let len = file.metadata().map_err(fail("read"))?.len();
    let from = if len < from { 0 } else { from };
    file.seek(SeekFrom::Start(from)).map_err(fail("read"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail("read"))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut lines = Vec::new();
    let mut offset = from;
    for line in bytes[..complete]
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
    {
        offset += line.len() as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request =
            serde_json::from_slice(line).map_err(|_| String::from_utf8_lossy(line).into_owned());
        lines.push((request, offset));
    }
    Ok(LogLines {
        start: from,
        lines,
        end: from + complete as u64,
    })
}

/// The applied offset the node last wrote to the hint file (0 if none).
pub fn applied_hint(data_dir: &Path) -> u64 {
    std::fs::read_to_string(data_dir.join(ADMIN_DIR).join(PEERS_APPLIED_HINT))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the hint file `kithd admin peer list` reads while the node runs (if `admin/`
/// exists: nobody has written a request otherwise).
fn write_applied_hint(data_dir: &Path, offset: u64) {
    let hint = data_dir.join(ADMIN_DIR).join(PEERS_APPLIED_HINT);
    if data_dir.join(ADMIN_DIR).exists() {
        if let Err(e) = std::fs::write(&hint, format!("{offset}\n")) {
            tracing::warn!("could not write {}: {e}", hint.display());
        }
    }
}

/// Applies the peer requests in `<data_dir>/admin/peers.jsonl` that the store has not seen
/// yet, flushes, and returns how many were applied. Called by the node at start, right after
/// the store opens. Unreadable lines are skipped with a warning; a request for the same peer
/// replaces the earlier one (the latest request wins).
///
/// It stops before the first refusal or withdrawal of one ([`AdminRequest::Refuse`],
/// [`AdminRequest::WithdrawRefusal`]): publishing one needs the running node, so that
/// request and those after it are left for [`apply_admin_while_running`], whose first pass
/// runs as soon as the node is up.
pub fn apply_pending_admin(data_dir: &Path, store: &dyn Store) -> Result<usize, AdminLogError> {
    let tail = read_admin_lines(data_dir, store.admin_peers_applied()?)?;
    let mut applied = 0;
    let mut upto = tail.end;
    let mut line_start = tail.start;
    for (request, line_end) in tail.lines {
        match request {
            Ok(request) if request.publishes() => {
                upto = line_start;
                break;
            }
            Ok(request) => {
                let outcome = apply_request(store, &request, None)?;
                tracing::info!(%request, "applied an admin peer request");
                if outcome.nothing_unblocked(&request) {
                    tracing::info!(%request, "there was nothing to unblock: no block was recorded for it");
                }
                applied += 1;
            }
            Err(line) => tracing::warn!(%line, "skipped an unreadable line in admin/peers.jsonl"),
        }
        line_start = line_end;
    }
    store.set_admin_peers_applied(upto)?;
    store.flush()?;
    write_applied_hint(data_dir, upto);
    Ok(applied)
}

/// Applies, while the node runs, the requests appended to the admin log: every
/// [`ADMIN_POLL`] it compares the log's length with the offset applied so far, and applies
/// what is new (see the module documentation for what each request does). Runs until the node
/// shuts down; spawned at start, right after [`apply_pending_admin`]. Its first pass runs at
/// once, for refusals the start-up pass left.
///
/// A request that fails on a store error is tried again on the next pass (applying a peer
/// request twice changes nothing, and a refusal already published with the same reason is not
/// published again).
pub async fn apply_admin_while_running(node: SharedNode, data_dir: PathBuf) {
    match node.blocking(|s| s.peers()).await {
        Ok(peers) => {
            for peer in peers {
                // A block by key, or a blocked address stored with the key that answered there.
                if let (Some(key), PeerStatus::Blocked) = (peer.key, peer.status) {
                    node.federation.block(key);
                }
            }
        }
        Err(e) => tracing::warn!("could not read the blocked peers: {}", e.message),
    }
    let mut applied = None;
    loop {
        match apply_new_admin(&node, &data_dir, applied).await {
            Ok(offset) => applied = Some(offset),
            Err(e) => {
                tracing::warn!(
                    "could not apply new admin requests from {}: {e}. Trying again in {} s",
                    admin_log_path(&data_dir).display(),
                    ADMIN_POLL.as_secs()
                );
                // Start again from what the store says was applied.
                applied = None;
            }
        }
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(ADMIN_POLL) => {}
        }
    }
}

/// One pass of [`apply_admin_while_running`]: applies what the log holds past `known` (the
/// offset applied so far; read from the store when `None`), and returns the new offset.
async fn apply_new_admin(
    node: &SharedNode,
    data_dir: &Path,
    known: Option<u64>,
) -> Result<u64, String> {
    let applied = match known {
        Some(offset) => offset,
        None => node
            .blocking(|s| s.admin_peers_applied())
            .await
            .map_err(|r| r.message)?,
    };
    let len = match tokio::fs::metadata(admin_log_path(data_dir)).await {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.to_string()),
    };
    if len == applied {
        return Ok(applied);
    }
    let tail = {
        let dir = data_dir.to_path_buf();
        tokio::task::spawn_blocking(move || read_admin_lines(&dir, applied))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    if tail.end == applied {
        // Only a line still being written: nothing to do yet.
        return Ok(applied);
    }
    for (request, line_end) in tail.lines {
        match request {
            Ok(AdminRequest::Refuse {
                group,
                member,
                reason,
                ..
            }) => {
                crate::refusal::refuse(node, group, member, &reason).await;
            }
            Ok(AdminRequest::WithdrawRefusal {
                refusal, reason, ..
            }) => {
                crate::refusal::withdraw(node, refusal, reason).await;
            }
            Ok(request) => {
                // For a block by address: the node key that answered there, if this node
                // dialed it since it started.
                let known = match &request {
                    AdminRequest::BlockUrl { url, .. } => {
                        normal_url(url).and_then(|url| node.federation.key_at(&url))
                    }
                    _ => None,
                };
                let stored = request.clone();
                let outcome = node
                    .blocking(move |s| apply_request(s, &stored, known))
                    .await
                    .map_err(|r| r.message)?;
                tracing::info!(%request, "applied an admin peer request");
                act_on(node, &request, &outcome);
            }
            Err(line) => tracing::warn!(%line, "skipped an unreadable line in admin/peers.jsonl"),
        }
        node.blocking(move |s| s.set_admin_peers_applied(line_end))
            .await
            .map_err(|r| r.message)?;
    }
    let end = tail.end;
    node.blocking(move |s| {
        s.set_admin_peers_applied(end)?;
        s.flush()
    })
    .await
    .map_err(|r| r.message)?;
    let dir = data_dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || write_applied_hint(&dir, end)).await;
    Ok(end)
}

/// What the running node does after a request is in the store: dial, cut off or let back
/// the nodes concerned, and say so in its log.
fn act_on(node: &SharedNode, request: &AdminRequest, outcome: &Applied) {
    for key in &outcome.freed {
        node.federation.unblock(key);
    }
    match request {
        AdminRequest::Add { url, .. } => {
            for key in &outcome.freed {
                tracing::info!(%url, peer = %key, "adding the address lifted its block: links with the node there are accepted again");
            }
            // The same text the store holds, so the dialer is not started twice.
            if let Some(url) = normal_url(url) {
                super::connect::dial_peer(node, &url);
            }
        }
        AdminRequest::BlockKey { key, .. } => {
            let closed = node.federation.block(*key);
            tracing::info!(peer = %key, "new links with the blocked node are refused, and {closed} link(s) open with it are closing");
        }
        AdminRequest::BlockUrl { url, .. } => match outcome.blocked {
            Some(key) => {
                let closed = node.federation.block(key);
                tracing::info!(%url, peer = %key, "the blocked address is no longer dialed, and the node that answered there is cut off: new links with it are refused, and {closed} link(s) open with it are closing");
            }
            None => {
                tracing::info!(%url, "the blocked address is no longer dialed, but no link was closed: this node does not know which node key answers there (it has not linked with that address since it started). If that node links with this one by itself, block its node key too: kithd admin peer block kith1… --reason …");
            }
        },
        AdminRequest::UnblockKey { key, .. } => {
            // Also lifts a block the registry holds without a record (none should exist).
            let lifted = node.federation.unblock(key);
            if outcome.removed == 0 && !lifted {
                tracing::info!(peer = %key, "there was nothing to unblock: this node key was not blocked");
            } else {
                tracing::info!(peer = %key, "the node is unblocked: links with it are accepted and opened again");
            }
        }
        AdminRequest::UnblockUrl { url, .. } => {
            if outcome.removed == 0 {
                tracing::info!(%url, "there was nothing to unblock: this address was not blocked");
                return;
            }
            tracing::info!(%url, "the address is unblocked. It is not an added peer now: to link with it again, add it (kithd admin peer add {url})");
            for key in &outcome.freed {
                tracing::info!(%url, peer = %key, "the node that answered at the unblocked address is no longer blocked: links with it are accepted again");
            }
            for key in &outcome.still_blocked {
                tracing::info!(%url, peer = %key, "the node that answered at the unblocked address stays blocked: another block holds its node key (see kithd admin peer list); to lift every block of it: kithd admin peer unblock {key}");
            }
        }
        AdminRequest::Refuse { .. } | AdminRequest::WithdrawRefusal { .. } => {}
    }
}

/// The normalised text of a peer address, if it is one.
fn normal_url(url: &str) -> Option<String> {
    normalize_peer_url(url).ok().map(|u| normalized_text(&u))
}

/// What applying one request changed in the store, for the running node's registry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The node key a block now holds: the blocked key, or the key stored with a blocked
    /// address.
    pub blocked: Option<PublicKey>,
    /// Node keys that no block holds any more: the last block naming them was lifted.
    pub freed: Vec<PublicKey>,
    /// Node keys named by a lifted block that another block still holds.
    pub still_blocked: Vec<PublicKey>,
    /// How many block records an unblock deleted.
    pub removed: usize,
}

impl Applied {
    /// Whether `request` was an unblock that found nothing blocked.
    pub fn nothing_unblocked(&self, request: &AdminRequest) -> bool {
        matches!(
            request,
            AdminRequest::UnblockUrl { .. } | AdminRequest::UnblockKey { .. }
        ) && self.removed == 0
    }
}

/// Applies one request to the store (not flushed).
pub fn apply(store: &dyn Store, request: &AdminRequest) -> Result<(), StoreError> {
    apply_request(store, request, None).map(drop)
}

/// Applies one request to the store (not flushed), and says what changed. `known` is, for a
/// block by address, the node key that proved itself at that address (the registry's
/// [`super::Registry::key_at`]); it is stored with the block, and preferred to a key the
/// record already held.
pub fn apply_request(
    store: &dyn Store,
    request: &AdminRequest,
    known: Option<PublicKey>,
) -> Result<Applied, StoreError> {
    let nothing = Applied::default();
    match request {
        AdminRequest::Add { url, at_ms } => {
            let Some(url) = normal_url(url) else {
                tracing::warn!(%url, "skipped adding a peer with an invalid address");
                return Ok(nothing);
            };
            let old = store.peer(&url)?;
            if old.as_ref().is_some_and(|p| p.status == PeerStatus::Added) {
                return Ok(nothing);
            }
            let key = old.and_then(|p| p.key);
            store.put_peer(&Peer {
                url: Some(url),
                key,
                status: PeerStatus::Added,
                reason: String::new(),
                since_ms: *at_ms,
            })?;
            // Adding a blocked address lifts its block, and so the block of its key, unless
            // another block holds that key.
            Ok(freed_if_unheld(store, key)?)
        }
        AdminRequest::BlockUrl { url, reason, at_ms } => {
            let Some(url) = normal_url(url) else {
                tracing::warn!(%url, "skipped blocking a peer with an invalid address");
                return Ok(nothing);
            };
            let old = store.peer(&url)?;
            let key = known.or(old.and_then(|p| p.key));
            store.put_peer(&Peer {
                url: Some(url),
                key,
                status: PeerStatus::Blocked,
                reason: reason.clone(),
                since_ms: *at_ms,
            })?;
            Ok(Applied {
                blocked: key,
                ..nothing
            })
        }
        AdminRequest::Refuse { .. } | AdminRequest::WithdrawRefusal { .. } => {
            // Not a store record: the running node publishes it as an event.
            Ok(nothing)
        }
        AdminRequest::BlockKey { key, reason, at_ms } => {
            let blocked = |url| Peer {
                url,
                key: Some(*key),
                status: PeerStatus::Blocked,
                reason: reason.clone(),
                since_ms: *at_ms,
            };
            for peer in store.peers()? {
                if peer.url.is_some() && peer.key == Some(*key) {
                    store.put_peer(&blocked(peer.url))?;
                }
            }
            store.put_peer(&blocked(None))?;
            Ok(Applied {
                blocked: Some(*key),
                ..nothing
            })
        }
        AdminRequest::UnblockKey { key, .. } => {
            // Every block of that node: by key, and the addresses blocked with its key.
            let mut removed = 0;
            for peer in store.peers()? {
                if peer.status == PeerStatus::Blocked && peer.key == Some(*key) {
                    store.remove_peer(&peer.id())?;
                    removed += 1;
                }
            }
            Ok(Applied {
                freed: if removed > 0 { vec![*key] } else { Vec::new() },
                removed,
                ..nothing
            })
        }
        AdminRequest::UnblockUrl { url, .. } => {
            let Some(url) = normal_url(url) else {
                tracing::warn!(%url, "skipped unblocking a peer with an invalid address");
                return Ok(nothing);
            };
            // An added peer at that address is not a block: it stays.
            let Some(old) = store
                .peer(&url)?
                .filter(|p| p.status == PeerStatus::Blocked)
            else {
                return Ok(nothing);
            };
            store.remove_peer(&url)?;
            Ok(Applied {
                removed: 1,
                ..freed_if_unheld(store, old.key)?
            })
        }
    }
}

/// `key` as freed if no block holds it any more, else as still blocked.
fn freed_if_unheld(store: &dyn Store, key: Option<PublicKey>) -> Result<Applied, StoreError> {
    let mut out = Applied::default();
    if let Some(key) = key {
        if key_is_blocked(store, &key)? {
            out.still_blocked.push(key);
        } else {
            out.freed.push(key);
        }
    }
    Ok(out)
}

/// Whether some block holds `key`: a block by key, or a blocked address stored with it.
fn key_is_blocked(store: &dyn Store, key: &PublicKey) -> Result<bool, StoreError> {
    Ok(store
        .peers()?
        .iter()
        .any(|p| p.status == PeerStatus::Blocked && p.key.as_ref() == Some(key)))
}

/// Whether a peer with this URL (normalised) or node key is blocked: the address is, or a
/// block holds the key (a block by key, or a blocked address stored with that key).
pub fn is_blocked(
    store: &dyn Store,
    url: Option<&str>,
    key: Option<&PublicKey>,
) -> Result<bool, StoreError> {
    let url_blocked = match url {
        Some(url) => store
            .peer(url)?
            .is_some_and(|p| p.status == PeerStatus::Blocked),
        None => false,
    };
    Ok(url_blocked
        || match key {
            Some(key) => key_is_blocked(store, key)?,
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn key(seed: u8) -> PublicKey {
        kith_protocol::SecretKey::from_seed(&[seed; 32]).public_key()
    }

    fn requests() -> Vec<AdminRequest> {
        vec![
            AdminRequest::Add {
                url: "https://a.example.org".into(),
                at_ms: 1,
            },
            AdminRequest::Add {
                url: "https://b.example.org".into(),
                at_ms: 2,
            },
            AdminRequest::BlockUrl {
                url: "HTTPS://B.example.org/".into(),
                reason: "spam".into(),
                at_ms: 3,
            },
            AdminRequest::BlockKey {
                key: key(7),
                reason: "abuse".into(),
                at_ms: 4,
            },
        ]
    }

    #[test]
    fn log_is_applied_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(&dir.path().join("store"));
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 0);
        for r in requests() {
            append_admin_request(dir.path(), &r).unwrap();
        }
        let log = admin_log_path(dir.path());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A line still being written is left alone; a garbled line is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"not json\n{\"op\":\"add\",\"url\":\"https://c.exa")
            .unwrap();
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 4);
        let peers = store.peers().unwrap();
        assert_eq!(peers.len(), 3, "{peers:?}");
        let a = store.peer("https://a.example.org").unwrap().unwrap();
        assert_eq!((a.status, a.since_ms), (PeerStatus::Added, 1));
        let b = store.peer("https://b.example.org").unwrap().unwrap();
        assert_eq!((b.status, b.reason.as_str()), (PeerStatus::Blocked, "spam"));
        assert!(is_blocked(&store, Some("https://b.example.org"), None).unwrap());
        assert!(is_blocked(&store, None, Some(&key(7))).unwrap());
        assert!(is_blocked(&store, Some("https://a.example.org"), Some(&key(7))).unwrap());
        assert!(!is_blocked(&store, Some("https://a.example.org"), Some(&key(8))).unwrap());
        assert_eq!(
            applied_hint(dir.path()),
            store.admin_peers_applied().unwrap()
        );

        // Nothing new: nothing applied again.
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 0);
        // The partial line is finished later and then applied.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"mple.org\",\"at_ms\":5}\n")
            .unwrap();
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 1);
        assert!(store.peer("https://c.example.org").unwrap().is_some());
        assert_eq!(
            store.admin_peers_applied().unwrap(),
            std::fs::metadata(&log).unwrap().len()
        );
    }

    #[test]
    fn blocking_a_key_blocks_its_addresses_and_adding_again_unblocks_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(dir.path());
        store
            .put_peer(&Peer {
                url: Some("https://a.example.org".into()),
                key: Some(key(1)),
                status: PeerStatus::Added,
                reason: String::new(),
                since_ms: 1,
            })
            .unwrap();
        apply(
            &store,
            &AdminRequest::BlockKey {
                key: key(1),
                reason: "abuse".into(),
                at_ms: 2,
            },
        )
        .unwrap();
        let a = store.peer("https://a.example.org").unwrap().unwrap();
        assert_eq!(a.status, PeerStatus::Blocked);
        assert_eq!(a.key, Some(key(1)));
        let by_key = store.peer(&key_id(&key(1))).unwrap().unwrap();
        assert_eq!((by_key.url, by_key.reason.as_str()), (None, "abuse"));

        let add = AdminRequest::Add {
            url: "https://a.example.org".into(),
            at_ms: 3,
        };
        apply(&store, &add).unwrap();
        let a = store.peer("https://a.example.org").unwrap().unwrap();
        assert_eq!((a.status, a.since_ms), (PeerStatus::Added, 3));
        // The key block still holds.
        assert!(is_blocked(&store, Some("https://a.example.org"), a.key.as_ref()).unwrap());
    }

    #[test]
    fn unblocking_deletes_the_block_records_and_says_which_keys_are_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(dir.path());
        let block_url = |url: &str| AdminRequest::BlockUrl {
            url: url.into(),
            reason: "spam".into(),
            at_ms: 1,
        };
        let block_key = |k| AdminRequest::BlockKey {
            key: k,
            reason: "abuse".into(),
            at_ms: 2,
        };
        let unblock_url = |url: &str| AdminRequest::UnblockUrl {
            url: url.into(),
            at_ms: 3,
        };
        let unblock_key = |k| AdminRequest::UnblockKey { key: k, at_ms: 3 };

        // A block by address, with the key that answered there, blocks that key too.
        let applied = apply_request(&store, &block_url("https://a.example.org"), Some(key(1)));
        assert_eq!(applied.unwrap().blocked, Some(key(1)));
        let a = store.peer("https://a.example.org").unwrap().unwrap();
        assert_eq!((a.status, a.key), (PeerStatus::Blocked, Some(key(1))));
        assert!(is_blocked(&store, None, Some(&key(1))).unwrap());
        // Unblocking the address frees the key.
        let applied = apply_request(&store, &unblock_url("HTTPS://a.example.org/"), None).unwrap();
        assert!(!applied.nothing_unblocked(&unblock_url("https://a.example.org")));
        assert_eq!((applied.removed, applied.freed), (1, vec![key(1)]));
        assert_eq!(store.peers().unwrap(), vec![]);
        assert!(!is_blocked(&store, None, Some(&key(1))).unwrap());

        // Blocked by address and by key: unblocking the address leaves the key blocked;
        // unblocking the key lifts every block of that node.
        apply_request(&store, &block_url("https://b.example.org"), Some(key(2))).unwrap();
        apply(&store, &block_key(key(2))).unwrap();
        let applied = apply_request(&store, &unblock_url("https://b.example.org"), None).unwrap();
        assert_eq!(applied.removed, 1);
        assert_eq!(
            (applied.freed, applied.still_blocked),
            (vec![], vec![key(2)])
        );
        assert!(is_blocked(&store, None, Some(&key(2))).unwrap());
        apply_request(&store, &block_url("https://b.example.org"), Some(key(2))).unwrap();
        let applied = apply_request(&store, &unblock_key(key(2)), None).unwrap();
        assert_eq!((applied.removed, applied.freed), (2, vec![key(2)]));
        assert_eq!(store.peers().unwrap(), vec![]);

        // Nothing blocked: nothing removed, and an added peer is left alone.
        apply(
            &store,
            &AdminRequest::Add {
                url: "https://c.example.org".into(),
                at_ms: 4,
            },
        )
        .unwrap();
        for request in [unblock_url("https://c.example.org"), unblock_key(key(3))] {
            let applied = apply_request(&store, &request, None).unwrap();
            assert_eq!(applied, Applied::default(), "{request}");
            assert!(applied.nothing_unblocked(&request));
        }
        let c = store.peer("https://c.example.org").unwrap().unwrap();
        assert_eq!(c.status, PeerStatus::Added);

        // Adding a blocked address lifts its block, and frees its key.
        apply_request(&store, &block_url("https://d.example.org"), Some(key(4))).unwrap();
        let add = AdminRequest::Add {
            url: "https://d.example.org".into(),
            at_ms: 5,
        };
        assert_eq!(
            apply_request(&store, &add, None).unwrap().freed,
            vec![key(4)]
        );
        // Without a known key, a block by address blocks no key.
        let applied = apply_request(&store, &block_url("https://e.example.org"), None).unwrap();
        assert_eq!(applied.blocked, None);
    }

    #[test]
    fn the_start_up_pass_applies_unblocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(&dir.path().join("store"));
        for request in [
            requests()[3].clone(),
            AdminRequest::BlockUrl {
                url: "https://b.example.org".into(),
                reason: "spam".into(),
                at_ms: 5,
            },
            AdminRequest::UnblockKey {
                key: key(7),
                at_ms: 6,
            },
            AdminRequest::UnblockUrl {
                url: "https://b.example.org".into(),
                at_ms: 7,
            },
            // Nothing to unblock: applied all the same.
            AdminRequest::UnblockUrl {
                url: "https://b.example.org".into(),
                at_ms: 8,
            },
        ] {
            append_admin_request(dir.path(), &request).unwrap();
        }
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 5);
        assert_eq!(store.peers().unwrap(), vec![]);
    }

    #[test]
    fn records_and_requests_are_plain_json() {
        let r = AdminRequest::BlockKey {
            key: key(7),
            reason: "abuse".into(),
            at_ms: 4,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"op":"block_key","key":"kith1"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<AdminRequest>(&text).unwrap(), r);
        for (r, start) in [
            (
                AdminRequest::UnblockKey {
                    key: key(7),
                    at_ms: 5,
                },
                r#"{"op":"unblock_key","key":"kith1"#,
            ),
            (
                AdminRequest::UnblockUrl {
                    url: "https://a.example.org".into(),
                    at_ms: 5,
                },
                r#"{"op":"unblock_url","url":"https://a.example.org","at_ms":5}"#,
            ),
        ] {
            let text = serde_json::to_string(&r).unwrap();
            assert!(text.starts_with(start), "{text}");
            assert_eq!(serde_json::from_str::<AdminRequest>(&text).unwrap(), r);
        }
        let p = Peer {
            url: Some("https://a.example.org".into()),
            key: None,
            status: PeerStatus::Added,
            reason: String::new(),
            since_ms: 9,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"url":"https://a.example.org","status":"added","reason":"","since_ms":9}"#
        );
    }

    #[test]
    fn the_start_up_pass_leaves_refusals_and_what_follows_for_the_running_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_in_test(&dir.path().join("store"));
        let refuse = AdminRequest::Refuse {
            group: GroupId::from_bytes([5; 32]),
            member: Some(key(6)),
            reason: "threats".into(),
            at_ms: 2,
        };
        append_admin_request(dir.path(), &requests()[0]).unwrap();
        let first_line = std::fs::metadata(admin_log_path(dir.path())).unwrap().len();
        append_admin_request(dir.path(), &refuse).unwrap();
        append_admin_request(dir.path(), &requests()[1]).unwrap();

        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 1);
        assert_eq!(store.admin_peers_applied().unwrap(), first_line);
        assert_eq!(applied_hint(dir.path()), first_line);
        assert!(store.peer("https://b.example.org").unwrap().is_none());
        // Applying again at the next start still stops there.
        assert_eq!(apply_pending_admin(dir.path(), &store).unwrap(), 0);

        // What the running node reads next: the refusal, then the add, with their ends.
        let tail = read_admin_lines(dir.path(), first_line).unwrap();
        assert_eq!(tail.start, first_line);
        assert_eq!(tail.lines.len(), 2);
        assert_eq!(tail.lines[0].0.as_ref().unwrap(), &refuse);
        assert_eq!(tail.lines[1].1, tail.end);
        assert_eq!(
            tail.end,
            std::fs::metadata(admin_log_path(dir.path())).unwrap().len()
        );
        assert_eq!(
            refuse.to_string(),
            format!(
                "refuse member {} in group {} (threats)",
                key(6),
                GroupId::from_bytes([5; 32])
            )
        );
        let text = serde_json::to_string(&refuse).unwrap();
        assert!(
            text.starts_with(r#"{"op":"refuse","group":"0505"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<AdminRequest>(&text).unwrap(), refuse);
    }

    #[test]
    fn line_ends_count_blank_lines_and_skip_a_line_still_being_written() {
        let dir = tempfile::tempdir().unwrap();
        append_admin_request(dir.path(), &requests()[0]).unwrap();
        let one = std::fs::metadata(admin_log_path(dir.path())).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(admin_log_path(dir.path()))
            .unwrap()
            .write_all(b"\n\nnot json\n{\"op\":")
            .unwrap();
        let tail = read_admin_lines(dir.path(), 0).unwrap();
        assert_eq!(tail.lines.len(), 2);
        assert_eq!(tail.lines[0].1, one);
        assert_eq!(tail.lines[1].0, Err("not json".to_owned()));
        assert_eq!(tail.lines[1].1, one + 11);
        assert_eq!(tail.end, one + 11);
        // An offset past the end (the log was replaced) reads from the start.
        assert_eq!(read_admin_lines(dir.path(), 10_000).unwrap().start, 0);
    }

    #[test]
    fn a_missing_log_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (requests, end) = read_admin_log(dir.path(), 0).unwrap();
        assert!(requests.is_empty());
        assert_eq!(end, 0);
        assert_eq!(applied_hint(dir.path()), 0);
    }
}
