//! The sans-IO RFC 6455 protocol: bytes in, messages and bytes out. No sockets, no runtime, no JavaScript.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod packed_head;
pub mod receiver;
pub mod sender;
pub mod utf8;

/// A violation that ends the connection with a close frame: one variant per cause, and `close_code` the one place
/// that decides which code each gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A text message (or a fragment of one) is not UTF-8.
    InvalidUtf8,
    /// A close frame's reason is not UTF-8.
    InvalidCloseReason,
    /// A compressed message does not inflate.
    BadCompression,
    /// The message would exceed the receiver's limit (`size` is what it reached, at least).
    MessageTooBig { size: u64, max: u64 },
    /// One frame exceeds the largest frame accepted.
    FrameTooBig { size: u64, max: u64 },
    FragmentedControl,
    ControlTooLong,
    /// A close payload of one byte: a code needs two.
    BadClosePayload,
    /// A close code a peer may not send.
    BadCloseCode(u16),
    ReservedBits,
    Unmasked,
    /// A 64-bit length with its top bit set.
    BadLength,
    ContinuationWithoutMessage,
    MessageInsideFragmented,
    UnknownOpcode(u8),
}

impl ProtocolError {
    /// The close code the connection ends with (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        use ProtocolError::*;
        match self {
            InvalidUtf8 | InvalidCloseReason | BadCompression => close::INVALID_PAYLOAD,
            MessageTooBig { .. } | FrameTooBig { .. } => close::MESSAGE_TOO_BIG,
            FragmentedControl | ControlTooLong | BadClosePayload | BadCloseCode(_) | ReservedBits | Unmasked | BadLength
            | ContinuationWithoutMessage | MessageInsideFragmented | UnknownOpcode(_) => close::PROTOCOL_ERROR,
        }
    }

    /// The reason sent in the close frame.
    pub fn reason(&self) -> &'static str {
        use ProtocolError::*;
        match self {
            InvalidUtf8 => "invalid UTF-8 in text",
            InvalidCloseReason => "invalid UTF-8 in close reason",
            BadCompression => "invalid compressed data",
            MessageTooBig { .. } => "message too big",
            FrameTooBig { .. } => "frame too big",
            FragmentedControl => "fragmented control frame",
            ControlTooLong => "control frame too long",
            BadClosePayload => "invalid close frame payload",
            BadCloseCode(_) => "invalid close code",
            ReservedBits => "reserved bits set",
            Unmasked => "client frame not masked",
            BadLength => "invalid payload length",
            ContinuationWithoutMessage => "continuation without a message",
            MessageInsideFragmented => "new message inside a fragmented one",
            UnknownOpcode(_) => "unknown opcode",
        }
    }

    /// A stable name for the cause, for the application (`'message-too-big'`, `'fragmented-control'`, ...).
    pub fn name(&self) -> &'static str {
        use ProtocolError::*;
        match self {
            InvalidUtf8 => "invalid-utf8",
            InvalidCloseReason => "invalid-close-reason",
            BadCompression => "bad-compression",
            MessageTooBig { .. } => "message-too-big",
            FrameTooBig { .. } => "frame-too-big",
            FragmentedControl => "fragmented-control",
            ControlTooLong => "control-too-long",
            BadClosePayload => "bad-close-payload",
            BadCloseCode(_) => "bad-close-code",
            ReservedBits => "reserved-bits",
            Unmasked => "unmasked",
            BadLength => "bad-length",
            ContinuationWithoutMessage => "continuation-without-message",
            MessageInsideFragmented => "message-inside-fragmented",
            UnknownOpcode(_) => "unknown-opcode",
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::MessageTooBig { size, max } | ProtocolError::FrameTooBig { size, max } => {
                write!(f, "{} ({size} bytes, at most {max})", self.reason())
            }
            ProtocolError::BadCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            _ => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod robustness {
    //! Random input through every parser that reads what clients send: each must answer (a message, "need more",
    //! or an error) and never panic.
    use bytes::BytesMut;

    use super::deflate::{negotiate, parse_extensions, DeflateConfig, Inflater, Negotiated};
    use super::handshake::{parse_request, validate_upgrade};
    use super::http::{body_kind, ChunkedDecoder};
    use super::receiver::Receiver;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max: usize, alphabet: &[u8]) -> Vec<u8> {
            let len = (self.next() as usize) % max;
            (0..len)
                .map(|_| if alphabet.is_empty() { self.next() as u8 } else { alphabet[(self.next() as usize) % alphabet.len()] })
                .collect()
        }
    }

    #[test]
    fn random_frames_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let n = Negotiated { server_no_context_takeover: false, client_no_context_takeover: false, server_max_window_bits: 15, client_max_window_bits: 9 };
        for round in 0..20_000 {
            let mut rx = if round % 2 == 0 { Receiver::new(4096) } else { Receiver::new(4096).with_deflate(&n) };
            let mut buf = BytesMut::from(&rng.bytes(300, &[])[..]);
            // Bias towards plausible headers: masked, small lengths.
            if buf.len() > 2 && round % 3 == 0 {
                buf[1] |= 0x80;
                buf[1] &= 0xBF;
            }
            while let Ok(Some(_)) = rx.read(&mut buf) {}
        }
    }

    #[test]
    fn random_http_and_extension_headers_never_panic() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let alphabet = b"GET /?=&:; ,\"\r\nHTTP/1.1abcUpgrade:websocketConnection:keep-alive,upgrade0123456789-Key-Version13";
        let config = DeflateConfig { compress: true, client_max_window_bits: Some(10), threshold: 0, level: 1, ..Default::default() };
        for _ in 0..20_000 {
            let text = rng.bytes(200, alphabet);
            if let Ok(Some((req, _))) = parse_request(&text, 16384) {
                let _ = validate_upgrade(&req, 426);
                let _ = body_kind(&req, 1024);
            }
            let header = String::from_utf8_lossy(&text).into_owned();
            let _ = parse_extensions(&header);
            let _ = negotiate(&[&header], &config);
            let mut input = BytesMut::from(&text[..]);
            let _ = ChunkedDecoder::default().decode(&mut input, &mut BytesMut::new(), 1024);
            let n = Negotiated { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 15, client_max_window_bits: 15 };
            let _ = Inflater::new(&n).inflate(&text, true, 4096, &mut BytesMut::new());
        }
    }
}
