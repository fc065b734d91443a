//! A readable JSON view of an event, for people and scripts (`curl`, `kith read --json`).
//!
//! The view is for reading only: it is derived from the signed bytes, which it also carries
//! (`event`, base64). Nothing is ever verified from the view's other fields.

use serde::Serialize;

use crate::encoding::to_base64;
use crate::event::{Event, EventId, GroupId, Timestamp};
use crate::key::PublicKey;

/// The view of one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    /// The event id.
    pub id: EventId,
    /// The author's key.
    pub author: PublicKey,
    /// The kind number.
    pub kind: u16,
    /// The kind's name, if registered.
    pub kind_name: Option<&'static str>,
    /// The group, if any.
    pub group: Option<GroupId>,
    /// The author's claimed time, ms since the epoch.
    pub created_at: Timestamp,
    /// Parent ids.
    pub parents: Vec<EventId>,
    /// Body length from the signed header.
    pub body_len: u32,
    /// The body parsed as JSON when it is JSON; `null` when absent (withdrawn or not held).
    pub body: Option<serde_json::Value>,
    /// The body as base64 when it is present but not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// The whole signed event, base64: the only authoritative field.
    pub event: String,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        let h = e.header();
        let json = e.body().and_then(|b| serde_json::from_slice(b).ok());
        let body_base64 = match (&json, e.body()) {
            (None, Some(b)) => Some(to_base64(b)),
            _ => None,
        };
        EventView {
            id: e.id(),
            author: h.author,
            kind: h.kind.0,
            kind_name: h.kind.name(),
            group: h.group,
            created_at: h.created_at,
            parents: h.parents.clone(),
            body_len: h.body_len,
            body: json,
            body_base64,
            event: to_base64(&e.encode()),
        }
    }
}
