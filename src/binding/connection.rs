//! One WebSocket connection as JavaScript sees it: the module functions behind lib/native-connection.js's
//! `NativeConnection`, each taking the connection's handle number (see `handles`). The faces wrap it.

use std::sync::Arc;

use bytes::BytesMut;
use napi::bindgen_prelude::*;
use napi::{sys, Env, JsValue};

use super::{handles, pump};
use super::values::{self, Payload};
use crate::net::connection::CONNECTING;
use crate::net::Conn;
use crate::protocol::close;
use crate::protocol::sender::SMALL_MAX;
use crate::protocol::frame::{MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// What the client sent to open the connection.
#[napi(object)]
pub struct HandshakeInfo {
    pub method: String,
    /// The request target, query included.
    pub url: String,
    /// Names and values as received, alternating: [name, value, name, value, ...].
    pub headers: Vec<String>,
    /// Sub-protocols offered in `Sec-WebSocket-Protocol`, in order.
    pub protocols: Vec<String>,
    pub version: u32,
    /// The negotiated `Sec-WebSocket-Extensions` answer ('' when none).
    pub extensions: String,
    pub secure: bool,
    /// TLS only: the server name the client asked for, the protocol version and the ALPN protocol.
    pub servername: Option<String>,
    pub tls_version: Option<String>,
    pub alpn: Option<String>,
    /// The token given with an adopted socket.
    pub tag: u32,
}

/// How `sendAs` frames a message (each field defaults to a whole, compressible message).
#[napi(object)]
#[derive(Default)]
pub struct SendOptions {
    /// false: more frames of this message follow.
    pub fin: Option<bool>,
    /// This frame continues a message begun with `fin: false`.
    pub continuation: Option<bool>,
    /// false: not compressed even when permessage-deflate is on and the message is over the threshold.
    pub compress: Option<bool>,
}

/// The frame `queue_message` builds: the opcode (None: by the payload's type), whether it ends the message,
/// whether it may be compressed.
struct Framing {
    opcode: Option<u8>,
    fin: bool,
    compress: bool,
}

impl Framing {
    /// `send`'s: a whole message, compressible, text for a string and binary for bytes.
    const MESSAGE: Framing = Framing { opcode: None, fin: true, compress: true };
}

#[napi(object)]
pub struct SocketAddress {
    pub address: String,
    pub port: u32,
    pub family: String,
}

/// Both ends of a socket, for `error`/`lowError` events.
#[napi(object)]
pub struct SocketEnds {
    pub remote: SocketAddress,
    pub local: SocketAddress,
}

pub fn socket_address(addr: std::net::SocketAddr) -> SocketAddress {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(addr.ip()),
        ip => ip,
    };
    SocketAddress { address: ip.to_string(), port: addr.port() as u32, family: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into() }
}

/// The opening request.
#[napi(catch_unwind)]
pub fn connection_handshake(id: u32) -> Result<HandshakeInfo> {
    handles::with(id, |conn| {
        let h = conn.handshake();
        let request = h.request();
        Ok(HandshakeInfo {
            method: request.method,
            url: request.target,
            headers: request.headers.into_iter().flat_map(|(n, v)| [n, v]).collect(),
            protocols: h.upgrade.protocols.clone(),
            version: h.upgrade.version as u32,
            extensions: h.extensions.as_deref().unwrap_or_default().to_owned(),
            secure: h.tls.is_some(),
            servername: h.tls.as_ref().and_then(|t| t.server_name.clone()),
            tls_version: h.tls.as_ref().map(|t| t.version.clone()),
            alpn: h.tls.as_ref().and_then(|t| t.alpn.clone()),
            tag: h.tag,
        })
    })
}

/// The first sub-protocol the client offered (what an upgrade accepted without a choice selects).
#[napi(catch_unwind)]
pub fn connection_first_protocol(id: u32) -> Result<Option<String>> {
    handles::with(id, |conn| Ok(conn.handshake().upgrade.protocols.first().cloned()))
}

/// Hands the connection to a thread that called `acceptPosts(name)`; with `queue`, waits for one. False when no
/// thread takes it (it then stays here).
#[napi(catch_unwind)]
pub fn connection_post(id: u32, name: String, queue: Option<bool>) -> Result<bool> {
    handles::with(id, |conn| super::threads::post(conn, &name, queue.unwrap_or(false)))
}

#[napi(catch_unwind)]
pub fn connection_remote(id: u32) -> Result<SocketAddress> {
    handles::with(id, |conn| Ok(socket_address(conn.peer)))
}

#[napi(catch_unwind)]
pub fn connection_local(id: u32) -> Result<SocketAddress> {
    handles::with(id, |conn| Ok(socket_address(conn.local)))
}

/// Completes the upgrade (101, with `headers`: more `Name: value` lines); false if it was decided already.
#[napi(catch_unwind)]
pub fn connection_accept(id: u32, protocol: Option<String>, headers: Option<Vec<String>>) -> Result<bool> {
    handles::with(id, |conn| Ok(conn.accept(protocol.as_deref(), &headers.unwrap_or_default())))
}

