//! `NativeServer`: a listening socket whose connections report to the pump of the thread that created it.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::net::bridge::Bridge;
use crate::net::backplane::{Backplane, BackplaneConfig};
use crate::net::broadcast::{publish, Audience};
use crate::net::limits::Limits;
use crate::net::runtime::runtime;
use crate::protocol::frame::{OP_BINARY, OP_TEXT};
use super::values::{self, Payload};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::Env;

use super::connection::{socket_address, SocketAddress};
use super::pump;
use crate::net::listener::listen;
use crate::net::server::{detached, Server, ServerConfig};
use crate::protocol::handshake::Request;
use crate::protocol::packed_head::PackedHead;
use crate::net::{EventSink, Sink};
use crate::net::tls::{server_config, CertSpec, HostSpec, SniResolver, TlsOptions};
use crate::protocol::deflate::DeflateConfig;

/// Options after the JavaScript face has checked and defaulted them.
#[napi(object)]
pub struct NativeServerOptions {
    pub address: String,
    pub port: u32,
    pub max_payload: Option<f64>,
    pub max_header_bytes: Option<u32>,
    pub handshake_timeout: Option<u32>,
    pub close_timeout: Option<u32>,
    pub no_delay: Option<bool>,
    pub masking: Option<bool>,
    pub backlog: Option<i32>,
    pub threads: Option<u32>,
    pub bad_version_status: Option<u32>,
    /// The largest plain HTTP request body accepted (default 1 MiB; 413 above).
    pub max_body_bytes: Option<f64>,
    /// permessage-deflate; absent: the extension is not negotiated.
    pub deflate: Option<NativeDeflateOptions>,
    /// TLS; absent: plain TCP.
    pub tls: Option<NativeTlsOptions>,
    /// Answer pings automatically (default true).
    pub auto_pong: Option<bool>,
    /// Ping connections quiet for this many milliseconds (none by default)...
    pub keepalive_interval: Option<u32>,
    /// ...and drop those still quiet this many milliseconds after the ping.
    pub keepalive_grace: Option<u32>,
    /// TCP keepalive after this many idle milliseconds.
    pub tcp_keepalive: Option<u32>,
    /// The largest frame accepted, in bytes (1009 above).
    pub max_frame: Option<f64>,
    /// Outgoing messages longer than this go out as several frames.
    pub fragment_threshold: Option<f64>,
    /// Broadcasts and publications skip connections with more than this many bytes queued (default:
    /// max_backpressure).
    pub broadcast_limit: Option<f64>,
    /// Connections with more than this many bytes queued are not read until half of it drained (default 1 MiB).
    pub max_backpressure: Option<f64>,
    /// Close those connections with 1008 instead (default false).
    pub close_on_backpressure_limit: Option<bool>,
    /// Broadcasts and topics across processes, over Redis.
    pub backplane: Option<NativeBackplaneOptions>,
    /// Share the port with other processes that set it too (node:cluster workers).
    pub reuse_port: Option<bool>,
    /// Upgrades beyond this many open connections get 503 with Retry-After.
    pub max_connections: Option<u32>,
    /// The same, per client address.
    pub max_connections_per_ip: Option<u32>,
    /// Messages a connection may send per second (a second's worth at once).
    pub max_messages_per_second: Option<u32>,
    /// Bytes of messages a connection may send per second.
    pub max_bytes_per_second: Option<f64>,
    /// Over a rate limit: pause reading (true) instead of closing with 1008.
    pub pause_over_rate: Option<bool>,
    /// Close connections that sent nothing for this many milliseconds (1001).
    pub idle_timeout: Option<u32>,
    /// Ping quiet connections before the idle timeout closes them (default true when idleTimeout is set).
    pub ping_when_idle: Option<bool>,
    /// Close connections this many milliseconds after they opened (1001).
    pub max_lifetime: Option<f64>,
}

#[napi(object)]
pub struct NativeBackplaneOptions {
    /// A redis:// URL.
    pub redis: String,
    pub name: String,
    /// Entries the stream keeps, about (default 10,000).
    pub max_len: Option<f64>,
    /// Bytes of publications held while Redis is unreachable (default 16 MiB).
    pub queue_limit: Option<f64>,
    /// Refuse to start when Redis does not answer (default: start and report 'down').
    pub required: Option<bool>,
}

/// A certificate and key as PEM bytes.
#[napi(object)]
pub struct NativeCert {
    pub cert: Buffer,
    pub key: Buffer,
    pub passphrase: Option<String>,
    pub ca: Option<Buffer>,
}

#[napi(object)]
pub struct NativeTlsHost {
    pub names: Vec<String>,
    pub cert: NativeCert,
}

#[napi(object)]
pub struct NativeTlsOptions {
    /// The certificate for names no host matches.
    pub default: Option<NativeCert>,
    pub hosts: Vec<NativeTlsHost>,
}

