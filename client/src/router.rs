//! Routing of node frames to whoever waits for them: replies to the pending request with
//! the same id, subscription frames to that subscription's channel.
//!
//! The router is plain state behind a mutex, touched briefly by the connection's reader
//! task and by callers; it never waits. Events are checked (see `verify`) before the lock
//! is taken, since checking a signature is the slow part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kith_protocol::frame::{decode_node_frame, ErrorCode, Filter, NodeFrame};
use kith_protocol::{EventId, GroupId};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::subscription::SubscriptionItem;
use crate::verify::EventVerifier;

/// A successful reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// For publish: the id the node stored the event under.
    pub(crate) event_id: Option<EventId>,
    /// For publish: the event was already stored.
    pub(crate) duplicate: bool,
    /// For group_state: the group named and the node's account of its state.
    pub(crate) group_state: Option<(GroupId, serde_json::Value)>,
}

/// Where a request's reply goes.
pub(crate) type ReplySender = oneshot::Sender<Result<Reply, ClientError>>;

/// The sending half of one subscription.
#[derive(Debug)]
pub(crate) struct SubscriptionSlot {
    /// Items, in order.
    pub(crate) items: mpsc::Sender<SubscriptionItem>,
    /// The last item, sent when the subscription ends however it ends.
    pub(crate) end: oneshot::Sender<SubscriptionItem>,
    /// What the subscription asked for; events outside it are refused.
    pub(crate) filter: Arc<Filter>,
}

/// Pending requests and open subscriptions of one connection.
#[derive(Debug, Default)]
pub(crate) struct Router {
    pending: HashMap<String, ReplySender>,
    subscriptions: HashMap<String, SubscriptionSlot>,
    /// An error the node sent without naming a request, kept to explain a disconnect.
    last_node_error: Option<String>,
    /// Set once the connection has ended, with why.
    closed: Option<String>,
}

impl Router {
    /// Waits for the reply to request `id`. Fails if the connection has ended.
    pub(crate) fn add_request(
        &mut self,
        id: String,
        reply: ReplySender,
    ) -> Result<(), ClientError> {
        self.check_open()?;
        self.pending.insert(id, reply);
        Ok(())
    }

    /// Stops waiting for request `id` (it timed out or could not be sent).
    pub(crate) fn cancel_request(&mut self, id: &str) {
        self.pending.remove(id);
    }

    /// Opens subscription `id`. Fails if the connection has ended.
    pub(crate) fn add_subscription(
        &mut self,
        id: String,
        slot: SubscriptionSlot,
    ) -> Result<(), ClientError> {
        self.check_open()?;
        self.subscriptions.insert(id, slot);
        Ok(())
    }

    /// Forgets subscription `id`; true if it was open.
    pub(crate) fn remove_subscription(&mut self, id: &str) -> bool {
        self.subscriptions.remove(id).is_some()
    }

