//! `kithd admin peer add|block|unblock|list`, run as real processes on a temporary data
//! directory, with the node stopped and running (a running node applies new requests within
//! seconds; a block closes the links already open with that node, and an unblock lets it
//! link again).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn kithd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kithd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("KITH_LOG", "warn")
        .output()
        .expect("kithd runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = kithd(dir, args);
    assert!(
        out.status.success(),
        "kithd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let out = kithd(dir, args);
    assert!(!out.status.success(), "kithd {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts the node on a free port and waits until it says it is running (it has applied the
/// admin requests by then).
fn start_node(dir: &Path) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kithd"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("KITH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kithd starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("kithd is running") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        panic!("kithd did not start");
    }
    child
}

/// `kithd admin peer list` once the running node has applied every request (within 10 s).
fn list_once_applied(dir: &Path) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = ok(dir, &["admin", "peer", "list"]);
        if !list.contains("Not yet applied") {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running node did not apply the requests: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop_node(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn node_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    kith_server::server::load_or_create_node_key(dir.path()).expect("a node key");
    kith_server::Config::load_or_create(dir.path()).expect("a config file");
    dir
}

#[test]
fn peers_are_added_blocked_and_listed_with_the_node_stopped_and_running() {
    let dir = node_dir();
    let d = dir.path();
    let blocked_key = kith_protocol::SecretKey::from_seed(&[9; 32]).public_key();

    let out = ok(d, &["admin", "peer", "add", "HTTPS://8.8.8.8:443/"]);
    assert!(out.contains("add https://8.8.8.8"), "{out}");
    ok(
        d,
        &["admin", "peer", "add", "http://[2606:4700::1111]:8080"],
    );
    ok(
        d,
        &[
            "admin",
            "peer",
            "block",
            &blocked_key.to_string(),
            "--reason",
            "abuse",
        ],
    );
    // Blocking never resolves or classifies: any well-formed address may be blocked.
    ok(
        d,
        &[
            "admin",
            "peer",
            "block",
            "https://10.1.2.3",
            "--reason",
            "spam",
        ],
    );
    let err = refused(d, &["admin", "peer", "block", "kith1nope", "--reason", "x"]);
    assert!(err.contains("not a valid node key"), "{err}");
    let err = refused(
        d,
        &["admin", "peer", "block", "ftp://x.example", "--reason", "x"],
    );
    assert!(err.contains("https://"), "{err}");

    let log = d.join("admin").join("peers.jsonl");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&log)
        .expect("the log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Node never started: nothing stored, four requests pending.
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains("No peers stored yet"), "{list}");
    assert!(list.contains("add https://8.8.8.8\n"), "{list}");
    assert!(list.contains("add http://[2606:4700::1111]:8080"), "{list}");
    assert!(
        list.contains(&format!("block {blocked_key} (abuse)")),
        "{list}"
    );
    assert!(list.contains("block https://10.1.2.3 (spam)"), "{list}");

    // The node applies them at start; while it runs, list says so and shows what is pending.
    let node = start_node(d);
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains("node is running"), "{list}");
    assert!(!list.contains("Not yet applied"), "{list}");
    // A request made while it runs is applied within a few seconds, without a restart.
    let out = ok(d, &["admin", "peer", "add", "https://1.1.1.1"]);
    assert!(out.contains("add https://1.1.1.1"), "{out}");
    let pending = ok(d, &["admin", "peer", "list"]);
    if pending.contains("Not yet applied") {
        assert!(pending.contains("add https://1.1.1.1"), "{pending}");
    }
    let list = list_once_applied(d);
    assert!(list.contains("node is running"), "{list}");
    assert!(!list.contains("Not yet applied"), "{list}");
    assert!(!list.contains("8.8.8.8"), "{list}");
    stop_node(node);

    // Stopped again: the store is readable, and holds the peer added while it ran.
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains("added    https://8.8.8.8  since "), "{list}");
    assert!(
        list.contains("added    http://[2606:4700::1111]:8080"),
        "{list}"
    );
    assert!(
        list.contains(&format!("blocked  {blocked_key}  since ")),
        "{list}"
    );
    assert!(list.contains("blocked  https://10.1.2.3  since "), "{list}");
    assert!(list.contains(": spam"), "{list}");
    assert!(list.contains("added    https://1.1.1.1"), "{list}");
    assert!(!list.contains("Not yet applied"), "{list}");

    // A request made while it is stopped waits for the next start, which applies it once.
    ok(d, &["admin", "peer", "add", "https://9.9.9.9"]);
    let list = ok(d, &["admin", "peer", "list"]);
    let pending = list.split("Not yet applied").nth(1).expect("one pending");
    assert!(pending.contains("add https://9.9.9.9"), "{list}");
    stop_node(start_node(d));
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains("added    https://9.9.9.9"), "{list}");
    assert!(!list.contains("Not yet applied"), "{list}");
    assert_eq!(list.matches("https://8.8.8.8").count(), 1, "{list}");
}

