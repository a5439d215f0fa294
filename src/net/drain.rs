//! Graceful drain for rolling deploys: the server stops accepting at once (another process on the same port
//! takes the new connections), then closes its open connections spread evenly over a window, so that their
//! clients do not all reconnect in the same second, and reports `Drained` (then `ServerClosed`) once every
//! one is gone.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use super::connection::{CLOSING, CONNECTING, OPEN};
use super::runtime::runtime;
use super::server::Server;
use super::Event;

/// How often the drain looks whether every connection is gone.
const POLL: Duration = Duration::from_millis(20);

/// Starts draining `server`: closes with `code`/`reason` spread over `within`; connections still there at
/// `within` + the close timeout are dropped. `Event::Drained` follows.
pub fn drain(server: &Arc<Server>, code: u16, reason: Vec<u8>, within: Duration) {
    if server.is_closed() {
        return; // its last event went out already: the face answers a drain of a closed server itself
    }
    server.stop_for_drain();
    let Ok(rt) = runtime(None) else { return };
    let server = server.clone();
    rt.spawn(async move {
        let start = Instant::now();
        let conns: Vec<_> = server.connections().into_iter().filter(|c| matches!(c.state(), CONNECTING | OPEN)).collect();
        let n = conns.len().max(1) as u32;
        for (i, conn) in conns.iter().enumerate() {
            sleep_until(start + within * i as u32 / n).await;
            conn.close(code, &reason);
        }
        let give_up = start + within + server.config.close_timeout;
        while server.admissions.open() > 0 && Instant::now() < give_up {
            sleep(POLL).await;
        }
        for conn in server.connections() {
            if conn.state() == CLOSING || conn.state() == OPEN {
                conn.terminate();
            }
        }
        while server.admissions.open() > 0 {
            sleep(POLL).await;
        }
        server.sink.deliver(&mut vec![Event::Drained, Event::ServerClosed]);
    });
}
