//! Property tests for kith-protocol.
//!
//! Strategies build arbitrary *valid* post events (random author seed, optional group,
//! 0..=16 parents, any `created_at`, non-blank Unicode text), arbitrary wire frames and
//! arbitrary keys, and check:
//!
//! - events: encode → decode is the identity (same `Event`, same bytes), the id is SHA-256
//!   of the header bytes and the signature verifies with plain ed25519; a built event
//!   validates at `now = created_at`; any single flipped bit anywhere makes `validate`
//!   fail (and the failure names the damaged part); any truncation or extension fails;
//! - frames: every client and node frame round-trips through `encode_frame` and
//!   `decode_*`, its text form is canonical, and the other side's decoder refuses it;
//! - keys: text forms round-trip, and any single-character substitution in a key's text
//!   form is refused (a substitution by a bech32 character in the data part is caught by
//!   the checksum).
//!
//! Counterexamples that proptest finds are saved under `protocol/proptest-regressions/`
//! (the working directory of integration tests is the package root) and replayed first on
//! every later run; commit them.

mod common;

use kith_protocol::event::{DecodeError, SIGNATURE_LEN};
use kith_protocol::frame::{
    decode_client_frame, decode_node_frame, encode_frame, Bytes, ClientFrame, ErrorCode,
    EventBytes, Filter, FrameErrorKind, NodeFrame,
};
use kith_protocol::key::KeyError;
use kith_protocol::kind::PostBody;
use kith_protocol::validate::validate;
use kith_protocol::{
    Event, EventBuilder, EventId, GroupId, Kind, Limits, PublicKey, SecretKey, Timestamp,
    ValidationError,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use sha2::{Digest as _, Sha256};

/// The 32 characters of the bech32 data alphabet.
const BECH32_CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

// Case counts, chosen so the whole file runs in a few seconds in a debug build on two
// cores (dependencies are optimised by the workspace's dev profile). Set PROPTEST_CASES to
// override all of them for a longer run.
const EVENT_CASES: u32 = 1024;
const FLIP_CASES: u32 = 8192;
const FRAME_CASES: u32 = 1024;
const KEY_CASES: u32 = 2048;

fn config(cases: u32) -> ProptestConfig {
    common::proptest_config(cases, "proptest-regressions/properties.txt")
}

/// Limits under which only integrity checks (format, hashes, signature) can fail.
fn permissive() -> Limits {
    Limits {
        max_event_bytes: usize::MAX,
        max_body_bytes: u32::MAX,
        max_parents: usize::from(u8::MAX),
        max_text_chars: usize::MAX,
        max_future_skew_ms: u64::MAX,
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Everything needed to build one post event; shrinks field by field.
#[derive(Debug, Clone)]
struct PostRecipe {
    seed: [u8; 32],
    group: Option<[u8; 32]>,
    parents: Vec<[u8; 32]>,
    created_at: u64,
    text: String,
}

impl PostRecipe {
    fn key(&self) -> SecretKey {
        SecretKey::from_seed(&self.seed)
    }

    fn body(&self) -> Vec<u8> {
        PostBody {
            text: self.text.clone(),
        }
        .to_bytes()
    }

    fn build(&self) -> Event {
        let mut builder = EventBuilder::new(Kind::POST, Timestamp(self.created_at), self.body())
            .parents(self.parents.iter().copied().map(EventId::from_bytes));
        if let Some(group) = self.group {
            builder = builder.group(GroupId::from_bytes(group));
        }
        builder
            .sign(&self.key())
            .expect("16 parents and a small body always build")
    }
}

/// Non-blank post text of up to 300 characters: mostly printable Unicode, sometimes any
/// `char` at all (controls, quotes and backslashes exercise the JSON escapes).
fn post_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{1,300}",
        1 => vec(any::<char>(), 1..300).prop_map(String::from_iter),
    ]
    .prop_filter("a post's text must not be blank", |t| !t.trim().is_empty())
}

fn created_at() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Around now, as real clocks say.
        1_600_000_000_000u64..2_000_000_000_000,
        any::<u64>(),
    ]
}

