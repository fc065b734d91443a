//! The wire format of sync messages: a strict decoder and the encoder.
//!
//! ```text
//! message = version:u8 range*
//! range   = bound mode:u8 payload
//! bound   = time-delta:varint prefix-len:u8 prefix:bytes     (prefix-len 0..=32)
//!         | 0x00 0xff                                        (END)
//! payload = ""                                               (mode 0 skip, 4 deferred)
//!         | fingerprint:16 bytes                             (mode 1)
//!         | count:varint id:32 bytes × count                 (mode 2 id list)
//!         | count:varint id:32 bytes × count                 (mode 3 difference)
//!           bits:varint held:⌈bits/8⌉ bytes
//!         | count:varint                                     (mode 5 absent, count ≥ 1)
//! ```
//!
//! Ranges are contiguous: the first starts at [`Bound::MIN`] and each starts where the one
//! before ended, so only upper bounds are sent. Their times are deltas from the previous
//! bound's time. Everything above the last upper bound is implicitly skipped. The decoder
//! accepts exactly one spelling of each message (see [`decode_message`]).

use std::fmt;

use super::fingerprint::FINGERPRINT_LEN;
use super::item::MAX_PREFIX_LEN;
use super::varint::{self, VarintError};
use super::{Bound, Fingerprint, SyncError, MAX_MESSAGE_BYTES, SYNC_VERSION};
use crate::{EventId, Timestamp};

/// The `prefix-len` byte that marks [`Bound::END`].
const END_MARK: u8 = 0xff;

/// What a range says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Nothing to do here (the range matched, or was settled before).
    Skip = 0,
    /// Here is my fingerprint of this range.
    Fingerprint = 1,
    /// Here are all my ids in this range.
    IdList = 2,
    /// The answer to your id list for exactly this range: the ids you lack, and which of
    /// yours I hold. Only a responder sends it.
    Difference = 3,
    /// I did not answer this range in this round (my message was full): ask again. Only a
    /// responder sends it.
    Deferred = 4,
    /// The answer to your *empty* id list for exactly this range: I hold this many items
    /// here, none of which you have; fetch them by range rather than by id. Only a
    /// responder sends it.
    Absent = 5,
}

impl Mode {
    /// The mode with this byte, if any.
    pub const fn from_byte(byte: u8) -> Option<Mode> {
        Some(match byte {
            0 => Mode::Skip,
            1 => Mode::Fingerprint,
            2 => Mode::IdList,
            3 => Mode::Difference,
            4 => Mode::Deferred,
            5 => Mode::Absent,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    /// Its name in messages and docs.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Skip => "skip",
            Mode::Fingerprint => "fingerprint",
            Mode::IdList => "id list",
            Mode::Difference => "difference",
            Mode::Deferred => "deferred",
            Mode::Absent => "absent",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One bit per id of the peer's id list, in the order listed: whether the sender holds it.
/// Packed least significant bit first; unused bits of the last byte are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldBits {
    len: usize,
    bytes: Vec<u8>,
}

impl HeldBits {
    /// No bits.
    pub const fn new() -> HeldBits {
        HeldBits {
            len: 0,
            bytes: Vec::new(),
        }
    }

    /// Appends one bit.
    pub fn push(&mut self, held: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if held {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (self.len % 8);
            }
        }
        self.len += 1;
    }

    /// How many bits.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bits.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<bool> {
        if index >= self.len {
            return None;
        }
        self.bytes
            .get(index / 8)
            .map(|byte| byte & (1 << (index % 8)) != 0)
    }

    /// Whether every bit is set.
    pub fn all(&self) -> bool {
        (0..self.len).all(|i| self.get(i) == Some(true))
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl FromIterator<bool> for HeldBits {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> HeldBits {
        let mut bits = HeldBits::new();
        for bit in iter {
            bits.push(bit);
        }
        bits
    }
}

/// What a range carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Mode 0: nothing.
    Skip,
    /// Mode 1: the sender's fingerprint of the range.
    Fingerprint(Fingerprint),
    /// Mode 2: every id the sender has in the range.
    IdList(Vec<EventId>),
    /// Mode 3: the answer to an id list.
    Difference {
        /// Ids the sender has in the range that were not in the id list.
        missing: Vec<EventId>,
        /// For each id of the id list, in its order: whether the sender has it.
        held: HeldBits,
    },
    /// Mode 4: not answered this round.
    Deferred,
    /// Mode 5: the answer to an empty id list: how many items the sender holds in the
    /// range (at least one), all of which the receiver lacks.
    Absent {
        /// How many.
        count: u64,
    },
}

impl Payload {
    /// The mode of this payload.
    pub const fn mode(&self) -> Mode {
        match self {
            Payload::Skip => Mode::Skip,
            Payload::Fingerprint(_) => Mode::Fingerprint,
            Payload::IdList(_) => Mode::IdList,
            Payload::Difference { .. } => Mode::Difference,
            Payload::Deferred => Mode::Deferred,
            Payload::Absent { .. } => Mode::Absent,
        }
    }
}

/// One range of a message: it ends at `upper` and starts where the previous one ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRange {
    /// The exclusive upper bound.
    pub upper: Bound,
    /// What the sender says about the range.
    pub payload: Payload,
}

/// A decoded sync message of the version this crate speaks ([`SYNC_VERSION`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The ranges, in increasing order, the first starting at [`Bound::MIN`].
    pub ranges: Vec<MessageRange>,
}

