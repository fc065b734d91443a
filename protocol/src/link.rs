//! Node-to-node links: the mutual authentication handshake two nodes run before they federate.
//!
//! Each node proves it holds the secret key of the node key it presents, by signing a fresh
//! challenge the other side chose. The side that opens the connection is the **dialer**; it
//! knows (or learns from the peer's `/.well-known/kith`) which key the **listener** should
//! have. [`Dialer`] and [`Listener`] are sans-IO state machines: `handle_frame` takes the
//! peer's frame text, `poll_frame` yields the text to send, the caller moves it and passes
//! in `now` and the 32 random challenge bytes. Nothing here reads a clock or an RNG.
//!
//! # Specification (draft, for SPEC.md)
//!
//! **Frames.** Link frames are JSON text frames like client frames (SPEC.md §6.1): one object
//! with `"v":1` and a `"type"`; unknown top-level members are ignored, `null` counts as absent,
//! a repeated member counts by its last occurrence; keys in text form, byte strings in
//! standard base64. They are decoded in the order of §6.2 ([`decode_link_frame`]), with the
//! types below. A frame longer than [`MAX_LINK_FRAME_BYTES`] is refused before parsing.
//!
//! ```text
//! dialer   → listener  {"v":1,"type":"link_hello","node":<dialer key>,"challenge":<32 bytes>,"versions":[1]}
//! listener → dialer    {"v":1,"type":"link_hello","node":<listener key>,"challenge":<32 bytes>,"versions":[1],"signature":<64 bytes>}
//! dialer   → listener  {"v":1,"type":"link_proof","signature":<64 bytes>}
//! listener → dialer    {"v":1,"type":"link_ok"}
//! ```
//!
//! `challenge` is 32 fresh random bytes chosen by the sender for this connection only;
//! `versions` lists every protocol version the sender speaks. The dialer's `link_hello` MUST
//! NOT carry a `signature`; the listener's MUST.
//!
//! **Signed bytes.** Each side signs, with plain Ed25519 (§3.2), the **link message**
//!
//! ```text
//! "KITH-LINK-1" (11 ASCII bytes: 4b4954482d4c494e4b2d31) || role (1 byte)
//!   || signer key (32) || peer key (32) || peer's challenge (32) || signer's own challenge (32)
//! ```
//!
//! 140 bytes in all ([`link_message`]). The role byte is `0x01` when the dialer signs (in
//! `link_proof`) and `0x02` when the listener signs (in its `link_hello`). The listener
//! signs over the dialer's key and challenge and its own; the dialer over the listener's key
//! and challenge and its own.
//!
//! **Checks.** Every check below that fails ends the handshake; the connection is then
//! closed, and a new connection starts over with new challenges.
//!
//! - Every frame must be of the type expected next; anything else is an error. A node
//!   accepts nothing more than 30 seconds ([`HANDSHAKE_TIMEOUT_MS`]) after it started
//!   (the dialer when it opened the connection, the listener when it accepted it).
//! - On a `link_hello`: `versions` must include a version the receiver speaks; `node` must
//!   not be the receiver's own key (a node never links to itself); if the receiver expects a
//!   particular peer key, `node` must be that key; `challenge` must differ from the
//!   receiver's own challenge (a reflected message is refused even before its signature is
//!   looked at). The listener checks these before it signs anything.
//! - Signatures verify strictly (§3.2) for the peer's `node` key over the link message with
//!   the peer's role.
//! - The dialer is established when `link_ok` arrives; the listener when the `link_proof`
//!   verifies (it then sends `link_ok`). Frames after that belong to the link, not to the
//!   handshake.
//!
//! *Why:* the challenge each side chose makes every signature fresh, so a recorded reply
//! does not verify on another connection. Naming both keys binds a signature to one pair of
//! nodes; the role byte means the listener's signature can never serve as a dialer's proof
//! (reflection) and vice versa. The prefix differs from an event header (`KITH` `0x01`) and
//! from the login message (`KITH-LOGIN-1`), so no link signature is an event or a login, nor
//! the reverse.
//!
//! *Limits:* the handshake authenticates the two keys at its ends; it does not protect the
//! frames that follow. Run it inside TLS (`wss://`) to the listener's name, so that a relay in
//! the middle cannot take over an authenticated connection. Events carry their own
//! signatures regardless. The `versions` lists are not signed: with one version there is
//! nothing to downgrade to, and a future handshake that changes the signed bytes will use a
//! new prefix (`KITH-LINK-2`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Timestamp;
use crate::frame::{encode_frame, Bytes, FrameError, FrameErrorKind};
use crate::key::{PublicKey, SecretKey};
use crate::{PROTOCOL_VERSION, SUPPORTED_VERSIONS};