/// Refuses the upgrade with an HTTP status, body and headers (names and values alternating); false if it was
/// decided already.
#[napi(catch_unwind)]
pub fn connection_reject(id: u32, status: Option<u32>, body: Option<String>, headers: Option<Vec<String>>) -> Result<bool> {
    let status = status.filter(|s| (400..600).contains(s)).unwrap_or(403) as u16;
    let body = body.unwrap_or_else(|| crate::protocol::handshake::status_text(status).to_string());
    let headers = headers.unwrap_or_default();
    let pairs: Vec<(&str, &str)> = headers
        .chunks(2)
        .filter(|p| p.len() == 2 && !p[0].contains(['\r', '\n', ':']) && !p[1].contains(['\r', '\n']))
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    handles::with(id, |conn| Ok(conn.reject(status, &body, &pairs)))
}

/// Sends a string as text, or the exact bytes of an ArrayBuffer, typed array, Buffer or DataView as binary.
/// Returns false when the connection is closing or closed (the data is dropped). JavaScript's
/// `connectionSend` (registered in `direct`).
pub(super) fn send(env: Env, id: u32, data: sys::napi_value) -> Result<bool> {
    handles::with(id, |conn| queue_message(conn, env, data, Framing::MESSAGE))
}

/// Like `send`, with the frame type given: `binary` false sends bytes as a text frame (ws's `{ binary: false }`),
/// true sends a string's UTF-8 as a binary frame. `options` sends a message in parts (`fin: false`, then
/// `continuation: true` for the frames after the first) or uncompressed (`compress: false`). JavaScript's
/// `connectionSendAs` (registered in `direct`).
pub(super) fn send_as(env: Env, id: u32, data: sys::napi_value, binary: bool, options: Option<SendOptions>) -> Result<bool> {
    let options = options.unwrap_or_default();
    let framing = Framing {
        opcode: Some(if options.continuation.unwrap_or(false) { OP_CONTINUATION } else if binary { OP_BINARY } else { OP_TEXT }),
        fin: options.fin.unwrap_or(true),
        compress: options.compress.unwrap_or(true),
    };
    handles::with(id, |conn| queue_message(conn, env, data, framing))
}

fn queue_message(conn: &Arc<Conn>, env: Env, data: sys::napi_value, framing: Framing) -> Result<bool> {
    // Closed or closing natively while JavaScript has not seen the close event yet: the frame is dropped.
    if conn.state() == CONNECTING {
        return Err(Error::from_reason("Connection is not open yet."));
    }
    let Framing { opcode, fin, compress } = framing;
    let part = !fin || opcode == Some(OP_CONTINUATION);
    let queued = unsafe {
        match values::payload(env.raw(), data)? {
            Some(Payload::Text) => {
                let opcode = opcode.unwrap_or(OP_TEXT);
                let bound = values::utf8_bound(env.raw(), data)?;
                if !part && bound <= SMALL_MAX && conn.sends_whole(bound, compress) {
                    // Measuring the string first would cost V8 as much as writing it.
                    conn.queue_small_frame(opcode, |buf| values::write_utf8(env.raw(), data, bound, buf))
                } else {
                    let len = values::utf8_len(env.raw(), data)?;
                    if part {
                        conn.queue_fragment(opcode, fin, len, |buf| values::write_utf8(env.raw(), data, len, buf))
                    } else if compress && conn.compresses(len) {
                        let mut text = BytesMut::with_capacity(len + 1);
                        values::write_utf8(env.raw(), data, len, &mut text);
                        conn.queue_compressed(opcode, &text)
                    } else {
                        conn.queue_frame(opcode, len, |buf| values::write_utf8(env.raw(), data, len, buf))
                    }
                }
            }
            Some(Payload::Binary(bytes)) => {
                let opcode = opcode.unwrap_or(OP_BINARY);
                if part {
                    conn.queue_fragment(opcode, fin, bytes.len(), |buf| buf.extend_from_slice(bytes))
                } else if compress && conn.compresses(bytes.len()) {
                    conn.queue_compressed(opcode, bytes)
                } else {
                    conn.send_frame(opcode, bytes)
                }
            }
            None => {
                return Err(Error::new(
                    Status::InvalidArg,
                    "send() takes a string, an ArrayBuffer, a typed array, a Buffer or a DataView",
                ))
            }
        }
    };
    if queued {
        conn.flush();
    }
    Ok(queued)
}

/// Sends a ping with an optional payload (up to MAX_CONTROL_PAYLOAD bytes).
#[napi(catch_unwind)]
pub fn connection_ping(env: Env, id: u32, data: Option<Unknown<'_>>) -> Result<bool> {
    control(env, id, OP_PING, data)
}

/// Sends a pong with an optional payload (up to MAX_CONTROL_PAYLOAD bytes).
#[napi(catch_unwind)]
pub fn connection_pong(env: Env, id: u32, data: Option<Unknown<'_>>) -> Result<bool> {
    control(env, id, OP_PONG, data)
}