impl Message {
    /// The bytes of this message. For any bytes [`decode_message`] accepts,
    /// `decode_message(b)?.encode() == b`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        for range in &self.ranges {
            let lower = w.cursor;
            match &range.payload {
                Payload::Skip => w.skip(&range.upper),
                Payload::Fingerprint(fp) => w.fingerprint(&lower, &range.upper, fp),
                Payload::IdList(ids) => w.id_list(&lower, &range.upper, ids.iter().copied()),
                Payload::Difference { missing, held } => {
                    w.difference(&lower, &range.upper, missing, held)
                }
                Payload::Deferred => w.deferred(&lower, &range.upper),
                Payload::Absent { count } => w.absent(&lower, &range.upper, *count),
            }
        }
        w.finish()
    }

    /// The whole message that answers a message of a version this node does not speak:
    /// the one byte naming the highest version it does speak.
    pub fn version_answer() -> Vec<u8> {
        vec![SYNC_VERSION]
    }
}

/// Decodes a sync message, strictly.
///
/// Refused, each with its own [`SyncError`]: more than [`MAX_MESSAGE_BYTES`] bytes; no
/// version byte; a version other than [`SYNC_VERSION`] ([`SyncError::UnsupportedVersion`]:
/// answer it with [`Message::version_answer`]); a message that ends inside a range; a varint
/// that is not minimal or exceeds 64 bits; a time that overflows; a prefix longer than 32
/// bytes or ending in a zero byte; END with a non-zero time delta, or anything after END;
/// bounds that do not strictly increase; an unknown mode; a count larger than the bytes
/// left could hold; held bits with non-zero padding; an absent range with a count of zero;
/// two skips in a row, or a skip last.
///
/// It never panics, and allocates at most in proportion to `bytes.len()`.
pub fn decode_message(bytes: &[u8]) -> Result<Message, SyncError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::MessageTooLarge {
            size: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let (&version, rest) = bytes.split_first().ok_or(SyncError::Truncated {
        what: "the version byte",
    })?;
    if version != SYNC_VERSION {
        return Err(SyncError::UnsupportedVersion { version });
    }
    let mut reader = Reader { bytes: rest };
    let mut ranges: Vec<MessageRange> = Vec::new();
    let mut previous = Bound::MIN;
    let mut previous_time = 0u64;
    while !reader.bytes.is_empty() {
        if previous.is_end() {
            return Err(SyncError::RangeAfterEnd);
        }
        let upper = reader.bound(&mut previous_time)?;
        if upper <= previous {
            return Err(SyncError::BoundsNotIncreasing);
        }
        previous = upper;
        let payload = reader.payload()?;
        let skip = payload == Payload::Skip;
        if skip && ranges.last().is_some_and(|r| r.payload == Payload::Skip) {
            return Err(SyncError::NonCanonical {
                what: "two skip ranges in a row (merge them into one)",
            });
        }
        ranges.push(MessageRange { upper, payload });
    }
    if ranges.last().is_some_and(|r| r.payload == Payload::Skip) {
        return Err(SyncError::NonCanonical {
            what: "the last range is a skip (leave it out: the rest is skipped anyway)",
        });
    }
    Ok(Message { ranges })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SyncError> {
        if self.bytes.len() < n {
            return Err(SyncError::Truncated { what });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, SyncError> {
        Ok(self.take(1, what)?[0])
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, SyncError> {
        match varint::read(self.bytes) {
            Ok((value, used)) => {
                self.bytes = &self.bytes[used..];
                Ok(value)
            }
            Err(VarintError::Truncated) => Err(SyncError::Truncated { what }),
            Err(VarintError::NotMinimal) => Err(SyncError::NonCanonical {
                what: "a number is not in its shortest form",
            }),
            Err(VarintError::Overflow) => Err(SyncError::Overflow { what }),
        }
    }

    /// A count of `unit`-byte things, checked against the bytes left before anything is
    /// allocated for them.
    fn count(&mut self, unit: usize, what: &'static str) -> Result<usize, SyncError> {
        let declared = self.varint(what)?;
        let available = self.bytes.len() / unit;
        match usize::try_from(declared) {
            Ok(n) if n <= available => Ok(n),
            _ => Err(SyncError::CountTooLarge {
                what,
                declared,
                available,
            }),
        }
    }

    fn bound(&mut self, previous_time: &mut u64) -> Result<Bound, SyncError> {
        let delta = self.varint("a bound's time")?;
        let len = self.byte("a bound's prefix length")?;
        if len == END_MARK {
            if delta != 0 {
                return Err(SyncError::NonCanonical {
                    what: "the END bound has a non-zero time delta",
                });
            }
            return Ok(Bound::END);
        }
        let len = usize::from(len);
        if len > MAX_PREFIX_LEN {
            return Err(SyncError::PrefixTooLong { len });
        }
        let prefix = self.take(len, "a bound's id prefix")?;
        if prefix.last() == Some(&0) {
            return Err(SyncError::NonCanonical {
                what: "a bound's id prefix ends with a zero byte",
            });
        }
        let time = previous_time
            .checked_add(delta)
            .ok_or(SyncError::Overflow {
                what: "a bound's time",
            })?;
        *previous_time = time;
        Bound::new(Timestamp(time), prefix)
    }

    fn ids(&mut self, count: usize) -> Result<Vec<EventId>, SyncError> {
        let raw = self.take(count * 32, "an id list")?;
        Ok(raw
            .chunks_exact(32)
            .map(|chunk| {
                let mut id = [0u8; 32];
                id.copy_from_slice(chunk);
                EventId::from_bytes(id)
            })
            .collect())
    }

    fn payload(&mut self) -> Result<Payload, SyncError> {
        let byte = self.byte("a range's mode")?;
        let mode = Mode::from_byte(byte).ok_or(SyncError::UnknownMode { mode: byte })?;
        Ok(match mode {
            Mode::Skip => Payload::Skip,
            Mode::Deferred => Payload::Deferred,
            Mode::Absent => {
                let count = self.varint("an absent range's count")?;
                if count == 0 {
                    return Err(SyncError::NonCanonical {
                        what: "an absent range holds no items (send a skip range instead)",
                    });
                }
                Payload::Absent { count }
            }
            Mode::Fingerprint => {
                let raw = self.take(FINGERPRINT_LEN, "a fingerprint")?;
                let mut fp = [0u8; FINGERPRINT_LEN];
                fp.copy_from_slice(raw);
                Payload::Fingerprint(Fingerprint::from_bytes(fp))
            }
            Mode::IdList => {
                let count = self.count(32, "an id list's count")?;
                Payload::IdList(self.ids(count)?)
            }
            Mode::Difference => {
                let count = self.count(32, "a difference's count of missing ids")?;
                let missing = self.ids(count)?;
                let declared = self.varint("a difference's count of held bits")?;
                let available_bytes = self.bytes.len();
                let len = usize::try_from(declared)
                    .ok()
                    .filter(|bits| bits.div_ceil(8) <= available_bytes)
                    .ok_or(SyncError::CountTooLarge {
                        what: "a difference's count of held bits",
                        declared,
                        available: available_bytes.saturating_mul(8),
                    })?;
                let bytes = self.take(len.div_ceil(8), "held bits")?.to_vec();
                if len % 8 != 0 && bytes.last().is_some_and(|b| b >> (len % 8) != 0) {
                    return Err(SyncError::NonCanonical {
                        what: "unused bits after the last held bit are not zero",
                    });
                }
                Payload::Difference {
                    missing,
                    held: HeldBits { len, bytes },
                }
            }
        })
    }
}

/// Builds a message range by range, tracking what delta encoding needs, and can roll back
/// to a [`Mark`] when a range turns out not to fit.
pub(super) struct Writer {
    buf: Vec<u8>,
    /// Where the last written range ended: the next range starts here.
    cursor: Bound,
    /// The time of the last bound written.
    last_time: u64,
}

/// A point a [`Writer`] can return to.
#[derive(Clone, Copy)]
pub(super) struct Mark {
    len: usize,
    cursor: Bound,
    last_time: u64,
}

/// The most bytes one bound takes: a 10-byte delta, the length byte and 32 prefix bytes.
pub(super) const MAX_BOUND_LEN: usize = varint::MAX_VARINT_LEN + 1 + MAX_PREFIX_LEN;

impl Writer {
    pub(super) fn new() -> Writer {
        Writer {
            buf: vec![SYNC_VERSION],
            cursor: Bound::MIN,
            last_time: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            cursor: self.cursor,
            last_time: self.last_time,
        }
    }

    pub(super) fn reset(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        self.cursor = mark.cursor;
        self.last_time = mark.last_time;
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn bound(&mut self, bound: &Bound) {
        match bound.time() {
            None => {
                self.buf.push(0);
                self.buf.push(END_MARK);
            }
            Some(time) => {
                // Bounds are written in increasing order, so times never go back; saturate
                // rather than trust that.
                varint::write(&mut self.buf, time.0.saturating_sub(self.last_time));
                self.last_time = time.0;
                let prefix = bound.prefix();
                // At most 32 bytes long.
                self.buf.push(prefix.len() as u8);
                self.buf.extend_from_slice(prefix);
            }
        }
        self.cursor = *bound;
    }

    /// Writes a skip range up to `upper`.
    pub(super) fn skip(&mut self, upper: &Bound) {
        self.bound(upper);
        self.buf.push(Mode::Skip.as_byte());
    }

    /// Starts a range at `lower`: a skip range first if there is a gap since the last one.
    fn open(&mut self, lower: &Bound, upper: &Bound, mode: Mode) {
        if *lower > self.cursor {
            self.skip(lower);
        }
        self.bound(upper);
        self.buf.push(mode.as_byte());
    }

    pub(super) fn fingerprint(&mut self, lower: &Bound, upper: &Bound, fp: &Fingerprint) {
        self.open(lower, upper, Mode::Fingerprint);
        self.buf.extend_from_slice(fp.as_bytes());
    }

    pub(super) fn id_list(
        &mut self,
        lower: &Bound,
        upper: &Bound,
        ids: impl ExactSizeIterator<Item = EventId>,
    ) {
        self.open(lower, upper, Mode::IdList);
        varint::write(&mut self.buf, ids.len() as u64);
        for id in ids {
            self.buf.extend_from_slice(id.as_bytes());
        }
    }

    pub(super) fn difference(
        &mut self,
        lower: &Bound,
        upper: &Bound,
        missing: &[EventId],
        held: &HeldBits,
    ) {
        self.open(lower, upper, Mode::Difference);
        varint::write(&mut self.buf, missing.len() as u64);
        for id in missing {
            self.buf.extend_from_slice(id.as_bytes());
        }
        varint::write(&mut self.buf, held.len() as u64);
        self.buf.extend_from_slice(held.as_bytes());
    }

    pub(super) fn deferred(&mut self, lower: &Bound, upper: &Bound) {
        self.open(lower, upper, Mode::Deferred);
    }

    pub(super) fn absent(&mut self, lower: &Bound, upper: &Bound, count: u64) {
        self.open(lower, upper, Mode::Absent);
        varint::write(&mut self.buf, count);
    }
}

/// Bytes of an id list payload of `count` ids (after the mode byte).
pub(super) fn id_list_len(count: usize) -> usize {
    varint::len(count as u64) + 32 * count
}

/// Bytes of a difference payload (after the mode byte).
pub(super) fn difference_len(missing: usize, held_bits: usize) -> usize {
    id_list_len(missing) + varint::len(held_bits as u64) + held_bits.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version byte, as the first byte of the hand-written messages below.
    const V: u8 = SYNC_VERSION;

    fn bound(time: u64, prefix: &[u8]) -> Bound {
        Bound::new(Timestamp(time), prefix).unwrap()
    }

    fn sample() -> Message {
        Message {
            ranges: vec![
                MessageRange {
                    upper: bound(1_700_000_000_000, &[]),
                    payload: Payload::Skip,
                },
                MessageRange {
                    upper: bound(1_700_000_000_000, &[0x42, 0x01]),
                    payload: Payload::Fingerprint(Fingerprint::from_bytes([7; 16])),
                },
                MessageRange {
                    upper: bound(1_700_000_000_500, &[]),
                    payload: Payload::IdList(vec![EventId::from_bytes([1; 32])]),
                },
                MessageRange {
                    upper: bound(1_700_000_000_501, &[0xff; 32]),
                    payload: Payload::Difference {
                        missing: vec![EventId::from_bytes([2; 32])],
                        held: [true, false, true].into_iter().collect(),
                    },
                },
                MessageRange {
                    upper: bound(1_700_000_000_600, &[]),
                    payload: Payload::Absent { count: 300 },
                },
                MessageRange {
                    upper: Bound::END,
                    payload: Payload::Deferred,
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let message = sample();
        let bytes = message.encode();
        assert_eq!(bytes[0], SYNC_VERSION);
        assert_eq!(decode_message(&bytes).unwrap(), message);
        assert_eq!(decode_message(&[SYNC_VERSION]).unwrap(), Message::default());
        assert_eq!(Message::default().encode(), [SYNC_VERSION]);
    }

    #[test]
    fn known_bytes() {
        let message = Message {
            ranges: vec![
                MessageRange {
                    upper: bound(300, &[]),
                    payload: Payload::Skip,
                },
                MessageRange {
                    upper: bound(300, &[0xab]),
                    payload: Payload::Fingerprint(Fingerprint::from_bytes([0x11; 16])),
                },
                MessageRange {
                    upper: Bound::END,
                    payload: Payload::IdList(vec![]),
                },
            ],
        };
        let mut expected = vec![V, 0xac, 0x02, 0x00, 0x00, 0x00, 0x01, 0xab, 0x01];
        expected.extend_from_slice(&[0x11; 16]);
        expected.extend_from_slice(&[0x00, 0xff, 0x02, 0x00]);
        assert_eq!(message.encode(), expected);
    }

    fn refused(bytes: &[u8]) -> SyncError {
        match decode_message(bytes) {
            Err(e) => e,
            Ok(m) => panic!("accepted {bytes:02x?} as {m:?}"),
        }
    }

    #[test]
    fn refuses_malformed() {
        assert!(matches!(refused(&[]), SyncError::Truncated { .. }));
        assert!(matches!(
            refused(&[0x01, 0x00]),
            SyncError::UnsupportedVersion { version: 1 }
        ));
        assert!(matches!(
            refused(&[0x61]),
            SyncError::UnsupportedVersion { version: 0x61 }
        ));
        // Truncated in the middle of the bound, the mode and the payload.
        assert!(matches!(refused(&[V, 0x80]), SyncError::Truncated { .. }));
        assert!(matches!(refused(&[V, 0x05]), SyncError::Truncated { .. }));
        assert!(matches!(
            refused(&[V, 0x05, 0x00]),
            SyncError::Truncated { .. }
        ));
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x01, 0x00]),
            SyncError::Truncated { .. }
        ));
        // Mode 9.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x09]),
            SyncError::UnknownMode { mode: 9 }
        ));
        // First bound equal to MIN.
        assert!(matches!(
            refused(&[V, 0x00, 0x00, 0x04]),
            SyncError::BoundsNotIncreasing
        ));
        // Second bound equal to the first.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x04, 0x00, 0x00, 0x04]),
            SyncError::BoundsNotIncreasing
        ));
        // Same time, smaller prefix.
        assert!(matches!(
            refused(&[V, 0x05, 0x01, 0x09, 0x04, 0x00, 0x01, 0x08, 0x04]),
            SyncError::BoundsNotIncreasing
        ));
        // Prefix of 33 bytes; prefix ending in zero.
        assert!(matches!(
            refused(&[V, 0x05, 33]),
            SyncError::PrefixTooLong { len: 33 }
        ));
        assert!(matches!(
            refused(&[V, 0x05, 0x02, 0x01, 0x00, 0x04]),
            SyncError::NonCanonical { .. }
        ));
        // END with a time; a range after END.
        assert!(matches!(
            refused(&[V, 0x01, 0xff, 0x04]),
            SyncError::NonCanonical { .. }
        ));
        assert!(matches!(
            refused(&[V, 0x00, 0xff, 0x04, 0x01, 0x00, 0x04]),
            SyncError::RangeAfterEnd
        ));
        // Time overflow: u64::MAX, then +1.
        let mut bytes = vec![V];
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        bytes.extend_from_slice(&[0x00, 0x04, 0x01, 0x01, 0x01, 0x04]);
        assert!(matches!(refused(&bytes), SyncError::Overflow { .. }));
        // Counts beyond the bytes left: a billion ids, and 2^64-1 held bits.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x02, 0x80, 0x94, 0xeb, 0xdc, 0x03]),
            SyncError::CountTooLarge { .. }
        ));
        let mut bytes = vec![V, 0x05, 0x00, 0x03, 0x00];
        bytes.extend_from_slice(&[0xff; 9]);
        bytes.push(0x01);
        assert!(matches!(refused(&bytes), SyncError::CountTooLarge { .. }));
        // Held bits with padding set: 1 bit, byte 0b10.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x03, 0x00, 0x01, 0x02]),
            SyncError::NonCanonical { .. }
        ));
        // An absent range with no items.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x05, 0x00]),
            SyncError::NonCanonical { .. }
        ));
        // Non-minimal varint.
        assert!(matches!(
            refused(&[V, 0x85, 0x00, 0x00, 0x04]),
            SyncError::NonCanonical { .. }
        ));
        // Two skips; trailing skip.
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x00, 0x05, 0x00, 0x00, 0x05, 0x00, 0x04]),
            SyncError::NonCanonical { .. }
        ));
        assert!(matches!(
            refused(&[V, 0x05, 0x00, 0x04, 0x05, 0x00, 0x00]),
            SyncError::NonCanonical { .. }
        ));
        // Too large.
        let mut big = vec![V];
        big.resize(MAX_MESSAGE_BYTES + 1, 0);
        assert!(matches!(refused(&big), SyncError::MessageTooLarge { .. }));
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_refused_or_shorter_valid() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            // A cut exactly between two ranges is a valid shorter message (unless it ends
            // with a skip); anything else must be refused.
            if let Ok(message) = decode_message(&bytes[..cut]) {
                assert_eq!(message.encode(), &bytes[..cut]);
            }
        }
    }

    #[test]
    fn held_bits() {
        let bits: HeldBits = [
            true, false, false, true, true, true, true, true, false, true,
        ]
        .into_iter()
        .collect();
        assert_eq!(bits.len(), 10);
        assert_eq!(bits.as_bytes(), &[0b1111_1001, 0b10]);
        assert_eq!(bits.get(3), Some(true));
        assert_eq!(bits.get(8), Some(false));
        assert_eq!(bits.get(10), None);
        assert!(!bits.all());
        assert!([true; 9].into_iter().collect::<HeldBits>().all());
        assert!(HeldBits::new().all() && HeldBits::new().is_empty());
    }
}
