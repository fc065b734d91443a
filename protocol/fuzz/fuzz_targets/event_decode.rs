//! Arbitrary bytes as an event: decoding and validation never panic, a successful decode
//! re-encodes to exactly the input, and validation agrees with decoding.
#![no_main]

use kith_protocol::event::Event;
use kith_protocol::validate::{validate, validate_decoded};
use kith_protocol::{Limits, Timestamp};
use libfuzzer_sys::fuzz_target;

/// Limits under which only the format, the hashes and the signature can fail.
fn permissive() -> Limits {
    Limits {
        max_event_bytes: usize::MAX,
        max_body_bytes: u32::MAX,
        max_parents: usize::from(u8::MAX),
        max_text_chars: usize::MAX,
        max_future_skew_ms: u64::MAX,
    }
}

fuzz_target!(|data: &[u8]| {
    let decoded = Event::decode(data);
    if let Ok(event) = &decoded {
        // The wire form is kept byte for byte: one event, one encoding.
        assert_eq!(event.encode(), data, "decode then encode changed the bytes");
        assert_eq!(
            Event::decode(data).as_ref(),
            Ok(event),
            "decoding is not deterministic"
        );
        let header_len = event.header_bytes().len();
        assert_eq!(event.header().encoded_len(), header_len);
        assert_eq!(&data[..header_len], event.header_bytes());
        assert_eq!(&data[header_len..header_len + 64], &event.signature()[..]);

        // Dropping the body keeps the id and the signed header.
        let stub = event.without_body().encode();
        let stub_event = Event::decode(&stub).expect("a decoded event's stub decodes");
        assert_eq!(stub_event.id(), event.id());
        assert_eq!(stub_event.header_bytes(), event.header_bytes());

        // The body rules of the event's kind (a fuzzer cannot forge a signature, so this is
        // how it reaches the body parsers at all): they may refuse, never panic.
        if let (Some(spec), Some(body)) = (event.kind().spec(), event.body()) {
            let _ = (spec.check_body)(body, &Limits::default());
            let _ = (spec.check_body)(body, &permissive());
        }
    }

    // Each validation may verify a signature, the costly part: two of them per input.
    // Default limits and a realistic clock, then limits and a clock under which only the
    // format, the hashes and the signature can fail.
    let checks = [
        (Limits::default(), Timestamp(1_700_000_000_000)),
        (permissive(), Timestamp(u64::MAX)),
    ];
    for (limits, now) in checks {
        let verdict = validate(data, None, now, &limits);
        match &verdict {
            Ok(valid) => {
                let event = decoded
                    .as_ref()
                    .expect("validate accepted what decode refused");
                assert_eq!(&**valid, event);
                assert!(valid.body().is_some(), "a valid event has its body");
            }
            Err(error) => {
                // Every refusal has a code and a message.
                let _ = error.code();
                assert!(!error.to_string().is_empty());
            }
        }
        // Validating the decoded event reaches the same verdict (the size limit is only
        // checked on raw bytes, and the permissive limits have none).
        if let (Ok(event), true) = (&decoded, limits == permissive()) {
            let again = validate_decoded(event.clone(), now, &limits);
            assert_eq!(again.map(|_| ()), verdict.map(|_| ()));
        }
    }
});
