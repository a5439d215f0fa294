//! permessage-deflate (RFC 7692): negotiating the extension from a client's offers, and compressing and
//! inflating messages with flate2 (raw deflate, the pure-Rust zlib-rs backend).

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::ProtocolError;

const NAME: &str = "permessage-deflate";
/// The empty stored block every compressed message ends with, removed on the wire (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What the server accepts and asks for.
#[derive(Debug, Clone, Default)]
pub struct DeflateConfig {
    /// Compress outgoing messages (false: accept compressed input but answer uncompressed, sack's
    /// `perMessageDeflateAllow`).
    pub compress: bool,
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
    pub level: u32,
}

/// The parameters in force on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// A `Sec-WebSocket-Extensions` header that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedExtensions;

type Param = (String, Option<String>);

/// Parses `ext; p; p=v; p="v", ext2` into (name, params) in order.
pub fn parse_extensions(value: &str) -> Result<Vec<(String, Vec<Param>)>, MalformedExtensions> {
    fn token(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    }
    let mut out: Vec<(String, Vec<Param>)> = Vec::new();
    let mut chars = value.chars().peekable();
    let mut current: Vec<String> = vec![String::new()];
    let mut quoted_parts: Vec<bool> = vec![false];
    let finish = |parts: &mut Vec<String>, quoted: &mut Vec<bool>, out: &mut Vec<(String, Vec<Param>)>| {
        let items: Vec<(String, bool)> = parts.drain(..).zip(quoted.drain(..)).collect();
        parts.push(String::new());
        quoted.push(false);
        if items.iter().all(|(s, _)| s.trim().is_empty()) && items.len() == 1 {
            return Ok(()); // empty list element, allowed by #rule
        }
        let name = items[0].0.trim().to_string();
        if !token(&name) {
            return Err(MalformedExtensions);
        }
        let mut params = Vec::new();
        for (raw, was_quoted) in &items[1..] {
            let (key, val) = match raw.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                None => (raw.trim().to_string(), None),
            };
            if !token(&key) {
                return Err(MalformedExtensions);
            }
            if let Some(v) = &val {
                if !*was_quoted && !token(v) {
                    return Err(MalformedExtensions);
                }
            }
            params.push((key, val));
        }
        out.push((name, params));
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // A quoted value: copy until the closing quote, honouring backslash escapes.
                *quoted_parts.last_mut().unwrap() = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => current.last_mut().unwrap().push(chars.next().ok_or(MalformedExtensions)?),
                        Some(ch) => current.last_mut().unwrap().push(ch),
                        None => return Err(MalformedExtensions),
                    }
                }
            }
            ';' => {
                current.push(String::new());
                quoted_parts.push(false);
            }
            ',' => finish(&mut current, &mut quoted_parts, &mut out)?,
            c => current.last_mut().unwrap().push(c),
        }
    }
    finish(&mut current, &mut quoted_parts, &mut out)?;
    Ok(out)
}

fn window_bits(value: &str) -> Option<u8> {
    match value.parse::<u8>() {
        Ok(n @ 8..=15) if !value.starts_with('0') => Some(n),
        _ => None,
    }
}

