//! Node refusals end to end: `kithd admin refuse` (the real binary) appends a request to the
//! admin log of a node running in this process; the node publishes it as a signed kind-107
//! event in the group, the group's log shows the reason, and the node then refuses the
//! refused member's (or the whole group's) events with that reason. `kithd admin refuse
//! --withdraw` takes a refusal back with a signed kind-108 event, also in the group's log, and
//! the node accepts those events again.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kith_protocol::event::{EventBuilder, EventId, GroupId};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group::body::{self, GroupCreate, Invite, Join, NodeRef, Visibility};
use kith_protocol::group::rules::Who;
use kith_protocol::group::{self, Rules};
use kith_protocol::kind::{Kind, PostBody};
use kith_protocol::{PublicKey, SecretKey};
use kith_server::node::{now, Rejection};
use kith_server::{Config, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Everything the nodes in this test binary log, for checking what the node said.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("kith_server=info")
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init();
        logs
    }))
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_contain(text: &str) -> bool {
    String::from_utf8_lossy(&captured_logs().lock().unwrap()).contains(text)
}

/// A node with open registration and no rate limits, in a temporary data directory.
async fn start_in(dir: &Path) -> Server {
    captured_logs();
    let mut config = Config {
        open_registration: true,
        ..Default::default()
    };
    let c = &mut config.connections;
    c.key_publish_per_second = 1e6;
    c.key_publish_burst = 1e6;
    c.publish_per_second = 1e6;
    c.publish_burst = 1e6;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    Server::start_on(dir, config, listener)
        .await
        .expect("the node starts")
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

/// Signs an event in `group` citing its current heads on `server`, and publishes it as a
/// logged-in client would.
async fn publish(
    server: &Server,
    author: &SecretKey,
    group: GroupId,
    kind: Kind,
    body: Vec<u8>,
) -> Result<EventId, Rejection> {
    let node = server.node();
    node.ensure_registered(author.public_key(), None).await?;
    let heads = node
        .groups
        .heads(&group)
        .expect("the store answers")
        .expect("the node holds the group");
    let event = EventBuilder::new(kind, now(), body)
        .group(group)
        .parents(heads)
        .sign(author)
        .expect("a small event builds");
    node.publish(&event.encode()).await.map(|p| p.id)
}

async fn post(
    server: &Server,
    author: &SecretKey,
    group: GroupId,
    text: &str,
) -> Result<EventId, Rejection> {
    let body = PostBody { text: text.into() }.to_bytes();
    publish(server, author, group, Kind::POST, body).await
}

/// A public group founded by `founder` (home: `home`, if given), where every member may
/// invite, joined by `members` (each naming the same home).
async fn group_with(
    server: &Server,
    founder: &SecretKey,
    members: &[&SecretKey],
    home: Option<NodeRef>,
) -> GroupId {
    let mut rules = Rules::mutual_aid_default();
    rules.invite = Who::AnyMember;
    let create = body::to_bytes(&GroupCreate {
        name: "Hill Street".into(),
        purpose: "Neighbours helping neighbours".into(),
        visibility: Visibility::Public,
        rules,
        founder: Default::default(),
        home: home.clone(),
    });
    let genesis = EventBuilder::new(group::GROUP_CREATE, now(), create)
        .sign(founder)
        .expect("a small event builds");
    let node = server.node();
    node.ensure_registered(founder.public_key(), None)
        .await
        .expect("open registration");
    node.publish(&genesis.encode())
        .await
        .expect("the group is created");
    let id = GroupId::from(genesis.id());
    for member in members {
        let invite = body::to_bytes(&Invite {
            expires_at: kith_protocol::Timestamp(now().0 + 3_600_000),
            uses: 1,
            note: None,
        });
        let via = publish(server, founder, id, group::INVITE, invite)
            .await
            .expect("the founder may invite");
        let join = body::to_bytes(&Join {
            via,
            me: Default::default(),
            home: home.clone(),
        });
        publish(server, member, id, group::JOIN, join)
            .await
            .expect("the invitee joins");
    }
    id
}

/// The node itself as a member's home.
fn home_of(server: &Server) -> NodeRef {
    NodeRef {
        node: server.node_key(),
        url: server.url(),
    }
}

/// `kithd admin refuse --group G --member M --reason R` against the node in `dir`, which
/// must succeed; its output.
async fn refuse_member(dir: &Path, group: GroupId, member: &SecretKey, reason: &str) -> String {
    let (ok, out) = kithd_refuse(
        dir,
        &[
            "--group",
            &group.to_string(),
            "--member",
            &member.public_key().to_string(),
            "--reason",
            reason,
        ],
    )
    .await;
    assert!(ok, "{out}");
    out
}

/// Runs `kithd --data-dir DIR admin refuse ARGS…`; its stdout, or its stderr if it failed.
async fn kithd_refuse(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kithd"))
        .arg("--data-dir")
        .arg(dir)
        .args(["admin", "refuse"])
        .args(args)
        .env("KITH_LOG", "warn")
        .output()
        .await
        .expect("kithd runs");
    let text = if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    };
    (
        out.status.success(),
        String::from_utf8_lossy(text).into_owned(),
    )
}

