//! A WebSocket (axum's on the listening side, tokio-tungstenite's on the dialing side) seen
//! as two queues of text frames, so the link code is the same for both libraries.

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::frame::{FedFrame, QUEUE};

/// Text frames in and out of one link, whatever the WebSocket library.
pub(super) struct Wire {
    pub(super) rx: mpsc::Receiver<String>,
    pub(super) tx: mpsc::Sender<String>,
}

impl Wire {
    pub(super) async fn send(&self, frame: &FedFrame) -> bool {
        self.tx.send(frame.encode()).await.is_ok()
    }
}

/// What the reader does with one incoming WebSocket message.
pub(super) enum Pumped {
    Text(String),
    Close,
    Skip,
}

/// Spawns the reader and writer tasks that turn a WebSocket (axum's on the listening side,
/// tokio-tungstenite's on the dialing side) into a [`Wire`] of text frames.
pub(super) fn pump<S, M, E>(
    socket: S,
    read: fn(M) -> Pumped,
    write: fn(String) -> M,
) -> (
    Wire,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
)
where
    S: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Send + 'static,
    M: Send + 'static,
    E: Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel::<String>(QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(QUEUE);
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let text = match read(message) {
                Pumped::Text(text) => text,
                Pumped::Close => break,
                Pumped::Skip => continue,
            };
            if in_tx.send(text).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(write(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let wire = Wire {
        rx: in_rx,
        tx: out_tx,
    };
    (wire, reader, writer)
}
