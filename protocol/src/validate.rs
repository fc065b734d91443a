//! Validation of received events against the format, the signature, the caller's limits
//! and the kind registry (SPEC.md §4). The order of the checks is part of the spec, so that
//! every implementation names the same first fault.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::event::{DecodeError, Event, EventId, Timestamp};
use crate::frame::ErrorCode;
use crate::key::{KeyError, PublicKey};
use crate::kind::{BodyError, GroupRule, Kind};

/// The limits an event must respect. Nodes may lower or raise them in their configuration;
/// the defaults are what SPEC.md §4.2 lists.
///
/// Unknown fields are ignored when decoding, so a client can read the limits of a newer node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest event (header, signature and body together) in bytes.
    pub max_event_bytes: usize,
    /// Largest body in bytes.
    pub max_body_bytes: u32,
    /// Most parents one event may list.
    pub max_parents: usize,
    /// Longest text field, in Unicode scalar values.
    pub max_text_chars: usize,
    /// How far in the future (by the validator's clock) `created_at` may be, in ms.
    pub max_future_skew_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 68 * 1024,
            max_body_bytes: 64 * 1024,
            max_parents: 16,
            max_text_chars: 10_000,
            max_future_skew_ms: 15 * 60 * 1000,
        }
    }
}

/// Why an event was refused. Each variant maps to one stable [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The whole event is over the size limit.
    #[error("the event is {size} bytes; this node accepts events of at most {max} bytes")]
    EventTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a well-formed event.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The event's id is not the one it was fetched or announced under.
    #[error("the event's id is {computed}, not the {expected} it was sent as; whoever sent it is mistaken or lying, and it is refused")]
    IdMismatch {
        /// The id asked for.
        expected: EventId,
        /// SHA-256 of the header actually received.
        computed: EventId,
    },
    /// Too many parents.
    #[error("the event lists {count} parents; at most {max} are accepted. Cite only the latest events you saw")]
    TooManyParents {
        /// How many it lists.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The body is over the size limit.
    #[error("the body is {size} bytes; this node accepts bodies of at most {max} bytes")]
    BodyTooLarge {
        /// Declared body length.
        size: u32,
        /// The limit.
        max: u32,
    },
    /// A new event arrived without its body.
    #[error("the event arrived without its body; send the header, signature and body together")]
    BodyMissing,
    /// The body does not hash to the value in the signed header.
    #[error("the body does not match the SHA-256 in the signed header: the body was altered after signing")]
    BodyMismatch,
    /// The signature's S value is not reduced below the group order.
    #[error("the signature is not in canonical form (its S value is not below the group order); it may be a modified copy of a real signature and is refused")]
    NonCanonicalSignature,
    /// The signature does not verify under the author's key.
    #[error("the signature does not match the author key {author}: the event was altered or signed with another key")]
    BadSignature {
        /// The claimed author.
        author: PublicKey,
    },
    /// `created_at` is too far ahead of the validator's clock.
    #[error("the event says it was written at {created_at} ms, {ahead_ms} ms ahead of this node's clock; at most {max_ms} ms ahead is accepted. Check the author's device clock")]
    FromTheFuture {
        /// The claimed time.
        created_at: u64,
        /// How far ahead of `now`.
        ahead_ms: u64,
        /// The allowed skew.
        max_ms: u64,
    },
    /// The kind is not in the registry.
    #[error("event kind {0} is unknown to this node; it may come from a newer Kith version. Known kinds are listed in SPEC.md")]
    UnknownKind(u16),
    /// The kind needs a group and the header has none.
    #[error("a {0} event must belong to a group; name the group")]
    GroupRequired(Kind),
    /// The kind must not be in a group and the header names one.
    #[error("a {0} event cannot belong to a group")]
    GroupForbidden(Kind),
    /// The body breaks the kind's rules.
    #[error("the body of this {kind} event is not acceptable: {error}")]
    Body {
        /// The kind.
        kind: Kind,
        /// What is wrong.
        error: BodyError,
    },
}

