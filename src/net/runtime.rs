//! The one tokio runtime of the process, started on first use.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Worker threads: `FERROWS_THREADS`, else the `threads` option of the first server, else min(cores, 4).
pub fn runtime(threads: Option<usize>) -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            let from_env = std::env::var("FERROWS_THREADS").ok().and_then(|v| v.parse().ok());
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let workers = from_env.or(threads).unwrap_or(cores.min(4)).max(1);
            Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("ferrows")
                .on_thread_start(yield_to_javascript)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the ferrows runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A network thread woken on a core where JavaScript runs waits for JavaScript to block or use up its slice,
/// instead of preempting it (SCHED_BATCH: the same share of the core, no wake-up preemption). Sharing one core,
/// the two threads otherwise switched about 8 times per 64 messages of a 16 KiB echo; now once. A thread that
/// cannot change its policy keeps the default one.
fn yield_to_javascript() {
    #[cfg(target_os = "linux")]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
    }
}
