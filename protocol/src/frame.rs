//! Wire frames: the JSON text messages on Kith WebSockets, client↔node (SPEC.md §6).
//!
//! Every frame is one JSON object with `"v"` (the protocol version), `"type"` and, for
//! requests, an `"id"` chosen by the sender and echoed in the reply. Byte strings (events,
//! signatures, challenges) are standard base64. Decoding is two-step: the version and type
//! are read first so that an unknown version is answered with the versions we speak and an
//! unknown type is named, before the fields are checked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::encoding::{from_base64, to_base64};
use crate::event::{Event, EventId, GroupId, Timestamp};
use crate::key::PublicKey;
use crate::kind::Kind;
use crate::validate::Limits;
use crate::{PROTOCOL_VERSION, SUPPORTED_VERSIONS};

/// Path of the WebSocket endpoint on a node.
pub const WS_PATH: &str = "/ws";

/// Longest request or subscription id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Stable error codes carried in error frames. Clients match on these; the message beside
/// them is for people. New codes may be added: unknown ones decode as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not JSON.
    BadJson,
    /// The frame is JSON but a field is missing or of the wrong type.
    BadFrame,
    /// The `type` is not one this node knows.
    UnknownType,
    /// The `v` (or an event's version byte) is not one this node speaks.
    UnsupportedVersion,
    /// The frame is larger than the node accepts.
    FrameTooLarge,
    /// The request needs a logged-in connection.
    AuthRequired,
    /// The login signature or challenge was wrong or stale.
    AuthFailed,
    /// The key is not registered on this node.
    NotRegistered,
    /// The invite code is unknown, used up or expired.
    BadInvite,
    /// Too many requests; slow down.
    RateLimited,
    /// Too many open subscriptions on this connection.
    TooManySubscriptions,
    /// The client reads too slowly; its connection is being closed.
    SlowReader,
    /// The request id is too long or a subscription id is already in use.
    BadRequestId,
    /// The event is over the size limit.
    EventTooLarge,
    /// The event bytes are not well-formed.
    MalformedEvent,
    /// The author key is a weak (small-order) key.
    WeakKey,
    /// The author key is not a valid key.
    BadAuthorKey,
    /// The event's id differs from the one it was sent as.
    IdMismatch,
    /// Too many parents.
    TooManyParents,
    /// The body is over the size limit.
    BodyTooLarge,
    /// The body is missing.
    BodyMissing,
    /// The body does not match the signed hash.
    BodyMismatch,
    /// The signature's S is not canonical.
    NonCanonicalSignature,
    /// The signature does not verify.
    BadSignature,
    /// `created_at` is too far in the future.
    FromTheFuture,
    /// The kind is not registered.
    UnknownKind,
    /// The event's group field breaks its kind's rule.
    BadGroup,
    /// The event names a group this node does not hold.
    UnknownGroup,
    /// Some of the event's parents are not known to this node yet.
    MissingParents,
    /// The group's rules do not allow this event (not a member, no power, wrong tally…).
    NotAllowed,
    /// The group is private and the connection is not logged in as a member.
    MembersOnly,
    /// The body breaks its kind's rules.
    BadBody,
    /// Nothing with that id.
    NotFound,
    /// The node failed; the request may be retried.
    Internal,
    /// The node is shutting down; reconnect later.
    ShuttingDown,
    /// A code this implementation does not know yet.
    #[serde(other)]
    Unknown,
}

/// Event bytes carried in a frame as base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBytes(pub Vec<u8>);

impl From<&Event> for EventBytes {
    fn from(event: &Event) -> Self {
        EventBytes(event.encode())
    }
}

impl Serialize for EventBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_base64(&self.0))
    }
}

impl<'de> Deserialize<'de> for EventBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        from_base64(&text)
            .map(EventBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// A fixed-size byte string in base64 (signatures, challenges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_base64(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = from_base64(&text).map_err(serde::de::Error::custom)?;
        let len = bytes.len();
        bytes
            .try_into()
            .map(Bytes)
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes, got {len}")))
    }
}

/// Which events a subscription wants. Every field that is present must match; a list
/// matches if any of its entries does. Unknown fields are refused so typos are caught.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only these event ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<EventId>>,
    /// Only events in these groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupId>>,
    /// Only these kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<Kind>>,
    /// Only by these authors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authors: Option<Vec<PublicKey>>,
    /// Only events with `created_at >= since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Only events with `created_at <= until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// At most this many stored events (the newest), before live ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl Filter {
    /// Whether `event` matches (ignores `limit`, which only bounds stored results).
    pub fn matches(&self, event: &Event) -> bool {
        fn any<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
            list.as_ref().is_none_or(|l| l.contains(value))
        }
        let h = event.header();
        any(&self.ids, &event.id())
            && self
                .groups
                .as_ref()
                .is_none_or(|gs| h.group.is_some_and(|g| gs.contains(&g)))
            && any(&self.kinds, &h.kind)
            && any(&self.authors, &h.author)
            && self.since.is_none_or(|s| h.created_at >= s)
            && self.until.is_none_or(|u| h.created_at <= u)
    }

    /// Total number of list entries, for bounding the cost of one filter.
    pub fn size(&self) -> usize {
        self.ids.as_ref().map_or(0, Vec::len)
            + self.groups.as_ref().map_or(0, Vec::len)
            + self.kinds.as_ref().map_or(0, Vec::len)
            + self.authors.as_ref().map_or(0, Vec::len)
    }
}

