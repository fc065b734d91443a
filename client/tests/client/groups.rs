//! A group's state is worked out by the client from signed events, never taken from the
//! node: a dishonest node can neither slip in events of another group nor make an event
//! the rules forbid count, and its own account of a group is checked.

use kith_client::{fetch_group, ClientError, Connection};
use kith_protocol::group::body::{self, GroupCreate, Join, Visibility};
use kith_protocol::group::{self, Rules};
use kith_protocol::kind::PostBody;
use kith_protocol::{Event, EventBuilder, EventId, GroupId, Kind, SecretKey, Timestamp};

use crate::hostile_node::HostileNode;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

fn genesis(founder: &SecretKey, name: &str) -> Event {
    let create = GroupCreate {
        name: name.into(),
        purpose: "for the tests".into(),
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
    .sign(founder)
    .unwrap()
}

fn in_group(
    author: &SecretKey,
    kind: Kind,
    body: Vec<u8>,
    group: GroupId,
    parent: EventId,
) -> Event {
    EventBuilder::new(kind, Timestamp(2_000), body)
        .group(group)
        .parents([parent])
        .sign(author)
        .unwrap()
}

#[tokio::test]
async fn the_client_works_out_a_groups_state_itself() {
    let node = HostileNode::start().await;
    let garden = genesis(&key(1), "garden");
    let kitchen = genesis(&key(2), "kitchen");
    let g = GroupId::from(garden.id());
    let k = GroupId::from(kitchen.id());
    let hello = PostBody {
        text: "hello".into(),
    }
    .to_bytes();
    let post = in_group(&key(1), Kind::POST, hello.clone(), g, garden.id());
    // A join that presents no invitation: the rules do not let it count.
    let uninvited = Join {
        via: garden.id(),
        me: Default::default(),
        home: None,
    };
    let gatecrash = in_group(
        &key(3),
        group::JOIN,
        body::to_bytes(&uninvited),
        g,
        garden.id(),
    );
    let elsewhere = in_group(&key(2), Kind::POST, hello, k, kitchen.id());
    for event in [&garden, &kitchen, &post, &gatecrash, &elsewhere] {
        node.plant(event.encode());
    }

    let conn = Connection::connect(&node.address).await.unwrap();
    let local = fetch_group(&conn, g)
        .await
        .unwrap()
        .expect("the genesis came");
    let state = local.state();
    assert_eq!(state.name, "garden");
    assert_eq!(
        state.members.keys().copied().collect::<Vec<_>>(),
        [key(1).public_key()]
    );
    assert!(
        state.not_applied.contains_key(&gatecrash.id()),
        "{:?}",
        state.not_applied
    );
    assert!(local.event(&post.id()).is_some());
    assert!(
        local.event(&elsewhere.id()).is_none(),
        "events of another group are left out"
    );
    assert!(
        !local.rejected().is_empty(),
        "the events nobody asked for are reported"
    );

    // The node's own account names another group: an error, not an answer.
    let err = conn.group_state(g).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    assert_eq!(
        local.agrees_with(&serde_json::json!({ "digest": "00" })),
        Some(false)
    );
}
