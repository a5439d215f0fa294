//! The opening handshake (RFC 6455 §4.2): parsing an HTTP/1.1 request with httparse, checking that it is a valid
//! WebSocket upgrade, and writing the 101 answer or an HTTP error.

use base64::Engine;
use sha1::{Digest, Sha1};

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// As received: original case and order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header of that name, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True when the client asked to switch to WebSocket (an `Upgrade` header naming it).
    pub fn wants_websocket(&self) -> bool {
        self.header("upgrade").is_some_and(|u| has_token(u, "websocket"))
    }
}

/// An answer given instead of the upgrade: an HTTP status, a body and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
}

impl Rejection {
    const fn new(status: u16, reason: &'static str) -> Self {
        Rejection { status, reason, headers: &[] }
    }
}

pub const HEADERS_TOO_LARGE: Rejection = Rejection::new(431, "Request Header Fields Too Large");
pub const URI_TOO_LONG: Rejection = Rejection::new(414, "URI Too Long");
/// A request line longer than this is refused with 414 rather than 431.
const MAX_REQUEST_LINE: usize = 8 * 1024;
pub const MALFORMED: Rejection = Rejection::new(400, "Malformed HTTP request");
const SUPPORTED_VERSIONS: &[(&str, &str)] = &[("Sec-WebSocket-Version", "13, 8")];

/// Parses the request at the front of `buf`: `Ok(None)` while incomplete, else the request and its length.
pub fn parse_request(buf: &[u8], max_header_bytes: usize) -> Result<Option<(Request, usize)>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let too_large = || {
        let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap_or(buf.len());
        if line_end > MAX_REQUEST_LINE {
            URI_TOO_LONG
        } else {
            HEADERS_TOO_LARGE
        }
    };
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => Err(too_large()),
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) if len > max_header_bytes => Err(too_large()),
        Ok(httparse::Status::Complete(len)) => {
            let headers = req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let request = Request {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                version: req.version.unwrap_or(1),
                headers,
            };
            Ok(Some((request, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HEADERS_TOO_LARGE),
        Err(_) => Err(MALFORMED),
    }
}

/// What a valid upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub key: ClientKey,
    pub version: u8,
    /// Sub-protocols the client offered, in its order.
    pub protocols: Vec<String>,
}

/// A valid `Sec-WebSocket-Key`: 16 bytes in padded base64, always 24 characters. Kept inline: every connection
/// holds its handshake for its whole life, and a String would be an allocation of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey([u8; 24]);

