//! Members name their home node, and nodes refuse hosting visibly (SPEC.md §8.2, §8.4).
//!
//! A member's `home` comes from their `group_create` or `group_join` and moves with a
//! `group_profile`; [`GroupState::hosts`] lists the nodes hosting current members. A node
//! that is home to a member may announce, with a `node_refusal` (kind 107), that it will
//! not host the group or one member's events in it: the refusal is recorded and logged, and
//! it gives the node no say and no membership. The node that signed a refusal, and only
//! that node, may withdraw it with a `node_refusal_withdrawal` (kind 108), logged as openly.
//!
//! The stories use `Circle` from `common/circle.rs`; each ends by checking that a fresh
//! node folding the same events reaches the same state.

mod common;

use std::collections::BTreeMap;

use kith_protocol::group::body::{
    self, Action, GroupCreate, Join, NodeRef, NodeRefusal, NodeRefusalWithdrawal, Profile,
    SelfDescription, StanceKind, Visibility, MAX_REFUSAL_REASON, MAX_URL,
};
use kith_protocol::group::rules::Rules;
use kith_protocol::group::{self, GroupError};
use kith_protocol::kind::BodyError;
use kith_protocol::validate::validate_decoded;
use kith_protocol::{
    EventBuilder, EventId, Kind, Limits, PublicKey, SecretKey, Timestamp, ValidationError,
};

use common::circle::*;

/// A node's key, derived from its name like the people's.
fn node(name: &str) -> SecretKey {
    person(&format!("node {name}"))
}

fn north() -> SecretKey {
    node("north")
}
fn south() -> SecretKey {
    node("south")
}
/// A node that is home to nobody in these stories.
fn stranger() -> SecretKey {
    node("stranger")
}

fn home(node: &SecretKey, url: &str) -> NodeRef {
    NodeRef {
        node: pk(node),
        url: url.to_owned(),
    }
}

fn join_body(via: EventId, home: Option<NodeRef>) -> Vec<u8> {
    body::to_bytes(&Join {
        via,
        me: SelfDescription::default(),
        home,
    })
}

fn profile_body(name: &str, home: Option<NodeRef>) -> Vec<u8> {
    body::to_bytes(&Profile {
        me: SelfDescription {
            name: Some(name.to_owned()),
            labels: Vec::new(),
        },
        quiet: false,
        home,
    })
}

fn refusal_body(reason: &str, member: Option<&SecretKey>) -> Vec<u8> {
    body::to_bytes(&NodeRefusal {
        reason: reason.to_owned(),
        member: member.map(pk),
    })
}

fn withdrawal_body(refusal: EventId, reason: Option<&str>) -> Vec<u8> {
    body::to_bytes(&NodeRefusalWithdrawal {
        refusal,
        reason: reason.map(str::to_owned),
    })
}

fn hosts(c: &Circle) -> BTreeMap<PublicKey, String> {
    c.state().hosts()
}

/// Ada founds a circle at home on the north node; Bea joins on the north node too (under
/// another URL), Cyd on the south node, Dee without naming a home.
fn neighbourhood() -> Circle {
    let mut c = Circle::found_at(
        &ada(),
        open_rules(),
        Some(home(&north(), "https://north.example")),
    );
    let inv = c.invite(&ada(), 3, 7 * DAY);
    let bea_home = Some(home(&north(), "https://north.example:8443/kith"));
    c.add(&bea(), group::JOIN, join_body(inv, bea_home));
    let cyd_home = Some(home(&south(), "http://10.0.0.7:8080"));
    c.add(&cyd(), group::JOIN, join_body(inv, cyd_home));
    c.add(&dee(), group::JOIN, join_body(inv, None));
    c
}

// ---------------------------------------------------------------------------------------
// Homes and hosts
// ---------------------------------------------------------------------------------------

#[test]
fn the_founders_home_comes_from_the_group_create() {
    let c = Circle::found_at(
        &ada(),
        Rules::mutual_aid_default(),
        Some(home(&north(), "https://north.example")),
    );
    let s = c.state();
    assert_eq!(
        s.members[&pk(&ada())].home,
        Some(home(&north(), "https://north.example"))
    );
    assert_eq!(
        s.hosts(),
        BTreeMap::from([(pk(&north()), "https://north.example".to_owned())])
    );
    c.assert_replays();

    // Without a home, the founder is hosted nowhere in particular.
    let c = Circle::found(&ada(), Rules::mutual_aid_default());
    assert_eq!(c.state().members[&pk(&ada())].home, None);
    assert!(c.state().hosts().is_empty());
}

