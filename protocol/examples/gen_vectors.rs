//! Writes Kith's test vectors to `protocol/vectors/`:
//!
//! - `events-valid.json`: valid events, with every input and every resulting byte;
//! - `events-invalid.json`: events that must be refused, each with the error code it must get;
//! - `keys.json`: key pairs and their text forms, and key texts that must be refused;
//! - `frames.json`: wire frames that must be read, and frame texts that must be refused.
//!
//! Run it with `cargo run -p kith-protocol --example gen_vectors`. It is deterministic (fixed
//! seeds, fixed timestamps, no RNG, no clock; ed25519 signing is deterministic too), so running
//! it again gives the same bytes. `protocol/tests/vectors.rs` includes this file as a module,
//! checks every vector against the crate, and checks that the committed files are exactly what
//! [`render_all`] produces, so the files cannot drift from the code unnoticed.
//!
//! Events the builder refuses to make (bad magic, unsorted parents, weak authors…) are laid
//! out by [`RawHeader`], written from the layout in SPEC.md §3.1 rather than with the crate's
//! encoder. The tests also compare it with the builder's output on every valid vector, which
//! cross-checks the layout itself.

use std::path::PathBuf;

use kith_protocol::auth::sign_login;
use kith_protocol::encoding::to_base64;
use kith_protocol::event::SIGNATURE_LEN;
use kith_protocol::frame::{
    encode_frame, Bytes, ClientFrame, ErrorCode, EventBytes, Filter, FrameError, NodeFrame,
};
use kith_protocol::{Event, EventBuilder, EventId, GroupId, Kind, Limits, SecretKey, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The validation clock of every event vector: 2025-06-15T16:26:40Z, in ms since the epoch.
pub(crate) const NOW: u64 = 1_750_004_800_000;

/// When the ordinary vectors say they were written: one minute before [`NOW`].
const WRITTEN_AT: u64 = NOW - 60_000;

/// The group every grouped vector uses. Any 32 bytes name a group; these spell "kith test
/// group" padded with zeros, so the value is easy to recognise in a hex dump.
const GROUP: [u8; 32] = *b"kith test group\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// The secret key of RFC 8032 section 7.1, TEST 1, so one vector ties Kith's keys to a
/// published ed25519 test (its public key is d75a9801…511a).
const RFC8032_TEST1_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

/// The Welsh flag: a black flag, the tag characters spelling "gbwls" (region GB-WLS),
/// closed by a cancel tag; 7 Unicode scalar values that display as one flag.
const WELSH_FLAG: &str = "🏴\u{e0067}\u{e0062}\u{e0077}\u{e006c}\u{e0073}\u{e007f}";

/// The ed25519 group order ℓ = 2^252 + 27742317777372353535851937790883648493,
/// little-endian, as the S half of a signature is stored.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The identity point (0, 1): order 1, the weakest possible key.
const IDENTITY_POINT: &str = "0100000000000000000000000000000000000000000000000000000000000000";
/// A point of order 8 (a torsion point of the curve).
const ORDER_8_POINT: &str = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05";
/// y = p + 3 (p = 2^255 - 19): a non-canonical encoding of the valid, non-weak point with
/// y = 3, whose canonical encoding is 0300…00.
const NON_CANONICAL_Y: &str = "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
/// y = 1 with the sign bit of x set: x = 0 has no negative, so this is a non-canonical
/// encoding of the identity.
const NEGATIVE_ZERO_X: &str = "0100000000000000000000000000000000000000000000000000000000000080";
/// y = 2 is not the y coordinate of any curve point.
const NOT_ON_CURVE: &str = "0200000000000000000000000000000000000000000000000000000000000000";

// ---------------------------------------------------------------------------------------
// File formats. Field order here is the order in the JSON files.
// ---------------------------------------------------------------------------------------

/// `events-valid.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValidEventsFile {
    pub(crate) description: String,
    pub(crate) header_layout: Vec<String>,
    pub(crate) limits: Limits,
    pub(crate) vectors: Vec<ValidEventVector>,
}

/// One valid event with everything needed to rebuild it byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValidEventVector {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) seed_hex: String,
    pub(crate) secret_key: String,
    pub(crate) public_key: String,
    pub(crate) public_key_hex: String,
    pub(crate) kind: u16,
    pub(crate) group: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) parents: Vec<String>,
    pub(crate) body_utf8: String,
    pub(crate) body_hex: String,
    pub(crate) body_sha256_hex: String,
    pub(crate) header_hex: String,
    pub(crate) signature_hex: String,
    pub(crate) id_hex: String,
    pub(crate) event_base64: String,
    pub(crate) now: u64,
}

/// `events-invalid.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvalidEventsFile {
    pub(crate) description: String,
    pub(crate) limits: Limits,
    pub(crate) vectors: Vec<InvalidEventVector>,
}

/// Bytes that must fail validation with one exact error code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvalidEventVector {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) event_hex: String,
    /// The id the event was requested or announced under, when the vector tests that check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected_id: Option<String>,
    pub(crate) now: u64,
    /// Limits to validate under, when not the file's default ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<Limits>,
    pub(crate) error: String,
}

/// `keys.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeysFile {
    pub(crate) description: String,
    pub(crate) valid: Vec<ValidKeyVector>,
    pub(crate) invalid: Vec<InvalidKeyVector>,
}

/// A key pair in all its forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValidKeyVector {
    pub(crate) name: String,
    pub(crate) seed_hex: String,
    pub(crate) secret_key: String,
    pub(crate) public_key: String,
    pub(crate) public_key_hex: String,
}

/// A key text that must be refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvalidKeyVector {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) text: String,
    /// "public" or "secret": which kind of key the text is read as.
    pub(crate) parse_as: String,
    /// The `KeyError` variant name.
    pub(crate) error: String,
}

/// `frames.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FramesFile {
    pub(crate) description: String,
    pub(crate) valid: Vec<ValidFrameVector>,
    pub(crate) valid_non_canonical: Vec<NonCanonicalFrameVector>,
    pub(crate) invalid: Vec<InvalidFrameVector>,
}

/// A frame text that must be read although it is not in the form nodes write: it means
/// the same as the canonical text beside it (SPEC.md §6.2: member order, unknown members,
/// null members, repeated members).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NonCanonicalFrameVector {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) direction: String,
    #[serde(rename = "type")]
    pub(crate) frame_type: String,
    pub(crate) text: String,
    pub(crate) canonical: String,
}

/// A frame text that must be read, and that is already in the canonical form the encoder
/// writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValidFrameVector {
    pub(crate) name: String,
    /// "client_to_node" or "node_to_client".
    pub(crate) direction: String,
    #[serde(rename = "type")]
    pub(crate) frame_type: String,
    pub(crate) text: String,
}

/// A frame text that must be refused, with the error frame it must be answered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InvalidFrameVector {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) direction: String,
    pub(crate) text: String,
    pub(crate) error: String,
    /// The `id` the error frame echoes (null when the frame had no readable string id).
    pub(crate) reply_id: Option<String>,
    /// The `supported` list of the error frame (only for `unsupported_version`).
    pub(crate) supported: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------

/// The snake_case wire name of an error code, as error frames carry it.
pub(crate) fn code_name(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(name)) => name,
        other => panic!("an error code serialises as a string, got {other:?}"),
    }
}

/// A test key whose 32-byte seed is `byte` repeated.
fn test_key(byte: u8) -> SecretKey {
    SecretKey::from_seed(&[byte; 32])
}

/// Decodes one of the 64-character hex constants above.
fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).expect("the constants are 64 hex digits");
    out
}

/// The compact JSON body of a post.
fn post_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "text": text })).expect("a string map serialises")
}

/// `count` distinct parent ids: SHA-256 of "parent 0", "parent 1", …
fn parent_ids(count: usize) -> Vec<EventId> {
    (0..count)
        .map(|i| EventId::from_bytes(Sha256::digest(format!("parent {i}")).into()))
        .collect()
}

