//! A wake-up for the one task that waits on it (a connection's reader): a flag and a waker slot. Unlike tokio's
//! `Notify`, whose waiting future carries a 64-byte waiter node, waiting here adds a reference to the task's
//! state, and a connection's task is most of what an idle connection costs.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Signal {
    /// Raised by `notify` and taken by the wait it ends; one pending wake-up at most, as Notify's permit.
    raised: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

impl Signal {
    /// Wakes the waiting task, or the next wait if none is waiting.
    pub fn notify(&self) {
        self.raised.store(true, Ordering::Release);
        if let Some(waker) = self.waiter.lock().unwrap().take() {
            waker.wake();
        }
    }

    /// Resolves once `notify` was called (since the last wait that resolved).
    pub async fn notified(&self) {
        poll_fn(|cx| self.poll_notified(cx)).await
    }

    /// Ready (taking the wake-up) once `notify` was called; otherwise `cx` is woken by the next `notify`.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        let mut waiter = self.waiter.lock().unwrap();
        if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waiter = Some(cx.waker().clone());
        }
        drop(waiter);
        // A notify between the first check and the waker being stored would otherwise be missed.
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_notify_before_the_wait_is_kept_and_one_during_it_wakes_it() {
        let signal = Arc::new(Signal::default());
        signal.notify();
        signal.notify();
        // The two notifies left one wake-up: the first wait ends at once, the second waits.
        signal.notified().await;
        let waiting = tokio::time::timeout(Duration::from_millis(20), signal.notified()).await;
        assert!(waiting.is_err());
        let notifier = signal.clone();
        let task = tokio::spawn(async move { notifier.notified().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        signal.notify();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("woken").unwrap();
    }
}