#[test]
fn unblocked_peers_are_no_longer_listed_as_blocked() {
    let dir = node_dir();
    let d = dir.path();
    let key = kith_protocol::SecretKey::from_seed(&[8; 32])
        .public_key()
        .to_string();
    ok(d, &["admin", "peer", "block", &key, "--reason", "abuse"]);
    ok(
        d,
        &[
            "admin",
            "peer",
            "block",
            "https://10.1.2.3",
            "--reason",
            "spam",
        ],
    );
    ok(d, &["admin", "peer", "add", "https://8.8.8.8"]);
    stop_node(start_node(d));
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains(&format!("blocked  {key}  since ")), "{list}");
    assert!(list.contains("blocked  https://10.1.2.3  since "), "{list}");

    // Unblocked while the node is stopped: one line says what was recorded, and the next
    // start applies it.
    let out = ok(d, &["admin", "peer", "unblock", &key]);
    assert_eq!(out, format!("recorded: unblock {key}\n"));
    let list = ok(d, &["admin", "peer", "list"]);
    let pending = list.split("Not yet applied").nth(1).expect("one pending");
    assert!(pending.contains(&format!("unblock {key}")), "{list}");
    let node = start_node(d);

    // Unblocked while it runs: applied within a few seconds. Unblocking an address that is
    // added, not blocked, is no error and leaves it added.
    let out = ok(d, &["admin", "peer", "unblock", "HTTPS://10.1.2.3/"]);
    assert_eq!(out, "recorded: unblock https://10.1.2.3\n");
    ok(d, &["admin", "peer", "unblock", "https://8.8.8.8"]);
    let err = refused(d, &["admin", "peer", "unblock", "kith1nope"]);
    assert!(err.contains("not a valid node key"), "{err}");
    list_once_applied(d);
    stop_node(node);

    let list = ok(d, &["admin", "peer", "list"]);
    assert!(!list.contains("blocked"), "{list}");
    assert!(!list.contains(&key), "{list}");
    assert!(!list.contains("10.1.2.3"), "{list}");
    assert!(list.contains("added    https://8.8.8.8  since "), "{list}");
    assert!(!list.contains("Not yet applied"), "{list}");
}

