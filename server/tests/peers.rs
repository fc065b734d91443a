//! `kithd admin peer add|block|list`, run as real processes on a temporary data directory,
//! with the node stopped and running (a running node applies new requests within seconds).

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
    let mut list = ok(d, &["admin", "peer", "list"]);
    for _ in 0..100 {
        if !list.contains("Not yet applied") {
            break;
        }
        assert!(list.contains("add https://1.1.1.1"), "{list}");
        std::thread::sleep(Duration::from_millis(100));
        list = ok(d, &["admin", "peer", "list"]);
    }
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
    // The applied offset (store and hint) covers the whole log.
    let log_len = std::fs::metadata(dir_a.path().join("admin").join("peers.jsonl"))
        .expect("the admin log")
        .len();
    assert_eq!(
        a.node().store.admin_peers_applied().expect("the store"),
        log_len
    );
    assert_eq!(
        kith_server::federation::peers::applied_hint(dir_a.path()),
        log_len
    );
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