#[test]
fn a_newcomer_joins_with_a_home() {
    let mut c = Circle::found(&ada(), open_rules());
    let inv = c.invite(&ada(), 1, DAY);
    let joined = c.add(
        &bea(),
        group::JOIN,
        join_body(inv, Some(home(&south(), "https://south.example"))),
    );
    let s = c.state();
    assert_eq!(
        s.members[&pk(&bea())].home,
        Some(home(&south(), "https://south.example"))
    );
    assert_eq!(
        s.hosts(),
        BTreeMap::from([(pk(&south()), "https://south.example".to_owned())])
    );
    // The log says who joined, as for any join.
    let line = s.log.iter().find(|l| l.event == joined.id()).unwrap();
    assert_eq!(
        line.what,
        format!("joined with an invitation from {}", pk(&ada()))
    );
    c.assert_replays();
}

#[test]
fn hosts_lists_each_node_once_with_the_url_named_latest() {
    let mut c = neighbourhood();
    // Ada and Bea both live on the north node; Bea named it later, so her URL is used.
    assert_eq!(
        hosts(&c),
        BTreeMap::from([
            (pk(&north()), "https://north.example:8443/kith".to_owned()),
            (pk(&south()), "http://10.0.0.7:8080".to_owned()),
        ])
    );
    // Ada names the north node again under a new URL: hers is now the latest.
    c.add(
        &ada(),
        group::PROFILE,
        profile_body("Ada", Some(home(&north(), "https://north.example/v2"))),
    );
    assert_eq!(hosts(&c)[&pk(&north())], "https://north.example/v2");
    assert_eq!(hosts(&c).len(), 2);
    c.assert_replays();
}

#[test]
fn a_profile_with_a_new_home_moves_the_member() {
    let mut c = neighbourhood();
    let moved = c.add(
        &cyd(),
        group::PROFILE,
        profile_body("Cyd", Some(home(&north(), "https://north.example"))),
    );
    let s = c.state();
    assert_eq!(
        s.members[&pk(&cyd())].home,
        Some(home(&north(), "https://north.example"))
    );
    // Nobody lives on the south node any more.
    assert_eq!(
        s.hosts(),
        BTreeMap::from([(pk(&north()), "https://north.example".to_owned())])
    );
    let line = s.log.last().unwrap();
    assert_eq!(line.event, moved.id());
    assert_eq!(line.actor, pk(&cyd()));
    assert_eq!(
        line.what,
        format!(
            "moved their home to node {} (https://north.example)",
            pk(&north())
        )
    );
    assert_eq!(s.members[&pk(&cyd())].me.name.as_deref(), Some("Cyd"));

    // Naming the same home again moves nobody and says nothing.
    let lines = c.state().log.len();
    c.add(
        &cyd(),
        group::PROFILE,
        profile_body("Cyd", Some(home(&north(), "https://north.example"))),
    );
    assert_eq!(c.state().log.len(), lines);

    // A member without a home moves in by a profile too.
    c.add(
        &dee(),
        group::PROFILE,
        profile_body("Dee", Some(home(&south(), "https://south.example"))),
    );
    assert_eq!(hosts(&c)[&pk(&south())], "https://south.example");
    c.assert_replays();
}

#[test]
fn a_profile_without_a_home_keeps_it() {
    let mut c = neighbourhood();
    let before = hosts(&c);
    let lines = c.state().log.len();
    c.add(&cyd(), group::PROFILE, profile_body("Cyd the cook", None));
    let s = c.state();
    assert_eq!(
        s.members[&pk(&cyd())].me.name.as_deref(),
        Some("Cyd the cook")
    );
    assert_eq!(
        s.members[&pk(&cyd())].home,
        Some(home(&south(), "http://10.0.0.7:8080"))
    );
    assert_eq!(s.hosts(), before);
    assert_eq!(s.log.len(), lines, "a profile change is not logged");
    c.assert_replays();
}

#[test]
fn leaving_or_removal_drops_a_node_nobody_lives_on() {
    let mut c = neighbourhood();
    // Cyd alone lives on the south node: when she leaves, it hosts nobody here.
    c.leave(&cyd(), Some("moving town"));
    assert_eq!(
        hosts(&c),
        BTreeMap::from([(pk(&north()), "https://north.example:8443/kith".to_owned())])
    );
    // Dee moves to the north node, which Ada and Bea share, under a URL of her own: hers
    // is the latest. When Dee is removed the node stays, under the URL named latest by
    // those still living there (Bea's).
    c.add(
        &dee(),
        group::PROFILE,
        profile_body("Dee", Some(home(&north(), "https://north.example/dee"))),
    );
    assert_eq!(hosts(&c)[&pk(&north())], "https://north.example/dee");
    remove(&mut c, &dee());
    assert!(!c.is_member(&dee()));
    assert_eq!(
        hosts(&c),
        BTreeMap::from([(pk(&north()), "https://north.example:8443/kith".to_owned())])
    );
    // When Bea leaves, Ada's URL is used; when Ada leaves too, no node hosts anyone.
    c.leave(&bea(), None);
    assert_eq!(hosts(&c)[&pk(&north())], "https://north.example");
    c.leave(&ada(), None);
    assert!(hosts(&c).is_empty());
    c.assert_replays();
}

