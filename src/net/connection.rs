//! One open WebSocket connection: its state, the task that reads frames and turns them into events, and how it
//! ends (the close handshake, timeouts, failures, each with a code). The opening handshake is in `upgrade`,
//! the sending side in `send`.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, timeout, Instant, Sleep};

use super::signal::Signal;

use super::failure::Failure;
use super::limits::{Budget, NOT_ADMITTED};
use super::stats;
use super::send::Compression;
use super::upgrade::Handshake;
use super::server::Server;
use super::socket::{Socket, LINGER};
use super::outbox::Outbox;
use super::read_buffer;
use super::route::Route;
use super::Event;
use crate::protocol::close::{ABNORMAL, GOING_AWAY};
use crate::protocol::frame::OP_PONG;
use crate::protocol::deflate::Negotiated;
use crate::protocol::receiver::{Message, Receiver};
use crate::protocol::sender::{encode_close, encode_frame_with};

pub const CONNECTING: u8 = 0;
pub const OPEN: u8 = 1;
pub const CLOSING: u8 = 2;
pub const CLOSED: u8 = 3;

/// How often a quiet connection checks whether its compression states can be released.
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub struct Conn {
    /// Unique within its server.
    pub id: u64,
    /// Taken when the connection ends, so that its descriptor is closed then, not when JavaScript's object for
    /// the connection is collected (which may be many seconds later).
    pub(super) socket: Mutex<Option<Arc<Socket>>>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub outbox: Outbox,
    pub(super) server: Arc<Server>,
    pub(super) negotiated: Option<Negotiated>,
    /// Boxed: a connection without permessage-deflate holds a pointer, not the compressor's fields.
    pub(super) compression: Option<Box<Compression>>,
    pub(super) state: AtomicU8,
    pub(super) aggregate: AtomicBool,
    /// The application stopped reading (ws's pause()).
    pub(super) paused: AtomicBool,
    /// Data frames go to the application one by one (WebSocket-Node's assembleFragments: false).
    pub(super) frames: AtomicBool,
    /// Pings and pongs are reported to the application (it listens for them); pings are answered either way.
    pub(super) control_events: AtomicBool,
    /// In place rather than behind an Arc of its own: one allocation less per connection.
    pub(super) handshake: Handshake,
    /// The application's answer to the upgrade (`upgrade::PENDING`, `ACCEPTED` or `REFUSED`), decided once.
    pub(super) decision: AtomicU8,
    /// Where events go; it can move to another thread.
    pub route: Route,
    /// Its place in the connection limits (`Admission::keep`), given back when it ends.
    pub(super) admission: AtomicU8,
}

/// Most events one read's list keeps room for between reads.
const EVENTS_KEPT: usize = 1024;

thread_local! {
    /// The event list of the read this thread is handling, reused by every connection's reads: one of its own
    /// per read grew from empty (a malloc and a realloc per read, a quarter of the 32-byte echo's allocations).
    static EVENTS: Cell<Vec<Event>> = const { Cell::new(Vec::new()) };
}

/// Returns a read's (handed over, so empty) event list for the thread's next read.
fn give_back_events(mut events: Vec<Event>) {
    if events.capacity() <= EVENTS_KEPT {
        events.clear();
        EVENTS.set(events);
    }
}

/// A spell of the connection's work: its read loop until the connection comes to rest or ends; once it ended,
/// the closing handshake and the release of what it held.
// An async block rather than an async fn: an async fn keeps a second copy of each argument in its state.
fn work(conn: Arc<Conn>, socket: Arc<Socket>, mut buf: BytesMut) -> impl Future<Output = Progress> + Send {
    async move {
        let Some(ending) = conn.read_loop(&socket, &mut buf).await else { return Progress::Resting };
        drop(buf);
        // Boxed: the closing phase's state is allocated when a connection closes, not held by every open one.
        Box::pin(conn.conclude(ending, &socket)).await;
        conn.end(socket);
        Progress::Ended
    }
}