    /// Why the connection ended, if it has.
    pub(crate) fn closed_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match &self.closed {
            Some(reason) => Err(ClientError::Closed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn reply(&mut self, id: &str, result: Result<Reply, ClientError>) {
        if let Some(waiting) = self.pending.remove(id) {
            // The caller may have given up waiting; that is fine.
            let _ = waiting.send(result);
        }
    }

    /// Hands `item` to subscription `sub`. Returns the id to unsubscribe from if the
    /// subscription had to be stopped because its reader fell behind or went away.
    fn deliver(&mut self, sub: &str, item: SubscriptionItem) -> Option<String> {
        let slot = self.subscriptions.get(sub)?;
        match slot.items.try_send(item) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => {
                self.end(
                    sub,
                    SubscriptionItem::Closed {
                        code: ErrorCode::SlowReader,
                        message: "events arrived faster than they were read, so this \
                                  subscription was stopped; subscribe again, perhaps with a \
                                  smaller limit"
                            .into(),
                    },
                );
                Some(sub.to_owned())
            }
            Err(TrySendError::Closed(_)) => {
                self.subscriptions.remove(sub);
                Some(sub.to_owned())
            }
        }
    }

    /// Ends subscription `sub` with `last` as its final item.
    fn end(&mut self, sub: &str, last: SubscriptionItem) {
        if let Some(slot) = self.subscriptions.remove(sub) {
            // The subscription may already be dropped; then nobody needs to know.
            let _ = slot.end.send(last);
        }
    }

    /// Routes one decoded frame, except `event` frames (see [`route_text`]). Returns a
    /// subscription to unsubscribe from, if one had to be stopped.
    fn handle_frame(&mut self, frame: NodeFrame) -> Option<String> {
        match frame {
            NodeFrame::Ok {
                id,
                event_id,
                duplicate,
            } => self.reply(
                &id,
                Ok(Reply {
                    event_id,
                    duplicate,
                    group_state: None,
                }),
            ),
            NodeFrame::GroupState { id, group, state } => self.reply(
                &id,
                Ok(Reply {
                    event_id: None,
                    duplicate: false,
                    group_state: Some((group, state)),
                }),
            ),
            NodeFrame::Error {
                id, code, message, ..
            } => match id {
                Some(id) if self.pending.contains_key(&id) => {
                    self.reply(&id, Err(ClientError::Refused { code, message }));
                }
                Some(id) if self.subscriptions.contains_key(&id) => {
                    self.end(&id, SubscriptionItem::Closed { code, message });
                }
                _ => {
                    let code = crate::error::code_name(code);
                    self.last_node_error = Some(format!("the node said: {message} ({code})"));
                }
            },
            NodeFrame::Stored { sub } => return self.deliver(&sub, SubscriptionItem::StoredDone),
            NodeFrame::Closed { sub, code, message } => {
                self.end(&sub, SubscriptionItem::Closed { code, message });
            }
            // A second greeting, an event (routed by `route_text`) or a frame type added
            // later: nothing waits for it.
            _ => {}
        }
        None
    }

    /// Ends everything: pending requests fail and subscriptions end with
    /// [`SubscriptionItem::Disconnected`]. Later requests fail at once.
    pub(crate) fn shut_down(&mut self, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        let reason = match self.last_node_error.take() {
            Some(said) => format!("{reason}; {said}"),
            None => reason.to_owned(),
        };
        for (_, waiting) in self.pending.drain() {
            let _ = waiting.send(Err(ClientError::Closed {
                reason: reason.clone(),
            }));
        }
        for (_, slot) in self.subscriptions.drain() {
            let _ = slot.end.send(SubscriptionItem::Disconnected {
                reason: reason.clone(),
            });
        }
        self.closed = Some(reason);
    }
}

/// Locks the router. A panic elsewhere while holding the lock leaves plain maps behind,
/// which are still usable.
pub(crate) fn lock(router: &Mutex<Router>) -> std::sync::MutexGuard<'_, Router> {
    router.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Routes one text frame from the node. Returns a subscription to unsubscribe from, if
/// one had to be stopped.
pub(crate) fn route_text(
    router: &Mutex<Router>,
    verifier: &mut EventVerifier,
    text: &str,
) -> Option<String> {
    let frame = match decode_node_frame(text) {
        Ok(frame) => frame,
        Err(e) => {
            // Unreadable: fail the request it answers, if it names one; else ignore it,
            // as it may be a frame type from a newer protocol revision.
            if let Some(id) = &e.id {
                let error = ClientError::Protocol(format!("its answer could not be read: {e}"));
                let mut router = lock(router);
                if router.pending.contains_key(id) {
                    router.reply(id, Err(error));
                } else if router.subscriptions.contains_key(id) {
                    return router.deliver(id, SubscriptionItem::Rejected(error));
                }
            }
            return None;
        }
    };
    let NodeFrame::Event { sub, event } = frame else {
        return lock(router).handle_frame(frame);
    };
    let filter = lock(router).subscriptions.get(&sub)?.filter.clone();
    let item = match verifier.verify(&event.0, crate::now()) {
        Ok(event) if filter.matches(&event) => SubscriptionItem::Event(event),
        Ok(event) => SubscriptionItem::Rejected(ClientError::Protocol(format!(
            "it sent event {} for subscription {sub}, which did not ask for it",
            event.id()
        ))),
        Err(e) => SubscriptionItem::Rejected(ClientError::InvalidEvent(e)),
    };
    lock(router).deliver(&sub, item)
}

#[cfg(test)]
mod tests {
    use kith_protocol::frame::{encode_frame, EventBytes};
    use kith_protocol::kind::PostBody;
    use kith_protocol::{Event, EventBuilder, Kind, Limits, SecretKey, Timestamp};

