//! Frame headers (RFC 6455 §5.2): decoding what clients send, encoding what we send, and masking.

use bytes::{BufMut, BytesMut};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;
/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The largest header a frame can have: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as the three bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

impl FrameHeader {
    pub fn rsv1(&self) -> bool {
        self.rsv & 0b100 != 0
    }
}

/// A 64-bit length with the most significant bit set (§5.2 forbids it).
#[derive(Debug, PartialEq, Eq)]
pub struct LengthOverflow;

/// Decodes the header at the front of `buf`: `Ok(None)` while it is incomplete, else the header and its length.
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, LengthOverflow> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut pos) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let len = u64::from_be_bytes(buf[2..10].try_into().unwrap());
            if len >> 63 != 0 {
                return Err(LengthOverflow);
            }
            (len, 10)
        }
        n => (n as u64, 2),
    };
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    let header = FrameHeader { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0x0F, mask, payload_len };
    Ok(Some((header, pos)))
}

/// The header for a payload of `len` bytes: the first `.1` bytes of the array.
pub fn header_bytes(fin: bool, rsv1: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut bytes = [0; MAX_HEADER_LEN];
    let mut out = &mut bytes[..];
    let b0 = (fin as u8) << 7 | (rsv1 as u8) << 6 | opcode;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(mask_bit | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
    if let Some(m) = mask {
        out.put_slice(&m);
    }
    let written = MAX_HEADER_LEN - out.len();
    (bytes, written)
}

/// Appends a header for a payload of `len` bytes, with room reserved for the payload.
pub fn encode_header(out: &mut BytesMut, fin: bool, rsv1: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    let (header, written) = header_bytes(fin, rsv1, opcode, len, mask);
    out.reserve(written + len);
    out.put_slice(&header[..written]);
}

/// XORs `data` with `mask`, where `data` starts `offset` bytes into the masked payload.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = [0u8; 4];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(offset + i) & 3];
    }
    let key64 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().unwrap()) ^ key64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_length_encoding() {
        for len in [0usize, 125, 126, 65535, 65536, 1 << 20] {
            let mut out = BytesMut::new();
            encode_header(&mut out, true, false, OP_BINARY, len, Some([1, 2, 3, 4]));
            let (h, n) = decode_header(&out).unwrap().unwrap();
            assert_eq!(n, out.len());
            assert_eq!(h.payload_len, len as u64);
            assert_eq!(h.mask, Some([1, 2, 3, 4]));
            assert!(h.fin && h.opcode == OP_BINARY && h.rsv == 0);
            // Every strict prefix is incomplete, never an error.
            for cut in 0..n {
                assert_eq!(decode_header(&out[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn rejects_length_with_top_bit() {
        let buf = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode_header(&buf), Err(LengthOverflow));
    }

    #[test]
    fn reads_rsv_and_fin_bits() {
        let (h, _) = decode_header(&[0x71, 0x80, 0, 0, 0, 0]).unwrap().unwrap();
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b111);
        assert!(h.rsv1());
    }

    #[test]
    fn mask_round_trips_at_any_offset() {
        let original: Vec<u8> = (0..100u8).collect();
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        for split in 0..original.len() {
            let mut data = original.clone();
            let (a, b) = data.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            for (i, byte) in data.iter().enumerate() {
                assert_eq!(*byte, original[i] ^ mask[i % 4]);
            }
        }
    }
}
