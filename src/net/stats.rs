//! A server's counters, kept with relaxed atomics where the work happens and read all at once by `stats()`.
//! The read path adds once per read, not once per message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Close codes in order, each with its count.
pub type CodeCounts = Vec<(u16, u64)>;

#[derive(Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// Upgrades refused: by the protocol checks, by a connection limit, by the application, while closing.
    pub refused_invalid: AtomicU64,
    pub refused_limit: AtomicU64,
    pub refused_by_application: AtomicU64,
    pub refused_closing: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_compressed: AtomicU64,
    /// Payload bytes compression saved (before minus after).
    pub bytes_saved: AtomicU64,
    /// Times a connection stopped being read because its queue was over maxBackpressure.
    pub backpressure_pauses: AtomicU64,
    /// Times a connection stopped being read because it sent faster than its rate limit.
    pub rate_limited: AtomicU64,
    /// Deliveries a broadcast or publication skipped (the connection's queue was over broadcastLimit).
    pub skipped: AtomicU64,
    /// Publications the backplane dropped (its queue was full while Redis was away).
    pub backplane_dropped: AtomicU64,
    closes_sent: Mutex<BTreeMap<u16, u64>>,
    closes_received: Mutex<BTreeMap<u16, u64>>,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    /// A connection ended with `code`, which this side sent (or, for `received`, the peer did).
    pub fn closed(&self, code: u16, received: bool) {
        let map = if received { &self.closes_received } else { &self.closes_sent };
        *map.lock().unwrap().entry(code).or_insert(0) += 1;
    }

    /// Close codes and how often each was sent, then received.
    pub fn close_codes(&self) -> (CodeCounts, CodeCounts) {
        let list = |m: &Mutex<BTreeMap<u16, u64>>| m.lock().unwrap().iter().map(|(c, n)| (*c, *n)).collect();
        (list(&self.closes_sent), list(&self.closes_received))
    }
}
