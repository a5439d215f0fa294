//! A connection's write queue. Frames from any thread are encoded into one buffer, and a flush writes the whole
//! queue with one syscall: many frames, one write. A frame shared by many connections (a broadcast) is queued
//! by reference, not copied; the write then gathers it with the rest. Only when the socket is full does a task
//! take over, waiting for it to become writable.
//!
//! What a client owes is bounded here too: while the socket is full, a pong that was not written yet is replaced
//! by the next one (RFC 6455 §5.5.3 allows answering only the most recent ping), and the connection's reader can
//! wait until the queue has drained below a mark, so a client that never reads stops being read instead of
//! growing the queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, Bytes, BytesMut};


use super::signal::Signal;
use super::socket::Socket;

/// Most pieces one write gathers.
const MAX_SLICES: usize = 64;

/// What a queue's buffer starts with: a batch's small frames fit, where growing from the first frame's size by
/// doubling reallocated it five times per write of a 32-byte echo (perf: 5 % of the JavaScript thread). Under
/// glibc's thread cache limit (1032 bytes), so the allocation is served from it.
const FIRST_CAPACITY: usize = 1024 - 16;
/// A buffer this full is sealed into a chunk and a new one started: a queue that a slow client lets grow is
/// held in pieces of about this size, not in one buffer doubling (and copying) as it grows.
const SEAL_AT: usize = 64 * 1024;
/// A queue that grew past this asks for memory to go back to the system once it is empty (see `memory`).
const TRIM_AT: usize = 256 * 1024;
/// Emptied buffers a thread keeps for the next queues that encode on it, and the bytes they may hold together.
const SPARES_MAX: usize = 64;
const SPARE_BYTES_MAX: usize = 1024 * 1024;

thread_local! {
    /// Buffers of queues that emptied on this thread, lent to the next queues that encode here: an emptied queue
    /// holds none (an idle connection costs no buffer), and a batch's writes to many connections reuse them
    /// instead of a malloc and a free per connection per write (perf: malloc, free and malloc_consolidate were
    /// 5 % of the JavaScript thread in a 16 KiB echo).
    static SPARES: RefCell<Spares> = const { RefCell::new(Spares { buffers: Vec::new(), bytes: 0 }) };
}

struct Spares {
    buffers: Vec<BytesMut>,
    bytes: usize,
}

/// A buffer from this thread's spares, or a new one.
fn spare_buffer() -> BytesMut {
    SPARES.with(|spares| {
        let mut spares = spares.borrow_mut();
        let buffer = spares.buffers.pop();
        spares.bytes -= buffer.as_ref().map_or(0, BytesMut::capacity);
        buffer
    })
    .unwrap_or_else(|| BytesMut::with_capacity(FIRST_CAPACITY))
}

/// Keeps an emptied buffer for the next queue on this thread when it is unshared and there is room, else frees it.
fn keep_spare(mut storage: BytesMut) {
    storage.clear();
    if !storage.try_reclaim(FIRST_CAPACITY) || storage.capacity() > SEAL_AT {
        return;
    }
    SPARES.with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.buffers.len() < SPARES_MAX && spares.bytes + storage.capacity() <= SPARE_BYTES_MAX {
            spares.bytes += storage.capacity();
            spares.buffers.push(storage);
        }
    });
}

#[derive(Default)]
struct Queue {
    /// Shared frames and frozen earlier parts, in order; they all go before `buf`.
    chunks: VecDeque<Bytes>,
    chunked: usize,
    /// Frames encoded here, after the chunks.
    buf: BytesMut,
    /// The answer to the latest ping, not yet queued: it joins the queue when a write starts.
    pong: Option<BytesMut>,
    /// The reader waits for the queue to hold at most this many bytes (see `wake_reader_at`).
    wake_at: Option<usize>,
    /// The queue grew past `TRIM_AT` since it was last empty.
    grew: bool,
    /// A close frame is queued: nothing more may follow it.
    closing: bool,
    /// The socket was full; the writer task owns the writing until the queue empties.
    writer_active: bool,
    /// A deferred flush is already arranged (see the binding's end-of-batch flush).
    flush_scheduled: bool,
    /// The socket failed; frames are dropped.
    failed: bool,
}

impl Queue {
    fn len(&self) -> usize {
        self.chunked + self.buf.len() + self.pong.as_ref().map_or(0, |p| p.len())
    }

