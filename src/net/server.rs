//! The state a server's connections share: its configuration, where its events go, the open connections, its
//! topics and backplane, and closing it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;

use super::backplane::{Backplane, BackplaneConfig};
use super::bridge::Bridge;
use super::connection::Conn;
use super::upgrade::upgrade;
use super::failure::Failure;
use super::limits::{Admissions, Limits};
use super::stats::Stats;
use super::runtime::runtime;
use super::socket::Socket;
use super::tls::SniResolver;
use super::topics::Topics;
use super::{Event, Sink};
use crate::protocol::close::GOING_AWAY;
use crate::protocol::deflate::DeflateConfig;
use crate::protocol::handshake::Request;
use crate::protocol::packed_head::PackedHead;

pub struct ServerConfig {
    pub max_payload: usize,
    pub max_header_bytes: usize,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
    pub no_delay: bool,
    pub masking: bool,
    /// The status for an unsupported `Sec-WebSocket-Version`.
    pub bad_version_status: u16,
    /// permessage-deflate, when the server accepts it.
    pub deflate: Option<DeflateConfig>,
    /// The largest HTTP request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Answer pings automatically (ws's autoPong).
    pub auto_pong: bool,
    /// Ping a connection that was quiet this long (WebSocket-Node's keepalive)...
    pub keepalive_interval: Option<Duration>,
    /// ...and drop it if it then stays quiet this long.
    pub keepalive_grace: Option<Duration>,
    /// TCP keepalive probes after this much idle time (WebSocket-Node's useNativeKeepalive).
    pub tcp_keepalive: Option<Duration>,
    /// The largest frame accepted (1009 above); None: only `max_payload` applies.
    pub max_frame: Option<usize>,
    /// Outgoing messages longer than this are sent as several frames of at most this size.
    pub fragment_threshold: Option<usize>,
    /// TLS, with the resolver that picks certificates by server name.
    pub tls: Option<(Arc<rustls::ServerConfig>, Arc<SniResolver>)>,
    /// Connections with more than this many bytes queued are skipped by broadcasts and publications.
    pub broadcast_limit: usize,
    /// A connection with more than this many bytes queued is not read until its queue drained to half of it,
    /// so a client that does not read is pushed back by TCP instead of growing the server's memory.
    pub max_backpressure: usize,
    /// Close such a connection (1008) instead of pausing it.
    pub close_on_backpressure_limit: bool,
    /// Broadcasts and topics across processes, over Redis.
    pub backplane: Option<BackplaneConfig>,
    /// SO_REUSEPORT: several processes (node:cluster workers) listen on one port and the kernel spreads the
    /// connections among them.
    pub reuse_port: bool,
    /// Connection counts, rates, idle and lifetime limits.
    pub limits: Limits,
}

pub struct Server {
    pub config: ServerConfig,
    pub sink: Sink,
    pub local: SocketAddr,
    /// No listener of its own (see `detached`).
    detached: bool,
    /// Closing leaves open connections alone.
    keep_connections: AtomicBool,
    /// A drain is under way.
    draining: AtomicBool,
    closed: AtomicBool,
    /// Plain HTTP requests go to the application (else they get 426).
    requests: AtomicBool,
    /// The application listens for failures (`Event::Failure`).
    errors: AtomicBool,
    /// Tells the accept loop to stop.
    pub(super) stop: Notify,
    /// Woken when the server stops, for tasks waiting on the application.
    stopped: Notify,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Weak<Conn>>>,
    pub topics: Topics,
    pub backplane: Option<Arc<Backplane>>,
    /// The connections held, for the connection limits.
    pub admissions: Arc<Admissions>,
    pub stats: Stats,
}

/// A server without a listening socket: its connections come from sockets the application hands over (ws's
/// `server` and `noServer` modes, where Node's own HTTP server accepted them).
pub fn detached(config: ServerConfig, sink: Sink, threads: Option<usize>) -> io::Result<Arc<Server>> {
    let rt = runtime(threads).map_err(io::Error::other)?;
    let server = Arc::new(Server::new(config, sink, SocketAddr::from(([0, 0, 0, 0], 0)), true));
    Backplane::start(rt, &server);
    Ok(server)
}

