//! Members' homes through the `kith` tool, on two in-process nodes linked on loopback (B
//! lists A as a peer): a newcomer registered only on B joins a private group held on A by
//! pasting the join code `kith group invite` printed, and B ends up holding the group with
//! the newcomer as a member whose home is B; a member moves home from A to B with `kith
//! group move`.

use std::process::Output;

use kith_client::{Connection, KeyStore, ProfileName};
use kith_protocol::group::body::NodeRef;
use kith_protocol::group::rules::Who;
use kith_protocol::group::Rules;
use kith_protocol::{GroupId, PublicKey, SecretKey};
use kith_tests::node::{federated_with, get_json};
use kith_tests::TestNode;
use serde_json::Value;

/// Node A, which lets its links reach loopback, and node B, which links with A.
async fn two_nodes() -> (TestNode, TestNode) {
    let a = TestNode::start_with(|c| federated_with(c, &[])).await;
    let url = a.url();
    let b = TestNode::start_with(|c| federated_with(c, &[url])).await;
    (a, b)
}

/// Someone using `kith` with their own Kith folder, and a key registered on some nodes.
struct Person {
    home: tempfile::TempDir,
    key: SecretKey,
}

impl Person {
    /// A new key, registered on each of `nodes`.
    async fn registered_on(nodes: &[&TestNode]) -> Person {
        let home = tempfile::tempdir().unwrap();
        let key = SecretKey::generate(&mut rand::rngs::OsRng);
        KeyStore::new(home.path())
            .save(&ProfileName::default(), &key, false)
            .unwrap();
        for node in nodes {
            let conn = Connection::connect(&node.url()).await.unwrap();
            conn.login(&key, Some(&node.invite(1))).await.unwrap();
            conn.close().await;
        }
        Person { home, key }
    }

    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    async fn run(&self, args: &[&str]) -> Output {
        kith_tests::kith_cli::run_kith(self.home.path(), None, args, None).await
    }