enum Progress {
    /// Nothing is in progress: the read loop's state can go until the client sends again.
    Resting,
    Ended,
}

/// The task of an open connection. While the connection works, the read loop's state is boxed here; while it
/// rests (most of an idle connection's life) the task holds its two references only and waits for bytes on the
/// socket or the connection's signal, then starts a new spell of work. That is 24 bytes, which fit in tokio's
/// smallest task cell (128 bytes): a resting connection's task allocates nothing beyond it.
struct Task<F, W> {
    conn: Arc<Conn>,
    socket: Arc<Socket>,
    working: Option<Pin<Box<F>>>,
    /// `work`: a function item, no bytes.
    resume: W,
}

impl<F, W> Future for Task<F, W>
where
    F: Future<Output = Progress>,
    W: Fn(Arc<Conn>, Arc<Socket>, BytesMut) -> F + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let task = self.get_mut();
        loop {
            if let Some(working) = &mut task.working {
                match working.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Progress::Ended) => return Poll::Ready(()),
                    Poll::Ready(Progress::Resting) => task.working = None,
                }
            }
            let bytes = task.socket.poll_read_ready(cx).is_none_or(|ready| ready.is_ready());
            if !bytes && task.conn.wake_reader().poll_notified(cx).is_pending() {
                return Poll::Pending;
            }
            task.working = Some(Box::pin((task.resume)(task.conn.clone(), task.socket.clone(), BytesMut::new())));
        }
    }
}

/// Why the read loop ended.
enum Ending {
    PeerClosed(u16, String),
    Failed(Failure),
    Dropped,
    /// Keepalive: no answer to a ping within the grace period.
    Unresponsive,
}

impl Conn {
    pub fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// The socket, while the connection has not ended.
    pub(super) fn socket(&self) -> Option<Arc<Socket>> {
        self.socket.lock().unwrap().clone()
    }

    /// The connection ended: what it holds is freed now rather than when JavaScript's object for it is collected.
    /// Nothing more is written, and the descriptor closes as soon as a writer still waiting for the socket has
    /// given up (an abort wakes it when anything was left unsent); the compressor's state goes too.
    pub(super) fn release(&self, socket: Arc<Socket>) {
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


    /// The last event: nothing is delivered after it.
    pub(super) fn emit_closed(&self, code: u16, reason: String) {
        self.route.emit_last(Event::Closed { code, reason });
    }

    /// The opening request (kept: a connection handed to another thread shows it again there).
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Wakes the reader when something outside it changed (a close was queued, the queue drained), and before
    /// that the upgrade's task when the application decided. The outbox holds it: its writer is one of the wakers.
    pub(super) fn wake_reader(&self) -> &Signal {
        &self.outbox.reader
    }

    /// Wakes the reader (a queued connection got its receiving thread).
    pub fn wake(&self) {
        self.wake_reader().notify();
    }

    /// Starts the closing handshake from this side (a pending upgrade is refused instead).
    pub fn close(self: &Arc<Self>, code: u16, reason: &[u8]) {
        if self.state() == CONNECTING {
            self.reject(503, "Service Unavailable", &[]);
            return;
        }
        if self.state.compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.server.stats.closed(code, false);
            let mask = self.mask();
            self.outbox.push_close(|buf| encode_close(buf, code, reason, mask));
            self.write_now();
            self.wake_reader().notify();
        }
    }

    pub fn set_no_delay(&self, on: bool) -> io::Result<()> {
        self.socket().map_or(Ok(()), |s| s.set_nodelay(on))
    }

    /// Data frames one by one instead of messages; takes effect when the connection opens.
    pub fn set_frames(&self, on: bool) {
        self.frames.store(on, Ordering::Release);
    }

    /// Report pings and pongs as events (an application without ping or pong listeners pays nothing for them).
    pub fn set_control_events(&self, on: bool) {
        self.control_events.store(on, Ordering::Relaxed);
    }

