//! Group commit: one writer thread turns many publishers' writes into one flush.
//!
//! Publishers send their validated events over a channel and wait for the reply. The writer
//! takes whatever has queued up while the previous flush ran, stores it all, flushes once,
//! and only then answers every waiting publisher. An `ok` therefore always means "flushed",
//! and the cost of a flush is shared by everyone who arrived during the last one.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use kith_protocol::validate::ValidEvent;
use tokio::sync::{mpsc, oneshot};

use super::{Inserted, Store, StoreError};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// A write could not be committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer has stopped (the node is shutting down).
    #[error("the node is shutting down and no longer accepts writes; try again shortly")]
    Stopped,
}

struct Job {
    events: Vec<ValidEvent>,
    reply: oneshot::Sender<Result<Vec<Inserted>, CommitError>>,
}

enum Request {
    Write(Job),
    /// Finish queued writes, flush, answer, and stop.
    Stop(oneshot::Sender<()>),
}

/// Handle to the writer thread. Cloning is cheap; the thread stops when every handle is
/// dropped, after finishing the writes already queued.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Committer {
    /// Starts the writer. `max_batch` bounds how many events go into one flush.
    /// Newly stored events are announced on `hub` before their publishers are answered.
    pub fn start(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> Committer {
        let (tx, rx) = mpsc::channel(max_batch.max(1));
        let thread = std::thread::Builder::new()
            .name("kith-store-writer".into())
            .spawn(move || writer_loop(store, hub, metrics, rx, max_batch.max(1)));
        let thread = match thread {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!("could not start the store writer thread: {e}");
                None
            }
        };
        Committer {
            tx,
            thread: Arc::new(std::sync::Mutex::new(thread)),
        }
    }

    /// Stores `events` durably; returns once they are flushed.
    pub async fn commit(&self, events: Vec<ValidEvent>) -> Result<Vec<Inserted>, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Write(Job { events, reply }))
            .await
            .map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }

    /// Finishes queued writes, flushes, and stops the writer thread. Later commits fail
    /// with [`CommitError::Stopped`].
    pub async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Request::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = thread {
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the store writer thread did not stop cleanly");
            }
        }
    }
}

fn writer_loop(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
) {
    let mut stop = None;
    while stop.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut jobs = Vec::new();
        let mut queued = 0;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write(job) => {
                    queued += job.events.len();
                    jobs.push(job);
                }
                Request::Stop(done) => {
                    stop = Some(done);
                    break;
                }
            }
            if queued < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let started = Instant::now();
        let (results, flushed) = hub.write_and_announce(|| {
            let results: Vec<Result<Vec<Inserted>, StoreError>> =
                jobs.iter().map(|j| store.put_events(&j.events)).collect();
            let flushed = store.flush();
            let mut new_events = Vec::new();
            if flushed.is_ok() {
                for (job, result) in jobs.iter().zip(&results) {
                    let Ok(inserted) = result else { continue };
                    for (event, how) in job.events.iter().zip(inserted) {
                        match how {
                            Inserted::New => new_events.push((**event).clone()),
                            Inserted::Duplicate => {
                                metrics.events_duplicate.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            }
            metrics
                .events_stored
                .fetch_add(new_events.len() as u64, Relaxed);
            ((results, flushed), new_events)
        });
        metrics.record_flush(queued as u64, started.elapsed());
        for (job, result) in jobs.into_iter().zip(results) {
            let answer = match (&flushed, result) {
                (Ok(()), Ok(inserted)) => Ok(inserted),
                (Err(e), _) => Err(CommitError::Store(StoreError::Engine(e.to_string()))),
                (_, Err(e)) => Err(CommitError::Store(e)),
            };
            // The publisher may have gone away; its events are stored all the same.
            let _ = job.reply.send(answer);
        }
    }
    if let Err(e) = store.flush() {
        tracing::error!("final store flush failed: {e}");
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}