/// Frames a client sends to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// Log in as `key` by signing the connection's challenge (see [`crate::auth`]); an
    /// unregistered key may present an invite code to register at the same time.
    Login {
        /// Request id.
        id: String,
        /// The key logging in.
        key: PublicKey,
        /// Signature over [`crate::auth::login_message`].
        signature: Bytes<64>,
        /// An invite code, to register this key with the node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
    },
    /// Store and relay a signed event.
    Publish {
        /// Request id.
        id: String,
        /// The event bytes.
        event: EventBytes,
    },
    /// Open a subscription: stored matches, then `stored`, then live matches.
    Subscribe {
        /// Subscription id, unique on this connection.
        id: String,
        /// What to match.
        filter: Filter,
    },
    /// Close a subscription.
    Unsubscribe {
        /// The subscription id.
        id: String,
    },
    /// Ask for a group's current state as the node computes it from the group's events
    /// (members, roles and terms, rules, open proposals with missing voices, the log).
    GroupState {
        /// Request id.
        id: String,
        /// The group.
        group: GroupId,
    },
}

/// The `type` values of [`ClientFrame`].
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "login",
    "publish",
    "subscribe",
    "unsubscribe",
    "group_state",
];

/// Frames a node sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeFrame {
    /// Sent once when the connection opens.
    Hello {
        /// The node's key.
        node: PublicKey,
        /// 32 random bytes to sign for [`ClientFrame::Login`]; single use.
        challenge: Bytes<32>,
        /// Protocol versions the node speaks.
        versions: Vec<u8>,
        /// The node's event limits.
        limits: Limits,
    },
    /// A request succeeded. For `publish`, the event is durably stored.
    Ok {
        /// The request id.
        id: String,
        /// The stored event's id (publish only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<EventId>,
        /// True if the event was already stored (publishing is idempotent).
        #[serde(
            default,
            skip_serializing_if = "std::ops::Not::not",
            deserialize_with = "null_as_false"
        )]
        duplicate: bool,
    },
    /// An event matching a subscription.
    Event {
        /// The subscription id.
        sub: String,
        /// The event bytes.
        event: EventBytes,
    },
    /// All stored matches of a subscription have been sent; live ones follow.
    Stored {
        /// The subscription id.
        sub: String,
    },
    /// The node closed a subscription.
    Closed {
        /// The subscription id.
        sub: String,
        /// Why.
        code: ErrorCode,
        /// In plain words.
        message: String,
    },
    /// The answer to [`ClientFrame::GroupState`]. The state is derived from signed events
    /// that a client can fetch and fold itself; this is a convenience, not an authority.
    GroupState {
        /// The request id.
        id: String,
        /// The group.
        group: GroupId,
        /// The state (see SPEC.md §8.1) with views computed at the node's clock.
        state: serde_json::Value,
    },
    /// A request (or the connection) failed.
    Error {
        /// The request id, when the failing frame had a readable one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The stable code.
        code: ErrorCode,
        /// What went wrong and what to do, in plain words.
        message: String,
        /// For `unsupported_version`: the versions the node speaks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supported: Option<Vec<u8>>,
    },
}

/// A `null` member counts as absent (SPEC.md §6.2): for a flag, false.
fn null_as_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// The `type` values of [`NodeFrame`].
pub const NODE_FRAME_TYPES: &[&str] = &[
    "hello",
    "ok",
    "event",
    "stored",
    "closed",
    "group_state",
    "error",
];

/// Why a frame could not be read. Carries the request id when one could be found, so the
/// error reply can name the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct FrameError {
    /// The `id` field of the frame, if it had a string one.
    pub id: Option<String>,
    /// What was wrong.
    pub kind: FrameErrorKind,
}