    /// Stops (true) or restarts (false) reading from the socket.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.wake_reader().notify();
        }
    }

    /// Drops the connection at once, without a closing handshake (ws's terminate()); it closes with 1006.
    pub fn terminate(&self) {
        if let Some(socket) = self.socket() {
            socket.abort();
        }
        self.paused.store(false, Ordering::Release);
        self.wake_reader().notify();
    }

    /// Starts the task of the open connection: it reads and dispatches until the connection closes, then reports
    /// how. `buf` holds what the client sent after its upgrade request.
    pub(super) fn start(self: Arc<Self>, socket: Arc<Socket>, buf: BytesMut) {
        let working = Some(Box::pin(work(self.clone(), socket.clone(), buf)));
        tokio::spawn(Task { conn: self, socket, working, resume: work });
    }

    /// The connection is over: what it held goes, with its place in the connection limits.
    pub(super) fn end(&self, socket: Arc<Socket>) {
        self.release(socket);
        self.server.topics.leave_all(self);
        self.server.untrack(self.id);
        self.server.admissions.give_back_kept(self.admission.swap(NOT_ADMITTED, Ordering::AcqRel), self.peer.ip());
        // What a closed connection held (queues, buffers, the events it caused) goes back to the system soon.
        super::memory::released();
    }

    /// The end of an open connection: the application's last answers, the closing handshake, then `Closed`.
    async fn conclude(&self, ending: Ending, socket: &Socket) {
        if !matches!(ending, Ending::Dropped) {
            // Let the application answer the messages that came before the close, as a single-threaded server would.
            let (handled, wait) = oneshot::channel();
            if self.route.emit(&mut vec![Event::Barrier(handled)]) {
                let _ = timeout(self.server.config.close_timeout, wait).await;
            }
        }
        let (code, reason) = match ending {
            Ending::PeerClosed(code, reason) => {
                self.server.stats.closed(code, true);
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
                self.server.stats.closed(code, false);
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

    fn read_loop<'a>(self: &'a Arc<Self>, socket: &'a Socket, buf: &'a mut BytesMut) -> impl Future<Output = Option<Ending>> + Send + 'a {
        async move {
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
            // Pongs queued by this read, written once its events are handed over.
            let mut answered = false;
            let mut close_deadline: Option<Instant> = None;
            let config = &self.server.config;
            let limits = &config.limits;
            // WebSocket-Node's keepalive, or uWS.js-style pings halfway through the idle timeout.
            let mut keepalive = match (config.keepalive_interval, limits.idle_timeout) {
                (Some(interval), _) => Some(Box::new(Keepalive::new(interval, config.keepalive_grace))),
                (None, Some(idle)) if limits.ping_when_idle => Some(Box::new(Keepalive::new(idle / 2, None))),
                _ => None,
            };
            // Boxed, as the keepalive: state only a server with these limits pays for in every connection.
            let mut budget = Budget::new(limits).map(Box::new);
            let needs_clock = limits.idle_timeout.is_some() || limits.max_lifetime.is_some() || self.compression.is_some();
            let mut clock = needs_clock.then(|| Box::new(Clock::new()));
            let mut timer = Timer::default();
            loop {
                // Data messages and their bytes in this read, for the stats and the rate limits (a block of their
                // own, so that they are not part of the task's state while it waits).
                let over_rate = {
                    let mut events = EVENTS.take();
                    let (mut messages, mut bytes) = (0u64, 0u64);
                    loop {
                        match receiver.read(buf) {
                            Ok(Some(Message::Close(code, reason))) => {
                                self.deliver(&mut events, &mut answered);
                                self.count_in(messages, bytes);
                                return Some(Ending::PeerClosed(code, reason));
                            }
                            Ok(Some(message)) => {
                                if let Message::Text(data) | Message::Binary(data) | Message::Frame { data, .. } = &message {
                                    messages += 1;
                                    bytes += data.len() as u64;
                                }
                                answered |= self.on_message(message, &mut events);
                            }
                            Ok(None) => break,
                            Err(err) => {
                                self.deliver(&mut events, &mut answered);
                                return Some(Ending::Failed(Failure::Protocol(err)));
                            }
                        }
                    }
                    let delivered = self.deliver(&mut events, &mut answered);
                    give_back_events(events);
                    if !delivered {
                        return Some(Ending::Failed(Failure::ConsumerGone));
                    }
                    self.count_in(messages, bytes);
                    budget.as_mut().filter(|_| messages > 0).and_then(|b| b.spend(messages, bytes))
                };
                if let Some(wait) = over_rate {
                    if !limits.pause_over_rate {
                        return Some(Ending::Failed(Failure::RateLimited));
                    }
                    // Over its rate: nothing more is read from this client until its budget allows.
                    stats::add(&self.server.stats.rate_limited, 1);
                    timer.set(Instant::now() + wait);
                    tokio::select! {
                        _ = timer.fired() => {}
                        _ = self.wake_reader().notified() => continue,
                    }
                }
                if buf.is_empty() {
                    // Nothing partial is waiting: drop the read buffer and an empty write queue's buffers, so a
                    // quiet connection holds none of them.
                    read_buffer::give_back(buf);
                    self.outbox.release_if_empty();
                }
                if self.paused.load(Ordering::Acquire) && self.state() == OPEN {
                    // Paused by the application (ws's pause()): read nothing until resume() or a close.
                    self.wake_reader().notified().await;
                    continue;
                }
                if close_deadline.is_none() && self.state() == CLOSING {
                    close_deadline = Some(Instant::now() + self.server.config.close_timeout);
                }
                if self.over_backpressure() {
                    if self.server.config.close_on_backpressure_limit && self.state() == OPEN {
                        return Some(Ending::Failed(Failure::Backpressure));
                    }
                    // The client is not reading what it caused: stop reading it until the queue is half drained.
                    stats::add(&self.server.stats.backpressure_pauses, 1);
                    timer.set_or_clear(close_deadline);
                    // The outbox's writer wakes the reader once the queue is down to the mark (and the loop looks
                    // again: whatever else woke it, too).
                    if self.outbox.wake_reader_at(self.server.config.max_backpressure / 2) {
                        tokio::select! {
                            _ = self.wake_reader().notified() => continue,
                            _ = timer.fired() => return Some(Ending::Dropped),
                        }
                    }
                }
                {
                    let Some(consumer) = self.route.consumer() else {
                        if self.route.is_ended() {
                            return Some(Ending::Dropped);
                        }
                        // Queued for a receiving thread: nothing is read until one takes the connection.
                        self.wake_reader().notified().await;
                        continue;
                    };
                    if consumer.backlog().is_full() {
                        timer.set_or_clear(close_deadline);
                        tokio::select! {
                            // Boxed: a wait only a busy thread causes, kept out of the state every connection's
                            // task holds.
                            _ = Box::pin(consumer.backlog().room()) => {}
                            _ = self.wake_reader().notified() => continue,
                            _ = timer.fired() => return Some(Ending::Dropped),
                        }
                    }
                }
                // One timer for whatever is due first: the close deadline, the idle or lifetime limit, the keepalive
                // ping, the compression states' idle check (one sleep in the task's state, not four). The times are
                // worked out again when it fires rather than kept across the wait.
                let next = {
                    let t = self.timers(clock.as_deref(), keepalive.as_deref());
                    [close_deadline, t.limit, t.keepalive, t.idle_check].into_iter().flatten().min()
                };
                if next.is_none() && buf.capacity() == 0 && receiver.at_rest() && keepalive.is_none() && budget.is_none() && clock.is_none() {
                    // Nothing half read, nothing timed: unless bytes are waiting already, the task lets go of this
                    // state (see Task) and waits holding its two references only.
                    let waiting = poll_fn(|cx| Poll::Ready(socket.poll_read_ready(cx).is_some_and(|ready| ready.is_pending()))).await;
                    if waiting {
                        return None;
                    }
                }
                timer.set_or_clear(next);
                tokio::select! {
                    read = socket.read_some(buf) => match read {
                        Ok(0) | Err(_) => return Some(Ending::Dropped),
                        Ok(_) => {
                            if let Some(keepalive) = &mut keepalive {
                                keepalive.heard();
                            }
                            if let Some(clock) = clock.as_mut().filter(|_| limits.idle_timeout.is_some()) {
                                clock.last_heard = Instant::now();
                            }
                        }
                    },
                    _ = self.wake_reader().notified() => {}
                    _ = timer.fired() => {
                        let now = Instant::now();
                        let due = |at: Option<Instant>| at.is_some_and(|at| now >= at);
                        if due(close_deadline) {
                            return Some(Ending::Dropped);
                        }
                        let timers = self.timers(clock.as_deref(), keepalive.as_deref());
                        if due(timers.limit) {
                            let idle = clock.as_ref().is_some_and(|c| limits.idle_timeout.is_some_and(|d| now >= c.last_heard + d));
                            self.close(GOING_AWAY, if idle { b"idle timeout" } else { b"max lifetime" });
                        }
                        if let Some(keepalive) = keepalive.as_mut().filter(|_| due(timers.keepalive)) {
                            if keepalive.expired() {
                                return Some(Ending::Unresponsive);
                            }
                            if self.queue_frame(crate::protocol::frame::OP_PING, 0, |_| {}) {
                                self.write_now();
                            }
                            keepalive.pinged();
                        }
                        if let Some(clock) = clock.as_mut().filter(|_| due(timers.idle_check)) {
                            clock.next_idle_check = now + IDLE_CHECK;
                            self.release_idle_compressor();
                            if receiver.release_idle() {
                                super::memory::released();
                            }
                        }
                    }
                }
            }
        }
    }

    /// When the connection's limits, keepalive and compression check are due next.
    fn timers(&self, clock: Option<&Clock>, keepalive: Option<&Keepalive>) -> Timers {
        let limits = &self.server.config.limits;
        // The idle timeout or the end of the connection's lifetime, whichever comes first.
        let limit = match clock {
            Some(clock) if self.state() == OPEN => [limits.idle_timeout.map(|d| clock.last_heard + d), limits.max_lifetime.map(|d| clock.opened + d)]
                .into_iter()
                .flatten()
                .min(),
            _ => None,
        };
        Timers {
            limit,
            keepalive: keepalive.map(|k| k.next()),
            idle_check: clock.filter(|_| self.compression.is_some()).map(|c| c.next_idle_check),
        }
    }

    /// Counts what a read delivered (one addition per read, not per message).
    fn count_in(&self, messages: u64, bytes: u64) {
        if messages > 0 {
            stats::add(&self.server.stats.messages_in, messages);
            stats::add(&self.server.stats.bytes_in, bytes);
        }
    }

    /// Turns a message into its event; true when it queued a pong.
    fn on_message(&self, message: Message, events: &mut Vec<Event>) -> bool {
        match message {
            Message::Text(data) => events.push(Event::Text(data)),
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
            self.write_now();
        }
        events.is_empty() || self.route.emit(events)
    }
}