#[test]
fn someone_who_rejoins_has_the_home_of_their_new_join() {
    let mut c = neighbourhood();
    c.leave(&cyd(), None);
    let inv = c.invite(&ada(), 1, DAY);
    c.add(&cyd(), group::JOIN, join_body(inv, None));
    assert_eq!(c.state().members[&pk(&cyd())].home, None);
    assert!(!hosts(&c).contains_key(&pk(&south())));
    c.assert_replays();
}

// ---------------------------------------------------------------------------------------
// Home URLs: syntax only
// ---------------------------------------------------------------------------------------

fn join_json(url: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "via": "11".repeat(32),
        "home": {"node": pk(&north()).to_string(), "url": url},
    }))
    .unwrap()
}

fn url_error(url: &str) -> String {
    let limits = Limits::default();
    let err = Join::parse(&join_json(url), &limits).expect_err(url);
    // The same rule holds wherever a home is named.
    let profile = serde_json::to_vec(&serde_json::json!({
        "home": {"node": pk(&north()).to_string(), "url": url},
    }))
    .unwrap();
    assert_eq!(Profile::parse(&profile, &limits).unwrap_err(), err);
    let create = GroupCreate {
        name: "Pantry".into(),
        purpose: String::new(),
        visibility: Visibility::Public,
        rules: Rules::mutual_aid_default(),
        founder: SelfDescription::default(),
        home: Some(home(&north(), url)),
    };
    assert_eq!(
        GroupCreate::parse(&body::to_bytes(&create), &limits).unwrap_err(),
        err
    );
    assert_eq!(home(&north(), url).check().unwrap_err(), err);
    match err {
        BodyError::Shape(why) => why,
        other => panic!("{url}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn home_urls_that_are_refused_when_a_body_is_parsed() {
    let long = format!("https://node.example/{}", "a".repeat(MAX_URL));
    let cases: &[(&str, &str)] = &[
        ("ftp://node.example", "must start with https:// or http://"),
        ("node.example", "must start with https:// or http://"),
        (
            "HTTPS://node.example",
            "must start with https:// or http://",
        ),
        ("https://", "names no host"),
        ("https:///kith", "names no host"),
        ("https://:443", "names no host"),
        ("http://?x", "names no host"),
        ("https://[]:443", "names no host"),
        (
            "https://node .example",
            "white space or a control character",
        ),
        (
            " https://node.example",
            "white space or a control character",
        ),
        (
            "https://node.example/\n",
            "white space or a control character",
        ),
        (
            "https://node.example/\u{7f}",
            "white space or a control character",
        ),
        (
            "https://node.example\u{a0}",
            "white space or a control character",
        ),
        ("", "is empty"),
        (&long, "bytes long; the limit is 256"),
        ("https://ana@node.example", "must not carry a user name"),
        ("https://node.example:99999", "has the port '99999'"),
        ("https://node.example:http", "has the port 'http'"),
        ("https://node.example:", "has the port ''"),
        ("https://[::1", "never closes it"),
        ("https://[::1]x", "after the ']'"),
    ];
    for (url, says) in cases {
        let why = url_error(url);
        assert!(why.contains(says), "{url:?}: {why}");
        assert!(why.starts_with("the home URL "), "{why}");
    }
}

#[test]
fn home_urls_that_are_accepted() {
    let limits = Limits::default();
    let longest = format!("https://n.example/{}", "a".repeat(MAX_URL - 18));
    assert_eq!(longest.len(), MAX_URL);
    for url in [
        "https://node.example",
        "http://node.example:8080/kith?x=1#top",
        "https://10.0.0.1",
        "http://127.0.0.1:80",
        "https://[::1]:8443/",
        "https://[fe80::1]",
        "https://nœud.example",
        longest.as_str(),
    ] {
        let join = Join::parse(&join_json(url), &limits).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(join.home.unwrap().url, url);
    }
}

#[test]
fn a_home_is_written_as_node_and_url_and_left_out_when_absent() {
    let via = EventId::from_bytes([0x11; 32]);
    let without = String::from_utf8(join_body(via, None)).unwrap();
    assert_eq!(
        without,
        format!("{{\"via\":\"{}\",\"me\":{{}}}}", "11".repeat(32))
    );
    let with = String::from_utf8(join_body(
        via,
        Some(home(&north(), "https://north.example")),
    ))
    .unwrap();
    assert!(with.ends_with(&format!(
        ",\"home\":{{\"node\":\"{}\",\"url\":\"https://north.example\"}}}}",
        pk(&north())
    )));
    assert!(with.contains("\"node\":\"kith1"));
    // `null` is the same as leaving it out; unknown members of a home are refused.
    let limits = Limits::default();
    let null = format!("{{\"via\":\"{}\",\"home\":null}}", "11".repeat(32));
    assert_eq!(Join::parse(null.as_bytes(), &limits).unwrap().home, None);
    let extra = format!(
        "{{\"via\":\"{}\",\"home\":{{\"node\":\"{}\",\"url\":\"https://n.example\",\"port\":1}}}}",
        "11".repeat(32),
        pk(&north())
    );
    assert!(matches!(
        Join::parse(extra.as_bytes(), &limits),
        Err(BodyError::Shape(_))
    ));
}

#[test]
fn a_join_with_a_bad_home_is_refused_by_the_group_and_by_validation() {
    let mut c = Circle::found(&ada(), open_rules());
    let inv = c.invite(&ada(), 1, DAY);
    let err = c.refuse(
        &bea(),
        group::JOIN,
        join_body(inv, Some(home(&north(), "ftp://north.example"))),
    );
    assert!(
        matches!(err, GroupError::Body(BodyError::Shape(_))),
        "{err:?}"
    );
    assert!(!c.is_member(&bea()));

    let event = c.sign_with(
        &bea(),
        group::JOIN,
        join_body(inv, Some(home(&north(), "https://"))),
        &[inv],
        c.now,
    );
    let err = validate_decoded(event, c.at(), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ValidationError::Body { kind, .. } if kind == group::JOIN),
        "{err:?}"
    );
    c.assert_replays();
}

// ---------------------------------------------------------------------------------------
// Node refusals (kind 107)
// ---------------------------------------------------------------------------------------

#[test]
fn kind_107_is_a_registered_group_kind() {
    assert_eq!(group::NODE_REFUSAL, Kind(107));
    assert_eq!(Kind(107).name(), Some("node_refusal"));
    assert_eq!(Kind::from_name("node_refusal"), Some(group::NODE_REFUSAL));
    // Outside a group it is refused: a refusal is always about a group.
    let lone = EventBuilder::new(
        group::NODE_REFUSAL,
        Timestamp(T0),
        refusal_body("We host no groups.", None),
    )
    .sign(&north())
    .unwrap();
    assert!(matches!(
        validate_decoded(lone, Timestamp(T0), &Limits::default()),
        Err(ValidationError::GroupRequired(k)) if k == group::NODE_REFUSAL
    ));
}

#[test]
fn a_refusal_must_say_why_in_at_most_1000_characters() {
    let limits = Limits::default();
    for (reason, want) in [
        ("", BodyError::Empty("reason")),
        ("  \n", BodyError::Empty("reason")),
    ] {
        assert_eq!(
            NodeRefusal::parse(&refusal_body(reason, None), &limits),
            Err(want)
        );
    }
    let long = "a".repeat(MAX_REFUSAL_REASON + 1);
    assert_eq!(
        NodeRefusal::parse(&refusal_body(&long, None), &limits),
        Err(BodyError::TextTooLong {
            field: "reason",
            max: 1000,
            found: 1001
        })
    );
    let longest = "é".repeat(MAX_REFUSAL_REASON);
    assert!(NodeRefusal::parse(&refusal_body(&longest, None), &limits).is_ok());
    for bad in [
        &b"{}"[..],
        br#"{"reason":"full","node":"x"}"#,
        br#"{"reason":"full","member":"not a key"}"#,
        br#"["full"]"#,
    ] {
        assert!(
            matches!(NodeRefusal::parse(bad, &limits), Err(BodyError::Shape(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // The member is written as a key, and left out when the whole group is refused.
    let whole = String::from_utf8(refusal_body("full", None)).unwrap();
    assert_eq!(whole, r#"{"reason":"full"}"#);
    let one = String::from_utf8(refusal_body("full", Some(&bea()))).unwrap();
    assert_eq!(
        one,
        format!(r#"{{"reason":"full","member":"{}"}}"#, pk(&bea()))
    );
}

#[test]
fn a_host_node_refuses_the_group_visibly() {
    let mut c = neighbourhood();
    let members = c.state().members.clone();
    let event = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("This node is closing at the end of the month.", None),
    );
    let s = c.state();
    assert_eq!(s.refusals.len(), 1);
    let r = &s.refusals[0];
    assert_eq!(r.node, pk(&south()));
    assert_eq!(r.member, None);
    assert_eq!(r.reason, "This node is closing at the end of the month.");
    assert_eq!(r.event, event.id());
    assert_eq!(r.at, event.created_at());
    let line = s.log.last().unwrap();
    assert_eq!(line.event, event.id());
    assert_eq!(line.actor, pk(&south()));
    assert_eq!(
        line.what,
        format!(
            "node {} refuses to host this group: This node is closing at the end of the month.",
            pk(&south())
        )
    );
    assert_eq!(line.decision, None);
    // It changes nobody's membership, power or home.
    assert_eq!(s.members, members);
    assert!(s.roles.is_empty());
    assert_eq!(s.hosts().len(), 2);
    c.assert_replays();
}

#[test]
fn a_key_that_is_home_to_nobody_cannot_refuse() {
    let mut c = neighbourhood();
    let err = c.refuse(&stranger(), group::NODE_REFUSAL, refusal_body("No.", None));
    assert_eq!(err, GroupError::NotAHost(pk(&stranger())));
    assert!(err
        .to_string()
        .contains("only a node that is home to a member of this group can announce a refusal"));
    // Nor can a member speak as a node: Dee names no home, and no member lives on her key.
    let err = c.refuse(&dee(), group::NODE_REFUSAL, refusal_body("No.", None));
    assert_eq!(err, GroupError::NotAHost(pk(&dee())));
    // A node nobody lives on any more is no longer a host.
    c.leave(&cyd(), None);
    let err = c.refuse(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Too late.", None),
    );
    assert_eq!(err, GroupError::NotAHost(pk(&south())));
    assert!(c.state().refusals.is_empty());
    c.assert_replays();
}

#[test]
fn a_node_cannot_refuse_someone_who_is_not_a_member() {
    let mut c = neighbourhood();
    let err = c.refuse(
        &north(),
        group::NODE_REFUSAL,
        refusal_body("We do not carry their posts.", Some(&eli())),
    );
    assert_eq!(err, GroupError::NotMember(pk(&eli())));
    // Nor someone who has left.
    c.leave(&dee(), None);
    let err = c.refuse(
        &north(),
        group::NODE_REFUSAL,
        refusal_body("We do not carry their posts.", Some(&dee())),
    );
    assert_eq!(err, GroupError::NotMember(pk(&dee())));
    c.assert_replays();
}

#[test]
fn a_members_home_node_refuses_to_host_their_events() {
    let mut c = neighbourhood();
    let event = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Cyd's posts break this node's terms.", Some(&cyd())),
    );
    let s = c.state();
    let r = &s.refusals[0];
    assert_eq!((r.node, r.member), (pk(&south()), Some(pk(&cyd()))));
    assert_eq!(
        s.log.last().unwrap().what,
        format!(
            "node {} refuses to host the events of member {} in this group: Cyd's posts break this node's terms.",
            pk(&south()),
            pk(&cyd())
        )
    );
    assert!(c.is_member(&cyd()));
    // Any host may name any current member: the north node refuses Dee's events.
    c.add(
        &north(),
        group::NODE_REFUSAL,
        refusal_body("No room for more.", Some(&dee())),
    );
    assert_eq!(c.state().refusals.len(), 2);
    assert_eq!(c.state().refusals[0].event, event.id());
    c.assert_replays();
}

#[test]
fn a_refusing_node_is_not_a_member_nor_a_missing_voice() {
    let mut c = neighbourhood();
    let p = c.propose(&ada(), "Open on Sundays?", Action::Decide);
    c.stance(&ada(), p, StanceKind::Agree);
    let since = c.at();
    c.wait(DAY);
    c.add(
        &north(),
        group::NODE_REFUSAL,
        refusal_body("Maintenance: we stop hosting this group.", None),
    );
    let s = c.state();
    assert!(!s.members.contains_key(&pk(&north())));
    assert_eq!(s.members.len(), 4);
    let missing = s.missing_voices(&p);
    assert!(!missing.contains(&pk(&north())));
    assert_eq!(missing.len(), 3);
    assert!(!s.not_heard_since(since).contains(&pk(&north())));
    // A node cannot take part either: its stance is a non-member's.
    let err = c.refuse(
        &north(),
        group::STANCE,
        body::to_bytes(&body::Stance {
            proposal: p,
            stance: StanceKind::Block,
            reason: None,
            option: None,
        }),
    );
    assert_eq!(err, GroupError::NotMember(pk(&north())));
    c.assert_replays();
}

#[test]
fn a_refusal_is_not_a_members_voice_even_on_a_members_own_key() {
    // Bea runs her own node with her own key, and Cyd lives there too.
    let mut c = Circle::found(&ada(), open_rules());
    let inv = c.invite(&ada(), 2, DAY);
    let beas_node = Some(home(&bea(), "https://bea.example"));
    c.add(&bea(), group::JOIN, join_body(inv, beas_node.clone()));
    c.add(&cyd(), group::JOIN, join_body(inv, beas_node));
    let heard = c.state().members[&pk(&bea())].last_heard;
    c.wait(DAY);
    c.add(
        &bea(),
        group::NODE_REFUSAL,
        refusal_body("Going read-only.", None),
    );
    assert_eq!(c.state().members[&pk(&bea())].last_heard, heard);

    // Bea leaves; concurrently she posts (as a member) and her node refuses (as a node).
    // The removal horizon hides her post, not her node's refusal.
    let before = c.heads();
    let t = c.now;
    let leave = c.sign_with(
        &bea(),
        group::LEAVE,
        body::to_bytes(&body::Leave::default()),
        &before,
        t,
    );
    let post = c.sign_with(
        &bea(),
        Kind::POST,
        post_body("one more thing"),
        &before,
        t + 1,
    );
    let refusal = c.sign_with(
        &bea(),
        group::NODE_REFUSAL,
        refusal_body("Bea's node stops hosting Cyd.", Some(&cyd())),
        &before,
        t + 2,
    );
    for e in [leave, post.clone(), refusal.clone()] {
        c.offer(e).unwrap();
    }
    let s = c.state();
    assert!(!c.is_member(&bea()));
    assert!(s.hidden.contains(&post.id()));
    assert!(!s.hidden.contains(&refusal.id()));
    assert!(!s.not_applied.contains_key(&refusal.id()));
    assert_eq!(s.refusals.last().unwrap().event, refusal.id());
    c.assert_replays();
}

/// Cyd leaves while, concurrently (citing the same heads), the south node, her home, refuses
/// her events. Returns `(leave, refusal)`, signed and not yet offered; the refusal is dated
/// a millisecond after the leave, `c.now`.
fn cyd_leaves_as_south_refuses_her(c: &mut Circle) -> (kith_protocol::Event, kith_protocol::Event) {
    let before = c.heads();
    let t = c.now;
    let leave = c.sign_with(
        &cyd(),
        group::LEAVE,
        body::to_bytes(&body::Leave::default()),
        &before,
        t,
    );
    let refusal = c.sign_with(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Cyd's account is closed here.", Some(&cyd())),
        &before,
        t + 1,
    );
    (leave, refusal)
}

#[test]
fn a_refusal_crossing_the_last_members_leave_is_kept_without_effect() {
    let mut c = neighbourhood();
    // Cyd leaves; concurrently, the south node refuses her events. In the order the leave
    // comes first, and the node then hosts nobody: the refusal is kept, without effect.
    let (leave, refusal) = cyd_leaves_as_south_refuses_her(&mut c);
    c.offer(refusal.clone()).unwrap();
    c.offer(leave).unwrap();
    let s = c.state();
    assert!(s.refusals.is_empty());
    assert!(s.not_applied[&refusal.id()].contains("not the home node of any member"));
    c.assert_replays();
}

// ---------------------------------------------------------------------------------------
// Withdrawing a node refusal (kind 108)
// ---------------------------------------------------------------------------------------

#[test]
fn kind_108_is_a_registered_group_kind_whose_reason_is_optional() {
    assert_eq!(group::NODE_REFUSAL_WITHDRAWAL, Kind(108));
    assert_eq!(Kind(108).name(), Some("node_refusal_withdrawal"));
    assert_eq!(
        Kind::from_name("node_refusal_withdrawal"),
        Some(group::NODE_REFUSAL_WITHDRAWAL)
    );
    let refusal = EventId::from_bytes([7; 32]);
    let lone = EventBuilder::new(
        group::NODE_REFUSAL_WITHDRAWAL,
        Timestamp(T0),
        withdrawal_body(refusal, None),
    )
    .sign(&north())
    .unwrap();
    assert!(matches!(
        validate_decoded(lone, Timestamp(T0), &Limits::default()),
        Err(ValidationError::GroupRequired(k)) if k == group::NODE_REFUSAL_WITHDRAWAL
    ));

    let limits = Limits::default();
    let bare = String::from_utf8(withdrawal_body(refusal, None)).unwrap();
    assert_eq!(bare, format!(r#"{{"refusal":"{refusal}"}}"#));
    let said = String::from_utf8(withdrawal_body(refusal, Some("We talked it over."))).unwrap();
    assert_eq!(
        said,
        format!(r#"{{"refusal":"{refusal}","reason":"We talked it over."}}"#)
    );
    for ok in [bare.as_bytes(), said.as_bytes()] {
        assert!(NodeRefusalWithdrawal::parse(ok, &limits).is_ok());
    }
    let with_null = format!(r#"{{"refusal":"{refusal}","reason":null}}"#);
    assert_eq!(
        NodeRefusalWithdrawal::parse(with_null.as_bytes(), &limits)
            .unwrap()
            .reason,
        None
    );
    assert_eq!(
        NodeRefusalWithdrawal::parse(&withdrawal_body(refusal, Some(" \n")), &limits),
        Err(BodyError::Empty("reason"))
    );
    let long = "a".repeat(MAX_REFUSAL_REASON + 1);
    assert_eq!(
        NodeRefusalWithdrawal::parse(&withdrawal_body(refusal, Some(&long)), &limits),
        Err(BodyError::TextTooLong {
            field: "reason",
            max: 1000,
            found: 1001
        })
    );
    let longest = "é".repeat(MAX_REFUSAL_REASON);
    assert!(
        NodeRefusalWithdrawal::parse(&withdrawal_body(refusal, Some(&longest)), &limits).is_ok()
    );
    let extra = format!(r#"{{"refusal":"{refusal}","member":"{}"}}"#, pk(&bea()));
    for bad in [
        &b"{}"[..],
        br#"{"refusal":"not an id"}"#,
        br#"{"refusal":"0707"}"#,
        extra.as_bytes(),
        br#"["0707070707070707070707070707070707070707070707070707070707070707"]"#,
    ] {
        assert!(
            matches!(
                NodeRefusalWithdrawal::parse(bad, &limits),
                Err(BodyError::Shape(_))
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_refusing_node_withdraws_its_refusal_visibly() {
    let mut c = neighbourhood();
    let members = c.state().members.clone();
    let refusal = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Cyd's posts break this node's terms.", Some(&cyd())),
    );
    let other = c.add(
        &north(),
        group::NODE_REFUSAL,
        refusal_body("No room for more.", None),
    );
    let withdrawal = c.add(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("We talked it over with Cyd.")),
    );
    let s = c.state();
    // Only the withdrawn refusal leaves the list.
    assert_eq!(s.refusals.len(), 1);
    assert_eq!(s.refusals[0].event, other.id());
    let line = s.log.last().unwrap();
    assert_eq!(line.event, withdrawal.id());
    assert_eq!(line.actor, pk(&south()));
    assert_eq!(line.decision, None);
    assert_eq!(
        line.what,
        format!(
            "node {} withdraws its refusal to host the events of member {} in this group (event {}): We talked it over with Cyd.",
            pk(&south()),
            pk(&cyd()),
            refusal.id()
        )
    );
    // The refusal's own line stays in the log: the history is not rewritten.
    assert!(s.log.iter().any(
        |l| l.event == refusal.id() && l.what.ends_with("Cyd's posts break this node's terms.")
    ));
    // It changes nobody's membership, power or home, and nobody's "last heard".
    assert_eq!(s.members, members);
    assert!(s.roles.is_empty());

    // Without a reason, the line says what was withdrawn and nothing more.
    let bare = c.add(
        &north(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(other.id(), None),
    );
    let s = c.state();
    assert!(s.refusals.is_empty());
    assert_eq!(
        s.log.last().unwrap().what,
        format!(
            "node {} withdraws its refusal to host this group (event {})",
            pk(&north()),
            other.id()
        )
    );
    assert_eq!(s.log.last().unwrap().event, bare.id());
    c.assert_replays();
}

#[test]
fn only_the_node_that_signed_a_refusal_may_withdraw_it() {
    let mut c = neighbourhood();
    let refusal = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Cyd's account is closed here.", Some(&cyd())),
    );
    // Another host, the refused member, another member, a stranger: none may.
    for who in [north(), cyd(), ada(), stranger()] {
        let err = c.refuse(
            &who,
            group::NODE_REFUSAL_WITHDRAWAL,
            withdrawal_body(refusal.id(), Some("Not yours to keep.")),
        );
        assert_eq!(
            err,
            GroupError::NotYourRefusal {
                refusal: refusal.id(),
                node: pk(&south())
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "the refusal {} was announced by node {}; only the node that signed a refusal may withdraw it",
                refusal.id(),
                pk(&south())
            )
        );
    }
    assert_eq!(c.state().refusals.len(), 1);
    assert_eq!(c.state().refusals[0].event, refusal.id());
    c.assert_replays();
}

#[test]
fn only_a_refusal_in_force_can_be_withdrawn_and_only_once() {
    let mut c = neighbourhood();
    let before = c.heads();
    let post = c.post(&ada(), "Soup on Friday");
    let refusal = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Closing for the winter.", None),
    );
    let no_such = |id| GroupError::NoSuchRefusal(id);

    // An id nobody knows, and an event that is not a refusal.
    let unknown = EventId::from_bytes([9; 32]);
    let err = c.refuse(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(unknown, None),
    );
    assert_eq!(err, no_such(unknown));
    assert!(err.to_string().contains("there is no refusal"), "{err}");
    let err = c.refuse(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(post.id(), None),
    );
    assert_eq!(err, no_such(post.id()));

    // A withdrawal that does not cite the refusal (directly or not) cannot withdraw it:
    // its author had not seen it.
    let blind = c.sign_with(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), None),
        &before,
        c.now,
    );
    assert_eq!(c.offer(blind), Err(no_such(refusal.id())));

    // Withdrawn once: a second withdrawal finds nothing in force.
    c.add(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Open again.")),
    );
    let err = c.refuse(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Really open.")),
    );
    assert_eq!(err, no_such(refusal.id()));
    assert!(c.state().refusals.is_empty());

    // The node may refuse again, with a new event, which is then in force.
    let again = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Closing for the winter.", None),
    );
    assert_eq!(c.state().refusals.len(), 1);
    assert_eq!(c.state().refusals[0].event, again.id());
    c.assert_replays();
}

#[test]
fn a_node_that_hosts_nobody_any_more_may_still_withdraw_its_refusal() {
    let mut c = neighbourhood();
    let refusal = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Cyd's posts break this node's terms.", Some(&cyd())),
    );
    c.leave(&cyd(), Some("Moving on."));
    assert!(!c.state().hosts().contains_key(&pk(&south())));
    // The refusal stays in force after its member left; its node can still take it back.
    assert_eq!(c.state().refusals.len(), 1);
    c.add(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Cyd has left; nothing to refuse.")),
    );
    assert!(c.state().refusals.is_empty());
    c.assert_replays();
}

#[test]
fn concurrent_withdrawals_of_one_refusal_reach_the_same_state_in_any_order() {
    let mut c = neighbourhood();
    let refusal = c.add(
        &south(),
        group::NODE_REFUSAL,
        refusal_body("Closing for the winter.", None),
    );
    // The south node withdraws the refusal twice, from two places at once: each saw the
    // refusal in force, so each is accepted; in the order, the first withdraws it and the
    // second has no effect.
    let heads = c.heads();
    let t = c.now;
    let first = c.sign_with(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Open again.")),
        &heads,
        t,
    );
    let second = c.sign_with(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Open again, said twice.")),
        &heads,
        t + 1,
    );
    let mut other = c.group.clone();
    c.offer(second.clone()).unwrap();
    c.offer(first.clone()).unwrap();
    for e in [first.clone(), second.clone()] {
        other.check(&e).unwrap();
        other.insert(e).unwrap();
    }
    assert_eq!(other.state().digest(), c.state().digest());
    let s = c.state();
    assert!(s.refusals.is_empty());
    assert!(!s.not_applied.contains_key(&first.id()));
    assert!(s.not_applied[&second.id()].contains("there is no refusal"));
    assert_eq!(
        s.log
            .iter()
            .filter(|l| l.what.contains("withdraws its refusal"))
            .count(),
        1
    );
    c.assert_replays();
}

#[test]
fn withdrawing_a_refusal_that_had_no_effect_has_none_either() {
    let mut c = neighbourhood();
    // Cyd leaves; concurrently, the south node refuses her events, and then withdraws that
    // refusal citing only it. In the order the leave comes first: the refusal has no effect
    // (the node hosts nobody), so neither has its withdrawal.
    let (leave, refusal) = cyd_leaves_as_south_refuses_her(&mut c);
    let t = c.now;
    let withdrawal = c.sign_with(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Reopened.")),
        &[refusal.id()],
        t + 2,
    );
    let mut other = c.group.clone();
    for e in [&refusal, &withdrawal, &leave] {
        c.offer((*e).clone()).unwrap();
    }
    for e in [&leave, &refusal, &withdrawal] {
        other.insert((*e).clone()).unwrap();
    }
    assert_eq!(other.state().digest(), c.state().digest());
    let s = c.state();
    assert!(s.refusals.is_empty());
    assert!(s.not_applied[&refusal.id()].contains("not the home node of any member"));
    assert!(s.not_applied[&withdrawal.id()].contains("there is no refusal"));
    // Once both are held, a withdrawal citing everything is refused: nothing is in force.
    c.wait(3 * SECOND);
    let err = c.refuse(
        &south(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), None),
    );
    assert_eq!(err, GroupError::NoSuchRefusal(refusal.id()));
    c.assert_replays();
}

#[test]
fn a_withdrawal_is_not_a_members_voice_even_on_a_members_own_key() {
    // Bea runs her own node with her own key, and Cyd lives there too.
    let mut c = Circle::found(&ada(), open_rules());
    let inv = c.invite(&ada(), 2, DAY);
    let beas_node = Some(home(&bea(), "https://bea.example"));
    c.add(&bea(), group::JOIN, join_body(inv, beas_node.clone()));
    c.add(&cyd(), group::JOIN, join_body(inv, beas_node));
    let refusal = c.add(
        &bea(),
        group::NODE_REFUSAL,
        refusal_body("Bea's node stops hosting Cyd.", Some(&cyd())),
    );
    let heard = c.state().members[&pk(&bea())].last_heard;
    c.wait(DAY);
    // Bea leaves; concurrently her node withdraws its refusal. The removal horizon hides
    // what Bea wrote as a member alongside her leave, never what her node wrote.
    let before = c.heads();
    let t = c.now;
    let leave = c.sign_with(
        &bea(),
        group::LEAVE,
        body::to_bytes(&body::Leave::default()),
        &before,
        t,
    );
    let withdrawal = c.sign_with(
        &bea(),
        group::NODE_REFUSAL_WITHDRAWAL,
        withdrawal_body(refusal.id(), Some("Cyd is welcome again.")),
        &before,
        t + 1,
    );
    c.offer(withdrawal.clone()).unwrap();
    assert_eq!(c.state().members[&pk(&bea())].last_heard, heard);
    c.offer(leave).unwrap();
    let s = c.state();
    assert!(!c.is_member(&bea()));
    assert!(!s.hidden.contains(&withdrawal.id()));
    assert!(!s.not_applied.contains_key(&withdrawal.id()));
    assert!(s.refusals.is_empty());
    c.assert_replays();
}
