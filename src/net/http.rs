//! The HTTP/1.1 side of an accepted socket: reads requests one after another (keep-alive, pipelining), hands an
//! upgrade to `connection`, and passes plain requests to the application when it asked for them (sack's
//! `request` event), writing its answer as it comes. One request is answered at a time, so pipelined requests
//! are answered in order.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::timeout;

use super::upgrade::upgrade;
use super::server::Server;
use super::read_buffer;
use super::socket::Socket;
use super::failure::Failure;
use super::Event;
use crate::protocol::handshake::{self, Rejection, Request};
use crate::protocol::packed_head::PackedHead;
use crate::protocol::http::{self, BodyKind, ChunkedDecoder, Framing};

/// A plain request and the answer being written to it.
pub struct Exchange {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The client spoke plain HTTP to the TLS port and the application let it (sack's `disableSSL`).
    pub redirect: bool,
    pub secure: bool,
    request: Mutex<Option<(Request, Bytes)>>,
    out: Mutex<Answer>,
    wake: Notify,
    req_version: u8,
    head_request: bool,
    keep_alive: bool,
}

#[derive(Default)]
struct Answer {
    buf: BytesMut,
    /// Set once the head went out.
    framing: Option<Framing>,
    keep_alive: bool,
    finished: bool,
}

/// What the application did wrong with an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerError {
    HeadAlreadySent,
    Finished,
}

impl Exchange {
    /// The request and its body; available once.
    pub fn take_request(&self) -> Option<(Request, Bytes)> {
        self.request.lock().unwrap().take()
    }

    pub fn head_sent(&self) -> bool {
        self.out.lock().unwrap().framing.is_some()
    }

    /// Writes the status line and headers. `content_length`: the body length, when known.
    pub fn write_head(&self, status: u16, reason: Option<&str>, headers: &[(String, String)], content_length: Option<usize>) -> Result<(), AnswerError> {
        let mut out = self.out.lock().unwrap();
        if out.finished {
            return Err(AnswerError::Finished);
        }
        if out.framing.is_some() {
            return Err(AnswerError::HeadAlreadySent);
        }
        let (head, framing, keep_alive) =
            http::response_head(status, reason, headers, content_length, self.req_version, self.head_request, self.keep_alive);
        out.buf.extend_from_slice(&head);
        out.framing = Some(framing);
        out.keep_alive = keep_alive;
        drop(out);
        self.wake.notify_one();
        Ok(())
    }

    /// Writes part of the body (the head must be out).
    pub fn write(&self, data: &[u8]) -> Result<(), AnswerError> {
        let mut out = self.out.lock().unwrap();
        if out.finished {
            return Err(AnswerError::Finished);
        }
        let framing = out.framing.unwrap_or(Framing::Close);
        http::encode_body(&mut out.buf, framing, data);
        drop(out);
        self.wake.notify_one();
        Ok(())
    }

    /// Ends the answer; the connection then reads the next request or closes.
    pub fn end(&self) -> Result<(), AnswerError> {
        let mut out = self.out.lock().unwrap();
        if out.finished {
            return Err(AnswerError::Finished);
        }
        let framing = out.framing.unwrap_or(Framing::Close);
        http::encode_end(&mut out.buf, framing);
        out.finished = true;
        drop(out);
        self.wake.notify_one();
        Ok(())
    }
}