fn control(env: Env, id: u32, opcode: u8, data: Option<Unknown<'_>>) -> Result<bool> {
    let payload = match data {
        None => bytes::Bytes::new(),
        Some(value) => unsafe { values::owned_bytes(env.raw(), value.raw())? }.unwrap_or_default(),
    };
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::new(Status::InvalidArg, format!("The data size must not be greater than {MAX_CONTROL_PAYLOAD} bytes")));
    }
    handles::with(id, |conn| {
        let queued = conn.queue_frame(opcode, payload.len(), |buf| buf.extend_from_slice(&payload));
        if queued {
            conn.flush();
        }
        Ok(queued)
    })
}

/// Starts the closing handshake; without a code the close frame has no payload (the peer sees 1005). A pending
/// upgrade is refused instead.
#[napi(catch_unwind)]
pub fn connection_close(id: u32, code: Option<u32>, reason: Option<String>) -> Result<()> {
    let reason = reason.unwrap_or_default();
    if reason.len() > close::MAX_REASON {
        return Err(Error::new(Status::InvalidArg, format!("The message must not be greater than {} bytes", close::MAX_REASON)));
    }
    let code = match code {
        None if reason.is_empty() => close::NO_STATUS,
        None => return Err(Error::new(Status::InvalidArg, "a close reason needs a close code")),
        Some(code) => u16::try_from(code)
            .ok()
            .filter(|&c| close::is_valid_code(c))
            .ok_or_else(|| Error::new(Status::InvalidArg, format!("invalid close code {code}")))?,
    };
    handles::with(id, |conn| {
        conn.close(code, reason.as_bytes());
        Ok(())
    })
}

/// Drops the connection without a closing handshake; it closes with 1006.
#[napi(catch_unwind)]
pub fn connection_terminate(id: u32) -> Result<()> {
    handles::with(id, |conn| {
        conn.terminate();
        Ok(())
    })
}

/// Stops (true) or restarts (false) reading messages.
#[napi(catch_unwind)]
pub fn connection_set_paused(id: u32, paused: bool) -> Result<()> {
    handles::with(id, |conn| {
        conn.set_paused(paused);
        Ok(())
    })
}

/// Data frames arrive one by one (kind FRAME) instead of assembled messages; call before accept().
#[napi(catch_unwind)]
pub fn connection_set_frames(id: u32, on: bool) -> Result<()> {
    handles::with(id, |conn| {
        conn.set_frames(on);
        Ok(())
    })
}

/// Pings and pongs arrive as events (kinds PING and PONG); without, they are answered and not reported.
#[napi(catch_unwind)]
pub fn connection_set_control_events(id: u32, on: bool) -> Result<()> {
    handles::with(id, |conn| {
        conn.set_control_events(on);
        Ok(())
    })
}

/// The messages of the connection with event slot `slot` arrive as bytes for Node Buffers (kinds TEXT_BYTES and
/// BINARY_BYTES), text included.
#[napi(catch_unwind)]
pub fn connection_set_node_buffers(slot: u32, on: bool) {
    pump::set_as_bytes(slot, on);
}

#[napi(catch_unwind)]
pub fn connection_set_no_delay(id: u32, on: bool) -> Result<()> {
    handles::with(id, |conn| conn.set_no_delay(on).map_err(|e| Error::from_reason(e.to_string())))
}

#[napi(catch_unwind)]
pub fn connection_set_aggregate(id: u32, on: bool) -> Result<()> {
    handles::with(id, |conn| {
        conn.set_aggregate(on);
        Ok(())
    })
}

/// Joins `topic` (see the server's `publish`); false if already subscribed or closed.
#[napi(catch_unwind)]
pub fn connection_subscribe(id: u32, topic: String) -> Result<bool> {
    let topic = values::topic_name(topic)?;
    handles::with(id, |conn| Ok(conn.server().topics.subscribe(conn, &topic)))
}

/// Leaves `topic`; false if not subscribed.
#[napi(catch_unwind)]
pub fn connection_unsubscribe(id: u32, topic: String) -> Result<bool> {
    let topic = values::topic_name(topic)?;
    handles::with(id, |conn| Ok(conn.server().topics.unsubscribe(conn, &topic)))
}

/// The topics this connection is subscribed to, in the order it joined them.
#[napi(catch_unwind)]
pub fn connection_topics(id: u32) -> Result<Vec<String>> {
    handles::with(id, |conn| Ok(conn.server().topics.of(conn)))
}

#[napi(catch_unwind)]
pub fn connection_buffered_amount(id: u32) -> Result<u32> {
    handles::with(id, |conn| Ok(conn.outbox.buffered().min(u32::MAX as usize) as u32))
}

#[napi(catch_unwind)]
pub fn connection_ready_state(id: u32) -> Result<u32> {
    handles::with(id, |conn| Ok(conn.state() as u32))
}

/// The handle's object was collected (lib/native-connection.js's FinalizationRegistry).
#[napi(catch_unwind)]
pub fn connection_release(id: u32) {
    handles::release(id);
}
