//! The sending side of a connection: frames queued from any thread (compressed when that pays), the
//! backpressure they cause, and when the queue is written. Writing has one entry, `Conn::flush`: inside a
//! `corked` batch (a JavaScript thread handing out events) it waits for the batch's end, so that every send a
//! batch of handlers made leaves in one write per connection; elsewhere it writes at once, or a moment later
//! with `aggregate`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::{sleep, Instant};

use super::connection::{Conn, OPEN};
use super::outbox::Flushed;
use super::runtime::runtime;
use super::socket::Socket;
use super::stats;
use super::Event;
use crate::protocol::deflate::Deflater;
use crate::protocol::frame::header_bytes;
use crate::protocol::sender::{encode_frame_with, encode_small_frame_with};

/// How long aggregated sends wait for company before they are written.
const AGGREGATE_DELAY: Duration = Duration::from_millis(2);
/// From this size a payload in the sender's memory is written from there when the socket takes it, instead of
/// copied into the queue to wait for the batch's write: the copy, and the queue's growth to hold it, cost more
/// than the write of its own it takes (perf, 16 KiB echo: the copy, the queue's reallocation and the page faults
/// of fresh queue memory were 15 % of the JavaScript thread).
const WRITE_THROUGH_AT: usize = 16 * 1024;

/// The sending half of permessage-deflate on a connection.
pub(super) struct Compression {
    pub(super) deflater: Mutex<Deflater>,
    /// Compress at all (false: the extension is accepted for input only).
    pub(super) enabled: bool,
    pub(super) threshold: usize,
    /// Set by every compression, cleared by the idle check: a compressor unused for a whole check is released.
    pub(super) used: AtomicBool,
}

thread_local! {
    /// The connections flushed during the corked batch this thread is running (None outside one).
    static CORKED: RefCell<Option<Vec<Arc<Conn>>>> = const { RefCell::new(None) };
    /// Scratch space for compressed payloads, reused by every connection sending from this thread.
    static COMPRESSED: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// A random masking key, for servers configured to mask (sack's `masking` option).
fn random_mask() -> [u8; 4] {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) as u32).to_ne_bytes()
}

/// Runs `batch` with this thread's writes held back, then writes every connection flushed during it once.
pub fn corked<R>(batch: impl FnOnce() -> R) -> R {
    struct Uncork;
    impl Drop for Uncork {
        // Also on unwinding: a panicking batch must not leave the thread corked.
        fn drop(&mut self) {
            for conn in CORKED.with(|c| c.borrow_mut().take()).unwrap_or_default() {
                conn.write_later();
            }
        }
    }
    CORKED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let _uncork = Uncork;
    batch()
}

impl Conn {
    pub(super) fn mask(&self) -> Option<[u8; 4]> {
        self.server.config.masking.then(random_mask)
    }

    /// Queues a frame whose payload `write` appends (exactly `len` bytes); false unless the connection is open.
    pub fn queue_frame(&self, opcode: u8, len: usize, write: impl FnOnce(&mut BytesMut)) -> bool {
        if self.state() != OPEN {
            return false;
        }
        let queued = self.encode_frame(opcode, len, write);
        self.check_backpressure();
        self.count_out(queued, opcode, true, len);
        queued
    }

    /// Whether a message of at most `max_len` bytes leaves as one uncompressed frame (so it can be queued with
    /// `queue_small_frame`); `compress` is whether the sender allows compressing it.
    pub fn sends_whole(&self, max_len: usize, compress: bool) -> bool {
        !(compress && self.compresses(max_len)) && self.server.config.fragment_threshold.is_none_or(|limit| max_len <= limit)
    }

    /// Queues a frame whose payload `write` appends, at most `SMALL_MAX` bytes of a length only the write finds
    /// out (see `sends_whole`); false unless the connection is open.
    pub fn queue_small_frame(&self, opcode: u8, write: impl FnOnce(&mut BytesMut)) -> bool {
        if self.state() != OPEN {
            return false;
        }
        let mask = self.mask();
        let mut len = 0;
        let queued = self.outbox.push(|buf| len = encode_small_frame_with(buf, opcode, mask, write));
        self.check_backpressure();
        self.count_out(queued, opcode, true, len);
        queued
    }

