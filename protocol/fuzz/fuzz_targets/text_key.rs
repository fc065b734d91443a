//! Arbitrary text as a key: parsing never panics, and a key that parses has exactly one
//! text form, the one it was parsed from.
#![no_main]

use kith_protocol::{PublicKey, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any 32 bytes: if accepted as a public key, its text form parses back to it.
    if let Ok(bytes) = <[u8; 32]>::try_from(data) {
        if let Ok(key) = PublicKey::from_bytes(&bytes) {
            assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        }
        let secret = SecretKey::from_seed(&bytes);
        let text = secret.to_text();
        let back: SecretKey = text.parse().expect("a secret key's own text parses");
        assert_eq!(back.to_seed(), bytes);
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<PublicKey>() {
        Ok(key) => {
            assert_eq!(
                key.to_string(),
                text,
                "a public key parsed from a non-canonical text"
            );
            assert_eq!(PublicKey::from_bytes(key.as_bytes()), Ok(key));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    match text.parse::<SecretKey>() {
        // Secret keys are read with surrounding white space trimmed (they are often pasted
        // from files); apart from that, the text must be the canonical one.
        Ok(key) => assert_eq!(
            key.to_text(),
            text.trim(),
            "a secret key parsed from a non-canonical text"
        ),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
