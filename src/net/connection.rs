//! One WebSocket connection: the handshake, then a task that reads frames and turns them into events, while any
//! thread may queue frames on its outbox. The close handshake, timeouts and failures end here, each with a code.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, Notify};
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::failure::Failure;
use super::server::Server;
use super::socket::{Socket, TlsInfo, LINGER};
use super::outbox::{Flushed, Outbox};
use super::runtime::runtime;
use super::route::Route;
use super::{Event, Sink};
use crate::protocol::close::ABNORMAL;
use crate::protocol::frame::OP_PONG;
use crate::protocol::deflate::{self, Deflater, Negotiated};
use crate::protocol::handshake::{self, Request, Upgrade};
use crate::protocol::receiver::{Message, Receiver};
use crate::protocol::sender::{encode_close, encode_frame_with};

pub const CONNECTING: u8 = 0;
pub const OPEN: u8 = 1;
pub const CLOSING: u8 = 2;
pub const CLOSED: u8 = 3;

/// How long aggregated sends wait for company before they are written.
const AGGREGATE_DELAY: Duration = Duration::from_millis(2);
/// How often a quiet connection checks whether its compression states can be released.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// What the client sent to open the connection. The request is kept as the bytes received (one allocation
/// instead of one per header) and parsed again when JavaScript asks for it.
pub struct Handshake {
    head: Bytes,
    pub upgrade: Upgrade,
    /// The `Sec-WebSocket-Extensions` answer, when an extension was negotiated.
    pub extensions: Option<String>,
    /// Present on TLS connections.
    pub tls: Option<TlsInfo>,
    /// Given with an adopted socket, to match it with its connection.
    pub tag: u32,
}

impl Handshake {
    pub fn request(&self) -> Request {
        // These bytes parsed once already, so they parse again; the empty fallback only keeps this panic-free.
        handshake::parse_request(&self.head, usize::MAX).ok().flatten().map(|(r, _)| r).unwrap_or(Request {
            method: String::new(),
            target: String::new(),
            version: 1,
            headers: Vec::new(),
        })
    }
}

/// The sending half of permessage-deflate on a connection.
struct Compression {
    deflater: Mutex<Deflater>,
    /// Compress at all (false: the extension is accepted for input only).
    enabled: bool,
    threshold: usize,
    /// Set by every compression, cleared by the idle check: a compressor unused for a whole check is released.
    used: AtomicBool,
}

pub struct Conn {
    /// Unique within its server.
    pub id: u64,
    /// Taken when the connection ends, so that its descriptor is closed then, not when JavaScript's object for
    /// the connection is collected (which may be many seconds later).
    socket: Mutex<Option<Arc<Socket>>>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub outbox: Outbox,
    server: Arc<Server>,
    extensions: Option<String>,
    negotiated: Option<Negotiated>,
    compression: Option<Compression>,
    state: AtomicU8,
    aggregate: AtomicBool,
    /// Messages go to the application as bytes for Node Buffers, text included (ws delivers Buffers).
    node_buffers: AtomicBool,
    /// The application stopped reading (ws's pause()).
    paused: AtomicBool,
    /// Data frames go to the application one by one (WebSocket-Node's assembleFragments: false).
    frames: AtomicBool,
    /// Pings and pongs are reported to the application (it listens for them); pings are answered either way.
    control_events: AtomicBool,
    handshake: Arc<Handshake>,
    /// Resolves the pending upgrade: true once the 101 is queued.
    decision: Mutex<Option<oneshot::Sender<bool>>>,
    /// Wakes the reader when something outside it changed (a close was queued).
    wake_reader: Notify,
    /// Where events go; it can move to another thread.
    pub route: Route,
}

/// Why the read loop ended.
enum Ending {
    PeerClosed(u16, String),
    Failed(Failure),
    Dropped,
    /// Keepalive: no answer to a ping within the grace period.
    Unresponsive,
}