fn post() -> impl Strategy<Value = PostRecipe> {
    (
        any::<[u8; 32]>(),
        option::of(any::<[u8; 32]>()),
        vec(any::<[u8; 32]>(), 0..=16),
        created_at(),
        post_text(),
    )
        .prop_map(|(seed, group, parents, created_at, text)| PostRecipe {
            seed,
            group,
            parents,
            created_at,
            text,
        })
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| SecretKey::from_seed(&seed).public_key())
}

fn event_id() -> impl Strategy<Value = EventId> {
    any::<[u8; 32]>().prop_map(EventId::from_bytes)
}

fn group_id() -> impl Strategy<Value = GroupId> {
    any::<[u8; 32]>().prop_map(GroupId::from_bytes)
}

/// Request and subscription ids: usually tame, sometimes any characters at all.
fn request_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,16}",
        vec(any::<char>(), 0..24).prop_map(String::from_iter),
    ]
}

fn message() -> impl Strategy<Value = String> {
    "\\PC{0,80}"
}

/// Event bytes in a frame: a real signed event or arbitrary bytes (frames do not check
/// what they carry).
fn event_bytes() -> impl Strategy<Value = EventBytes> {
    prop_oneof![
        post().prop_map(|r| EventBytes::from(&r.build())),
        vec(any::<u8>(), 0..300).prop_map(EventBytes),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        option::of(vec(event_id(), 0..4)),
        option::of(vec(group_id(), 0..4)),
        option::of(vec(any::<u16>().prop_map(Kind), 0..4)),
        option::of(vec(public_key(), 0..3)),
        option::of(any::<u64>().prop_map(Timestamp)),
        option::of(any::<u64>().prop_map(Timestamp)),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(ids, groups, kinds, authors, since, until, limit)| Filter {
                ids,
                groups,
                kinds,
                authors,
                since,
                until,
                limit,
            },
        )
}

fn signature64() -> impl Strategy<Value = Bytes<64>> {
    vec(any::<u8>(), 64).prop_map(|v| Bytes(v.try_into().expect("64 bytes")))
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    use ErrorCode as E;
    select(vec![
        E::BadJson,
        E::BadFrame,
        E::UnknownType,
        E::UnsupportedVersion,
        E::FrameTooLarge,
        E::AuthRequired,
        E::AuthFailed,
        E::NotRegistered,
        E::BadInvite,
        E::RateLimited,
        E::TooManySubscriptions,
        E::SlowReader,
        E::BadRequestId,
        E::EventTooLarge,
        E::MalformedEvent,
        E::WeakKey,
        E::BadAuthorKey,
        E::IdMismatch,
        E::TooManyParents,
        E::BodyTooLarge,
        E::BodyMissing,
        E::BodyMismatch,
        E::NonCanonicalSignature,
        E::BadSignature,
        E::FromTheFuture,
        E::UnknownKind,
        E::BadGroup,
        E::BadBody,
        E::NotFound,
        E::Internal,
        E::ShuttingDown,
        E::Unknown,
    ])
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        any::<usize>(),
        any::<u32>(),
        any::<usize>(),
        any::<usize>(),
        any::<u64>(),
    )
        .prop_map(
            |(max_event_bytes, max_body_bytes, max_parents, max_text_chars, skew)| Limits {
                max_event_bytes,
                max_body_bytes,
                max_parents,
                max_text_chars,
                max_future_skew_ms: skew,
            },
        )
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (request_id(), event_bytes()).prop_map(|(id, event)| ClientFrame::Publish { id, event }),
        (request_id(), filter()).prop_map(|(id, filter)| ClientFrame::Subscribe { id, filter }),
        (
            request_id(),
            public_key(),
            signature64(),
            option::of(request_id())
        )
            .prop_map(|(id, key, signature, invite)| ClientFrame::Login {
                id,
                key,
                signature,
                invite,
            }),
        request_id().prop_map(|id| ClientFrame::Unsubscribe { id }),
    ]
}

