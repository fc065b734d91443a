//! Invite codes: minted offline by `kithd admin invite`, checked by the running node.
//!
//! A code is `kithinvite1…` (bech32m, so typos are caught) over
//! `expires_at (u32 BE, seconds since the epoch, 0 = never) || max_uses (u16 BE) || nonce (8)`
//! followed by a 16-byte HMAC-SHA-256 tag under a key derived from the node's secret key.
//! Minting needs only the node key file, so an admin can mint while the node runs (the store
//! is locked by the running node); the node counts uses per nonce in its store.

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use hmac::{Hmac, Mac};
use kith_protocol::SecretKey;
use sha2::{Digest, Sha256};

const HRP: &str = "kithinvite";
const PAYLOAD_LEN: usize = 4 + 2 + 8;
const TAG_LEN: usize = 16;

/// What an invite allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invite {
    /// Seconds since the epoch after which the code is refused; 0 = never.
    pub expires_at: u32,
    /// How many keys may register with it.
    pub max_uses: u16,
    /// Identifies the code in the use counter.
    pub nonce: [u8; 8],
}

/// Why an invite code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// Not a code at all.
    #[error(
        "this is not an invite code (they start with kithinvite1); check that it was copied whole"
    )]
    Malformed,
    /// Not minted by this node (or altered).
    #[error("this invite code was not issued by this node; ask this node's admin for a code")]
    NotOurs,
    /// Past its expiry.
    #[error("this invite code has expired; ask the node's admin for a new one")]
    Expired,
    /// All uses taken.
    #[error("this invite code has been used up; ask the node's admin for a new one")]
    UsedUp,
}

fn mac_key(node: &SecretKey) -> Hmac<Sha256> {
    let mut derive = Sha256::new();
    derive.update(b"kith invite mac key v1");
    derive.update(node.to_seed());
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(&derive.finalize()).expect("HMAC takes any key length")
}

impl Invite {
    /// The code for this invite, authenticated with the node's key.
    pub fn encode(&self, node: &SecretKey) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.extend_from_slice(&self.expires_at.to_be_bytes());
        bytes.extend_from_slice(&self.max_uses.to_be_bytes());
        bytes.extend_from_slice(&self.nonce);
        let mut mac = mac_key(node);
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        bech32::encode_lower::<Bech32m>(Hrp::parse_unchecked(HRP), &bytes).unwrap_or_default()
    }

    /// Reads and authenticates a code, and checks its expiry against `now_secs`.
    pub fn decode(code: &str, node: &SecretKey, now_secs: u64) -> Result<Invite, InviteError> {
        let checked =
            CheckedHrpstring::new::<Bech32m>(code.trim()).map_err(|_| InviteError::Malformed)?;
        if checked.hrp().to_lowercase() != HRP {
            return Err(InviteError::Malformed);
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        if bytes.len() != PAYLOAD_LEN + TAG_LEN {
            return Err(InviteError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let mut mac = mac_key(node);
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| InviteError::NotOurs)?;
        let invite = Invite {
            expires_at: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
            max_uses: u16::from_be_bytes([payload[4], payload[5]]),
            nonce: payload[6..14]
                .try_into()
                .map_err(|_| InviteError::Malformed)?,
        };
        if invite.expires_at != 0 && now_secs > u64::from(invite.expires_at) {
            return Err(InviteError::Expired);
        }
        Ok(invite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trips_and_is_bound_to_the_node() {
        let node = SecretKey::from_seed(&[1; 32]);
        let other = SecretKey::from_seed(&[2; 32]);
        let invite = Invite {
            expires_at: 2_000_000_000,
            max_uses: 3,
            nonce: [7; 8],
        };
        let code = invite.encode(&node);
        assert!(code.starts_with("kithinvite1"));
        assert_eq!(Invite::decode(&code, &node, 1_900_000_000), Ok(invite));
        assert_eq!(
            Invite::decode(&code, &other, 1_900_000_000),
            Err(InviteError::NotOurs)
        );
        assert_eq!(
            Invite::decode(&code, &node, 2_000_000_001),
            Err(InviteError::Expired)
        );
        assert_eq!(
            Invite::decode("kithinvite1qqqq", &node, 0),
            Err(InviteError::Malformed)
        );
    }
}
