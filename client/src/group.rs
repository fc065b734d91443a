//! Groups as this computer sees them: every signed event of a group, fetched from a node
//! and folded here with the protocol's own state machine ([`kith_protocol::group`]).
//!
//! The client never takes the node's word for a group's state. [`fetch_group`] asks for
//! the group's creating event (by id: it names no group) and for every event in the
//! group, checks each one (as every event from a node is checked), and computes members,
//! roles, rules and proposals itself with [`Group::load`], the same code every node
//! runs. The node's own account ([`Connection::group_state`]) is only worth comparing:
//! [`LocalGroup::agrees_with`] says whether the two digests match.
//!
//! A node sends at most a page of stored events per subscription (its
//! `max_stored_results`, 500 by default), the newest ones. When a page comes back full, or
//! some events cite parents that did not come, older pages are fetched with `until`.

use std::collections::{BTreeSet, HashMap};

use kith_protocol::frame::Filter;
use kith_protocol::group::{Group, GroupError, GroupState};
use kith_protocol::{Event, EventId, GroupId, Limits, Timestamp};

use crate::{ClientError, Connection, SubscriptionItem};

/// Events asked for per page: a node's default `max_stored_results`.
pub const PAGE: u32 = 500;

/// What a node sent for a group.
#[derive(Debug, Clone, Default)]
pub struct FetchedEvents {
    /// The creating event, if the node has it and lets this connection read it.
    pub genesis: Option<Event>,
    /// Every other event of the group it sent.
    pub events: Vec<Event>,
    /// Events that failed this computer's checks (dropped).
    pub rejected: Vec<ClientError>,
}

/// A group's events and the state this computer computed from them.
#[derive(Debug, Clone)]
pub struct LocalGroup {
    group: Group,
    events: HashMap<EventId, Event>,
    orphans: Vec<Event>,
    rejected: Vec<ClientError>,
}

/// Fetches every event of `group` that the node lets this connection read. A private
/// group's events are readable only on a connection logged in as a member.
pub async fn fetch_events(conn: &Connection, group: GroupId) -> Result<FetchedEvents, ClientError> {
    let genesis_filter = Filter {
        ids: Some(vec![EventId::from_bytes(*group.as_bytes())]),
        ..Filter::default()
    };
    let ((genesis, mut rejected), (events, more_rejected)) =
        tokio::try_join!(stored(conn, genesis_filter), all_pages(conn, group))?;
    rejected.extend(more_rejected);
    Ok(FetchedEvents {
        genesis: genesis.into_iter().next(),
        events,
        rejected,
    })
}

/// Fetches a group's events and folds them here. `Ok(None)` if the node has no such group
/// or does not let this connection read it (a private group, read by a non-member).
pub async fn fetch_group(
    conn: &Connection,
    group: GroupId,
) -> Result<Option<LocalGroup>, ClientError> {
    let fetched = fetch_events(conn, group).await?;
    let Some(genesis) = fetched.genesis else {
        return Ok(None);
    };
    LocalGroup::fold(
        genesis,
        fetched.events,
        fetched.rejected,
        conn.limits().clone(),
    )
    .map(Some)
    .map_err(|e| ClientError::NotAGroup {
        group,
        reason: e.to_string(),
    })
}

impl LocalGroup {
    /// Folds a group from its creating event and other events (in any order), with the
    /// protocol's [`Group::load`]. Events whose parents are missing are kept aside
    /// ([`LocalGroup::orphans`]).
    pub fn fold(
        genesis: Event,
        events: Vec<Event>,
        rejected: Vec<ClientError>,
        limits: Limits,
    ) -> Result<LocalGroup, GroupError> {
        let mut all: HashMap<EventId, Event> = events.iter().map(|e| (e.id(), e.clone())).collect();
        all.insert(genesis.id(), genesis.clone());
        let (group, orphans) = Group::load(genesis, events, limits)?;
        for orphan in &orphans {
            all.remove(&orphan.id());
        }
        Ok(LocalGroup {
            group,
            events: all,
            orphans,
            rejected,
        })
    }

    /// The group id.
    pub fn id(&self) -> GroupId {
        self.group.id()
    }