fn node_frame() -> impl Strategy<Value = NodeFrame> {
    prop_oneof![
        (request_id(), event_bytes()).prop_map(|(sub, event)| NodeFrame::Event { sub, event }),
        (
            public_key(),
            any::<[u8; 32]>(),
            vec(any::<u8>(), 0..4),
            limits()
        )
            .prop_map(|(node, challenge, versions, limits)| NodeFrame::Hello {
                node,
                challenge: Bytes(challenge),
                versions,
                limits,
            }),
        (request_id(), option::of(event_id()), any::<bool>()).prop_map(
            |(id, event_id, duplicate)| NodeFrame::Ok {
                id,
                event_id,
                duplicate,
            }
        ),
        request_id().prop_map(|sub| NodeFrame::Stored { sub }),
        (request_id(), error_code(), message())
            .prop_map(|(sub, code, message)| NodeFrame::Closed { sub, code, message }),
        (
            option::of(request_id()),
            error_code(),
            message(),
            option::of(vec(any::<u8>(), 0..4))
        )
            .prop_map(|(id, code, message, supported)| NodeFrame::Error {
                id,
                code,
                message,
                supported,
            }),
    ]
}

/// The request id a client frame carries (every client frame has one).
fn client_frame_id(frame: &ClientFrame) -> Option<&str> {
    match frame {
        ClientFrame::Publish { id, .. }
        | ClientFrame::Subscribe { id, .. }
        | ClientFrame::Login { id, .. }
        | ClientFrame::Unsubscribe { id } => Some(id),
        _ => None,
    }
}

/// A key's text with the character at `index` replaced by `with`.
fn substitute(text: &str, index: usize, with: char) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| if i == index { with } else { c })
        .collect()
}

