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

impl ProtocolError {
    pub fn new(code: u16, reason: &'static str) -> Self {
        ProtocolError { code, reason }
    }
}