/// Checks one offer against the configuration: the parameters to answer with, or None to decline it.
fn accept_offer(params: &[Param], config: &DeflateConfig) -> Option<Negotiated> {
    let mut seen: Vec<&str> = Vec::new();
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<Option<u8>> = None;
    for (key, value) in params {
        if seen.contains(&key.as_str()) {
            return None; // a duplicate parameter makes the offer invalid (§7.1)
        }
        seen.push(key);
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => server_nct = true,
            ("client_no_context_takeover", None) => client_nct = true,
            ("server_max_window_bits", Some(v)) => server_bits = Some(window_bits(v)?),
            ("client_max_window_bits", None) => client_bits = Some(None),
            ("client_max_window_bits", Some(v)) => client_bits = Some(Some(window_bits(v)?)),
            _ => return None,
        }
    }
    let server_max_window_bits = match (server_bits, config.server_max_window_bits) {
        (Some(asked), Some(ours)) => asked.min(ours),
        (Some(asked), None) => asked,
        (None, ours) => ours.unwrap_or(15),
    };
    let client_max_window_bits = match (client_bits, config.client_max_window_bits) {
        // The client can only be limited if it said it understands the parameter.
        (None, Some(_)) => return None,
        (None, None) | (Some(None), None) => 15,
        (Some(Some(offered)), ours) => offered.min(ours.unwrap_or(15)),
        (Some(None), Some(ours)) => ours,
    };
    Some(Negotiated {
        server_no_context_takeover: server_nct || config.server_no_context_takeover,
        client_no_context_takeover: client_nct || config.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// Whether every permessage-deflate offer in a `Sec-WebSocket-Extensions` value has valid parameters (known
/// names, no duplicates, window bits 8 to 15). `negotiate` declines an invalid offer, as RFC 7692 §5.1 asks;
/// ws refuses the whole handshake instead, and its face asks this first.
pub fn offers_are_valid(value: &str) -> bool {
    let permissive = DeflateConfig::default();
    parse_extensions(value).is_ok_and(|offers| offers.iter().filter(|(name, _)| name == NAME).all(|(_, params)| accept_offer(params, &permissive).is_some()))
}

/// Picks the first acceptable permessage-deflate offer among `headers` (each a `Sec-WebSocket-Extensions` value)
/// and returns it with the response header value. Ok(None): nothing acceptable, the extension is not used.
pub fn negotiate(headers: &[&str], config: &DeflateConfig) -> Result<Option<(Negotiated, String)>, MalformedExtensions> {
    let mut offers = Vec::new();
    for value in headers {
        offers.extend(parse_extensions(value)?);
    }
    for (name, params) in offers {
        if name != NAME {
            continue;
        }
        let Some(n) = accept_offer(&params, config) else { continue };
        let mut response = String::from(NAME);
        if n.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if n.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if params.iter().any(|(k, _)| k == "server_max_window_bits") || config.server_max_window_bits.is_some() {
            response.push_str(&format!("; server_max_window_bits={}", n.server_max_window_bits));
        }
        if params.iter().any(|(k, _)| k == "client_max_window_bits") && (n.client_max_window_bits < 15 || config.client_max_window_bits.is_some()) {
            response.push_str(&format!("; client_max_window_bits={}", n.client_max_window_bits));
        }
        return Ok(Some((n, response)));
    }
    Ok(None)
}

/// Compresses outgoing messages. The state is created on first use and may be dropped at any time: a fresh
/// compressor only loses back-references, which the peer never requires (§7.2.3.1 permits not using them).
pub struct Deflater {
    state: Option<Compress>,
    window_bits: u8,
    level: u32,
    no_context_takeover: bool,
}

impl Deflater {
    pub fn new(n: &Negotiated, level: u32) -> Self {
        // zlib cannot keep a raw deflate window of 256 bytes (it silently uses 512): for a negotiated window of 8
        // bits, stored blocks, which reference nothing, are the only compliant output.
        let level = if n.server_max_window_bits < 9 { 0 } else { level.min(9) };
        Deflater { state: None, window_bits: n.server_max_window_bits.max(9), level, no_context_takeover: n.server_no_context_takeover }
    }

    /// Appends the compressed form of `data` (without the 4-byte tail) to `out`.
    pub fn compress(&mut self, data: &[u8], out: &mut BytesMut) {
        let (level, bits) = (self.level, self.window_bits);
        let state = self.state.get_or_insert_with(|| Compress::new_with_window_bits(Compression::new(level), false, bits));
        let start = out.len();
        let first_in = state.total_in();
        loop {
            let consumed = (state.total_in() - first_in) as usize;
            let written = with_spare(out, data.len() / 2 + 1024, |spare| {
                let before = state.total_out();
                // Compressing into memory cannot fail; a BufError only means "no progress possible".
                let _ = state.compress(&data[consumed..], spare, FlushCompress::Sync);
                (state.total_out() - before) as usize
            });
            // A sync flush is complete once a call leaves output space unused.
            if (state.total_in() - first_in) as usize == data.len() && written.0 < written.1 {
                break;
            }
        }
        if out.len() - start >= 4 && out[out.len() - 4..] == TAIL {
            out.truncate(out.len() - 4);
        }
        if self.no_context_takeover {
            self.state = None;
        }
    }

    /// Frees the compression state (it is recreated when needed); true if there was one.
    pub fn release(&mut self) -> bool {
        self.state.take().is_some()
    }

}

/// Inflates incoming messages frame by frame, never past `max` bytes of output. With context takeover the
/// peer may refer back to its earlier messages, so their last bytes (at most one window) are kept: that lets
/// an idle connection drop the inflate state and rebuild it later from this history as a preset dictionary.
pub struct Inflater {
    state: Option<Decompress>,
    window_bits: u8,
    no_context_takeover: bool,
    history: Vec<u8>,
    /// Set by every message, cleared by the idle check.
    used: bool,
}

impl Inflater {
    pub fn new(n: &Negotiated) -> Self {
        // A bigger window than the peer's always decodes its stream; zlib-rs inflate takes 9 to 15.
        Inflater {
            state: None,
            window_bits: n.client_max_window_bits.max(9),
            no_context_takeover: n.client_no_context_takeover,
            history: Vec::new(),
            used: false,
        }
    }

    /// Inflates one frame's payload of a compressed message onto `out`; `last` marks the message's final frame.
    /// Stops with 1009 as soon as the output would pass `max`, without inflating the rest.
    pub fn inflate(&mut self, data: &[u8], last: bool, max: usize, out: &mut BytesMut) -> Result<(), ProtocolError> {
        self.used = true;
        let message_start = out.len();
        let (bits, history) = (self.window_bits, &self.history);
        let state = self.state.get_or_insert_with(|| {
            let mut state = Decompress::new_with_window_bits(false, bits);
            if !history.is_empty() {
                // Cannot fail on a fresh raw inflater.
                let _ = state.set_dictionary(history);
            }
            state
        });
        let tail: &[u8] = if last { &TAIL } else { &[] };
        for input in [data, tail] {
            let first_in = state.total_in();
            loop {
                let consumed = (state.total_in() - first_in) as usize;
                // Grow in steps proportional to the input, so a small message does not reserve a large buffer.
                let step = (input.len() * 4).clamp(1024, 64 * 1024);
                let room = (max + 1).saturating_sub(out.len()).min(step);
                let mut result = Ok(Status::Ok);
                let (written, offered) = with_spare(out, room, |spare| {
                    let before = state.total_out();
                    result = state.decompress(&input[consumed..], &mut spare[..room], FlushDecompress::Sync);
                    (state.total_out() - before) as usize
                });
                let status = result.map_err(|_| ProtocolError::BadCompression)?;
                if out.len() > max {
                    return Err(ProtocolError::MessageTooBig { size: out.len() as u64, max: max as u64 });
                }
                let all_in = (state.total_in() - first_in) as usize == input.len();
                if status == Status::StreamEnd {
                    // The peer ended the deflate stream (BFINAL): the next message starts a new one.
                    state.reset(false);
                    break;
                }
                if all_in && (written < offered.min(room) || written == 0) {
                    break;
                }
            }
        }
        if last {
            if self.no_context_takeover {
                self.state = None;
            } else {
                self.remember(&out[message_start..]);
            }
        }
        Ok(())
    }

    /// Keeps the last window of everything inflated so far.
    fn remember(&mut self, message: &[u8]) {
        let window = 1usize << self.window_bits;
        if message.len() >= window {
            self.history.clear();
            self.history.extend_from_slice(&message[message.len() - window..]);
        } else {
            let excess = (self.history.len() + message.len()).saturating_sub(window);
            self.history.drain(..excess);
            self.history.extend_from_slice(message);
        }
    }

    /// Drops the inflate state if no message came since the last call; only the history stays. True if it did.
    pub fn release_idle(&mut self) -> bool {
        if !std::mem::take(&mut self.used) && self.state.is_some() {
            self.state = None;
            self.history.shrink_to_fit();
            return true;
        }
        false
    }
}

/// Runs `fill` on at least `want` bytes of `out`'s spare capacity and commits what it wrote.
/// Returns (bytes written, bytes offered).
fn with_spare(out: &mut BytesMut, want: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> (usize, usize) {
    out.reserve(want.max(1));
    let spare = out.spare_capacity_mut();
    let offered = spare.len();
    // SAFETY: flate2 only writes into the slice and reports how many bytes it wrote; those are committed below.
    let spare = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), offered) };
    let written = fill(spare);
    unsafe { out.set_len(out.len() + written) };
    (written, offered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::close::{INVALID_PAYLOAD, MESSAGE_TOO_BIG};

    /// Compresses one message, checks that it inflates back unchanged, and returns its compressed size.
    fn round_trip(d: &mut Deflater, i: &mut Inflater, message: &[u8]) -> usize {
        let mut wire = BytesMut::new();
        d.compress(message, &mut wire);
        let mut out = BytesMut::new();
        i.inflate(&wire, true, 1 << 20, &mut out).unwrap();
        assert_eq!(&out[..], message);
        wire.len()
    }

    fn config() -> DeflateConfig {
        DeflateConfig { compress: true, threshold: 0, level: 6, ..Default::default() }
    }

    #[test]
    fn invalid_offers_are_told_apart_from_declinable_ones() {
        assert!(offers_are_valid("permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"));
        assert!(offers_are_valid("foo; bar=baz"));
        assert!(!offers_are_valid("permessage-deflate; server_max_window_bits=foo"));
        assert!(!offers_are_valid("permessage-deflate; server_no_context_takeover; server_no_context_takeover"));
        assert!(!offers_are_valid("permessage-deflate; unknown"));
        assert!(!offers_are_valid("permessage-deflate; =;"));
    }

    #[test]
    fn parses_offers_with_quotes_and_lists() {
        let parsed = parse_extensions("permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\", x-foo").unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].1, vec![("client_max_window_bits".to_string(), None)]);
        assert_eq!(parsed[1].1, vec![("server_max_window_bits".to_string(), Some("10".to_string()))]);
        assert_eq!(parse_extensions("permessage-deflate; =x"), Err(MalformedExtensions));
        assert_eq!(parse_extensions("permessage-deflate; a=\"unterminated"), Err(MalformedExtensions));
        assert_eq!(parse_extensions("bad name"), Err(MalformedExtensions));
    }

    #[test]
    fn negotiates_the_first_acceptable_offer() {
        let c = config();
        let (n, answer) = negotiate(&["permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits"], &c)
            .unwrap()
            .unwrap();
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(n.client_max_window_bits, 15);
        let (n, answer) = negotiate(&["permessage-deflate; server_no_context_takeover; server_max_window_bits=10"], &c).unwrap().unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");
        assert!(n.server_no_context_takeover);
        // Duplicate or unknown parameters decline the offer; other extensions are ignored.
        assert!(negotiate(&["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], &c).unwrap().is_none());
        assert!(negotiate(&["permessage-deflate; foo=1", "x-webkit-deflate-frame"], &c).unwrap().is_none());
        // The client's window can only be limited when it offered the parameter.
        let limited = DeflateConfig { client_max_window_bits: Some(10), ..config() };
        assert!(negotiate(&["permessage-deflate"], &limited).unwrap().is_none());
        let (_, answer) = negotiate(&["permessage-deflate; client_max_window_bits"], &limited).unwrap().unwrap();
        assert_eq!(answer, "permessage-deflate; client_max_window_bits=10");
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for nct in [false, true] {
            let n = Negotiated { server_no_context_takeover: nct, client_no_context_takeover: nct, server_max_window_bits: 15, client_max_window_bits: 15 };
            let mut d = Deflater::new(&n, 6);
            // Our output is what a client would send us: inflate it with the same parameters.
            let mut i = Inflater::new(&Negotiated { client_no_context_takeover: nct, client_max_window_bits: 15, ..n });
            for round in 0..3 {
                let message = format!("{{\"round\":{round},\"data\":\"{}\"}}", "abc".repeat(500));
                assert!(round_trip(&mut d, &mut i, message.as_bytes()) < message.len() / 4);
            }
        }
    }

    #[test]
    fn an_idle_inflater_rebuilds_its_window_from_history() {
        let n = Negotiated { server_no_context_takeover: false, client_no_context_takeover: false, server_max_window_bits: 15, client_max_window_bits: 15 };
        let mut d = Deflater::new(&n, 6);
        let mut i = Inflater::new(&n);
        let first = "the same words again and again ".repeat(20);
        round_trip(&mut d, &mut i, first.as_bytes());
        i.release_idle(); // used since the last check: kept
        assert!(i.state.is_some());
        i.release_idle();
        assert!(i.state.is_none());
        assert_eq!(i.history, first.as_bytes());
        // The next message refers back into the first one; the rebuilt inflater must still decode it.
        assert!(round_trip(&mut d, &mut i, first.as_bytes()) < 20);
    }

    #[test]
    fn window_of_eight_bits_uses_stored_blocks() {
        let n = Negotiated { server_no_context_takeover: false, client_no_context_takeover: false, server_max_window_bits: 8, client_max_window_bits: 8 };
        let mut d = Deflater::new(&n, 9);
        round_trip(&mut d, &mut Inflater::new(&n), "repetitive ".repeat(100).as_bytes());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let n = Negotiated { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 15, client_max_window_bits: 15 };
        let mut wire = BytesMut::new();
        Deflater::new(&n, 9).compress(&vec![0u8; 10 << 20], &mut wire);
        assert!(wire.len() < 20_000);
        let mut out = BytesMut::new();
        let err = Inflater::new(&n).inflate(&wire, true, 1 << 20, &mut out).unwrap_err();
        assert_eq!(err.close_code(), MESSAGE_TOO_BIG);
        assert!(out.len() <= (1 << 20) + 1);
        let garbage = Inflater::new(&n).inflate(&[0xFF, 0xFF, 0xFF], true, 1 << 20, &mut BytesMut::new()).unwrap_err();
        assert_eq!(garbage.close_code(), INVALID_PAYLOAD);
    }
}
