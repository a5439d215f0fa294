//! Backpressure towards the consumer: bytes delivered but not yet consumed. Readers stop reading their sockets
//! while it is over its limit, so a slow JavaScript thread bounds memory instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

pub struct Backlog {
    bytes: AtomicUsize,
    limit: usize,
    room: Notify,
}

impl Backlog {
    pub fn new(limit: usize) -> Self {
        Backlog { bytes: AtomicUsize::new(0), limit, room: Notify::new() }
    }

    pub fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Called by the consumer after it took `n` bytes.
    pub fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.bytes.fetch_sub(n, Ordering::AcqRel);
        if before > self.limit && before - n <= self.limit {
            self.room.notify_waiters();
        }
    }

    /// Over its limit: producers wait for `room`.
    pub fn is_full(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > self.limit
    }

    /// Resolves once the backlog is at or under its limit.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            if self.bytes.load(Ordering::Acquire) <= self.limit {
                return;
            }
            notified.await;
        }
    }
}