/// Takes an upgrade request: validates it, waits for the application's decision, then runs the connection
/// until it closes. `head` is the request as received, `buf` whatever the client sent after it, `tag` an
/// adopted socket's token (0 otherwise).
#[allow(clippy::too_many_arguments)]
pub async fn upgrade(server: Arc<Server>, socket: Socket, peer: SocketAddr, local: SocketAddr, request: Request, head: Bytes, buf: BytesMut, tag: u32) {
    let upgrade = match handshake::validate_upgrade(&request, server.config.bad_version_status) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return socket.refuse(rejection.status, rejection.reason, rejection.headers).await,
    };
    let negotiated = match &server.config.deflate {
        None => None,
        Some(config) => {
            let offers: Vec<&str> = request.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions")).map(|(_, v)| v.as_str()).collect();
            match deflate::negotiate(&offers, config) {
                Ok(found) => found,
                Err(_) => return socket.refuse(400, "Invalid or unacceptable Sec-WebSocket-Extensions header", &[]).await,
            }
        }
    };
    if server.is_closed() {
        return socket.refuse(503, "Server is closing", &[]).await;
    }
    let compression = match (&negotiated, &server.config.deflate) {
        (Some((n, _)), Some(config)) => Some(Compression {
            deflater: Mutex::new(Deflater::new(n, config.level)),
            enabled: config.compress,
            threshold: config.threshold,
            used: AtomicBool::new(false),
        }),
        _ => None,
    };
    let (negotiated, extensions) = negotiated.map_or((None, None), |(n, answer)| (Some(n), Some(answer)));
    let (decide, decided) = oneshot::channel();
    let server_sink = server.sink.clone();
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
        node_buffers: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        frames: AtomicBool::new(false),
        control_events: AtomicBool::new(false),
        handshake: Arc::new(Handshake { head, upgrade, extensions: extensions.clone(), tls, tag }),
        extensions,
        decision: Mutex::new(Some(decide)),
        wake_reader: Notify::new(),
        route: Route::new(Sink { consumer: server_sink.consumer.clone(), slot: server_sink.consumer.new_slot() }),
        server: server.clone(),
    });
    server.track(&conn);
    if !server_sink.deliver_one(Event::Upgrade(conn.clone())) {
        conn.reject(503, "Service Unavailable", &[]);
    }
    let accepted = decided.await.unwrap_or(false);
    let socket = conn.socket().expect("released only at the end of this function");
    if accepted {
        conn.clone().run(&socket, buf).await;
    } else {
        let _ = timeout(server.config.close_timeout, conn.outbox.finish(&socket)).await;
        conn.state.store(CLOSED, Ordering::Release);
        conn.emit_closed(ABNORMAL, String::new());
    }
    conn.release(socket);
    server.topics.leave_all(&conn);
    server.untrack(conn.id);
    // What a closed connection held (queues, buffers, the events it caused) goes back to the system soon.
    super::memory::released();
}

thread_local! {
    /// Scratch space for compressed payloads, reused by every connection sending from this thread.
    static COMPRESSED: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// A random masking key, for servers configured to mask (sack's `masking` option).
fn random_mask() -> [u8; 4] {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) as u32).to_ne_bytes()
}

impl Conn {
    pub fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// The socket, while the connection has not ended.
    fn socket(&self) -> Option<Arc<Socket>> {
        self.socket.lock().unwrap().clone()
    }

    /// The connection ended: what it holds is freed now rather than when JavaScript's object for it is collected.
    /// Nothing more is written, and the descriptor closes as soon as a writer still waiting for the socket has
    /// given up (an abort wakes it when anything was left unsent); the compressor's state goes too.
    fn release(&self, socket: Arc<Socket>) {
        self.socket.lock().unwrap().take();
        if self.outbox.buffered() > 0 {
            socket.abort();
        }
        if let Some(compression) = &self.compression {
            compression.deflater.lock().unwrap().release();
        }
    }

    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// The slot JavaScript knows this connection by (meaningless once it closed).
    pub fn slot(&self) -> u32 {
        self.route.slot().unwrap_or(u32::MAX)
    }

    /// The last event: nothing is delivered after it.
    fn emit_closed(&self, code: u16, reason: String) {
        self.route.emit_last(Event::Closed { code, reason });
    }

    /// The opening request (kept: a connection handed to another thread shows it again there).
    pub fn handshake(&self) -> Arc<Handshake> {
        self.handshake.clone()
    }

    fn mask(&self) -> Option<[u8; 4]> {
        self.server.config.masking.then(random_mask)
    }

