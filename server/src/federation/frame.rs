//! The frames two linked nodes exchange after the handshake, and their bounds.
//!
//! Control frames are JSON text; the bulk (ids, events, sync messages) travels as binary
//! WebSocket messages, so catching up costs about the events' own bytes, not a text
//! encoding of them.
//!
//! ```text
//! text   {"type":"fed_groups","groups":[<group id>…]}   groups the sender holds and the receiver may have
//! text   {"type":"fed_ack","seq":n}                     queued events up to n were handled
//! text   {"type":"fed_error","code":…,"message":…}      a refusal
//! binary 0x01 sync        group(32) session(u32) message      a sync::Initiator message for one group
//! binary 0x02 sync_reply  group(32) session(u32) message      the sync::Responder's answer
//! binary 0x03 fetch       id(32)…                             ask for events (at most FETCH_BATCH)
//! binary 0x04 events      n_missing(u32) id(32)… (len(u32) event)…   the answer (at most EVENTS_REPLY_BYTES)
//! binary 0x05 event       seq(u64, 0 = none) event            a newly stored event from the sender's queue
//! binary 0x06 fetch_range group(32) lower upper               ask for a group's events in [lower, upper)
//! binary 0x07 range_events more(u8) (len(u32) event)…         the answer, in (time, id) order (at most RANGE_BATCH)
//! bound = 0x00 time(u64) prefix-len(u8) prefix | 0x01 (END)
//! ```
//!
//! Integers are big-endian.
//!
//! SPEC.md §9.16 is the normative text.

use kith_protocol::event::{EventId, GroupId, Timestamp};
use kith_protocol::frame::ErrorCode;
use kith_protocol::sync::Bound;
use serde::{Deserialize, Serialize};

/// Path of the node-to-node WebSocket.
pub const FEDERATION_PATH: &str = "/federation";
/// Largest frame a link takes or sends.
pub const MAX_FED_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Most ids one `fed_fetch` may ask for.
pub const FETCH_BATCH: usize = 64;
/// Most bytes of events one `events` answer carries (at least one event).
pub const EVENTS_REPLY_BYTES: usize = 1024 * 1024;
/// Most events one `range_events` answer carries (and at most [`EVENTS_REPLY_BYTES`]).
pub const RANGE_BATCH: usize = 256;
/// Most group ids one `fed_groups` may carry.
pub const MAX_GROUPS_PER_FRAME: usize = 10_000;
/// Most events waiting for their parents, per link.
pub(super) const MAX_PENDING: usize = 1024;
/// Most ids a link fetches because something cited them (parents, genesis).
pub(super) const MAX_PARENT_FETCHES: usize = 16_384;
/// Most groups answered at the same time, per link.
pub(super) const MAX_RESPONDERS: usize = 256;
/// Bad frames a peer may send before the link is closed.
pub(super) const MAX_BAD_FRAMES: u32 = 64;
/// Frames queued each way per link.
pub(super) const QUEUE: usize = 1024;
/// Most queued events sent to a peer and not yet acknowledged.
pub(super) const OUTBOX_WINDOW: usize = 256;
/// Frames a peer may send per second on one link (sustained), and in a burst.
pub(super) const FRAMES_PER_SECOND: f64 = 2_000.0;
/// See [`FRAMES_PER_SECOND`].
pub(super) const FRAMES_BURST: f64 = 10_000.0;
/// Most group-creating events looked at when listing the groups held.
pub(super) const MAX_GROUPS_LISTED: usize = 100_000;

/// One frame of a link, after the handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FedFrame {
    /// Groups the sender holds that the receiver may have: public ones, and private ones in
    /// which the receiver hosts a member.
    FedGroups {
        /// Their ids.
        groups: Vec<GroupId>,
    },
    /// Every queued event up to `seq` was handled (stored, already held, or refused): the
    /// sender may forget them.
    FedAck {
        /// The highest sequence number handled.
        seq: u64,
    },
    /// A refusal.
    FedError {
        /// The stable code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
}

/// One binary frame of a link (see the module docs for the layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinFrame {
    /// An initiator's sync message for one group.
    Sync {
        /// The group reconciled.
        group: GroupId,
        /// Which session of this link (a new number starts a new responder).
        session: u32,
        /// The message.
        msg: Vec<u8>,
    },
    /// A responder's answer.
    SyncReply {
        /// The group reconciled.
        group: GroupId,
        /// The session answered.
        session: u32,
        /// The message.
        msg: Vec<u8>,
    },
    /// A request for events.
    Fetch {
        /// Their ids.
        ids: Vec<EventId>,
    },
    /// Events asked for.
    Events {
        /// Ids the sender does not serve.
        missing: Vec<EventId>,
        /// The events' bytes.
        events: Vec<Vec<u8>>,
    },
    /// A request for a group's events in `[lower, upper)` (a range the sync found the
    /// sender holds none of), answered with [`BinFrame::RangeEvents`].
    FetchRange {
        /// The group.
        group: GroupId,
        /// Inclusive lower bound.
        lower: Bound,
        /// Exclusive upper bound.
        upper: Bound,
    },
    /// The first events of a requested range, in (time, id) order.
    RangeEvents {
        /// Whether the range holds more: ask again from just after the last one.
        more: bool,
        /// The events' bytes.
        events: Vec<Vec<u8>>,
    },
    /// A newly stored event, from the sender's outbound queue; answered with `fed_ack`.
    Event {
        /// Its place in the sender's queue for this peer.
        seq: Option<u64>,
        /// The event's bytes.
        event: Vec<u8>,
    },
}

