//! Signed events for tests.

use kith_protocol::event::{Event, EventBuilder, GroupId, Timestamp};
use kith_protocol::group::body::{GroupCreate, Visibility};
use kith_protocol::group::{self, Rules};
use kith_protocol::kind::{Kind, PostBody};
use kith_protocol::SecretKey;

/// A key from a small seed, so tests are repeatable.
pub fn seeded_key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

/// A post by `key` written now.
pub fn post(key: &SecretKey, text: &str, group: Option<GroupId>) -> Event {
    post_at(key, text, group, kith_client::now())
}

/// A post by `key` at a given time.
pub fn post_at(key: &SecretKey, text: &str, group: Option<GroupId>, at: Timestamp) -> Event {
    let body = PostBody { text: text.into() }.to_bytes();
    let mut builder = EventBuilder::new(Kind::POST, at, body);
    if let Some(g) = group {
        builder = builder.group(g);
    }
    builder.sign(key).expect("a small post always builds")
}

/// A group for tests: its creating event, and a chain of events that each cite the last.
pub struct TestGroup {
    /// The group id.
    pub id: GroupId,
    /// The creating event (publish it first).
    pub genesis: Event,
    last: kith_protocol::EventId,
    last_at: Timestamp,
}

impl TestGroup {
    /// A group founded by `founder` at `at`, with the default mutual-aid rules.
    pub fn create(
        founder: &SecretKey,
        name: &str,
        visibility: Visibility,
        at: Timestamp,
    ) -> TestGroup {
        TestGroup::with_rules(
            founder,
            name,
            visibility,
            at,
            None,
            Rules::mutual_aid_default(),
        )
    }

    /// Like [`TestGroup::create`], with the founder's home node named, and invitations open
    /// to every member (as a small circle might choose).
    pub fn create_at_home(
        founder: &SecretKey,
        name: &str,
        visibility: Visibility,
        at: Timestamp,
        home: Option<group::body::NodeRef>,
    ) -> TestGroup {
        let mut rules = Rules::mutual_aid_default();
        rules.invite = group::rules::Who::AnyMember;
        TestGroup::with_rules(founder, name, visibility, at, home, rules)
    }

    fn with_rules(
        founder: &SecretKey,
        name: &str,
        visibility: Visibility,
        at: Timestamp,
        home: Option<group::body::NodeRef>,
        rules: Rules,
    ) -> TestGroup {
        let body = group::body::to_bytes(&GroupCreate {
            name: name.into(),
            purpose: format!("{name}, for the tests"),
            visibility,
            rules,
            founder: Default::default(),
            home,
        });
        let genesis = EventBuilder::new(group::GROUP_CREATE, at, body)
            .sign(founder)
            .expect("a small event always builds");
        TestGroup {
            id: GroupId::from(genesis.id()),
            last: genesis.id(),
            last_at: at,
            genesis,
        }
    }

    /// A post in the group, citing the previous event of this chain, written now (or just
    /// after the previous event, if that is later).
    pub fn post(&mut self, key: &SecretKey, text: &str) -> Event {
        let at = kith_client::now().max(self.last_at);
        self.post_at(key, text, at)
    }

    /// A post in the group at a given time (not before the previous event of this chain).
    pub fn post_at(&mut self, key: &SecretKey, text: &str, at: Timestamp) -> Event {
        let body = PostBody { text: text.into() }.to_bytes();
        self.event_at(key, Kind::POST, body, at)
    }

    /// An invitation for `uses` people, valid for an hour, citing the previous event.
    pub fn invite(&mut self, key: &SecretKey, uses: u32) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Invite {
            expires_at: Timestamp(at.0 + 3_600_000),
            uses,
            note: None,
        });
        self.event_at(key, group::INVITE, body, at)
    }

    /// `key` joins with the invitation `via`, naming `home` as where they live.
    pub fn join(
        &mut self,
        key: &SecretKey,
        via: &Event,
        home: Option<group::body::NodeRef>,
    ) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Join {
            via: via.id(),
            me: Default::default(),
            home,
        });
        self.event_at(key, group::JOIN, body, at)
    }

    /// Any event of the group, citing the previous event of this chain.
    pub fn event_at(&mut self, key: &SecretKey, kind: Kind, body: Vec<u8>, at: Timestamp) -> Event {
        let event = EventBuilder::new(kind, at, body)
            .group(self.id)
            .parents([self.last])
            .sign(key)
            .expect("a small post always builds");
        self.last = event.id();
        self.last_at = at;
        event
    }
}