    /// Finishes a pending upgrade with a 101 (plus `extra` header lines); false if it was already decided.
    /// A client that already went away is not answered: false, and the connection ends (1006).
    pub fn accept(self: &Arc<Self>, protocol: Option<&str>, extra: &[String]) -> bool {
        let Some(decide) = self.decision.lock().unwrap().take() else { return false };
        if self.socket().is_none_or(|s| s.peer_gone()) {
            self.state.store(CLOSING, Ordering::Release);
            let _ = decide.send(false);
            return false;
        }
        let answer = handshake::switching_protocols(&self.handshake.upgrade.key, protocol, self.extensions.as_deref(), extra);
        self.outbox.push(|buf| buf.extend_from_slice(&answer));
        self.state.store(OPEN, Ordering::Release);
        self.flush_now();
        let _ = decide.send(true);
        true
    }

    /// Refuses a pending upgrade with an HTTP error; false if it was already decided.
    pub fn reject(&self, status: u16, body: &str, headers: &[(&str, &str)]) -> bool {
        let Some(decide) = self.decision.lock().unwrap().take() else { return false };
        let answer = handshake::error_response(status, body, headers);
        self.outbox.push_close(|buf| buf.extend_from_slice(&answer));
        self.state.store(CLOSING, Ordering::Release);
        let _ = decide.send(false);
        true
    }

    /// Queues a frame whose payload `write` appends (exactly `len` bytes); false unless the connection is open.
    pub fn queue_frame(&self, opcode: u8, len: usize, write: impl FnOnce(&mut BytesMut)) -> bool {
        if self.state() != OPEN {
            return false;
        }
        let queued = self.encode_frame(opcode, len, write);
        self.check_backpressure();
        queued
    }

    fn encode_frame(&self, opcode: u8, len: usize, write: impl FnOnce(&mut BytesMut)) -> bool {
        let mask = self.mask();
        match self.server.config.fragment_threshold {
            Some(limit) if len > limit && opcode & 0x8 == 0 => {
                // WebSocket-Node's fragmentOutgoingMessages: the payload goes out in frames of at most `limit`.
                let mut payload = BytesMut::with_capacity(len + 1);
                write(&mut payload);
                self.outbox.push(|buf| {
                    let count = payload.len().div_ceil(limit);
                    for (i, piece) in payload.chunks(limit).enumerate() {
                        let kind = if i == 0 { opcode } else { crate::protocol::frame::OP_CONTINUATION };
                        encode_frame_with(buf, i + 1 == count, false, kind, piece.len(), mask, |b| b.extend_from_slice(piece));
                    }
                })
            }
            _ => self.outbox.push(|buf| encode_frame_with(buf, true, false, opcode, len, mask, write)),
        }
    }

    /// Queues a complete frame shared with other connections (a broadcast); false unless the connection is open.
    pub fn queue_shared(&self, frame: Bytes) -> bool {
        let queued = self.state() == OPEN && self.outbox.push_shared(frame);
        self.check_backpressure();
        queued
    }

    /// More queued than `max_backpressure`: the reader pauses at its next turn (or closes, see below).
    pub fn over_backpressure(&self) -> bool {
        self.outbox.buffered() > self.server.config.max_backpressure
    }

    /// With `close_on_backpressure_limit`, a queue past the limit wakes the reader now, so that it closes (1008).
    fn check_backpressure(&self) {
        if self.server.config.close_on_backpressure_limit && self.over_backpressure() {
            self.wake_reader.notify_one();
        }
    }

    /// Whether a message of `len` bytes goes out compressed (then it is sent with `queue_compressed`).
    pub fn compresses(&self, len: usize) -> bool {
        self.compression.as_ref().is_some_and(|c| c.enabled && len >= c.threshold)
    }

