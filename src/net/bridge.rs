//! A connection whose bytes pass through JavaScript: for sockets Node owns that cannot be taken over by their
//! descriptor (a TLS socket of an `https.Server`, a unix socket, any Duplex). JavaScript feeds what the socket
//! reads; what the connection writes goes back as `Output` events for JavaScript to write. Backpressure holds
//! both ways: a full Node socket blocks the writer, and a reader that falls behind pauses the Node socket.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Mutex, Notify};

use super::{Event, Sink};

/// Bytes fed but not yet read, past which JavaScript is asked to pause its socket.
const INPUT_LIMIT: usize = 1024 * 1024;

pub struct Bridge {
    input: Mutex<mpsc::UnboundedReceiver<Bytes>>,
    feeder: mpsc::UnboundedSender<Bytes>,
    queued: AtomicUsize,
    /// JavaScript paused its socket because `queued` passed the limit.
    paused: AtomicBool,
    /// The Node socket's write buffer is full (its `write()` returned false) until its `drain`.
    blocked: AtomicBool,
    unblocked: Notify,
    /// Where `Output`, `BridgeEnd` and `BridgeResume` go: the JavaScript object holding the Node socket.
    /// None once JavaScript released it; the lock keeps every event before the final `Closed`.
    out: std::sync::Mutex<Option<Sink>>,
}

impl Bridge {
    pub fn new(out: Sink) -> Self {
        let (feeder, input) = mpsc::unbounded_channel();
        Bridge {
            input: Mutex::new(input),
            feeder,
            queued: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            unblocked: Notify::new(),
            out: std::sync::Mutex::new(Some(out)),
        }
    }

    /// What the Node socket read; false when JavaScript should pause the socket (it gets `BridgeResume`).
    pub fn feed(&self, data: Bytes) -> bool {
        let queued = self.queued.fetch_add(data.len(), Ordering::AcqRel) + data.len();
        let _ = self.feeder.send(data);
        if queued > INPUT_LIMIT {
            self.paused.store(true, Ordering::Release);
            return false;
        }
        true
    }

    /// The Node socket ended: reads see the end of the stream.
    pub fn end_input(&self) {
        let _ = self.feeder.send(Bytes::new());
    }

    pub async fn read(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let data = self.input.lock().await.recv().await.unwrap_or_default();
        let left = self.queued.fetch_sub(data.len(), Ordering::AcqRel) - data.len();
        if left <= INPUT_LIMIT / 2 && self.paused.swap(false, Ordering::AcqRel) {
            self.emit(Event::BridgeResume);
        }
        buf.extend_from_slice(&data);
        Ok(data.len())
    }

    /// Hands bytes to JavaScript to write: (bytes taken, whether the Node socket is full).
    pub fn send(&self, data: &[u8]) -> (usize, bool) {
        if self.blocked.load(Ordering::Acquire) {
            return (0, true);
        }
        if !data.is_empty() && !self.emit(Event::Output(Bytes::copy_from_slice(data))) {
            // Nobody writes for this connection any more: what it sends is dropped, as on a closed socket.
            return (data.len(), false);
        }
        (data.len(), false)
    }

    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Release);
        if !blocked {
            self.unblocked.notify_waiters();
        }
    }

    pub async fn writable(&self) {
        loop {
            let unblocked = self.unblocked.notified();
            if !self.blocked.load(Ordering::Acquire) {
                return;
            }
            unblocked.await;
        }
    }

    /// Asks JavaScript to end (or, `abort`, destroy) the Node socket.
    pub fn close(&self, abort: bool) {
        self.emit(Event::BridgeEnd { abort });
    }

    fn emit(&self, event: Event) -> bool {
        self.out.lock().unwrap().as_ref().is_some_and(|sink| sink.deliver_one(event))
    }

    /// JavaScript's socket is gone: a last event frees the slot, nothing follows it.
    pub fn release(&self) {
        self.end_input();
        self.set_blocked(false);
        if let Some(sink) = self.out.lock().unwrap().take() {
            sink.deliver_one(Event::Closed { code: 0, reason: String::new() });
        }
    }
}
