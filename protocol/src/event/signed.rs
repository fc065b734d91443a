//! [`Event`]: a decoded event, and [`EventBuilder`]: the one place that signs.

use sha2::{Digest as _, Sha256};

use super::header::{DecodeError, Header, MAX_PARENTS_FORMAT};
use super::id::{EventId, GroupId, Timestamp};
use crate::key::{PublicKey, SecretKey};
use crate::kind::Kind;
use crate::PROTOCOL_VERSION;

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An event as decoded from bytes: well-formed, but **not yet trusted**. Its signature,
/// body hash, limits and kind rules are checked by [`crate::validate::validate`], which
/// hands back a [`crate::validate::ValidEvent`].
///
/// The header is kept as the exact bytes that arrived; [`Event::encode`] reproduces the
/// input byte-for-byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    header: Header,
    header_bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    id: EventId,
    body: Option<Vec<u8>>,
}

impl Event {
    /// Reads `header || signature || body`, where the body is either absent (withheld or
    /// withdrawn) or exactly as long as the header says. Checks the format only.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let (header, header_len) = Header::decode_prefix(bytes)?;
        let sig_end = header_len + SIGNATURE_LEN;
        let signature: [u8; SIGNATURE_LEN] = bytes
            .get(header_len..sig_end)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated {
                field: "signature",
                start: header_len,
                end: sig_end,
                len: bytes.len(),
            })?;
        let rest = &bytes[sig_end..];
        let body = if rest.len() as u64 == u64::from(header.body_len) {
            Some(rest.to_vec())
        } else if rest.is_empty() {
            None
        } else {
            return Err(DecodeError::BodyLength {
                expected: header.body_len,
                found: rest.len(),
            });
        };
        let header_bytes = bytes[..header_len].to_vec();
        Ok(Event {
            id: EventId::of_header(&header_bytes),
            header,
            header_bytes,
            signature,
            body,
        })
    }

    /// The wire and storage form: `header || signature || body` (body omitted if absent).
    pub fn encode(&self) -> Vec<u8> {
        let body = self.body.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(self.header_bytes.len() + SIGNATURE_LEN + body.len());
        out.extend_from_slice(&self.header_bytes);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(body);
        out
    }

    /// The event id: SHA-256 of the header bytes.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The decoded header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The exact signed bytes.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The author's signature over the header bytes.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The body, if it is present (it may have been withdrawn or not fetched).
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Shorthand for the header's author.
    pub fn author(&self) -> PublicKey {
        self.header.author
    }

    /// Shorthand for the header's kind.
    pub fn kind(&self) -> Kind {
        self.header.kind
    }

    /// Shorthand for the header's group.
    pub fn group(&self) -> Option<GroupId> {
        self.header.group
    }

    /// Shorthand for the header's creation time.
    pub fn created_at(&self) -> Timestamp {
        self.header.created_at
    }

    /// The same event with its body dropped: the signed header still proves what existed.
    /// A zero-length body cannot be withheld (there is nothing to drop), so it stays, as
    /// decoding the stub would give it back anyway.
    pub fn without_body(&self) -> Event {
        let body = (self.header.body_len == 0).then(Vec::new);
        Event {
            body,
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("header", &self.header)
            .field("body_present", &self.body.is_some())
            .finish()
    }
}

/// Why an event could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// More parents than the format can carry.
    #[error("an event can list at most {MAX_PARENTS_FORMAT} parents, this one has {0}")]
    TooManyParents(usize),
    /// A body longer than the format's 32-bit length.
    #[error("a body can be at most 4 GiB, this one is {0} bytes")]
    BodyTooLarge(usize),
}

/// Builds and signs an event. This is the only code that produces signed header bytes.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    kind: Kind,
    created_at: Timestamp,
    body: Vec<u8>,
    group: Option<GroupId>,
    parents: Vec<EventId>,
}

impl EventBuilder {
    /// An event of `kind`, written at `created_at`, with these body bytes.
    pub fn new(kind: Kind, created_at: Timestamp, body: Vec<u8>) -> Self {
        EventBuilder {
            kind,
            created_at,
            body,
            group: None,
            parents: Vec::new(),
        }
    }

    /// Places the event in a group.
    pub fn group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// Sets the parents (sorted and de-duplicated here, as the format requires).
    pub fn parents(mut self, parents: impl IntoIterator<Item = EventId>) -> Self {
        self.parents = parents.into_iter().collect();
        self.parents.sort_unstable();
        self.parents.dedup();
        self
    }

    /// Encodes the header and signs it with `key`.
    pub fn sign(self, key: &SecretKey) -> Result<Event, BuildError> {
        if self.parents.len() > MAX_PARENTS_FORMAT {
            return Err(BuildError::TooManyParents(self.parents.len()));
        }
        let body_len = u32::try_from(self.body.len())
            .map_err(|_| BuildError::BodyTooLarge(self.body.len()))?;
        let header = Header {
            version: PROTOCOL_VERSION,
            author: key.public_key(),
            group: self.group,
            kind: self.kind,
            created_at: self.created_at,
            parents: self.parents,
            body_len,
            body_hash: Sha256::digest(&self.body).into(),
        };
        let header_bytes = header.encode();
        let signature = key.sign(&header_bytes);
        Ok(Event {
            id: EventId::of_header(&header_bytes),
            header,
            header_bytes,
            signature,
            body: Some(self.body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let key = SecretKey::from_seed(&[9; 32]);
        EventBuilder::new(
            Kind::POST,
            Timestamp(1_700_000_000_000),
            br#"{"text":"hi"}"#.to_vec(),
        )
        .parents([EventId::from_bytes([2; 32]), EventId::from_bytes([1; 32])])
        .sign(&key)
        .unwrap()
    }

    #[test]
    fn encode_decode_is_identity() {
        let e = sample();
        let bytes = e.encode();
        let back = Event::decode(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.header_bytes(), e.header().encode().as_slice());
    }

    #[test]
    fn withheld_body_decodes_as_absent() {
        let e = sample();
        let stub = e.without_body().encode();
        let back = Event::decode(&stub).unwrap();
        assert_eq!(back.body(), None);
        assert_eq!(back.id(), e.id());
    }

    #[test]
    fn partial_body_is_a_format_error() {
        let mut bytes = sample().encode();
        bytes.pop();
        assert!(matches!(
            Event::decode(&bytes),
            Err(DecodeError::BodyLength { .. })
        ));
    }

    #[test]
    fn parents_are_sorted_by_the_builder() {
        let e = sample();
        assert!(e.header().parents[0] < e.header().parents[1]);
    }
}