/// Consecutive pings (or pongs) in one read reported one by one before the rest are merged (see push_control).
const CONTROL_RUN: usize = 8;

/// Adds a ping or pong event. Past a run of `CONTROL_RUN` of the same kind it replaces the last one instead: a
/// flood of control frames read together reaches the application as a few notifications with the latest
/// payload, so it costs JavaScript next to nothing per frame (pings are answered natively, each one), while an
/// application that sends a few pings or pongs at once sees each of them, as in ws.
fn push_control(events: &mut Vec<Event>, event: Event) {
    let same = |e: &Event| matches!((e, &event), (Event::Ping(_), Event::Ping(_)) | (Event::Pong(_), Event::Pong(_)));
    let run = events.iter().rev().take(CONTROL_RUN).take_while(|e| same(e)).count();
    match events.last_mut() {
        Some(last) if run == CONTROL_RUN => *last = event,
        _ => events.push(event),
    }
}

/// The read loop's times, for servers with an idle timeout, a lifetime or compression (boxed: the others'
/// connections hold a pointer).
struct Clock {
    opened: Instant,
    last_heard: Instant,
    next_idle_check: Instant,
}

impl Clock {
    fn new() -> Self {
        let now = Instant::now();
        Clock { opened: now, last_heard: now, next_idle_check: now + IDLE_CHECK }
    }
}

