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
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the ferrows runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}