/// Builders for the rest of a group's life (profiles, decisions) and for writers that do
/// not see each other's events (the two sides of a partition, or several nodes).
impl TestGroup {
    /// A second chain of the same group continuing from the same event as this one: its
    /// events are concurrent with those written on this chain from now on.
    pub fn fork(&self) -> TestGroup {
        TestGroup {
            id: self.id,
            genesis: self.genesis.clone(),
            last: self.last,
            last_at: self.last_at,
        }
    }

    /// The event the next event of this chain cites.
    pub fn head(&self) -> kith_protocol::EventId {
        self.last
    }

    /// Any event of the group citing exactly `parents` (one or more events the node it is
    /// published on holds), written now or just after the previous event of this chain.
    /// The chain continues from it, so this is how two chains merge again. The caller makes
    /// sure no parent is dated after `at` (every builder here dates events "now", so
    /// citing events written earlier by this process is safe).
    pub fn event_citing(
        &mut self,
        key: &SecretKey,
        kind: Kind,
        body: Vec<u8>,
        parents: &[kith_protocol::EventId],
    ) -> Event {
        let at = kith_client::now().max(self.last_at);
        let event = EventBuilder::new(kind, at, body)
            .group(self.id)
            .parents(parents.iter().copied())
            .sign(key)
            .expect("a small event always builds");
        self.last = event.id();
        self.last_at = at;
        event
    }

    /// `key` changes how they present themselves (the group's "edit"): a new display name,
    /// the same home.
    pub fn profile(&mut self, key: &SecretKey, name: &str) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Profile {
            me: group::body::SelfDescription {
                name: Some(name.into()),
                labels: Vec::new(),
            },
            quiet: false,
            home: None,
        });
        self.event_at(key, group::PROFILE, body, at)
    }

    /// A proposal by `key` to take `action`, taking stances until `closes_at` (which must be
    /// later than now).
    pub fn propose(
        &mut self,
        key: &SecretKey,
        title: &str,
        action: group::body::Action,
        closes_at: Timestamp,
    ) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Proposal {
            title: title.into(),
            text: format!("{title}: please give your stance."),
            action,
            closes_at,
            options: Vec::new(),
            informed_by: Vec::new(),
        });
        self.event_at(key, group::PROPOSAL, body, at)
    }

    /// `key`'s stance on `proposal` (written before it closes).
    pub fn stance(
        &mut self,
        key: &SecretKey,
        proposal: kith_protocol::EventId,
        stance: group::body::StanceKind,
    ) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Stance {
            proposal,
            stance,
            reason: Some(format!("{stance:?}, after thinking it over")),
            option: None,
        });
        self.event_at(key, group::STANCE, body, at)
    }

    /// The outcome of `proposal` (written once it closed): it must count exactly the latest
    /// stance of every eligible member this chain has seen, name how many members were
    /// eligible, and give the verdict those stances make.
    pub fn outcome(
        &mut self,
        key: &SecretKey,
        proposal: kith_protocol::EventId,
        counted: std::collections::BTreeSet<kith_protocol::EventId>,
        eligible: u32,
        result: group::body::Verdict,
    ) -> Event {
        let at = kith_client::now().max(self.last_at);
        let body = group::body::to_bytes(&group::body::Outcome {
            proposal,
            counted,
            eligible,
            result,
            option: None,
            explanation: "Counted every stance given before the close.".into(),
        });
        self.event_at(key, group::OUTCOME, body, at)
    }
}
