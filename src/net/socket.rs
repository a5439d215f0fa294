//! One accepted socket, plain or TLS, as the HTTP and WebSocket sides use it: reading plaintext, sending it
//! without waiting (a full socket says so instead of blocking), answering errors and closing politely. TLS runs
//! through rustls's sans-IO connection, driven by the same non-blocking reads and writes as plain TCP.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls::ServerConnection;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::bridge::Bridge;
use super::read_buffer::{self, READ_CHUNK};
use crate::protocol::handshake;

/// After a failure, how long the peer gets to read our last words before the socket is dropped.
pub const LINGER: Duration = Duration::from_secs(2);

pub struct Socket {
    io: Io,
    /// Boxed: a plain socket should not carry the size of a TLS session.
    tls: Option<Box<TlsState>>,
}

enum Io {
    Tcp(TcpStream),
    /// Bytes relayed by JavaScript (see `bridge`).
    Bridge(Arc<Bridge>),
}

struct TlsState {
    conn: Mutex<ServerConnection>,
    /// Plaintext that arrived during the handshake.
    early: Mutex<BytesMut>,
}

/// Moves all plaintext rustls has decrypted into `out`.
fn take_plaintext(conn: &mut ServerConnection, out: &mut BytesMut) -> io::Result<()> {
    loop {
        out.reserve(READ_CHUNK);
        let spare = out.spare_capacity_mut();
        // SAFETY: the reader only writes into the slice and reports how much.
        let spare = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), spare.len()) };
        match conn.reader().read(spare) {
            Ok(0) => return Ok(()),
            Ok(n) => unsafe { out.set_len(out.len() + n) },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// What TLS negotiated, for the application.
pub struct TlsInfo {
    pub server_name: Option<String>,
    pub version: String,
    pub alpn: Option<String>,
}

/// Writes without waiting; a full socket is `WouldBlock`. Tokio refuses a write until its reactor has seen the
/// socket writable, which a socket registered a moment ago (an adopted one) has not yet: then the write is tried
/// on the descriptor itself. Tokio's readiness is clear either way, so a real `WouldBlock` is waited for.
fn try_write(tcp: &TcpStream, data: &[u8]) -> io::Result<usize> {
    match tcp.try_write(data) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket2::SockRef::from(tcp).send(data),
        other => other,
    }
}

/// Writes to the TCP socket without waiting: a full socket is `WouldBlock`.
struct NonBlocking<'a>(&'a TcpStream);

impl Write for NonBlocking<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        try_write(self.0, data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One read from the TCP socket; Ok(0) at end of stream. A read that does not fill the space offered shows the
/// socket is drained, so readiness is cleared then and the next call waits instead of finding nothing.
async fn read_tcp(tcp: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        // The waker waits in the socket's registration (one reader per socket), not in a waiter node of this
        // future: an idle connection's task holds nothing for its wait.
        std::future::poll_fn(|cx| tcp.poll_read_ready(cx)).await?;
        read_buffer::prepare(buf);
        let spare = buf.spare_capacity_mut();
        let offered = spare.len();
        let mut got = 0;
        let result = tcp.try_io(Interest::READABLE, || {
            got = socket2::SockRef::from(tcp).recv(spare)?;
            if got > 0 && got < offered {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(got)
        });
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got == 0 => {
                // The readiness was stale: the buffer goes back before the wait rather than being held through it.
                if buf.is_empty() {
                    read_buffer::give_back(buf);
                }
            }
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {
                // SAFETY: recv initialised `got` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + got) };
                return Ok(got);
            }
        }
    }
}