/// Serves one accepted socket until it closes or becomes a WebSocket.
pub async fn serve(server: Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    let local = tcp.local_addr().unwrap_or(peer);
    server.tune(&tcp);
    // Boxed: the opening phase's state should not stay in the connection's task.
    let Some((socket, redirect)) = Box::pin(super::secure::open(&server, tcp, peer, local)).await else { return };
    let mut buf = BytesMut::new();
    let mut answered = false;
    loop {
        let (request, head) = match timeout(server.config.handshake_timeout, read_request(&socket, &mut buf, server.config.max_header_bytes)).await {
            Ok(Ok(read)) => read,
            Ok(Err(Some(rejection))) => {
                server.report_failure(peer, local, Failure::BadRequest);
                return socket.refuse(rejection.status, rejection.reason, rejection.headers).await;
            }
            // The peer left (after answered requests that is an ordinary end) or stalled.
            Ok(Err(None)) if buf.is_empty() && answered => return,
            Ok(Err(None)) => return server.report_failure(peer, local, Failure::Dropped),
            Err(_) => return server.report_failure(peer, local, Failure::Timeout),
        };
        if request.wants_websocket() {
            return upgrade(server, socket, peer, local, request, head, buf, 0).await;
        }
        if !server.wants_requests() {
            return socket.refuse(426, "Upgrade Required", &[("Upgrade", "websocket")]).await;
        }
        // Boxed: a plain HTTP exchange's state should not be part of every WebSocket connection's task.
        match Box::pin(answer(&server, &socket, peer, local, request, redirect, &mut buf)).await {
            Ok(true) => answered = true,
            Ok(false) => return socket.linger().await,
            Err(Some(rejection)) => return socket.refuse(rejection.status, rejection.reason, rejection.headers).await,
            Err(None) => return,
        }
    }
}

/// Reads until a whole request head is in `buf` (which keeps any bytes after it). `Err(None)`: the peer left.
/// Returns the parsed request and its head as received.
async fn read_request(socket: &Socket, buf: &mut BytesMut, max: usize) -> Result<(Request, PackedHead), Option<Rejection>> {
    loop {
        if let Some((request, len)) = handshake::parse_request(buf, max).map_err(Some)? {
            // A copy: a slice of `buf` would keep its whole read buffer alive with the connection.
            let head = PackedHead::new(&buf[..len], &request);
            buf.advance(len);
            if buf.is_empty() {
                read_buffer::give_back(buf);
            }
            return Ok((request, head));
        }
        if socket.read_some(buf).await.map_err(|_| None)? == 0 {
            return Err(None);
        }
    }
}

/// Reads the body, hands the request to the application and writes its answer. Ok(keep the connection).
#[allow(clippy::too_many_arguments)]
async fn answer(server: &Arc<Server>, socket: &Socket, peer: SocketAddr, local: SocketAddr, request: Request, redirect: bool, buf: &mut BytesMut) -> Result<bool, Option<Rejection>> {
    let limit = server.config.max_body_bytes;
    let body = match timeout(server.config.handshake_timeout, read_body(socket, buf, &request, limit)).await {
        Ok(body) => body?,
        Err(_) => return Err(Some(Rejection { status: 408, reason: "Request Timeout", headers: &[] })),
    };
    let exchange = Arc::new(Exchange {
        peer,
        local,
        redirect,
        secure: socket.is_tls(),
        req_version: request.version,
        head_request: request.method == "HEAD",
        keep_alive: http::keep_alive(&request),
        request: Mutex::new(Some((request, body))),
        out: Mutex::new(Answer::default()),
        wake: Notify::new(),
    });
    if !server.sink.deliver_one(Event::Request(exchange.clone())) {
        return Err(Some(Rejection { status: 503, reason: "Service Unavailable", headers: &[] }));
    }
    loop {
        tokio::select! {
            _ = exchange.wake.notified() => {}
            _ = server.stopped() => return Ok(false),
        }
        let (chunk, finished, keep_alive) = {
            let mut out = exchange.out.lock().unwrap();
            (out.buf.split().freeze(), out.finished, out.keep_alive)
        };
        if socket.write_all(&chunk).await.is_err() {
            return Err(None);
        }
        if finished {
            return Ok(keep_alive);
        }
    }
}

async fn read_body(socket: &Socket, buf: &mut BytesMut, request: &Request, limit: usize) -> Result<Bytes, Option<Rejection>> {
    match http::body_kind(request, limit).map_err(Some)? {
        BodyKind::None => Ok(Bytes::new()),
        BodyKind::Length(len) => {
            while buf.len() < len {
                if socket.read_some(buf).await.map_err(|_| None)? == 0 {
                    return Err(None);
                }
            }
            Ok(buf.split_to(len).freeze())
        }
        BodyKind::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            let mut body = BytesMut::new();
            while !decoder.decode(buf, &mut body, limit).map_err(Some)? {
                if socket.read_some(buf).await.map_err(|_| None)? == 0 {
                    return Err(None);
                }
            }
            Ok(body.freeze())
        }
    }
}
