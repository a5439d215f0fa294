//! Why a socket or a connection ended badly, in one vocabulary for the whole network layer. The application
//! hears of each (when it listens) as a name; a face maps the names onto its own error numbers and events.

use bytes::Bytes;

use crate::protocol::close::{ABNORMAL, GOING_AWAY, POLICY_VIOLATION};
use crate::protocol::ProtocolError;

#[derive(Debug)]
pub enum Failure {
    /// The client went away before it sent a whole request.
    Dropped,
    /// No TLS handshake or request within the handshake timeout.
    Timeout,
    /// The request is not HTTP/1.x.
    BadRequest,
    TlsHandshake,
    /// The client asked for a server name no certificate is for.
    UnknownHost(String),
    /// A client that did not start TLS on a TLS port, with its first bytes.
    NotTls(Bytes),
    /// An open WebSocket broke a protocol rule.
    Protocol(ProtocolError),
    /// A client that does not read went over `maxBackpressure` with `closeOnBackpressureLimit`.
    Backpressure,
    /// Nobody can receive the connection's events any more (its thread went away).
    ConsumerGone,
    /// The client sent faster than `maxMessagesPerSecond` or `maxBytesPerSecond` allow.
    RateLimited,
}

impl Failure {
    /// The close code an open WebSocket ends with after this failure.
    pub fn close_code(&self) -> u16 {
        match self {
            Failure::Protocol(e) => e.close_code(),
            Failure::Backpressure | Failure::RateLimited => POLICY_VIOLATION,
            Failure::ConsumerGone => GOING_AWAY,
            _ => ABNORMAL,
        }
    }

    /// The reason sent with `close_code`.
    pub fn close_reason(&self) -> &'static str {
        match self {
            Failure::Protocol(e) => e.reason(),
            Failure::Backpressure => "backpressure limit",
            Failure::RateLimited => "rate limit",
            _ => "",
        }
    }

    /// The name the application knows the failure by; a protocol error gives its own.
    pub fn name(&self) -> &'static str {
        match self {
            Failure::Dropped => "dropped",
            Failure::Timeout => "timeout",
            Failure::BadRequest => "bad-request",
            Failure::TlsHandshake => "tls-handshake",
            Failure::UnknownHost(_) => "unknown-host",
            Failure::NotTls(_) => "not-tls",
            Failure::Protocol(e) => e.name(),
            Failure::Backpressure => "backpressure",
            Failure::ConsumerGone => "consumer-gone",
            Failure::RateLimited => "rate-limited",
        }
    }
}
