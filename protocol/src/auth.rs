//! What a client signs to log in to a node (SPEC.md §6.3).
//!
//! The node sends 32 random bytes in its `hello`; the client signs
//! `"KITH-LOGIN-1" || node key (32 bytes) || challenge (32 bytes)`. Naming the node's key
//! means a login signature made for one node cannot be replayed to another, and the prefix
//! differs from an event header's `"KITH" 0x01`, so a login signature is never a valid event.

use crate::key::{PublicKey, SecretKey};

/// Prefix of the login message.
pub const LOGIN_MAGIC: &[u8] = b"KITH-LOGIN-1";

/// The exact bytes a client signs to log in.
pub fn login_message(node: &PublicKey, challenge: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(LOGIN_MAGIC.len() + 64);
    msg.extend_from_slice(LOGIN_MAGIC);
    msg.extend_from_slice(node.as_bytes());
    msg.extend_from_slice(challenge);
    msg
}

/// Signs a login challenge.
pub fn sign_login(key: &SecretKey, node: &PublicKey, challenge: &[u8; 32]) -> [u8; 64] {
    key.sign(&login_message(node, challenge))
}

/// Checks a login signature strictly.
pub fn verify_login(
    key: &PublicKey,
    node: &PublicKey,
    challenge: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    key.verify(&login_message(node, challenge), signature)
}
