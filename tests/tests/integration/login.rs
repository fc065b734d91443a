//! Logging in by signing the node's challenge, and registering with invites.

use kith_protocol::auth::sign_login;
use kith_protocol::frame::{Bytes, ClientFrame, ErrorCode, NodeFrame};
use kith_tests::{seeded_key, RawClient, TestNode};

fn code(frame: &NodeFrame) -> Option<ErrorCode> {
    match frame {
        NodeFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn invite_registers_and_later_logins_need_no_invite() {
    let node = TestNode::start().await;
    let alice = seeded_key(1);
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c.login(&alice, Some(&node.invite(1))).await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
    let mut again = RawClient::connect(&node.url()).await;
    let reply = again.login(&alice, None).await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
}

#[tokio::test]
async fn unregistered_key_without_invite_is_refused() {
    let node = TestNode::start().await;
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c.login(&seeded_key(2), None).await;
    assert_eq!(code(&reply), Some(ErrorCode::NotRegistered), "{reply:?}");
}

#[tokio::test]
async fn used_up_forged_and_expired_invites_are_refused() {
    let node = TestNode::start().await;
    let once = node.invite(1);
    let mut c = RawClient::connect(&node.url()).await;
    assert!(matches!(
        c.login(&seeded_key(3), Some(&once)).await,
        NodeFrame::Ok { .. }
    ));
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c.login(&seeded_key(4), Some(&once)).await;
    assert_eq!(code(&reply), Some(ErrorCode::BadInvite), "{reply:?}");

    // An invite minted by another node's key.
    let other = TestNode::start().await;
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c.login(&seeded_key(5), Some(&other.invite(1))).await;
    assert_eq!(code(&reply), Some(ErrorCode::BadInvite), "{reply:?}");

    // An invite that expired a second ago... minted with a validity in the past.
    let expired = kith_tests::node::mint_invite(node.dir(), 1, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c.login(&seeded_key(6), Some(&expired)).await;
    assert_eq!(code(&reply), Some(ErrorCode::BadInvite), "{reply:?}");
}

#[tokio::test]
async fn wrong_signature_replayed_and_stale_challenges_fail() {
    let node = TestNode::start_with(|c| c.connections.challenge_ttl_secs = 1).await;
    let alice = seeded_key(7);
    let invite = node.invite(5);

    // Signed by another key.
    let mut c = RawClient::connect(&node.url()).await;
    let signature = sign_login(&seeded_key(8), &c.node, &c.challenge);
    c.send(&ClientFrame::Login {
        id: "x".into(),
        key: alice.public_key(),
        signature: Bytes(signature),
        invite: Some(invite.clone()),
    })
    .await;
    assert_eq!(code(&c.recv().await), Some(ErrorCode::AuthFailed));

    // The challenge is single use: a correct signature after a failed attempt still fails.
    let reply = c.login(&alice, Some(&invite)).await;
    assert_eq!(code(&reply), Some(ErrorCode::AuthFailed), "{reply:?}");

    // A challenge from one connection replayed on another fails.
    let first = RawClient::connect(&node.url()).await;
    let mut second = RawClient::connect(&node.url()).await;
    let replayed = sign_login(&alice, &first.node, &first.challenge);
    second
        .send(&ClientFrame::Login {
            id: "r".into(),
            key: alice.public_key(),
            signature: Bytes(replayed),
            invite: Some(invite.clone()),
        })
        .await;
    assert_eq!(code(&second.recv().await), Some(ErrorCode::AuthFailed));

    // A stale challenge fails.
    let mut slow = RawClient::connect(&node.url()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let reply = slow.login(&alice, Some(&invite)).await;
    assert_eq!(code(&reply), Some(ErrorCode::AuthFailed), "{reply:?}");

    // And a fresh connection with the right key works.
    let mut good = RawClient::connect(&node.url()).await;
    assert!(matches!(
        good.login(&alice, Some(&invite)).await,
        NodeFrame::Ok { .. }
    ));
}

#[tokio::test]
async fn open_registration_needs_no_invite() {
    let node = TestNode::start_with(|c| c.open_registration = true).await;
    let mut c = RawClient::connect(&node.url()).await;
    assert!(matches!(
        c.login(&seeded_key(9), None).await,
        NodeFrame::Ok { .. }
    ));
}

#[tokio::test]
async fn admin_invite_command_mints_codes_for_the_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = kith_tests::KithdProcess::start(dir.path(), &[]).await;
    let kithd = kith_tests::workspace_binary("kithd");
    let out = std::process::Command::new(&kithd)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["admin", "invite", "--uses", "2", "--expires-in", "1d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let invite = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(invite.starts_with("kithinvite1"), "{invite}");
    for n in [20, 21] {
        let mut c = RawClient::connect(&node.url).await;
        let reply = c.login(&seeded_key(n), Some(&invite)).await;
        assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
    }
    let mut c = RawClient::connect(&node.url).await;
    assert_eq!(
        code(&c.login(&seeded_key(22), Some(&invite)).await),
        Some(ErrorCode::BadInvite)
    );
}
