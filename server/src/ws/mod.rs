//! The client WebSocket API at `/ws` (SPEC.md §6).
//!
//! One task per connection reads frames, matches live announcements against the
//! connection's subscriptions and queues replies; a second task writes the queue to the
//! socket. The queue is bounded: a client that stops reading is told it is too slow and
//! disconnected, so it can never make the node's memory grow. A bad frame gets an error frame
//! and the connection carries on; nothing one connection does reaches another.
//!
//! **Boundary:** this module knows nothing of federation; it calls [`crate::node::Node`].

mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use kith_protocol::frame::{encode_frame, ErrorCode, NodeFrame};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument as _;

use crate::node::SharedNode;
use session::{Flow, Session};

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// How often an idle connection is pinged.
const PING_EVERY: Duration = Duration::from_secs(30);

/// `GET /ws`: upgrades to a WebSocket with the configured buffer and frame limits.
pub async fn upgrade(
    State(node): State<SharedNode>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let limits = &node.config.connections;
    if node.metrics.connections_open.load(Relaxed) >= limits.max_connections as i64 {
        node.metrics.reject("too_many_connections");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has as many connections as it is configured to take; try again later",
        )
            .into_response();
    }
    // Small buffers keep an idle connection cheap; frames between the soft and hard limit
    // are read so they can be answered with `frame_too_large`.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(limits.max_frame_bytes * 4)
        .max_message_size(limits.max_frame_bytes * 2)
        .max_frame_size(limits.max_frame_bytes * 2)
        .on_upgrade(move |socket| {
            let tracker = node.tracker.clone();
            tracker.track_future(run(socket, node, peer))
        })
}

/// What woke the connection task.
enum Input {
    Shutdown,
    Message(Option<Result<Message, axum::Error>>),
    Live(Result<Arc<crate::hub::Announced>, broadcast::error::RecvError>),
}

/// Why the writer must stop early, with the words to send the client.
pub(crate) struct Abort {
    code: ErrorCode,
    message: String,
}

async fn run(socket: WebSocket, node: SharedNode, peer: SocketAddr) {
    let id = NEXT_CONNECTION.fetch_add(1, Relaxed);
    let span = tracing::info_span!("conn", id, %peer);
    node.metrics.connections_open.fetch_add(1, Relaxed);
    node.metrics.connections_total.fetch_add(1, Relaxed);
    connection(socket, Arc::clone(&node)).instrument(span).await;
    node.metrics.connections_open.fetch_sub(1, Relaxed);
}

async fn connection(socket: WebSocket, node: SharedNode) {
    let (sink, mut stream) = socket.split();
    let (out_tx, out_rx) = mpsc::channel(node.config.connections.outbound_queue.max(4));
    let (abort_tx, abort_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, out_rx, abort_rx).in_current_span());
    let mut session = Session::new(Arc::clone(&node), out_tx);
    tracing::debug!("connected");
    let mut flow = session.hello();
    while flow == Flow::Continue {
        // Only a connection with a subscription listens to the live stream: an idle one
        // costs the writer nothing when events are stored.
        let input = match session.live.as_mut() {
            Some(live) => tokio::select! {
                biased;
                () = node.shutdown.cancelled() => Input::Shutdown,
                message = stream.next() => Input::Message(message),
                announced = live.recv() => Input::Live(announced),
            },
            None => tokio::select! {
                biased;
                () = node.shutdown.cancelled() => Input::Shutdown,
                message = stream.next() => Input::Message(message),
            },
        };
        flow = match input {
            Input::Shutdown => Flow::Abort(
                ErrorCode::ShuttingDown,
                "this node is shutting down; reconnect in a moment".into(),
            ),
            // Boxed so that an idle connection's task stays small.
            Input::Message(Some(Ok(message))) => Box::pin(session.on_message(message)).await,
            Input::Message(Some(Err(e))) => {
                tracing::debug!("read error: {e}");
                Flow::Closed
            }
            Input::Message(None) => Flow::Closed,
            Input::Live(Ok(announced)) => session.on_live(&announced),
            Input::Live(Err(broadcast::error::RecvError::Lagged(n))) => {
                node.metrics.slow_reader_disconnects.fetch_add(1, Relaxed);
                Flow::Abort(ErrorCode::SlowReader, format!(
                    "this connection fell {n} events behind the live stream; it is closed so the node's memory stays bounded. Reconnect and subscribe with `since` to catch up"))
            }
            Input::Live(Err(broadcast::error::RecvError::Closed)) => Flow::Closed,
        };
    }
    if let Flow::Abort(code, message) = flow {
        tracing::info!(?code, "closing connection: {message}");
        let _ = abort_tx.send(Abort { code, message });
    }
    drop(session);
    if tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .is_err()
    {
        tracing::debug!("writer did not finish in time");
    }
    tracing::debug!("disconnected");
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    mut abort: oneshot::Receiver<Abort>,
) {
    // A ping now and then keeps idle connections open through proxies that close quiet
    // ones (nginx's proxy_read_timeout) and notices dead peers.
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            reason = &mut abort => {
                if let Ok(Abort { code, message }) = reason {
                    // Skip whatever is queued: the client is told why at once.
                    let frame = encode_frame(&NodeFrame::Error { id: None, code, message: message.clone(), supported: None });
                    let close = CloseFrame { code: 1008, reason: truncate_reason(&message).into() };
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        let _ = sink.send(Message::Text(frame.into())).await;
                        let _ = sink.send(Message::Close(Some(close))).await;
                    }).await;
                }
                break;
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            next = queue.recv() => match next {
                Some(message) => {
                    // Write everything already queued, then flush once: one system call for
                    // a burst of frames instead of one each.
                    let mut ok = sink.feed(message).await.is_ok();
                    let mut batched = 1;
                    while ok && batched < 64 {
                        match queue.try_recv() {
                            Ok(more) => ok = sink.feed(more).await.is_ok(),
                            Err(_) => break,
                        }
                        batched += 1;
                    }
                    if !ok || sink.flush().await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = sink.close().await;
                    break;
                }
            },
        }
    }
}

/// A close frame's reason may be at most 123 bytes.
fn truncate_reason(message: &str) -> String {
    let mut end = message.len().min(120);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}
