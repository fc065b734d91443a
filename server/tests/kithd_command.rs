//! The `kithd` command line, run as a real process. (Having an integration test here also
//! makes `cargo test` build the `kithd` binary that the cross-crate tests in `tests/` start.)

use std::process::Command;

#[test]
fn help_reads_plainly() {
    let out = Command::new(env!("CARGO_BIN_EXE_kithd"))
        .arg("--help")
        .output()
        .expect("kithd runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--data-dir",
        "--listen",
        "KITH_LISTEN",
        "admin",
        "kithd.toml",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn admin_invite_needs_the_nodes_data_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_kithd"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["admin", "invite"])
        .output()
        .expect("kithd runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node key"), "{err}");
    assert!(!dir.path().join("node.key").exists());
}

/// Settings come from the config file, then `KITH_…` variables, then flags.
#[test]
fn flags_beat_environment_beats_config_file() {
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("kithd.toml"),
        format!("listen = \"127.0.0.1:{file_port}\"\n"),
    )
    .expect("write the config");
    let listens_on = |env: Option<u16>, flag: Option<u16>, expect: u16| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kithd"));
        cmd.arg("--data-dir")
            .arg(dir.path())
            .env("KITH_LOG", "warn");
        cmd.stdout(std::process::Stdio::null());
        cmd.env_remove("KITH_LISTEN");
        if let Some(p) = env {
            cmd.env("KITH_LISTEN", format!("127.0.0.1:{p}"));
        }
        if let Some(p) = flag {
            cmd.arg("--listen").arg(format!("127.0.0.1:{p}"));
        }
        let mut child = cmd.spawn().expect("kithd starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut up = false;
        while std::time::Instant::now() < deadline && !up {
            up = std::net::TcpStream::connect(("127.0.0.1", expect)).is_ok();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(up, "kithd did not listen on port {expect}");
    };
    listens_on(None, None, file_port);
    listens_on(Some(env_port), None, env_port);
    listens_on(Some(env_port), Some(flag_port), flag_port);
}

/// A second node on the same data directory says plainly why it cannot start.
#[test]
fn a_second_node_on_the_same_directory_is_refused_plainly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let start = |p: u16| {
        Command::new(env!("CARGO_BIN_EXE_kithd"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg(format!("127.0.0.1:{p}"))
            .env("KITH_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kithd starts")
    };
    let first_port = port();
    let mut first = start(first_port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", first_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first node did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = start(port())
        .wait_with_output()
        .expect("the second kithd exits");
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is another kithd running"), "{err}");
}