/// What was wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// Not JSON at all.
    #[error("the frame is not valid JSON ({0}); send one JSON object per text message")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the frame must be a JSON object like {{\"v\":1,\"type\":\"publish\",...}}")]
    NotObject,
    /// No `v` field, or not a number.
    #[error("the frame has no numeric \"v\" (protocol version) field; add \"v\":1")]
    MissingVersion,
    /// A version we do not speak.
    #[error("protocol version {found} is not supported; this side speaks {supported:?}")]
    UnsupportedVersion {
        /// The version sent.
        found: u64,
        /// The versions spoken here.
        supported: &'static [u8],
    },
    /// No `type` field.
    #[error("the frame has no \"type\" text field; it must be one of {expected:?}")]
    MissingType {
        /// The known types.
        expected: &'static [&'static str],
    },
    /// A `type` we do not know.
    #[error("unknown frame type '{found}'; it must be one of {expected:?}")]
    UnknownType {
        /// The type sent.
        found: String,
        /// The known types.
        expected: &'static [&'static str],
    },
    /// A field is missing or has the wrong type or value.
    #[error("the '{frame_type}' frame is not right: {detail}")]
    BadFields {
        /// The frame type.
        frame_type: String,
        /// The parser's message.
        detail: String,
    },
}

impl FrameError {
    /// The error code to send back.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            FrameErrorKind::NotJson(_) => ErrorCode::BadJson,
            FrameErrorKind::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            FrameErrorKind::UnknownType { .. } | FrameErrorKind::MissingType { .. } => {
                ErrorCode::UnknownType
            }
            _ => ErrorCode::BadFrame,
        }
    }

    /// The error frame that answers this error.
    pub fn to_frame(&self) -> NodeFrame {
        let supported = matches!(self.kind, FrameErrorKind::UnsupportedVersion { .. })
            .then(|| SUPPORTED_VERSIONS.to_vec());
        NodeFrame::Error {
            id: self.id.clone(),
            code: self.code(),
            message: self.to_string(),
            supported,
        }
    }
}

fn decode_frame<T: serde::de::DeserializeOwned>(
    text: &str,
    known: &'static [&'static str],
) -> Result<T, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
        id: None,
        kind: FrameErrorKind::NotJson(e.to_string()),
    })?;
    let Value::Object(map) = &value else {
        return Err(FrameError {
            id: None,
            kind: FrameErrorKind::NotObject,
        });
    };
    let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
    let err = |kind| FrameError {
        id: id.clone(),
        kind,
    };
    let version = map
        .get("v")
        .and_then(Value::as_u64)
        .ok_or_else(|| err(FrameErrorKind::MissingVersion))?;
    if !SUPPORTED_VERSIONS.iter().any(|v| u64::from(*v) == version) {
        return Err(err(FrameErrorKind::UnsupportedVersion {
            found: version,
            supported: SUPPORTED_VERSIONS,
        }));
    }
    let frame_type = match map.get("type").and_then(Value::as_str) {
        None => return Err(err(FrameErrorKind::MissingType { expected: known })),
        Some(t) if !known.contains(&t) => {
            return Err(err(FrameErrorKind::UnknownType {
                found: t.chars().take(64).collect(),
                expected: known,
            }))
        }
        Some(t) => t.to_owned(),
    };
    serde_json::from_value(value).map_err(|e| {
        err(FrameErrorKind::BadFields {
            frame_type,
            detail: e.to_string(),
        })
    })
}

/// Reads a frame sent by a client.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    decode_frame(text, CLIENT_FRAME_TYPES)
}

/// Reads a frame sent by a node.
pub fn decode_node_frame(text: &str) -> Result<NodeFrame, FrameError> {
    decode_frame(text, NODE_FRAME_TYPES)
}

/// Writes a frame as JSON text with the `"v"` field first.
pub fn encode_frame<T: Serialize>(frame: &T) -> String {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        v: u8,
        #[serde(flatten)]
        frame: &'a T,
    }
    // Frames are plain data (strings, numbers, lists): serialising them cannot fail.
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        frame,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_with_version_first() {
        let frame = ClientFrame::Publish {
            id: "r1".into(),
            event: EventBytes(vec![1, 2, 3]),
        };
        let text = encode_frame(&frame);
        assert!(text.starts_with(r#"{"v":1,"type":"publish""#), "{text}");
        assert_eq!(decode_client_frame(&text).unwrap(), frame);
    }

    #[test]
    fn unknown_version_is_answered_with_supported_versions() {
        let err = decode_client_frame(r#"{"v":9,"type":"publish","id":"a"}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        match err.to_frame() {
            NodeFrame::Error { id, supported, .. } => {
                assert_eq!(id.as_deref(), Some("a"));
                assert_eq!(supported, Some(vec![1]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn each_error_class_is_named() {
        let code = |t: &str| decode_client_frame(t).unwrap_err().code();
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"publish"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"v":1,"type":"shout"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"v":1,"type":"publish","id":"x"}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"v":1,"type":"publish","id":"x","event":"%%%"}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"v":1,"type":"subscribe","id":"x","filter":{"grups":[]}}"#),
            ErrorCode::BadFrame
        );
    }

    #[test]
    fn unknown_error_codes_decode_as_unknown() {
        let f = decode_node_frame(r#"{"v":1,"type":"error","code":"brand_new","message":"m"}"#)
            .unwrap();
        assert!(matches!(
            f,
            NodeFrame::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }
}