    /// Sends a frame of `data`: a large one is written from `data` itself when it can be (see WRITE_THROUGH_AT),
    /// anything else is queued. False unless the connection is open.
    pub fn send_frame(self: &Arc<Self>, opcode: u8, data: &[u8]) -> bool {
        let through = data.len() >= WRITE_THROUGH_AT
            && !self.server.config.masking
            && self.server.config.fragment_threshold.is_none_or(|limit| data.len() <= limit)
            && !self.aggregate.load(Ordering::Relaxed);
        let socket = through.then(|| self.socket()).flatten().filter(|socket| socket.gathers());
        let Some(socket) = socket.filter(|_| self.state() == OPEN) else {
            return self.queue_frame(opcode, data.len(), |buf| buf.extend_from_slice(data));
        };
        let (header, header_len) = header_bytes(true, false, opcode, data.len(), None);
        let queued = match self.outbox.write_through(&socket, [&header[..header_len], data]) {
            Some(Flushed::NeedWriter) => {
                self.start_writer(socket);
                true
            }
            Some(Flushed::Done) => true,
            None => false,
        };
        self.check_backpressure();
        self.count_out(queued, opcode, true, data.len());
        queued
    }

    /// Queues one frame of a message sent in parts (ws's `fin: false`): `opcode` is the message's for its first
    /// frame and continuation after; such frames are neither compressed nor split further.
    pub fn queue_fragment(&self, opcode: u8, fin: bool, len: usize, write: impl FnOnce(&mut BytesMut)) -> bool {
        if self.state() != OPEN {
            return false;
        }
        let mask = self.mask();
        let queued = self.outbox.push(|buf| encode_frame_with(buf, fin, false, opcode, len, mask, write));
        self.check_backpressure();
        self.count_out(queued, opcode, fin, len);
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

    /// Counts a queued data frame (control frames are not messages).
    fn count_out(&self, queued: bool, opcode: u8, fin: bool, len: usize) {
        if queued && opcode & 0x8 == 0 {
            stats::add(&self.server.stats.messages_out, fin as u64);
            stats::add(&self.server.stats.bytes_out, len as u64);
        }
    }

    /// More queued than `max_backpressure`: the reader pauses at its next turn (or closes, see below).
    pub fn over_backpressure(&self) -> bool {
        self.outbox.buffered() > self.server.config.max_backpressure
    }

    /// With `close_on_backpressure_limit`, a queue past the limit wakes the reader now, so that it closes (1008).
    fn check_backpressure(&self) {
        if self.server.config.close_on_backpressure_limit && self.over_backpressure() {
            self.wake_reader().notify();
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
            stats::add(&self.server.stats.frames_compressed, 1);
            stats::add(&self.server.stats.bytes_saved, data.len().saturating_sub(scratch.len()) as u64);
            self.outbox.push(|buf| encode_frame_with(buf, true, true, opcode, scratch.len(), mask, |b| b.extend_from_slice(&scratch)))
        });
        self.check_backpressure();
        self.count_out(queued, opcode, true, data.len());
        queued
    }

    /// Frees the compressor if it was not used since the last check.
    pub(super) fn release_idle_compressor(&self) {
        if let Some(c) = &self.compression {
            if !c.used.swap(false, Ordering::Relaxed) && c.deflater.lock().unwrap().release() {
                super::memory::released();
            }
        }
    }

    pub fn set_aggregate(&self, on: bool) {
        self.aggregate.store(on, Ordering::Relaxed);
    }

    /// Writes the queued frames: at the end of the corked batch this thread runs, else now (with `aggregate`, a
    /// moment from now, so that more sends can join the write).
    pub fn flush(self: &Arc<Self>) {
        if !self.outbox.claim_flush() {
            return; // a flush is already on its way
        }
        let corked = CORKED.with(|c| c.borrow_mut().as_mut().map(|dirty| dirty.push(self.clone())).is_some());
        if !corked {
            self.write_later();
        }
    }

    /// A claimed flush: now, or after the aggregation delay.
    fn write_later(self: &Arc<Self>) {
        if !self.aggregate.load(Ordering::Relaxed) {
            return self.write_now();
        }
        let conn = self.clone();
        if let Ok(rt) = runtime(None) {
            rt.spawn(async move {
                sleep(AGGREGATE_DELAY).await;
                conn.write_now();
            });
        }
    }

    /// Writes what the socket takes now; a task finishes the rest when the socket is full (then `Drain`).
    pub(super) fn write_now(self: &Arc<Self>) {
        let Some(socket) = self.socket() else { return };
        if self.outbox.write_available(&socket) == Flushed::NeedWriter {
            self.start_writer(socket);
        }
    }

    /// The socket is full: a task writes the rest as it takes more, then reports `Drain`.
    fn start_writer(self: &Arc<Self>, socket: Arc<Socket>) {
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