/// Adds ℓ to the S half of a signature. S < ℓ < 2^253, so S + ℓ < 2^254 still fits in 32
/// bytes, and it is the same scalar modulo ℓ: a verifier that does not insist on S < ℓ
/// accepts it. This is how ed25519 signatures are malleated.
pub(crate) fn add_group_order_to_s(signature: &[u8; 64]) -> [u8; 64] {
    let mut out = *signature;
    let mut carry = 0u16;
    for (byte, l) in out[32..].iter_mut().zip(GROUP_ORDER_LE) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8; // keep the low 8 bits; the rest is the carry
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + ℓ fits in 256 bits");
    out
}

// ---------------------------------------------------------------------------------------
// Hand-made headers.
// ---------------------------------------------------------------------------------------

/// Every field of an event header, laid out by hand (SPEC.md §3.1). Unlike the crate's
/// builder it will write anything, including headers that must be refused.
#[derive(Debug, Clone)]
pub(crate) struct RawHeader {
    pub(crate) magic: [u8; 4],
    pub(crate) version: u8,
    pub(crate) author: [u8; 32],
    /// Written as given; the group id follows only if `group` is `Some`.
    pub(crate) group_flag: u8,
    pub(crate) group: Option<[u8; 32]>,
    pub(crate) kind: u16,
    pub(crate) created_at: u64,
    /// Written in the order given.
    pub(crate) parents: Vec<[u8; 32]>,
    pub(crate) body_len: u32,
    pub(crate) body_hash: [u8; 32],
}

impl RawHeader {
    /// A well-formed header for a post by `author` with this body: no group, no parents.
    pub(crate) fn post(author: [u8; 32], created_at: u64, body: &[u8]) -> RawHeader {
        RawHeader {
            magic: *b"KITH",
            version: 1,
            author,
            group_flag: 0,
            group: None,
            kind: Kind::POST.0,
            created_at,
            parents: Vec::new(),
            body_len: u32::try_from(body.len()).expect("test bodies are small"),
            body_hash: Sha256::digest(body).into(),
        }
    }

    /// Places the header in `group` (flag 1, then the id).
    pub(crate) fn in_group(mut self, group: [u8; 32]) -> RawHeader {
        self.group_flag = 1;
        self.group = Some(group);
        self
    }

    /// The header bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.push(self.version);
        out.extend_from_slice(&self.author);
        out.push(self.group_flag);
        if let Some(group) = &self.group {
            out.extend_from_slice(group);
        }
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.push(u8::try_from(self.parents.len()).expect("at most 255 parents"));
        for parent in &self.parents {
            out.extend_from_slice(parent);
        }
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.body_hash);
        out
    }
}

/// `header || signature || body` for a hand-made header, signed with `key`. The signature
/// is genuine, so the only fault in the result is the one put in the header.
fn sign_raw(key: &SecretKey, header: &RawHeader, body: &[u8]) -> Vec<u8> {
    let header_bytes = header.encode();
    let signature = key.sign(&header_bytes);
    [header_bytes.as_slice(), &signature, body].concat()
}

/// `header || signature || body` for a hand-made header and a given signature.
fn with_signature(header: &RawHeader, signature: &[u8; 64], body: &[u8]) -> Vec<u8> {
    [header.encode().as_slice(), signature, body].concat()
}

// ---------------------------------------------------------------------------------------
// events-valid.json
// ---------------------------------------------------------------------------------------

/// The inputs of one valid event.
struct ValidSpec {
    name: &'static str,
    description: &'static str,
    seed: [u8; 32],
    kind: Kind,
    group: Option<[u8; 32]>,
    created_at: u64,
    /// As given to the builder, which sorts them.
    parents: Vec<EventId>,
    body: Vec<u8>,
}

impl ValidSpec {
    /// A post by the key with seed `[seed_byte; 32]`, written at [`WRITTEN_AT`].
    fn post(name: &'static str, description: &'static str, seed_byte: u8, text: &str) -> Self {
        ValidSpec {
            name,
            description,
            seed: [seed_byte; 32],
            kind: Kind::POST,
            group: None,
            created_at: WRITTEN_AT,
            parents: Vec::new(),
            body: post_body(text),
        }
    }

    /// Signs the event with the builder.
    fn build(&self) -> Event {
        let mut builder =
            EventBuilder::new(self.kind, Timestamp(self.created_at), self.body.clone())
                .parents(self.parents.iter().copied());
        if let Some(group) = self.group {
            builder = builder.group(GroupId::from_bytes(group));
        }
        builder
            .sign(&SecretKey::from_seed(&self.seed))
            .expect("the valid specs are buildable")
    }
}

/// The event of the first valid vector: the plain post the invalid vectors start from.
fn minimal_post() -> ValidSpec {
    ValidSpec::post(
        "post_minimal",
        "A post with no group and no parents. The invalid vectors alter this event.",
        1,
        "Hello, Kith!",
    )
}

/// All valid events, in file order.
fn valid_specs() -> Vec<ValidSpec> {
    let first = minimal_post().build().id();
    let second_spec = ValidSpec {
        group: Some(GROUP),
        parents: vec![first],
        ..ValidSpec::post(
            "post_in_group_one_parent",
            "A post in a group, replying to post_minimal (its one parent).",
            2,
            "Replying in the group.",
        )
    };
    let second = second_spec.build().id();
    let third_parent = EventId::from_bytes([0; 32]);
    vec![
        minimal_post(),
        second_spec,
        ValidSpec {
            // Deliberately out of order: the builder sorts parents ascending by bytes.
            parents: vec![second, first, third_parent],
            ..ValidSpec::post(
                "post_three_parents",
                "Three parents, given to the builder out of order; the header lists them in \
                 ascending byte order (00…00 first).",
                3,
                "Three parents, given out of order.",
            )
        },
        ValidSpec {
            group: Some(GROUP),
            ..ValidSpec::post(
                "post_welsh_and_emoji",
                "Non-ASCII text: Welsh with the Welsh flag (an emoji tag sequence of 7 Unicode \
                 scalar values) and a dragon, in a group.",
                4,
                &format!("Shwmae! Mae'r ddraig goch yn chwifio {WELSH_FLAG} 🐉"),
            )
        },
        ValidSpec {
            parents: vec![first],
            ..ValidSpec::post(
                "post_arabic_right_to_left",
                "Non-ASCII, right-to-left text (Arabic) and an emoji with a skin-tone modifier.",
                5,
                "مرحبا بالعالم 👋🏽",
            )
        },
        ValidSpec {
            body: b" \r\n{ \"text\" : \"caf\\u00e9 \\ud83d\\udc09\\nsecond line\" }\n\t".to_vec(),
            ..ValidSpec::post(
                "post_body_bytes_as_written",
                "The body is JSON with white space around and inside the object and escapes \
                 (\\u00e9, a surrogate pair \\ud83d\\udc09 for U+1F409, \\n), not the compact \
                 form an encoder would write. It is valid: bodies are hashed and signed as the \
                 bytes that were sent and never re-serialised.",
                6,
                "",
            )
        },
        ValidSpec {
            parents: parent_ids(16),
            ..ValidSpec::post(
                "post_max_parents",
                "Exactly max_parents (16) parents, the most the default limits allow; the \
                 parents are SHA-256 of \"parent 0\" … \"parent 15\".",
                7,
                "Sixteen parents.",
            )
        },
        ValidSpec::post(
            "post_max_text_chars",
            "A text of exactly max_text_chars (10000) Unicode scalar values: 9999 times the \
             two-byte 'ŵ' (U+0175), then one dragon (U+1F409, four bytes, two UTF-16 units). The \
             limit counts Unicode scalar values, not bytes (20000) and not UTF-16 units (10001).",
            8,
            &format!("{}🐉", "ŵ".repeat(9_999)),
        ),
        ValidSpec {
            created_at: NOW + Limits::default().max_future_skew_ms,
            ..ValidSpec::post(
                "post_at_future_skew_limit",
                "created_at is exactly max_future_skew_ms (15 minutes) after now: the latest \
                 time still accepted.",
                9,
                "From fifteen minutes ahead.",
            )
        },
        ValidSpec {
            body: br#"{"\u0074ext":"The member name is written with an escape."}"#.to_vec(),
            ..ValidSpec::post(
                "post_escaped_member_name",
                "The member name is written \\u0074ext: member names are compared after \
                 unescaping, so this is the member text.",
                10,
                "",
            )
        },
        ValidSpec::post(
            "post_text_only_bom",
            "The text is the single character U+FEFF (zero width no-break space). It is not \
             white space in Unicode's White_Space property, so the text is not empty, although \
             JavaScript's trim() would remove it.",
            11,
            "\u{feff}",
        ),
        ValidSpec {
            seed: RFC8032_TEST1_SEED,
            created_at: 0,
            ..ValidSpec::post(
                "post_rfc8032_key_at_epoch",
                "Signed with the secret key of RFC 8032 section 7.1 TEST 1, whose public key is \
                 d75a9801…511a; created_at is 0 (1970-01-01T00:00:00Z).",
                0,
                "Signed with the RFC 8032 test key.",
            )
        },
    ]
}

