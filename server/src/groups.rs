//! The groups this node holds: each group's events and state, loaded from the store the
//! first time they are needed and kept up to date as events are stored.
//!
//! The node enforces a group's rules on every publish with the protocol's state machine
//! (`kith_protocol::group`): the same code every other node and client runs, so the node
//! decides nothing a member could not check.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use kith_protocol::event::{Event, GroupId, Timestamp};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group::{self, Group, GroupError, GroupState};
use kith_protocol::validate::Limits;
use kith_protocol::PublicKey;

use crate::node::Rejection;
use crate::store::{Store, StoreError};

/// Every group the node has loaded, plus the ids of private ones (which never change: a
/// group's visibility is fixed when it is created).
pub struct Groups {
    store: Arc<dyn Store>,
    limits: Limits,
    loaded: Mutex<HashMap<GroupId, Group>>,
    private: RwLock<HashSet<GroupId>>,
}

/// Whether an event takes part in a group's state.
pub fn in_group(event: &Event) -> Option<GroupId> {
    if event.kind() == group::GROUP_CREATE {
        return Some(GroupId::from(event.id()));
    }
    event.group()
}

fn rejection(e: GroupError) -> Rejection {
    let code = match e {
        GroupError::MissingParents { .. } => ErrorCode::MissingParents,
        GroupError::WrongGroup => ErrorCode::BadGroup,
        _ => ErrorCode::NotAllowed,
    };
    Rejection::new(code, e.to_string())
}

impl Groups {
    /// An empty cache over `store`.
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Groups {
        Groups {
            store,
            limits,
            loaded: Mutex::new(HashMap::new()),
            private: RwLock::new(HashSet::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Group>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the group, loading it from the store first if needed. `Ok(None)` if the
    /// node holds no such group. Blocking.
    fn with_group<T>(
        &self,
        id: &GroupId,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Result<Option<T>, StoreError> {
        let mut map = self.lock();
        if !map.contains_key(id) {
            let genesis = match self
                .store
                .get_event(&kith_protocol::EventId::from_bytes(*id.as_bytes()))?
            {
                Some(g) if g.kind() == group::GROUP_CREATE => g,
                _ => return Ok(None),
            };
            let events = self.store.group_events(id)?;
            let (loaded, orphans) = Group::load(genesis, events, self.limits.clone())
                .map_err(|e| StoreError::Corrupt(format!("group {id}: {e}")))?;
            if !orphans.is_empty() {
                tracing::warn!(group = %id, orphans = orphans.len(), "stored group events whose parents are missing");
            }
            self.note_visibility(loaded.state());
            map.insert(*id, loaded);
        }
        Ok(map.get_mut(id).map(f))
    }

    fn note_visibility(&self, state: &GroupState) {
        if state.visibility == group::body::Visibility::Private {
            self.private
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(state.id);
        }
    }

    /// Whether the group's rules allow `event`. Blocking.
    pub fn check(&self, event: &Event) -> Result<(), Rejection> {
        if event.kind() == group::GROUP_CREATE {
            return GroupState::genesis(event, &self.limits)
                .map(drop)
                .map_err(rejection);
        }
        let Some(id) = event.group() else {
            return Ok(());
        };
        match self.with_group(&id, |g| g.check(event))? {
            None => Err(Rejection::new(
                ErrorCode::UnknownGroup,
                format!("this node holds no group {id}; publish to a node that hosts it, or create the group first"),
            )),
            Some(result) => result.map_err(rejection),
        }
    }

    /// Adds a newly stored event to its group's state. Blocking.
    pub fn record(&self, event: &Event) -> Result<(), StoreError> {
        if event.kind() == group::GROUP_CREATE {
            let id = GroupId::from(event.id());
            let mut map = self.lock();
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(id) {
                if let Ok(g) = Group::create(event.clone(), self.limits.clone()) {
                    self.note_visibility(g.state());
                    slot.insert(g);
                }
            }
            return Ok(());
        }
        let Some(id) = event.group() else {
            return Ok(());
        };
        self.with_group(&id, |g| {
            if let Err(e) = g.insert_checked(event.clone()) {
                // Checked before storing; a failure here means a concurrent publish raced
                // it, which the fold resolves when the group is next loaded.
                tracing::warn!(group = %id, event = %event.id(), "stored event not added to group state: {e}");
            }
        })?;
        Ok(())
    }

    /// The group's state and views at `now`, as JSON for the `group_state` frame. `None` if
    /// the group is unknown. Blocking.
    pub fn view(
        &self,
        id: &GroupId,
        now: Timestamp,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.with_group(id, |g| {
            let state = g.state();
            let open: serde_json::Map<String, serde_json::Value> = state
                .proposals
                .iter()
                .filter(|(_, p)| p.outcome.is_none())
                .map(|(pid, _)| {
                    (
                        pid.to_string(),
                        serde_json::json!(state.missing_voices(pid)),
                    )
                })
                .collect();
            serde_json::json!({
                "state": state,
                "digest": hex::encode(state.digest()),
                "heads": g.heads(),
                "rules_in_words": state.rules.describe(),
                "missing_voices": open,
                "expired_roles": state.expired_roles(now),
                "events": g.len(),
            })
        })
    }

    /// Whether `reader` (a logged-in key, or nobody) may read `event`: everything outside
    /// private groups, and a private group's events only for its members. Blocking.
    pub fn may_read(&self, event: &Event, reader: Option<&PublicKey>) -> Result<bool, StoreError> {
        let Some(id) = in_group(event) else {
            return Ok(true);
        };
        let Some(private) = self.with_group(&id, |g| {
            g.state().visibility == group::body::Visibility::Private
        })?
        else {
            return Ok(true);
        };
        if !private {
            return Ok(true);
        }
        match reader {
            Some(key) => self.is_member(&id, key),
            None => Ok(false),
        }
    }

    /// Whether the group is public, and the nodes hosting its current members (node key →
    /// URL). `None` if the group is unknown. Blocking.
    #[allow(clippy::type_complexity)]
    pub fn hosts(
        &self,
        id: &GroupId,
    ) -> Result<Option<(bool, std::collections::BTreeMap<PublicKey, String>)>, StoreError> {
        self.with_group(id, |g| {
            let state = g.state();
            (
                state.visibility == group::body::Visibility::Public,
                state.hosts(),
            )
        })
    }

    /// Whether the group is private (only for groups already loaded or created here).
    pub fn is_private(&self, id: &GroupId) -> bool {
        self.private
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Whether `key` is a member of the group now. Blocking.
    pub fn is_member(&self, id: &GroupId, key: &PublicKey) -> Result<bool, StoreError> {
        Ok(self
            .with_group(id, |g| g.state().members.contains_key(key))?
            .unwrap_or(false))
    }

    /// The group's latest events: the parents a new event should cite. `None` if the node
    /// holds no such group. Blocking.
    pub fn heads(&self, id: &GroupId) -> Result<Option<Vec<kith_protocol::EventId>>, StoreError> {
        self.with_group(id, |g| g.heads().iter().copied().collect())
    }

    /// Runs `f` on the group's current state (keep it short: the groups are locked while
    /// it runs). `None` if the node holds no such group. Blocking.
    pub fn with_state<T>(
        &self,
        id: &GroupId,
        f: impl FnOnce(&GroupState) -> T,
    ) -> Result<Option<T>, StoreError> {
        self.with_group(id, |g| f(g.state()))
    }
}