/// GET a path on the node over plain HTTP/1.1; the status and the JSON body.
async fn get_json(server: &Server, path: &str) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("the node accepts connections");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read the answer");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, serde_json::from_str(body).unwrap_or_default())
}

async fn group_state(server: &Server, group: GroupId) -> serde_json::Value {
    let (status, body) = get_json(server, &format!("/groups/{group}/state")).await;
    assert_eq!(status, 200, "{body}");
    body["state"].clone()
}

/// Waits (at most 15 s, three times the admin log's poll) until the group has `n` refusals.
async fn wait_for_refusals(server: &Server, group: GroupId, n: usize) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let state = group_state(server, group).await;
        if state["refusals"].as_array().map_or(0, Vec::len) >= n {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not publish the refusal in time: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 15 s) until the group's state satisfies `done`; `what` says what was awaited.
async fn wait_for_state(
    server: &Server,
    group: GroupId,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let state = group_state(server, group).await;
        if done(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen in time: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's log lines whose text contains `text`.
fn log_lines<'s>(state: &'s serde_json::Value, text: &str) -> Vec<&'s serde_json::Value> {
    state["log"]
        .as_array()
        .expect("a log")
        .iter()
        .filter(|line| line["what"].as_str().is_some_and(|w| w.contains(text)))
        .collect()
}

