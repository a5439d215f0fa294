//! The first bytes of an accepted socket on a TLS server: a TLS hello starts the TLS handshake; anything else is
//! reported to the application, which may let the connection go on in plain text on the same
//! port (`disableSSL`) — its requests are then marked `redirect`, so it can send the client to https.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::failure::Failure;
use super::server::Server;
use super::socket::Socket;
use super::Event;

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;

/// The socket to speak on, and whether it is plain text allowed on a TLS port. None: the connection ended.
pub async fn open(server: &Arc<Server>, tcp: TcpStream, peer: SocketAddr, local: SocketAddr) -> Option<(Socket, bool)> {
    let Some((config, resolver)) = server.config.tls.clone() else { return Some((Socket::plain(tcp), false)) };
    // On the heap: a buffer in the future would stay allocated with every connection's task.
    let mut first = vec![0u8; 4096];
    let seen = match timeout(server.config.handshake_timeout, tcp.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => {
            server.report_failure(peer, local, Failure::Dropped);
            return None;
        }
    };
    if first[0] != TLS_HANDSHAKE {
        return plain_fallback(server, tcp, peer, local, Bytes::copy_from_slice(&first[..seen])).await;
    }
    let tls = rustls::ServerConnection::new(config).ok()?;
    let socket = Socket::tls(tcp, tls);
    match timeout(server.config.handshake_timeout, socket.complete_handshake()).await {
        Ok(Ok(())) => Some((socket, false)),
        Ok(Err(_)) => {
            let name = socket.server_name();
            let failure = match name {
                Some(name) if !resolver.knows(&name) && resolver.find(Some(&name)).is_none() => Failure::UnknownHost(name),
                _ => Failure::TlsHandshake,
            };
            server.report_failure(peer, local, failure);
            socket.linger().await;
            None
        }
        Err(_) => {
            server.report_failure(peer, local, Failure::Timeout);
            None
        }
    }
}

/// Asks the application whether a client that did not start TLS may go on in plain text.
async fn plain_fallback(server: &Arc<Server>, tcp: TcpStream, peer: SocketAddr, local: SocketAddr, bytes: Bytes) -> Option<(Socket, bool)> {
    if !server.wants_errors() {
        return None;
    }
    let (decide, decided) = oneshot::channel();
    let event = Event::Failure { failure: Failure::NotTls(bytes), peer, local, decide: Some(decide) };
    if !server.sink.deliver_one(event) {
        return None;
    }
    match timeout(server.config.handshake_timeout, decided).await {
        Ok(Ok(true)) => Some((Socket::plain(tcp), true)),
        _ => None,
    }
}
