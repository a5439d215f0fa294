//! permessage-deflate's inflate with its output limit (the deflate-bomb guard): messages of one or more
//! frames on one context. The first byte picks the context options and the frame size.
#![no_main]
use bytes::BytesMut;
use ferrows::protocol::deflate::{Inflater, Negotiated};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&options, bytes)) = data.split_first() else { return };
    let negotiated = Negotiated {
        server_no_context_takeover: true,
        client_no_context_takeover: options & 1 != 0,
        server_max_window_bits: 15,
        client_max_window_bits: 8 + (options >> 1) % 8,
    };
    let mut inflater = Inflater::new(&negotiated);
    let frame = 1 + usize::from(options >> 4) * 31;
    // Two messages on the same context, each split into frames.
    for message in bytes.chunks(bytes.len().div_ceil(2).max(1)) {
        let mut out = BytesMut::new();
        let frames: Vec<&[u8]> = message.chunks(frame).collect();
        for (i, piece) in frames.iter().enumerate() {
            if inflater.inflate(piece, i + 1 == frames.len(), MAX, &mut out).is_err() {
                return;
            }
            assert!(out.len() <= MAX, "inflate stops at the limit");
        }
    }
});