    /// Appends with `encode` to `buf` (the thread's spare buffer if it holds none), sealing it once it is large.
    fn encode(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        if self.buf.capacity() == 0 {
            self.buf = spare_buffer();
        }
        encode(&mut self.buf);
        if self.buf.len() >= SEAL_AT {
            self.seal();
        }
    }

    /// Moves what `buf` holds to the end of the chunks.
    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let earlier = self.buf.split().freeze();
            self.chunked += earlier.len();
            self.chunks.push_back(earlier);
        }
        self.grew |= self.chunked > TRIM_AT;
    }

    /// The queue is empty now: memory it grew into goes back to the system (glibc would keep it in its arenas).
    fn emptied(&mut self) {
        self.give_back_buffer();
        if std::mem::take(&mut self.grew) {
            super::memory::released();
        }
    }

    /// Hands the emptied `buf` to this thread's spares (or frees it); the queue holds no buffer after.
    fn give_back_buffer(&mut self) {
        keep_spare(std::mem::take(&mut self.buf));
    }

    /// Moves a pending pong to the end of the queue: a write is about to start, or a close must follow it.
    fn queue_pong(&mut self) {
        if let Some(pong) = self.pong.take() {
            self.buf.extend_from_slice(&pong);
        }
    }
}

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    /// The queue's length as of its last change: the reader checks it every turn, and taking the lock for that
    /// made it wait (a futex sleep, a context switch) while a JavaScript thread held the lock through a write.
    queued: AtomicUsize,
    /// The connection's reader's wake-up (`Conn::wake_reader`): the writer raises it when the queue drained to
    /// `wake_at`. One signal for all its wake-ups rather than one more here: 32 bytes less per connection.
    pub(super) reader: Signal,
}

/// The locked queue; unlocking records its length in `queued`.
struct Locked<'a> {
    queue: MutexGuard<'a, Queue>,
    queued: &'a AtomicUsize,
}

impl Deref for Locked<'_> {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.queue
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.queued.store(self.queue.len(), Ordering::Release);
    }
}

/// What a flush left to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// All written, or nothing to write.
    Done,
    /// The socket is full: the caller must start the writer task.
    NeedWriter,
}

