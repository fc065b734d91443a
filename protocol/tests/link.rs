//! The node-to-node link handshake (`kith_protocol::link`), driven in memory.
//!
//! - establishment: a dialer and a listener reach each other's keys, with and without an
//!   expected key, through the exact frames of the spec; the link message's layout;
//! - impostors: a wrong expected key on either side, tampered signatures and challenges, a
//!   signature made with the wrong role or by another key;
//! - replay: a recorded listener reply against a new challenge or another dialer, a recorded
//!   dialer proof against a new listener challenge;
//! - reflection: the dialer's own hello, challenge or signature echoed back;
//! - order and form: frames out of order or out of turn, malformed and oversized frames,
//!   wrong versions, forbidden or missing signatures; unknown members ignored;
//! - time: the 30-second limit, at and past the boundary, on frames and on `handle_timeout`;
//! - failure is final: after any error every call returns it again;
//! - proptest: random garbage and structured random frames never panic and never establish;
//!   a transcript with one byte changed never establishes with a wrong key.

mod common;

use kith_protocol::auth::login_message;
use kith_protocol::frame::{Bytes, FrameErrorKind};
use kith_protocol::link::{
    decode_link_frame, link_message, Dialer, LinkError, LinkFrame, LinkRole, Listener,
    HANDSHAKE_TIMEOUT_MS, LINK_MAGIC, LINK_MESSAGE_LEN, MAX_LINK_FRAME_BYTES,
};
use kith_protocol::{PublicKey, SecretKey, Timestamp};
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_700_000_000_000);
const DIALER_CHALLENGE: [u8; 32] = [0x11; 32];
const LISTENER_CHALLENGE: [u8; 32] = [0x22; 32];
/// Challenges of the machines fed garbage: fresh, unlike those of [`transcript`] (a real
/// transcript replayed to a machine with the same challenge does establish, which is why
/// challenges must be random).
const FRESH_DIALER_CHALLENGE: [u8; 32] = [0x66; 32];
const FRESH_LISTENER_CHALLENGE: [u8; 32] = [0x77; 32];

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

fn public(n: u8) -> PublicKey {
    key(n).public_key()
}

/// Dialer is node 1, listener node 2, each expecting the other.
fn pair() -> (Dialer, Listener) {
    (
        Dialer::new(key(1), Some(public(2)), DIALER_CHALLENGE, T0),
        Listener::new(key(2), Some(public(1)), LISTENER_CHALLENGE, T0),
    )
}

/// Moves frames both ways until neither side has anything to send; returns every frame in
/// the order sent.
fn drive(
    dialer: &mut Dialer,
    listener: &mut Listener,
    now: Timestamp,
) -> Result<Vec<String>, LinkError> {
    let mut transcript = Vec::new();
    loop {
        let mut moved = false;
        while let Some(frame) = dialer.poll_frame() {
            transcript.push(frame.clone());
            listener.handle_frame(&frame, now)?;
            moved = true;
        }
        while let Some(frame) = listener.poll_frame() {
            transcript.push(frame.clone());
            dialer.handle_frame(&frame, now)?;
            moved = true;
        }
        if !moved {
            return Ok(transcript);
        }
    }
}

/// A transcript of a successful handshake: dialer hello, listener hello, proof, ok.
fn transcript() -> Vec<String> {
    let (mut d, mut l) = pair();
    let frames = drive(&mut d, &mut l, T0).unwrap();
    assert_eq!(frames.len(), 4);
    frames
}

fn hello_fields(text: &str) -> (PublicKey, [u8; 32], Vec<u8>, Option<[u8; 64]>) {
    match decode_link_frame(text).unwrap() {
        LinkFrame::LinkHello {
            node,
            challenge,
            versions,
            signature,
        } => (node, challenge.0, versions, signature.map(|s| s.0)),
        other => panic!("expected a link_hello, got {other:?}"),
    }
}

fn encode(frame: &LinkFrame) -> String {
    kith_protocol::frame::encode_frame(frame)
}

fn hello(node: PublicKey, challenge: [u8; 32], signature: Option<[u8; 64]>) -> String {
    encode(&LinkFrame::LinkHello {
        node,
        challenge: Bytes(challenge),
        versions: vec![1],
        signature: signature.map(Bytes),
    })
}

fn proof(signature: [u8; 64]) -> String {
    encode(&LinkFrame::LinkProof {
        signature: Bytes(signature),
    })
}

