//! The registry of event kinds and the rules for each kind's body (SPEC.md §5).
//!
//! A kind is a 16-bit number in the header. Each registered kind names how its body is read
//! and whether it must, may or must not belong to a group. Unknown kinds are refused: a node
//! never stores what it cannot check. Later features add rows to [`REGISTRY`]; numbers are
//! never reused.
//!
//! Bodies of the kinds defined so far are UTF-8 JSON objects. The body bytes are hashed and
//! signed as they are; a verifier parses them but never re-serialises them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::group::{self, body};
use crate::validate::Limits;

/// An event kind: a number from the registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(pub u16);

impl Kind {
    /// A short public text message, optionally in a group.
    pub const POST: Kind = Kind(1);

    /// The registry entry for this kind, if it has one.
    pub fn spec(self) -> Option<&'static KindSpec> {
        REGISTRY.iter().find(|s| s.kind == self)
    }

    /// The kind's registered name, or `None` if unknown.
    pub fn name(self) -> Option<&'static str> {
        self.spec().map(|s| s.name)
    }

    /// The kind with this registered name.
    pub fn from_name(name: &str) -> Option<Kind> {
        REGISTRY.iter().find(|s| s.name == name).map(|s| s.kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "unknown kind {}", self.0),
        }
    }
}

/// Whether events of a kind belong to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRule {
    /// The header may or may not name a group.
    Optional,
    /// The header must name a group.
    Required,
    /// The header must not name a group.
    Forbidden,
}

/// One row of the registry.
#[derive(Debug)]
pub struct KindSpec {
    /// The number in the header.
    pub kind: Kind,
    /// The name used in SPEC.md, the CLI and JSON views.
    pub name: &'static str,
    /// Whether the event sits in a group.
    pub group: GroupRule,
    /// Checks the body bytes against the kind's rules and the caller's limits.
    pub check_body: fn(&[u8], &Limits) -> Result<(), BodyError>,
}

/// Every kind this implementation accepts.
pub static REGISTRY: &[KindSpec] = &[
    KindSpec {
        kind: Kind::POST,
        name: "post",
        group: GroupRule::Optional,
        check_body: |bytes, limits| PostBody::parse(bytes, limits).map(drop),
    },
    KindSpec {
        kind: group::GROUP_CREATE,
        name: "group_create",
        group: GroupRule::Forbidden,
        check_body: |b, l| body::GroupCreate::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::INVITE,
        name: "group_invite",
        group: GroupRule::Required,
        check_body: |b, l| body::Invite::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::JOIN,
        name: "group_join",
        group: GroupRule::Required,
        check_body: |b, l| body::Join::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::LEAVE,
        name: "group_leave",
        group: GroupRule::Required,
        check_body: |b, l| body::Leave::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::PROFILE,
        name: "group_profile",
        group: GroupRule::Required,
        check_body: |b, l| body::Profile::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::HIDE,
        name: "group_hide",
        group: GroupRule::Required,
        check_body: |b, l| body::Moderate::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::UNHIDE,
        name: "group_unhide",
        group: GroupRule::Required,
        check_body: |b, l| body::Moderate::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::NODE_REFUSAL,
        name: "node_refusal",
        group: GroupRule::Required,
        check_body: |b, l| body::NodeRefusal::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::NODE_REFUSAL_WITHDRAWAL,
        name: "node_refusal_withdrawal",
        group: GroupRule::Required,
        check_body: |b, l| body::NodeRefusalWithdrawal::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::PROPOSAL,
        name: "proposal",
        group: GroupRule::Required,
        check_body: |b, l| body::Proposal::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::STANCE,
        name: "stance",
        group: GroupRule::Required,
        check_body: |b, l| body::Stance::parse(b, l).map(drop),
    },
    KindSpec {
        kind: group::OUTCOME,
        name: "outcome",
        group: GroupRule::Required,
        check_body: |b, l| body::Outcome::parse(b, l).map(drop),
    },
];

/// Why a body does not fit its kind's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Not a JSON object of the right shape (the parser's message says where).
    #[error("the body is not the JSON object this kind needs: {0}")]
    Shape(String),
    /// A text field is longer than allowed.
    #[error("the field '{field}' is {found} characters long; the limit is {max}. Shorten it or split it into several posts")]
    TextTooLong {
        /// The field.
        field: &'static str,
        /// The limit in Unicode scalar values.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// A text field that must say something is empty or only white space.
    #[error("the field '{0}' is empty; write something in it")]
    Empty(&'static str),
}

/// Parses a body that must be a JSON object. serde's derived decoders would also take a
/// struct written as a JSON array (`["hi"]`); other implementations would not, so arrays
/// are refused here, before serde sees them.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyError::Shape(
            "the body must be a JSON object, starting with '{'".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| BodyError::Shape(e.to_string()))
}

/// Checks a text field's length in Unicode scalar values and, if `required`, that it says
/// something (not only white space). Shared by every kind's body rules.
pub(crate) fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    required: bool,
) -> Result<(), BodyError> {
    let found = text.chars().count();
    if found > max {
        return Err(BodyError::TextTooLong { field, max, found });
    }
    if required && text.trim().is_empty() {
        return Err(BodyError::Empty(field));
    }
    Ok(())
}

/// The body of a [`Kind::POST`] event: `{"text": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostBody {
    /// The message, plain text (UTF-8, not empty, at most `Limits::max_text_chars`).
    pub text: String,
}

impl PostBody {
    /// Parses and checks a post body.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<PostBody, BodyError> {
        let body: PostBody = parse_json(bytes)?;
        check_text("text", &body.text, limits.max_text_chars, true)?;
        Ok(body)
    }

    /// The body bytes for this post (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