/// What the read loop's timer may be waiting for.
struct Timers {
    limit: Option<Instant>,
    keepalive: Option<Instant>,
    idle_check: Option<Instant>,
}

/// WebSocket-Node's keepalive, on the connection's own task: a ping after `interval` of silence, and, with a
/// grace period, the connection dropped if the silence lasts that much longer.
struct Keepalive {
    interval: Duration,
    grace: Option<Duration>,
    ping_at: Instant,
    drop_at: Option<Instant>,
}

impl Keepalive {
    fn new(interval: Duration, grace: Option<Duration>) -> Self {
        Keepalive { interval, grace, ping_at: Instant::now() + interval, drop_at: None }
    }

    /// Anything received counts as a sign of life.
    fn heard(&mut self) {
        self.ping_at = Instant::now() + self.interval;
        self.drop_at = None;
    }

    fn next(&self) -> Instant {
        self.drop_at.map_or(self.ping_at, |d| d.min(self.ping_at))
    }

    fn expired(&self) -> bool {
        self.drop_at.is_some_and(|d| Instant::now() >= d)
    }

    fn pinged(&mut self) {
        let now = Instant::now();
        self.ping_at = now + self.interval;
        if self.drop_at.is_none() {
            self.drop_at = self.grace.map(|g| now + g);
        }
    }
}