    /// The state computed here.
    pub fn state(&self) -> &GroupState {
        self.group.state()
    }

    /// The protocol's group (events and state).
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// A folded event by id.
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.get(id)
    }

    /// Every folded event, the genesis included, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// Events the node sent whose parents it did not send; they are not in the state.
    pub fn orphans(&self) -> &[Event] {
        &self.orphans
    }

    /// Events the node sent that failed this computer's checks; they are not in the state.
    pub fn rejected(&self) -> &[ClientError] {
        &self.rejected
    }

    /// The parents a new event should cite: the group's latest events
    /// ([`Group::heads`]), the newest first, at most `max` of them.
    pub fn parents(&self, max: usize) -> Vec<EventId> {
        let mut heads: Vec<(Timestamp, EventId)> = self
            .group
            .heads()
            .iter()
            .map(|id| {
                (
                    self.events.get(id).map_or(Timestamp(0), Event::created_at),
                    *id,
                )
            })
            .collect();
        heads.sort_by(|a, b| b.cmp(a));
        heads.truncate(max.max(1));
        heads.into_iter().map(|(_, id)| id).collect()
    }

    /// The time for a new event citing `parents`: `now`, or the latest parent's time if
    /// that is later (an event may not be dated before the events it cites).
    pub fn time_after(&self, parents: &[EventId], now: Timestamp) -> Timestamp {
        parents
            .iter()
            .filter_map(|id| self.events.get(id))
            .map(Event::created_at)
            .fold(now, Timestamp::max)
    }

    /// Adds an event this computer just published (or received), checked against the state
    /// its parents establish, as a node does. `Ok(false)` if it was already held.
    pub fn insert(&mut self, event: Event) -> Result<bool, GroupError> {
        let added = self.group.insert(event.clone())?;
        if added {
            self.events.insert(event.id(), event);
        }
        Ok(added)
    }

    /// The state's digest in hex: equal for anyone holding the same events.
    pub fn digest_hex(&self) -> String {
        self.state()
            .digest()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the node's account ([`Connection::group_state`]) has the same digest as
    /// the state computed here; `None` if it names no digest.
    pub fn agrees_with(&self, node_view: &serde_json::Value) -> Option<bool> {
        node_view
            .get("digest")
            .and_then(serde_json::Value::as_str)
            .map(|digest| digest.eq_ignore_ascii_case(&self.digest_hex()))
    }
}

/// Every page of the group's events, newest page first, until the oldest is reached.
async fn all_pages(
    conn: &Connection,
    group: GroupId,
) -> Result<(Vec<Event>, Vec<ClientError>), ClientError> {
    let mut held: HashMap<EventId, Event> = HashMap::new();
    let mut rejected = Vec::new();
    let mut until = None;
    loop {
        let filter = Filter {
            groups: Some(vec![group]),
            until,
            limit: Some(PAGE),
            ..Filter::default()
        };
        let (page, bad) = stored(conn, filter).await?;
        rejected.extend(bad);
        let full = page.len() >= PAGE as usize;
        let oldest = page.iter().map(Event::created_at).min();
        let mut new = 0;
        for event in page {
            if held.insert(event.id(), event).is_none() {
                new += 1;
            }
        }
        let genesis = EventId::from_bytes(*group.as_bytes());
        if new == 0 || (!full && !parents_missing(&held, genesis)) {
            break;
        }
        until = oldest;
    }
    Ok((held.into_values().collect(), rejected))
}

/// Whether some held event cites a parent that is neither held nor the genesis.
fn parents_missing(held: &HashMap<EventId, Event>, genesis: EventId) -> bool {
    let cited: BTreeSet<&EventId> = held
        .values()
        .flat_map(|e| e.header().parents.iter())
        .collect();
    cited
        .into_iter()
        .any(|p| *p != genesis && !held.contains_key(p))
}