impl Outbox {
    fn lock(&self) -> Locked<'_> {
        Locked { queue: self.queue.lock().unwrap(), queued: &self.queued }
    }

    /// Encodes a frame into the queue with `encode`; false if the queue no longer takes frames.
    pub fn push(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut q = self.lock();
        if q.closing || q.failed {
            return false;
        }
        q.encode(encode);
        true
    }

    /// Writes a frame, given as pieces in the caller's memory, right after what is queued ahead of it; what the
    /// socket does not take now is copied into the queue. None if the queue no longer takes frames.
    pub fn write_through(&self, socket: &Socket, frame: [&[u8]; 2]) -> Option<Flushed> {
        let mut q = self.lock();
        if q.closing || q.failed {
            return None;
        }
        let mut taken = 0;
        if !q.writer_active {
            match self.write(&mut q, socket).and_then(|all_out| if all_out { send_all(socket, frame) } else { Ok(0) }) {
                Ok(n) => taken = n,
                Err(_) => {
                    // Dropped, as queued frames are when the socket fails.
                    q.failed = true;
                    return Some(Flushed::Done);
                }
            }
        }
        let [head, payload] = unsent(frame, taken);
        if head.is_empty() && payload.is_empty() {
            return Some(Flushed::Done);
        }
        q.encode(|buf| {
            buf.reserve(head.len() + payload.len());
            buf.extend_from_slice(head);
            buf.extend_from_slice(payload);
        });
        Some(if std::mem::replace(&mut q.writer_active, true) { Flushed::Done } else { Flushed::NeedWriter })
    }

    /// Queues a pong; while the socket is full (the client is not reading) it waits in a slot instead, where the
    /// next pong replaces it. False if the queue no longer takes frames.
    pub fn push_pong(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut q = self.lock();
        if q.closing || q.failed {
            return false;
        }
        if q.writer_active {
            let mut pong = BytesMut::new();
            encode(&mut pong);
            q.pong = Some(pong);
        } else {
            encode(&mut q.buf);
        }
        true
    }

    /// Queues a complete frame that other connections share; false if the queue no longer takes frames.
    pub fn push_shared(&self, frame: Bytes) -> bool {
        let mut q = self.lock();
        if q.closing || q.failed {
            return false;
        }
        q.seal();
        q.chunked += frame.len();
        q.chunks.push_back(frame);
        true
    }

    /// Queues the close frame: the last frame this connection sends. False if one was queued already.
    pub fn push_close(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut q = self.lock();
        if q.closing {
            return false;
        }
        q.closing = true;
        if !q.failed {
            q.queue_pong();
            encode(&mut q.buf);
        }
        true
    }

    /// Marks a flush as on its way; true if the caller is the one that must make it happen.
    pub fn claim_flush(&self) -> bool {
        let mut q = self.lock();
        !std::mem::replace(&mut q.flush_scheduled, true)
    }

    /// Gives back the buffers of an empty queue (a connection about to wait for its peer holds none).
    pub fn release_if_empty(&self) {
        // Not worth a wait: a queue locked now is being written, and its writer gives its buffer back.
        let Ok(queue) = self.queue.try_lock() else { return };
        let mut q = Locked { queue, queued: &self.queued };
        if q.len() == 0 && !q.writer_active {
            q.give_back_buffer();
            q.chunks = VecDeque::new();
        }
    }

    pub fn buffered(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Arranges for `reader` to be raised once at most `mark` bytes are queued (the writer does it as the socket
    /// takes the rest); false if that is so already. A raise before the reader waits is kept for its wait.
    pub fn wake_reader_at(&self, mark: usize) -> bool {
        let mut q = self.lock();
        let above = q.len() > mark;
        q.wake_at = above.then_some(mark);
        above
    }

    /// Writes from the front of the queue, then wakes a reader waiting for the queue to shrink.
    fn write(&self, q: &mut Queue, socket: &Socket) -> io::Result<bool> {
        let result = write_some(q, socket);
        if q.wake_at.is_some_and(|mark| q.len() <= mark) {
            q.wake_at = None;
            self.reader.notify();
        }
        result
    }

    /// Writes what the socket takes now, from whatever thread calls it (a claimed flush is done).
    pub fn write_available(&self, socket: &Socket) -> Flushed {
        let mut q = self.lock();
        q.flush_scheduled = false;
        if q.writer_active {
            return Flushed::Done;
        }
        match self.write(&mut q, socket) {
            Ok(true) => Flushed::Done,
            Ok(false) => {
                q.writer_active = true;
                Flushed::NeedWriter
            }
            Err(_) => Flushed::Done,
        }
    }

    /// The writer task: writes until the queue is empty, waiting for the socket between tries.
    pub async fn write_pending(&self, socket: &Socket) -> io::Result<()> {
        loop {
            socket.writable().await?;
            let mut q = self.lock();
            if self.write(&mut q, socket)? {
                q.writer_active = false;
                return Ok(());
            }
        }
    }

    /// Writes until the queue is empty, whoever was writing: used before a socket is closed.
    pub async fn finish(&self, socket: &Socket) -> io::Result<()> {
        loop {
            {
                let mut q = self.lock();
                if self.write(&mut q, socket)? {
                    return Ok(());
                }
            }
            socket.writable().await?;
        }
    }
}

/// Writes from the front of the queue; Ok(true) once it is all out, Ok(false) when the socket is full.
fn write_some(q: &mut Queue, socket: &Socket) -> io::Result<bool> {
    q.queue_pong();
    loop {
        let sent = if q.chunks.is_empty() {
            socket.send(&q.buf)
        } else {
            // On the stack: a broadcast makes one such write per connection.
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for chunk in q.chunks.iter().take(MAX_SLICES) {
                slices[n] = IoSlice::new(chunk);
                n += 1;
            }
            if n < MAX_SLICES && !q.buf.is_empty() {
                slices[n] = IoSlice::new(&q.buf);
                n += 1;
            }
            socket.send_vectored(&slices[..n])
        };
        match sent {
            Ok((taken, blocked)) => {
                consume(q, taken);
                if blocked {
                    return Ok(false);
                }
                if q.chunks.is_empty() && q.buf.is_empty() {
                    break;
                }
            }
            Err(e) => {
                q.failed = true;
                q.chunks.clear();
                q.chunked = 0;
                q.buf.clear();
                q.emptied();
                return Err(e);
            }
        }
    }
    q.emptied();
    Ok(true)
}

/// Sends `pieces` until the socket is full or they are all out; returns the bytes taken.
fn send_all(socket: &Socket, pieces: [&[u8]; 2]) -> io::Result<usize> {
    let total = pieces[0].len() + pieces[1].len();
    let mut taken = 0;
    while taken < total {
        let [head, payload] = unsent(pieces, taken);
        let (n, full) = socket.send_vectored(&[IoSlice::new(head), IoSlice::new(payload)])?;
        taken += n;
        if full {
            break;
        }
    }
    Ok(taken)
}

/// What is left of `pieces` once their first `taken` bytes are written.
fn unsent(pieces: [&[u8]; 2], taken: usize) -> [&[u8]; 2] {
    let skip = taken.min(pieces[0].len());
    [&pieces[0][skip..], &pieces[1][taken - skip..]]
}

/// Drops `n` written bytes from the front: whole chunks, then part of one, then of `buf`.
fn consume(q: &mut Queue, mut n: usize) {
    while n > 0 {
        let Some(front) = q.chunks.front_mut() else {
            q.buf.advance(n);
            return;
        };
        let take = n.min(front.len());
        front.advance(take);
        q.chunked -= take;
        n -= take;
        if front.is_empty() {
            q.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_large_buffer_is_lent_to_the_next_queue_on_the_thread() {
        let first = Outbox::default();
        assert!(first.push(|b| b.extend_from_slice(&[7; 16 * 1024])));
        let storage = {
            let mut q = first.lock();
            let storage = q.buf.as_ptr();
            q.buf.clear(); // written
            q.emptied();
            assert_eq!(q.buf.capacity(), 0, "an empty queue holds no buffer");
            storage
        };
        let second = Outbox::default();
        assert!(second.push(|b| b.extend_from_slice(b"\x81\x01a")));
        assert_eq!(second.lock().buf.as_ptr(), storage);
    }

    /// A connected loopback pair: our end as a `Socket`, the peer's as a std stream (not read until asked).
    async fn socket_pair() -> (Socket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Socket::plain(tokio::net::TcpStream::from_std(ours).unwrap()), peer)
    }

    #[tokio::test]
    async fn a_frame_written_through_follows_the_queue_and_its_unsent_rest_is_queued() {
        use std::io::Read;
        let (socket, mut peer) = socket_pair().await;
        let outbox = Outbox::default();
        assert!(outbox.push(|b| b.extend_from_slice(b"first")));
        let payload: Vec<u8> = (0..64 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        // More than the socket's buffers hold while the peer does not read: part of it has to wait in the queue.
        assert_eq!(outbox.write_through(&socket, [b"head", &payload]), Some(Flushed::NeedWriter));
        let queued = outbox.buffered();
        assert!(queued > 0 && queued < payload.len(), "queued {queued}");
        assert!(outbox.push(|b| b.extend_from_slice(b"last")));
        assert_eq!(outbox.write_through(&socket, [b"", b"after"]), Some(Flushed::Done), "the writer already owns the rest");
        let reading = std::thread::spawn(move || {
            let mut received = Vec::new();
            peer.read_to_end(&mut received).unwrap();
            received
        });
        outbox.write_pending(&socket).await.unwrap();
        drop(socket);
        let received = reading.join().unwrap();
        let expected = [&b"first"[..], b"head", &payload, b"last", b"after"].concat();
        assert!(received == expected, "the bytes arrive whole and in order ({} of {})", received.len(), expected.len());
    }

    #[test]
    fn pongs_queue_while_the_socket_takes_them() {
        let outbox = Outbox::default();
        assert!(outbox.push_pong(|b| b.extend_from_slice(b"\x8a\x01a")));
        assert!(outbox.push_pong(|b| b.extend_from_slice(b"\x8a\x01b")));
        assert_eq!(&outbox.queue.lock().unwrap().buf[..], b"\x8a\x01a\x8a\x01b", "every ping is answered");
    }

    #[test]
    fn a_waiting_pong_is_replaced_by_the_next_and_queued_before_the_close() {
        let outbox = Outbox::default();
        outbox.queue.lock().unwrap().writer_active = true; // the socket is full: the client does not read
        assert!(outbox.push_pong(|b| b.extend_from_slice(b"\x8a\x01a")));
        assert!(outbox.push_pong(|b| b.extend_from_slice(b"\x8a\x02bc")));
        assert_eq!(outbox.buffered(), 4, "only the latest pong is owed");
        assert!(outbox.push_close(|b| b.extend_from_slice(b"\x88\x00")));
        assert!(!outbox.push_pong(|b| b.extend_from_slice(b"\x8a\x00")), "nothing follows a close");
        let q = outbox.queue.lock().unwrap();
        assert_eq!(&q.buf[..], b"\x8a\x02bc\x88\x00");
        assert!(q.pong.is_none());
    }
}
