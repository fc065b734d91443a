//! Join codes: everything a newcomer needs to join a group, on one line they can paste.
//!
//! ```text
//! kith-join:<group id>:<invitation id>@<node URL>
//! ```
//!
//! - `kith-join:` is written exactly so, in lower case;
//! - the group id and the invitation's event id are 64 characters of `0-9` and `a-f` each,
//!   separated by `:`;
//! - after the first `@` comes the base URL of the node the invitation was written on (its
//!   `/.well-known/kith` `url`): `http://` or `https://`, a host, maybe a port and a path,
//!   with no white space and no user name.
//!
//! For example
//! `kith-join:3f9a…(64):81c2…(64)@https://node.example.org`. `kith group invite` prints one;
//! `kith group join CODE` sends the join to that node when the newcomer's own node does not
//! hold the group yet.
//!
//! ```
//! use kith_client::JoinCode;
//! let group = "ab".repeat(32);
//! let invite = "cd".repeat(32);
//! let text = format!("kith-join:{group}:{invite}@https://node.example.org");
//! let code: JoinCode = text.parse().unwrap();
//! assert_eq!(code.node_url, "https://node.example.org");
//! assert_eq!(code.to_string(), text);
//! ```

use std::fmt;
use std::str::FromStr;

use kith_protocol::group::body::MAX_URL;
use kith_protocol::{EventId, GroupId};

/// How every join code starts.
pub const JOIN_CODE_PREFIX: &str = "kith-join:";

/// A group, an invitation to it, and the node to send the join to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JoinCode {
    /// The group.
    pub group: GroupId,
    /// The invitation (its event id).
    pub invite: EventId,
    /// The base URL of the node the invitation was written on.
    pub node_url: String,
}

/// Why a text is not a join code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinCodeError {
    /// It does not start with [`JOIN_CODE_PREFIX`].
    #[error("it does not start with {JOIN_CODE_PREFIX}")]
    NoPrefix,
    /// It is not `GROUP:INVITATION@URL` after the prefix.
    #[error("it should read {JOIN_CODE_PREFIX}GROUP_ID:INVITATION_ID@NODE_URL, but {0}")]
    Shape(&'static str),
    /// The group id is not 64 hex characters.
    #[error("its group id is not 64 characters of 0-9 and a-f")]
    Group,
    /// The invitation id is not 64 hex characters.
    #[error("its invitation id is not 64 characters of 0-9 and a-f")]
    Invite,
    /// The node URL cannot be used.
    #[error("its node address {reason}")]
    Url {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl JoinCode {
    /// A join code for `invite` in `group`, written on the node at `node_url`.
    pub fn new(group: GroupId, invite: EventId, node_url: impl Into<String>) -> JoinCode {
        JoinCode {
            group,
            invite,
            node_url: node_url.into(),
        }
    }
}

impl fmt::Display for JoinCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{JOIN_CODE_PREFIX}{}:{}@{}",
            self.group, self.invite, self.node_url
        )
    }
}

impl FromStr for JoinCode {
    type Err = JoinCodeError;

    /// Reads a join code. White space around it is ignored; nothing else is forgiven.
    fn from_str(text: &str) -> Result<JoinCode, JoinCodeError> {
        let rest = text
            .trim()
            .strip_prefix(JOIN_CODE_PREFIX)
            .ok_or(JoinCodeError::NoPrefix)?;
        let (ids, node_url) = rest.split_once('@').ok_or(JoinCodeError::Shape(
            "it has no '@' before the node address",
        ))?;
        let (group, invite) = ids.split_once(':').ok_or(JoinCodeError::Shape(
            "it has no ':' between the group id and the invitation id",
        ))?;
        if invite.contains(':') {
            return Err(JoinCodeError::Shape(
                "it has more than two ids before the '@'",
            ));
        }
        let hex = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(group) {
            return Err(JoinCodeError::Group);
        }
        if !hex(invite) {
            return Err(JoinCodeError::Invite);
        }
        let group = group.parse().map_err(|_| JoinCodeError::Group)?;
        let invite = invite.parse().map_err(|_| JoinCodeError::Invite)?;
        check_url(node_url)?;
        Ok(JoinCode::new(group, invite, node_url))
    }
}

/// The rules for a node address in a join code: those of a member's home URL.
fn check_url(url: &str) -> Result<(), JoinCodeError> {
    let bad = |reason| Err(JoinCodeError::Url { reason });
    if url.is_empty() {
        return bad("is missing after the '@'");
    }
    if url.len() > MAX_URL {
        return bad("is too long");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains white space or a control character");
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("does not start with http:// or https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return bad("names no computer after the //");
    }
    if authority.contains('@') {
        return bad("carries a user name (an '@'); give the node's address alone");
    }
    if rest.contains(['?', '#']) {
        return bad("contains '?' or '#'");
    }
    let port = match authority.strip_prefix('[') {
        Some(inner) => match inner.split_once(']') {
            Some((host, after)) if !host.is_empty() => match after {
                "" => None,
                after => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return bad("has text after its IPv6 address that is not a port"),
                },
            },
            _ => return bad("has an IPv6 address without its closing ']'"),
        },
        None => authority.split_once(':').map(|(_, port)| port),
    };
    if let Some(port) = port {
        let number = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
        if !number || port.parse::<u32>().map_or(true, |n| n > 65_535) {
            return bad("has a port that is not a number from 0 to 65535");
        }
    }
    if crate::ws_url(url).is_err() {
        return bad("is not a node address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_documented() {
        let code = JoinCode::new(
            GroupId::from_bytes([0xab; 32]),
            EventId::from_bytes([0x01; 32]),
            "http://127.0.0.1:8080",
        );
        assert_eq!(
            code.to_string(),
            format!(
                "kith-join:{}:{}@http://127.0.0.1:8080",
                "ab".repeat(32),
                "01".repeat(32)
            )
        );
        assert_eq!(code.to_string().parse::<JoinCode>().unwrap(), code);
    }
}
