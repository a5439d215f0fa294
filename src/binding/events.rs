//! How network events look to JavaScript: each becomes a code `slot << KIND_BITS | kind` (in the Uint32Array
//! `dispatch` receives) and a payload (at the same index of its array). The kinds are exported to JavaScript (lib/pump.js reads them from here).

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::{sys, Env};

use super::connection::{socket_address, SocketEnds};
use super::http::NativeHttpExchange;
use super::{handles, pump};
use super::values;
use crate::net::failure::Failure;
use crate::net::{Conn, Event};

/// Bits of an event code that hold its kind (the rest is the slot).
#[napi]
pub const KIND_BITS: u32 = 5;

#[napi]
pub const KIND_TEXT: u32 = 0;
#[napi]
pub const KIND_BINARY: u32 = 1;
#[napi]
pub const KIND_UPGRADE: u32 = 2;
#[napi]
pub const KIND_CLOSED: u32 = 3;
#[napi]
pub const KIND_DRAIN: u32 = 4;
#[napi]
pub const KIND_PING: u32 = 5;
#[napi]
pub const KIND_PONG: u32 = 6;
#[napi]
pub const KIND_SERVER_CLOSED: u32 = 7;
#[napi]
pub const KIND_REQUEST: u32 = 8;
#[napi]
pub const KIND_POSTED: u32 = 9;
#[napi]
pub const KIND_FAILURE: u32 = 10;
/// A text message as bytes, for a slot that takes Node Buffers.
#[napi]
pub const KIND_TEXT_BYTES: u32 = 11;
/// A binary message as bytes, for a slot that takes Node Buffers.
#[napi]
pub const KIND_BINARY_BYTES: u32 = 12;
#[napi]
pub const KIND_OUTPUT: u32 = 13;
#[napi]
pub const KIND_BRIDGE_END: u32 = 14;
#[napi]
pub const KIND_BRIDGE_RESUME: u32 = 15;
#[napi]
pub const KIND_FRAME: u32 = 16;
#[napi]
pub const KIND_BACKPLANE: u32 = 17;
#[napi]
pub const KIND_DRAINED: u32 = 18;

/// Messages for Node Buffers up to this size share one ArrayBuffer per batch (their payload is a number:
/// offset * 65536 + length); larger ones get their own.
const SHARED_MAX: usize = 65535;

