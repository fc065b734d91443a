//! Every class of bad input gets its own error frame; the connection stays usable where
//! that makes sense; no other connection notices; nothing invalid is stored.

use std::time::Duration;

use kith_protocol::event::{EventBuilder, Timestamp};
use kith_protocol::frame::{ClientFrame, ErrorCode, Filter, NodeFrame};
use kith_protocol::kind::Kind;
use kith_tests::{post, seeded_key, RawClient, TestNode};

fn error_code(frame: &NodeFrame) -> ErrorCode {
    match frame {
        NodeFrame::Error { code, .. } => *code,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

async fn logged_in(node: &TestNode, n: u8) -> (RawClient, kith_protocol::SecretKey) {
    let key = seeded_key(n);
    let mut c = RawClient::connect(&node.url()).await;
    assert!(matches!(
        c.login(&key, Some(&node.invite(1))).await,
        NodeFrame::Ok { .. }
    ));
    (c, key)
}

#[tokio::test]
async fn each_bad_frame_gets_a_specific_error_and_the_connection_survives() {
    let node = TestNode::start().await;
    let (mut c, key) = logged_in(&node, 1).await;

    // A bystander with a live subscription must notice nothing but the one good event.
    let mut bystander = RawClient::connect(&node.url()).await;
    bystander
        .send(&ClientFrame::Subscribe {
            id: "all".into(),
            filter: Filter::default(),
        })
        .await;
    assert!(matches!(bystander.recv().await, NodeFrame::Stored { .. }));

    let cases: Vec<(&str, String, ErrorCode)> = vec![
        ("not json", "{this is not json".into(), ErrorCode::BadJson),
        ("array", "[1,2,3]".into(), ErrorCode::BadFrame),
        (
            "no version",
            r#"{"type":"publish","id":"a"}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            "future version",
            r#"{"v":7,"type":"publish","id":"a"}"#.into(),
            ErrorCode::UnsupportedVersion,
        ),
        (
            "unknown type",
            r#"{"v":1,"type":"shout","id":"a"}"#.into(),
            ErrorCode::UnknownType,
        ),
        (
            "wrong field type",
            r#"{"v":1,"type":"publish","id":"a","event":42}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            "missing field",
            r#"{"v":1,"type":"subscribe","id":"a"}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            "bad base64",
            r#"{"v":1,"type":"publish","id":"a","event":"***"}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            "filter typo",
            r#"{"v":1,"type":"subscribe","id":"a","filter":{"grups":[]}}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            "long id",
            format!(
                r#"{{"v":1,"type":"unsubscribe","id":"{}"}}"#,
                "x".repeat(65)
            ),
            ErrorCode::BadRequestId,
        ),
        (
            "oversize",
            format!(
                r#"{{"v":1,"type":"publish","id":"a","event":"{}"}}"#,
                "A".repeat(140_000)
            ),
            ErrorCode::FrameTooLarge,
        ),
    ];
    for (name, text, expected) in cases {
        c.send_text(text).await;
        let reply = c.recv().await;
        assert_eq!(error_code(&reply), expected, "case '{name}': {reply:?}");
    }
    c.send_binary(vec![1, 2, 3]).await;
    assert_eq!(error_code(&c.recv().await), ErrorCode::BadFrame);

    // The unsupported-version reply names the versions the node speaks.
    c.send_text(r#"{"v":2,"type":"publish","id":"v"}"#).await;
    match c.recv().await {
        NodeFrame::Error { supported, id, .. } => {
            assert_eq!(supported, Some(vec![1]));
            assert_eq!(id.as_deref(), Some("v"));
        }
        other => panic!("{other:?}"),
    }

    // Still usable: a good publish works on the same connection.
    let good = post(&key, "still here", None);
    let reply = c.publish_bytes("good", good.encode()).await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
    match bystander.recv().await {
        NodeFrame::Event { event, .. } => assert_eq!(event.0, good.encode()),
        other => panic!("the bystander got {other:?}"),
    }
    let (_, health) = node.get_json("/health").await;
    assert_eq!(health["events"], 1, "only the good event is stored");
}

#[tokio::test]
async fn each_bad_event_gets_its_validation_code_and_nothing_is_stored() {
    let node = TestNode::start().await;
    let (mut c, key) = logged_in(&node, 2).await;
    let good = post(&key, "hello", None);

    let mut bad_sig = good.encode();
    let sig_byte = good.header_bytes().len() + 3;
    bad_sig[sig_byte] ^= 1;

    let mut altered = good.encode();
    let last = altered.len() - 3;
    altered[last] ^= 0x20;

    let future = EventBuilder::new(
        Kind::POST,
        Timestamp(kith_client::now().0 + 3_600_000),
        br#"{"text":"from tomorrow"}"#.to_vec(),
    )
    .sign(&key)
    .unwrap();
    let unknown_kind = EventBuilder::new(Kind(4242), kith_client::now(), b"{}".to_vec())
        .sign(&key)
        .unwrap();
    let bad_body = EventBuilder::new(Kind::POST, kith_client::now(), br#"{"txt":"x"}"#.to_vec())
        .sign(&key)
        .unwrap();
    let stranger = post(&seeded_key(99), "not registered here", None);
    let mut truncated = good.encode();
    truncated.truncate(40);

    let cases = [
        ("bad signature", bad_sig, ErrorCode::BadSignature),
        ("altered body", altered, ErrorCode::BodyMismatch),
        ("far future", future.encode(), ErrorCode::FromTheFuture),
        (
            "unknown kind",
            unknown_kind.encode(),
            ErrorCode::UnknownKind,
        ),
        ("bad body", bad_body.encode(), ErrorCode::BadBody),
        (
            "unregistered author",
            stranger.encode(),
            ErrorCode::NotRegistered,
        ),
        ("truncated", truncated, ErrorCode::MalformedEvent),
        (
            "body withheld",
            good.without_body().encode(),
            ErrorCode::BodyMissing,
        ),
    ];
    for (name, bytes, expected) in cases {
        let reply = c.publish_bytes(name, bytes).await;
        assert_eq!(error_code(&reply), expected, "case '{name}': {reply:?}");
    }
    let (_, health) = node.get_json("/health").await;
    assert_eq!(health["events"], 0, "nothing invalid was stored");
    let (_, metrics) = (0, kith_tests::node::get_text(&node.url(), "/metrics").await);
    assert!(
        metrics.contains("kith_rejections_total{code=\"bad_signature\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn publishing_needs_login() {
    let node = TestNode::start().await;
    let mut c = RawClient::connect(&node.url()).await;
    let reply = c
        .publish_bytes("p", post(&seeded_key(3), "hi", None).encode())
        .await;
    assert_eq!(error_code(&reply), ErrorCode::AuthRequired);
}

#[tokio::test]
async fn a_frame_past_the_hard_limit_closes_only_that_connection() {
    let node = TestNode::start_with(|c| c.connections.max_frame_bytes = 16 * 1024).await;
    let (mut rude, _) = logged_in(&node, 4).await;
    let (mut polite, key) = logged_in(&node, 5).await;
    rude.send_text("x".repeat(40 * 1024)).await;
    assert!(
        matches!(rude.try_recv(Duration::from_secs(10)).await, Ok(None)),
        "closed"
    );
    let reply = polite
        .publish_bytes("ok", post(&key, "fine", None).encode())
        .await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
}