/// The read loop's one timer. Allocated by the first connection state that needs a deadline and reused after
/// (a tokio Sleep is 112 bytes: most connections, with no timeout configured, never hold one).
#[derive(Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Timer {
    fn set(&mut self, at: Instant) {
        self.armed = true;
        match &mut self.sleep {
            Some(sleep) if sleep.deadline() == at => {}
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(sleep_until(at))),
        }
    }

    fn set_or_clear(&mut self, at: Option<Instant>) {
        match at {
            Some(at) => self.set(at),
            None => self.armed = false,
        }
    }

    /// Resolves at the deadline set; never while none is.
    async fn fired(&mut self) {
        match &mut self.sleep {
            Some(sleep) if self.armed => sleep.as_mut().await,
            _ => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_run_of_pings_or_pongs_is_reported_up_to_a_bound_then_merged_into_the_latest() {
        let mut events = Vec::new();
        for i in 0..20u8 {
            push_control(&mut events, Event::Ping(Bytes::copy_from_slice(&[b'a' + i])));
        }
        push_control(&mut events, Event::Pong(Bytes::from_static(b"1")));
        push_control(&mut events, Event::Pong(Bytes::from_static(b"2")));
        events.push(Event::Text(Bytes::from_static(b"hi")));
        push_control(&mut events, Event::Ping(Bytes::from_static(b"!")));
        let summary: Vec<String> = events.iter().map(|e| match e {
            Event::Ping(d) => format!("ping {}", String::from_utf8_lossy(d)),
            Event::Pong(d) => format!("pong {}", String::from_utf8_lossy(d)),
            Event::Text(d) => format!("text {}", String::from_utf8_lossy(d)),
            _ => unreachable!(),
        }).collect();
        // a..g one by one, then the last of the run (t) in place of h..s.
        let mut expected: Vec<String> = (b'a'..=b'g').map(|c| format!("ping {}", c as char)).collect();
        expected.extend(["ping t", "pong 1", "pong 2", "text hi", "ping !"].map(String::from));
        assert_eq!(summary, expected);
    }
}