impl NativeCert {
    fn spec(&self) -> CertSpec {
        CertSpec {
            cert_pem: self.cert.to_vec(),
            key_pem: self.key.to_vec(),
            passphrase: self.passphrase.clone(),
            ca_pem: self.ca.as_ref().map(|c| c.to_vec()),
        }
    }
}

impl NativeTlsOptions {
    fn config(&self) -> Result<(Arc<rustls::ServerConfig>, Arc<SniResolver>)> {
        let options = TlsOptions {
            default: self.default.as_ref().map(NativeCert::spec),
            hosts: self.hosts.iter().map(|h| HostSpec { names: h.names.clone(), cert: h.cert.spec() }).collect(),
        };
        server_config(&options).map_err(|reason| Error::from_reason(format!("TLS: {reason}")))
    }
}

#[napi(object)]
pub struct NativeDeflateOptions {
    /// Compress outgoing messages (false: accept compressed input only).
    pub compress: bool,
    pub server_no_context_takeover: Option<bool>,
    pub client_no_context_takeover: Option<bool>,
    pub server_max_window_bits: Option<u32>,
    pub client_max_window_bits: Option<u32>,
    pub threshold: Option<u32>,
    pub level: Option<u32>,
}

fn window_bits(bits: Option<u32>, name: &str) -> Result<Option<u8>> {
    match bits {
        None => Ok(None),
        Some(b @ 8..=15) => Ok(Some(b as u8)),
        Some(b) => Err(Error::new(Status::InvalidArg, format!("{name} must be 8 to 15, got {b}"))),
    }
}

impl NativeDeflateOptions {
    fn config(&self) -> Result<DeflateConfig> {
        Ok(DeflateConfig {
            compress: self.compress,
            server_no_context_takeover: self.server_no_context_takeover.unwrap_or(false),
            client_no_context_takeover: self.client_no_context_takeover.unwrap_or(false),
            server_max_window_bits: window_bits(self.server_max_window_bits, "serverMaxWindowBits")?,
            client_max_window_bits: window_bits(self.client_max_window_bits, "clientMaxWindowBits")?,
            threshold: self.threshold.unwrap_or(1024) as usize,
            level: self.level.unwrap_or(6).min(9),
        })
    }
}

/// The request Node's HTTP parser read, and the same request as bytes (what the handshake keeps).
fn request_from_node(method: String, url: String, raw_headers: Vec<String>) -> (Request, PackedHead) {
    let headers: Vec<(String, String)> = raw_headers.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0].clone(), p[1].clone())).collect();
    let mut head = format!("{method} {url} HTTP/1.1\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let request = Request { method, target: url, version: 1, headers };
    let head = PackedHead::new(head.as_bytes(), &request);
    (request, head)
}

/// The JavaScript end of a bridged connection: it feeds what its Node socket reads and writes what arrives as
/// output events for this slot.
#[napi]
pub struct NativeBridge {
    bridge: Arc<Bridge>,
    slot: u32,
}

#[napi]
impl NativeBridge {
    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// What the socket read; false when the socket should pause until a resume event.
    #[napi(catch_unwind)]
    pub fn feed(&self, data: Buffer) -> bool {
        self.bridge.feed(bytes::Bytes::copy_from_slice(&data))
    }

    /// The socket ended.
    #[napi(catch_unwind)]
    pub fn end(&self) {
        self.bridge.end_input();
    }

    /// The socket's write buffer is full (true) or drained (false).
    #[napi(catch_unwind)]
    pub fn set_blocked(&self, blocked: bool) {
        self.bridge.set_blocked(blocked);
    }

    /// The socket closed: one last (close) event follows, after which the slot is free.
    #[napi(catch_unwind)]
    pub fn release(&self) {
        self.bridge.release();
    }
}

#[napi(object)]
pub struct BroadcastResult {
    pub sent: u32,
    pub skipped: u32,
}

#[napi]
pub struct NativeServer {
    pub(super) server: Arc<Server>,
}

fn resolve(address: &str, port: u16) -> Result<SocketAddr> {
    let host = address.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| Error::new(Status::InvalidArg, format!("cannot resolve address {address}")))
}

