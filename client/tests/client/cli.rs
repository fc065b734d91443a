//! The `kith` tool against a dishonest node: forged posts are not shown, and the person
//! is told what happened in plain words.

use std::process::{Output, Stdio};

use kith_protocol::kind::PostBody;
use kith_protocol::{EventBuilder, Kind, SecretKey};

use crate::hostile_node::HostileNode;

/// Runs `kith` with its own empty Kith folder.
async fn kith(home: &tempfile::TempDir, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(args)
        .env("KITH_HOME", home.path())
        .env_remove("KITH_NODE")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn post(seed: u8, text: &str) -> Vec<u8> {
    let body = PostBody { text: text.into() }.to_bytes();
    EventBuilder::new(Kind::POST, kith_client::now(), body)
        .sign(&SecretKey::from_seed(&[seed; 32]))
        .unwrap()
        .encode()
}

#[tokio::test]
async fn read_shows_genuine_posts_only_and_warns_about_forged_ones() {
    let node = HostileNode::start().await;
    let mut forged = post(1, "Meeting cancelled, stay home");
    let in_body = forged.len() - 3;
    forged[in_body] ^= 1;
    node.plant(forged);
    node.plant(post(2, "Meeting at 7 as planned"));
    let home = tempfile::tempdir().unwrap();

    let out = kith(&home, &["read", "--node", &node.address]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("Meeting at 7 as planned"), "{shown}");
    assert!(!shown.contains("cancelled"), "{shown}");
    let warned = text(&out.stderr);
    assert!(
        warned.starts_with("warning: the node sent an event that fails its checks"),
        "{warned}"
    );
    assert!(warned.contains("it was ignored"), "{warned}");
}

#[tokio::test]
async fn post_reports_a_node_that_answers_with_the_wrong_id() {
    let node = HostileNode::start().await;
    let home = tempfile::tempdir().unwrap();
    let out = kith(&home, &["post", "--node", &node.address, "hello"]).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("error: the node broke the protocol"), "{err}");
    assert!(err.contains("hint: tell the node's admin"), "{err}");
}