/// A dialer that has sent its hello and waits for the listener's.
fn waiting_dialer(expected: Option<PublicKey>) -> Dialer {
    let mut d = Dialer::new(key(1), expected, DIALER_CHALLENGE, T0);
    d.poll_frame().unwrap();
    d
}

/// A listener that has answered the dialer's hello and waits for the proof.
fn waiting_listener() -> Listener {
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    l.handle_frame(&hello(public(1), DIALER_CHALLENGE, None), T0)
        .unwrap();
    l.poll_frame().unwrap();
    l
}

/// The listener's correct signature for the dialer (node 1, `DIALER_CHALLENGE`).
fn listener_signature(listener_challenge: [u8; 32]) -> [u8; 64] {
    key(2).sign(&link_message(
        LinkRole::Listener,
        &public(2),
        &public(1),
        &DIALER_CHALLENGE,
        &listener_challenge,
    ))
}

fn flip(mut bytes: [u8; 64], bit: usize) -> [u8; 64] {
    bytes[bit / 8] ^= 1 << (bit % 8);
    bytes
}

// ---------------------------------------------------------------------------------------
// Establishment

#[test]
fn dialer_and_listener_establish() {
    let (mut d, mut l) = pair();
    assert_eq!(d.poll_timeout(), Some(T0.plus_millis(HANDSHAKE_TIMEOUT_MS)));
    assert_eq!(l.poll_timeout(), Some(T0.plus_millis(HANDSHAKE_TIMEOUT_MS)));
    assert_eq!(l.poll_frame(), None, "the listener waits for the dialer");
    let frames = drive(&mut d, &mut l, T0).unwrap();
    assert_eq!(d.is_established(), Some(public(2)));
    assert_eq!(l.is_established(), Some(public(1)));
    assert_eq!(d.poll_timeout(), None);
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(d.error(), None);
    assert_eq!(l.error(), None);

    let types: Vec<&str> = frames
        .iter()
        .map(|f| match decode_link_frame(f).unwrap() {
            LinkFrame::LinkHello { .. } => "link_hello",
            LinkFrame::LinkProof { .. } => "link_proof",
            LinkFrame::LinkOk => "link_ok",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(types, ["link_hello", "link_hello", "link_proof", "link_ok"]);
    for f in &frames {
        assert!(f.starts_with(r#"{"v":1,"type":"link_"#), "{f}");
    }
    assert_eq!(frames[3], r#"{"v":1,"type":"link_ok"}"#);
    let lengths: Vec<usize> = frames.iter().map(String::len).collect();
    assert_eq!(lengths, [174, 277, 130, 24], "as documented");

    let (node, challenge, versions, signature) = hello_fields(&frames[0]);
    assert_eq!(
        (node, challenge, versions, signature),
        (public(1), DIALER_CHALLENGE, vec![1], None)
    );
    assert!(!frames[0].contains("signature"), "{}", frames[0]);
    let (node, challenge, versions, signature) = hello_fields(&frames[1]);
    assert_eq!(
        (node, challenge, versions),
        (public(2), LISTENER_CHALLENGE, vec![1])
    );
    assert_eq!(signature, Some(listener_signature(LISTENER_CHALLENGE)));
    let dialer_signature = key(1).sign(&link_message(
        LinkRole::Dialer,
        &public(1),
        &public(2),
        &LISTENER_CHALLENGE,
        &DIALER_CHALLENGE,
    ));
    assert_eq!(frames[2], proof(dialer_signature));
}

#[test]
fn without_expected_keys_the_peer_key_is_learnt() {
    let mut d = Dialer::new(key(1), None, DIALER_CHALLENGE, T0);
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    drive(&mut d, &mut l, T0).unwrap();
    assert_eq!(d.is_established(), Some(public(2)));
    assert_eq!(l.is_established(), Some(public(1)));
}

#[test]
fn the_dialer_is_established_only_by_link_ok() {
    let (mut d, mut l) = pair();
    l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
    d.handle_frame(&l.poll_frame().unwrap(), T0).unwrap();
    assert_eq!(
        d.is_established(),
        None,
        "the listener has not accepted yet"
    );
    l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
    assert_eq!(l.is_established(), Some(public(1)));
    assert_eq!(d.is_established(), None);
    d.handle_frame(&l.poll_frame().unwrap(), T0).unwrap();
    assert_eq!(d.is_established(), Some(public(2)));
}

#[test]
fn link_message_layout() {
    let msg = link_message(LinkRole::Dialer, &public(1), &public(2), &[3; 32], &[4; 32]);
    assert_eq!(msg.len(), LINK_MESSAGE_LEN);
    assert_eq!(LINK_MESSAGE_LEN, 140);
    assert_eq!(&msg[..11], b"KITH-LINK-1");
    assert_eq!(LINK_MAGIC, b"KITH-LINK-1");
    assert_eq!(msg[11], 0x01);
    assert_eq!(&msg[12..44], public(1).as_bytes());
    assert_eq!(&msg[44..76], public(2).as_bytes());
    assert_eq!(&msg[76..108], &[3; 32]);
    assert_eq!(&msg[108..140], &[4; 32]);
    let listener = link_message(
        LinkRole::Listener,
        &public(1),
        &public(2),
        &[3; 32],
        &[4; 32],
    );
    assert_eq!(listener[11], 0x02);
    assert_eq!(&listener[..11], &msg[..11]);
    assert_eq!(&listener[12..], &msg[12..]);
    // Never a login message, nor an event header ("KITH" 0x01).
    let login = login_message(&public(2), &[3; 32]);
    assert_ne!(&msg[..login.len().min(12)], &login[..12]);
    assert_ne!(msg[4], 0x01);
    assert_eq!(msg[4], b'-');
}

// ---------------------------------------------------------------------------------------
// Impostors

#[test]
fn dialer_refuses_an_unexpected_listener_key() {
    let mut d = Dialer::new(key(1), Some(public(3)), DIALER_CHALLENGE, T0);
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    let err = drive(&mut d, &mut l, T0).unwrap_err();
    assert_eq!(
        err,
        LinkError::UnexpectedPeer {
            expected: public(3),
            found: public(2)
        }
    );
    assert!(err.to_string().contains("/.well-known/kith"), "{err}");
    assert_eq!(d.is_established(), None);
    assert_eq!(d.poll_frame(), None, "no proof is sent to an impostor");
    assert_eq!(l.is_established(), None);
}

#[test]
fn listener_refuses_an_unexpected_dialer_key_before_signing() {
    let mut d = Dialer::new(key(3), Some(public(2)), DIALER_CHALLENGE, T0);
    let mut l = Listener::new(key(2), Some(public(1)), LISTENER_CHALLENGE, T0);
    let err = drive(&mut d, &mut l, T0).unwrap_err();
    assert_eq!(
        err,
        LinkError::UnexpectedPeer {
            expected: public(1),
            found: public(3)
        }
    );
    assert_eq!(
        l.poll_frame(),
        None,
        "nothing is signed for an unwelcome dialer"
    );
}

#[test]
fn tampered_listener_signature_is_refused() {
    let good = listener_signature(LISTENER_CHALLENGE);
    for bit in [0, 7, 100, 255, 256, 511] {
        let mut d = waiting_dialer(Some(public(2)));
        let frame = hello(public(2), LISTENER_CHALLENGE, Some(flip(good, bit)));
        assert_eq!(
            d.handle_frame(&frame, T0),
            Err(LinkError::BadSignature { peer: public(2) }),
            "bit {bit}"
        );
        assert_eq!(d.poll_frame(), None);
    }
}

#[test]
fn tampered_listener_challenge_is_refused() {
    let mut d = waiting_dialer(Some(public(2)));
    let mut challenge = LISTENER_CHALLENGE;
    challenge[31] ^= 1;
    let frame = hello(
        public(2),
        challenge,
        Some(listener_signature(LISTENER_CHALLENGE)),
    );
    assert_eq!(
        d.handle_frame(&frame, T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
}

#[test]
fn tampered_dialer_proof_is_refused() {
    let frames = transcript();
    let LinkFrame::LinkProof { signature } = decode_link_frame(&frames[2]).unwrap() else {
        panic!("the third frame is the proof");
    };
    for bit in [0, 9, 300, 511] {
        let mut l = waiting_listener();
        assert_eq!(
            l.handle_frame(&proof(flip(signature.0, bit)), T0),
            Err(LinkError::BadSignature { peer: public(1) }),
            "bit {bit}"
        );
        assert_eq!(l.poll_frame(), None, "no link_ok for a bad proof");
        assert_eq!(l.is_established(), None);
    }
}

#[test]
fn a_signature_by_another_key_is_refused() {
    // Node 3 signs exactly what node 2 should have signed, but claims to be node 2.
    let forged = key(3).sign(&link_message(
        LinkRole::Listener,
        &public(2),
        &public(1),
        &DIALER_CHALLENGE,
        &LISTENER_CHALLENGE,
    ));
    let mut d = waiting_dialer(None);
    assert_eq!(
        d.handle_frame(&hello(public(2), LISTENER_CHALLENGE, Some(forged)), T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
}

#[test]
fn a_signature_with_the_wrong_role_is_refused() {
    // The listener's key signing the right fields with the dialer's role byte.
    let wrong_role = key(2).sign(&link_message(
        LinkRole::Dialer,
        &public(2),
        &public(1),
        &DIALER_CHALLENGE,
        &LISTENER_CHALLENGE,
    ));
    let mut d = waiting_dialer(Some(public(2)));
    assert_eq!(
        d.handle_frame(&hello(public(2), LISTENER_CHALLENGE, Some(wrong_role)), T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
    // And the dialer's key signing its proof fields with the listener's role byte.
    let wrong_role = key(1).sign(&link_message(
        LinkRole::Listener,
        &public(1),
        &public(2),
        &LISTENER_CHALLENGE,
        &DIALER_CHALLENGE,
    ));
    let mut l = waiting_listener();
    assert_eq!(
        l.handle_frame(&proof(wrong_role), T0),
        Err(LinkError::BadSignature { peer: public(1) })
    );
}

#[test]
fn a_login_signature_is_no_link_signature() {
    // Node 2 signed a login for node 1 with the dialer's challenge: it must not pass as
    // node 2's link_hello signature.
    let login = key(2).sign(&login_message(&public(1), &DIALER_CHALLENGE));
    let mut d = waiting_dialer(Some(public(2)));
    assert_eq!(
        d.handle_frame(&hello(public(2), LISTENER_CHALLENGE, Some(login)), T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
}

// ---------------------------------------------------------------------------------------
// Replay

#[test]
fn a_recorded_listener_reply_fails_against_a_new_dialer_challenge() {
    let recorded = transcript()[1].clone();
    let mut d = Dialer::new(key(1), Some(public(2)), [0x33; 32], T0);
    d.poll_frame().unwrap();
    assert_eq!(
        d.handle_frame(&recorded, T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
    assert_eq!(d.poll_frame(), None);
}

#[test]
fn a_recorded_listener_reply_fails_for_another_dialer() {
    // Same challenge, but another dialer key: the signature names node 1, not node 4.
    let recorded = transcript()[1].clone();
    let mut d = Dialer::new(key(4), Some(public(2)), DIALER_CHALLENGE, T0);
    d.poll_frame().unwrap();
    assert_eq!(
        d.handle_frame(&recorded, T0),
        Err(LinkError::BadSignature { peer: public(2) })
    );
}

#[test]
fn a_recorded_dialer_proof_fails_against_a_new_listener_challenge() {
    let frames = transcript();
    let mut l = Listener::new(key(2), None, [0x44; 32], T0);
    l.handle_frame(&frames[0], T0).unwrap();
    l.poll_frame().unwrap();
    assert_eq!(
        l.handle_frame(&frames[2], T0),
        Err(LinkError::BadSignature { peer: public(1) })
    );
    assert_eq!(l.is_established(), None);
}

#[test]
fn a_recorded_dialer_proof_fails_at_another_listener() {
    // Node 5 uses the same challenge as node 2 did, but the proof names node 2.
    let frames = transcript();
    let mut l = Listener::new(key(5), None, LISTENER_CHALLENGE, T0);
    l.handle_frame(&frames[0], T0).unwrap();
    l.poll_frame().unwrap();
    assert_eq!(
        l.handle_frame(&frames[2], T0),
        Err(LinkError::BadSignature { peer: public(1) })
    );
}

// ---------------------------------------------------------------------------------------
// Reflection

#[test]
fn the_dialers_own_hello_reflected_is_refused() {
    for expected in [None, Some(public(2))] {
        let mut d = Dialer::new(key(1), expected, DIALER_CHALLENGE, T0);
        let own_hello = d.poll_frame().unwrap();
        assert_eq!(
            d.handle_frame(&own_hello, T0),
            Err(LinkError::OwnKey(public(1)))
        );
    }
}

#[test]
fn a_listener_echoing_the_dialers_challenge_is_refused() {
    // Even with a valid signature from the key the dialer expects.
    let echoed = DIALER_CHALLENGE;
    let signature = listener_signature(echoed);
    let mut d = waiting_dialer(Some(public(2)));
    assert_eq!(
        d.handle_frame(&hello(public(2), echoed, Some(signature)), T0),
        Err(LinkError::ChallengeReused)
    );
}

#[test]
fn a_dialer_echoing_the_listeners_challenge_is_refused() {
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    assert_eq!(
        l.handle_frame(&hello(public(1), LISTENER_CHALLENGE, None), T0),
        Err(LinkError::ChallengeReused)
    );
    assert_eq!(l.poll_frame(), None, "nothing signed");
}

#[test]
fn a_dialer_claiming_the_listeners_key_is_refused() {
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    assert_eq!(
        l.handle_frame(&hello(public(2), DIALER_CHALLENGE, None), T0),
        Err(LinkError::OwnKey(public(2)))
    );
}

#[test]
fn the_listeners_signature_reflected_as_a_proof_is_refused() {
    let frames = transcript();
    let (_, _, _, signature) = hello_fields(&frames[1]);
    let mut l = waiting_listener();
    assert_eq!(
        l.handle_frame(&proof(signature.unwrap()), T0),
        Err(LinkError::BadSignature { peer: public(1) })
    );
}

#[test]
fn the_listeners_hello_reflected_to_itself_is_refused() {
    let frames = transcript();
    let mut l = Listener::new(key(2), None, [0x55; 32], T0);
    // It carries the listener's own key (and a signature a dialer must not send).
    assert_eq!(
        l.handle_frame(&frames[1], T0),
        Err(LinkError::OwnKey(public(2)))
    );
}

// ---------------------------------------------------------------------------------------
// Order and form

#[test]
fn frames_out_of_order_are_refused() {
    let frames = transcript();
    let unexpected = |expected, got| LinkError::UnexpectedFrame { expected, got };

    // A listener wants link_hello first.
    for (frame, got) in [(&frames[2], "link_proof"), (&frames[3], "link_ok")] {
        let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
        assert_eq!(
            l.handle_frame(frame, T0),
            Err(unexpected("link_hello", got))
        );
    }
    // A dialer wants link_hello, then link_ok.
    for (frame, got) in [(&frames[2], "link_proof"), (&frames[3], "link_ok")] {
        let mut d = waiting_dialer(None);
        assert_eq!(
            d.handle_frame(frame, T0),
            Err(unexpected("link_hello", got))
        );
    }
    for (frame, got) in [(&frames[1], "link_hello"), (&frames[2], "link_proof")] {
        let (mut d, mut l) = pair();
        l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
        d.handle_frame(&l.poll_frame().unwrap(), T0).unwrap();
        d.poll_frame().unwrap();
        assert_eq!(d.handle_frame(frame, T0), Err(unexpected("link_ok", got)));
    }
    // A listener wants link_proof after the hello, not a second hello or link_ok.
    for (frame, got) in [(&frames[0], "link_hello"), (&frames[3], "link_ok")] {
        let mut l = waiting_listener();
        assert_eq!(
            l.handle_frame(frame, T0),
            Err(unexpected("link_proof", got))
        );
    }
}

#[test]
fn frames_out_of_turn_are_refused() {
    // The dialer has not sent its hello yet.
    let frames = transcript();
    let mut d = Dialer::new(key(1), Some(public(2)), DIALER_CHALLENGE, T0);
    assert_eq!(d.handle_frame(&frames[1], T0), Err(LinkError::OutOfTurn));
    // The listener has not sent its hello yet.
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    l.handle_frame(&frames[0], T0).unwrap();
    assert_eq!(l.handle_frame(&frames[2], T0), Err(LinkError::OutOfTurn));
    assert_eq!(l.poll_frame(), None, "a failed handshake sends nothing");
}

#[test]
fn frames_after_establishment_belong_to_the_link() {
    let (mut d, mut l) = pair();
    let frames = drive(&mut d, &mut l, T0).unwrap();
    assert_eq!(d.handle_frame(&frames[3], T0), Err(LinkError::Finished));
    assert_eq!(l.handle_frame(&frames[2], T0), Err(LinkError::Finished));
    assert_eq!(
        l.handle_frame("not even json", T0),
        Err(LinkError::Finished)
    );
    assert_eq!(d.is_established(), Some(public(2)), "still established");
    assert_eq!(l.is_established(), Some(public(1)));
    assert_eq!(
        d.handle_timeout(T0.plus_millis(10 * HANDSHAKE_TIMEOUT_MS)),
        Ok(())
    );
    assert_eq!(d.is_established(), Some(public(2)));
}

#[test]
fn signatures_where_they_do_not_belong_or_missing() {
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    assert_eq!(
        l.handle_frame(&hello(public(1), DIALER_CHALLENGE, Some([0; 64])), T0),
        Err(LinkError::UnexpectedSignature)
    );
    let mut d = waiting_dialer(Some(public(2)));
    assert_eq!(
        d.handle_frame(&hello(public(2), LISTENER_CHALLENGE, None), T0),
        Err(LinkError::MissingSignature)
    );
}

#[test]
fn versions_must_overlap() {
    for versions in [vec![], vec![2], vec![0, 2, 255]] {
        let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
        let frame = encode(&LinkFrame::LinkHello {
            node: public(1),
            challenge: Bytes(DIALER_CHALLENGE),
            versions: versions.clone(),
            signature: None,
        });
        assert_eq!(
            l.handle_frame(&frame, T0),
            Err(LinkError::NoCommonVersion {
                theirs: versions,
                ours: &[1]
            })
        );
    }
    // Several versions, one in common, is fine.
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    let frame = encode(&LinkFrame::LinkHello {
        node: public(1),
        challenge: Bytes(DIALER_CHALLENGE),
        versions: vec![3, 1, 2],
        signature: None,
    });
    l.handle_frame(&frame, T0).unwrap();
}

#[test]
fn malformed_frames_are_refused_with_the_reason() {
    let k1 = public(1).to_string();
    let c = "ERERERERERERERERERERERERERERERERERERERERERE=";
    let mut typo = k1.clone();
    typo.replace_range(20..21, if &k1[20..21] == "q" { "p" } else { "q" });
    type IsExpected = fn(&FrameErrorKind) -> bool;
    let cases: Vec<(String, IsExpected)> = vec![
        ("{nope".into(), |k| matches!(k, FrameErrorKind::NotJson(_))),
        ("".into(), |k| matches!(k, FrameErrorKind::NotJson(_))),
        ("[1,2]".into(), |k| matches!(k, FrameErrorKind::NotObject)),
        ("\"link_ok\"".into(), |k| {
            matches!(k, FrameErrorKind::NotObject)
        }),
        (r#"{"type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingVersion)
        }),
        (r#"{"v":"1","type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingVersion)
        }),
        (r#"{"v":1.0,"type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingVersion)
        }),
        (r#"{"v":-1,"type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingVersion)
        }),
        (r#"{"v":2,"type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::UnsupportedVersion { found: 2, .. })
        }),
        (r#"{"v":257,"type":"link_ok"}"#.into(), |k| {
            matches!(k, FrameErrorKind::UnsupportedVersion { found: 257, .. })
        }),
        (r#"{"v":1}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingType { .. })
        }),
        (r#"{"v":1,"type":3}"#.into(), |k| {
            matches!(k, FrameErrorKind::MissingType { .. })
        }),
        (r#"{"v":1,"type":"hello"}"#.into(), |k| {
            matches!(k, FrameErrorKind::UnknownType { .. })
        }),
        (r#"{"v":1,"type":"link_hello"}"#.into(), |k| {
            matches!(k, FrameErrorKind::BadFields { .. })
        }),
        (
            format!(r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"{c}"}}"#),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{typo}","challenge":"{c}","versions":[1]}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"ERER","versions":[1]}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"%%%%","versions":[1]}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"{c}","versions":[300]}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"{c}","versions":null}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
        (
            format!(
                r#"{{"v":1,"type":"link_hello","node":"{k1}","challenge":"{c}","versions":[1],"signature":"AAAA"}}"#
            ),
            |k| matches!(k, FrameErrorKind::BadFields { .. }),
        ),
    ];
    for (text, is_expected) in cases {
        let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
        match l.handle_frame(&text, T0) {
            Err(LinkError::Frame(e)) => {
                assert!(is_expected(&e.kind), "{text}: {e:?}");
                assert_eq!(e.id, None);
            }
            other => panic!("{text}: expected a frame error, got {other:?}"),
        }
        assert!(l.error().is_some());
        let mut d = waiting_dialer(None);
        assert!(
            matches!(d.handle_frame(&text, T0), Err(LinkError::Frame(_))),
            "{text}"
        );
    }
}