/// A replacement character: usually a bech32 character (the typo a person makes), else
/// anything at all.
fn replacement() -> impl Strategy<Value = char> {
    prop_oneof![
        2 => select(BECH32_CHARSET.chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ]
}

// ---------------------------------------------------------------------------------------
// (a), (b), (c): events
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(EVENT_CASES))]

    /// (a) encode → decode gives the identical event and the identical bytes, and the
    /// decoded fields are the ones the builder was given.
    #[test]
    fn event_encode_decode_is_identity(recipe in post()) {
        let event = recipe.build();
        let bytes = event.encode();
        let back = Event::decode(&bytes).expect("a built event decodes");
        prop_assert_eq!(&back, &event);
        prop_assert_eq!(back.encode(), bytes.clone());

        // Layout: header || signature || body, and the header knows its own length.
        let header = back.header();
        let header_len = back.header_bytes().len();
        prop_assert_eq!(header.encoded_len(), header_len);
        prop_assert_eq!(&bytes[..header_len], back.header_bytes());
        prop_assert_eq!(&bytes[header_len..header_len + SIGNATURE_LEN], &back.signature()[..]);
        prop_assert_eq!(&bytes[header_len + SIGNATURE_LEN..], &recipe.body()[..]);

        // The fields are what the recipe said.
        prop_assert_eq!(header.author, recipe.key().public_key());
        prop_assert_eq!(header.group, recipe.group.map(GroupId::from_bytes));
        prop_assert_eq!(header.kind, Kind::POST);
        prop_assert_eq!(header.created_at, Timestamp(recipe.created_at));
        let mut parents = recipe.parents.clone();
        parents.sort_unstable();
        parents.dedup();
        let parents: Vec<EventId> = parents.into_iter().map(EventId::from_bytes).collect();
        prop_assert_eq!(&header.parents, &parents);
        prop_assert_eq!(header.body_len as usize, recipe.body().len());
        prop_assert!(header.matches_body(&recipe.body()));

        // The id is SHA-256 of the header bytes, computed independently here.
        let id: [u8; 32] = Sha256::digest(back.header_bytes()).into();
        prop_assert_eq!(back.id(), EventId::from_bytes(id));

        // The signature is a plain RFC 8032 signature over the header bytes.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(header.author.as_bytes())
            .expect("author key");
        let sig = ed25519_dalek::Signature::from_bytes(back.signature());
        prop_assert!(vk.verify_strict(back.header_bytes(), &sig).is_ok());

        // Without its body the event keeps its id and still round-trips.
        let stub = event.without_body().encode();
        prop_assert_eq!(stub.len(), header_len + SIGNATURE_LEN);
        let stub_back = Event::decode(&stub).expect("a stub decodes");
        prop_assert_eq!(stub_back.id(), event.id());
        prop_assert_eq!(stub_back.body(), None);
        prop_assert_eq!(stub_back.encode(), stub);
    }

    /// (b) a built event validates at `now = created_at`, under the id it was built with,
    /// and the validated event is the event.
    #[test]
    fn built_event_validates(recipe in post()) {
        let event = recipe.build();
        let bytes = event.encode();
        let limits = Limits::default();
        let now = Timestamp(recipe.created_at);
        let valid = validate(&bytes, Some(&event.id()), now, &limits);
        prop_assert!(valid.is_ok(), "{:?}", valid);
        prop_assert_eq!(&*valid.expect("checked"), &event);

        // The future-skew boundary: exactly `max_future_skew_ms` ahead is accepted, one
        // millisecond more is not.
        let skew = limits.max_future_skew_ms;
        let earliest = Timestamp(recipe.created_at.saturating_sub(skew));
        prop_assert!(validate(&bytes, None, earliest, &limits).is_ok());
        if recipe.created_at > skew {
            let too_early = Timestamp(recipe.created_at - skew - 1);
            let err = validate(&bytes, None, too_early, &limits);
            let is_future = matches!(err, Err(ValidationError::FromTheFuture { .. }));
            prop_assert!(is_future, "{:?}", err);
        }

        // The wrong expected id is an id mismatch, whatever else holds.
        let mut other = *event.id().as_bytes();
        other[0] ^= 1;
        let err = validate(&bytes, Some(&EventId::from_bytes(other)), now, &limits);
        prop_assert!(matches!(err, Err(ValidationError::IdMismatch { .. })), "{:?}", err);

        // A stub (body withheld) decodes but is not acceptable as a new event.
        let stub = event.without_body().encode();
        prop_assert_eq!(
            validate(&stub, None, now, &limits).map(|_| ()),
            Err(ValidationError::BodyMissing)
        );
    }

}

proptest! {
    #![proptest_config(config(FLIP_CASES))]

    /// (c) flipping any single bit anywhere in the encoding makes `validate` fail. Under
    /// permissive limits and a clock far ahead only integrity checks can fail, so the error
    /// also says which part was damaged: a body bit is a body mismatch, a signature bit a
    /// bad (or non-canonical) signature.
    #[test]
    fn any_single_bit_flip_is_rejected(recipe in post(), bit in any::<Index>()) {
        let event = recipe.build();
        let mut bytes = event.encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);

        let now = Timestamp(recipe.created_at);
        prop_assert!(validate(&bytes, None, now, &Limits::default()).is_err());

        let err = match validate(&bytes, None, Timestamp(u64::MAX), &permissive()) {
            Ok(_) => return Err(TestCaseError::fail(format!("bit {bit} flipped and still valid"))),
            Err(err) => err,
        };
        let header_len = event.header_bytes().len();
        let byte = bit / 8;
        if byte >= header_len + SIGNATURE_LEN {
            prop_assert_eq!(err, ValidationError::BodyMismatch);
        } else if byte >= header_len {
            prop_assert!(
                matches!(
                    err,
                    ValidationError::BadSignature { .. } | ValidationError::NonCanonicalSignature
                ),
                "signature bit {} gave {:?}", bit, err
            );
        }
    }

    /// (c') the same, concentrated on the 512 signature bits where malleability would hide.
    #[test]
    fn any_signature_bit_flip_is_rejected(recipe in post(), bit in 0usize..512) {
        let event = recipe.build();
        let mut bytes = event.encode();
        let at = event.header_bytes().len() * 8 + bit;
        bytes[at / 8] ^= 1 << (at % 8);
        let err = validate(&bytes, None, Timestamp(u64::MAX), &permissive());
        // S is below ℓ < 2^253, so flipping one of its top three bits makes it
        // non-canonical; every other flip must fail the signature itself.
        let expected_non_canonical = bit >= 256 + 253;
        if expected_non_canonical {
            prop_assert_eq!(err.map(|_| ()), Err(ValidationError::NonCanonicalSignature));
        } else {
            let bad = matches!(
                err,
                Err(ValidationError::BadSignature { .. } | ValidationError::NonCanonicalSignature)
            );
            prop_assert!(bad, "{:?}", err);
        }
    }

}