/// Turns `event` (for `slot`) into its kind and payload. It is converted by reference and stays usable: an
/// event JavaScript does not take (its connection was posted meanwhile) is passed on as it is. `shared` collects
/// the small messages for Node Buffers.
pub(super) unsafe fn to_js(env: sys::napi_env, slot: u32, event: &mut Event, shared: &mut Vec<u8>) -> Result<(u32, sys::napi_value)> {
    Ok(match event {
        Event::Text(data) if pump::as_bytes(slot) => (KIND_TEXT_BYTES, shared_bytes(env, shared, data)?),
        Event::Text(data) => (KIND_TEXT, values::string(env, data)?),
        Event::Binary(data) if pump::as_bytes(slot) => (KIND_BINARY_BYTES, shared_bytes(env, shared, data)?),
        Event::Binary(data) => (KIND_BINARY, values::array_buffer(env, data)?),
        Event::Frame { opcode, fin, data } => {
            let frame = values::array(env, 3)?;
            values::set_element(env, frame, 0, values::uint32(env, *opcode as u32)?)?;
            values::set_element(env, frame, 1, values::uint32(env, *fin as u32)?)?;
            values::set_element(env, frame, 2, values::array_buffer(env, data)?)?;
            (KIND_FRAME, frame)
        }
        Event::Output(data) => (KIND_OUTPUT, values::array_buffer(env, data)?),
        Event::BridgeEnd { abort } => (KIND_BRIDGE_END, values::uint32(env, *abort as u32)?),
        Event::BridgeResume => (KIND_BRIDGE_RESUME, values::undefined(env)?),
        Event::Ping(data) => (KIND_PING, values::array_buffer(env, data)?),
        Event::Pong(data) => (KIND_PONG, values::array_buffer(env, data)?),
        Event::Drain => (KIND_DRAIN, values::undefined(env)?),
        Event::Upgrade { conn, slot } => (KIND_UPGRADE, connection(env, conn, *slot)?),
        Event::Posted { conn, slot, .. } => (KIND_POSTED, connection(env, conn, *slot)?),
        Event::Request(exchange) => (KIND_REQUEST, NativeHttpExchange::new(exchange.clone()).into_instance(&Env::from_raw(env))?.value),
        Event::Failure { failure, peer, local, decide } => {
            let report = values::array(env, 4)?;
            values::set_element(env, report, 0, values::string(env, failure.name().as_bytes())?)?;
            values::set_element(env, report, 1, SocketEnds::to_napi_value(env, ends(*peer, *local))?)?;
            let detail = match failure {
                Failure::UnknownHost(name) => values::string(env, name.as_bytes())?,
                Failure::NotTls(first_bytes) => values::array_buffer(env, first_bytes)?,
                _ => values::undefined(env)?,
            };
            values::set_element(env, report, 2, detail)?;
            let fallback = match decide.take() {
                Some(decide) => TlsFallback { decide: Some(decide) }.into_instance(&Env::from_raw(env))?.value,
                None => values::undefined(env)?,
            };
            values::set_element(env, report, 3, fallback)?;
            (KIND_FAILURE, report)
        }
        Event::Closed { code, reason } => {
            let pair = values::array(env, 2)?;
            values::set_element(env, pair, 0, values::uint32(env, *code as u32)?)?;
            values::set_element(env, pair, 1, values::string(env, reason.as_bytes())?)?;
            (KIND_CLOSED, pair)
        }
        Event::ServerClosed => (KIND_SERVER_CLOSED, values::undefined(env)?),
        Event::Drained => (KIND_DRAINED, values::undefined(env)?),
        Event::Backplane { state, error } => {
            let report = values::array(env, 2)?;
            values::set_element(env, report, 0, values::string(env, state.as_bytes())?)?;
            if let Some(error) = error {
                values::set_element(env, report, 1, values::string(env, error.as_bytes())?)?;
            }
            (KIND_BACKPLANE, report)
        }
        Event::Barrier(_) | Event::MoveEnd => unreachable!("handled natively"),
    })
}

/// A connection JavaScript now holds: [its handle number, its event slot] (see lib/native-connection.js).
unsafe fn connection(env: sys::napi_env, conn: &Arc<Conn>, slot: u32) -> Result<sys::napi_value> {
    let pair = values::array(env, 2)?;
    values::set_element(env, pair, 0, values::uint32(env, handles::hold(conn.clone()))?)?;
    values::set_element(env, pair, 1, values::uint32(env, slot)?)?;
    Ok(pair)
}

/// A small message goes into the batch's shared buffer (one allocation for all of them), a large one alone.
unsafe fn shared_bytes(env: sys::napi_env, shared: &mut Vec<u8>, data: &Bytes) -> Result<sys::napi_value> {
    if data.len() > SHARED_MAX {
        return values::array_buffer(env, data);
    }
    let offset = shared.len();
    shared.extend_from_slice(data);
    values::double(env, (offset * 65536 + data.len()) as f64)
}

fn ends(peer: std::net::SocketAddr, local: std::net::SocketAddr) -> SocketEnds {
    SocketEnds { remote: socket_address(peer), local: socket_address(local) }
}

/// The decision on a client that did not start TLS on a TLS port: plain text, or close.
#[napi]
pub struct TlsFallback {
    decide: Option<tokio::sync::oneshot::Sender<bool>>,
}

#[napi]
impl TlsFallback {
    /// true: go on in plain text; false: close. Only the first call counts.
    #[napi(catch_unwind)]
    pub fn decide(&mut self, plain: bool) -> bool {
        self.decide.take().is_some_and(|d| d.send(plain).is_ok())
    }
}
