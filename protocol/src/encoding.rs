//! Byte encodings shared across the protocol: standard base64 (RFC 4648 §4, with padding,
//! as the browser's `btoa` produces) for byte strings inside JSON, and lowercase hex for ids.
//!
//! Both decoders are strict: one byte string has exactly one accepted text form, so two
//! implementations can never disagree about what a frame carried.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A byte string in a JSON frame was not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid base64 (standard alphabet with '=' padding, RFC 4648 section 4): {0}")]
pub struct Base64Error(String);

/// Encodes bytes as standard padded base64.
pub fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64, rejecting any non-canonical form (stray bits in the
/// last character, missing padding, whitespace).
pub fn from_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    STANDARD
        .decode(text)
        .map_err(|e| Base64Error(e.to_string()))
}

/// A 32-byte value in hex had the wrong form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// Wrong number of characters.
    #[error("expected 64 hex characters (32 bytes), got {0} characters")]
    Length(usize),
    /// A character outside `0-9a-f`.
    #[error("expected lowercase hex digits 0-9 and a-f only")]
    Digit,
}

/// Decodes exactly 32 bytes from 64 lowercase hex characters.
pub fn hex32(text: &str) -> Result<[u8; 32], HexError> {
    if text.len() != 64 {
        return Err(HexError::Length(text.chars().count()));
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(HexError::Digit);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| HexError::Digit)?;
    Ok(out)
}
