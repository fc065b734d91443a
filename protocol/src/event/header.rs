//! The signed header: its byte layout, encoder and strict decoder (SPEC.md §3.1).
//!
//! ```text
//! magic "KITH" (4) | version u8 | author key (32) | group flag u8 (0|1) | group id (32, if flag=1)
//! | kind u16 BE | created_at u64 BE (ms) | parent count u8 | parent ids (32 each, strictly ascending)
//! | body length u32 BE | body SHA-256 (32)
//! ```
//!
//! Every field has one valid encoding, so equal headers are equal bytes and a decoder in
//! any language reaches the same verdict.

use sha2::{Digest as _, Sha256};

use super::id::{EventId, GroupId, Timestamp};
use crate::key::{KeyError, PublicKey};
use crate::kind::Kind;
use crate::PROTOCOL_VERSION;

/// The four bytes every header starts with. Other signed messages (login, node links) use
/// other prefixes, so a signature made for one can never be replayed as another.
pub const HEADER_MAGIC: &[u8; 4] = b"KITH";

/// The most parents the format can carry (the count is one byte). Validation sets a lower
/// limit; this one only bounds the decoder.
pub const MAX_PARENTS_FORMAT: usize = u8::MAX as usize;

/// Why bytes could not be read as an event. These are format errors: the bytes are not a
/// well-formed event at all, whatever the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the header (or signature) does.
    #[error(
        "the event is cut short: {field} needs bytes {start}..{end} but there are only {len} bytes"
    )]
    Truncated {
        /// Which field was being read.
        field: &'static str,
        /// Where it starts.
        start: usize,
        /// Where it would end.
        end: usize,
        /// How many bytes there are.
        len: usize,
    },
    /// Not a Kith event.
    #[error("these bytes are not a Kith event: they must start with the bytes \"KITH\"")]
    BadMagic,
    /// A version this implementation does not know.
    #[error(
        "event format version {found} is not supported; this node speaks version(s) {supported:?}"
    )]
    UnsupportedVersion {
        /// The version in the header.
        found: u8,
        /// The versions we decode.
        supported: &'static [u8],
    },
    /// The author field is not an acceptable key.
    #[error("the author key is not acceptable: {0}")]
    AuthorKey(#[from] KeyError),
    /// The group flag byte is neither 0 nor 1.
    #[error("the group flag byte must be 0 (no group) or 1 (a group id follows), found {0}")]
    GroupFlag(u8),
    /// Parent ids not in strictly ascending byte order (or repeated).
    #[error(
        "parent ids must be listed once each in ascending byte order; parent {index} breaks that"
    )]
    ParentsNotCanonical {
        /// Index of the first parent out of order.
        index: usize,
    },
    /// What follows the signature is neither empty (body withheld) nor exactly the body.
    #[error("after the signature there must be either no bytes (body withheld) or exactly the {expected}-byte body, found {found} bytes")]
    BodyLength {
        /// The body length the header declares.
        expected: u32,
        /// The bytes actually present.
        found: usize,
    },
}

/// A decoded event header. Reading its fields is free; producing signed header bytes is
/// only possible through [`super::EventBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (1).
    pub version: u8,
    /// Who wrote and signed the event.
    pub author: PublicKey,
    /// The group the event belongs to, if any.
    pub group: Option<GroupId>,
    /// What kind of event this is; decides how the body is read.
    pub kind: Kind,
    /// When the author says they wrote it.
    pub created_at: Timestamp,
    /// Events the author had seen (causal links), ascending and unique.
    pub parents: Vec<EventId>,
    /// Length of the body in bytes.
    pub body_len: u32,
    /// SHA-256 of the body.
    pub body_hash: [u8; 32],
}

impl Header {
    /// The header's encoding. Private to the crate: only the builder signs what it encodes,
    /// and received headers are kept as the bytes that arrived.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(HEADER_MAGIC);
        out.push(self.version);
        out.extend_from_slice(self.author.as_bytes());
        match &self.group {
            None => out.push(0),
            Some(g) => {
                out.push(1);
                out.extend_from_slice(g.as_bytes());
            }
        }
        out.extend_from_slice(&self.kind.0.to_be_bytes());
        out.extend_from_slice(&self.created_at.0.to_be_bytes());
        // The builder caps parents at MAX_PARENTS_FORMAT before encoding.
        out.push(self.parents.len() as u8);
        for p in &self.parents {
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.body_hash);
        out
    }

    /// How many bytes this header encodes to.
    pub fn encoded_len(&self) -> usize {
        4 + 1
            + 32
            + 1
            + if self.group.is_some() { 32 } else { 0 }
            + 2
            + 8
            + 1
            + 32 * self.parents.len()
            + 4
            + 32
    }

    /// Decodes the header at the start of `bytes`; returns it and its length in bytes.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Header, usize), DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4, "magic")? != HEADER_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8("version")?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: crate::SUPPORTED_VERSIONS,
            });
        }
        let author = PublicKey::from_bytes(&r.array("author key")?)?;
        let group = match r.u8("group flag")? {
            0 => None,
            1 => Some(GroupId::from_bytes(r.array("group id")?)),
            other => return Err(DecodeError::GroupFlag(other)),
        };
        let kind = Kind(u16::from_be_bytes(r.array("kind")?));
        let created_at = Timestamp(u64::from_be_bytes(r.array("created_at")?));
        let count = r.u8("parent count")? as usize;
        let mut parents: Vec<EventId> = Vec::with_capacity(count);
        for index in 0..count {
            let p = EventId::from_bytes(r.array("parent id")?);
            if parents.last().is_some_and(|prev| *prev >= p) {
                return Err(DecodeError::ParentsNotCanonical { index });
            }
            parents.push(p);
        }
        let body_len = u32::from_be_bytes(r.array("body length")?);
        let body_hash = r.array("body hash")?;
        let header = Header {
            version,
            author,
            group,
            kind,
            created_at,
            parents,
            body_len,
            body_hash,
        };
        Ok((header, r.pos))
    }

    /// Whether `body` is the body this header commits to.
    pub fn matches_body(&self, body: &[u8]) -> bool {
        body.len() as u64 == u64::from(self.body_len)
            && <[u8; 32]>::from(Sha256::digest(body)) == self.body_hash
    }
}

/// A forward-only reader over a byte slice that reports where it ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos + n;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated {
                field,
                start: self.pos,
                end,
                len: self.bytes.len(),
            })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
}