#[napi]
impl NativeServerOptions {
    fn config(&self) -> Result<ServerConfig> {
        let max_backpressure = match self.max_backpressure {
            None => 1024 * 1024,
            Some(n) if n >= 1.0 => n as usize,
            Some(_) => return Err(Error::new(Status::InvalidArg, "maxBackpressure must be a positive number of bytes")),
        };
        Ok(ServerConfig {
            max_payload: self.max_payload.map(|n| n as usize).unwrap_or(16 * 1024 * 1024),
            max_header_bytes: self.max_header_bytes.unwrap_or(16 * 1024) as usize,
            handshake_timeout: Duration::from_millis(self.handshake_timeout.unwrap_or(10_000) as u64),
            close_timeout: Duration::from_millis(self.close_timeout.unwrap_or(5_000) as u64),
            no_delay: self.no_delay.unwrap_or(true),
            masking: self.masking.unwrap_or(false),
            bad_version_status: self.bad_version_status.unwrap_or(426) as u16,
            deflate: self.deflate.as_ref().map(NativeDeflateOptions::config).transpose()?,
            max_body_bytes: self.max_body_bytes.map(|n| n as usize).unwrap_or(1024 * 1024),
            auto_pong: self.auto_pong.unwrap_or(true),
            keepalive_interval: self.keepalive_interval.map(|ms| Duration::from_millis(ms as u64)),
            keepalive_grace: self.keepalive_grace.map(|ms| Duration::from_millis(ms as u64)),
            tcp_keepalive: self.tcp_keepalive.map(|ms| Duration::from_millis(ms as u64)),
            max_frame: self.max_frame.map(|n| n as usize),
            fragment_threshold: self.fragment_threshold.map(|n| (n as usize).max(1)),
            tls: self.tls.as_ref().map(NativeTlsOptions::config).transpose()?,
            broadcast_limit: self.broadcast_limit.map_or(max_backpressure, |n| n as usize),
            max_backpressure,
            close_on_backpressure_limit: self.close_on_backpressure_limit.unwrap_or(false),
            backplane: self.backplane.as_ref().map(|b| BackplaneConfig {
                url: b.redis.clone(),
                name: b.name.clone(),
                max_len: b.max_len.map_or(10_000, |n| n as usize),
                queue_limit: b.queue_limit.map_or(16 * 1024 * 1024, |n| n as usize),
            }),
            reuse_port: self.reuse_port.unwrap_or(false),
            limits: self.limits(),
        })
    }

    fn limits(&self) -> Limits {
        let millis = |ms: f64| Duration::from_millis(ms as u64);
        Limits {
            max_connections: self.max_connections.map(|n| n as usize),
            max_connections_per_ip: self.max_connections_per_ip.map(|n| n as usize),
            max_messages_per_second: self.max_messages_per_second.filter(|&n| n > 0),
            max_bytes_per_second: self.max_bytes_per_second.filter(|&n| n >= 1.0).map(|n| n as u64),
            pause_over_rate: self.pause_over_rate.unwrap_or(false),
            idle_timeout: self.idle_timeout.filter(|&ms| ms > 0).map(|ms| millis(ms as f64)),
            ping_when_idle: self.ping_when_idle.unwrap_or(true),
            max_lifetime: self.max_lifetime.filter(|&ms| ms > 0.0).map(millis),
        }
    }

    /// A `required` backplane must answer before the server starts.
    fn check_backplane(&self) -> Result<()> {
        let Some(backplane) = self.backplane.as_ref().filter(|b| b.required == Some(true)) else { return Ok(()) };
        let rt = runtime(self.threads.map(|n| n as usize)).map_err(Error::from_reason)?;
        rt.block_on(Backplane::probe(&backplane.redis)).map_err(|e| Error::from_reason(format!("backplane: cannot reach {}: {e}", backplane.redis)))
    }
}