/// A binary frame that does not follow the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a binary link frame is malformed: {0}")]
pub struct BinFrameError(&'static str);

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], BinFrameError> {
    if bytes.len() < n {
        return Err(BinFrameError("it ends too early"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_u32(bytes: &mut &[u8]) -> Result<u32, BinFrameError> {
    let b = take(bytes, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn put_bound(out: &mut Vec<u8>, bound: &Bound) {
    match bound.time() {
        None => out.push(1),
        Some(time) => {
            out.push(0);
            out.extend_from_slice(&time.0.to_be_bytes());
            let prefix = bound.prefix();
            // At most 32 bytes.
            out.push(prefix.len() as u8);
            out.extend_from_slice(prefix);
        }
    }
}

fn take_bound(bytes: &mut &[u8]) -> Result<Bound, BinFrameError> {
    match take(bytes, 1)?[0] {
        1 => Ok(Bound::END),
        0 => {
            let time = u64::from_be_bytes(take(bytes, 8)?.try_into().unwrap_or([0; 8]));
            let len = usize::from(take(bytes, 1)?[0]);
            let prefix = take(bytes, len)?;
            Bound::new(Timestamp(time), prefix)
                .map_err(|_| BinFrameError("a bound's id prefix is longer than 32 bytes"))
        }
        _ => Err(BinFrameError("a bound starts with neither 0 nor 1")),
    }
}

/// Reads `(len(u32) event)…` to the end, at most `max` events.
fn take_events(b: &mut &[u8], max: usize) -> Result<Vec<Vec<u8>>, BinFrameError> {
    let mut events = Vec::new();
    while !b.is_empty() {
        if events.len() >= max {
            return Err(BinFrameError("more events than one answer may carry"));
        }
        let len = take_u32(b)? as usize;
        events.push(take(b, len)?.to_vec());
    }
    Ok(events)
}

fn put_events(out: &mut Vec<u8>, events: &[Vec<u8>]) {
    for event in events {
        out.extend_from_slice(&(event.len() as u32).to_be_bytes());
        out.extend_from_slice(event);
    }
}

fn take_id(bytes: &mut &[u8]) -> Result<[u8; 32], BinFrameError> {
    let mut id = [0u8; 32];
    id.copy_from_slice(take(bytes, 32)?);
    Ok(id)
}

impl BinFrame {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            BinFrame::Sync {
                group,
                session,
                msg,
            }
            | BinFrame::SyncReply {
                group,
                session,
                msg,
            } => {
                out.push(if matches!(self, BinFrame::Sync { .. }) {
                    1
                } else {
                    2
                });
                out.extend_from_slice(group.as_bytes());
                out.extend_from_slice(&session.to_be_bytes());
                out.extend_from_slice(msg);
            }
            BinFrame::Fetch { ids } => {
                out.push(3);
                for id in ids {
                    out.extend_from_slice(id.as_bytes());
                }
            }
            BinFrame::Events { missing, events } => {
                out.push(4);
                out.extend_from_slice(&(missing.len() as u32).to_be_bytes());
                for id in missing {
                    out.extend_from_slice(id.as_bytes());
                }
                put_events(&mut out, events);
            }
            BinFrame::FetchRange {
                group,
                lower,
                upper,
            } => {
                out.push(6);
                out.extend_from_slice(group.as_bytes());
                put_bound(&mut out, lower);
                put_bound(&mut out, upper);
            }
            BinFrame::RangeEvents { more, events } => {
                out.push(7);
                out.push(u8::from(*more));
                put_events(&mut out, events);
            }
            BinFrame::Event { seq, event } => {
                out.push(5);
                out.extend_from_slice(&seq.unwrap_or(0).to_be_bytes());
                out.extend_from_slice(event);
            }
        }
        out
    }

    /// Reads a frame; every byte must be accounted for.
    pub fn decode(mut bytes: &[u8]) -> Result<BinFrame, BinFrameError> {
        let b = &mut bytes;
        let tag = take(b, 1)?[0];
        let frame = match tag {
            1 | 2 => {
                let group = GroupId::from_bytes(take_id(b)?);
                let session = take_u32(b)?;
                let msg = std::mem::take(b).to_vec();
                if tag == 1 {
                    BinFrame::Sync {
                        group,
                        session,
                        msg,
                    }
                } else {
                    BinFrame::SyncReply {
                        group,
                        session,
                        msg,
                    }
                }
            }
            3 => {
                if b.len() % 32 != 0 || b.len() / 32 > FETCH_BATCH {
                    return Err(BinFrameError(
                        "a fetch holds whole 32-byte ids, at most FETCH_BATCH of them",
                    ));
                }
                let mut ids = Vec::new();
                while !b.is_empty() {
                    ids.push(EventId::from_bytes(take_id(b)?));
                }
                BinFrame::Fetch { ids }
            }
            4 => {
                let n = take_u32(b)? as usize;
                if n > FETCH_BATCH {
                    return Err(BinFrameError("more missing ids than a fetch may ask for"));
                }
                let mut missing = Vec::with_capacity(n);
                for _ in 0..n {
                    missing.push(EventId::from_bytes(take_id(b)?));
                }
                let events = take_events(b, FETCH_BATCH)?;
                BinFrame::Events { missing, events }
            }
            6 => {
                let group = GroupId::from_bytes(take_id(b)?);
                let lower = take_bound(b)?;
                let upper = take_bound(b)?;
                if !b.is_empty() {
                    return Err(BinFrameError("bytes after a fetch_range's bounds"));
                }
                if lower >= upper {
                    return Err(BinFrameError(
                        "a fetch_range's lower bound is not below its upper one",
                    ));
                }
                BinFrame::FetchRange {
                    group,
                    lower,
                    upper,
                }
            }
            7 => {
                let more = match take(b, 1)?[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(BinFrameError("range_events' `more` is neither 0 nor 1")),
                };
                let events = take_events(b, RANGE_BATCH)?;
                BinFrame::RangeEvents { more, events }
            }
            5 => {
                let seq = u64::from_be_bytes(take(b, 8)?.try_into().unwrap_or([0; 8]));
                BinFrame::Event {
                    seq: (seq != 0).then_some(seq),
                    event: std::mem::take(b).to_vec(),
                }
            }
            _ => return Err(BinFrameError("unknown frame type")),
        };
        Ok(frame)
    }
}

impl FedFrame {
    /// The frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_json_and_unknown_ones_are_refused() {
        let frame = FedFrame::FedAck { seq: 7 };
        assert_eq!(frame.encode(), r#"{"type":"fed_ack","seq":7}"#);
        assert!(serde_json::from_str::<FedFrame>(r#"{"type":"fed_nonsense"}"#).is_err());
        assert!(serde_json::from_str::<FedFrame>(r#"{"type":"fed_ack","seq":1,"x":1}"#).is_err());
    }

    #[test]
    fn binary_frames_round_trip_and_malformed_ones_are_refused() {
        let id = |n: u8| EventId::from_bytes([n; 32]);
        let frames = [
            BinFrame::Sync {
                group: GroupId::from_bytes([9; 32]),
                session: 3,
                msg: vec![1, 2, 3],
            },
            BinFrame::SyncReply {
                group: GroupId::from_bytes([9; 32]),
                session: 4,
                msg: vec![],
            },
            BinFrame::Fetch {
                ids: vec![id(1), id(2)],
            },
            BinFrame::Events {
                missing: vec![id(3)],
                events: vec![vec![7; 10], vec![8; 3]],
            },
            BinFrame::Event {
                seq: Some(7),
                event: vec![5; 4],
            },
            BinFrame::Event {
                seq: None,
                event: vec![5; 4],
            },
            BinFrame::FetchRange {
                group: GroupId::from_bytes([9; 32]),
                lower: Bound::new(Timestamp(5), &[1, 2]).unwrap(),
                upper: Bound::END,
            },
            BinFrame::FetchRange {
                group: GroupId::from_bytes([9; 32]),
                lower: Bound::MIN,
                upper: Bound::new(Timestamp(1), &[]).unwrap(),
            },
            BinFrame::RangeEvents {
                more: true,
                events: vec![vec![7; 10]],
            },
            BinFrame::RangeEvents {
                more: false,
                events: vec![],
            },
        ];
        for frame in frames {
            assert_eq!(BinFrame::decode(&frame.encode()).unwrap(), frame);
        }
        let bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            [0].to_vec(),
            [9, 1].to_vec(),
            [1, 0, 0].to_vec(),
            [3, 1, 2].to_vec(),
            [4, 0, 0, 0, 1].to_vec(),
            [4, 0, 0, 0, 0, 0, 0, 0, 5, 1].to_vec(),
            [5, 0, 0].to_vec(),
            // fetch_range: cut short; bound tag 2; lower not below upper (END, END).
            [6, 1].to_vec(),
            [&[6][..], &[9; 32], &[2]].concat(),
            [&[6][..], &[9; 32], &[1, 1]].concat(),
            // a prefix of 33 bytes
            [&[6][..], &[9; 32], &[0], &[0; 8], &[33], &[1; 33], &[1]].concat(),
            // range_events: `more` of 2; an event cut short.
            [7, 2].to_vec(),
            [7, 1, 0, 0, 0, 5, 1].to_vec(),
        ];
        for bad in bad {
            assert!(BinFrame::decode(&bad).is_err(), "{bad:?}");
        }
        let too_many = BinFrame::Fetch {
            ids: (0..=FETCH_BATCH as u8).map(id).collect(),
        };
        assert!(BinFrame::decode(&too_many.encode()).is_err());
    }
}