    /// Queues a data message compressed with permessage-deflate (RSV1 set); false unless the connection is open.
    pub fn queue_compressed(&self, opcode: u8, data: &[u8]) -> bool {
        let Some(compression) = &self.compression else { return false };
        if self.state() != OPEN {
            return false;
        }
        compression.used.store(true, Ordering::Relaxed);
        let mask = self.mask();
        // The compressor lock is held until the frame is queued: frames must leave in the order they were compressed.
        let mut deflater = compression.deflater.lock().unwrap();
        let queued = COMPRESSED.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            deflater.compress(data, &mut scratch);
            self.outbox.push(|buf| encode_frame_with(buf, true, true, opcode, scratch.len(), mask, |b| b.extend_from_slice(&scratch)))
        });
        self.check_backpressure();
        queued
    }

    /// Frees the compressor if it was not used since the last check.
    fn release_idle_compressor(&self) {
        if let Some(c) = &self.compression {
            if !c.used.swap(false, Ordering::Relaxed) && c.deflater.lock().unwrap().release() {
                super::memory::released();
            }
        }
    }

    /// Wakes the reader (a queued connection got its receiving thread).
    pub fn wake(&self) {
        self.wake_reader.notify_one();
    }

    /// Starts the closing handshake from this side (a pending upgrade is refused instead).
    pub fn close(self: &Arc<Self>, code: u16, reason: &[u8]) {
        if self.state() == CONNECTING {
            self.reject(503, "Service Unavailable", &[]);
            return;
        }
        if self.state.compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            let mask = self.mask();
            self.outbox.push_close(|buf| encode_close(buf, code, reason, mask));
            self.flush_now();
            self.wake_reader.notify_one();
        }
    }

    pub fn set_no_delay(&self, on: bool) -> io::Result<()> {
        self.socket().map_or(Ok(()), |s| s.set_nodelay(on))
    }

    pub fn set_aggregate(&self, on: bool) {
        self.aggregate.store(on, Ordering::Relaxed);
    }

    /// Data frames one by one instead of messages; takes effect when the connection opens.
    pub fn set_frames(&self, on: bool) {
        self.frames.store(on, Ordering::Release);
    }

    /// Report pings and pongs as events (an application without ping or pong listeners pays nothing for them).
    pub fn set_control_events(&self, on: bool) {
        self.control_events.store(on, Ordering::Relaxed);
    }

    pub fn set_node_buffers(&self, on: bool) {
        self.node_buffers.store(on, Ordering::Relaxed);
    }

    /// Stops (true) or restarts (false) reading from the socket.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.wake_reader.notify_one();
        }
    }

    /// Drops the connection at once, without a closing handshake (ws's terminate()); it closes with 1006.
    pub fn terminate(&self) {
        if let Some(socket) = self.socket() {
            socket.abort();
        }
        self.paused.store(false, Ordering::Release);
        self.wake_reader.notify_one();
    }

    /// Writes the queue now, or with `aggregate` a moment from now so that more sends can join the write.
    pub fn flush(self: &Arc<Self>) {
        if !self.aggregate.load(Ordering::Relaxed) {
            return self.flush_now();
        }
        if self.outbox.schedule_flush() {
            let conn = self.clone();
            if let Ok(rt) = runtime(None) {
                rt.spawn(async move {
                    sleep(AGGREGATE_DELAY).await;
                    conn.flush_now();
                });
            }
        }
    }

    /// Writes what the socket takes now; a task finishes the rest when the socket is full.
    pub fn flush_now(self: &Arc<Self>) {
        let Some(socket) = self.socket() else { return };
        if self.outbox.flush(&socket) == Flushed::NeedWriter {
            let conn = self.clone();
            if let Ok(rt) = runtime(None) {
                rt.spawn(async move {
                    if conn.outbox.write_pending(&socket).await.is_ok() && conn.state() == OPEN {
                        conn.route.emit(&mut vec![Event::Drain]);
                    }
                });
            }
        }
    }

    /// The open connection: reads and dispatches until it closes, then reports how.
    async fn run(self: Arc<Self>, socket: &Socket, mut buf: BytesMut) {
        let ending = self.read_loop(socket, &mut buf).await;
        if !matches!(ending, Ending::Dropped) {
            // Let the application answer the messages that came before the close, as a single-threaded server would.
            let (handled, wait) = oneshot::channel();
            if self.route.emit(&mut vec![Event::Barrier(handled)]) {
                let _ = timeout(self.server.config.close_timeout, wait).await;
            }
        }
        let (code, reason) = match ending {
            Ending::PeerClosed(code, reason) => {
                // Echo the close (a no-op if ours went first), then close TCP: the server closes first (§7.1.1).
                self.state.store(CLOSING, Ordering::Release);
                let mask = self.mask();
                self.outbox.push_close(|b| encode_close(b, code, reason.as_bytes(), mask));
                let _ = timeout(self.server.config.close_timeout, self.outbox.finish(socket)).await;
                socket.shutdown().await;
                (code, reason)
            }
            Ending::Failed(failure) => {
                let (code, reason) = (failure.close_code(), failure.close_reason());
                if matches!(failure, Failure::Protocol(_)) {
                    self.server.report_failure(self.peer, self.local, failure);
                }
                self.state.store(CLOSING, Ordering::Release);
                let mask = self.mask();
                self.outbox.push_close(|b| encode_close(b, code, reason.as_bytes(), mask));
                let _ = timeout(LINGER, self.outbox.finish(socket)).await;
                socket.linger().await;
                (code, reason.to_string())
            }
            Ending::Dropped => (ABNORMAL, String::new()),
            Ending::Unresponsive => {
                socket.abort();
                (ABNORMAL, "Peer not responding.".to_string())
            }
        };
        self.state.store(CLOSED, Ordering::Release);
        self.emit_closed(code, reason);
    }

    async fn read_loop(self: &Arc<Self>, socket: &Socket, buf: &mut BytesMut) -> Ending {
        let mut receiver = Receiver::new(self.server.config.max_payload);
        if let Some(n) = &self.negotiated {
            receiver = receiver.with_deflate(n);
        }
        if let Some(max_frame) = self.server.config.max_frame {
            receiver = receiver.with_max_frame(max_frame);
        }
        if self.frames.load(Ordering::Acquire) {
            receiver = receiver.with_frames();
        }
        let mut events = Vec::new();
        // Pongs queued by this read, written once its events are handed over.
        let mut answered = false;
        let mut close_deadline: Option<Instant> = None;
        let mut keepalive = Keepalive::new(self.server.config.keepalive_interval, self.server.config.keepalive_grace);
        loop {
            loop {
                match receiver.read(buf) {
                    Ok(Some(Message::Close(code, reason))) => {
                        self.deliver(&mut events, &mut answered);
                        return Ending::PeerClosed(code, reason);
                    }
                    Ok(Some(message)) => answered |= self.on_message(message, &mut events),
                    Ok(None) => break,
                    Err(err) => {
                        self.deliver(&mut events, &mut answered);
                        return Ending::Failed(Failure::Protocol(err));
                    }
                }
            }
            if !self.deliver(&mut events, &mut answered) {
                return Ending::Failed(Failure::ConsumerGone);
            }
            if buf.is_empty() {
                // Nothing partial is waiting: drop the read buffer, so a quiet connection holds none.
                *buf = BytesMut::new();
            }
            if self.paused.load(Ordering::Acquire) && self.state() == OPEN {
                // Paused by the application (ws's pause()): read nothing until resume() or a close.
                self.wake_reader.notified().await;
                continue;
            }
            if close_deadline.is_none() && self.state() == CLOSING {
                close_deadline = Some(Instant::now() + self.server.config.close_timeout);
            }
            let deadline = close_deadline.unwrap_or_else(far_future);
            if self.over_backpressure() {
                if self.server.config.close_on_backpressure_limit && self.state() == OPEN {
                    return Ending::Failed(Failure::Backpressure);
                }
                // The client is not reading what it caused: stop reading it until the queue is half drained.
                tokio::select! {
                    _ = self.outbox.drained_to(self.server.config.max_backpressure / 2) => {}
                    _ = self.wake_reader.notified() => continue,
                    _ = sleep_until(deadline) => return Ending::Dropped,
                }
            }
            let Some(consumer) = self.route.consumer() else {
                if self.route.is_ended() {
                    return Ending::Dropped;
                }
                // Queued for a receiving thread: nothing is read until one takes the connection.
                self.wake_reader.notified().await;
                continue;
            };
            tokio::select! {
                _ = consumer.backlog().room() => {}
                _ = self.wake_reader.notified() => continue,
                _ = sleep_until(deadline) => return Ending::Dropped,
            }
            tokio::select! {
                read = socket.read_some(buf) => match read {
                    Ok(0) | Err(_) => return Ending::Dropped,
                    Ok(_) => keepalive.heard(),
                },
                _ = self.wake_reader.notified() => {}
                _ = sleep_until(deadline) => return Ending::Dropped,
                _ = sleep_until(keepalive.next()), if keepalive.on() => {
                    if keepalive.expired() {
                        return Ending::Unresponsive;
                    }
                    if self.queue_frame(crate::protocol::frame::OP_PING, 0, |_| {}) {
                        self.flush_now();
                    }
                    keepalive.pinged();
                }
                _ = sleep(IDLE_CHECK), if self.compression.is_some() => {
                    self.release_idle_compressor();
                    if receiver.release_idle() {
                        super::memory::released();
                    }
                }
            }
        }
    }

    /// Turns a message into its event; true when it queued a pong.
    fn on_message(&self, message: Message, events: &mut Vec<Event>) -> bool {
        match message {
            Message::Text(data) if self.node_buffers.load(Ordering::Relaxed) => events.push(Event::TextBytes(data)),
            Message::Text(data) => events.push(Event::Text(data)),
            Message::Binary(data) if self.node_buffers.load(Ordering::Relaxed) => events.push(Event::BinaryBytes(data)),
            Message::Binary(data) => events.push(Event::Binary(data)),
            Message::Ping(data) if !self.server.config.auto_pong => {
                // The application answers each ping itself (WebSocket-Node): it sees every one.
                events.push(Event::Ping(data));
            }
            Message::Ping(data) => {
                let mask = self.mask();
                let answered = self.state() == OPEN
                    && self.outbox.push_pong(|b| encode_frame_with(b, true, false, OP_PONG, data.len(), mask, |b| b.extend_from_slice(&data)));
                if self.control_events.load(Ordering::Relaxed) {
                    push_control(events, Event::Ping(data));
                }
                return answered;
            }
            Message::Pong(data) if self.control_events.load(Ordering::Relaxed) => push_control(events, Event::Pong(data)),
            Message::Pong(_) => {}
            Message::Frame { opcode, fin, data } => events.push(Event::Frame { opcode, fin, data }),
            Message::Close(..) => unreachable!("handled by the read loop"),
        }
        false
    }

    /// Writes the pongs a read caused (`answered`), and hands its events over in one go.
    fn deliver(self: &Arc<Self>, events: &mut Vec<Event>, answered: &mut bool) -> bool {
        if std::mem::take(answered) {
            self.flush_now();
        }
        events.is_empty() || self.route.emit(events)
    }
}