#[test]
fn unknown_members_are_ignored_and_null_is_absent() {
    let k1 = public(1).to_string();
    let c = "ERERERERERERERERERERERERERERERERERERERERERE=";
    let text = format!(
        r#"{{"extra":{{"a":[1]}},"versions":[1],"challenge":"{c}","signature":null,"node":"{k1}","type":"link_hello","v":1}}"#
    );
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    l.handle_frame(&text, T0).unwrap();
    assert!(l.poll_frame().is_some());
    assert_eq!(
        decode_link_frame(r#"{"v":1,"type":"link_ok","note":"hi"}"#),
        Ok(LinkFrame::LinkOk)
    );
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let padding = " ".repeat(MAX_LINK_FRAME_BYTES);
    let text = format!("{}{padding}", transcript()[0]);
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    assert_eq!(
        l.handle_frame(&text, T0),
        Err(LinkError::FrameTooLarge {
            size: text.len(),
            max: MAX_LINK_FRAME_BYTES
        })
    );
    // At the limit it is read.
    let frame = transcript()[0].clone();
    let text = format!("{frame}{}", " ".repeat(MAX_LINK_FRAME_BYTES - frame.len()));
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    l.handle_frame(&text, T0).unwrap();
}

// ---------------------------------------------------------------------------------------
// Time

#[test]
fn frames_up_to_the_limit_are_accepted() {
    let (mut d, mut l) = pair();
    drive(&mut d, &mut l, T0.plus_millis(HANDSHAKE_TIMEOUT_MS)).unwrap();
    assert_eq!(d.is_established(), Some(public(2)));
}

#[test]
fn frames_past_the_limit_are_refused() {
    let late = T0.plus_millis(HANDSHAKE_TIMEOUT_MS + 1);
    let timed_out = LinkError::TimedOut {
        limit_ms: HANDSHAKE_TIMEOUT_MS,
    };
    // The listener times out on the dialer's hello…
    let (mut d, mut l) = pair();
    assert_eq!(drive(&mut d, &mut l, late), Err(timed_out.clone()));
    assert_eq!(l.error(), Some(&timed_out));
    // …the dialer on the listener's hello…
    let (mut d, mut l) = pair();
    l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
    assert_eq!(
        d.handle_frame(&l.poll_frame().unwrap(), late),
        Err(timed_out.clone())
    );
    // …and on a link_ok that comes too late.
    let (mut d, mut l) = pair();
    l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
    d.handle_frame(&l.poll_frame().unwrap(), T0).unwrap();
    l.handle_frame(&d.poll_frame().unwrap(), T0).unwrap();
    assert_eq!(
        d.handle_frame(&l.poll_frame().unwrap(), late),
        Err(timed_out.clone())
    );
    assert_eq!(d.is_established(), None);
}

#[test]
fn handle_timeout_fails_a_stalled_handshake() {
    let timed_out = LinkError::TimedOut {
        limit_ms: HANDSHAKE_TIMEOUT_MS,
    };
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    let deadline = l.poll_timeout().unwrap();
    assert_eq!(deadline, T0.plus_millis(HANDSHAKE_TIMEOUT_MS));
    assert_eq!(l.handle_timeout(deadline), Ok(()));
    assert_eq!(
        l.handle_timeout(deadline.plus_millis(1)),
        Err(timed_out.clone())
    );
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(l.handle_frame(&transcript()[0], T0), Err(timed_out.clone()));

    let mut d = Dialer::new(key(1), None, DIALER_CHALLENGE, T0);
    assert_eq!(d.handle_timeout(T0), Ok(()));
    assert_eq!(
        d.handle_timeout(Timestamp(u64::MAX)),
        Err(timed_out.clone())
    );
    assert_eq!(
        d.poll_frame(),
        None,
        "a timed-out dialer sends nothing more"
    );
}

#[test]
fn a_clock_that_goes_back_does_not_break_the_handshake() {
    let (mut d, mut l) = pair();
    drive(&mut d, &mut l, Timestamp(T0.0 - 5_000)).unwrap();
    assert_eq!(l.is_established(), Some(public(1)));
}

// ---------------------------------------------------------------------------------------
// Failure is final

#[test]
fn after_a_failure_every_call_returns_the_error() {
    let frames = transcript();
    let mut l = Listener::new(key(2), None, LISTENER_CHALLENGE, T0);
    let err = l.handle_frame(&frames[2], T0).unwrap_err();
    for _ in 0..3 {
        assert_eq!(l.handle_frame(&frames[0], T0), Err(err.clone()));
        assert_eq!(l.handle_timeout(T0), Err(err.clone()));
    }
    assert_eq!(l.poll_frame(), None);
    assert_eq!(l.is_established(), None);
    assert_eq!(l.error(), Some(&err));

    let mut d = waiting_dialer(Some(public(2)));
    let err = d.handle_frame("{", T0).unwrap_err();
    assert_eq!(d.handle_frame(&frames[1], T0), Err(err.clone()));
    assert_eq!(d.handle_frame(&frames[3], T0), Err(err.clone()));
    assert_eq!(d.poll_frame(), None);
    assert_eq!(d.is_established(), None);
}

#[test]
fn error_messages_say_what_to_check() {
    let timed_out = LinkError::TimedOut {
        limit_ms: HANDSHAKE_TIMEOUT_MS,
    };
    assert!(timed_out.to_string().contains("30000 ms"));
    assert!(LinkError::OutOfTurn.to_string().contains("poll_frame"));
    let own = LinkError::OwnKey(public(1)).to_string();
    assert!(own.contains(&public(1).to_string()), "{own}");
    let versions = LinkError::NoCommonVersion {
        theirs: vec![2],
        ours: &[1],
    }
    .to_string();
    assert!(versions.contains("needs updating"), "{versions}");
}

// ---------------------------------------------------------------------------------------
// Properties

fn config(cases: u32) -> ProptestConfig {
    common::proptest_config(cases, "proptest-regressions/link.txt")
}

/// Frames that are well-formed JSON of the right shape, with random content: they get past
/// the decoder and exercise the checks behind it.
fn structured_frame() -> impl Strategy<Value = String> {
    let node = prop_oneof![Just(1u8), Just(2), Just(3)].prop_map(public);
    let challenge = prop_oneof![
        Just(DIALER_CHALLENGE),
        Just(LISTENER_CHALLENGE),
        Just(FRESH_DIALER_CHALLENGE),
        Just(FRESH_LISTENER_CHALLENGE),
        any::<[u8; 32]>()
    ];
    let signature = proptest::option::of(prop::array::uniform32(any::<u8>()).prop_map(|half| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&half);
        s[32..].copy_from_slice(&half);
        s
    }));
    let versions = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        (node, challenge, versions, signature).prop_map(|(node, challenge, versions, sig)| {
            encode(&LinkFrame::LinkHello {
                node,
                challenge: Bytes(challenge),
                versions,
                signature: sig.map(Bytes),
            })
        }),
        prop::array::uniform32(any::<u8>()).prop_map(|half| {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(&half);
            proof(s)
        }),
        Just(encode(&LinkFrame::LinkOk)),
    ]
}

