//! An acknowledged event survives `kill -9`; SIGTERM drains connections and exits cleanly.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith_client::{Connection, SubscriptionItem};
use kith_protocol::event::EventId;
use kith_protocol::frame::{ErrorCode, Filter};
use kith_tests::node::{get_json, mint_invite};
use kith_tests::{post, seeded_key, KithdProcess};

const PUBLISHERS: u8 = 8;

#[tokio::test]
async fn every_acknowledged_event_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Generous rates: this test is about durability under load, not limits.
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("kithd.toml"),
        kith_tests::node::WITHOUT_RATE_LIMITS_TOML,
    )
    .unwrap();
    let node = KithdProcess::start(dir.path(), &[]).await;
    let acked: Arc<Mutex<Vec<EventId>>> = Arc::default();
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let url = node.url.clone();
        let invite = mint_invite(dir.path(), 1, 600);
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            let key = seeded_key(10 + p);
            let conn = Connection::connect(&url).await.unwrap();
            conn.login(&key, Some(&invite)).await.unwrap();
            for i in 0.. {
                let event = post(&key, &format!("publisher {p} event {i}"), None);
                match conn.publish(&event).await {
                    Ok(outcome) => acked.lock().unwrap().push(outcome.event_id),
                    Err(_) => break, // the node died under us
                }
            }
        }));
    }
    // Let load build, then kill without warning.
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill_9();
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<EventId> = acked.lock().unwrap().clone();

    let node = KithdProcess::start(dir.path(), &[]).await;
    let mut missing = Vec::new();
    for id in &acked {
        let (status, _) = get_json(&node.url, &format!("/events/{id}")).await;
        if status != 200 {
            missing.push(*id);
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let (_, health) = get_json(&node.url, "/health").await;
    assert!(health["events"].as_u64().unwrap() >= acked.len() as u64);
    let unique: HashSet<_> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
}

#[tokio::test]
async fn sigterm_tells_clients_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let node = KithdProcess::start(dir.path(), &[]).await;
    let key = seeded_key(3);
    let conn = Connection::connect(&node.url).await.unwrap();
    conn.login(&key, Some(&mint_invite(dir.path(), 1, 600)))
        .await
        .unwrap();
    let event = post(&key, "before shutdown", None);
    conn.publish(&event).await.unwrap();
    let mut sub = conn.subscribe(Filter::default()).await.unwrap();
    let status = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap();
    assert!(status.success(), "kithd exited with {status}");
    let mut told = false;
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        match item {
            SubscriptionItem::Closed {
                code: ErrorCode::ShuttingDown,
                ..
            } => told = true,
            SubscriptionItem::Disconnected { reason } => {
                told |= reason.contains("shutting down");
                break;
            }
            _ => {}
        }
    }
    assert!(told, "the client was not told the node is shutting down");
    let node = KithdProcess::start(dir.path(), &[]).await;
    let (status, _) = get_json(&node.url, &format!("/events/{}", event.id())).await;
    assert_eq!(status, 200);
}
