//! `NativeConnection`: one WebSocket connection as JavaScript sees it. The faces wrap it.

use std::ptr;
use std::sync::Arc;

use bytes::BytesMut;
use napi::bindgen_prelude::*;
use napi::{sys, Env, JsError, JsValue};

use super::pump;
use super::values::{self, Payload};
use crate::net::connection::CONNECTING;
use crate::net::Conn;
use crate::protocol::close;
use crate::protocol::frame::{MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

#[napi]
pub struct NativeConnection {
    conn: Arc<Conn>,
    /// Read when the object is made: the route forgets it once the connection ended, which may happen before
    /// JavaScript asks.
    slot: u32,
}

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

#[napi]
impl NativeConnection {
    pub fn new(conn: Arc<Conn>) -> Self {
        let slot = conn.slot();
        NativeConnection { conn, slot }
    }

    /// The slot this connection's events carry.
    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The opening request.
    #[napi(catch_unwind)]
    pub fn handshake(&self) -> HandshakeInfo {
        let h = self.conn.handshake();
        let request = h.request();
        HandshakeInfo {
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
        }
    }

    /// The first sub-protocol the client offered (what an upgrade accepted without a choice selects).
    #[napi(getter, catch_unwind)]
    pub fn first_protocol(&self) -> Option<String> {
        self.conn.handshake().upgrade.protocols.first().cloned()
    }

    /// Hands the connection to a thread that called `acceptPosts(name)`; with `queue`, waits for one. False
    /// when no thread takes it (it then stays here).
    #[napi(catch_unwind)]
    pub fn post(&self, name: String, queue: Option<bool>) -> Result<bool> {
        super::threads::post(&self.conn, &name, queue.unwrap_or(false))
    }

    #[napi(getter, catch_unwind)]
    pub fn remote(&self) -> SocketAddress {
        socket_address(self.conn.peer)
    }

    #[napi(getter, catch_unwind)]
    pub fn local(&self) -> SocketAddress {
        socket_address(self.conn.local)
    }

    /// Completes the upgrade (101, with `headers`: more `Name: value` lines); false if it was decided already.
    #[napi(catch_unwind)]
    pub fn accept(&self, protocol: Option<String>, headers: Option<Vec<String>>) -> bool {
        self.conn.accept(protocol.as_deref(), &headers.unwrap_or_default())
    }

    /// Sends a pong with an optional payload (up to MAX_CONTROL_PAYLOAD bytes).
    #[napi(catch_unwind)]
    pub fn pong(&self, env: Env, data: Option<Unknown<'_>>) -> Result<bool> {
        self.control(env, OP_PONG, data)
    }

    /// Drops the connection without a closing handshake; it closes with 1006.
    #[napi(catch_unwind)]
    pub fn terminate(&self) {
        self.conn.terminate();
    }

    /// Stops (true) or restarts (false) reading messages.
    #[napi(catch_unwind)]
    pub fn set_paused(&self, paused: bool) {
        self.conn.set_paused(paused);
    }

    /// Data frames arrive one by one (kind FRAME) instead of assembled messages; call before accept().
    #[napi(catch_unwind)]
    pub fn set_frames(&self, on: bool) {
        self.conn.set_frames(on);
    }

    /// Pings and pongs arrive as events (kinds PING and PONG); without, they are answered and not reported.
    #[napi(catch_unwind)]
    pub fn set_control_events(&self, on: bool) {
        self.conn.set_control_events(on);
    }

    /// Messages arrive as bytes for Node Buffers (kinds TEXT_BYTES and BINARY_BYTES), text included.
    #[napi(catch_unwind)]
    pub fn set_node_buffers(&self, on: bool) {
        pump::set_as_bytes(self.slot, on);
    }

    /// Refuses the upgrade with an HTTP status, body and headers (names and values alternating); false if it was
    /// decided already.
    #[napi(catch_unwind)]
    pub fn reject(&self, status: Option<u32>, body: Option<String>, headers: Option<Vec<String>>) -> bool {
        let status = status.filter(|s| (400..600).contains(s)).unwrap_or(403) as u16;
        let body = body.unwrap_or_else(|| crate::protocol::handshake::status_text(status).to_string());
        let headers = headers.unwrap_or_default();
        let pairs: Vec<(&str, &str)> = headers
            .chunks(2)
            .filter(|p| p.len() == 2 && !p[0].contains(['\r', '\n', ':']) && !p[1].contains(['\r', '\n']))
            .map(|p| (p[0].as_str(), p[1].as_str()))
            .collect();
        self.conn.reject(status, &body, &pairs)
    }

    /// Sends a string as text, or the exact bytes of an ArrayBuffer, typed array, Buffer or DataView as binary.
    /// Returns false when the connection is closing or closed (the data is dropped).
    #[napi(catch_unwind)]
    pub fn send(&self, env: Env, data: Unknown<'_>) -> Result<bool> {
        self.queue_message(env, data, Framing::MESSAGE)
    }

    /// Puts `send` and `sendAs` on `prototype` (NativeConnection's) as plain Node-API callbacks, in place of the
    /// generated ones: napi-rs's glue records every `&self` call in its process-wide borrow table (a mutex and a
    /// hash map per call), which perf showed at about 4 % of the server's time in the 32-byte echo, where a send
    /// is the call made per message. Called once per thread by lib/addon.js.
    #[napi(catch_unwind)]
    pub fn install_fast_send(env: Env, prototype: Object<'_>) -> Result<()> {
        let method = |name: &'static std::ffi::CStr, callback: sys::napi_callback| sys::napi_property_descriptor {
            utf8name: name.as_ptr(),
            name: ptr::null_mut(),
            method: callback,
            getter: None,
            setter: None,
            value: ptr::null_mut(),
            attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
            data: ptr::null_mut(),
        };
        let properties = [method(c"send", Some(send_callback)), method(c"sendAs", Some(send_as_callback))];
        let status = unsafe { sys::napi_define_properties(env.raw(), prototype.raw(), properties.len(), properties.as_ptr()) };
        if status != sys::Status::napi_ok {
            return Err(Error::from_reason("ferrows: cannot install NativeConnection.send"));
        }
        Ok(())
    }

    /// Like `send`, with the frame type given: `binary` false sends bytes as a text frame (ws's
    /// `{ binary: false }`), true sends a string's UTF-8 as a binary frame. `options` sends a message in parts
    /// (`fin: false`, then `continuation: true` for the frames after the first) or uncompressed (`compress:
    /// false`).
    #[napi(catch_unwind)]
    pub fn send_as(&self, env: Env, data: Unknown<'_>, binary: bool, options: Option<SendOptions>) -> Result<bool> {
        self.queue_message(env, data, Self::framing(binary, options.unwrap_or_default()))
    }

    fn framing(binary: bool, options: SendOptions) -> Framing {
        Framing {
            opcode: Some(if options.continuation.unwrap_or(false) { OP_CONTINUATION } else if binary { OP_BINARY } else { OP_TEXT }),
            fin: options.fin.unwrap_or(true),
            compress: options.compress.unwrap_or(true),
        }
    }

    fn queue_message(&self, env: Env, data: Unknown<'_>, framing: Framing) -> Result<bool> {
        // Closed or closing natively while JavaScript has not seen the close event yet: the frame is dropped.
        if self.conn.state() == CONNECTING {
            return Err(Error::from_reason("Connection is not open yet."));
        }
        let Framing { opcode, fin, compress } = framing;
        let part = !fin || opcode == Some(OP_CONTINUATION);
        let queued = unsafe {
            match values::payload(env.raw(), data.raw())? {
                Some(Payload::Text(len)) => {
                    let opcode = opcode.unwrap_or(OP_TEXT);
                    if part {
                        self.conn.queue_fragment(opcode, fin, len, |buf| values::write_utf8(env.raw(), data.raw(), len, buf))
                    } else if compress && self.conn.compresses(len) {
                        let mut text = BytesMut::with_capacity(len + 1);
                        values::write_utf8(env.raw(), data.raw(), len, &mut text);
                        self.conn.queue_compressed(opcode, &text)
                    } else {
                        self.conn.queue_frame(opcode, len, |buf| values::write_utf8(env.raw(), data.raw(), len, buf))
                    }
                }
                Some(Payload::Binary(bytes)) => {
                    let opcode = opcode.unwrap_or(OP_BINARY);
                    if part {
                        self.conn.queue_fragment(opcode, fin, bytes.len(), |buf| buf.extend_from_slice(bytes))
                    } else if compress && self.conn.compresses(bytes.len()) {
                        self.conn.queue_compressed(opcode, bytes)
                    } else {
                        self.conn.queue_frame(opcode, bytes.len(), |buf| buf.extend_from_slice(bytes))
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
            self.conn.flush();
        }
        Ok(queued)
    }

    /// Sends a ping with an optional payload (up to MAX_CONTROL_PAYLOAD bytes).
    #[napi(catch_unwind)]
    pub fn ping(&self, env: Env, data: Option<Unknown<'_>>) -> Result<bool> {
        self.control(env, OP_PING, data)
    }

    fn control(&self, env: Env, opcode: u8, data: Option<Unknown<'_>>) -> Result<bool> {
        let payload = match data {
            None => bytes::Bytes::new(),
            Some(value) => unsafe { values::owned_bytes(env.raw(), value.raw())? }.unwrap_or_default(),
        };
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::new(Status::InvalidArg, format!("The data size must not be greater than {MAX_CONTROL_PAYLOAD} bytes")));
        }
        let queued = self.conn.queue_frame(opcode, payload.len(), |buf| buf.extend_from_slice(&payload));
        if queued {
            self.conn.flush();
        }
        Ok(queued)
    }

    /// Starts the closing handshake; without a code the close frame has no payload (the peer sees 1005). A pending
    /// upgrade is refused instead.
    #[napi(catch_unwind)]
    pub fn close(&self, code: Option<u32>, reason: Option<String>) -> Result<()> {
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
        self.conn.close(code, reason.as_bytes());
        Ok(())
    }

    /// Joins `topic` (see the server's `publish`); false if already subscribed or closed.
    #[napi(catch_unwind)]
    pub fn subscribe(&self, topic: String) -> Result<bool> {
        Ok(self.conn.server().topics.subscribe(&self.conn, &values::topic_name(topic)?))
    }

    /// Leaves `topic`; false if not subscribed.
    #[napi(catch_unwind)]
    pub fn unsubscribe(&self, topic: String) -> Result<bool> {
        Ok(self.conn.server().topics.unsubscribe(&self.conn, &values::topic_name(topic)?))
    }

    /// The topics this connection is subscribed to, in the order it joined them.
    #[napi(getter, catch_unwind)]
    pub fn topics(&self) -> Vec<String> {
        self.conn.server().topics.of(&self.conn)
    }

    #[napi(getter, catch_unwind)]
    pub fn buffered_amount(&self) -> u32 {
        self.conn.outbox.buffered().min(u32::MAX as usize) as u32
    }

    #[napi(getter, catch_unwind)]
    pub fn ready_state(&self) -> u32 {
        self.conn.state() as u32
    }

    #[napi(catch_unwind)]
    pub fn set_no_delay(&self, on: bool) -> Result<()> {
        self.conn.set_no_delay(on).map_err(|e| Error::from_reason(e.to_string()))
    }

    #[napi(catch_unwind)]
    pub fn set_aggregate(&self, on: bool) {
        self.conn.set_aggregate(on);
    }
}

/// `NativeConnection.prototype.send(data)` (see `install_fast_send`).
unsafe extern "C" fn send_callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    fast_call(env, info, |connection, [data, ..]| unsafe {
        connection.queue_message(Env::from_raw(env), Unknown::from_raw_unchecked(env, data), Framing::MESSAGE)
    })
}

