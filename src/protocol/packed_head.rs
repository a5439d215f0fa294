//! An upgrade request's head as a connection keeps it for its whole life (the faces read its headers whenever the
//! application asks). The lines nearly every WebSocket client sends byte for byte alike — `Upgrade`, `Connection`,
//! `Sec-WebSocket-Version`, the common extension offer, and the key's line — are kept as one byte each: of the
//! 174 bytes of a typical request, 66 remain. Bytes below 0x09 cannot occur in a head that parses (httparse
//! refuses them in names and values), so they are free to stand for those lines; the first byte says whether the
//! head was packed at all.

/// Lines that are the same in most upgrade requests, each kept as the byte `index + 1`.
const COMMON_LINES: [&[u8]; 4] = [
    b"Upgrade: websocket\r\n",
    b"Connection: Upgrade\r\n",
    b"Sec-WebSocket-Version: 13\r\n",
    // ws's client and Chromium offer permessage-deflate this way.
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
];
/// Stands for `Sec-WebSocket-Key: <the connection's key>\r\n`.
const KEY_LINE: u8 = COMMON_LINES.len() as u8 + 1;
const KEY_PREFIX: &[u8] = b"Sec-WebSocket-Key: ";
/// The first byte of a packed head (a request line cannot start with it).
const PACKED: u8 = 0;

use super::handshake::{offered_key, Request};

/// A request head with its common lines replaced, made straight from the bytes received: no other copy of the
/// head is made, so nothing of it is left behind as a free fragment between blocks that live with the connection.
pub struct PackedHead(Box<[u8]>);

impl PackedHead {
    /// Packs `head`, which parsed as `request`.
    pub fn new(head: &[u8], request: &Request) -> Self {
        let key = offered_key(request);
        if head.iter().any(|&b| b <= KEY_LINE) {
            return PackedHead(head.into());
        }
        let key_line = [KEY_PREFIX, key.as_bytes(), b"\r\n"].concat();
        let pieces = || lines(head).map(|line| match COMMON_LINES.iter().position(|common| *common == line) {
            Some(index) => Piece::Byte(index as u8 + 1),
            None if line == key_line.as_slice() => Piece::Byte(KEY_LINE),
            None => Piece::Line(line),
        });
        // Measured first, then filled: one block of the exact size. A vector shrunk to fit would leave a free
        // fragment beside it (glibc splits the chunk in place).
        let len = 1 + pieces().map(|piece| piece.len()).sum::<usize>();
        let mut packed = vec![PACKED; len].into_boxed_slice();
        let mut at = 1;
        for piece in pieces() {
            let bytes = piece.bytes();
            packed[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        }
        PackedHead(packed)
    }

    /// The head as received. `key`: the request's `Sec-WebSocket-Key`, as `offered_key` read it.
    pub fn unpack(&self, key: &str) -> Vec<u8> {
        let Some((&PACKED, body)) = self.0.split_first() else { return self.0.to_vec() };
        let mut head = Vec::with_capacity(body.len() + 160);
        for &byte in body {
            match byte {
                KEY_LINE => {
                    head.extend_from_slice(KEY_PREFIX);
                    head.extend_from_slice(key.as_bytes());
                    head.extend_from_slice(b"\r\n");
                }
                line if (1..KEY_LINE).contains(&line) => head.extend_from_slice(COMMON_LINES[line as usize - 1]),
                byte => head.push(byte),
            }
        }
        head
    }
}

/// What one line of the head becomes.
enum Piece<'a> {
    Byte(u8),
    Line(&'a [u8]),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        self.bytes().len()
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Byte(byte) => std::slice::from_ref(byte),
            Piece::Line(line) => line,
        }
    }
}

/// The lines of `head`, each with its CRLF (the last one without, if the head lacks it).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = rest.windows(2).position(|w| w == b"\r\n").map_or(rest.len(), |at| at + 2);
        let (line, after) = rest.split_at(len);
        rest = after;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request_with_key(key: &str) -> Request {
        Request { method: "GET".into(), target: "/".into(), version: 1, headers: vec![("Sec-WebSocket-Key".into(), key.into())] }
    }

    /// The packed length.
    fn round_trip(head: &[u8]) -> usize {
        let packed = PackedHead::new(head, &request_with_key(KEY));
        assert_eq!(packed.unpack(KEY), head);
        packed.0.len()
    }

    #[test]
    fn a_typical_upgrade_keeps_only_its_own_lines() {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:9400\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\nUser-Agent: wsbench\r\n\r\n"
        );
        assert_eq!(head.len(), 174);
        assert_eq!(round_trip(head.as_bytes()), 66);
    }

    #[test]
    fn lines_that_differ_in_any_byte_stay_as_they_were() {
        let head = format!(
            "GET /chat?x=1 HTTP/1.1\r\nhost: a\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key:  {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        );
        // Only the version line is packed.
        assert_eq!(round_trip(head.as_bytes()), head.len() + 1 - (COMMON_LINES[2].len() - 1));
    }

    #[test]
    fn the_key_is_matched_as_the_handshake_reads_it() {
        let head = format!("GET / HTTP/1.1\r\nSec-WebSocket-Key: {KEY} \r\n\r\n");
        let packed = PackedHead::new(head.as_bytes(), &request_with_key(&format!("{KEY} ")));
        assert_eq!(packed.unpack(KEY), head.as_bytes());
    }

    #[test]
    fn a_key_line_for_another_key_is_kept() {
        let head = b"GET / HTTP/1.1\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n";
        assert_eq!(round_trip(head), head.len() + 1);
    }

    #[test]
    fn a_head_holding_the_bytes_that_stand_for_lines_is_kept_unpacked() {
        let head = b"GET / HTTP/1.1\r\nX: \x01\r\nUpgrade: websocket\r\n\r\n";
        let packed = PackedHead::new(head, &request_with_key(KEY));
        assert_eq!(&*packed.0, head);
        assert_eq!(packed.unpack(KEY), head);
    }

    #[test]
    fn a_head_without_a_final_line_break_survives() {
        assert_eq!(round_trip(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nHost"), 1 + 16 + 1 + 4);
    }
}