/// Builds one valid vector: the event and every intermediate value.
fn valid_vector(spec: &ValidSpec) -> ValidEventVector {
    let event = spec.build();
    let key = SecretKey::from_seed(&spec.seed);
    // The hand layout must agree with the builder, or the file's header_layout is wrong.
    let mut raw = RawHeader::post(*key.public_key().as_bytes(), spec.created_at, &spec.body);
    raw.kind = spec.kind.0;
    raw.parents = event
        .header()
        .parents
        .iter()
        .map(|p| *p.as_bytes())
        .collect();
    if let Some(group) = spec.group {
        raw = raw.in_group(group);
    }
    assert_eq!(
        raw.encode(),
        event.header_bytes(),
        "{}: header layout",
        spec.name
    );
    ValidEventVector {
        name: spec.name.to_owned(),
        description: spec.description.to_owned(),
        seed_hex: hex::encode(spec.seed),
        secret_key: key.to_text(),
        public_key: key.public_key().to_string(),
        public_key_hex: hex::encode(key.public_key().as_bytes()),
        kind: spec.kind.0,
        group: spec.group.map(hex::encode),
        created_at: spec.created_at,
        parents: spec.parents.iter().map(EventId::to_hex).collect(),
        body_utf8: String::from_utf8(spec.body.clone()).expect("valid bodies are UTF-8"),
        body_hex: hex::encode(&spec.body),
        body_sha256_hex: hex::encode(Sha256::digest(&spec.body)),
        header_hex: hex::encode(event.header_bytes()),
        signature_hex: hex::encode(event.signature()),
        id_hex: event.id().to_hex(),
        event_base64: to_base64(&event.encode()),
        now: NOW,
    }
}

