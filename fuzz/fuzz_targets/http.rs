//! Plain HTTP requests on the WebSocket port: the request head, body framing and the chunked decoder with its
//! size limit, fed in pieces.
#![no_main]
use bytes::BytesMut;
use ferrows::protocol::handshake::parse_request;
use ferrows::protocol::http::{body_kind, keep_alive, BodyKind, ChunkedDecoder};
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((request, used))) = parse_request(data, 16 * 1024) else { return };
    let _ = keep_alive(&request);
    if let Ok(BodyKind::Chunked) = body_kind(&request, MAX_BODY) {
        let (mut decoder, mut input, mut body) = (ChunkedDecoder::default(), BytesMut::new(), BytesMut::new());
        for piece in data[used..].chunks(7) {
            input.extend_from_slice(piece);
            match decoder.decode(&mut input, &mut body, MAX_BODY) {
                Ok(true) | Err(_) => break,
                Ok(false) => {}
            }
        }
        assert!(body.len() <= MAX_BODY);
    }
});