/// Two nodes in this process; `kithd admin peer add` on A's data directory makes the running
/// A link with B within seconds, with no restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_node_links_with_a_peer_added_while_it_runs() {
    async fn start(dir: &Path) -> kith_server::Server {
        let mut config = kith_server::Config::default();
        config.federation.allow_private_addresses = true;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        kith_server::Server::start_on(dir, config, listener)
            .await
            .expect("the node starts")
    }
    let (dir_a, dir_b) = (node_dir(), node_dir());
    // The admin command checks the address against A's config file: loopback needs this.
    std::fs::write(
        dir_a.path().join("kithd.toml"),
        "[federation]\nallow_private_addresses = true\n",
    )
    .expect("write the config");
    let a = start(dir_a.path()).await;
    let b = start(dir_b.path()).await;
    assert!(!a.node().federation.is_linked(&b.node_key()));

    let out = {
        let dir = dir_a.path().to_path_buf();
        let url = b.url();
        tokio::task::spawn_blocking(move || ok(&dir, &["admin", "peer", "add", &url]))
            .await
            .expect("kithd ran")
    };
    assert!(out.contains(&format!("add {}", b.url())), "{out}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(a.node().federation.is_linked(&b.node_key())
        && b.node().federation.is_linked(&a.node_key()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A did not link with the peer added while it ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = a.node().store.peers().expect("the store answers");
    assert!(
        stored
            .iter()
            .any(|p| p.url.as_deref() == Some(b.url().as_str())
                && p.status == kith_server::federation::PeerStatus::Added),
        "{stored:?}"
    );
    // The applied offset (store and hint) comes to cover the whole log. It is written after
    // the entries are acted on, so on a busy machine the link can come up first.
    let log_len = std::fs::metadata(dir_a.path().join("admin").join("peers.jsonl"))
        .expect("the admin log")
        .len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while a.node().store.admin_peers_applied().expect("the store") != log_len
        || kith_server::federation::peers::applied_hint(dir_a.path()) != log_len
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the applied offset stayed at {} (hint {}) of {log_len}",
            a.node().store.admin_peers_applied().expect("the store"),
            kith_server::federation::peers::applied_hint(dir_a.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn private_addresses_are_refused_unless_the_config_allows_them() {
    let dir = node_dir();
    let d = dir.path();
    for url in [
        "http://10.0.0.5:8080",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "https://169.254.169.254",
        "http://[::ffff:192.168.1.1]",
    ] {
        let err = refused(d, &["admin", "peer", "add", url]);
        assert!(
            err.contains("nodes never contact private addresses"),
            "{url}: {err}"
        );
        assert!(err.contains("allow_private_addresses"), "{url}: {err}");
    }
    let err = refused(d, &["admin", "peer", "add", "http://10.0.0.5:8080"]);
    assert!(err.contains("10.0.0.5, a private address"), "{err}");
    assert!(!d.join("admin").join("peers.jsonl").exists());

    let config = d.join("kithd.toml");
    let text = std::fs::read_to_string(&config).expect("the config");
    assert!(text.contains("allow_private_addresses = false"), "{text}");
    std::fs::write(
        &config,
        text.replace(
            "allow_private_addresses = false",
            "allow_private_addresses = true",
        ),
    )
    .expect("write the config");
    let out = ok(d, &["admin", "peer", "add", "http://10.0.0.5:8080"]);
    assert!(out.contains("add http://10.0.0.5:8080"), "{out}");
    let list = ok(d, &["admin", "peer", "list"]);
    assert!(list.contains("add http://10.0.0.5:8080"), "{list}");
}

#[test]
fn peer_commands_need_the_nodes_data_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for args in [
        &["admin", "peer", "add", "https://8.8.8.8"][..],
        &["admin", "peer", "list"][..],
    ] {
        let err = refused(dir.path(), args);
        assert!(err.contains("no node key"), "{err}");
    }
    assert!(!dir.path().join("admin").exists());
}

/// A node in this process that may dial loopback peers, with open registration; `dial_homes`
/// off keeps it from dialing the nodes its groups' members live on.
async fn start_linkable(dir: &Path, dial_homes: bool) -> kith_server::Server {
    let mut config = kith_server::Config {
        open_registration: true,
        ..Default::default()
    };
    config.federation.allow_private_addresses = true;
    config.federation.dial_member_homes = dial_homes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    kith_server::Server::start_on(dir, config, listener)
        .await
        .expect("the node starts")
}

/// Runs `kithd` on `dir` from async code (it blocks), expecting success; its standard output.
async fn ok_async(dir: &Path, args: &[&str]) -> String {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&dir, &args)
    })
    .await
    .expect("kithd ran")
}

/// Two nodes in this process, A linked with B by `kithd admin peer add <B>` on A's data
/// directory. Only A dials: B must not dial A back, or B's own dialer would keep reopening
/// links that A then refuses.
async fn linked_pair() -> (
    tempfile::TempDir,
    kith_server::Server,
    tempfile::TempDir,
    kith_server::Server,
) {
    let (dir_a, dir_b) = (node_dir(), node_dir());
    // The admin command checks the address against A's config file: loopback needs this.
    std::fs::write(
        dir_a.path().join("kithd.toml"),
        "[federation]\nallow_private_addresses = true\n",
    )
    .expect("write the config");
    let a = start_linkable(dir_a.path(), true).await;
    let b = start_linkable(dir_b.path(), false).await;
    ok_async(dir_a.path(), &["admin", "peer", "add", &b.url()]).await;
    wait_linked(&a, &b, true, "A did not link with B").await;
    (dir_a, a, dir_b, b)
}

