//! A connection's write queue. Frames from any thread are encoded into one buffer, and a flush writes the whole
//! queue with one syscall: many frames, one write. A frame shared by many connections (a broadcast) is queued
//! by reference, not copied; the write then gathers it with the rest. Only when the socket is full does a task
//! take over, waiting for it to become writable.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Mutex;

use bytes::{Buf, Bytes, BytesMut};

use super::socket::Socket;

/// Most pieces one write gathers.
const MAX_SLICES: usize = 64;

/// Above this, an emptied buffer is given back rather than kept for the next frames.
const KEEP_CAPACITY: usize = 4 * 1024;

#[derive(Default)]
struct Queue {
    /// Shared frames and frozen earlier parts, in order; they all go before `buf`.
    chunks: VecDeque<Bytes>,
    chunked: usize,
    /// Frames encoded here, after the chunks.
    buf: BytesMut,
    /// A close frame is queued: nothing more may follow it.
    closing: bool,
    /// The socket was full; the writer task owns the writing until the queue empties.
    writer_active: bool,
    /// A deferred flush is already arranged (see the binding's end-of-batch flush).
    flush_scheduled: bool,
    /// The socket failed; frames are dropped.
    failed: bool,
}

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
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
    /// Encodes a frame into the queue with `encode`; false if the queue no longer takes frames.
    pub fn push(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut q = self.queue.lock().unwrap();
        if q.closing || q.failed {
            return false;
        }
        encode(&mut q.buf);
        true
    }

    /// Queues a complete frame that other connections share; false if the queue no longer takes frames.
    pub fn push_shared(&self, frame: Bytes) -> bool {
        let mut q = self.queue.lock().unwrap();
        if q.closing || q.failed {
            return false;
        }
        if !q.buf.is_empty() {
            let earlier = q.buf.split().freeze();
            q.chunked += earlier.len();
            q.chunks.push_back(earlier);
        }
        q.chunked += frame.len();
        q.chunks.push_back(frame);
        true
    }

    /// Queues the close frame: the last frame this connection sends. False if one was queued already.
    pub fn push_close(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut q = self.queue.lock().unwrap();
        if q.closing {
            return false;
        }
        q.closing = true;
        if !q.failed {
            encode(&mut q.buf);
        }
        true
    }

    /// Marks a deferred flush as arranged; true if the caller is the one that must arrange it.
    pub fn schedule_flush(&self) -> bool {
        let mut q = self.queue.lock().unwrap();
        !std::mem::replace(&mut q.flush_scheduled, true)
    }

    pub fn buffered(&self) -> usize {
        let q = self.queue.lock().unwrap();
        q.chunked + q.buf.len()
    }

    /// Writes what the socket takes now, from whatever thread calls it.
    pub fn flush(&self, socket: &Socket) -> Flushed {
        let mut q = self.queue.lock().unwrap();
        q.flush_scheduled = false;
        if q.writer_active {
            return Flushed::Done;
        }
        match write_some(&mut q, socket) {
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
            let mut q = self.queue.lock().unwrap();
            if write_some(&mut q, socket)? {
                q.writer_active = false;
                return Ok(());
            }
        }
    }

    /// Writes until the queue is empty, whoever was writing: used before a socket is closed.
    pub async fn finish(&self, socket: &Socket) -> io::Result<()> {
        loop {
            {
                let mut q = self.queue.lock().unwrap();
                if write_some(&mut q, socket)? {
                    return Ok(());
                }
            }
            socket.writable().await?;
        }
    }
}

/// Writes from the front of the queue; Ok(true) once it is all out, Ok(false) when the socket is full.
fn write_some(q: &mut Queue, socket: &Socket) -> io::Result<bool> {
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
                q.buf = BytesMut::new();
                return Err(e);
            }
        }
    }
    if q.buf.capacity() > KEEP_CAPACITY {
        q.buf = BytesMut::new();
    }
    Ok(true)
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
