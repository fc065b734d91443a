//! Identities: ed25519 key pairs and their human-friendly text form.
//!
//! A public key is written `kith1…`: bech32m (BIP-350) with the human-readable part `kith`
//! over the 32 key bytes. The six-character checksum catches any single mistyped character
//! and most longer slips. A secret key is written `kithsecret1…` the same way, so it is
//! never mistaken for a public one. Parsing is strict: one key has one text form.
//!
//! A [`PublicKey`] value is always usable: its bytes are a canonical encoding of a curve
//! point that is not of small order ("weak"), which is what strict verification needs.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::UncheckedHrpstring;
use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;

/// Human-readable part of a public key's text form.
pub const PUBLIC_KEY_HRP: &str = "kith";
/// Human-readable part of a secret key's text form.
pub const SECRET_KEY_HRP: &str = "kithsecret";

/// Why a key (in bytes or text) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not bech32m at all (bad characters, mixed case, no separator).
    #[error("'{text}' is not a Kith key: {reason}. A public key looks like kith1… and is 63 characters long")]
    Malformed {
        /// The text as given (truncated if long).
        text: String,
        /// What the bech32 decoder found.
        reason: String,
    },
    /// The checksum does not match: the key was mistyped or cut short.
    #[error("the key '{0}' has a wrong checksum: a character was mistyped, dropped or swapped. Copy the key again from its source")]
    Checksum(String),
    /// The text has another prefix than expected.
    #[error("expected a key starting with '{expected}1', but this one starts with '{found}1'")]
    WrongPrefix {
        /// The prefix we wanted.
        expected: &'static str,
        /// The prefix found.
        found: String,
    },
    /// The decoded key is not 32 bytes long.
    #[error("a key is 32 bytes, but this one decodes to {0} bytes")]
    Length(usize),
    /// The text form is valid bech32m but not the one canonical spelling of these bytes.
    #[error("the key '{0}' is not in canonical form: keys are written in lowercase, with zero padding bits. Copy it again, or re-export it with a current Kith tool")]
    NonCanonicalText(String),
    /// The bytes are not a point on the curve.
    #[error("the key {0} is not a valid ed25519 public key (not a point on the curve)")]
    NotOnCurve(String),
    /// The bytes encode a point in a non-canonical way (y coordinate not reduced).
    #[error("the key {0} uses a non-canonical point encoding; only canonical encodings are accepted so that one key has one identity")]
    NonCanonicalPoint(String),
    /// A small-order point: such a key can "verify" signatures nobody made.
    #[error("the key {0} is a weak (small-order) key that anyone could forge signatures for; it is refused")]
    Weak(String),
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        let head: String = text.chars().take(77).collect();
        format!("{head}...")
    } else {
        text.to_owned()
    }
}

fn encode_text(hrp: &str, bytes: &[u8; 32]) -> String {
    // The HRPs are compile-time constants that bech32 accepts, and 32 bytes is far below
    // the code length limit, so neither call can fail.
    let hrp = Hrp::parse_unchecked(hrp);
    bech32::encode_lower::<Bech32m>(hrp, bytes).unwrap_or_default()
}

fn decode_text(text: &str, expected: &'static str) -> Result<[u8; 32], KeyError> {
    let unchecked = UncheckedHrpstring::new(text).map_err(|e| KeyError::Malformed {
        text: shorten(text),
        reason: e.to_string(),
    })?;
    let found = unchecked.hrp().to_lowercase();
    if found != expected {
        return Err(KeyError::WrongPrefix {
            expected,
            found: shorten(&found),
        });
    }
    let checked = unchecked
        .validate_and_remove_checksum::<Bech32m>()
        .map_err(|_| KeyError::Checksum(shorten(text)))?;
    let bytes: Vec<u8> = checked.byte_iter().collect();
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Length(bytes.len()))?;
    // bech32 admits upper case and non-zero padding bits; accept only the one spelling
    // our encoder produces, so a key has exactly one text form.
    if encode_text(expected, &array) != text {
        return Err(KeyError::NonCanonicalText(shorten(text)));
    }
    Ok(array)
}

/// An ed25519 public key that is canonical and not weak: the identity of a member or node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Checks and wraps raw key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let vk = VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::NotOnCurve(hex::encode(bytes)))?;
        if vk.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyError::NonCanonicalPoint(hex::encode(bytes)));
        }
        if vk.is_weak() {
            return Err(KeyError::Weak(hex::encode(bytes)));
        }
        Ok(PublicKey(*bytes))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The dalek verifying key. Cannot fail: the bytes were checked on construction.
    pub(crate) fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// Strictly verifies an ed25519 signature over `message` (RFC 8032 with the extra
    /// checks of `verify_strict`: canonical S, canonical R, no small-order R or key).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.verifying_key()
            .is_some_and(|vk| vk.verify_strict(message, &sig).is_ok())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_text(PUBLIC_KEY_HRP, &self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        PublicKey::from_bytes(&decode_text(text, PUBLIC_KEY_HRP)?)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An ed25519 secret key (the 32-byte seed). Its `Debug` output is redacted and its memory
/// is wiped on drop.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from the caller's cryptographic RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// The key for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed. Handle with care.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        // A key derived from a seed is the base point times a clamped scalar: canonical and
        // never of small order.
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (pure ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The `kithsecret1…` text form.
    pub fn to_text(&self) -> String {
        encode_text(SECRET_KEY_HRP, &self.0.to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(for {}, redacted)", self.public_key())
    }
}

impl FromStr for SecretKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Ok(SecretKey::from_seed(&decode_text(
            text.trim(),
            SECRET_KEY_HRP,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    #[test]
    fn text_form_round_trips() {
        let sk = key(7);
        let pk = sk.public_key();
        let text = pk.to_string();
        assert!(text.starts_with("kith1"));
        assert_eq!(text.len(), 63);
        assert_eq!(text.parse::<PublicKey>(), Ok(pk));
        let sk2: SecretKey = sk.to_text().parse().unwrap();
        assert_eq!(sk2.to_seed(), sk.to_seed());
    }

    #[test]
    fn mistyped_key_is_caught_by_checksum() {
        let text = key(1).public_key().to_string();
        let mut chars: Vec<char> = text.chars().collect();
        chars[20] = if chars[20] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            typo.parse::<PublicKey>(),
            Err(KeyError::Checksum(_))
        ));
    }

    #[test]
    fn secret_is_not_accepted_as_public_and_vice_versa() {
        let sk = key(2);
        assert!(matches!(
            sk.to_text().parse::<PublicKey>(),
            Err(KeyError::WrongPrefix { .. })
        ));
        assert!(matches!(
            sk.public_key().to_string().parse::<SecretKey>(),
            Err(KeyError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn upper_case_is_not_canonical() {
        let text = key(3).public_key().to_string().to_uppercase();
        assert!(matches!(
            text.parse::<PublicKey>(),
            Err(KeyError::NonCanonicalText(_))
        ));
    }

    #[test]
    fn weak_and_invalid_points_are_refused() {
        // The identity point (0, 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            PublicKey::from_bytes(&identity),
            Err(KeyError::Weak(_))
        ));
        // y = p + 1 is a non-canonical encoding of the identity's y.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(PublicKey::from_bytes(&non_canonical).is_err());
    }

    #[test]
    fn debug_of_secret_is_redacted() {
        let sk = key(4);
        let debug = format!("{sk:?}");
        assert!(debug.contains("redacted"));
        assert!(!debug.contains(&sk.to_text()));
        assert!(!debug.contains(&hex::encode(sk.to_seed())));
    }
}