/// Adds a ping or pong event, replacing one of the same kind just before it: a flood of control frames read
/// together reaches the application as one notification with the latest payload, so it costs JavaScript
/// nothing per frame (pings are answered natively, each one).
fn push_control(events: &mut Vec<Event>, event: Event) {
    match (events.last_mut(), &event) {
        (Some(last @ Event::Ping(_)), Event::Ping(_)) | (Some(last @ Event::Pong(_)), Event::Pong(_)) => *last = event,
        _ => events.push(event),
    }
}

/// WebSocket-Node's keepalive, on the connection's own task: a ping after `interval` of silence, and, with a
/// grace period, the connection dropped if the silence lasts that much longer.
struct Keepalive {
    interval: Option<Duration>,
    grace: Option<Duration>,
    ping_at: Instant,
    drop_at: Option<Instant>,
}

impl Keepalive {
    fn new(interval: Option<Duration>, grace: Option<Duration>) -> Self {
        Keepalive { interval, grace, ping_at: Instant::now() + interval.unwrap_or_default(), drop_at: None }
    }

    fn on(&self) -> bool {
        self.interval.is_some()
    }

    /// Anything received counts as a sign of life.
    fn heard(&mut self) {
        if let Some(interval) = self.interval {
            self.ping_at = Instant::now() + interval;
            self.drop_at = None;
        }
    }

