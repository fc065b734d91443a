//! A link that goes silent is taken for dead and closed; a quiet link whose peer is there is
//! kept alive by pings. The node's `link_timeout_secs` is set to 3 s here (90 s by default);
//! the peer is a raw link that either stops reading altogether (as a vanished machine or a
//! network dropping packets would) or only reads (answering pings, sending nothing else).

use std::time::Duration;

use futures_util::StreamExt;
use kith_protocol::SecretKey;
use kith_tests::link::raw_link;
use kith_tests::node::{eventually, metric};
use kith_tests::TestNode;
use tokio_tungstenite::tungstenite::Message;

const LINKS: &str = "kith_federation_links_open";
const TIMEOUT_SECS: u64 = 3;

async fn node() -> TestNode {
    TestNode::start_with(|c| c.federation.link_timeout_secs = TIMEOUT_SECS).await
}

#[tokio::test]
async fn a_peer_that_falls_silent_is_cut_off_after_the_link_timeout() {
    let node = node().await;
    let ws = raw_link(&node.url(), &SecretKey::from_seed(&[93; 32])).await;
    assert!(eventually(10, || async { metric(&node.url(), LINKS).await == 1 }).await);
    // The peer neither reads nor writes from now on: it cannot even answer a ping.
    let closed = eventually(5 * TIMEOUT_SECS, || async {
        metric(&node.url(), LINKS).await == 0
    })
    .await;
    assert!(closed, "the node kept a silent link open");
    drop(ws);
}

#[tokio::test]
async fn a_quiet_peer_that_answers_pings_keeps_its_link() {
    let node = node().await;
    let mut ws = raw_link(&node.url(), &SecretKey::from_seed(&[94; 32])).await;
    // Reading is enough for the peer's WebSocket to answer each ping with a pong.
    let reader = tokio::spawn(async move {
        let mut pings = 0u32;
        while let Some(Ok(message)) = ws.next().await {
            if matches!(message, Message::Ping(_)) {
                pings += 1;
            }
        }
        pings
    });
    assert!(eventually(10, || async { metric(&node.url(), LINKS).await == 1 }).await);
    // Three timeouts with no data either way: the link stays.
    for _ in 0..(3 * TIMEOUT_SECS * 4) {
        assert_eq!(
            metric(&node.url(), LINKS).await,
            1,
            "the node closed a link whose peer answered its pings"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    node.shutdown().await;
    let pings = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the link ends when the node stops")
        .expect("the reader ran");
    assert!(pings >= 3, "the node sent {pings} pings in 9 s");
}