/// Prefix of the link message.
pub const LINK_MAGIC: &[u8] = b"KITH-LINK-1";

/// Length of the link message: prefix, role, two keys, two challenges.
pub const LINK_MESSAGE_LEN: usize = 11 + 1 + 4 * 32;

/// How long a handshake may take, from its start, in milliseconds.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 30_000;

/// The longest link frame accepted during the handshake, in bytes. The largest real one, the
/// listener's `link_hello`, is 277 bytes.
pub const MAX_LINK_FRAME_BYTES: usize = 4096;

/// The `type` values of [`LinkFrame`].
pub const LINK_FRAME_TYPES: &[&str] = &["link_hello", "link_proof", "link_ok"];

/// Which side of the handshake signs: the role byte of the link message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkRole {
    /// The node that opened the connection; signs in `link_proof`.
    Dialer,
    /// The node that accepted it; signs in its `link_hello`.
    Listener,
}

impl LinkRole {
    /// The role byte: `0x01` for the dialer, `0x02` for the listener.
    pub const fn byte(self) -> u8 {
        match self {
            LinkRole::Dialer => 0x01,
            LinkRole::Listener => 0x02,
        }
    }
}

/// The exact bytes a node signs in the handshake, as `role`: see the module docs.
pub fn link_message(
    role: LinkRole,
    signer: &PublicKey,
    peer: &PublicKey,
    peer_challenge: &[u8; 32],
    own_challenge: &[u8; 32],
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(LINK_MESSAGE_LEN);
    msg.extend_from_slice(LINK_MAGIC);
    msg.push(role.byte());
    msg.extend_from_slice(signer.as_bytes());
    msg.extend_from_slice(peer.as_bytes());
    msg.extend_from_slice(peer_challenge);
    msg.extend_from_slice(own_challenge);
    msg
}

/// The frames of the link handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkFrame {
    /// The first frame each side sends.
    LinkHello {
        /// The sender's node key.
        node: PublicKey,
        /// 32 random bytes for the peer to sign; single use.
        challenge: Bytes<32>,
        /// Every protocol version the sender speaks.
        versions: Vec<u8>,
        /// The listener's signature over [`link_message`] (role `0x02`); absent from the
        /// dialer's hello.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Bytes<64>>,
    },
    /// The dialer's signature over [`link_message`] (role `0x01`).
    LinkProof {
        /// The signature.
        signature: Bytes<64>,
    },
    /// The listener accepted the dialer's proof: the link is up.
    LinkOk,
}

impl LinkFrame {
    /// The frame's `type`.
    pub fn frame_type(&self) -> &'static str {
        match self {
            LinkFrame::LinkHello { .. } => "link_hello",
            LinkFrame::LinkProof { .. } => "link_proof",
            LinkFrame::LinkOk => "link_ok",
        }
    }
}

/// Reads a link frame, checking in the order of SPEC.md §6.2: JSON, object, `v`, `type`, then
/// the members. It does not check the size ([`MAX_LINK_FRAME_BYTES`]); the state machines do.
pub fn decode_link_frame(text: &str) -> Result<LinkFrame, FrameError> {
    let err = |kind| FrameError { id: None, kind };
    let value: Value =
        serde_json::from_str(text).map_err(|e| err(FrameErrorKind::NotJson(e.to_string())))?;
    let Value::Object(map) = &value else {
        return Err(err(FrameErrorKind::NotObject));
    };
    let version = map
        .get("v")
        .and_then(Value::as_u64)
        .ok_or(err(FrameErrorKind::MissingVersion))?;
    if !SUPPORTED_VERSIONS.iter().any(|v| u64::from(*v) == version) {
        return Err(err(FrameErrorKind::UnsupportedVersion {
            found: version,
            supported: SUPPORTED_VERSIONS,
        }));
    }
    let frame_type = match map.get("type").and_then(Value::as_str) {
        Some(t) if LINK_FRAME_TYPES.contains(&t) => t.to_owned(),
        Some(t) => {
            return Err(err(FrameErrorKind::UnknownType {
                found: t.chars().take(64).collect(),
                expected: LINK_FRAME_TYPES,
            }))
        }
        None => {
            return Err(err(FrameErrorKind::MissingType {
                expected: LINK_FRAME_TYPES,
            }))
        }
    };
    serde_json::from_value(value).map_err(|e| {
        err(FrameErrorKind::BadFields {
            frame_type,
            detail: e.to_string(),
        })
    })
}

