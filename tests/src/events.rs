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
