//! Arbitrary text as a wire frame, from either side: decoding never panics, a decoded frame
//! survives encode → decode unchanged and its encoding is stable, and every error becomes
//! an error frame that itself round-trips.
#![no_main]

use kith_protocol::frame::{
    decode_client_frame, decode_node_frame, encode_frame, FrameError, NodeFrame,
};
use libfuzzer_sys::fuzz_target;

fn check_error(error: &FrameError) {
    let _ = error.code();
    let reply = error.to_frame();
    let text = encode_frame(&reply);
    let back: NodeFrame = decode_node_frame(&text).expect("an error frame decodes");
    assert_eq!(back, reply, "error frame changed on the way: {text}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match decode_client_frame(text) {
        Ok(frame) => {
            let encoded = encode_frame(&frame);
            let again = decode_client_frame(&encoded).expect("a re-encoded client frame decodes");
            assert_eq!(again, frame, "client frame changed: {text} -> {encoded}");
            assert_eq!(
                encode_frame(&again),
                encoded,
                "client frame encoding is not stable"
            );
        }
        Err(error) => check_error(&error),
    }

    match decode_node_frame(text) {
        Ok(frame) => {
            let encoded = encode_frame(&frame);
            let again = decode_node_frame(&encoded).expect("a re-encoded node frame decodes");
            assert_eq!(again, frame, "node frame changed: {text} -> {encoded}");
            assert_eq!(
                encode_frame(&again),
                encoded,
                "node frame encoding is not stable"
            );
        }
        Err(error) => check_error(&error),
    }
});