#[napi]
impl NativeServer {
    /// A server listening on `address`:`port`.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: NativeServerOptions) -> Result<Self> {
        let pump = pump::current()?;
        let port = u16::try_from(options.port).map_err(|_| Error::new(Status::InvalidArg, "port must be 0 to 65535"))?;
        let addr = resolve(&options.address, port)?;
        options.check_backplane()?;
        let sink = Sink { consumer: pump.clone(), slot: pump.new_slot() };
        let threads = options.threads.map(|n| n as usize);
        let server = listen(addr, options.backlog.unwrap_or(511), options.config()?, sink, threads)
            .map_err(|e| Error::from_reason(format!("cannot listen on {addr}: {e}")))?;
        pump::retain(env.raw(), &pump);
        Ok(NativeServer { server })
    }

    /// A server without a listener, fed sockets that Node's HTTP server accepted (`adopt`).
    #[napi(factory, catch_unwind)]
    pub fn detached(env: Env, options: NativeServerOptions) -> Result<Self> {
        let pump = pump::current()?;
        options.check_backplane()?;
        let sink = Sink { consumer: pump.clone(), slot: pump.new_slot() };
        let server = detached(options.config()?, sink, options.threads.map(|n| n as usize)).map_err(|e| Error::from_reason(e.to_string()))?;
        pump::retain(env.raw(), &pump);
        Ok(NativeServer { server })
    }

    /// Takes over a TCP socket Node accepted and read an upgrade request from: `fd` is duplicated (Node may
    /// close its own descriptor afterwards), the request is given as Node parsed it, and `buffered` holds what
    /// the client sent after it; `tag` comes back in the connection's handshake to match the two. The upgrade
    /// then goes on natively, as for sockets this server accepted.
    #[napi(catch_unwind)]
    pub fn adopt(&self, fd: i32, tag: u32, method: String, url: String, raw_headers: Vec<String>, buffered: Buffer) -> Result<()> {
        let (request, head) = request_from_node(method, url, raw_headers);
        // SAFETY: dup makes a descriptor this process owns from here on; it is checked before use.
        let own = unsafe { libc::dup(fd) };
        if own < 0 {
            return Err(Error::from_reason(format!("cannot take over the socket: {}", std::io::Error::last_os_error())));
        }
        let tcp = unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(own) };
        self.server
            .adopt(tcp, tag, request, head, bytes::BytesMut::from(&buffered[..]))
            .map_err(|e| Error::from_reason(format!("cannot take over the socket: {e}")))
    }

    /// Runs an upgrade whose socket stays in Node (TLS, unix or any stream): bytes are relayed through the
    /// returned bridge. Same arguments as `adopt`, plus the socket's addresses.
    #[allow(clippy::too_many_arguments)]
    #[napi(catch_unwind)]
    pub fn bridge(
        &self,
        env: Env,
        tag: u32,
        method: String,
        url: String,
        raw_headers: Vec<String>,
        buffered: Buffer,
        remote: String,
        remote_port: u32,
        local: String,
        local_port: u32,
    ) -> Result<NativeBridge> {
        let pump = pump::current()?;
        let out = Sink { consumer: pump.clone(), slot: pump.new_slot() };
        let slot = out.slot;
        let bridge = Arc::new(Bridge::new(out));
        let address = |ip: &str, port: u32| SocketAddr::new(ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), port as u16);
        let (request, head) = request_from_node(method, url, raw_headers);
        self.server
            .adopt_bridged(bridge.clone(), address(&remote, remote_port), address(&local, local_port), tag, request, head, bytes::BytesMut::from(&buffered[..]))
            .map_err(|e| Error::from_reason(format!("cannot start the bridge: {e}")))?;
        pump::retain(env.raw(), &pump);
        Ok(NativeBridge { bridge, slot })
    }

    #[napi(getter, catch_unwind)]
    pub fn slot(&self) -> u32 {
        self.server.sink.slot
    }

    #[napi(getter, catch_unwind)]
    pub fn address(&self) -> SocketAddress {
        socket_address(self.server.local)
    }

    /// Whether plain HTTP requests go to the application (true) or get 426 Upgrade Required (false).
    #[napi(catch_unwind)]
    pub fn set_wants_requests(&self, on: bool) {
        self.server.set_wants_requests(on);
    }

    /// Whether `error`/`lowError` events are wanted (only then are they produced).
    #[napi(catch_unwind)]
    pub fn set_wants_errors(&self, on: bool) {
        self.server.set_wants_errors(on);
    }

    #[napi(getter, catch_unwind)]
    pub fn secure(&self) -> bool {
        self.server.config.tls.is_some()
    }

    /// Sends `data` (a string as text, bytes as binary) to every open connection, here and on the backplane,
    /// building the frame once. Returns what happened here.
    #[napi(catch_unwind)]
    pub fn broadcast(&self, env: Env, data: Unknown<'_>) -> Result<BroadcastResult> {
        self.send(env, Audience::Everyone, data)
    }

    /// Sends `data` to the connections subscribed to `topic`, here and on the backplane.
    #[napi(catch_unwind)]
    pub fn publish(&self, env: Env, topic: String, data: Unknown<'_>) -> Result<BroadcastResult> {
        self.send(env, Audience::Topic(values::topic_name(topic)?.into()), data)
    }

    fn send(&self, env: Env, audience: Audience, data: Unknown<'_>) -> Result<BroadcastResult> {
        let binary = unsafe { !matches!(values::payload(env.raw(), data.raw())?, Some(Payload::Text)) };
        let bytes = unsafe { values::owned_bytes(env.raw(), data.raw())? }
            .ok_or_else(|| Error::new(Status::InvalidArg, "the message must be a string, an ArrayBuffer, a typed array, a Buffer or a DataView"))?;
        let delivery = publish(&self.server, audience, if binary { OP_BINARY } else { OP_TEXT }, bytes);
        for conn in &delivery.queued {
            conn.flush();
        }
        Ok(BroadcastResult { sent: delivery.sent, skipped: delivery.skipped })
    }

    /// Stops listening, leaving open connections alone.
    #[napi(catch_unwind)]
    pub fn stop_listening(&self) {
        self.server.stop_listening();
    }

    /// Stops listening and closes every connection with 1001; the server's close event follows.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.server.close();
    }
}