impl ValidationError {
    /// The stable machine-readable code for this error (SPEC.md §4.3).
    pub fn code(&self) -> ErrorCode {
        use ValidationError as V;
        match self {
            V::EventTooLarge { .. } => ErrorCode::EventTooLarge,
            V::Decode(DecodeError::AuthorKey(KeyError::Weak(_))) => ErrorCode::WeakKey,
            V::Decode(DecodeError::AuthorKey(_)) => ErrorCode::BadAuthorKey,
            V::Decode(DecodeError::UnsupportedVersion { .. }) => ErrorCode::UnsupportedVersion,
            V::Decode(_) => ErrorCode::MalformedEvent,
            V::IdMismatch { .. } => ErrorCode::IdMismatch,
            V::TooManyParents { .. } => ErrorCode::TooManyParents,
            V::BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            V::BodyMissing => ErrorCode::BodyMissing,
            V::BodyMismatch => ErrorCode::BodyMismatch,
            V::NonCanonicalSignature => ErrorCode::NonCanonicalSignature,
            V::BadSignature { .. } => ErrorCode::BadSignature,
            V::FromTheFuture { .. } => ErrorCode::FromTheFuture,
            V::UnknownKind(_) => ErrorCode::UnknownKind,
            V::GroupRequired(_) | V::GroupForbidden(_) => ErrorCode::BadGroup,
            V::Body { .. } => ErrorCode::BadBody,
        }
    }
}

/// An event that passed [`validate`]: well-formed, within limits, of a known kind, with a
/// body that fits its kind and a signature that verifies strictly. Only this module makes
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEvent(Event);

impl ValidEvent {
    /// The event.
    pub fn into_inner(self) -> Event {
        self.0
    }
}

impl Deref for ValidEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.0
    }
}

/// The group order ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether the signature's S half (bytes 32..64, little-endian) is below ℓ.
pub fn signature_is_canonical(signature: &[u8; 64]) -> bool {
    for i in (0..32).rev() {
        let (s, l) = (signature[32 + i], GROUP_ORDER_LE[i]);
        if s != l {
            return s < l;
        }
    }
    false // S == ℓ
}

/// Decodes and fully validates event bytes.
///
/// `expected_id` is the id the event was requested or announced under, if any: a peer's
/// claim we can check. `now` is the validator's clock.
pub fn validate(
    bytes: &[u8],
    expected_id: Option<&EventId>,
    now: Timestamp,
    limits: &Limits,
) -> Result<ValidEvent, ValidationError> {
    if bytes.len() > limits.max_event_bytes {
        return Err(ValidationError::EventTooLarge {
            size: bytes.len(),
            max: limits.max_event_bytes,
        });
    }
    let event = Event::decode(bytes)?;
    if let Some(expected) = expected_id {
        if *expected != event.id() {
            return Err(ValidationError::IdMismatch {
                expected: *expected,
                computed: event.id(),
            });
        }
    }
    validate_decoded(event, now, limits)
}

/// Validates an already decoded event (all checks after decoding; see [`validate`]).
pub fn validate_decoded(
    event: Event,
    now: Timestamp,
    limits: &Limits,
) -> Result<ValidEvent, ValidationError> {
    check_header(&event, limits)?;
    let header = event.header();
    let body = event.body().ok_or(ValidationError::BodyMissing)?;
    if !header.matches_body(body) {
        return Err(ValidationError::BodyMismatch);
    }
    check_signature(&event)?;
    let ahead_ms = header.created_at.0.saturating_sub(now.0);
    if ahead_ms > limits.max_future_skew_ms {
        return Err(ValidationError::FromTheFuture {
            created_at: header.created_at.0,
            ahead_ms,
            max_ms: limits.max_future_skew_ms,
        });
    }
    let spec = header
        .kind
        .spec()
        .ok_or(ValidationError::UnknownKind(header.kind.0))?;
    match (spec.group, header.group) {
        (GroupRule::Required, None) => return Err(ValidationError::GroupRequired(header.kind)),
        (GroupRule::Forbidden, Some(_)) => {
            return Err(ValidationError::GroupForbidden(header.kind))
        }
        _ => {}
    }
    (spec.check_body)(body, limits).map_err(|error| ValidationError::Body {
        kind: header.kind,
        error,
    })?;
    Ok(ValidEvent(event))
}

fn check_header(event: &Event, limits: &Limits) -> Result<(), ValidationError> {
    let header = event.header();
    if header.parents.len() > limits.max_parents {
        return Err(ValidationError::TooManyParents {
            count: header.parents.len(),
            max: limits.max_parents,
        });
    }
    if header.body_len > limits.max_body_bytes {
        return Err(ValidationError::BodyTooLarge {
            size: header.body_len,
            max: limits.max_body_bytes,
        });
    }
    Ok(())
}

fn check_signature(event: &Event) -> Result<(), ValidationError> {
    if !signature_is_canonical(event.signature()) {
        return Err(ValidationError::NonCanonicalSignature);
    }
    if !event
        .author()
        .verify(event.header_bytes(), event.signature())
    {
        return Err(ValidationError::BadSignature {
            author: event.author(),
        });
    }
    Ok(())
}
