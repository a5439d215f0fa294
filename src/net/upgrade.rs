//! The opening handshake of a connection: the upgrade request checked and extensions negotiated, the
//! application's decision awaited, then the 101 (or an HTTP error) and the connection run until it closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::time::timeout;

use super::connection::{Conn, CLOSED, CLOSING, CONNECTING, OPEN};
use super::outbox::Outbox;
use super::route::Route;
use super::send::Compression;
use super::limits::OverLimit;
use super::server::Server;
use super::stats;
use super::socket::{Socket, TlsInfo};
use super::{Event, Sink};
use crate::protocol::close::ABNORMAL;
use crate::protocol::deflate::{self, Deflater};
use crate::protocol::handshake::{self, Request, Upgrade};
use crate::protocol::packed_head::PackedHead;

/// What the client sent to open the connection. The request is kept as the bytes received (one allocation
/// instead of one per header, its common lines packed) and parsed again when JavaScript asks for it.
pub struct Handshake {
    head: PackedHead,
    pub upgrade: Upgrade,
    /// The `Sec-WebSocket-Extensions` answer, when an extension was negotiated (a boxed str rather than a String:
    /// every connection holds it for its whole life).
    pub extensions: Option<Box<str>>,
    /// Present on TLS connections (boxed: a plain one holds a pointer).
    pub tls: Option<Box<TlsInfo>>,
    /// Given with an adopted socket, to match it with its connection.
    pub tag: u32,
}

impl Handshake {
    pub fn request(&self) -> Request {
        // These bytes parsed once already, so they parse again; the empty fallback only keeps this panic-free.
        let head = self.head.unpack(self.upgrade.key.as_str());
        handshake::parse_request(&head, usize::MAX).ok().flatten().map(|(r, _)| r).unwrap_or(Request {
            method: String::new(),
            target: String::new(),
            version: 1,
            headers: Vec::new(),
        })
    }
}

/// The application's answer to an upgrade (`Conn::decision`).
const PENDING: u8 = 0;
/// The 101 is queued.
const ACCEPTED: u8 = 1;
const REFUSED: u8 = 2;
/// An accept or reject is writing its answer.
const DECIDING: u8 = 3;

/// What a client refused by a connection limit is told to wait before it tries again.
const RETRY_AFTER_SECONDS: &str = "5";

