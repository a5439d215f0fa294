//! Plain HTTP/1.1 on the WebSocket port (sack's `request` event): reading request bodies and framing
//! responses. Sans-IO like the rest of `protocol`: bytes in, bytes out.

use bytes::{Buf, BytesMut};

use super::handshake::{status_text, Rejection, Request};

pub const PAYLOAD_TOO_LARGE: Rejection = Rejection { status: 413, reason: "Payload Too Large", headers: &[] };
const BAD_BODY: Rejection = Rejection { status: 400, reason: "Malformed request body", headers: &[] };
const UNSUPPORTED_CODING: Rejection = Rejection { status: 501, reason: "Unsupported Transfer-Encoding", headers: &[] };

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(usize),
    Chunked,
}

/// Decides how the body of `req` is framed, refusing bodies over `max` bytes at once when the length is known.
pub fn body_kind(req: &Request, max: usize) -> Result<BodyKind, Rejection> {
    if let Some(te) = req.header("transfer-encoding") {
        return if te.trim().eq_ignore_ascii_case("chunked") { Ok(BodyKind::Chunked) } else { Err(UNSUPPORTED_CODING) };
    }
    let lengths: Vec<&str> = req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim()).collect();
    match lengths.as_slice() {
        [] => Ok(BodyKind::None),
        [first, rest @ ..] if rest.iter().all(|v| v == first) => match first.parse::<usize>() {
            Ok(n) if n > max => Err(PAYLOAD_TOO_LARGE),
            Ok(0) => Ok(BodyKind::None),
            Ok(n) => Ok(BodyKind::Length(n)),
            Err(_) => Err(BAD_BODY),
        },
        _ => Err(BAD_BODY), // conflicting lengths: a request smuggling attempt
    }
}

/// Incremental decoder of a chunked body.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    /// Bytes left in the current chunk, and whether its trailing CRLF is still due.
    remaining: usize,
    in_chunk: bool,
    done: bool,
}

impl ChunkedDecoder {
    /// Moves decoded bytes from `input` to `body`; Ok(true) once the last chunk and trailers are consumed.
    pub fn decode(&mut self, input: &mut BytesMut, body: &mut BytesMut, max: usize) -> Result<bool, Rejection> {
        loop {
            if self.done {
                return Ok(true);
            }
            if self.in_chunk {
                if self.remaining > 0 {
                    let take = self.remaining.min(input.len());
                    if body.len() + take > max {
                        return Err(PAYLOAD_TOO_LARGE);
                    }
                    body.extend_from_slice(&input[..take]);
                    input.advance(take);
                    self.remaining -= take;
                    if self.remaining > 0 {
                        return Ok(false);
                    }
                }
                if input.len() < 2 {
                    return Ok(false);
                }
                if &input[..2] != b"\r\n" {
                    return Err(BAD_BODY);
                }
                input.advance(2);
                self.in_chunk = false;
                continue;
            }
            match httparse::parse_chunk_size(input) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    // The last chunk: skip trailer fields up to the empty line.
                    let rest = &input[used..];
                    let Some(end) = find_trailers_end(rest) else { return Ok(false) };
                    input.advance(used + end);
                    self.done = true;
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    if size > (max - body.len()) as u64 {
                        return Err(PAYLOAD_TOO_LARGE);
                    }
                    input.advance(used);
                    self.remaining = size as usize;
                    self.in_chunk = true;
                }
                Ok(httparse::Status::Partial) if input.len() > 1024 => return Err(BAD_BODY),
                Ok(httparse::Status::Partial) => return Ok(false),
                Err(_) => return Err(BAD_BODY),
            }
        }
    }
}

/// The length of the trailer section including its final empty line, if complete.
fn find_trailers_end(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        return Some(2);
    }
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Whether the connection stays open after answering `req` (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only
/// with `Connection: keep-alive`).
pub fn keep_alive(req: &Request) -> bool {
    let connection = req.header("connection").unwrap_or("");
    let has = |token: &str| connection.split(',').any(|t| t.trim().eq_ignore_ascii_case(token));
    if req.version >= 1 {
        !has("close")
    } else {
        has("keep-alive")
    }
}

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    Close,
    /// HEAD requests and 1xx/204/304 answers carry no body.
    Empty,
}