/// Why a link handshake failed. Every error ends the handshake: close the connection, and
/// dial again (with a new challenge) if it is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The frame could not be read (not JSON, wrong version, unknown type, bad members).
    #[error("the peer's link frame could not be read: {0}")]
    Frame(#[from] FrameError),
    /// The frame is larger than any handshake frame can be.
    #[error("the peer's link frame is {size} bytes; handshake frames are at most {max}")]
    FrameTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A frame of another type than the one due next.
    #[error("expected {expected} from the peer, but it sent '{got}'; the peer does not follow the link handshake")]
    UnexpectedFrame {
        /// What was due.
        expected: &'static str,
        /// The type received.
        got: &'static str,
    },
    /// A frame arrived while this side still had a frame to send: the caller must send
    /// what `poll_frame` returns before handling the peer's next frame.
    #[error("a link frame arrived before this side's own frame was sent; call poll_frame and send its result first")]
    OutOfTurn,
    /// The peer speaks no protocol version this node speaks.
    #[error("the peer speaks protocol versions {theirs:?} and this node {ours:?}; one of the two nodes needs updating")]
    NoCommonVersion {
        /// The versions the peer listed.
        theirs: Vec<u8>,
        /// The versions spoken here.
        ours: &'static [u8],
    },
    /// The peer presented another key than the one expected.
    #[error("the peer presented node key {found}, but {expected} was expected; check the peer's /.well-known/kith and whether its key changed")]
    UnexpectedPeer {
        /// The key expected.
        expected: PublicKey,
        /// The key presented.
        found: PublicKey,
    },
    /// The peer presented this node's own key: the node dialed itself, or a frame was
    /// reflected back to it.
    #[error("the peer presented this node's own key {0}; check that the address does not point back at this node")]
    OwnKey(PublicKey),
    /// The peer's challenge equals this node's: a reflected frame, or a broken random number
    /// generator on one side.
    #[error("the peer sent back this node's own challenge; refusing a reflected handshake (or one side's random number generator is broken)")]
    ChallengeReused,
    /// The listener's hello carries no signature.
    #[error("the listener's link_hello carries no signature over this node's challenge")]
    MissingSignature,
    /// The dialer's hello carries a signature, which it must not.
    #[error("the dialer's link_hello carries a signature, which only the listener's may; the peer may be a listener answering itself")]
    UnexpectedSignature,
    /// The peer's signature does not verify over this handshake.
    #[error("the signature of {peer} does not verify over this handshake: the peer does not hold that key, replayed an old signature, or signs the wrong bytes")]
    BadSignature {
        /// The key it should have been made with.
        peer: PublicKey,
    },
    /// The handshake took longer than allowed.
    #[error("the link handshake took longer than {limit_ms} ms; the peer is too slow or stalled, dial again")]
    TimedOut {
        /// The limit.
        limit_ms: u64,
    },
    /// The handshake succeeded already; later frames belong to the link.
    #[error(
        "the link handshake is complete; frames after it belong to the link, not the handshake"
    )]
    Finished,
}

/// Where a handshake stands (shared by both roles).
#[derive(Debug, Clone)]
enum Step {
    /// Waiting for the peer's `link_hello`.
    AwaitHello,
    /// The peer's hello checked out: the dialer waits for `link_ok`, the listener for
    /// `link_proof`.
    AwaitProof {
        peer: PublicKey,
        peer_challenge: [u8; 32],
    },
    /// Authenticated.
    Established { peer: PublicKey },
    /// Ended with this error.
    Failed(LinkError),
}

