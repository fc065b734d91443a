//! A WebSocket (axum's on the listening side, tokio-tungstenite's on the dialing side) seen
//! as two queues of messages (JSON text or binary), so the link code is the same for both
//! libraries.

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::frame::{FedFrame, QUEUE};

/// One WebSocket message of a link.
pub(super) enum Data {
    /// A JSON frame (handshake, control frames).
    Text(String),
    /// A binary frame (events, ids, sync messages).
    Binary(Vec<u8>),
}

impl Data {
    /// Its size on the wire, payload only.
    pub(super) fn len(&self) -> usize {
        match self {
            Data::Text(t) => t.len(),
            Data::Binary(b) => b.len(),
        }
    }
}

/// Messages in and out of one link, whatever the WebSocket library.
pub(super) struct Wire {
    pub(super) rx: mpsc::Receiver<Data>,
    pub(super) tx: mpsc::Sender<Data>,
}

impl Wire {
    pub(super) async fn send(&self, frame: &FedFrame) -> bool {
        self.tx.send(Data::Text(frame.encode())).await.is_ok()
    }
}

/// What the reader does with one incoming WebSocket message.
pub(super) enum Pumped {
    Data(Data),
    Close,
    Skip,
}

/// Spawns the reader and writer tasks that turn a WebSocket (axum's on the listening side,
/// tokio-tungstenite's on the dialing side) into a [`Wire`].
pub(super) fn pump<S, M, E>(
    socket: S,
    read: fn(M) -> Pumped,
    write: fn(Data) -> M,
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
    let (in_tx, in_rx) = mpsc::channel::<Data>(QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<Data>(QUEUE);
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let data = match read(message) {
                Pumped::Data(data) => data,
                Pumped::Close => break,
                Pumped::Skip => continue,
            };
            if in_tx.send(data).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(data) = out_rx.recv().await {
            if sink.send(write(data)).await.is_err() {
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