    fn next(&self) -> Instant {
        self.drop_at.map_or(self.ping_at, |d| d.min(self.ping_at))
    }

    fn expired(&self) -> bool {
        self.drop_at.is_some_and(|d| Instant::now() >= d)
    }

    fn pinged(&mut self) {
        let now = Instant::now();
        self.ping_at = now + self.interval.unwrap_or_default();
        if self.drop_at.is_none() {
            self.drop_at = self.grace.map(|g| now + g);
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_pings_or_pongs_are_one_event_with_the_latest_payload() {
        let mut events = Vec::new();
        for data in [&b"1"[..], b"2", b"3"] {
            push_control(&mut events, Event::Ping(Bytes::copy_from_slice(data)));
        }
        push_control(&mut events, Event::Pong(Bytes::from_static(b"a")));
        push_control(&mut events, Event::Pong(Bytes::from_static(b"b")));
        events.push(Event::Text(Bytes::from_static(b"hi")));
        push_control(&mut events, Event::Ping(Bytes::from_static(b"4")));
        let summary: Vec<String> = events.iter().map(|e| match e {
            Event::Ping(d) => format!("ping {}", String::from_utf8_lossy(d)),
            Event::Pong(d) => format!("pong {}", String::from_utf8_lossy(d)),
            Event::Text(d) => format!("text {}", String::from_utf8_lossy(d)),
            _ => unreachable!(),
        }).collect();
        assert_eq!(summary, ["ping 3", "pong b", "text hi", "ping 4"]);
    }
}
