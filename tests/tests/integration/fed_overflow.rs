//! More events waiting for a missing parent than one link holds (1,024): the node drops the
//! rest, and reconciles the group again on the same link once its fetches are done, so the
//! dropped events arrive without waiting for the next link. A raw peer plays the other node:
//! it announces the group, answers sync sessions, pushes the events and serves what is
//! fetched.

use std::collections::HashMap;

use futures_util::{SinkExt, StreamExt};
use kith_protocol::event::Timestamp;
use kith_protocol::group::body::Visibility;
use kith_protocol::kind::{Kind, PostBody};
use kith_protocol::sync::{Config, Item, Responder, SyncSet};
use kith_protocol::{Event, EventId, GroupId, SecretKey};
use kith_server::federation::frame::{BinFrame, RANGE_BATCH};
use kith_tests::link::{raw_link, LinkSocket};
use kith_tests::node::eventually;
use kith_tests::{seeded_key, TestGroup, TestNode};
use tokio_tungstenite::tungstenite::Message;

const WAIT_SECS: u64 = 60;
/// More than the 1,024 events a link keeps waiting.
const SIBLINGS: usize = 1_100;

/// The raw peer: answers the node's sync sessions over the events it has `known` so far,
/// serves fetches of ids and ranges from them. After answering its first sync message it
/// learns `later` and pushes `pushed` (in that order, without sequence numbers).
async fn play_peer(
    mut ws: LinkSocket,
    group: GroupId,
    mut known: Vec<Event>,
    later: Vec<Event>,
    pushed: Vec<Event>,
) {
    let announce = serde_json::json!({"type": "fed_groups", "groups": [group.to_string()]});
    ws.send(Message::Text(announce.to_string().into()))
        .await
        .unwrap();
    let mut responders: HashMap<u32, Responder<SyncSet>> = HashMap::new();
    let mut later = Some((later, pushed));
    while let Some(Ok(message)) = ws.next().await {
        let Message::Binary(bytes) = message else {
            continue;
        };
        let answer = match BinFrame::decode(&bytes).unwrap() {
            BinFrame::Sync {
                group,
                session,
                msg,
            } => {
                let responder = responders.entry(session).or_insert_with(|| {
                    let set: SyncSet = known
                        .iter()
                        .map(|e| Item::new(e.created_at(), e.id()))
                        .collect();
                    Responder::new(set, Config::default())
                });
                responder.handle_message(&msg).unwrap();
                let msg = responder.poll_transmit().unwrap();
                BinFrame::SyncReply {
                    group,
                    session,
                    msg,
                }
            }
            BinFrame::Fetch { ids } => {
                let found: Vec<Vec<u8>> = ids
                    .iter()
                    .filter_map(|id| known.iter().find(|e| e.id() == *id))
                    .map(Event::encode)
                    .collect();
                let missing: Vec<EventId> = ids
                    .into_iter()
                    .filter(|id| known.iter().all(|e| e.id() != *id))
                    .collect();
                BinFrame::Events {
                    missing,
                    events: found,
                }
            }
            BinFrame::FetchRange { lower, upper, .. } => {
                let mut inside: Vec<&Event> = known
                    .iter()
                    .filter(|e| lower.holds(&upper, &Item::new(e.created_at(), e.id())))
                    .collect();
                inside.sort_by_key(|e| Item::new(e.created_at(), e.id()));
                let more = inside.len() > RANGE_BATCH;
                BinFrame::RangeEvents {
                    more,
                    events: inside
                        .iter()
                        .take(RANGE_BATCH)
                        .map(|e| e.encode())
                        .collect(),
                }
            }
            _ => continue,
        };
        ws.send(Message::Binary(answer.encode().into()))
            .await
            .unwrap();
        if let Some((later, pushed)) = later.take() {
            known.extend(later);
            for event in &pushed {
                let frame = BinFrame::Event {
                    seq: None,
                    event: event.encode(),
                };
                ws.send(Message::Binary(frame.encode().into()))
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn events_dropped_while_too_many_waited_are_reconciled_on_the_same_link() {
    let node = TestNode::start().await;
    let key = seeded_key(91);
    let started = Timestamp(kith_client::now().0 - 60_000);
    let mut group = TestGroup::create(&key, "stairwell", Visibility::Public, started);
    let conn = kith_client::Connection::connect(&node.url()).await.unwrap();
    conn.login(&key, Some(&node.invite(1))).await.unwrap();
    conn.publish(&group.genesis).await.unwrap();
    conn.close().await;

    // One post the node lacks, then many answers to it: every answer waits for it.
    let asked = group.post(&key, "who can water the plants in August?");
    let answers: Vec<Event> = (0..SIBLINGS)
        .map(|i| {
            let body = PostBody {
                text: format!("I can, week {i}"),
            }
            .to_bytes();
            group
                .fork()
                .event_citing(&key, Kind::POST, body, &[asked.id()])
        })
        .collect();
    let mut later = vec![asked];
    later.extend(answers.iter().cloned());

    let ws = raw_link(&node.url(), &SecretKey::from_seed(&[92; 32])).await;
    let peer = tokio::spawn(play_peer(
        ws,
        group.id,
        vec![group.genesis.clone()],
        later,
        answers,
    ));
    let all = 2 + SIBLINGS as u64;
    let arrived = eventually(WAIT_SECS, || async { node.event_count().await == all }).await;
    peer.abort();
    assert!(
        arrived,
        "the node holds {} of {all} events: those dropped while too many waited were not reconciled",
        node.event_count().await
    );
}
