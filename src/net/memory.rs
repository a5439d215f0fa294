//! Giving memory back to the system after idle connections released their compression states, a large write
//! queue (a client that read slowly or not at all) was freed, or handshakes finished (each held a 64 KiB read
//! buffer and its task's state while it ran).
//!
//! A deflate state is a few hundred KiB. glibc keeps freed memory in its arenas (and raises its mmap threshold
//! once large blocks are freed), so without a trim the process would keep the peak of every burst resident.
//! Releases only mark that a trim is due; one trim per interval covers any number of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use super::runtime::runtime;

static DUE: AtomicBool = AtomicBool::new(false);
static TRIMMER: Once = Once::new();
const INTERVAL: Duration = Duration::from_secs(2);

/// Notes that a large allocation was freed; a trim follows within `INTERVAL`.
pub fn released() {
    DUE.store(true, Ordering::Relaxed);
    TRIMMER.call_once(|| {
        if let Ok(rt) = runtime(None) {
            rt.spawn(async {
                loop {
                    tokio::time::sleep(INTERVAL).await;
                    if DUE.swap(false, Ordering::Relaxed) {
                        trim();
                    }
                }
            });
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