impl Server {
    pub(super) fn new(mut config: ServerConfig, sink: Sink, local: SocketAddr, detached: bool) -> Self {
        let backplane = config.backplane.take().map(|c| Arc::new(Backplane::new(c)));
        Server {
            config,
            sink,
            local,
            detached,
            keep_connections: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            requests: AtomicBool::new(false),
            errors: AtomicBool::new(false),
            stop: Notify::new(),
            stopped: Notify::new(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            topics: Topics::default(),
            backplane,
            admissions: Arc::new(Admissions::default()),
            stats: Stats::default(),
        }
    }

    /// After the listener is gone: connections close with 1001, then `ServerClosed`.
    pub(super) fn shut_down(&self) {
        self.stopped.notify_waiters();
        if !self.keep_connections.load(Ordering::Acquire) {
            let open: Vec<Arc<Conn>> = self.conns.lock().unwrap().values().filter_map(Weak::upgrade).collect();
            for conn in open {
                conn.close(GOING_AWAY, b"");
            }
        }
        // A drain reports the end itself, once its connections are gone.
        if !self.draining.load(Ordering::Acquire) {
            self.sink.deliver_one(Event::ServerClosed);
        }
    }

    /// Stops listening for a drain: `ServerClosed` is left to the drain (see `net::drain`).
    pub fn stop_for_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.stop_listening();
    }

    /// Runs an upgrade over a bridge (bytes relayed by JavaScript), as `adopt` does over a socket.
    #[allow(clippy::too_many_arguments)]
    pub fn adopt_bridged(self: &Arc<Self>, bridge: Arc<Bridge>, peer: SocketAddr, local: SocketAddr, tag: u32, request: Request, head: PackedHead, buffered: BytesMut) -> io::Result<()> {
        let rt = runtime(None).map_err(io::Error::other)?;
        rt.spawn(upgrade(self.clone(), Socket::bridged(bridge), peer, local, request, head, buffered, tag));
        Ok(())
    }

    /// Takes over a socket whose upgrade request was already read (by Node's HTTP server): `head` is that
    /// request as bytes and `buffered` whatever the client sent after it.
    pub fn adopt(self: &Arc<Self>, tcp: std::net::TcpStream, tag: u32, request: Request, head: PackedHead, buffered: BytesMut) -> io::Result<()> {
        let rt = runtime(None).map_err(io::Error::other)?;
        let _guard = rt.enter();
        tcp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpStream::from_std(tcp)?;
        let peer = tcp.peer_addr()?;
        let local = tcp.local_addr()?;
        self.tune(&tcp);
        rt.spawn(upgrade(self.clone(), Socket::plain(tcp), peer, local, request, head, buffered, tag));
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops listening but leaves open connections alone (ws's close()); `ServerClosed` follows.
    pub fn stop_listening(&self) {
        self.keep_connections.store(true, Ordering::Release);
        self.close();
    }

    /// Stops listening and closes every connection with 1001; `ServerClosed` follows. Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.detached {
            self.shut_down();
        } else {
            self.stop.notify_one();
        }
    }

    /// Socket options every accepted or adopted socket gets.
    pub fn tune(&self, tcp: &tokio::net::TcpStream) {
        let _ = tcp.set_nodelay(self.config.no_delay);
        if let Some(idle) = self.config.tcp_keepalive {
            let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle));
        }
    }

    pub fn set_wants_requests(&self, on: bool) {
        self.requests.store(on, Ordering::Release);
    }

    pub fn wants_requests(&self) -> bool {
        self.requests.load(Ordering::Acquire)
    }

    pub fn set_wants_errors(&self, on: bool) {
        self.errors.store(on, Ordering::Release);
    }

    pub fn wants_errors(&self) -> bool {
        self.errors.load(Ordering::Acquire)
    }

    /// Tells the application about a failure, when it listens for them.
    pub fn report_failure(&self, peer: SocketAddr, local: SocketAddr, failure: Failure) {
        if self.wants_errors() {
            self.sink.deliver_one(Event::Failure { failure, peer, local, decide: None });
        }
    }

    /// Resolves when the server stops (at once if it has stopped).
    pub async fn stopped(&self) {
        let notified = self.stopped.notified();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    /// The connections this server accepted that are still alive (any state).
    pub fn connections(&self) -> Vec<Arc<Conn>> {
        self.conns.lock().unwrap().values().filter_map(Weak::upgrade).collect()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn track(&self, conn: &Arc<Conn>) {
        self.conns.lock().unwrap().insert(conn.id, Arc::downgrade(conn));
    }

    pub fn untrack(&self, id: u64) {
        self.conns.lock().unwrap().remove(&id);
    }
}
