//! Where Rust's memory comes from: the system allocator, except for small blocks aligned beyond 16 bytes, which
//! come from slabs here.
//!
//! tokio aligns every task cell and every socket's I/O registration to 128 bytes (to keep them on cache lines of
//! their own). glibc serves such an allocation by cutting it out of a larger free chunk, leaving the pieces before
//! and after it free, and each aligned block carries a 16-byte header besides. With 10,000 idle connections those
//! pieces were about 200 bytes per connection in the runtime thread's arena (`malloc_info`: one free 112-byte and
//! most of a 48-byte chunk each) that nothing of their size came to take. Here such blocks are cut side by side
//! from 64 KiB slabs, in classes of 128-byte multiples, so they waste nothing.
//!
//! The accepting task's cell (1664 bytes: it holds the opening handshake's state) is one of them too. From glibc
//! it lived only through the handshake but left its pieces between the blocks the connection keeps: with the
//! request head packed small, 10,000 idle connections had 1.3–3.6 MB of free 432- and 1728-byte chunks in the
//! runtime thread's arena (`malloc_info`), 130–300 bytes per connection. From slabs, its place goes to the next
//! handshake.
//!
//! A freed block goes on its class's free list for the next one; slabs are not given back. The blocks are
//! connections' tasks and registrations and handshakes' tasks, so that is at most what the most connections and
//! handshakes ever under way at once held.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::Mutex;

/// The classes' step and the largest alignment served here.
const STEP: usize = 128;
/// Blocks of up to this many bytes come from slabs (tokio's cells and registrations are 128 to 1664 bytes).
const LARGEST: usize = 16 * STEP;
const CLASSES: usize = LARGEST / STEP;
const SLAB: usize = 64 * 1024;

pub struct Allocator;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Each class's free blocks, linked through their first word.
struct FreeList(Mutex<*mut u8>);

// SAFETY: the pointers are only reached through the mutex, and the blocks they lead to belong to no thread.
unsafe impl Sync for FreeList {}

static FREE: [FreeList; CLASSES] = [const { FreeList(Mutex::new(ptr::null_mut())) }; CLASSES];

/// The slab class of a layout, if its blocks come from slabs.
fn class_of(layout: Layout) -> Option<usize> {
    let served = layout.align() > 16 && layout.align() <= STEP && layout.size() <= LARGEST;
    served.then(|| layout.size().max(1).div_ceil(STEP) - 1)
}

fn block_size(class: usize) -> usize {
    (class + 1) * STEP
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => unsafe { take(class) },
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => unsafe {
                let block = take(class);
                if !block.is_null() {
                    ptr::write_bytes(block, 0, layout.size());
                }
                block
            },
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => unsafe { give_back(class, block) },
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (both arms): the caller guarantees a valid layout of the same alignment for new_size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class_of(layout).is_none() && class_of(new_layout).is_none() {
            return unsafe { System.realloc(block, layout, new_size) };
        }
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

/// A block of `class`, from a new slab when the free list is empty; null when the system has no memory.
unsafe fn take(class: usize) -> *mut u8 {
    let mut free = FREE[class].0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if free.is_null() {
        *free = unsafe { new_slab(class) };
        if free.is_null() {
            return ptr::null_mut();
        }
    }
    let block = *free;
    // SAFETY: a free block's first word links to the next free block.
    *free = unsafe { *(block as *mut *mut u8) };
    block
}

unsafe fn give_back(class: usize, block: *mut u8) {
    let mut free = FREE[class].0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: the block is the caller's to give back, at least STEP bytes and aligned for a pointer.
    unsafe { *(block as *mut *mut u8) = *free };
    *free = block;
}

/// A slab cut into blocks of `class`, linked in address order; the first of them, or null.
unsafe fn new_slab(class: usize) -> *mut u8 {
    let size = block_size(class);
    // SAFETY: SLAB and STEP are non-zero powers of two.
    let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, STEP)) };
    if slab.is_null() {
        return slab;
    }
    let count = SLAB / size;
    for i in 0..count {
        let next = if i + 1 < count { unsafe { slab.add((i + 1) * size) } } else { ptr::null_mut() };
        // SAFETY: block i lies inside the slab and is aligned for a pointer.
        unsafe { *(slab.add(i * size) as *mut *mut u8) = next };
    }
    slab
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_blocks_come_from_slabs_side_by_side_and_others_from_the_system() {
        assert_eq!(class_of(Layout::from_size_align(128, 128).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(256, 128).unwrap()), Some(1));
        assert_eq!(class_of(Layout::from_size_align(40, 64).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(1664, 128).unwrap()), Some(12));
        assert_eq!(class_of(Layout::from_size_align(LARGEST + 1, 128).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(256, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 256).unwrap()), None);

        let layout = Layout::from_size_align(256, 128).unwrap();
        unsafe {
            let a = ALLOCATOR.alloc(layout);
            let b = ALLOCATOR.alloc(layout);
            assert_eq!(a as usize % 128, 0);
            assert_eq!(b as usize % 128, 0);
            assert_ne!(a, b);
            ptr::write_bytes(a, 0xAB, 256);
            ptr::write_bytes(b, 0xCD, 256);
            assert_eq!(*a.add(255), 0xAB, "blocks do not overlap");
            ALLOCATOR.dealloc(a, layout);
            let c = ALLOCATOR.alloc_zeroed(layout);
            assert_eq!(c as usize % 128, 0);
            assert!((0..256).all(|i| *c.add(i) == 0));
            // Growing out of the slab sizes keeps the contents.
            let grown = ALLOCATOR.realloc(c, layout, 4096);
            assert_eq!(grown as usize % 128, 0);
            *grown.add(4000) = 1;
            ALLOCATOR.dealloc(grown, Layout::from_size_align(4096, 128).unwrap());
            ALLOCATOR.dealloc(b, layout);
        }
    }
}
