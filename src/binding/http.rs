//! `NativeHttpExchange`: a plain HTTP request and its answer, for the faces' request/response objects.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::{Env, JsValue};

use super::connection::{socket_address, SocketAddress};
use super::values;
use crate::net::http::{AnswerError, Exchange};

#[napi]
pub struct NativeHttpExchange {
    exchange: Arc<Exchange>,
}

#[napi(object)]
pub struct HttpRequestInfo {
    pub method: String,
    pub url: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u32,
    /// Names and values as received, alternating.
    pub headers: Vec<String>,
    pub body: Buffer,
    /// Plain HTTP let through on a TLS port (sack's `redirect`).
    pub redirect: bool,
    pub secure: bool,
}

fn answer_error(e: AnswerError) -> Error {
    Error::from_reason(match e {
        AnswerError::HeadAlreadySent => "Headers have already been set; cannot change resulting status or headers",
        AnswerError::Finished => "The response has already ended",
    })
}

/// The bytes of a body chunk: a string as UTF-8, or the exact bytes of a buffer or view.
fn chunk_bytes(env: &Env, data: Option<Unknown<'_>>) -> Result<Vec<u8>> {
    let Some(value) = data else { return Ok(Vec::new()) };
    match unsafe { values::owned_bytes(env.raw(), value.raw())? } {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(Error::new(Status::InvalidArg, "a body chunk must be a string, a Buffer, an ArrayBuffer or a typed array")),
    }
}

#[napi]
impl NativeHttpExchange {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        NativeHttpExchange { exchange }
    }

    /// The request; available once.
    #[napi(catch_unwind)]
    pub fn request(&self) -> Option<HttpRequestInfo> {
        self.exchange.take_request().map(|(req, body)| HttpRequestInfo {
            method: req.method,
            url: req.target,
            version: req.version as u32,
            headers: req.headers.into_iter().flat_map(|(n, v)| [n, v]).collect(),
            body: body.to_vec().into(),
            redirect: self.exchange.redirect,
            secure: self.exchange.secure,
        })
    }

    #[napi(getter, catch_unwind)]
    pub fn remote(&self) -> SocketAddress {
        socket_address(self.exchange.peer)
    }

    #[napi(getter, catch_unwind)]
    pub fn local(&self) -> SocketAddress {
        socket_address(self.exchange.local)
    }

    #[napi(getter, catch_unwind)]
    pub fn head_sent(&self) -> bool {
        self.exchange.head_sent()
    }

    /// Sends the status line and headers (`headers` alternates names and values). A second call throws.
    #[napi(catch_unwind)]
    pub fn write_head(&self, status: u32, reason: Option<String>, headers: Vec<String>, content_length: Option<f64>) -> Result<()> {
        let status = u16::try_from(status).ok().filter(|s| (100..1000).contains(s)).ok_or_else(|| Error::new(Status::InvalidArg, format!("Invalid status code: {status}")))?;
        let pairs: Vec<(String, String)> = headers.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0].clone(), p[1].clone())).collect();
        self.exchange.write_head(status, reason.as_deref(), &pairs, content_length.map(|n| n as usize)).map_err(answer_error)
    }

    /// Sends part of the body.
    #[napi(catch_unwind)]
    pub fn write(&self, env: Env, data: Unknown<'_>) -> Result<()> {
        let bytes = chunk_bytes(&env, Some(data))?;
        self.exchange.write(&bytes).map_err(answer_error)
    }

    /// Ends the answer.
    #[napi(catch_unwind)]
    pub fn end(&self) -> Result<()> {
        self.exchange.end().map_err(answer_error)
    }
}