/// The contents of `events-valid.json`.
pub(crate) fn valid_events_file() -> ValidEventsFile {
    ValidEventsFile {
        description: "Valid Kith events (protocol version 1). Each vector gives the author's \
            32-byte seed and keys, the header fields as given to the event builder, the body, \
            and the exact bytes that result: the header, the ed25519 signature over exactly \
            the header bytes, the id (SHA-256 of the header bytes) and the whole event \
            (header || signature || body) in standard padded base64. ed25519 signing is \
            deterministic (RFC 8032), so an implementation that follows header_layout must \
            reproduce every byte. Each event must also decode and pass validation at its \
            `now` (ms since the Unix epoch) under `limits`. Generated by `cargo run -p \
            kith-protocol --example gen_vectors`; checked by protocol/tests/vectors.rs. Do not \
            edit by hand."
            .to_owned(),
        header_layout: [
            "magic: 4 bytes, ASCII \"KITH\" (4b495448)",
            "version: 1 byte, 01",
            "author: 32 bytes, the ed25519 public key",
            "group flag: 1 byte, 00 (no group) or 01 (a group id follows)",
            "group id: 32 bytes, only when the flag is 01",
            "kind: 2 bytes, unsigned big-endian",
            "created_at: 8 bytes, unsigned big-endian, milliseconds since the Unix epoch",
            "parent count: 1 byte",
            "parents: 32 bytes each, strictly ascending byte order (the builder sorts them and \
             drops repeats)",
            "body length: 4 bytes, unsigned big-endian",
            "body hash: 32 bytes, SHA-256 of the body",
            "The event is header || signature (64 bytes) || body; the body may be left out \
             (withheld), but then the event is not accepted as new.",
        ]
        .map(str::to_owned)
        .to_vec(),
        limits: Limits::default(),
        vectors: valid_specs().iter().map(valid_vector).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// events-invalid.json
// ---------------------------------------------------------------------------------------

/// An invalid vector at [`NOW`] under the default limits, with no expected id.
fn invalid(name: &str, description: &str, bytes: &[u8], error: ErrorCode) -> InvalidEventVector {
    InvalidEventVector {
        name: name.to_owned(),
        description: description.to_owned(),
        event_hex: hex::encode(bytes),
        expected_id: None,
        now: NOW,
        limits: None,
        error: code_name(error),
    }
}

/// A post by the key with seed [1; 32] with this body, signed by the builder.
fn post_with_body(body: &[u8]) -> Vec<u8> {
    EventBuilder::new(Kind::POST, Timestamp(WRITTEN_AT), body.to_vec())
        .sign(&test_key(1))
        .expect("a small post is buildable")
        .encode()
}

/// Vectors whose fault is in the signature.
fn signature_faults(base: &Event) -> Vec<InvalidEventVector> {
    let header_len = base.header_bytes().len();
    let flip = |offset: usize| {
        let mut bytes = base.encode();
        bytes[header_len + offset] ^= 0x01;
        bytes
    };
    let with_sig = |signature: &[u8; 64]| {
        let body = base.body().expect("the base event has its body");
        [base.header_bytes(), signature, body].concat()
    };
    vec![
        invalid(
            "signature_r_bit_flipped",
            "post_minimal with the lowest bit of the signature's first byte (in R) flipped.",
            &flip(0),
            ErrorCode::BadSignature,
        ),
        invalid(
            "signature_s_bit_flipped",
            "post_minimal with the lowest bit of byte 32 of the signature (the first byte of S) \
             flipped; S stays below the group order, so only the verification fails.",
            &flip(32),
            ErrorCode::BadSignature,
        ),
        invalid(
            "signature_all_zero",
            "post_minimal with a signature of 64 zero bytes (R = 00…00 is a point of small \
             order, S = 0).",
            &with_sig(&[0; 64]),
            ErrorCode::BadSignature,
        ),
        invalid(
            "signature_s_plus_group_order",
            "post_minimal with the group order ℓ added to the signature's S (bytes 32..64, \
             little-endian). S + ℓ is the same scalar modulo ℓ, so a verifier that skips the \
             S < ℓ check would accept it: this is exactly how ed25519 signatures are \
             malleated, and why only the canonical S is accepted.",
            &with_sig(&add_group_order_to_s(base.signature())),
            ErrorCode::NonCanonicalSignature,
        ),
    ]
}

/// Vectors whose fault is the author key.
fn author_faults() -> Vec<InvalidEventVector> {
    let body = post_body("Hello, Kith!");
    let header = |author: &str| RawHeader::post(hex32(author), WRITTEN_AT, &body);
    // For the identity key, R = identity and S = 0 satisfy the verification equation
    // [S]B = R + [k]A for every message: 0 = 0 + [k]·0. A verifier that accepted weak keys
    // would accept this "signature" on anything.
    let mut identity_signature = [0u8; 64];
    identity_signature[0] = 1;
    vec![
        invalid(
            "weak_key_identity",
            "The author is the identity point (y = 1, encoded 0100…00), of order 1. The \
             signature is R = the identity (0100…00) and S = 0, which satisfies the ed25519 \
             equation for every message under this key: anyone could forge its events. \
             Refused as a weak key.",
            &with_signature(&header(IDENTITY_POINT), &identity_signature, &body),
            ErrorCode::WeakKey,
        ),
        invalid(
            "weak_key_order_8",
            "The author is 26e8958f…fc05, a point of order 8. The signature is 64 zero bytes; \
             decoding stops at the author key before it.",
            &with_signature(&header(ORDER_8_POINT), &[0; 64], &body),
            ErrorCode::WeakKey,
        ),
        invalid(
            "author_non_canonical_y",
            "The author is f0ff…ff7f, y = p + 3 with p = 2^255 - 19: a non-canonical encoding \
             of the valid, non-weak point whose canonical encoding is 0300…00. One key must \
             have one encoding. The signature is 64 zero bytes, never reached.",
            &with_signature(&header(NON_CANONICAL_Y), &[0; 64], &body),
            ErrorCode::BadAuthorKey,
        ),
        invalid(
            "author_negative_zero_x",
            "The author is 0100…0080: y = 1 with the sign bit of x set, but x = 0 has no \
             negative, so this is a non-canonical encoding of the identity. The encoding is \
             checked before weakness, so the code is bad_author_key, not weak_key.",
            &with_signature(&header(NEGATIVE_ZERO_X), &[0; 64], &body),
            ErrorCode::BadAuthorKey,
        ),
        invalid(
            "author_not_on_curve",
            "The author is 0200…00: no curve point has y = 2.",
            &with_signature(&header(NOT_ON_CURVE), &[0; 64], &body),
            ErrorCode::BadAuthorKey,
        ),
    ]
}

/// Vectors that break the format, each with a genuine signature over its header.
fn format_faults(base: &Event) -> Vec<InvalidEventVector> {
    let key = test_key(1);
    let body = post_body("Hello, Kith!");
    let header = || RawHeader::post(*key.public_key().as_bytes(), WRITTEN_AT, &body);
    let bytes = base.encode();
    let header_len = base.header_bytes().len();
    let [low, high] = [[1u8; 32], [2u8; 32]];
    vec![
        invalid(
            "bad_magic",
            "The header starts with \"KITX\" instead of \"KITH\"; otherwise post_minimal, \
             validly signed.",
            &sign_raw(
                &key,
                &RawHeader {
                    magic: *b"KITX",
                    ..header()
                },
                &body,
            ),
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "unsupported_version",
            "The version byte is 2; otherwise post_minimal, validly signed.",
            &sign_raw(
                &key,
                &RawHeader {
                    version: 2,
                    ..header()
                },
                &body,
            ),
            ErrorCode::UnsupportedVersion,
        ),
        invalid(
            "bad_group_flag",
            "The group flag byte is 2 (only 0 and 1 exist), with no group id after it; validly \
             signed.",
            &sign_raw(
                &key,
                &RawHeader {
                    group_flag: 2,
                    ..header()
                },
                &body,
            ),
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "parents_not_sorted",
            "Two parents in descending order (02…02, then 01…01); the format needs strictly \
             ascending order. Validly signed over these header bytes.",
            &sign_raw(
                &key,
                &RawHeader {
                    parents: vec![high, low],
                    ..header()
                },
                &body,
            ),
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "parents_repeated",
            "The same parent (01…01) twice; validly signed.",
            &sign_raw(
                &key,
                &RawHeader {
                    parents: vec![low, low],
                    ..header()
                },
                &body,
            ),
            ErrorCode::MalformedEvent,
        ),
        invalid("empty", "Zero bytes.", &[], ErrorCode::MalformedEvent),
        invalid(
            "truncated_header",
            "The first 40 bytes of post_minimal: the header is cut short.",
            &bytes[..40],
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "truncated_signature",
            "post_minimal's header and the first 63 bytes of its signature.",
            &bytes[..header_len + 63],
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "body_cut_short",
            "post_minimal without the last byte of its body: after the signature there must be \
             either nothing or exactly body length bytes.",
            &bytes[..bytes.len() - 1],
            ErrorCode::MalformedEvent,
        ),
        invalid(
            "trailing_byte",
            "post_minimal with one extra byte (00) after the body.",
            &[bytes.as_slice(), &[0]].concat(),
            ErrorCode::MalformedEvent,
        ),
    ]
}

/// Vectors that break a limit, the id check, the clock or the kind registry.
fn limit_faults(base: &Event) -> Vec<InvalidEventVector> {
    let bytes = base.encode();
    let key = test_key(1);
    let body = post_body("Hello, Kith!");
    let build = |builder: EventBuilder| builder.sign(&key).expect("buildable").encode();
    let post = || EventBuilder::new(Kind::POST, Timestamp(WRITTEN_AT), body.clone());
    let future = NOW + Limits::default().max_future_skew_ms + 1;
    let mut wrong_id = *base.id().as_bytes();
    wrong_id[31] ^= 0x01;
    // "Hello" becomes "Jello": the first byte of the text, just after {"text":".
    let mut altered = bytes.clone();
    altered[base.header_bytes().len() + SIGNATURE_LEN + br#"{"text":""#.len()] = b'J';
    vec![
        InvalidEventVector {
            expected_id: Some(hex::encode(wrong_id)),
            ..invalid(
                "id_mismatch",
                "post_minimal, unaltered, but requested under an id whose last bit differs from \
                 its real id (SHA-256 of its header).",
                &bytes,
                ErrorCode::IdMismatch,
            )
        },
        InvalidEventVector {
            limits: Some(Limits {
                max_event_bytes: bytes.len() - 1,
                ..Limits::default()
            }),
            ..invalid(
                "event_too_large",
                "post_minimal, validated under limits whose max_event_bytes is one byte less \
                 than its size.",
                &bytes,
                ErrorCode::EventTooLarge,
            )
        },
        InvalidEventVector {
            limits: Some(Limits {
                max_body_bytes: base.header().body_len - 1,
                ..Limits::default()
            }),
            ..invalid(
                "body_too_large",
                "post_minimal, validated under limits whose max_body_bytes is one byte less than \
                 its body.",
                &bytes,
                ErrorCode::BodyTooLarge,
            )
        },
        invalid(
            "too_many_parents",
            "17 parents (SHA-256 of \"parent 0\" … \"parent 16\"), one more than the default \
             max_parents; validly signed.",
            &build(post().parents(parent_ids(17))),
            ErrorCode::TooManyParents,
        ),
        invalid(
            "body_missing",
            "post_minimal's header and signature without the body. Valid as a stub of a \
             withdrawn body, but not as a new event.",
            &base.without_body().encode(),
            ErrorCode::BodyMissing,
        ),
        invalid(
            "body_altered",
            "post_minimal with the first letter of its text changed (\"Hello\" to \"Jello\"): \
             same length, different SHA-256.",
            &altered,
            ErrorCode::BodyMismatch,
        ),
        invalid(
            "from_the_future",
            "created_at is max_future_skew_ms + 1 ms after now; validly signed.",
            &build(EventBuilder::new(
                Kind::POST,
                Timestamp(future),
                body.clone(),
            )),
            ErrorCode::FromTheFuture,
        ),
        invalid(
            "unknown_kind",
            "Kind 65535, which the registry does not define; body and signature valid.",
            &build(EventBuilder::new(
                Kind(u16::MAX),
                Timestamp(WRITTEN_AT),
                body.clone(),
            )),
            ErrorCode::UnknownKind,
        ),
    ]
}

/// Vectors whose body breaks the post rules; all validly signed by the builder.
fn body_faults() -> Vec<InvalidEventVector> {
    let bad_body = |name: &str, description: &str, body: &[u8]| {
        invalid(name, description, &post_with_body(body), ErrorCode::BadBody)
    };
    vec![
        bad_body(
            "body_wrong_field",
            "The body is {\"txt\":\"x\"}: a post needs the field \"text\".",
            br#"{"txt":"x"}"#,
        ),
        bad_body(
            "body_extra_field",
            "The body is {\"text\":\"hi\",\"extra\":1}: unknown fields are refused.",
            br#"{"text":"hi","extra":1}"#,
        ),
        bad_body(
            "body_duplicate_field",
            "The body is {\"text\":\"a\",\"text\":\"b\"}: JSON parsers disagree on repeated \
             keys, so they are refused.",
            br#"{"text":"a","text":"b"}"#,
        ),
        bad_body(
            "body_empty_text",
            "The body is {\"text\":\"\"}.",
            br#"{"text":""}"#,
        ),
        bad_body(
            "body_whitespace_text",
            "The text is only white space (a space, a newline and a tab).",
            br#"{"text":" \n\t"}"#,
        ),
        bad_body("body_empty", "The body is zero bytes long.", b""),
        bad_body(
            "body_not_json",
            "The body is the plain text hello.",
            b"hello",
        ),
        bad_body(
            "body_not_utf8",
            "The body is the bytes ff fe, which are not UTF-8.",
            &[0xff, 0xfe],
        ),
        bad_body(
            "body_byte_order_mark",
            "The body {\"text\":\"x\"} preceded by a UTF-8 byte-order mark (ef bb bf).",
            &[b"\xef\xbb\xbf".as_slice(), br#"{"text":"x"}"#].concat(),
        ),
        bad_body(
            "body_non_json_white_space",
            "The body {\"text\":\"x\"} preceded by U+00A0 (no-break space), which is not JSON \
             white space.",
            "\u{a0}{\"text\":\"x\"}".as_bytes(),
        ),
        bad_body(
            "body_trailing_characters",
            "The body {\"text\":\"x\"} followed by \" x\": anything after the object other than \
             JSON white space is refused.",
            br#"{"text":"x"} x"#,
        ),
        bad_body(
            "body_array",
            "The body is the JSON array [\"text\"], not an object.",
            br#"["text"]"#,
        ),
        bad_body(
            "body_text_null",
            "The body is {\"text\":null}: the text must be a string.",
            br#"{"text":null}"#,
        ),
        bad_body(
            "body_escaped_duplicate_field",
            "The body is {\"text\":\"a\",\"\\u0074ext\":\"b\"}: after unescaping, the member \
             text appears twice.",
            br#"{"text":"a","\u0074ext":"b"}"#,
        ),
        bad_body(
            "body_lone_surrogate_escape",
            "The text is the escape \\ud800, a lone surrogate that is not a Unicode scalar \
             value.",
            br#"{"text":"\ud800"}"#,
        ),
        bad_body(
            "body_unescaped_control_character",
            "The text contains the raw byte 01 (U+0001); JSON requires control characters in \
             strings to be escaped.",
            b"{\"text\":\"a\x01b\"}",
        ),
        bad_body(
            "body_utf8_encoded_surrogate",
            "The text contains the bytes ed a0 80, the UTF-8 form of the surrogate U+D800, \
             which is not valid UTF-8 (lenient decoders such as CESU-8 ones accept it).",
            b"{\"text\":\"\xed\xa0\x80\"}",
        ),
        bad_body(
            "body_text_only_ideographic_space",
            "The text is only U+3000 (ideographic space), which is white space.",
            "{\"text\":\"\u{3000}\"}".as_bytes(),
        ),
        bad_body(
            "body_text_only_next_line",
            "The text is only U+0085 (next line), which is white space in Unicode's White_Space \
             property, although JavaScript's trim() keeps it.",
            "{\"text\":\"\u{85}\"}".as_bytes(),
        ),
        InvalidEventVector {
            limits: Some(Limits {
                max_text_chars: 4,
                ..Limits::default()
            }),
            ..bad_body(
                "body_text_too_long",
                "The text is 'ŵŵŵŵŵ': 5 Unicode scalar values (10 bytes), validated under \
                 limits whose max_text_chars is 4.",
                &post_body("ŵŵŵŵŵ"),
            )
        },
    ]
}

/// Vectors with two faults, pinning which one validation names first (SPEC.md §4).
fn order_faults() -> Vec<InvalidEventVector> {
    let key = test_key(1);
    let future = NOW + Limits::default().max_future_skew_ms + 1;
    let future_header = RawHeader::post(
        *key.public_key().as_bytes(),
        future,
        &post_body("Hello, Kith!"),
    );
    let mut future_bad_sig = sign_raw(&key, &future_header, &post_body("Hello, Kith!"));
    future_bad_sig[future_header.encode().len()] ^= 0x01;
    let unknown_kind_bad_body =
        EventBuilder::new(Kind(u16::MAX), Timestamp(WRITTEN_AT), b"{}".to_vec())
            .sign(&key)
            .expect("buildable")
            .encode();
    vec![
        invalid(
            "order_signature_before_time",
            "Two faults: created_at is too far in the future and a bit of the signature is \
             flipped. The signature is checked first, so the code is bad_signature.",
            &future_bad_sig,
            ErrorCode::BadSignature,
        ),
        invalid(
            "order_kind_before_body",
            "Two faults: kind 65535 is unknown and the body {} is not a post. The kind is \
             checked first, so the code is unknown_kind.",
            &unknown_kind_bad_body,
            ErrorCode::UnknownKind,
        ),
    ]
}

/// The contents of `events-invalid.json`.
pub(crate) fn invalid_events_file() -> InvalidEventsFile {
    let base = minimal_post().build();
    let vectors = [
        signature_faults(&base),
        author_faults(),
        format_faults(&base),
        limit_faults(&base),
        body_faults(),
        order_faults(),
    ]
    .concat();
    InvalidEventsFile {
        description: "Kith events (protocol version 1) that must be refused. Each vector gives \
            the event bytes in hex, the validation clock `now` (ms since the Unix epoch), \
            optionally the id the event was requested under (`expected_id`) and optionally \
            limits to use instead of the default `limits` below. Validation must fail with \
            exactly the error code in `error` (the snake_case codes of SPEC.md §4.3). Unless a \
            description says otherwise, the vector has exactly one fault and every signature is \
            genuine, so the code cannot come from another check. The author of the ordinary \
            vectors is the key with seed 01 repeated 32 times (see keys.json). Generated by \
            `cargo run -p kith-protocol --example gen_vectors`; checked by \
            protocol/tests/vectors.rs. Do not edit by hand."
            .to_owned(),
        limits: Limits::default(),
        vectors,
    }
}

// ---------------------------------------------------------------------------------------
// keys.json
// ---------------------------------------------------------------------------------------

/// A key pair vector for `seed`.
fn key_vector(name: &str, seed: [u8; 32]) -> ValidKeyVector {
    let key = SecretKey::from_seed(&seed);
    ValidKeyVector {
        name: name.to_owned(),
        seed_hex: hex::encode(seed),
        secret_key: key.to_text(),
        public_key: key.public_key().to_string(),
        public_key_hex: hex::encode(key.public_key().as_bytes()),
    }
}

/// bech32m text of `data` (5-bit groups) under `hrp`, checksum included. Written with the
/// bech32 crate's low-level encoder so that we can make texts our own encoder never would.
fn bech32m_of_groups(hrp: &str, data: Vec<bech32::Fe32>) -> String {
    use bech32::primitives::iter::Fe32IterExt as _;
    let hrp = bech32::Hrp::parse(hrp).expect("a valid test prefix");
    data.into_iter()
        .with_checksum::<bech32::Bech32m>(&hrp)
        .chars()
        .collect()
}

/// bech32m text of `bytes` under `hrp`, padded with zero bits as usual.
fn bech32m_of_bytes(hrp: &str, bytes: &[u8]) -> String {
    use bech32::primitives::iter::ByteIterExt as _;
    bech32m_of_groups(hrp, bytes.iter().copied().bytes_to_fes().collect())
}

/// The public key text of seed [1; 32] with non-zero padding bits: 32 bytes are 256 bits,
/// written as 52 five-bit characters (260 bits), so the last character carries 4 padding
/// bits that must be zero. Here the lowest one is set; the checksum is valid.
fn public_text_with_padding_bit(bytes: &[u8; 32]) -> String {
    use bech32::primitives::iter::ByteIterExt as _;
    let mut groups: Vec<bech32::Fe32> = bytes.iter().copied().bytes_to_fes().collect();
    let last = groups.last_mut().expect("32 bytes make 52 groups");
    *last = bech32::Fe32::try_from(last.to_u8() | 1).expect("a 5-bit value");
    bech32m_of_groups("kith", groups)
}

/// `text` with the characters at `at` and `at + 1` swapped.
fn swap_adjacent(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars.swap(at, at + 1);
    chars.into_iter().collect()
}

/// `text` with the character at `at` replaced by another character of the bech32 alphabet.
fn mistype(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[at] = if chars[at] == 'q' { 'p' } else { 'q' };
    chars.into_iter().collect()
}

/// An invalid key text, read as `parse_as` ("public" or "secret"), that must fail with the
/// `KeyError` variant `error`. The description is added with [`InvalidKeyVector::about`].
fn key_case(name: &str, parse_as: &str, error: &str, text: impl Into<String>) -> InvalidKeyVector {
    InvalidKeyVector {
        name: name.to_owned(),
        description: String::new(),
        text: text.into(),
        parse_as: parse_as.to_owned(),
        error: error.to_owned(),
    }
}

impl InvalidKeyVector {
    /// Sets the description.
    fn about(self, description: &str) -> Self {
        InvalidKeyVector {
            description: description.to_owned(),
            ..self
        }
    }
}

/// The invalid key texts.
fn invalid_keys() -> Vec<InvalidKeyVector> {
    let key = test_key(1);
    let public = key.public_key().to_string();
    let bytes = *key.public_key().as_bytes();
    // The first position after "kith1" where neighbours differ, so a swap changes the text.
    let swap_at = (5..public.len() - 1)
        .find(|&i| public.as_bytes()[i] != public.as_bytes()[i + 1])
        .expect("a key text has differing neighbours");
    // The first letter after "kith1", so changing its case changes the text.
    let letter_at = (5..public.len())
        .find(|&i| public.as_bytes()[i].is_ascii_lowercase())
        .expect("a key text has letters");
    let mut mixed_case = public.clone();
    let upper = public[letter_at..=letter_at].to_uppercase();
    mixed_case.replace_range(letter_at..=letter_at, &upper);
    let public_of = |hex: &str| bech32m_of_bytes("kith", &hex32(hex));
    vec![
        key_case(
            "mistyped_character",
            "public",
            "Checksum",
            mistype(&public, 20),
        )
        .about("The public key of seed 01…01 with its 21st character changed."),
        key_case(
            "swapped_characters",
            "public",
            "Checksum",
            swap_adjacent(&public, swap_at),
        )
        .about("The public key of seed 01…01 with two neighbouring characters swapped."),
        key_case(
            "last_character_dropped",
            "public",
            "Checksum",
            &public[..public.len() - 1],
        )
        .about("The public key of seed 01…01 without its last character."),
        key_case(
            "secret_given_as_public",
            "public",
            "WrongPrefix",
            key.to_text(),
        )
        .about("The secret key of seed 01…01 (kithsecret1…) read as a public key."),
        key_case(
            "public_given_as_secret",
            "secret",
            "WrongPrefix",
            public.clone(),
        )
        .about("The public key of seed 01…01 read as a secret key."),
        key_case(
            "other_prefix",
            "public",
            "WrongPrefix",
            bech32m_of_bytes("npub", &bytes),
        )
        .about(
            "The 32 bytes of the public key of seed 01…01 as valid bech32m under the \
                 prefix \"npub\".",
        ),
        key_case(
            "uppercase",
            "public",
            "NonCanonicalText",
            public.to_uppercase(),
        )
        .about(
            "The public key of seed 01…01 in upper case: valid bech32m, but not the one \
             canonical (lower-case) spelling.",
        ),
        key_case(
            "non_zero_padding",
            "public",
            "NonCanonicalText",
            public_text_with_padding_bit(&bytes),
        )
        .about(
            "The public key bytes of seed 01…01 with a padding bit set in the last data \
             character and a valid checksum: the same bytes, but not the canonical spelling.",
        ),
        key_case("mixed_case", "public", "Malformed", mixed_case).about(
            "The public key of seed 01…01 with one letter in upper case: bech32 forbids mixed \
             case.",
        ),
        key_case("garbage", "public", "Malformed", "hello world").about("Not a key at all."),
        key_case("empty", "public", "Malformed", "").about("The empty string."),
        key_case("no_separator", "public", "Malformed", "kithqqqqqqqq")
            .about("No '1' separator between the prefix and the data."),
        key_case(
            "character_outside_alphabet",
            "public",
            "Malformed",
            public.replacen('q', "b", 1),
        )
        .about("The public key of seed 01…01 with a 'b', which is not in the bech32 alphabet."),
        key_case(
            "trailing_newline",
            "public",
            "Malformed",
            format!("{public}\n"),
        )
        .about("The public key of seed 01…01 and a newline: public keys are not trimmed."),
        key_case(
            "payload_31_bytes",
            "public",
            "Length",
            bech32m_of_bytes("kith", &[1; 31]),
        )
        .about("Valid bech32m under \"kith\" carrying 31 bytes (01…01)."),
        key_case(
            "payload_33_bytes",
            "public",
            "Length",
            bech32m_of_bytes("kith", &[1; 33]),
        )
        .about("Valid bech32m under \"kith\" carrying 33 bytes (01…01)."),
        key_case("weak_identity", "public", "Weak", public_of(IDENTITY_POINT))
            .about("The identity point 0100…00 (order 1), correctly encoded."),
        key_case("weak_order_8", "public", "Weak", public_of(ORDER_8_POINT))
            .about("The order-8 point 26e8958f…fc05, correctly encoded."),
        key_case(
            "not_on_curve",
            "public",
            "NotOnCurve",
            public_of(NOT_ON_CURVE),
        )
        .about("0200…00, correctly encoded: no curve point has y = 2."),
        key_case(
            "non_canonical_point",
            "public",
            "NonCanonicalPoint",
            public_of(NON_CANONICAL_Y),
        )
        .about(
            "f0ff…ff7f (y = p + 3), correctly encoded: a non-canonical encoding of the \
                 point 0300…00.",
        ),
    ]
}

/// The contents of `keys.json`.
pub(crate) fn keys_file() -> KeysFile {
    let counting: [u8; 32] = std::array::from_fn(|i| i as u8);
    KeysFile {
        description: "Kith key text forms. A public key is bech32m (BIP-350) with prefix \
            \"kith\" over the 32 key bytes; a secret key is bech32m with prefix \"kithsecret\" \
            over the 32-byte ed25519 seed (RFC 8032). `valid` lists key pairs in every form; \
            each text must parse to its bytes and the public key must be the one the seed \
            derives. `invalid` lists texts that must be refused when read as `parse_as` (a \
            public or secret key), with the error kind they must produce: Malformed (not \
            bech32m), Checksum, WrongPrefix, Length (not 32 bytes), NonCanonicalText (valid \
            bech32m but not the one lower-case, zero-padded spelling), NotOnCurve, \
            NonCanonicalPoint or Weak (a small-order point). Generated by `cargo run -p \
            kith-protocol --example gen_vectors`; checked by protocol/tests/vectors.rs. Do not \
            edit by hand."
            .to_owned(),
        valid: vec![
            key_vector("seed_all_00", [0; 32]),
            key_vector("seed_all_01", [1; 32]),
            key_vector("seed_all_ff", [0xff; 32]),
            key_vector("seed_counting_00_to_1f", counting),
            key_vector("rfc8032_test_1", RFC8032_TEST1_SEED),
        ],
        invalid: invalid_keys(),
    }
}

// ---------------------------------------------------------------------------------------
// frames.json
// ---------------------------------------------------------------------------------------

/// A valid frame vector: the encoder's canonical text of `frame`.
fn valid_frame<T: Serialize>(
    name: &str,
    direction: &str,
    frame_type: &str,
    frame: &T,
) -> ValidFrameVector {
    ValidFrameVector {
        name: name.to_owned(),
        direction: direction.to_owned(),
        frame_type: frame_type.to_owned(),
        text: encode_frame(frame),
    }
}

/// The valid frames.
fn valid_frames() -> Vec<ValidFrameVector> {
    let member = test_key(1);
    let node = test_key(9).public_key();
    let challenge = [0x63; 32];
    let event = minimal_post().build();
    let client = "client_to_node";
    let to_client = "node_to_client";
    vec![
        valid_frame(
            "login",
            client,
            "login",
            &ClientFrame::Login {
                id: "r1".into(),
                key: member.public_key(),
                signature: Bytes(sign_login(&member, &node, &challenge)),
                invite: None,
            },
        ),
        valid_frame(
            "login_with_invite",
            client,
            "login",
            &ClientFrame::Login {
                id: "r1".into(),
                key: member.public_key(),
                signature: Bytes(sign_login(&member, &node, &challenge)),
                invite: Some("WELCOME-2025".into()),
            },
        ),
        valid_frame(
            "publish",
            client,
            "publish",
            &ClientFrame::Publish {
                id: "r2".into(),
                event: EventBytes::from(&event),
            },
        ),
        valid_frame(
            "subscribe_everything",
            client,
            "subscribe",
            &ClientFrame::Subscribe {
                id: "s1".into(),
                filter: Filter::default(),
            },
        ),
        valid_frame(
            "subscribe_filtered",
            client,
            "subscribe",
            &ClientFrame::Subscribe {
                id: "s2".into(),
                filter: Filter {
                    groups: Some(vec![GroupId::from_bytes(GROUP)]),
                    kinds: Some(vec![Kind::POST]),
                    authors: Some(vec![member.public_key()]),
                    since: Some(Timestamp(WRITTEN_AT)),
                    limit: Some(50),
                    ..Filter::default()
                },
            },
        ),
        valid_frame(
            "unsubscribe",
            client,
            "unsubscribe",
            &ClientFrame::Unsubscribe { id: "s1".into() },
        ),
        valid_frame(
            "hello",
            to_client,
            "hello",
            &NodeFrame::Hello {
                node,
                challenge: Bytes(challenge),
                versions: vec![1],
                limits: Limits::default(),
            },
        ),
        valid_frame(
            "ok",
            to_client,
            "ok",
            &NodeFrame::Ok {
                id: "r1".into(),
                event_id: None,
                duplicate: false,
            },
        ),
        valid_frame(
            "ok_published",
            to_client,
            "ok",
            &NodeFrame::Ok {
                id: "r2".into(),
                event_id: Some(event.id()),
                duplicate: false,
            },
        ),
        valid_frame(
            "ok_duplicate",
            to_client,
            "ok",
            &NodeFrame::Ok {
                id: "r2".into(),
                event_id: Some(event.id()),
                duplicate: true,
            },
        ),
        valid_frame(
            "event",
            to_client,
            "event",
            &NodeFrame::Event {
                sub: "s1".into(),
                event: EventBytes::from(&event),
            },
        ),
        valid_frame(
            "stored",
            to_client,
            "stored",
            &NodeFrame::Stored { sub: "s1".into() },
        ),
        valid_frame(
            "closed",
            to_client,
            "closed",
            &NodeFrame::Closed {
                sub: "s1".into(),
                code: ErrorCode::TooManySubscriptions,
                message: "too many open subscriptions".into(),
            },
        ),
        valid_frame(
            "error",
            to_client,
            "error",
            &NodeFrame::Error {
                id: Some("r2".into()),
                code: ErrorCode::BadSignature,
                message: "the signature does not match the author key".into(),
                supported: None,
            },
        ),
        valid_frame(
            "error_unsupported_version",
            to_client,
            "error",
            &NodeFrame::Error {
                id: None,
                code: ErrorCode::UnsupportedVersion,
                message: "protocol version 2 is not supported".into(),
                supported: Some(vec![1]),
            },
        ),
    ]
}

/// The error a frame text produces, as the decoder for `direction` reports it.
pub(crate) fn frame_error(direction: &str, text: &str) -> Option<FrameError> {
    match direction {
        "client_to_node" => kith_protocol::frame::decode_client_frame(text).err(),
        "node_to_client" => kith_protocol::frame::decode_node_frame(text).err(),
        other => panic!("unknown direction {other}"),
    }
}

/// A frame that must be read as meaning the same as `canonical`. The description is added
/// with [`NonCanonicalFrameVector::about`].
fn same_as(name: &str, direction: &str, text: String, canonical: &str) -> NonCanonicalFrameVector {
    let value: serde_json::Value = serde_json::from_str(canonical).expect("canonical JSON");
    NonCanonicalFrameVector {
        name: name.to_owned(),
        description: String::new(),
        direction: direction.to_owned(),
        frame_type: value["type"].as_str().expect("a type").to_owned(),
        text,
        canonical: canonical.to_owned(),
    }
}

impl NonCanonicalFrameVector {
    /// Sets the description.
    fn about(self, description: &str) -> Self {
        NonCanonicalFrameVector {
            description: description.to_owned(),
            ..self
        }
    }
}

/// Frames written differently from the encoder's form that must still be read. Their texts
/// are edits of the canonical texts, so that only the labelled difference is present.
fn non_canonical_frames() -> Vec<NonCanonicalFrameVector> {
    let valid = valid_frames();
    let text_of = |name: &str| {
        let vector = valid
            .iter()
            .find(|v| v.name == name)
            .expect("a valid frame");
        vector.text.clone()
    };
    // The canonical text with `member` inserted before the closing brace.
    let with_member = |name: &str, member: &str| {
        let text = text_of(name);
        format!("{},{member}}}", &text[..text.len() - 1])
    };
    let (login, hello, ok) = (text_of("login"), text_of("hello"), text_of("ok_published"));
    let client = "client_to_node";
    let node = "node_to_client";
    let ok_plain = r#"{"v":1,"type":"ok","id":"r2"}"#;
    vec![
        same_as(
            "members_in_any_order",
            node,
            r#"{"id":"r1","type":"ok","v":1}"#.to_owned(),
            r#"{"v":1,"type":"ok","id":"r1"}"#,
        )
        .about("Members may come in any order; nodes write v first."),
        same_as(
            "unknown_top_level_member",
            client,
            r#"{"v":1,"type":"unsubscribe","id":"s1","priority":"high"}"#.to_owned(),
            r#"{"v":1,"type":"unsubscribe","id":"s1"}"#,
        )
        .about("Unknown top-level members are ignored, so version 1 can gain optional members."),
        same_as(
            "unknown_member_of_limits",
            node,
            hello.replace("900000}", r#"900000,"max_groups":5}"#),
            &hello,
        )
        .about("A client ignores members of limits it does not know."),
        same_as(
            "null_invite_is_absent",
            client,
            with_member("login", r#""invite":null"#),
            &login,
        )
        .about("A member whose value is null counts as absent."),
        same_as(
            "null_event_id_is_absent",
            node,
            r#"{"v":1,"type":"ok","id":"r2","event_id":null}"#.to_owned(),
            ok_plain,
        )
        .about("A member whose value is null counts as absent."),
        same_as(
            "null_duplicate_is_absent",
            node,
            with_member("ok_published", r#""duplicate":null"#),
            &ok,
        )
        .about("A member whose value is null counts as absent; absent duplicate means false."),
        same_as(
            "false_duplicate_is_absent",
            node,
            with_member("ok_published", r#""duplicate":false"#),
            &ok,
        )
        .about("duplicate is written only when true; false means the same as absent."),
        same_as(
            "null_filter_members_are_absent",
            client,
            r#"{"v":1,"type":"subscribe","id":"s1","filter":{"groups":null,"limit":null}}"#
                .to_owned(),
            r#"{"v":1,"type":"subscribe","id":"s1","filter":{}}"#,
        )
        .about("Null members of a filter count as absent: this filter matches everything."),
        same_as(
            "repeated_member_last_wins",
            node,
            r#"{"v":1,"type":"ok","id":"r1","id":"r2"}"#.to_owned(),
            ok_plain,
        )
        .about(
            "Senders must not repeat a member, but a receiver that meets one uses the last \
             occurrence, as JavaScript's JSON.parse does.",
        ),
    ]
}

/// A frame text that must be refused with `code` by the decoder for `direction`. The
/// expected reply (`reply_id`, `supported`) is what [`FrameError::to_frame`] produces; the
/// tests check it against the crate. The description is added with
/// [`InvalidFrameVector::about`].
fn frame_case(
    name: &str,
    direction: &str,
    text: impl Into<String>,
    code: ErrorCode,
) -> InvalidFrameVector {
    let text = text.into();
    let (reply_id, supported) = match frame_error(direction, &text).map(|e| e.to_frame()) {
        Some(NodeFrame::Error { id, supported, .. }) => (id, supported),
        other => panic!("frame vector {name} must be refused with an error frame, got {other:?}"),
    };
    InvalidFrameVector {
        name: name.to_owned(),
        description: String::new(),
        direction: direction.to_owned(),
        text,
        error: code_name(code),
        reply_id,
        supported,
    }
}

impl InvalidFrameVector {
    /// Sets the description.
    fn about(self, description: &str) -> Self {
        InvalidFrameVector {
            description: description.to_owned(),
            ..self
        }
    }
}

/// The invalid frames.
fn invalid_frames() -> Vec<InvalidFrameVector> {
    let event = to_base64(&minimal_post().build().encode());
    let member = test_key(1).public_key().to_string();
    let typo_key = mistype(&member, 20);
    let sig63 = to_base64(&[0u8; 63]);
    let upper_group = hex::encode_upper(GROUP);
    let client = "client_to_node";
    let node = "node_to_client";
    use ErrorCode::{BadFrame, BadJson, UnknownType, UnsupportedVersion};
    vec![
        frame_case("not_json", client, "{not json", BadJson).about("Not JSON."),
        frame_case("empty_text", client, "", BadJson).about("An empty message."),
        frame_case(
            "unterminated_json",
            client,
            r#"{"v":1,"type":"publish""#,
            BadJson,
        )
        .about("JSON cut short."),
        frame_case("array", client, "[1,2]", BadFrame).about("A JSON array, not an object."),
        frame_case("string", client, r#""publish""#, BadFrame)
            .about("A JSON string, not an object."),
        frame_case(
            "missing_version",
            client,
            format!(r#"{{"type":"publish","id":"x","event":"{event}"}}"#),
            BadFrame,
        )
        .about("No \"v\" field; the id is still echoed."),
        frame_case(
            "version_as_string",
            client,
            r#"{"v":"1","type":"unsubscribe","id":"s1"}"#,
            BadFrame,
        )
        .about("\"v\" is the string \"1\", not a number."),
        frame_case(
            "version_as_float",
            client,
            r#"{"v":1.0,"type":"unsubscribe","id":"s1"}"#,
            BadFrame,
        )
        .about("\"v\" is 1.0, not an integer."),
        frame_case(
            "unsupported_version",
            client,
            r#"{"v":2,"type":"publish","id":"a"}"#,
            UnsupportedVersion,
        )
        .about(
            "Version 2, which this side does not speak: the error frame lists the supported \
             versions and echoes the id.",
        ),
        frame_case(
            "unsupported_version_zero",
            node,
            r#"{"v":0,"type":"hello"}"#,
            UnsupportedVersion,
        )
        .about("Version 0 from a node, with no id."),
        frame_case(
            "unknown_type",
            client,
            r#"{"v":1,"type":"shout","id":"x"}"#,
            UnknownType,
        )
        .about("The type \"shout\" does not exist."),
        frame_case("missing_type", client, r#"{"v":1,"id":"x"}"#, UnknownType)
            .about("No \"type\" field."),
        frame_case(
            "node_type_from_client",
            client,
            r#"{"v":1,"type":"stored","sub":"s1"}"#,
            UnknownType,
        )
        .about("\"stored\" is a frame nodes send; a client may not send it."),
        frame_case(
            "publish_without_event",
            client,
            r#"{"v":1,"type":"publish","id":"x"}"#,
            BadFrame,
        )
        .about("A publish frame without its event."),
        frame_case(
            "publish_bad_base64",
            client,
            r#"{"v":1,"type":"publish","id":"x","event":"%%%"}"#,
            BadFrame,
        )
        .about("The event is not base64."),
        frame_case(
            "publish_unpadded_base64",
            client,
            r#"{"v":1,"type":"publish","id":"x","event":"AQI"}"#,
            BadFrame,
        )
        .about(
            "The event is base64 without its '=' padding (\"AQI\" for 01 02); only the padded \
             form is accepted.",
        ),
        frame_case(
            "id_not_a_string",
            client,
            r#"{"v":1,"type":"unsubscribe","id":5}"#,
            BadFrame,
        )
        .about("The id is a number, so the error frame cannot echo it."),
        frame_case(
            "login_mistyped_key",
            client,
            format!(
                r#"{{"v":1,"type":"login","id":"r1","key":"{typo_key}","signature":"{sig63}"}}"#
            ),
            BadFrame,
        )
        .about("The key in a login has a mistyped character."),
        frame_case(
            "login_short_signature",
            client,
            format!(r#"{{"v":1,"type":"login","id":"r1","key":"{member}","signature":"{sig63}"}}"#),
            BadFrame,
        )
        .about("The login signature is 63 bytes, not 64."),
        frame_case(
            "subscribe_unknown_filter_field",
            client,
            r#"{"v":1,"type":"subscribe","id":"s1","filter":{"grups":[]}}"#,
            BadFrame,
        )
        .about("The filter has a misspelt field \"grups\"."),
        frame_case(
            "subscribe_filter_null",
            client,
            r#"{"v":1,"type":"subscribe","id":"s1","filter":null}"#,
            BadFrame,
        )
        .about("A null filter counts as absent, and subscribe needs a filter."),
        frame_case(
            "subscribe_uppercase_hex",
            client,
            format!(
                r#"{{"v":1,"type":"subscribe","id":"s1","filter":{{"groups":["{upper_group}"]}}}}"#
            ),
            BadFrame,
        )
        .about("A group id in upper-case hex; ids are lower-case hex only."),
    ]
}

/// The contents of `frames.json`.
pub(crate) fn frames_file() -> FramesFile {
    FramesFile {
        description: "Kith wire frames (JSON text messages on the WebSocket, protocol version \
            1). `valid` frames must be read by the decoder for their `direction` (client_to_node \
            frames by a node, node_to_client frames by a client) as the given `type`, and each \
            text is already canonical: encoding the decoded frame gives the same text, with \"v\" \
            first. `valid_non_canonical` texts are written differently (member order, unknown \
            members, null members, a repeated member) and must be read as meaning exactly the \
            same frame as `canonical`. The login signatures are by the key with seed 01…01 for the node key with \
            seed 09…09 and the challenge 63…63 (32 bytes); the published event is post_minimal \
            from events-valid.json. `invalid` texts must be refused with the error code in \
            `error`, answered by an error frame whose \"id\" is `reply_id` and whose \
            \"supported\" list is `supported` (null means the field is absent). Generated by \
            `cargo run -p kith-protocol --example gen_vectors`; checked by \
            protocol/tests/vectors.rs. Do not edit by hand."
            .to_owned(),
        valid: valid_frames(),
        valid_non_canonical: non_canonical_frames(),
        invalid: invalid_frames(),
    }
}

// ---------------------------------------------------------------------------------------
// Output.
// ---------------------------------------------------------------------------------------

/// Pretty JSON with a final newline.
fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("the vector files serialise");
    text.push('\n');
    text
}

/// Every vector file: its name under `protocol/vectors/` and its exact contents.
pub(crate) fn render_all() -> Vec<(&'static str, String)> {
    vec![
        ("events-valid.json", pretty(&valid_events_file())),
        ("events-invalid.json", pretty(&invalid_events_file())),
        ("keys.json", pretty(&keys_file())),
        ("frames.json", pretty(&frames_file())),
    ]
}

/// The directory the files are written to.
pub(crate) fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn main() -> std::io::Result<()> {
    let dir = vectors_dir();
    std::fs::create_dir_all(&dir)?;
    for (name, text) in render_all() {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