/// The stored events matching `filter` (and those that failed this computer's checks).
async fn stored(
    conn: &Connection,
    filter: Filter,
) -> Result<(Vec<Event>, Vec<ClientError>), ClientError> {
    let wait = conn.request_timeout();
    let mut sub = conn.subscribe(filter).await?;
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    loop {
        let item =
            tokio::time::timeout(wait, sub.next())
                .await
                .map_err(|_| ClientError::Timeout {
                    url: conn.url().to_owned(),
                    waiting_for: "the group's events",
                    seconds: wait.as_secs(),
                })?;
        match item {
            Some(SubscriptionItem::Event(event)) => events.push(event),
            Some(SubscriptionItem::StoredDone) => break,
            Some(SubscriptionItem::Rejected(error)) => rejected.push(error),
            Some(SubscriptionItem::Closed { code, message }) => {
                return Err(ClientError::Refused { code, message })
            }
            Some(SubscriptionItem::Disconnected { reason }) => {
                return Err(ClientError::Closed { reason })
            }
            None => {
                return Err(ClientError::Closed {
                    reason: "the subscription ended early".into(),
                })
            }
        }
    }
    sub.unsubscribe().await;
    Ok((events, rejected))
}

#[cfg(test)]
mod tests {
    use kith_protocol::group::body::{self, GroupCreate, Visibility};
    use kith_protocol::group::{self, Rules};
    use kith_protocol::kind::PostBody;
    use kith_protocol::{EventBuilder, Kind, SecretKey};

    use super::*;

    fn genesis(key: &SecretKey) -> Event {
        let create = GroupCreate {
            name: "garden".into(),
            purpose: "grow food".into(),
            visibility: Visibility::Public,
            rules: Rules::mutual_aid_default(),
            founder: Default::default(),
            home: None,
        };
        EventBuilder::new(
            group::GROUP_CREATE,
            Timestamp(1_000),
            body::to_bytes(&create),
        )
        .sign(key)
        .unwrap()
    }

    fn post(key: &SecretKey, g: GroupId, parents: &[EventId], at: u64) -> Event {
        let body = PostBody { text: "hi".into() }.to_bytes();
        EventBuilder::new(Kind::POST, Timestamp(at), body)
            .group(g)
            .parents(parents.iter().copied())
            .sign(key)
            .unwrap()
    }

    #[test]
    fn heads_are_cited_newest_first_and_new_events_come_after_them() {
        let key = SecretKey::from_seed(&[1; 32]);
        let g = genesis(&key);
        let id = GroupId::from(g.id());
        let a = post(&key, id, &[g.id()], 5_000);
        let b = post(&key, id, &[g.id()], 9_000);
        let orphan = post(&key, id, &[EventId::from_bytes([7; 32])], 9_500);
        let local = LocalGroup::fold(
            g,
            vec![orphan.clone(), b.clone(), a.clone()],
            vec![],
            Limits::default(),
        )
        .unwrap();
        assert_eq!(local.parents(8), vec![b.id(), a.id()]);
        assert_eq!(local.parents(1), vec![b.id()]);
        assert_eq!(
            local.time_after(&local.parents(8), Timestamp(2_000)),
            Timestamp(9_000)
        );
        assert_eq!(
            local.time_after(&local.parents(8), Timestamp(20_000)),
            Timestamp(20_000)
        );
        assert_eq!(local.orphans(), [orphan]);
        assert_eq!(local.group().len(), 3);
    }

    #[test]
    fn digests_are_compared_with_the_nodes() {
        let key = SecretKey::from_seed(&[2; 32]);
        let local = LocalGroup::fold(genesis(&key), vec![], vec![], Limits::default()).unwrap();
        let same = serde_json::json!({ "digest": local.digest_hex().to_uppercase() });
        assert_eq!(local.agrees_with(&same), Some(true));
        assert_eq!(
            local.agrees_with(&serde_json::json!({ "digest": "00" })),
            Some(false)
        );
        assert_eq!(local.agrees_with(&serde_json::json!({})), None);
    }

    #[test]
    fn missing_parents_are_noticed() {
        let key = SecretKey::from_seed(&[3; 32]);
        let g = genesis(&key);
        let id = GroupId::from(g.id());
        let a = post(&key, id, &[g.id()], 5_000);
        let b = post(&key, id, &[a.id()], 6_000);
        let only_b = HashMap::from([(b.id(), b.clone())]);
        assert!(parents_missing(&only_b, g.id()));
        let both = HashMap::from([(a.id(), a), (b.id(), b)]);
        assert!(!parents_missing(&both, g.id()));
    }
}
