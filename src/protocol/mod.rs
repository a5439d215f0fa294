//! The sans-IO RFC 6455 protocol: bytes in, messages and bytes out. No sockets, no runtime, no JavaScript.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod receiver;
pub mod sender;
pub mod utf8;

/// A violation that ends the connection with a close frame carrying `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: u16,
    pub reason: &'static str,
}

/// Reasons given for malformed control frames (sack reports them as lowError 9).
pub const CONTROL_FRAME_ERRORS: &[&str] = &["fragmented control frame", "control frame too long", "invalid close frame payload", "invalid close code"];

impl ProtocolError {
    pub fn new(code: u16, reason: &'static str) -> Self {
        ProtocolError { code, reason }
    }

    pub fn is_control_frame_error(&self) -> bool {
        CONTROL_FRAME_ERRORS.contains(&self.reason)
    }
}
