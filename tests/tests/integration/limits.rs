//! Rate limits, subscription limits and slow readers.

use std::time::Duration;

use kith_protocol::frame::{ClientFrame, ErrorCode, Filter, NodeFrame};
use kith_tests::{post, seeded_key, RawClient, TestNode};

fn error_code(frame: &NodeFrame) -> Option<ErrorCode> {
    match frame {
        NodeFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn publish_rate_is_limited_per_connection_and_per_key() {
    let node = TestNode::start_with(|c| {
        c.connections.publish_per_second = 0.5;
        c.connections.publish_burst = 2.0;
        c.connections.key_publish_per_second = 0.5;
        c.connections.key_publish_burst = 3.0;
    })
    .await;
    let key = seeded_key(1);
    let invite = node.invite(1);
    let mut c = RawClient::connect(&node.url()).await;
    assert!(matches!(
        c.login(&key, Some(&invite)).await,
        NodeFrame::Ok { .. }
    ));
    for i in 0..2 {
        let reply = c
            .publish_bytes("p", post(&key, &format!("{i}"), None).encode())
            .await;
        assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
    }
    let reply = c
        .publish_bytes("p", post(&key, "third", None).encode())
        .await;
    assert_eq!(
        error_code(&reply),
        Some(ErrorCode::RateLimited),
        "{reply:?}"
    );

    // A second connection of the same key has its own connection bucket but shares the
    // key's: one more publish fits the key's burst of 3, then the key is limited.
    let mut c2 = RawClient::connect(&node.url()).await;
    assert!(matches!(c2.login(&key, None).await, NodeFrame::Ok { .. }));
    let reply = c2
        .publish_bytes("p", post(&key, "fourth", None).encode())
        .await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
    let reply = c2
        .publish_bytes("p", post(&key, "fifth", None).encode())
        .await;
    assert_eq!(
        error_code(&reply),
        Some(ErrorCode::RateLimited),
        "{reply:?}"
    );
}

#[tokio::test]
async fn frame_rate_is_limited() {
    let node = TestNode::start_with(|c| {
        c.connections.frames_per_second = 0.1;
        c.connections.frames_burst = 3.0;
    })
    .await;
    let mut c = RawClient::connect(&node.url()).await;
    for _ in 0..3 {
        c.send_text("{}").await;
        assert_eq!(error_code(&c.recv().await), Some(ErrorCode::BadFrame));
    }
    c.send_text("{}").await;
    assert_eq!(error_code(&c.recv().await), Some(ErrorCode::RateLimited));
}

#[tokio::test]
async fn subscriptions_per_connection_are_limited_and_ids_unique() {
    let node = TestNode::start_with(|c| c.connections.max_subscriptions = 2).await;
    let mut c = RawClient::connect(&node.url()).await;
    for id in ["a", "b"] {
        c.send(&ClientFrame::Subscribe {
            id: id.into(),
            filter: Filter::default(),
        })
        .await;
        assert!(matches!(c.recv().await, NodeFrame::Stored { .. }));
    }
    c.send(&ClientFrame::Subscribe {
        id: "a".into(),
        filter: Filter::default(),
    })
    .await;
    assert_eq!(error_code(&c.recv().await), Some(ErrorCode::BadRequestId));
    c.send(&ClientFrame::Subscribe {
        id: "c".into(),
        filter: Filter::default(),
    })
    .await;
    assert_eq!(
        error_code(&c.recv().await),
        Some(ErrorCode::TooManySubscriptions)
    );
    c.send(&ClientFrame::Unsubscribe { id: "a".into() }).await;
    assert!(matches!(c.recv().await, NodeFrame::Ok { .. }));
    c.send(&ClientFrame::Subscribe {
        id: "c".into(),
        filter: Filter::default(),
    })
    .await;
    assert!(matches!(c.recv().await, NodeFrame::Stored { .. }));
    c.send(&ClientFrame::Unsubscribe { id: "zzz".into() }).await;
    assert_eq!(error_code(&c.recv().await), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_told_and_disconnected_and_others_carry_on() {
    let node = TestNode::start_with(|c| {
        c.connections.outbound_queue = 8;
        c.connections.live_buffer = 64;
        kith_tests::node::without_rate_limits(c);
    })
    .await;
    let key = seeded_key(2);
    let mut writer = RawClient::connect(&node.url()).await;
    assert!(matches!(
        writer.login(&key, Some(&node.invite(1))).await,
        NodeFrame::Ok { .. }
    ));

    // The sleeper subscribes and then never reads.
    let mut sleeper = RawClient::connect(&node.url()).await;
    sleeper
        .send(&ClientFrame::Subscribe {
            id: "s".into(),
            filter: Filter::default(),
        })
        .await;
    assert!(matches!(sleeper.recv().await, NodeFrame::Stored { .. }));

    // Large events fill the socket buffers quickly.
    let text = "ω".repeat(9_000);
    for i in 0..400 {
        let reply = writer
            .publish_bytes("p", post(&key, &format!("{i} {text}"), None).encode())
            .await;
        assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
        if node
            .server_ref()
            .node()
            .metrics
            .slow_reader_disconnects
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            break;
        }
    }
    let disconnects = node
        .server_ref()
        .node()
        .metrics
        .slow_reader_disconnects
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(disconnects >= 1, "the sleeper was not disconnected");

    // The sleeper, reading at last, finds the reason (after whatever was already in
    // flight) and then the end of the connection.
    let mut told = false;
    loop {
        match sleeper.try_recv(Duration::from_secs(10)).await {
            Ok(Some(NodeFrame::Error {
                code: ErrorCode::SlowReader,
                ..
            })) => told = true,
            Ok(Some(_)) => {}
            Ok(None) | Err(()) => break,
        }
    }
    assert!(told, "the slow reader was not told why");

    // The writer is unaffected.
    let reply = writer
        .publish_bytes("after", post(&key, "after", None).encode())
        .await;
    assert!(matches!(reply, NodeFrame::Ok { .. }), "{reply:?}");
}