/// Waits until the running node has applied the whole admin log (its hint file says so).
async fn wait_until_applied(dir: &Path) {
    let log = dir.join("admin").join("peers.jsonl");
    let len = std::fs::metadata(&log).expect("the admin log").len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while kith_server::federation::peers::applied_hint(dir) < len {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not apply the admin log in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn refused(result: Result<EventId, Rejection>) -> Rejection {
    result.expect_err("the node should refuse this event")
}

#[tokio::test(flavor = "multi_thread")]
async fn refusing_a_member_is_in_the_groups_log_and_refuses_their_later_posts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start_in(dir.path()).await;
    let (founder, m, other) = (key(1), key(2), key(3));
    let group = group_with(&server, &founder, &[&m, &other], Some(home_of(&server))).await;
    post(&server, &m, group, "hello before")
        .await
        .expect("a member posts before the refusal");

    let reason = "posts threats against neighbours";
    let out = refuse_member(dir.path(), group, &m, reason).await;
    assert!(out.contains("recorded: refuse member"), "{out}");

    // Picked up by the running node, without a restart.
    let state = wait_for_refusals(&server, group, 1).await;
    let refusal = &state["refusals"][0];
    let node_key = server.node_key().to_string();
    assert_eq!(refusal["node"], node_key.as_str(), "{state}");
    assert_eq!(refusal["member"], m.public_key().to_string().as_str());
    assert_eq!(refusal["reason"], reason);
    let logged = state["log"]
        .as_array()
        .expect("a log")
        .iter()
        .find(|line| line["what"].as_str().is_some_and(|w| w.contains(reason)))
        .unwrap_or_else(|| panic!("the log names the reason: {state}"));
    assert_eq!(logged["actor"], node_key.as_str());
    assert_eq!(logged["event"], refusal["event"]);
    // The refusal is an ordinary stored event, signed by the node.
    let (status, event) = get_json(
        &server,
        &format!("/events/{}", refusal["event"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{event}");

    let rejection = refused(post(&server, &m, group, "hello after").await);
    assert_eq!(rejection.code, ErrorCode::NotAllowed);
    assert!(rejection.message.contains(reason), "{}", rejection.message);
    assert!(
        rejection.message.contains("refuses to host the events of"),
        "{}",
        rejection.message
    );
    post(&server, &other, group, "still here")
        .await
        .expect("other members still post");
    post(&server, &founder, group, "me too")
        .await
        .expect("the founder still posts");

    // The same request again publishes nothing new.
    refuse_member(dir.path(), group, &m, reason).await;
    wait_until_applied(dir.path()).await;
    let state = group_state(&server, group).await;
    assert_eq!(state["refusals"].as_array().unwrap().len(), 1, "{state}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusing_a_whole_group_refuses_its_later_events_even_when_asked_while_stopped() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start_in(dir.path()).await;
    let (founder, member) = (key(11), key(12));
    let group = group_with(&server, &founder, &[&member], Some(home_of(&server))).await;
    server.shutdown().await;

    // Asked while the node is stopped: published once it runs again.
    let reason = "this node cannot host groups about weapons";
    let (ok, out) = kithd_refuse(
        dir.path(),
        &["--group", &group.to_string(), "--reason", reason],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("recorded: refuse group"), "{out}");
    let server = start_in(dir.path()).await;
    let state = wait_for_refusals(&server, group, 1).await;
    assert_eq!(state["refusals"][0]["member"], serde_json::Value::Null);
    assert_eq!(
        state["refusals"][0]["node"],
        server.node_key().to_string().as_str()
    );

    for author in [&founder, &member] {
        let rejection = refused(post(&server, author, group, "anyone there?").await);
        assert_eq!(rejection.code, ErrorCode::NotAllowed);
        assert!(rejection.message.contains(reason), "{}", rejection.message);
        assert!(
            rejection.message.contains("refuses to host the group"),
            "{}",
            rejection.message
        );
    }

    // The node may still say more: a further refusal of its own is taken.
    let (ok, out) = kithd_refuse(
        dir.path(),
        &[
            "--group",
            &group.to_string(),
            "--member",
            &member.public_key().to_string(),
            "--reason",
            "also sells weapons here",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let state = wait_for_refusals(&server, group, 2).await;
    assert_eq!(state["refusals"][1]["reason"], "also sells weapons here");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusing_where_the_node_hosts_no_member_is_logged_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start_in(dir.path()).await;
    let (founder, member) = (key(21), key(22));
    // Nobody names this node as home.
    let group = group_with(&server, &founder, &[&member], None).await;
    let before = group_state(&server, group).await;

    let (ok, out) = kithd_refuse(
        dir.path(),
        &["--group", &group.to_string(), "--reason", "not hosted here"],
    )
    .await;
    assert!(ok, "{out}");
    let unknown = GroupId::from_bytes([7; 32]);
    let (ok, out) = kithd_refuse(
        dir.path(),
        &["--group", &unknown.to_string(), "--reason", "no such group"],
    )
    .await;
    assert!(ok, "{out}");
    let stranger: PublicKey = key(23).public_key();
    let home_group = group_with(&server, &key(24), &[], Some(home_of(&server))).await;
    let (ok, out) = kithd_refuse(
        dir.path(),
        &[
            "--group",
            &home_group.to_string(),
            "--member",
            &stranger.to_string(),
            "--reason",
            "not a member",
        ],
    )
    .await;
    assert!(ok, "{out}");
    wait_until_applied(dir.path()).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(logs_contain("this node is home to none of the group's members")
        && logs_contain("this node holds no such group")
        && logs_contain("is not a member of the group now"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node should log why it did not refuse"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(group_state(&server, group).await, before);
    let home_state = group_state(&server, home_group).await;
    assert_eq!(home_state["refusals"], serde_json::json!([]));
    post(&server, &member, group, "still fine")
        .await
        .expect("nothing was refused");
    server.shutdown().await;
}

#[tokio::test]
async fn refuse_command_gives_plain_errors() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ok, err) = kithd_refuse(dir.path(), &["--group", &"ab".repeat(32), "--reason", "r"]).await;
    assert!(!ok);
    assert!(err.contains("no node key"), "{err}");

    kith_server::server::load_or_create_node_key(dir.path()).expect("a node key");
    let (ok, err) = kithd_refuse(dir.path(), &["--group", "12345", "--reason", "r"]).await;
    assert!(!ok);
    assert!(err.contains("'12345' is not a group id"), "{err}");
    let (ok, err) = kithd_refuse(dir.path(), &["--group", &"ab".repeat(32)]).await;
    assert!(!ok);
    assert!(err.contains("--reason"), "{err}");
    let (ok, err) = kithd_refuse(dir.path(), &["--group", &"ab".repeat(32), "--reason", " "]).await;
    assert!(!ok);
    assert!(err.contains("give a reason"), "{err}");
    let (ok, err) = kithd_refuse(
        dir.path(),
        &[
            "--group",
            &"ab".repeat(32),
            "--member",
            "someone",
            "--reason",
            "r",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("'someone' is not a member key"), "{err}");
    assert!(!dir.path().join("admin").join("peers.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn withdrawing_a_refusal_is_in_the_groups_log_and_the_members_posts_are_taken_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start_in(dir.path()).await;
    let (founder, m) = (key(31), key(32));
    let group = group_with(&server, &founder, &[&m], Some(home_of(&server))).await;
    let refused_for = "shares neighbours' addresses without asking";
    refuse_member(dir.path(), group, &m, refused_for).await;
    let state = wait_for_refusals(&server, group, 1).await;
    let refusal = state["refusals"][0]["event"]
        .as_str()
        .expect("the refusal's event id")
        .to_owned();
    let rejection = refused(post(&server, &m, group, "one more address").await);
    assert_eq!(rejection.code, ErrorCode::NotAllowed);
    assert!(
        rejection.message.contains(refused_for),
        "{}",
        rejection.message
    );

    let withdrawn_for = "they apologised and took the posts down";
    let (ok, out) = kithd_refuse(
        dir.path(),
        &["--withdraw", &refusal, "--reason", withdrawn_for],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "recorded: withdraw refusal {refusal} ({withdrawn_for})"
        )),
        "{out}"
    );
    // Picked up by the running node, without a restart: the refusal is no longer in force.
    let state = wait_for_state(&server, group, "the withdrawal", |state| {
        state["refusals"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    post(&server, &m, group, "sorry, all fixed")
        .await
        .expect("the member's posts are taken again");

    // The log shows both, each with its reason, signed by the node, in that order.
    let node_key = server.node_key().to_string();
    let refused_line = log_lines(&state, refused_for);
    let withdrawn_line = log_lines(&state, withdrawn_for);
    assert_eq!(
        (refused_line.len(), withdrawn_line.len()),
        (1, 1),
        "{state}"
    );
    let (refused_line, withdrawn_line) = (refused_line[0], withdrawn_line[0]);
    assert_eq!(refused_line["event"], refusal.as_str());
    assert_eq!(refused_line["actor"], node_key.as_str());
    assert_eq!(withdrawn_line["actor"], node_key.as_str());
    let what = withdrawn_line["what"].as_str().unwrap();
    assert!(
        what.contains("withdraws its refusal to host the events of member"),
        "{what}"
    );
    assert!(what.contains(&refusal), "{what}");
    let log = state["log"].as_array().unwrap();
    let place = |line: &serde_json::Value| log.iter().position(|l| l == line).unwrap();
    assert!(place(refused_line) < place(withdrawn_line));
    // The withdrawal is an ordinary stored event, signed by the node.
    let (status, event) = get_json(
        &server,
        &format!("/events/{}", withdrawn_line["event"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{event}");

    // Withdrawing it again, an unknown id or an event that is not a refusal: nothing new is
    // published, and the node says why.
    let unknown = "ab".repeat(32);
    let a_post = post(&server, &founder, group, "welcome back")
        .await
        .expect("the founder posts")
        .to_string();
    for id in [&refusal, &unknown, &a_post] {
        let (ok, out) = kithd_refuse(dir.path(), &["--withdraw", id]).await;
        assert!(ok, "{out}");
    }
    wait_until_applied(dir.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(logs_contain("this node's refusal is no longer in force")
        && logs_contain("this node holds no event with that id")
        && logs_contain("not a node refusal (kind 107)"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node should log why it withdrew nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = group_state(&server, group).await;
    assert_eq!(
        log_lines(&state, "withdraws its refusal").len(),
        1,
        "{state}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_refused_a_whole_group_can_withdraw_and_host_it_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start_in(dir.path()).await;
    let (founder, member) = (key(41), key(42));
    let group = group_with(&server, &founder, &[&member], Some(home_of(&server))).await;
    let (ok, out) = kithd_refuse(
        dir.path(),
        &[
            "--group",
            &group.to_string(),
            "--reason",
            "moving the server",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let state = wait_for_refusals(&server, group, 1).await;
    let refusal = state["refusals"][0]["event"].as_str().unwrap().to_owned();
    refused(post(&server, &member, group, "anyone?").await);

    // The node refuses every event of the group but its own refusals and withdrawals: the
    // withdrawal goes through, here without a reason.
    let (ok, out) = kithd_refuse(dir.path(), &["--withdraw", &refusal]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("recorded: withdraw refusal {refusal}\n")),
        "{out}"
    );
    let state = wait_for_state(&server, group, "the withdrawal", |state| {
        state["refusals"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    let line = log_lines(&state, "withdraws its refusal to host this group");
    assert_eq!(line.len(), 1, "{state}");
    assert!(
        line[0]["what"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(event {refusal})")),
        "{state}"
    );
    for author in [&founder, &member] {
        post(&server, author, group, "back again")
            .await
            .expect("the group's events are taken again");
    }
    server.shutdown().await;
}
