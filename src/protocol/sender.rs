//! Encoding the frames the server sends into a write buffer, so many frames leave in one write.

use bytes::BytesMut;

use super::frame::{apply_mask, encode_header, OP_CLOSE};

/// Appends one complete frame carrying `payload`; `mask` is only for servers configured to mask (sack's option).
pub fn encode_frame(out: &mut BytesMut, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    encode_frame_with(out, true, false, opcode, payload.len(), mask, |buf| buf.extend_from_slice(payload));
}

/// Appends one frame whose payload `write` appends (exactly `len` bytes, e.g. straight from a JavaScript
/// string, with no copy in between), masking it when `mask` is given.
pub fn encode_frame_with(out: &mut BytesMut, fin: bool, rsv1: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>, write: impl FnOnce(&mut BytesMut)) {
    encode_header(out, fin, rsv1, opcode, len, mask);
    let start = out.len();
    write(out);
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m, 0);
    }
}

/// The longest payload a frame's 2-byte header can carry.
pub const SMALL_MAX: usize = 125;

/// Appends one final, uncompressed frame whose payload `write` appends (at most `SMALL_MAX` bytes, its length
/// not known before: a JavaScript string's UTF-8 length costs V8 a pass over the string of its own). The length
/// goes into the header once the payload is written. Returns the payload's length.
pub fn encode_small_frame_with(out: &mut BytesMut, opcode: u8, mask: Option<[u8; 4]>, write: impl FnOnce(&mut BytesMut)) -> usize {
    let header = out.len();
    encode_header(out, true, false, opcode, 0, mask);
    let start = out.len();
    write(out);
    let len = out.len() - start;
    assert!(len <= SMALL_MAX, "a small frame's payload outgrew its header");
    out[header + 1] |= len as u8;
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m, 0);
    }
    len
}

/// Appends a close frame; code 1005 ("no status") is sent as an empty payload, as the RFC requires.
pub fn encode_close(out: &mut BytesMut, code: u16, reason: &[u8], mask: Option<[u8; 4]>) {
    if code == super::close::NO_STATUS {
        return encode_frame(out, OP_CLOSE, &[], mask);
    }
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    encode_frame(out, OP_CLOSE, &payload, mask);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{apply_mask, decode_header, OP_TEXT};

    #[test]
    fn frames_back_to_back() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, OP_TEXT, b"hi", None);
        encode_close(&mut out, 1000, b"done", None);
        assert_eq!(&out[..4], &[0x81, 2, b'h', b'i']);
        let (h, n) = decode_header(&out[4..]).unwrap().unwrap();
        assert_eq!((h.opcode, h.payload_len, n), (OP_CLOSE, 6, 2));
        assert_eq!(&out[6..8], &1000u16.to_be_bytes());
    }

    #[test]
    fn a_masked_frame_carries_its_key_and_unmasks_to_the_payload() {
        let mut out = BytesMut::new();
        let key = [1, 2, 3, 4];
        encode_frame_with(&mut out, false, true, OP_TEXT, 5, Some(key), |b| b.extend_from_slice(b"hello"));
        let (h, n) = decode_header(&out).unwrap().unwrap();
        assert_eq!((h.fin, h.rsv1(), h.opcode, h.mask, h.payload_len), (false, true, OP_TEXT, Some(key), 5));
        let mut payload = out[n..].to_vec();
        apply_mask(&mut payload, key, 0);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn a_small_frame_gets_its_length_after_its_payload() {
        let mut out = BytesMut::from(&b"x"[..]);
        let key = [9, 8, 7, 6];
        let len = encode_small_frame_with(&mut out, OP_TEXT, Some(key), |b| b.extend_from_slice(b"hello"));
        assert_eq!(len, 5);
        let (h, n) = decode_header(&out[1..]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.mask, h.payload_len, n), (true, OP_TEXT, Some(key), 5, 6));
        let mut payload = out[1 + n..].to_vec();
        apply_mask(&mut payload, key, 0);
        assert_eq!(payload, b"hello");
        let mut empty = BytesMut::new();
        assert_eq!(encode_small_frame_with(&mut empty, OP_TEXT, None, |_| ()), 0);
        assert_eq!(&empty[..], &[0x81, 0]);
    }

    #[test]
    fn no_status_is_an_empty_close() {
        let mut out = BytesMut::new();
        encode_close(&mut out, 1005, b"", None);
        assert_eq!(&out[..], &[0x88, 0]);
    }
}