/// Writes rustls's pending ciphertext; Ok(true) if the socket is full and some is left.
fn flush_ciphertext(tls: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut NonBlocking(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

impl Socket {
    pub fn plain(tcp: TcpStream) -> Self {
        Socket { io: Io::Tcp(tcp), tls: None }
    }

    pub fn tls(tcp: TcpStream, mut tls: ServerConnection) -> Self {
        // The outbox bounds what is queued; rustls only holds one batch of ciphertext.
        tls.set_buffer_limit(None);
        Socket { io: Io::Tcp(tcp), tls: Some(Box::new(TlsState { conn: Mutex::new(tls), early: Mutex::new(BytesMut::new()) })) }
    }

    pub fn bridged(bridge: Arc<Bridge>) -> Self {
        Socket { io: Io::Bridge(bridge), tls: None }
    }

    /// The TCP socket; TLS only ever runs over one.
    fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Tcp(tcp) => tcp,
            Io::Bridge(_) => unreachable!("TLS runs on TCP sockets only"),
        }
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match &self.io {
            Io::Tcp(tcp) => tcp.set_nodelay(on),
            Io::Bridge(_) => Ok(()),
        }
    }

    /// Whether the peer has already closed its side (a plain TCP socket with nothing left to read but the end).
    pub fn peer_gone(&self) -> bool {
        let Io::Tcp(tcp) = &self.io else { return false };
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(socket2::SockRef::from(tcp).peek(&mut probe), Ok(0))
    }

    /// Drops the connection at once: no close_notify, no lingering.
    pub fn abort(&self) {
        match &self.io {
            Io::Tcp(tcp) => {
                let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
            }
            Io::Bridge(bridge) => bridge.close(true),
        }
    }

    /// For a plain TCP socket: ready once a read would find bytes (or the end), else `cx` is woken then. None
    /// for TLS and relayed sockets, whose reads keep state of their own between reads.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        match (&self.io, &self.tls) {
            (Io::Tcp(tcp), None) => Some(tcp.poll_read_ready(cx).map(|_| ())),
            _ => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn tls_info(&self) -> Option<TlsInfo> {
        let tls = self.tls.as_ref()?.conn.lock().unwrap();
        Some(TlsInfo {
            server_name: tls.server_name().map(str::to_string),
            version: tls.protocol_version().map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1.")).unwrap_or_default(),
            alpn: tls.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        })
    }

    /// The server name the client asked for in its TLS hello.
    pub fn server_name(&self) -> Option<String> {
        self.tls.as_ref()?.conn.lock().unwrap().server_name().map(str::to_string)
    }

    /// Runs the TLS handshake to its end (nothing to do for plain sockets). Application data that arrives with
    /// the client's last handshake flight is kept for the first read.
    pub async fn complete_handshake(&self) -> io::Result<()> {
        let Some(tls) = &self.tls else { return Ok(()) };
        let mut early = BytesMut::new();
        while tls.conn.lock().unwrap().is_handshaking() {
            if !self.take_ciphertext(tls, &mut early).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        *tls.early.lock().unwrap() = early;
        Ok(())
    }

    /// Reads ciphertext once and has rustls process all of it, moving the plaintext it yields to `out` (rustls
    /// holds only a bounded amount) and answering as the protocol needs. False at end of stream.
    async fn take_ciphertext(&self, tls: &TlsState, out: &mut BytesMut) -> io::Result<bool> {
        let mut cipher = BytesMut::new();
        if read_tcp(self.tcp(), &mut cipher).await? == 0 {
            return Ok(false);
        }
        let blocked = {
            let mut conn = tls.conn.lock().unwrap();
            let mut input = &cipher[..];
            loop {
                if let Err(e) = conn.process_new_packets() {
                    let _ = flush_ciphertext(&mut conn, self.tcp()); // the alert
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                take_plaintext(&mut conn, out)?;
                if input.is_empty() {
                    break;
                }
                conn.read_tls(&mut input)?;
            }
            flush_ciphertext(&mut conn, self.tcp())?
        };
        if blocked {
            // Our handshake flight does not fit: finish it before reading on.
            self.drain_ciphertext().await?;
        }
        Ok(true)
    }

    /// Reads plaintext into `buf`; Ok(0) at end of stream.
    pub async fn read_some(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match &self.tls {
            None => match &self.io {
                Io::Tcp(tcp) => read_tcp(tcp, buf).await,
                // Boxed, as TLS: relayed sockets are rare, and their wait is larger.
                Io::Bridge(bridge) => Box::pin(bridge.read(buf)).await,
            },
            // Boxed, so that the TLS state machine does not enlarge every connection's task.
            Some(tls) => Box::pin(self.read_tls(tls, buf)).await,
        }
    }

    async fn read_tls(&self, tls: &TlsState, buf: &mut BytesMut) -> io::Result<usize> {
        let early = std::mem::take(&mut *tls.early.lock().unwrap());
        if !early.is_empty() {
            buf.extend_from_slice(&early);
            return Ok(early.len());
        }
        let before = buf.len();
        loop {
            if !self.take_ciphertext(tls, buf).await? {
                return Ok(0);
            }
            if buf.len() > before {
                return Ok(buf.len() - before);
            }
            if !tls.conn.lock().unwrap().wants_read() {
                return Ok(0); // close_notify received
            }
        }
    }

    async fn drain_ciphertext(&self) -> io::Result<()> {
        let Some(tls) = &self.tls else { return Ok(()) };
        loop {
            self.tcp().writable().await?;
            if !flush_ciphertext(&mut tls.conn.lock().unwrap(), self.tcp())? {
                return Ok(());
            }
        }
    }

    /// A plain TCP socket: `send_vectored` hands its pieces to the kernel as they are (TLS and relays join them).
    pub fn gathers(&self) -> bool {
        matches!((&self.io, &self.tls), (Io::Tcp(_), None))
    }

    /// Sends what the socket takes of `data` now: (bytes taken, whether the socket is full).
    pub fn send(&self, data: &[u8]) -> io::Result<(usize, bool)> {
        let Some(tls) = &self.tls else {
            let tcp = match &self.io {
                Io::Tcp(tcp) => tcp,
                Io::Bridge(bridge) => return Ok(bridge.send(data)),
            };
            // Only a socket that refuses more counts as full: after a partial write, try again at once.
            let mut taken = 0;
            while taken < data.len() {
                match try_write(tcp, &data[taken..]) {
                    Ok(n) => taken += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((taken, true)),
                    Err(e) if taken > 0 => return Ok((taken, e.kind() == io::ErrorKind::Interrupted)),
                    Err(e) => return Err(e),
                }
            }
            return Ok((taken, false));
        };
        let mut tls = tls.conn.lock().unwrap();
        // Plaintext stays in the outbox (where it counts as buffered) until earlier ciphertext is out.
        if flush_ciphertext(&mut tls, self.tcp())? {
            return Ok((0, true));
        }
        if !data.is_empty() {
            tls.writer().write_all(data)?;
        }
        Ok((data.len(), flush_ciphertext(&mut tls, self.tcp())?))
    }

    /// `send` for several pieces at once: one gathered write on plain TCP.
    pub fn send_vectored(&self, pieces: &[io::IoSlice]) -> io::Result<(usize, bool)> {
        let tcp = match (&self.io, &self.tls) {
            (Io::Tcp(tcp), None) => tcp,
            // TLS and relays take one buffer: join the pieces.
            _ => return self.send(&pieces.iter().flat_map(|p| p.iter().copied()).collect::<Vec<u8>>()),
        };
        // A partial write is not a full socket: the caller tries again at once and meets WouldBlock if it is.
        let written = match tcp.try_write_vectored(pieces) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket2::SockRef::from(tcp).send_vectored(pieces),
            other => other,
        };
        match written {
            Ok(0) => Ok((0, true)),
            Ok(n) => Ok((n, false)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0, true)),
            Err(e) => Err(e),
        }
    }

    pub async fn writable(&self) -> io::Result<()> {
        match &self.io {
            Io::Tcp(tcp) => tcp.writable().await,
            Io::Bridge(bridge) => {
                bridge.writable().await;
                Ok(())
            }
        }
    }

    /// Writes all of `data`, waiting for the socket as needed.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        loop {
            let (taken, blocked) = self.send(data)?;
            data = &data[taken..];
            if data.is_empty() && !blocked {
                return Ok(());
            }
            self.writable().await?;
        }
    }

    /// Answers with an HTTP error and closes the connection.
    pub async fn refuse(&self, status: u16, body: &str, headers: &[(&str, &str)]) {
        let answer = handshake::error_response(status, body, headers);
        let _ = timeout(LINGER, self.write_all(&answer)).await;
        self.linger().await;
    }

    /// Ends TLS with close_notify (if any), half-closes, and reads until the peer closes too (or `LINGER`
    /// passes), so that what we wrote last is not lost to a reset.
    pub async fn linger(&self) {
        let tcp = match &self.io {
            Io::Tcp(tcp) => tcp,
            Io::Bridge(bridge) => return bridge.close(false), // Node's socket.end() lingers for us
        };
        self.close_notify().await;
        let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
        let mut sink = BytesMut::new();
        let _ = timeout(LINGER, async {
            while let Ok(n) = read_tcp(tcp, &mut sink).await {
                if n == 0 {
                    break;
                }
                sink.clear();
            }
        })
        .await;
    }

    /// Closes both directions at once (after a completed close handshake).
    pub async fn shutdown(&self) {
        match &self.io {
            Io::Tcp(tcp) => {
                self.close_notify().await;
                let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
            }
            Io::Bridge(bridge) => bridge.close(false),
        }
    }

    async fn close_notify(&self) {
        if let Some(tls) = &self.tls {
            tls.conn.lock().unwrap().send_close_notify();
            let _ = timeout(LINGER, self.drain_ciphertext()).await;
        }
    }
}
