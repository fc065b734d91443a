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
