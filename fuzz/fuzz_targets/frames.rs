//! Frame headers and message assembly (`Receiver`), fed in pieces as socket reads deliver them. The first byte
//! picks the receiver's options and the piece size; every message it gives must respect the limits.
#![no_main]
use bytes::BytesMut;
use ferrows::protocol::deflate::Negotiated;
use ferrows::protocol::receiver::{Message, Receiver};
use libfuzzer_sys::fuzz_target;

const MAX_PAYLOAD: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&options, bytes)) = data.split_first() else { return };
    let mut receiver = Receiver::new(MAX_PAYLOAD);
    if options & 1 != 0 {
        let negotiated = Negotiated { server_no_context_takeover: false, client_no_context_takeover: options & 2 != 0, server_max_window_bits: 15, client_max_window_bits: 15 };
        receiver = receiver.with_deflate(&negotiated);
    }
    if options & 4 != 0 {
        receiver = receiver.with_max_frame(1024);
    }
    if options & 8 != 0 {
        receiver = receiver.with_frames();
    }
    let piece = 1 + usize::from(options >> 4) * 97;
    let mut buf = BytesMut::new();
    for chunk in bytes.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match receiver.read(&mut buf) {
                Ok(None) => break,
                Ok(Some(Message::Close(..))) | Err(_) => return, // the connection ends here
                Ok(Some(Message::Text(text))) => {
                    assert!(text.len() <= MAX_PAYLOAD);
                    assert!(std::str::from_utf8(&text).is_ok(), "text messages are valid UTF-8");
                }
                Ok(Some(Message::Binary(data))) => assert!(data.len() <= MAX_PAYLOAD),
                Ok(Some(Message::Ping(data) | Message::Pong(data))) => assert!(data.len() <= 125),
                Ok(Some(Message::Frame { data, .. })) => assert!(data.len() <= MAX_PAYLOAD),
            }
        }
    }
});