/// What both roles hold.
#[derive(Debug)]
struct Core {
    own: SecretKey,
    own_public: PublicKey,
    expected_peer: Option<PublicKey>,
    challenge: [u8; 32],
    deadline: Timestamp,
    step: Step,
    outbox: VecDeque<String>,
}

impl Core {
    fn new(
        own: SecretKey,
        expected_peer: Option<PublicKey>,
        challenge: [u8; 32],
        now: Timestamp,
    ) -> Core {
        Core {
            own_public: own.public_key(),
            own,
            expected_peer,
            challenge,
            deadline: now.plus_millis(HANDSHAKE_TIMEOUT_MS),
            step: Step::AwaitHello,
            outbox: VecDeque::new(),
        }
    }

    /// The checks every frame passes before its content is looked at. Errors here do not
    /// fail the machine by themselves; [`Core::run`] does.
    fn admit(&self, text: &str, now: Timestamp) -> Result<LinkFrame, LinkError> {
        if now > self.deadline {
            return Err(LinkError::TimedOut {
                limit_ms: HANDSHAKE_TIMEOUT_MS,
            });
        }
        if !self.outbox.is_empty() {
            return Err(LinkError::OutOfTurn);
        }
        if text.len() > MAX_LINK_FRAME_BYTES {
            return Err(LinkError::FrameTooLarge {
                size: text.len(),
                max: MAX_LINK_FRAME_BYTES,
            });
        }
        Ok(decode_link_frame(text)?)
    }