/// Waits until A and B are linked on both sides (`linked`), or on neither side; fails with
/// `failure` after 30 s (a dialer backs off up to 8 s after a few refused attempts).
async fn wait_linked(
    a: &kith_server::Server,
    b: &kith_server::Server,
    linked: bool,
    failure: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a_side = a.node().federation.is_linked(&b.node_key());
        let b_side = b.node().federation.is_linked(&a.node_key());
        if a_side == linked && b_side == linked {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{failure} (linked on A: {a_side}, on B: {b_side})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One gauge or counter from the node's `GET /metrics`, read over plain HTTP.
async fn metric(server: &kith_server::Server, name: &str) -> u64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("the node accepts connections");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the answer");
    response
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics: {response}"))
}

/// Publishes `event` on `server` as a logged-in client would (its author registered there).
async fn publish_on(server: &kith_server::Server, event: &kith_protocol::Event) {
    let node = server.node();
    node.ensure_registered(event.author(), None)
        .await
        .expect("open registration");
    node.publish(&event.encode())
        .await
        .expect("the node takes the event");
}

/// A post by `author` in `group`, citing the group's heads on `server`.
fn post_on(
    server: &kith_server::Server,
    author: &kith_protocol::SecretKey,
    group: kith_protocol::GroupId,
    text: &str,
) -> kith_protocol::Event {
    let heads = server
        .node()
        .groups
        .heads(&group)
        .expect("the store answers")
        .expect("the node holds the group");
    let body = kith_protocol::kind::PostBody { text: text.into() }.to_bytes();
    kith_protocol::EventBuilder::new(kith_protocol::Kind::POST, kith_server::node::now(), body)
        .group(group)
        .parents(heads)
        .sign(author)
        .expect("a small event builds")
}

/// Whether `server` holds the event `id` within `wait`.
async fn arrives(server: &kith_server::Server, id: kith_protocol::EventId, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if server
            .node()
            .store
            .get_event(&id)
            .expect("the store answers")
            .is_some()
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A links with B (`kithd admin peer add`), they share a public group's events both ways;
/// then `kithd admin peer block <B's key>` on A's running node closes the open link on both
/// sides within seconds, A does not link with B again, and new events cross no more.
///
/// Needs the link loop to close when the registry says the peer is blocked
/// (`LinkedGuard::blocked`, in `federation::link::run_announced`) and the dialer not to link
/// with a blocked node again (`Registry::is_blocked`, in `federation::connect`).
#[tokio::test(flavor = "multi_thread")]
async fn blocking_a_linked_peer_closes_the_link_and_it_stays_closed() {
    use kith_protocol::group::body::{self, GroupCreate, Visibility};
    use kith_protocol::group::{self, Rules};

    const LINKS: &str = "kith_federation_links_open";
    let (dir_a, a, _dir_b, b) = linked_pair().await;
    assert_eq!(metric(&a, LINKS).await, 1);
    assert_eq!(metric(&b, LINKS).await, 1);

    // A public group founded on A reaches B, and events cross both ways.
    let founder = kith_protocol::SecretKey::from_seed(&[51; 32]);
    let create = body::to_bytes(&GroupCreate {
        name: "Canal Street".into(),
        purpose: "Lifts and errands".into(),
        visibility: Visibility::Public,
        rules: Rules::mutual_aid_default(),
        founder: Default::default(),
        home: None,
    });
    let genesis =
        kith_protocol::EventBuilder::new(group::GROUP_CREATE, kith_server::node::now(), create)
            .sign(&founder)
            .expect("a small event builds");
    publish_on(&a, &genesis).await;
    let group = kith_protocol::GroupId::from(genesis.id());
    assert!(
        arrives(&b, genesis.id(), Duration::from_secs(15)).await,
        "the public group did not reach B"
    );
    let from_a = post_on(&a, &founder, group, "from A, before the block");
    publish_on(&a, &from_a).await;
    assert!(arrives(&b, from_a.id(), Duration::from_secs(15)).await);
    let from_b = post_on(&b, &founder, group, "from B, before the block");
    publish_on(&b, &from_b).await;
    assert!(arrives(&a, from_b.id(), Duration::from_secs(15)).await);

    // Blocked while linked: the open link closes on both sides, without a restart.
    let out = ok_async(
        dir_a.path(),
        &[
            "admin",
            "peer",
            "block",
            &b.node_key().to_string(),
            "--reason",
            "floods us",
        ],
    )
    .await;
    assert!(out.contains(&format!("block {}", b.node_key())), "{out}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while metric(&a, LINKS).await != 0 || metric(&b, LINKS).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link with the blocked node stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!a.node().federation.is_linked(&b.node_key()));
    assert!(a.node().federation.is_blocked(&b.node_key()));

    // It stays closed (A's dialer does not reconnect), and new events no longer cross.
    let after_a = post_on(&a, &founder, group, "from A, after the block");
    publish_on(&a, &after_a).await;
    let after_b = post_on(&b, &founder, group, "from B, after the block");
    publish_on(&b, &after_b).await;
    for _ in 0..40 {
        assert_eq!(metric(&a, LINKS).await, 0, "A linked with B again");
        assert_eq!(metric(&b, LINKS).await, 0, "B linked with A again");
        assert!(!a.node().federation.is_linked(&b.node_key()));
        assert!(!b.node().federation.is_linked(&a.node_key()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !arrives(&b, after_a.id(), Duration::ZERO).await,
        "A's event reached B"
    );
    assert!(
        !arrives(&a, after_b.id(), Duration::ZERO).await,
        "B's event reached A"
    );
    // Nor is anything kept for it: A queues nothing for a blocked node.
    let queued = a
        .node()
        .store
        .outbox_peek(&b.node_key(), 0, 100)
        .expect("read A's queue");
    assert!(
        queued.iter().all(|entry| entry.id != after_a.id()),
        "A queued its new event for the blocked node"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A blocks B's key with `kithd`, then unblocks it: the link comes back on both sides
/// without restarting either node (A's dialer for B's address kept running and links again).
#[tokio::test(flavor = "multi_thread")]
async fn a_peer_blocked_by_key_links_again_once_unblocked_without_a_restart() {
    let (dir_a, a, _dir_b, b) = linked_pair().await;
    let key = b.node_key().to_string();
    ok_async(
        dir_a.path(),
        &["admin", "peer", "block", &key, "--reason", "by mistake"],
    )
    .await;
    wait_linked(&a, &b, false, "the link with the blocked node stayed open").await;
    assert!(a.node().federation.is_blocked(&b.node_key()));

    let out = ok_async(dir_a.path(), &["admin", "peer", "unblock", &key]).await;
    assert!(out.contains(&format!("unblock {key}")), "{out}");
    wait_linked(
        &a,
        &b,
        true,
        "A did not link with B again after the unblock",
    )
    .await;
    assert!(!a.node().federation.is_blocked(&b.node_key()));
    let stored = a.node().store.peers().expect("the store answers");
    assert!(
        stored
            .iter()
            .all(|p| p.status != kith_server::federation::PeerStatus::Blocked),
        "{stored:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A blocks B by its address (`kithd admin peer block <B's URL>`) while linked: A knows the
/// key that answered at that address (its dialer linked there), so the open link closes on
/// both sides, the key is stored with the block, and A stops dialing the address.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_a_linked_peer_by_address_closes_the_link() {
    let (dir_a, a, _dir_b, b) = linked_pair().await;
    let out = ok_async(
        dir_a.path(),
        &["admin", "peer", "block", &b.url(), "--reason", "floods us"],
    )
    .await;
    assert!(
        out.contains(&format!("block {} (floods us)", b.url())),
        "{out}"
    );
    wait_linked(
        &a,
        &b,
        false,
        "the link with the node at the blocked address stayed open",
    )
    .await;
    assert!(a.node().federation.is_blocked(&b.node_key()));
    let record = a
        .node()
        .store
        .peer(&b.url())
        .expect("the store answers")
        .expect("the block is stored");
    assert_eq!(
        (record.status, record.key),
        (
            kith_server::federation::PeerStatus::Blocked,
            Some(b.node_key())
        )
    );
    // The dialer for the address stops (and lets go of it, so adding it again would start
    // a new one).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !a.node().federation.start_dialing(&b.url()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A kept dialing the blocked address"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}
