//! The protocol's rules, exported once for the faces, so that JavaScript keeps no copy of them: close codes, the
//! control-frame limits, the upgrade checks and answers, extension header parsing.

use napi::bindgen_prelude::*;

use crate::protocol::{close, deflate, frame, handshake};

/// The largest payload of a ping or pong.
#[napi]
pub const MAX_CONTROL_PAYLOAD: u32 = frame::MAX_CONTROL_PAYLOAD as u32;

/// The longest close reason, in bytes of UTF-8.
#[napi]
pub const MAX_CLOSE_REASON: u32 = close::MAX_REASON as u32;

/// Whether an application may send `code` in a close frame (RFC 6455 §7.4).
#[napi(catch_unwind)]
pub fn is_valid_close_code(code: f64) -> bool {
    code.fract() == 0.0 && (0.0..=u16::MAX as f64).contains(&code) && close::is_valid_code(code as u16)
}

/// Why an upgrade request is refused: the HTTP status, a message, and headers for the answer (alternating).
#[napi(object)]
pub struct UpgradeRefusal {
    pub status: u32,
    pub message: String,
    pub headers: Vec<String>,
}

/// Checks an upgrade request as the native side does (`headers` alternating names and values); None when valid.
/// `bad_version_status` answers an unsupported `Sec-WebSocket-Version` (426 by default; ws uses 400).
#[napi(catch_unwind)]
pub fn check_upgrade(method: String, http_version: String, headers: Vec<String>, bad_version_status: Option<u32>) -> Option<UpgradeRefusal> {
    let request = handshake::Request {
        method,
        target: String::new(),
        version: if http_version == "1.0" { 0 } else { 1 },
        headers: headers.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
    };
    let status = bad_version_status.and_then(|s| u16::try_from(s).ok()).unwrap_or(426);
    handshake::validate_upgrade(&request, status).err().map(|r| UpgradeRefusal {
        status: r.status as u32,
        message: r.reason.to_string(),
        headers: r.headers.iter().flat_map(|(n, v)| [n.to_string(), v.to_string()]).collect(),
    })
}

/// The status line and headers of the 101 answer to a client's `Sec-WebSocket-Key`.
#[napi(catch_unwind)]
pub fn answer_lines(key: String, protocol: Option<String>, extensions: Option<String>) -> Vec<String> {
    handshake::answer_lines(&key, protocol.as_deref(), extensions.as_deref())
}

/// A complete HTTP error answer that closes the connection (`headers` alternating names and values).
#[napi(catch_unwind)]
pub fn error_response(status: u32, body: Option<String>, headers: Option<Vec<String>>) -> Buffer {
    let status = u16::try_from(status).unwrap_or(500);
    let body = body.unwrap_or_else(|| handshake::status_text(status).to_string());
    let headers = headers.unwrap_or_default();
    let pairs: Vec<(&str, &str)> = headers
        .chunks_exact(2)
        .filter(|p| !p[0].contains(['\r', '\n', ':']) && !p[1].contains(['\r', '\n']))
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    handshake::error_response(status, &body, &pairs).into()
}

/// Whether every permessage-deflate offer in a `Sec-WebSocket-Extensions` value is well formed.
#[napi(catch_unwind)]
pub fn check_deflate_offers(header: String) -> bool {
    deflate::offers_are_valid(&header)
}

#[napi(object)]
pub struct ExtensionParam {
    pub name: String,
    pub value: Option<String>,
}

#[napi(object)]
pub struct ExtensionOffer {
    pub name: String,
    pub params: Vec<ExtensionParam>,
}

/// A `Sec-WebSocket-Extensions` value as offered, in order; None when it is malformed.
#[napi(catch_unwind)]
pub fn parse_extensions(header: String) -> Option<Vec<ExtensionOffer>> {
    let offers = deflate::parse_extensions(&header).ok()?;
    Some(
        offers
            .into_iter()
            .map(|(name, params)| ExtensionOffer { name, params: params.into_iter().map(|(name, value)| ExtensionParam { name, value }).collect() })
            .collect(),
    )
}
