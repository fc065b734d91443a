//! A WebSocket (axum's on the listening side, tokio-tungstenite's on the dialing side) seen
//! as two queues of messages (JSON text or binary), so the link code is the same for both
//! libraries. The pump also keeps the link alive and notices when it is dead: it pings every
//! third of the link timeout, and ends the link when nothing at all (data, ping or pong)
//! has arrived for a whole timeout. Without this, a peer that vanished without closing the
//! connection (a power cut, a network dropping packets) would hold its link open, and its
//! queue undelivered, for as long as TCP takes to give up, which can be hours.

use std::time::Duration;

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

/// How the pump speaks one WebSocket library.
pub(super) struct Codec<M> {
    /// What to do with an incoming message.
    pub(super) read: fn(M) -> Pumped,
    /// The message for outgoing data.
    pub(super) write: fn(Data) -> M,
    /// A ping (the peer's WebSocket answers it with a pong by itself).
    pub(super) ping: fn() -> M,
}

/// Spawns the reader and writer tasks that turn a WebSocket (axum's on the listening side,
/// tokio-tungstenite's on the dialing side) into a [`Wire`]. The link ends when nothing
/// arrives for `timeout`; pings go out every third of it.
pub(super) fn pump<S, M, E>(
    socket: S,
    codec: Codec<M>,
    timeout: Duration,
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
    let Codec { read, write, ping } = codec;
    let reader = tokio::spawn(async move {
        // Any message, a pong included, shows the peer is there.
        while let Ok(Some(Ok(message))) = tokio::time::timeout(timeout, stream.next()).await {
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
        let mut pings = tokio::time::interval(timeout / 3);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pings.tick().await;
        loop {
            let message = tokio::select! {
                data = out_rx.recv() => match data {
                    Some(data) => write(data),
                    None => break,
                },
                _ = pings.tick() => ping(),
            };
            if sink.send(message).await.is_err() {
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
