//! A listening socket and its accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Type};
use tokio::net::TcpListener;

use super::backplane::Backplane;
use super::http::serve;
use super::runtime::runtime;
use super::server::{Server, ServerConfig};
use super::Sink;

/// Binds `addr` (an IPv6 wildcard also takes IPv4) and starts accepting on the runtime.
pub fn listen(addr: SocketAddr, backlog: i32, config: ServerConfig, sink: Sink, threads: Option<usize>) -> io::Result<Arc<Server>> {
    let rt = runtime(threads).map_err(io::Error::other)?;
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    let listener = {
        let _guard = rt.enter();
        TcpListener::from_std(socket.into())?
    };
    let server = Arc::new(Server::new(config, sink, listener.local_addr()?, false));
    rt.spawn(accept_loop(server.clone(), listener));
    Backplane::start(rt, &server);
    Ok(server)
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    let mut spare = reserve_descriptor();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => { tokio::spawn(serve(server.clone(), stream, peer)); }
                Err(e) if is_out_of_descriptors(&e) && spare.is_some() => {
                    // At the open-file limit: give up the spare for a moment to take the waiting connection and
                    // reset it, so its client learns at once instead of timing out in the backlog.
                    drop(spare.take());
                    if let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    }
                    spare = reserve_descriptor();
                }
                // Out of memory and the like, or no spare: wait instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    spare = spare.or_else(reserve_descriptor);
                }
            },
            _ = server.stop.notified() => break,
        }
    }
    drop(listener);
    server.shut_down();
}

/// A descriptor held in reserve for the accept loop (see there).
fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