/// Takes an upgrade request: validates it, waits for the application's decision, then runs the connection
/// until it closes. `head` is the request as received (packed), `buf` whatever the client sent after it, `tag` an
/// adopted socket's token (0 otherwise).
#[allow(clippy::too_many_arguments)]
pub async fn upgrade(server: Arc<Server>, socket: Socket, peer: SocketAddr, local: SocketAddr, request: Request, head: PackedHead, buf: BytesMut, tag: u32) {
    let upgrade = match handshake::validate_upgrade(&request, server.config.bad_version_status) {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            stats::add(&server.stats.refused_invalid, 1);
            return socket.refuse(rejection.status, rejection.reason, rejection.headers).await;
        }
    };
    let negotiated = match &server.config.deflate {
        None => None,
        Some(config) => {
            let offers: Vec<&str> = request.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions")).map(|(_, v)| v.as_str()).collect();
            match deflate::negotiate(&offers, config) {
                Ok(found) => found,
                Err(_) => {
                    stats::add(&server.stats.refused_invalid, 1);
                    return socket.refuse(400, "Invalid or unacceptable Sec-WebSocket-Extensions header", &[]).await;
                }
            }
        }
    };
    // The parsed request's strings would otherwise stay allocated for the connection's whole life; what it
    // needs again is parsed anew from `head` (Handshake::request).
    drop(request);
    if server.is_closed() {
        stats::add(&server.stats.refused_closing, 1);
        return socket.refuse(503, "Server is closing", &[]).await;
    }
    // Held until the connection ends: its place in the connection limits.
    let admission = match server.admissions.admit(peer.ip(), &server.config.limits) {
        Ok(admission) => admission,
        Err(over) => {
            stats::add(&server.stats.refused_limit, 1);
            let body = match over {
                OverLimit::Total => "Too many connections",
                OverLimit::PerAddress => "Too many connections from this address",
            };
            return socket.refuse(503, body, &[("Retry-After", RETRY_AFTER_SECONDS)]).await;
        }
    };
    let compression = match (&negotiated, &server.config.deflate) {
        (Some((n, _)), Some(config)) => Some(Box::new(Compression {
            deflater: Mutex::new(Deflater::new(n, config.level)),
            enabled: config.compress,
            threshold: config.threshold,
            used: AtomicBool::new(false),
        })),
        _ => None,
    };
    let (negotiated, extensions) = negotiated.map_or((None, None), |(n, answer)| (Some(n), Some(answer.into_boxed_str())));
    let server_sink = server.sink.clone();
    let slot = server_sink.consumer.new_slot();
    let tls = socket.tls_info();
    let conn = Arc::new(Conn {
        id: server.next_conn_id(),
        socket: Mutex::new(Some(Arc::new(socket))),
        peer,
        local,
        outbox: Outbox::default(),
        negotiated,
        compression,
        state: AtomicU8::new(CONNECTING),
        aggregate: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        frames: AtomicBool::new(false),
        control_events: AtomicBool::new(false),
        handshake: Handshake { head, upgrade, extensions, tls: tls.map(Box::new), tag },
        decision: AtomicU8::new(PENDING),
        route: Route::new(Sink { consumer: server_sink.consumer.clone(), slot }),
        server: server.clone(),
        admission: AtomicU8::new(admission.keep()),
    });
    server.track(&conn);
    if !server_sink.deliver_one(Event::Upgrade { conn: conn.clone(), slot }) {
        conn.reject(503, "Service Unavailable", &[]);
    }
    let accepted = conn.decided().await;
    let socket = conn.socket().expect("released only when the connection ends");
    if accepted {
        // A task of its own for the open connection, not this one: this task's state holds everything the
        // handshake needed, and would stay allocated for the connection's whole life.
        conn.start(socket, buf);
        // What the handshake held (its read buffer, its task, the parsed request) was freed, and so was what
        // JavaScript's compiler and collector threads used meanwhile: after a burst of handshakes, a trim.
        super::memory::released();
    } else {
        let _ = timeout(server.config.close_timeout, conn.outbox.finish(&socket)).await;
        conn.state.store(CLOSED, Ordering::Release);
        conn.emit_closed(ABNORMAL, String::new());
        conn.end(socket);
    }
}

impl Conn {
    /// Finishes a pending upgrade with a 101 (plus `extra` header lines); false if it was already decided.
    /// A client that already went away is not answered: false, and the connection ends (1006).
    pub fn accept(self: &Arc<Self>, protocol: Option<&str>, extra: &[String]) -> bool {
        if !self.begin_decision() {
            return false;
        }
        if self.socket().is_none_or(|s| s.peer_gone()) {
            self.state.store(CLOSING, Ordering::Release);
            self.decide(REFUSED);
            return false;
        }
        let answer = handshake::switching_protocols(self.handshake.upgrade.key.as_str(), protocol, self.handshake.extensions.as_deref(), extra);
        self.outbox.push(|buf| buf.extend_from_slice(&answer));
        self.state.store(OPEN, Ordering::Release);
        self.write_now();
        stats::add(&self.server.stats.accepted, 1);
        self.decide(ACCEPTED);
        true
    }

    /// Refuses a pending upgrade with an HTTP error; false if it was already decided.
    pub fn reject(&self, status: u16, body: &str, headers: &[(&str, &str)]) -> bool {
        if !self.begin_decision() {
            return false;
        }
        stats::add(&self.server.stats.refused_by_application, 1);
        let answer = handshake::error_response(status, body, headers);
        self.outbox.push_close(|buf| buf.extend_from_slice(&answer));
        self.state.store(CLOSING, Ordering::Release);
        self.decide(REFUSED);
        true
    }

    /// Claims the upgrade's decision for this caller: false if another accept or reject has it already.
    fn begin_decision(&self) -> bool {
        self.decision.compare_exchange(PENDING, DECIDING, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Publishes the decision and wakes the upgrade's task, which waits in `decided`.
    fn decide(&self, decision: u8) {
        self.decision.store(decision, Ordering::Release);
        self.wake_reader().notify();
    }

    /// Resolves with the application's decision: true once the 101 is queued.
    async fn decided(&self) -> bool {
        loop {
            match self.decision.load(Ordering::Acquire) {
                ACCEPTED => return true,
                REFUSED => return false,
                // The reader is not running yet, so its signal is this task's; a wake for anything else only
                // makes it look again.
                _ => self.wake_reader().notified().await,
            }
        }
    }
}
