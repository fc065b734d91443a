//! Kith's ed25519 verification against public edge-case vectors.
//!
//! Two sets, both kept as files under `protocol/vectors/` (see the README beside each):
//!
//! - Wycheproof's `ed25519_test.json` (C2SP/Wycheproof, Apache-2.0): every case marked
//!   "valid" must be accepted and every case marked "invalid" rejected;
//! - the "Taming the many EdDSAs" cases (novifinancial/ed25519-speccheck, Apache-2.0):
//!   15 signatures built on small-order points, non-canonical encodings and out-of-range
//!   scalars, on which real libraries disagree. We assert exactly which ones Kith accepts.
//!
//! "Kith's verification" is what an event goes through: the key must pass
//! [`PublicKey::from_bytes`] (canonical, on the curve, not of small order) and the signature
//! must pass [`PublicKey::verify`] (strict RFC 8032). A key refused at the first step counts
//! as a rejection, exactly as an event with such an author is refused.
//!
//! Any case where our verdict differs from the file's label must be listed below with its
//! reason, so that every such difference is a decision, not an accident.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kith_protocol::PublicKey;
use serde::Deserialize;

/// Wycheproof cases labelled "valid" (or "acceptable") that Kith deliberately rejects, with
/// the reason. Empty: every "valid" case uses a sound key and a canonical signature.
const WYCHEPROOF_VALID_BUT_REJECTED: &[(u32, &str)] = &[];

/// Wycheproof cases labelled "invalid" that Kith accepts. Must stay empty: accepting any of
/// them would be a verification bug.
const WYCHEPROOF_INVALID_BUT_ACCEPTED: &[(u32, &str)] = &[];

/// The path of a file under `protocol/vectors/`.
fn vectors_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(relative)
}

/// Reads and parses a JSON vectors file.
fn read_json<T: serde::de::DeserializeOwned>(relative: &str) -> T {
    let path = vectors_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

/// Decodes hex that the vector files guarantee to be well-formed.
fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("bad hex in a vector file ({e}): {text}"))
}

/// Kith's verdict on one (key, message, signature) triple, as raw bytes of any length.
/// Wrong lengths are rejections: a key is 32 bytes and a signature 64, nothing else parses.
fn kith_accepts(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(signature))
    else {
        return false;
    };
    match PublicKey::from_bytes(&key) {
        Ok(key) => key.verify(message, &signature),
        Err(_) => false,
    }
}

/// The parts of Wycheproof's EdDSA verification schema that we read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofFile {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<WycheproofGroup>,
}

/// One group of cases sharing a public key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofGroup {
    public_key: WycheproofKey,
    tests: Vec<WycheproofCase>,
}

/// The raw public key of a group.
#[derive(Deserialize)]
struct WycheproofKey {
    curve: String,
    pk: String,
}

/// One signature to verify.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofCase {
    tc_id: u32,
    comment: String,
    msg: String,
    sig: String,
    result: String,
}

#[test]
fn wycheproof_ed25519_verdicts_match_the_labels() {
    let file: WycheproofFile = read_json("wycheproof/ed25519_test.json");
    assert_eq!(file.algorithm, "EDDSA");

    let mut seen = 0;
    let (mut accepted, mut rejected) = (0, 0);
    let mut valid_but_rejected = BTreeSet::new();
    let mut invalid_but_accepted = BTreeSet::new();
    for group in &file.test_groups {
        assert_eq!(group.public_key.curve, "edwards25519");
        let key = unhex(&group.public_key.pk);
        for case in &group.tests {
            seen += 1;
            let verdict = kith_accepts(&key, &unhex(&case.msg), &unhex(&case.sig));
            if verdict {
                accepted += 1;
            } else {
                rejected += 1;
            }
            match (case.result.as_str(), verdict) {
                ("valid" | "acceptable", false) => {
                    eprintln!(
                        "tcId {} ({}) is labelled {} but rejected",
                        case.tc_id, case.comment, case.result
                    );
                    valid_but_rejected.insert(case.tc_id);
                }
                ("invalid", true) => {
                    eprintln!(
                        "tcId {} ({}) is labelled invalid but accepted",
                        case.tc_id, case.comment
                    );
                    invalid_but_accepted.insert(case.tc_id);
                }
                ("valid" | "acceptable" | "invalid", _) => {}
                (other, _) => panic!("tcId {}: unknown result label {other:?}", case.tc_id),
            }
        }
    }
    println!(
        "wycheproof ed25519: {seen} cases, {accepted} accepted, {rejected} rejected, \
         {} documented deviations",
        valid_but_rejected.len() + invalid_but_accepted.len()
    );
    assert_eq!(seen, file.number_of_tests, "the file's own count");
    let ids = |list: &[(u32, &str)]| list.iter().map(|(id, _)| *id).collect::<BTreeSet<_>>();
    assert_eq!(valid_but_rejected, ids(WYCHEPROOF_VALID_BUT_REJECTED));
    assert_eq!(invalid_but_accepted, ids(WYCHEPROOF_INVALID_BUT_ACCEPTED));
}

/// One case of ed25519-speccheck's `cases.json`.
#[derive(Deserialize)]
struct SpeccheckCase {
    message: String,
    pub_key: String,
    signature: String,
}

/// Kith's expected verdict on each speccheck case, by index, with what the case is (from
/// the speccheck README) and why we accept or reject it. "Small" is a point of order 1, 2,
/// 4 or 8; "mixed" has a small-order component but is not itself small.
const SPECCHECK_EXPECTED: [(bool, &str); 15] = [
    (false, "S = 0, R and A small: A is a weak key, refused before verifying"),
    (false, "S = 0, R and A small (passes cofactorless elsewhere): A is a weak key"),
    (false, "S > 0, R mixed, A small: A is a weak key"),
    (false, "S > 0, R mixed, A small (passes cofactorless elsewhere): A is a weak key"),
    (false, "S > 0, R small, A mixed: strict verification refuses a small-order R"),
    (false, "S > 0, R small, A mixed (passes cofactorless elsewhere): small-order R"),
    (true, "S > 0, R and A mixed, passes the cofactorless equation: a sound signature under strict rules"),
    (false, "S > 0, R and A mixed, passes only the cofactored equation: we verify cofactorless"),
    (false, "the 'pre-reduced scalar' case, aimed at cofactored verifiers: fails the cofactorless equation"),
    (false, "S >= L (between 2^252 and 2^253): not canonical, a malleated signature"),
    (false, "S >= L (above 2^253): not canonical"),
    (false, "R a non-canonical encoding of a small point: refused"),
    (false, "R a non-canonical encoding of a small point (other message): refused"),
    (false, "A a non-canonical encoding of a small point: refused as a key"),
    (false, "A a non-canonical encoding of a small point (other message): refused as a key"),
];

#[test]
fn speccheck_cases_accept_only_the_sound_signature() {
    let cases: Vec<SpeccheckCase> = read_json("speccheck/cases.json");
    assert_eq!(cases.len(), SPECCHECK_EXPECTED.len());
    let mut accepted = 0;
    for (index, (case, (expected, why))) in cases.iter().zip(SPECCHECK_EXPECTED).enumerate() {
        let verdict = kith_accepts(
            &unhex(&case.pub_key),
            &unhex(&case.message),
            &unhex(&case.signature),
        );
        accepted += usize::from(verdict);
        assert_eq!(verdict, expected, "speccheck case {index}: {why}");
    }
    println!(
        "ed25519-speccheck: {} cases, {accepted} accepted, {} rejected",
        cases.len(),
        cases.len() - accepted
    );
}
