//! The buffer a plain connection reads into. Each runtime thread keeps one spare: a connection borrows it when a
//! read finds it holding nothing and gives it back once every byte of it was handled, so a connection waiting
//! for its peer holds no buffer, and reads reuse warm memory instead of allocating (and faulting in the pages
//! of) a fresh 64 KiB each time. A connection keeps what it borrowed only while a partial frame is in it.

use std::cell::Cell;

use bytes::BytesMut;

/// Bytes asked of the socket per read. Larger than a 16 KiB message's frame, so such messages do not straddle
/// every read: with 16 KiB reads each one needed two, and the partial frame was copied into a grown buffer.
pub const READ_CHUNK: usize = 64 * 1024;

/// A buffer grown larger than this (a big message was assembled in it) is not kept as the spare.
const KEEP_MAX: usize = 2 * READ_CHUNK;

thread_local! {
    static SPARE: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// Makes room for one read in `buf`, with this thread's spare when `buf` has no storage of its own.
pub fn prepare(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        *buf = SPARE.take();
    }
    buf.reserve(READ_CHUNK);
}

/// Takes the storage of an emptied `buf` back as this thread's spare (or frees it); `buf` is left without any.
pub fn give_back(buf: &mut BytesMut) {
    let mut storage = std::mem::take(buf);
    storage.clear();
    // Only storage nothing else shares (try_reclaim would have to allocate otherwise) is worth keeping.
    if storage.capacity() <= KEEP_MAX && storage.try_reclaim(READ_CHUNK) {
        let spare = SPARE.take();
        SPARE.set(if spare.capacity() >= storage.capacity() { spare } else { storage });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_buffer_is_lent_again_without_allocating() {
        let mut buf = BytesMut::new();
        prepare(&mut buf);
        buf.extend_from_slice(b"frame");
        let storage = buf.as_ptr();
        let _ = buf.split_to(5); // handled and dropped: the storage is unshared again
        give_back(&mut buf);
        assert_eq!(buf.capacity(), 0);
        let mut next = BytesMut::new();
        prepare(&mut next);
        assert_eq!(next.as_ptr(), storage);
        assert!(next.capacity() >= READ_CHUNK);
    }

    #[test]
    fn shared_storage_is_not_kept() {
        let mut buf = BytesMut::new();
        prepare(&mut buf);
        buf.extend_from_slice(b"kept elsewhere");
        let held = buf.split_to(4).freeze();
        give_back(&mut buf);
        let mut next = BytesMut::new();
        prepare(&mut next);
        assert!(!std::ptr::eq(next.as_ptr(), held.as_ptr()));
        assert_eq!(&held[..], b"kept");
    }
}
