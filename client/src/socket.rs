//! The WebSocket itself: opening it, the node's greeting, and the two tasks that serve a
//! connection. The reader decodes each frame and hands it to the router; the writer sends
//! what callers queue, in order, and says goodbye when asked or when every handle is gone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use kith_protocol::frame::{decode_node_frame, encode_frame, ClientFrame, NodeFrame};
use kith_protocol::{Limits, PublicKey, SUPPORTED_VERSIONS};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::connection::ConnectOptions;
use crate::error::ClientError;
use crate::router::{self, lock, Router};
use crate::verify::EventVerifier;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many frames may wait to be written before senders wait.
const OUTGOING_QUEUE: usize = 256;

/// How long closing waits for the node to acknowledge.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the node said in its `hello`.
#[derive(Debug)]
pub(crate) struct Greeting {
    pub(crate) node: PublicKey,
    pub(crate) challenge: [u8; 32],
    pub(crate) versions: Vec<u8>,
    pub(crate) limits: Limits,
}

/// An open WebSocket with its tasks running.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) greeting: Greeting,
    /// Frames to send.
    pub(crate) outgoing: mpsc::Sender<Message>,
    /// The writer task; it ends after the reader has.
    pub(crate) writer: JoinHandle<()>,
}

/// Opens the WebSocket at `url`, waits for the greeting and starts the reader (routing
/// into `router`) and the writer.
pub(crate) async fn open(
    url: &str,
    options: &ConnectOptions,
    router: Arc<Mutex<Router>>,
) -> Result<Opened, ClientError> {
    let wait = options.hello_timeout;
    let timeout = |waiting_for| ClientError::Timeout {
        url: url.to_owned(),
        waiting_for,
        seconds: wait.as_secs(),
    };
    let (socket, _response) = tokio::time::timeout(
        wait,
        tokio_tungstenite::connect_async_with_config(url, Some(websocket_config(options)), true),
    )
    .await
    .map_err(|_| timeout("the connection"))?
    .map_err(|e| ClientError::Unreachable {
        url: url.to_owned(),
        detail: describe_ws_error(&e),
    })?;
    let (sink, mut stream) = socket.split();
    let greeting = tokio::time::timeout(wait, read_hello(&mut stream, url))
        .await
        .map_err(|_| timeout("with its greeting"))??;
    if !greeting
        .versions
        .iter()
        .any(|v| SUPPORTED_VERSIONS.contains(v))
    {
        return Err(ClientError::IncompatibleVersion {
            node: greeting.versions,
            ours: SUPPORTED_VERSIONS,
        });
    }
    let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
    let verifier = EventVerifier::new(&greeting.limits);
    let reader = tokio::spawn(read_loop(stream, router, verifier, outgoing.downgrade()));
    let writer = tokio::spawn(write_loop(sink, queue, reader));
    Ok(Opened {
        greeting,
        outgoing,
        writer,
    })
}

/// A client frame as a WebSocket message.
pub(crate) fn frame_message(frame: &ClientFrame) -> Message {
    Message::text(encode_frame(frame))
}

fn websocket_config(options: &ConnectOptions) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(options.max_message_bytes))
        .max_frame_size(Some(options.max_message_bytes))
}

async fn read_hello(stream: &mut SplitStream<Socket>, url: &str) -> Result<Greeting, ClientError> {
    let gone = |detail: String| ClientError::Unreachable {
        url: url.to_owned(),
        detail,
    };
    loop {
        let message = match stream.next().await {
            None => return Err(gone("the node hung up before greeting".into())),
            Some(Err(e)) => return Err(gone(describe_ws_error(&e))),
            Some(Ok(message)) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(gone("the node hung up before greeting".into())),
            _ => continue,
        };
        let frame = decode_node_frame(&text)
            .map_err(|e| ClientError::Protocol(format!("its greeting could not be read: {e}")))?;
        return match frame {
            NodeFrame::Hello {
                node,
                challenge,
                versions,
                limits,
            } => Ok(Greeting {
                node,
                challenge: challenge.0,
                versions,
                limits,
            }),
            NodeFrame::Error { code, message, .. } => Err(ClientError::Refused { code, message }),
            _ => Err(ClientError::Protocol(
                "it did not start with a greeting (hello)".into(),
            )),
        };
    }
}

async fn read_loop(
    mut stream: SplitStream<Socket>,
    router: Arc<Mutex<Router>>,
    mut verifier: EventVerifier,
    outgoing: mpsc::WeakSender<Message>,
) {
    let reason = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Some(sub) = router::route_text(&router, &mut verifier, &text) {
                    if let Some(outgoing) = outgoing.upgrade() {
                        let frame = ClientFrame::Unsubscribe { id: sub };
                        let _ = outgoing.try_send(frame_message(&frame));
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame.filter(|f| !f.reason.is_empty()) {
                    Some(f) => format!("the node closed it: {}", f.reason),
                    None => "the node closed it".to_owned(),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("the connection failed: {}", describe_ws_error(&e)),
            None => break "the connection ended".to_owned(),
        }
    };
    lock(&router).shut_down(&reason);
}

async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::Receiver<Message>,
    reader: JoinHandle<()>,
) {
    while let Some(message) = queue.recv().await {
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
    queue.close();
    let _ = sink.close().await;
    let abort = reader.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE, reader).await.is_err() {
        abort.abort();
    }
}

/// A plain-words account of a WebSocket failure.
fn describe_ws_error(error: &tungstenite::Error) -> String {
    use tungstenite::Error as E;
    match error {
        E::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => secure_setup_failed(tls),
            None => e.to_string(),
        },
        E::Tls(e) => secure_setup_failed(e),
        E::Http(response) => format!(
            "it answered with HTTP status {} instead of opening a WebSocket (is this a Kith \
             node's address?)",
            response.status()
        ),
        E::Capacity(e) => format!("a message was too large ({e})"),
        other => other.to_string(),
    }
}

fn secure_setup_failed(error: &dyn std::fmt::Display) -> String {
    format!(
        "a secure (https) connection could not be set up ({error}); if this node does not use \
         https, write its address with http://"
    )
}
