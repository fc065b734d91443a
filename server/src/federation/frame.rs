//! The frames two linked nodes exchange after the handshake, and their bounds.
//!
//! ```text
//! {"type":"fed_groups","groups":[<group id>…]}                  groups the sender holds and the receiver may have
//! {"type":"fed_sync","group":…,"session":n,"msg":<base64>}       a sync::Initiator message for one group
//! {"type":"fed_sync_reply","group":…,"session":n,"msg":<base64>} the sync::Responder's answer
//! {"type":"fed_fetch","ids":[<event id>…]}                       ask for events (at most FETCH_BATCH)
//! {"type":"fed_events","events":[<base64>…],"missing":[…]}       the answer (at most EVENTS_REPLY_BYTES)
//! {"type":"fed_event","event":<base64>,"seq":n}                  a newly stored event from the sender's queue
//! {"type":"fed_ack","seq":n}                                     queued events up to n were handled
//! {"type":"fed_error","code":…,"message":…}                       a refusal
//! ```
//!
//! SPEC.md §9.16 is the normative text.

use kith_protocol::event::{EventId, GroupId};
use kith_protocol::frame::ErrorCode;
use serde::{Deserialize, Serialize};

/// Path of the node-to-node WebSocket.
pub const FEDERATION_PATH: &str = "/federation";
/// Largest frame a link takes or sends.
pub const MAX_FED_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Most ids one `fed_fetch` may ask for.
pub const FETCH_BATCH: usize = 64;
/// Most bytes of base64 events one `fed_events` answer carries (at least one event).
pub const EVENTS_REPLY_BYTES: usize = 1024 * 1024;
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
    /// Public groups the sender holds.
    FedGroups {
        /// Their ids.
        groups: Vec<GroupId>,
    },
    /// An initiator's sync message.
    FedSync {
        /// The group reconciled.
        group: GroupId,
        /// Which session of this link (a new number starts a new responder).
        session: u32,
        /// The message, base64.
        msg: String,
    },
    /// A responder's answer.
    FedSyncReply {
        /// The group reconciled.
        group: GroupId,
        /// The session answered.
        session: u32,
        /// The message, base64.
        msg: String,
    },
    /// A request for events.
    FedFetch {
        /// Their ids.
        ids: Vec<EventId>,
    },
    /// Events asked for.
    FedEvents {
        /// The events, base64.
        events: Vec<String>,
        /// Ids the sender does not serve.
        missing: Vec<EventId>,
    },
    /// A newly stored event, pushed from the sender's outbound queue.
    FedEvent {
        /// The event, base64.
        event: String,
        /// Its place in the sender's queue for this peer; answered with `fed_ack`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
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
        let frame = FedFrame::FedFetch { ids: vec![] };
        assert_eq!(frame.encode(), r#"{"type":"fed_fetch","ids":[]}"#);
        assert!(serde_json::from_str::<FedFrame>(r#"{"type":"fed_nonsense"}"#).is_err());
        assert!(
            serde_json::from_str::<FedFrame>(r#"{"type":"fed_fetch","ids":[],"x":1}"#).is_err()
        );
    }

    #[test]
    fn queued_events_carry_a_sequence_number_and_acks_name_it() {
        let frame = FedFrame::FedEvent {
            event: "AA".into(),
            seq: Some(7),
        };
        assert_eq!(
            frame.encode(),
            r#"{"type":"fed_event","event":"AA","seq":7}"#
        );
        let ack: FedFrame = serde_json::from_str(r#"{"type":"fed_ack","seq":7}"#).unwrap();
        assert!(matches!(ack, FedFrame::FedAck { seq: 7 }));
        let bare: FedFrame = serde_json::from_str(r#"{"type":"fed_event","event":"AA"}"#).unwrap();
        assert!(matches!(bare, FedFrame::FedEvent { seq: None, .. }));
    }
}
