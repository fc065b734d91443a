//! [`ClientError`]: what can go wrong talking to a node, in words a person can act on.

use kith_protocol::frame::ErrorCode;
use kith_protocol::ValidationError;

/// Why talking to a node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node address could not be understood.
    #[error("'{address}' is not a node address: {reason}. Write it like http://127.0.0.1:8080 or https://node.example.org")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node could not be reached, or did not accept a WebSocket.
    #[error("could not reach the node at {url}: {detail}; is it running? check the address")]
    Unreachable {
        /// The WebSocket URL tried.
        url: String,
        /// What the network said.
        detail: String,
    },
    /// The node did not answer in time.
    #[error("the node at {url} did not answer {waiting_for} within {seconds} seconds; it may be busy or the network may be slow. Try again in a moment")]
    Timeout {
        /// The node's WebSocket URL.
        url: String,
        /// What we were waiting for, e.g. "the greeting" or "the publish request".
        waiting_for: &'static str,
        /// How long we waited.
        seconds: u64,
    },
    /// The node speaks none of the protocol versions this program speaks.
    #[error("the node speaks protocol version(s) {node:?} but this program speaks {ours:?}; update whichever of the two is older")]
    IncompatibleVersion {
        /// The versions the node named in its greeting.
        node: Vec<u8>,
        /// The versions this program speaks.
        ours: &'static [u8],
    },
    /// The node answered a request with an error.
    #[error("the node refused: {message} (code {})", code_name(*.code))]
    Refused {
        /// The node's stable error code.
        code: ErrorCode,
        /// The node's explanation.
        message: String,
    },
    /// The node sent something that breaks the protocol.
    #[error("the node broke the protocol: {0}. It may be running an incompatible or faulty version; tell its admin")]
    Protocol(String),
    /// An event from the node failed this program's own checks and was not used.
    #[error(
        "the node sent an event that fails its checks ({0}); it was ignored. Tell the node's admin"
    )]
    InvalidEvent(ValidationError),
    /// The id given as a group's names an event that does not create a group.
    #[error("{group} is not a group: its event does not start one ({reason}); check the group id")]
    NotAGroup {
        /// The id as given.
        group: kith_protocol::GroupId,
        /// Why the event does not start a group.
        reason: String,
    },
    /// The connection is closed; nothing more can be sent or received on it.
    #[error("the connection to the node is closed ({reason}); connect again")]
    Closed {
        /// Why, as far as we know.
        reason: String,
    },
}

impl ClientError {
    /// The protocol error code behind this error, if there is one: the node's code for
    /// [`ClientError::Refused`], the validation code for [`ClientError::InvalidEvent`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused { code, .. } => Some(*code),
            ClientError::InvalidEvent(e) => Some(e.code()),
            _ => None,
        }
    }
}

/// The wire name of an error code, e.g. `not_registered`.
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_code_on_the_wire() {
        let err = ClientError::Refused {
            code: ErrorCode::NotRegistered,
            message: "this key is not registered here".into(),
        };
        assert_eq!(
            err.to_string(),
            "the node refused: this key is not registered here (code not_registered)"
        );
        assert_eq!(err.code(), Some(ErrorCode::NotRegistered));
    }

    #[test]
    fn unreachable_says_what_to_check() {
        let err = ClientError::Unreachable {
            url: "ws://127.0.0.1:1/ws".into(),
            detail: "connection refused".into(),
        };
        let text = err.to_string();
        assert!(text.starts_with("could not reach the node at ws://127.0.0.1:1/ws"));
        assert!(text.ends_with("is it running? check the address"));
    }
}