    /// Runs and expects success; gives standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kith {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs and expects failure; gives standard error.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kith {args:?} should have failed; it printed {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// The node's own account of `group` (`group_state`), asked while logged in as this
    /// person (a private group's state is shown only to its members).
    async fn state_on(&self, node: &TestNode, group: GroupId) -> Value {
        let conn = Connection::connect(&node.url()).await.unwrap();
        conn.login(&self.key, None).await.unwrap();
        let state = conn.group_state(group).await;
        conn.close().await;
        state.unwrap_or_else(|e| panic!("{} gives no state of the group: {e}", node.url()))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The home `member` has in a node's account of a group.
fn home_of(state: &Value, member: &PublicKey) -> Option<NodeRef> {
    let home = state["state"]["members"][member.to_string()]["home"].clone();
    serde_json::from_value(home).ok()
}

fn home(node: &TestNode) -> NodeRef {
    NodeRef {
        node: node.server_ref().node_key(),
        url: node.url(),
    }
}

/// A group created with `kith group create` on `node` by `founder`; gives its id.
async fn create(founder: &Person, node: &TestNode, private: bool) -> GroupId {
    let url = node.url();
    // Any member may invite, so the founder can invite without a first decision.
    let rules = Rules {
        invite: Who::AnyMember,
        ..Rules::mutual_aid_default()
    };
    let rules_file = founder.home.path().join("rules.json");
    std::fs::write(&rules_file, serde_json::to_string(&rules).unwrap()).unwrap();
    let mut args = vec![
        "group",
        "create",
        "--rules",
        rules_file.to_str().unwrap(),
        "Tenants' Union",
        "--purpose",
        "Organising our building",
        "--name",
        "Ada",
        "--node",
        &url,
        "--json",
    ];
    if private {
        args.push("--private");
    }
    let created: Value = serde_json::from_str(&founder.ok(&args).await).unwrap();
    let group: GroupId = created["id"].as_str().unwrap().parse().unwrap();
    let founder_home: NodeRef = serde_json::from_value(created["home"].clone()).unwrap();
    assert_eq!(founder_home, home(node), "the founder's home is their node");
    group
}

/// `kith group invite` in text: gives the join code line it printed.
async fn invite(by: &Person, node: &TestNode, group: GroupId) -> String {
    let printed = by
        .ok(&["group", "invite", &group.to_hex(), "--node", &node.url()])
        .await;
    let codes: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("kith-join:"))
        .collect();
    assert_eq!(
        codes.len(),
        1,
        "one join code on a line of its own: {printed}"
    );
    let code = codes[0].to_owned();
    assert!(
        code.starts_with(&format!("kith-join:{group}:"))
            && code.ends_with(&format!("@{}", node.url())),
        "the code names the group, then the inviter's node: {code}"
    );
    assert!(
        printed.contains(&format!("kith group join {code}")),
        "{printed}"
    );
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_on_another_node_joins_a_private_group_with_a_join_code() {
    let (a, b) = two_nodes().await;
    let ada = Person::registered_on(&[&a]).await;
    let bo = Person::registered_on(&[&b]).await;
    let group = create(&ada, &a, true).await;
    let code = invite(&ada, &a, group).await;
    let (_, before) = get_json(&b.url(), &format!("/groups/{group}/state")).await;
    assert_eq!(
        before["error"]["code"], "unknown_group",
        "B does not hold the group before the join: {before}"
    );

    let joined = bo
        .ok(&[
            "group",
            "join",
            &code,
            "--node",
            &b.url(),
            "--name",
            "Bo",
            "--wait",
            "60",
        ])
        .await;
    assert!(
        joined.contains(&format!(
            "Your join was accepted by {}; waiting for {} to receive the group…",
            a.url(),
            b.url()
        )),
        "{joined}"
    );
    assert!(
        joined.contains("You joined 'Tenants' Union' through"),
        "{joined}"
    );

    // B holds the group now: over HTTP it is private (not unknown), and to a member it
    // shows the newcomer with their home on B, next to the founder with theirs on A.
    let (status, body) = get_json(&b.url(), &format!("/groups/{group}/state")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("members_only")),
        "{body}"
    );
    let on_b = bo.state_on(&b, group).await;
    assert_eq!(home_of(&on_b, &bo.public_key()), Some(home(&b)), "{on_b}");
    assert_eq!(home_of(&on_b, &ada.public_key()), Some(home(&a)), "{on_b}");
    let on_a = ada.state_on(&a, group).await;
    assert_eq!(home_of(&on_a, &bo.public_key()), Some(home(&b)), "{on_a}");

    // `group show` names each member's home and the nodes hosting the group.
    let shown = bo
        .ok(&["group", "show", &group.to_hex(), "--node", &b.url()])
        .await;
    assert!(
        shown.contains(&format!("at {}\n", a.url()))
            && shown.contains(&format!("at {}\n", b.url())),
        "{shown}"
    );
    assert!(shown.contains("Hosts ("), "{shown}");
    assert!(shown.contains("(1 member)"), "{shown}");

    // Joining again is refused plainly (B holds the group now, so the join goes there).
    let again = bo
        .fails(&["group", "join", &code, "--node", &b.url()])
        .await;
    assert!(again.starts_with("error: "), "{again}");
    assert!(again.contains("\nhint: "), "{again}");
}

#[tokio::test]
async fn a_malformed_join_code_is_explained() {
    let (a, b) = two_nodes().await;
    let ada = Person::registered_on(&[&a]).await;
    let bo = Person::registered_on(&[&b]).await;
    // Private, so B does not receive it until a member lives there.
    let group = create(&ada, &a, true).await;
    let code = invite(&ada, &a, group).await;
    let cut = &code[..code.find('@').unwrap()];
    let refused = bo.fails(&["group", "join", cut, "--node", &b.url()]).await;
    assert!(
        refused.starts_with(
            "error: that join code cannot be read: it should read \
             kith-join:GROUP_ID:INVITATION_ID@NODE_URL, but it has no '@' before the node address"
        ),
        "{refused}"
    );
    assert!(refused.contains("\nhint: copy the whole line"), "{refused}");
    // With a group id alone, a node that does not hold the group says so.
    let invite_id = code["kith-join:".len() + 65..code.find('@').unwrap()].to_owned();
    let refused = bo
        .fails(&[
            "group",
            "join",
            &group.to_hex(),
            "--via",
            &invite_id,
            "--node",
            &b.url(),
        ])
        .await;
    assert!(
        refused.starts_with(&format!(
            "error: your node ({}) does not hold group {group}",
            b.url()
        )),
        "{refused}"
    );
    assert!(refused.contains("kith-join:"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_moves_home_to_another_node() {
    let (a, b) = two_nodes().await;
    let ada = Person::registered_on(&[&a]).await;
    let cy = Person::registered_on(&[&a, &b]).await;
    let group = create(&ada, &a, false).await;
    let code = invite(&ada, &a, group).await;
    cy.ok(&["group", "join", &code, "--node", &a.url(), "--name", "Cy"])
        .await;
    let on_a = cy.state_on(&a, group).await;
    assert_eq!(home_of(&on_a, &cy.public_key()), Some(home(&a)), "{on_a}");

    // Someone not registered on the new node is told to register first.
    let refused = ada
        .fails(&[
            "group",
            "move",
            "--group",
            &group.to_hex(),
            "--to",
            &b.url(),
            "--node",
            &a.url(),
        ])
        .await;
    assert!(refused.contains(" is not registered on "), "{refused}");
    assert!(
        refused.contains(&format!(
            "hint: run `kith register --node {} --invite CODE` first",
            b.url()
        )),
        "{refused}"
    );

    let moved = cy
        .ok(&[
            "group",
            "move",
            "--group",
            &group.to_hex(),
            "--to",
            &b.url(),
            "--node",
            &a.url(),
        ])
        .await;
    assert!(
        moved.contains(&format!(
            "Your move was accepted by {}; waiting for {} to receive the group…",
            a.url(),
            b.url()
        )),
        "{moved}"
    );
    assert!(
        moved.contains("Your home in 'Tenants' Union' is now "),
        "{moved}"
    );
    assert!(
        moved.contains(&format!("{} holds the group now.", b.url())),
        "{moved}"
    );

    let on_b = cy.state_on(&b, group).await;
    assert_eq!(home_of(&on_b, &cy.public_key()), Some(home(&b)), "{on_b}");
    let name = on_b["state"]["members"][cy.public_key().to_string()]["me"]["name"].clone();
    assert_eq!(
        name, "Cy",
        "the move keeps how they present themselves: {on_b}"
    );
    let log = cy
        .ok(&["group", "log", &group.to_hex(), "--node", &b.url()])
        .await;
    assert!(log.contains("moved their home to node"), "{log}");
    assert!(log.contains("Members' homes:"), "{log}");
}