impl ClientKey {
    pub fn as_str(&self) -> &str {
        // Base64 is ASCII; the fallback only keeps this panic-free.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn has_token(list: &str, token: &str) -> bool {
    list.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks a request against RFC 6455 §4.2.1. `bad_version_status` is the status for an unsupported
/// `Sec-WebSocket-Version` (426 as the RFC suggests; `ws` answers 400).
pub fn validate_upgrade(req: &Request, bad_version_status: u16) -> Result<Upgrade, Rejection> {
    if req.method != "GET" {
        return Err(Rejection::new(405, "Invalid HTTP method"));
    }
    if req.version != 1 {
        return Err(Rejection::new(400, "WebSocket needs HTTP/1.1"));
    }
    if !req.wants_websocket() {
        return Err(Rejection::new(400, "Invalid Upgrade header"));
    }
    if !req.header("connection").is_some_and(|c| has_token(c, "upgrade")) {
        return Err(Rejection::new(400, "Invalid Connection header"));
    }
    let key = offered_key(req);
    let decoded = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_default();
    let Some(key) = <[u8; 24]>::try_from(key.as_bytes()).ok().filter(|_| decoded.len() == 16) else {
        return Err(Rejection::new(400, "Missing or invalid Sec-WebSocket-Key header"));
    };
    let version = match req.header("sec-websocket-version").map(str::trim) {
        Some("13") => 13,
        Some("8") => 8,
        _ => {
            return Err(Rejection {
                status: bad_version_status,
                reason: "Missing or invalid Sec-WebSocket-Version header",
                headers: SUPPORTED_VERSIONS,
            })
        }
    };
    let mut protocols = Vec::new();
    for value in req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol")) {
        for p in value.1.split(',').map(str::trim) {
            if !is_token(p) || protocols.iter().any(|q| q == p) {
                return Err(Rejection::new(400, "Invalid Sec-WebSocket-Protocol header"));
            }
            protocols.push(p.to_string());
        }
    }
    Ok(Upgrade { key: ClientKey(key), version, protocols })
}

/// The request's `Sec-WebSocket-Key` value, trimmed ('' without one): a valid upgrade's key is these bytes.
pub fn offered_key(req: &Request) -> &str {
    req.header("sec-websocket-key").map(str::trim).unwrap_or("")
}

/// `Sec-WebSocket-Accept` for a client key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The status line and headers of the 101 answer to a client's key, one line each (ws shows them to its
/// 'headers' listeners).
pub fn answer_lines(key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<String> {
    let mut lines = vec![
        "HTTP/1.1 101 Switching Protocols".to_string(),
        "Upgrade: websocket".to_string(),
        "Connection: Upgrade".to_string(),
        format!("Sec-WebSocket-Accept: {}", accept_key(key)),
    ];
    if let Some(p) = protocol {
        lines.push(format!("Sec-WebSocket-Protocol: {p}"));
    }
    if let Some(e) = extensions {
        lines.push(format!("Sec-WebSocket-Extensions: {e}"));
    }
    lines
}

/// The 101 answer, given the client's key; `extra` are more header lines (`Name: value`), the unsafe ones dropped.
pub fn switching_protocols(key: &str, protocol: Option<&str>, extensions: Option<&str>, extra: &[String]) -> Vec<u8> {
    let mut out = String::new();
    let extra = extra.iter().filter(|l| l.contains(':') && !l.contains(['\r', '\n']));
    for line in answer_lines(key, protocol, extensions).iter().chain(extra) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A complete error answer that closes the connection.
pub fn error_response(status: u16, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        status_text(status),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The standard reason phrase for a status code.
pub fn status_text(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    fn parse(s: &str) -> Request {
        parse_request(s.as_bytes(), 16384).unwrap().unwrap().0
    }

    #[test]
    fn rfc_example_accept_key() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn parses_and_validates_a_good_request() {
        let (req, len) = parse_request(GOOD.as_bytes(), 16384).unwrap().unwrap();
        assert_eq!(len, GOOD.len());
        assert_eq!(req.target, "/chat?room=1");
        assert_eq!(req.headers[1], ("Upgrade".to_string(), "WebSocket".to_string()));
        let up = validate_upgrade(&req, 426).unwrap();
        assert_eq!(up.protocols, vec!["chat", "superchat"]);
        assert_eq!(up.version, 13);
        assert_eq!(up.key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn partial_then_too_large() {
        assert!(parse_request(&GOOD.as_bytes()[..40], 16384).unwrap().is_none());
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(20000));
        assert_eq!(parse_request(huge.as_bytes(), 16384).unwrap_err().status, 431);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\x01\r\n\r\n", 16384).unwrap_err().status, 400);
    }

    #[test]
    fn rejects_bad_upgrades() {
        let cases = [
            (GOOD.replace("GET", "POST"), 405),
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), 400),
            (GOOD.replace("Upgrade: WebSocket", "Upgrade: h2c"), 400),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
            (GOOD.replace("Version: 13", "Version: 7"), 426),
            (GOOD.replace("chat, superchat", "chat, chat"), 400),
        ];
        for (text, status) in cases {
            assert_eq!(validate_upgrade(&parse(&text), 426).unwrap_err().status, status, "{text}");
        }
        let err = validate_upgrade(&parse(&GOOD.replace("Version: 13", "Version: 7")), 400).unwrap_err();
        assert_eq!((err.status, err.headers), (400, SUPPORTED_VERSIONS));
    }

    #[test]
    fn answers() {
        let ok = String::from_utf8(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", Some("chat"), None, &["X-Extra: 1".into(), "Bad\r\nInjected: 1".into()])).unwrap();
        assert!(ok.contains("X-Extra: 1\r\n") && !ok.contains("Injected"));
        assert!(ok.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(ok.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(ok.contains("Sec-WebSocket-Protocol: chat\r\n") && ok.ends_with("\r\n\r\n"));
        let err = String::from_utf8(error_response(426, "Upgrade Required", &[("Sec-WebSocket-Version", "13, 8")])).unwrap();
        assert!(err.starts_with("HTTP/1.1 426 Upgrade Required\r\n") && err.ends_with("\r\n\r\nUpgrade Required"));
    }
}