proptest! {
    #![proptest_config(config(EVENT_CASES))]

    /// Cutting the encoding short anywhere, or adding bytes, makes it fail.
    #[test]
    fn truncation_and_extension_are_rejected(
        recipe in post(),
        cut in any::<Index>(),
        extra in vec(any::<u8>(), 1..40),
    ) {
        let event = recipe.build();
        let bytes = event.encode();
        let now = Timestamp(recipe.created_at);
        let cut = cut.index(bytes.len());
        let short = &bytes[..cut];
        let err = validate(short, None, now, &permissive());
        prop_assert!(err.is_err());
        if cut < event.header_bytes().len() + SIGNATURE_LEN {
            let truncated = matches!(
                err,
                Err(ValidationError::Decode(DecodeError::Truncated { .. }))
            );
            prop_assert!(truncated, "cut at {}: {:?}", cut, err);
        }

        let mut long = bytes.clone();
        long.extend_from_slice(&extra);
        let err = validate(&long, None, now, &permissive());
        let body_length = matches!(
            err,
            Err(ValidationError::Decode(DecodeError::BodyLength { .. }))
        );
        prop_assert!(body_length, "{:?}", err);
    }
}

// ---------------------------------------------------------------------------------------
// (d): frames
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(FRAME_CASES))]

    /// (d) client frames round-trip, their text is canonical (re-encoding the decoded
    /// frame gives the same text), a node refuses them by type, and a bumped version is
    /// answered with the frame's request id.
    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let text = encode_frame(&frame);
        prop_assert!(text.starts_with(r#"{"v":1,"type":""#), "{}", text);
        let back = decode_client_frame(&text);
        prop_assert_eq!(back.as_ref(), Ok(&frame), "{}", text);
        prop_assert_eq!(encode_frame(&back.expect("checked")), text.clone());

        let err = decode_node_frame(&text).expect_err("a client frame is not a node frame");
        let unknown_type = matches!(err.kind, FrameErrorKind::UnknownType { .. });
        prop_assert!(unknown_type, "{:?}", err);

        let v2 = text.replacen(r#"{"v":1,"#, r#"{"v":2,"#, 1);
        let err = decode_client_frame(&v2).expect_err("version 2 is not spoken");
        prop_assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        prop_assert_eq!(err.id.as_deref(), client_frame_id(&frame));
    }

    /// (d) node frames round-trip the same way, and a client refuses them by type.
    #[test]
    fn node_frames_round_trip(frame in node_frame()) {
        let text = encode_frame(&frame);
        prop_assert!(text.starts_with(r#"{"v":1,"type":""#), "{}", text);
        let back = decode_node_frame(&text);
        prop_assert_eq!(back.as_ref(), Ok(&frame), "{}", text);
        prop_assert_eq!(encode_frame(&back.expect("checked")), text.clone());

        let err = decode_client_frame(&text).expect_err("a node frame is not a client frame");
        let unknown_type = matches!(err.kind, FrameErrorKind::UnknownType { .. });
        prop_assert!(unknown_type, "{:?}", err);
    }

    /// (d) an event published in a frame and delivered in another arrives intact and valid.
    #[test]
    fn events_survive_publish_and_delivery(recipe in post(), id in request_id()) {
        let event = recipe.build();
        let publish = encode_frame(&ClientFrame::Publish { id: id.clone(), event: (&event).into() });
        let received = match decode_client_frame(&publish) {
            Ok(ClientFrame::Publish { event: bytes, .. }) => bytes,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let now = Timestamp(recipe.created_at);
        let valid = validate(&received.0, Some(&event.id()), now, &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;

        let delivery = encode_frame(&NodeFrame::Event { sub: id, event: (&*valid).into() });
        let delivered = match decode_node_frame(&delivery) {
            Ok(NodeFrame::Event { event: bytes, .. }) => bytes,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(delivered.0, event.encode());
    }
}

// ---------------------------------------------------------------------------------------
// (e): keys
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(KEY_CASES))]

    /// (e) public and secret keys round-trip through their text forms (and JSON), and
    /// each text form is refused as the other kind of key.
    #[test]
    fn key_text_round_trips(seed in any::<[u8; 32]>()) {
        let sk = SecretKey::from_seed(&seed);
        let pk = sk.public_key();

        let text = pk.to_string();
        prop_assert!(text.starts_with("kith1"));
        prop_assert_eq!(text.len(), 63);
        prop_assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        prop_assert_eq!(text.parse::<PublicKey>(), Ok(pk));
        prop_assert_eq!(PublicKey::from_bytes(pk.as_bytes()), Ok(pk));

        let json = serde_json::to_string(&pk).expect("serialises");
        prop_assert_eq!(&json, &format!("\"{text}\""));
        prop_assert_eq!(serde_json::from_str::<PublicKey>(&json).ok(), Some(pk));

        let secret = sk.to_text();
        prop_assert!(secret.starts_with("kithsecret1"));
        let back: SecretKey = secret.parse().expect("own text form parses");
        prop_assert_eq!(back.to_seed(), seed);
        prop_assert_eq!(back.to_text(), secret.clone());

        let wrong_prefix = matches!(secret.parse::<PublicKey>(), Err(KeyError::WrongPrefix { .. }));
        prop_assert!(wrong_prefix);
        let wrong_prefix = matches!(text.parse::<SecretKey>(), Err(KeyError::WrongPrefix { .. }));
        prop_assert!(wrong_prefix);
    }

    /// (e) any 32 bytes that are accepted as a public key round-trip through text.
    #[test]
    fn accepted_key_bytes_round_trip(bytes in any::<[u8; 32]>()) {
        if let Ok(pk) = PublicKey::from_bytes(&bytes) {
            prop_assert_eq!(pk.as_bytes(), &bytes);
            prop_assert_eq!(pk.to_string().parse::<PublicKey>(), Ok(pk));
        }
    }

    /// (e) a single substituted character anywhere in a `kith1…` key is refused; in the
    /// data part, a bech32 character is caught by the checksum itself.
    #[test]
    fn public_key_substitution_is_rejected(
        seed in any::<[u8; 32]>(),
        at in any::<Index>(),
        with in replacement(),
    ) {
        let text = SecretKey::from_seed(&seed).public_key().to_string();
        let index = at.index(text.len());
        let original = text.as_bytes()[index] as char;
        prop_assume!(with != original);
        let typo = substitute(&text, index, with);
        let result = typo.parse::<PublicKey>();
        prop_assert!(result.is_err(), "{} was accepted", typo);
        if index >= "kith1".len() && BECH32_CHARSET.contains(with) {
            let checksum = matches!(result, Err(KeyError::Checksum(_)));
            prop_assert!(checksum, "{}: {:?}", typo, result);
        }
    }

    /// (e) the same for `kithsecret1…` secret keys.
    #[test]
    fn secret_key_substitution_is_rejected(
        seed in any::<[u8; 32]>(),
        at in any::<Index>(),
        with in replacement(),
    ) {
        let text = SecretKey::from_seed(&seed).to_text();
        let index = at.index(text.len());
        let original = text.as_bytes()[index] as char;
        prop_assume!(with != original);
        let typo = substitute(&text, index, with);
        let result = typo.parse::<SecretKey>();
        prop_assert!(result.is_err(), "{} was accepted", typo);
    }
}