    use super::*;

    struct Harness {
        router: Mutex<Router>,
        verifier: EventVerifier,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                router: Mutex::new(Router::default()),
                verifier: EventVerifier::new(&Limits::default()),
            }
        }

        fn request(&self, id: &str) -> oneshot::Receiver<Result<Reply, ClientError>> {
            let (tx, rx) = oneshot::channel();
            lock(&self.router).add_request(id.into(), tx).unwrap();
            rx
        }

        fn subscribe(
            &self,
            id: &str,
            filter: Filter,
            buffer: usize,
        ) -> (
            mpsc::Receiver<SubscriptionItem>,
            oneshot::Receiver<SubscriptionItem>,
        ) {
            let (items, items_rx) = mpsc::channel(buffer);
            let (end, end_rx) = oneshot::channel();
            let slot = SubscriptionSlot {
                items,
                end,
                filter: Arc::new(filter),
            };
            lock(&self.router)
                .add_subscription(id.into(), slot)
                .unwrap();
            (items_rx, end_rx)
        }

        fn feed(&mut self, frame: &NodeFrame) -> Option<String> {
            route_text(&self.router, &mut self.verifier, &encode_frame(frame))
        }
    }

    fn post(seed: u8, text: &str) -> Event {
        let body = PostBody { text: text.into() }.to_bytes();
        EventBuilder::new(Kind::POST, Timestamp(1_000), body)
            .sign(&SecretKey::from_seed(&[seed; 32]))
            .unwrap()
    }

    fn event_frame(sub: &str, event: &Event) -> NodeFrame {
        NodeFrame::Event {
            sub: sub.into(),
            event: EventBytes::from(event),
        }
    }

    #[test]
    fn replies_reach_the_request_with_their_id() {
        let mut h = Harness::new();
        let mut first = h.request("1");
        let mut second = h.request("2");
        let id = post(1, "x").id();
        h.feed(&NodeFrame::Ok {
            id: "2".into(),
            event_id: Some(id),
            duplicate: true,
        });
        assert!(first.try_recv().is_err());
        let reply = second.try_recv().unwrap().unwrap();
        assert_eq!(reply.event_id, Some(id));
        assert!(reply.duplicate);
        h.feed(&NodeFrame::Error {
            id: Some("1".into()),
            code: ErrorCode::NotRegistered,
            message: "who are you?".into(),
            supported: None,
        });
        let err = first.try_recv().unwrap().unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NotRegistered));
    }

    #[test]
    fn a_group_state_reaches_its_request() {
        let mut h = Harness::new();
        let mut waiting = h.request("4");
        let group = kith_protocol::GroupId::from_bytes([9; 32]);
        h.feed(&NodeFrame::GroupState {
            id: "4".into(),
            group,
            state: serde_json::json!({ "digest": "ab" }),
        });
        let reply = waiting.try_recv().unwrap().unwrap();
        assert_eq!(
            reply.group_state,
            Some((group, serde_json::json!({ "digest": "ab" })))
        );
    }

    #[test]
    fn subscription_frames_arrive_in_order() {
        let mut h = Harness::new();
        let (mut items, mut end) = h.subscribe("s", Filter::default(), 8);
        let e = post(1, "hello");
        h.feed(&event_frame("s", &e));
        h.feed(&NodeFrame::Stored { sub: "s".into() });
        h.feed(&NodeFrame::Closed {
            sub: "s".into(),
            code: ErrorCode::ShuttingDown,
            message: "bye".into(),
        });
        assert_eq!(items.try_recv().unwrap(), SubscriptionItem::Event(e));
        assert_eq!(items.try_recv().unwrap(), SubscriptionItem::StoredDone);
        assert!(items.try_recv().is_err());
        assert!(matches!(
            end.try_recv().unwrap(),
            SubscriptionItem::Closed {
                code: ErrorCode::ShuttingDown,
                ..
            }
        ));
    }

    #[test]
    fn forged_and_unasked_events_are_rejected() {
        let mut h = Harness::new();
        let author = SecretKey::from_seed(&[1; 32]).public_key();
        let filter = Filter {
            authors: Some(vec![author]),
            ..Filter::default()
        };
        let (mut items, _end) = h.subscribe("s", filter, 8);
        let mut bytes = post(1, "hello").encode();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        h.feed(&NodeFrame::Event {
            sub: "s".into(),
            event: EventBytes(bytes),
        });
        h.feed(&event_frame("s", &post(2, "not by the author asked for")));
        for _ in 0..2 {
            assert!(matches!(
                items.try_recv().unwrap(),
                SubscriptionItem::Rejected(_)
            ));
        }
    }

    #[test]
    fn a_slow_reader_is_stopped_not_waited_for() {
        let mut h = Harness::new();
        let (mut items, mut end) = h.subscribe("s", Filter::default(), 2);
        assert_eq!(h.feed(&event_frame("s", &post(1, "a"))), None);
        assert_eq!(h.feed(&event_frame("s", &post(1, "b"))), None);
        assert_eq!(
            h.feed(&event_frame("s", &post(1, "c"))),
            Some("s".to_owned())
        );
        assert!(items.try_recv().is_ok());
        assert!(items.try_recv().is_ok());
        assert!(items.try_recv().is_err());
        assert!(matches!(
            end.try_recv().unwrap(),
            SubscriptionItem::Closed {
                code: ErrorCode::SlowReader,
                ..
            }
        ));
    }

    #[test]
    fn an_error_naming_a_subscription_closes_it() {
        let mut h = Harness::new();
        let (_items, mut end) = h.subscribe("7", Filter::default(), 2);
        h.feed(&NodeFrame::Error {
            id: Some("7".into()),
            code: ErrorCode::TooManySubscriptions,
            message: "too many".into(),
            supported: None,
        });
        assert!(matches!(
            end.try_recv().unwrap(),
            SubscriptionItem::Closed {
                code: ErrorCode::TooManySubscriptions,
                ..
            }
        ));
    }

    #[test]
    fn shutting_down_fails_everything_and_explains_why() {
        let mut h = Harness::new();
        let mut waiting = h.request("1");
        let (_items, mut end) = h.subscribe("2", Filter::default(), 2);
        h.feed(&NodeFrame::Error {
            id: None,
            code: ErrorCode::ShuttingDown,
            message: "restarting".into(),
            supported: None,
        });
        lock(&h.router).shut_down("the node closed the connection");
        let err = waiting.try_recv().unwrap().unwrap_err();
        assert!(err.to_string().contains("restarting"), "{err}");
        assert!(matches!(
            end.try_recv().unwrap(),
            SubscriptionItem::Disconnected { .. }
        ));
        let (tx, _rx) = oneshot::channel();
        assert!(matches!(
            lock(&h.router).add_request("3".into(), tx),
            Err(ClientError::Closed { .. })
        ));
    }

    #[test]
    fn unreadable_replies_fail_their_request() {
        let mut h = Harness::new();
        let mut waiting = h.request("9");
        route_text(
            &h.router,
            &mut h.verifier,
            r#"{"v":1,"type":"ok","id":"9","event_id":"zz"}"#,
        );
        assert!(matches!(
            waiting.try_recv().unwrap(),
            Err(ClientError::Protocol(_))
        ));
        // Frames of unknown types are ignored.
        route_text(&h.router, &mut h.verifier, r#"{"v":1,"type":"news"}"#);
    }
}