fn garbage_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,0-9a-z_ ]{0,80}",
        structured_frame(),
        // A valid frame of a real handshake, out of its place.
        (0usize..4).prop_map(|i| transcript()[i].clone()),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn garbage_never_panics_and_never_establishes(
        frames in prop::collection::vec(garbage_frame(), 1..6),
        step in 0u64..40_000,
    ) {
        let mut l = Listener::new(key(2), None, FRESH_LISTENER_CHALLENGE, T0);
        let mut d = Dialer::new(key(1), None, FRESH_DIALER_CHALLENGE, T0);
        d.poll_frame().unwrap();
        let mut now = T0;
        for frame in &frames {
            let _ = l.handle_frame(frame, now);
            let _ = l.poll_frame();
            let _ = d.handle_frame(frame, now);
            let _ = d.poll_frame();
            let _ = l.handle_timeout(now);
            now = now.plus_millis(step);
        }
        prop_assert_eq!(l.is_established(), None);
        prop_assert_eq!(d.is_established(), None);
    }

    #[test]
    fn decoding_garbage_never_panics(text in any::<String>()) {
        let _ = decode_link_frame(&text);
    }

    /// Whatever one byte of a real transcript is changed to, a side that still
    /// establishes has the right peer, and the dialer (the last to establish) only
    /// establishes if nothing changed.
    #[test]
    fn a_changed_byte_never_yields_a_wrong_peer(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let frames = transcript();
        let mut bytes = frames[which].clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let changed = String::from_utf8_lossy(&bytes).into_owned();

        let (mut d, mut l) = pair();
        for (n, frame) in frames.iter().enumerate() {
            let frame = if n == which { &changed } else { frame };
            // Each side must have sent what this step answers.
            let result = if n % 2 == 0 {
                let _ = d.poll_frame();
                l.handle_frame(frame, T0)
            } else {
                let _ = l.poll_frame();
                d.handle_frame(frame, T0)
            };
            if result.is_err() {
                break;
            }
        }
        prop_assert!(d.is_established().is_none_or(|k| k == public(2)));
        prop_assert!(l.is_established().is_none_or(|k| k == public(1)));
        if changed != frames[which] {
            prop_assert_eq!(d.is_established(), None);
        }
    }
}