    /// Runs `step` unless the handshake is over, and fails the machine if it errs.
    fn run(
        &mut self,
        text: &str,
        now: Timestamp,
        step: impl FnOnce(&mut Core, LinkFrame) -> Result<(), LinkError>,
    ) -> Result<(), LinkError> {
        match &self.step {
            Step::Failed(e) => return Err(e.clone()),
            Step::Established { .. } => return Err(LinkError::Finished),
            Step::AwaitHello | Step::AwaitProof { .. } => {}
        }
        let result = self.admit(text, now).and_then(|frame| step(self, frame));
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    fn fail(&mut self, e: LinkError) {
        self.step = Step::Failed(e);
        self.outbox.clear();
    }

    /// Checks a peer's hello up to (not including) its signature; returns the peer's key
    /// and challenge.
    fn check_hello(
        &self,
        node: PublicKey,
        challenge: [u8; 32],
        versions: &[u8],
    ) -> Result<(PublicKey, [u8; 32]), LinkError> {
        if !versions.contains(&PROTOCOL_VERSION) {
            return Err(LinkError::NoCommonVersion {
                theirs: versions.iter().copied().take(32).collect(),
                ours: SUPPORTED_VERSIONS,
            });
        }
        if node == self.own_public {
            return Err(LinkError::OwnKey(node));
        }
        if let Some(expected) = self.expected_peer {
            if node != expected {
                return Err(LinkError::UnexpectedPeer {
                    expected,
                    found: node,
                });
            }
        }
        if challenge == self.challenge {
            return Err(LinkError::ChallengeReused);
        }
        Ok((node, challenge))
    }

    fn sign(&self, role: LinkRole, peer: &PublicKey, peer_challenge: &[u8; 32]) -> Bytes<64> {
        let msg = link_message(
            role,
            &self.own_public,
            peer,
            peer_challenge,
            &self.challenge,
        );
        Bytes(self.own.sign(&msg))
    }

    fn verify(
        &self,
        role: LinkRole,
        peer: &PublicKey,
        peer_challenge: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<(), LinkError> {
        // The peer signed with itself as signer, us as its peer and our challenge as its
        // peer's challenge.
        let msg = link_message(
            role,
            peer,
            &self.own_public,
            &self.challenge,
            peer_challenge,
        );
        if peer.verify(&msg, signature) {
            Ok(())
        } else {
            Err(LinkError::BadSignature { peer: *peer })
        }
    }

    fn hello(&self, signature: Option<Bytes<64>>) -> String {
        encode_frame(&LinkFrame::LinkHello {
            node: self.own_public,
            challenge: Bytes(self.challenge),
            versions: SUPPORTED_VERSIONS.to_vec(),
            signature,
        })
    }

    fn handle_timeout(&mut self, now: Timestamp) -> Result<(), LinkError> {
        match &self.step {
            Step::Failed(e) => Err(e.clone()),
            Step::Established { .. } => Ok(()),
            Step::AwaitHello | Step::AwaitProof { .. } => {
                if now > self.deadline {
                    let e = LinkError::TimedOut {
                        limit_ms: HANDSHAKE_TIMEOUT_MS,
                    };
                    self.fail(e.clone());
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        matches!(self.step, Step::AwaitHello | Step::AwaitProof { .. }).then_some(self.deadline)
    }

    fn is_established(&self) -> Option<PublicKey> {
        match self.step {
            Step::Established { peer } => Some(peer),
            _ => None,
        }
    }

    fn error(&self) -> Option<&LinkError> {
        match &self.step {
            Step::Failed(e) => Some(e),
            _ => None,
        }
    }
}

fn unexpected(expected: &'static str, frame: &LinkFrame) -> LinkError {
    LinkError::UnexpectedFrame {
        expected,
        got: frame.frame_type(),
    }
}

/// The node that opens the connection.
///
/// Drive it with a [`Listener`] like this (the transport is the caller's):
///
/// ```
/// use kith_protocol::link::{Dialer, Listener};
/// use kith_protocol::{SecretKey, Timestamp};
///
/// let (a, b) = (SecretKey::from_seed(&[1; 32]), SecretKey::from_seed(&[2; 32]));
/// let (a_pub, b_pub) = (a.public_key(), b.public_key());
/// let now = Timestamp(1_700_000_000_000);
/// // The challenges come from the caller's cryptographic RNG.
/// let mut dialer = Dialer::new(a, Some(b_pub), [7; 32], now);
/// let mut listener = Listener::new(b, None, [9; 32], now);
/// loop {
///     let mut moved = false;
///     while let Some(frame) = dialer.poll_frame() {
///         listener.handle_frame(&frame, now)?;
///         moved = true;
///     }
///     while let Some(frame) = listener.poll_frame() {
///         dialer.handle_frame(&frame, now)?;
///         moved = true;
///     }
///     if !moved {
///         break;
///     }
/// }
/// assert_eq!(dialer.is_established(), Some(b_pub));
/// assert_eq!(listener.is_established(), Some(a_pub));
/// # Ok::<(), kith_protocol::link::LinkError>(())
/// ```
#[derive(Debug)]
pub struct Dialer {
    core: Core,
}

impl Dialer {
    /// A handshake as the dialer with key `own`, started at `now`. `expected_peer` is the key
    /// the listener must present (`None` accepts any key, for a first contact whose key is
    /// learnt here). `challenge` must be 32 fresh random bytes. The `link_hello` is ready at
    /// once.
    pub fn new(
        own: SecretKey,
        expected_peer: Option<PublicKey>,
        challenge: [u8; 32],
        now: Timestamp,
    ) -> Dialer {
        let mut core = Core::new(own, expected_peer, challenge, now);
        let hello = core.hello(None);
        core.outbox.push_back(hello);
        Dialer { core }
    }

    /// Takes the listener's next frame. Any error ends the handshake, and is returned again
    /// by every later call.
    pub fn handle_frame(&mut self, text: &str, now: Timestamp) -> Result<(), LinkError> {
        self.core
            .run(text, now, |core, frame| match (&core.step, frame) {
                (
                    Step::AwaitHello,
                    LinkFrame::LinkHello {
                        node,
                        challenge,
                        versions,
                        signature,
                    },
                ) => {
                    let (peer, their_challenge) = core.check_hello(node, challenge.0, &versions)?;
                    let signature = signature.ok_or(LinkError::MissingSignature)?;
                    core.verify(LinkRole::Listener, &peer, &their_challenge, &signature.0)?;
                    let signature = core.sign(LinkRole::Dialer, &peer, &their_challenge);
                    core.outbox
                        .push_back(encode_frame(&LinkFrame::LinkProof { signature }));
                    core.step = Step::AwaitProof {
                        peer,
                        peer_challenge: their_challenge,
                    };
                    Ok(())
                }
                (Step::AwaitHello, frame) => Err(unexpected("link_hello", &frame)),
                (Step::AwaitProof { peer, .. }, LinkFrame::LinkOk) => {
                    core.step = Step::Established { peer: *peer };
                    Ok(())
                }
                (_, frame) => Err(unexpected("link_ok", &frame)),
            })
    }

    /// Checks the deadline when no frame arrived: past it, the handshake fails with
    /// [`LinkError::TimedOut`]. Call it when the time from [`Dialer::poll_timeout`] comes.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), LinkError> {
        self.core.handle_timeout(now)
    }

    /// The next frame to send to the listener, if one is due.
    pub fn poll_frame(&mut self) -> Option<String> {
        self.core.outbox.pop_front()
    }

    /// When the handshake times out, while it is under way.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.core.poll_timeout()
    }

    /// The listener's authenticated key, once the listener has accepted this node.
    pub fn is_established(&self) -> Option<PublicKey> {
        self.core.is_established()
    }

    /// Why the handshake failed, if it did.
    pub fn error(&self) -> Option<&LinkError> {
        self.core.error()
    }
}

/// The node that accepted the connection. See [`Dialer`] for how to drive the two.
#[derive(Debug)]
pub struct Listener {
    core: Core,
}

impl Listener {
    /// A handshake as the listener with key `own`, started at `now` (when the connection was
    /// accepted). `expected_peer` is the key the dialer must present, if only one is welcome
    /// (`None` accepts any). `challenge` must be 32 fresh random bytes. Nothing is sent
    /// before the dialer's `link_hello`.
    pub fn new(
        own: SecretKey,
        expected_peer: Option<PublicKey>,
        challenge: [u8; 32],
        now: Timestamp,
    ) -> Listener {
        Listener {
            core: Core::new(own, expected_peer, challenge, now),
        }
    }

    /// Takes the dialer's next frame. Any error ends the handshake, and is returned again by
    /// every later call.
    pub fn handle_frame(&mut self, text: &str, now: Timestamp) -> Result<(), LinkError> {
        self.core
            .run(text, now, |core, frame| match (&core.step, frame) {
                (
                    Step::AwaitHello,
                    LinkFrame::LinkHello {
                        node,
                        challenge,
                        versions,
                        signature,
                    },
                ) => {
                    let (peer, their_challenge) = core.check_hello(node, challenge.0, &versions)?;
                    if signature.is_some() {
                        return Err(LinkError::UnexpectedSignature);
                    }
                    let signature = core.sign(LinkRole::Listener, &peer, &their_challenge);
                    let hello = core.hello(Some(signature));
                    core.outbox.push_back(hello);
                    core.step = Step::AwaitProof {
                        peer,
                        peer_challenge: their_challenge,
                    };
                    Ok(())
                }
                (Step::AwaitHello, frame) => Err(unexpected("link_hello", &frame)),
                (
                    Step::AwaitProof {
                        peer,
                        peer_challenge,
                    },
                    LinkFrame::LinkProof { signature },
                ) => {
                    let peer = *peer;
                    core.verify(LinkRole::Dialer, &peer, peer_challenge, &signature.0)?;
                    core.outbox.push_back(encode_frame(&LinkFrame::LinkOk));
                    core.step = Step::Established { peer };
                    Ok(())
                }
                (_, frame) => Err(unexpected("link_proof", &frame)),
            })
    }

    /// Checks the deadline when no frame arrived: past it, the handshake fails with
    /// [`LinkError::TimedOut`]. Call it when the time from [`Listener::poll_timeout`] comes.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), LinkError> {
        self.core.handle_timeout(now)
    }

    /// The next frame to send to the dialer, if one is due.
    pub fn poll_frame(&mut self) -> Option<String> {
        self.core.outbox.pop_front()
    }

    /// When the handshake times out, while it is under way.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.core.poll_timeout()
    }

    /// The dialer's authenticated key, once its proof has verified. The `link_ok` that tells
    /// the dialer is then waiting in [`Listener::poll_frame`].
    pub fn is_established(&self) -> Option<PublicKey> {
        self.core.is_established()
    }

    /// Why the handshake failed, if it did.
    pub fn error(&self) -> Option<&LinkError> {
        self.core.error()
    }
}
