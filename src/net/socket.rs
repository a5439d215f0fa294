//! Socket helpers shared by the HTTP and WebSocket sides of a connection: reading, answering and closing.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::protocol::handshake;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// After a failure, how long the peer gets to read our last words before the socket is dropped.
pub const LINGER: Duration = Duration::from_secs(2);

/// One read into `buf`; Ok(0) at end of stream. A read that does not fill the space offered shows the socket is
/// drained, so readiness is cleared then and the next call waits instead of paying for a read that finds nothing.
pub async fn read_some(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        buf.reserve(READ_CHUNK);
        let spare = buf.spare_capacity_mut();
        let offered = spare.len();
        let mut got = 0;
        let result = stream.try_io(Interest::READABLE, || {
            got = socket2::SockRef::from(stream).recv(spare)?;
            if got > 0 && got < offered {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(got)
        });
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got == 0 => continue,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {
                // SAFETY: recv initialised `got` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + got) };
                return Ok(got);
            }
        }
    }
}

/// Writes all of `data`, waiting for the socket as needed.
pub async fn write_all(stream: &TcpStream, data: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < data.len() {
        stream.writable().await?;
        match stream.try_write(&data[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Answers with an HTTP error and closes the connection.
pub async fn refuse(stream: &TcpStream, status: u16, body: &str, headers: &[(&str, &str)]) {
    let answer = handshake::error_response(status, body, headers);
    let _ = timeout(LINGER, write_all(stream, &answer)).await;
    linger(stream).await;
}

/// Half-closes the socket and reads until the peer closes too (or `LINGER` passes), so that what we wrote last
/// is not lost to a reset.
pub async fn linger(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
    let mut sink = BytesMut::new();
    let _ = timeout(LINGER, async {
        while let Ok(n) = read_some(stream, &mut sink).await {
            if n == 0 {
                break;
            }
            sink.clear();
        }
    })
    .await;
}