/// A response head. `content_length` is the body length when the application knows it (given in a header or
/// because it ended the response in one call). Returns the bytes and the framing the body must use.
pub fn response_head(
    status: u16,
    reason: Option<&str>,
    headers: &[(String, String)],
    content_length: Option<usize>,
    req_version: u8,
    head_request: bool,
    keep_alive: bool,
) -> (Vec<u8>, Framing, bool) {
    let mut keep_alive = keep_alive && !headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let bodyless = head_request || status < 200 || status == 204 || status == 304;
    let framing = if bodyless {
        Framing::Empty
    } else if has("content-length") || content_length.is_some() {
        Framing::Length
    } else if req_version >= 1 {
        Framing::Chunked
    } else {
        keep_alive = false;
        Framing::Close
    };
    let reason = reason.filter(|r| !r.is_empty() && !r.contains(['\r', '\n'])).unwrap_or_else(|| status_text(status));
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        // Header injection: values and names with line breaks are dropped rather than sent.
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) || name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        if name.eq_ignore_ascii_case("connection") {
            continue; // written below from the decision taken here
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    match (framing, content_length) {
        (Framing::Length, Some(len)) if !has("content-length") => out.push_str(&format!("Content-Length: {len}\r\n")),
        (Framing::Chunked, _) => out.push_str("Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    out.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    (out.into_bytes(), framing, keep_alive)
}

/// Appends one body chunk in the given framing.
pub fn encode_body(out: &mut BytesMut, framing: Framing, data: &[u8]) {
    match framing {
        Framing::Empty => {}
        Framing::Chunked if data.is_empty() => {}
        Framing::Chunked => {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Length | Framing::Close => out.extend_from_slice(data),
    }
}

/// Appends what ends the body (the last chunk, for chunked framing).
pub fn encode_end(out: &mut BytesMut, framing: Framing) {
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::handshake::parse_request;

    fn req(text: &str) -> Request {
        parse_request(text.as_bytes(), 16384).unwrap().unwrap().0
    }

    #[test]
    fn body_framing_and_limits() {
        assert_eq!(body_kind(&req("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), 10), Ok(BodyKind::Length(5)));
        assert_eq!(body_kind(&req("POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n"), 10).unwrap_err().status, 413);
        assert_eq!(body_kind(&req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 10).unwrap_err().status, 400);
        assert_eq!(body_kind(&req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 10), Ok(BodyKind::Chunked));
        assert_eq!(body_kind(&req("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 10).unwrap_err().status, 501);
        assert_eq!(body_kind(&req("GET / HTTP/1.1\r\n\r\n"), 10), Ok(BodyKind::None));
    }

    #[test]
    fn decodes_chunked_bodies_in_any_split() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 1..wire.len() {
            let mut d = ChunkedDecoder::default();
            let mut input = BytesMut::from(&wire[..split]);
            let mut body = BytesMut::new();
            let mut done = d.decode(&mut input, &mut body, 100).unwrap();
            input.extend_from_slice(&wire[split..]);
            if !done {
                done = d.decode(&mut input, &mut body, 100).unwrap();
            }
            assert!(done, "split {split}");
            assert_eq!(&body[..], b"hello world");
            assert_eq!(&input[..], b"NEXT");
        }
        let mut input = BytesMut::from(&b"ff\r\n"[..]);
        assert_eq!(ChunkedDecoder::default().decode(&mut input, &mut BytesMut::new(), 100).unwrap_err().status, 413);
        let mut input = BytesMut::from(&b"zz\r\n"[..]);
        assert_eq!(ChunkedDecoder::default().decode(&mut input, &mut BytesMut::new(), 100).unwrap_err().status, 400);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(keep_alive(&req("GET / HTTP/1.1\r\n\r\n")));
        assert!(!keep_alive(&req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")));
        assert!(!keep_alive(&req("GET / HTTP/1.0\r\n\r\n")));
        assert!(keep_alive(&req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")));
    }

    #[test]
    fn response_heads() {
        let headers = vec![("Content-Type".to_string(), "text/plain".to_string()), ("X-Bad".to_string(), "a\r\nInjected: 1".to_string())];
        let (head, framing, keep) = response_head(404, None, &headers, Some(3), 1, false, true);
        let head = String::from_utf8(head).unwrap();
        assert_eq!(head, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!((framing, keep), (Framing::Length, true));
        let (head, framing, _) = response_head(200, Some("Fine"), &[], None, 1, false, true);
        assert!(String::from_utf8(head).unwrap().starts_with("HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\n"));
        assert_eq!(framing, Framing::Chunked);
        let (_, framing, keep) = response_head(200, None, &[], None, 0, false, true);
        assert_eq!((framing, keep), (Framing::Close, false));
        let (_, framing, _) = response_head(204, None, &[], None, 1, false, true);
        assert_eq!(framing, Framing::Empty);
        let mut out = BytesMut::new();
        encode_body(&mut out, Framing::Chunked, b"abc");
        encode_end(&mut out, Framing::Chunked);
        assert_eq!(&out[..], b"3\r\nabc\r\n0\r\n\r\n");
    }
}