/// `NativeConnection.prototype.sendAs(data, binary, options)` (see `install_fast_send` and `send_as`).
unsafe extern "C" fn send_as_callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    fast_call(env, info, |connection, [data, binary, options]| unsafe {
        let binary = bool::from_napi_value(env, binary)?;
        let options = Option::<SendOptions>::from_napi_value(env, options)?;
        let framing = NativeConnection::framing(binary, options.unwrap_or_default());
        connection.queue_message(Env::from_raw(env), Unknown::from_raw_unchecked(env, data), framing)
    })
}

/// Runs `send` for a NativeConnection method called with up to three arguments (missing ones read as undefined)
/// and answers with its boolean, or throws its error as napi-rs would. The receiver is checked by its type tag, as
/// the generated glue checks it, and only read through within the call: NativeConnection has no `&mut self`
/// method. A panic becomes a JavaScript error.
unsafe fn fast_call(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    send: impl FnOnce(&NativeConnection, [sys::napi_value; 3]) -> Result<bool>,
) -> sys::napi_value {
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        let mut argc = 3;
        let mut args = [ptr::null_mut(); 3];
        let mut this = ptr::null_mut();
        if sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), &mut this, ptr::null_mut()) != sys::Status::napi_ok {
            return Err(Error::from_reason("cannot read the arguments of a send"));
        }
        validate_type_tag(env, this, &<NativeConnection as TypeTag>::type_tag(), "NativeConnection")?;
        let mut wrapped = ptr::null_mut();
        if sys::napi_unwrap(env, this, &mut wrapped) != sys::Status::napi_ok || wrapped.is_null() {
            return Err(Error::from_reason("a send called on an object that is not a NativeConnection"));
        }
        let queued = send(&*(wrapped as *const NativeConnection), args)?;
        values::boolean(env, queued)
    }));
    let thrown = match sent {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err,
        Err(_) => Error::from_reason("ferrows: internal error in a send"),
    };
    unsafe { JsError::from(thrown).throw_into(env) };
    ptr::null_mut()
}
