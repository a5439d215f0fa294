//! The event pump of one JavaScript thread: the queue network threads put its events on, the one threadsafe
//! function that wakes the thread when the queue was idle, the slots its objects are known by, and what keeps
//! the thread alive. `dispatch` drains it; this file holds its state.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{unbounded, Receiver, Sender};
use napi::bindgen_prelude::*;
use napi::sys;

use crate::net::{Backlog, Conn, Event, EventSink};

/// Bytes received but not yet taken by JavaScript, per thread, before its sockets stop being read.
const BACKLOG_LIMIT: usize = 4 * 1024 * 1024;

pub(super) struct Tsfn(pub(super) sys::napi_threadsafe_function);
// The handle is only used through napi calls documented as callable from any thread.
unsafe impl Send for Tsfn {}
unsafe impl Sync for Tsfn {}

pub struct Pump {
    tx: Sender<(u32, Event)>,
    pub(super) rx: Receiver<(u32, Event)>,
    pub(super) scheduled: AtomicBool,
    /// Null once the thread's environment is torn down.
    pub(super) tsfn: RwLock<Tsfn>,
    slots: Mutex<Slots>,
    pub(super) backlog: Backlog,
}

#[derive(Default)]
struct Slots {
    next: u32,
    free: Vec<u32>,
}

thread_local! {
    static PUMP: RefCell<Option<Arc<Pump>>> = const { RefCell::new(None) };
    /// Servers and connections this thread owns: while any is alive, the pump keeps the event loop alive.
    static LIVE: Cell<u32> = const { Cell::new(0) };
    /// Slots whose connection was posted to another thread: their queued events are passed on to it.
    static MOVING: RefCell<HashMap<u32, Arc<Conn>>> = RefCell::new(HashMap::new());
    /// Slots whose messages this thread's JavaScript takes as bytes for Node Buffers, text included.
    static AS_BYTES: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

impl EventSink for Pump {
    fn deliver(&self, slot: u32, events: &mut Vec<Event>) -> bool {
        let tsfn = self.tsfn.read().unwrap();
        if tsfn.0.is_null() {
            events.clear();
            return false;
        }
        for event in events.drain(..) {
            let _ = self.tx.send((slot, event));
        }
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            unsafe { sys::napi_call_threadsafe_function(tsfn.0, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        }
        true
    }

    fn new_slot(&self) -> u32 {
        let mut slots = self.slots.lock().unwrap();
        slots.free.pop().unwrap_or_else(|| {
            slots.next += 1;
            slots.next - 1
        })
    }

    fn backlog(&self) -> &Backlog {
        &self.backlog
    }
}

impl Pump {
    pub(super) fn new() -> Self {
        let (tx, rx) = unbounded();
        Pump {
            tx,
            rx,
            scheduled: AtomicBool::new(false),
            tsfn: RwLock::new(Tsfn(ptr::null_mut())),
            slots: Mutex::new(Slots::default()),
            backlog: Backlog::new(BACKLOG_LIMIT),
        }
    }

    /// Called on this pump's JavaScript thread only (it clears that thread's preferences for the slot).
    pub(super) fn free_slot(&self, slot: u32) {
        set_as_bytes(slot, false);
        self.slots.lock().unwrap().free.push(slot);
    }

    /// False once the thread's environment is gone.
    pub fn is_alive(&self) -> bool {
        !self.tsfn.read().unwrap().0.is_null()
    }

    /// `conn`'s events come to this pump: it was neither closed nor posted away.
    pub(super) fn holds(&self, conn: &Conn) -> bool {
        conn.route.consumer().is_some_and(|c| std::ptr::addr_eq(Arc::as_ptr(&c), self))
    }

    /// Wakes the thread unless a wake-up is already on its way.
    pub(super) fn wake(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            let tsfn = self.tsfn.read().unwrap();
            if !tsfn.0.is_null() {
                unsafe { sys::napi_call_threadsafe_function(tsfn.0, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
            }
        }
    }
}

/// Makes `pump` this thread's.
pub(super) fn install(pump: Option<Arc<Pump>>) {
    PUMP.with(|p| *p.borrow_mut() = pump);
}

pub(super) fn is_installed() -> bool {
    PUMP.with(|p| p.borrow().is_some())
}

/// This thread's pump; `startPump` must have run on it.
pub fn current() -> Result<Arc<Pump>> {
    PUMP.with(|p| p.borrow().clone()).ok_or_else(|| Error::from_reason("ferrows: the event pump of this thread is not started"))
}

/// A registration of this thread ends without an event: its slot is free and it no longer keeps the thread alive.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // an opaque handle of the current call, passed on to napi, never dereferenced here
pub fn unregister(env: sys::napi_env, pump: &Pump, slot: u32) {
    pump.free_slot(slot);
    release(env, pump);
}

/// A server or connection came to life on this thread (JavaScript thread only).
#[allow(clippy::not_unsafe_ptr_arg_deref)] // an opaque handle of the current call, passed on to napi, never dereferenced here
pub fn retain(env: sys::napi_env, pump: &Pump) {
    let live = LIVE.get();
    LIVE.set(live + 1);
    if live == 0 {
        unsafe { sys::napi_ref_threadsafe_function(env, pump.tsfn.read().unwrap().0) };
    }
}

/// One ended; when none is left the pump no longer keeps the process alive.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // an opaque handle of the current call, passed on to napi, never dereferenced here
pub(super) fn release(env: sys::napi_env, pump: &Pump) {
    let live = LIVE.get().saturating_sub(1);
    LIVE.set(live);
    if live == 0 {
        unsafe { sys::napi_unref_threadsafe_function(env, pump.tsfn.read().unwrap().0) };
    }
}

/// Called on the posting thread: events still queued here for `slot` go to the connection's new thread.
pub fn forward_queued(slot: u32, conn: Arc<Conn>) {
    MOVING.with(|m| m.borrow_mut().insert(slot, conn));
}

/// The connection of `slot` if it is moving away from this thread.
pub(super) fn moving(slot: u32) -> Option<Arc<Conn>> {
    // Almost always empty: no hash lookup per event unless some connection is being moved.
    MOVING.with(|m| {
        let m = m.borrow();
        if m.is_empty() {
            None
        } else {
            m.get(&slot).cloned()
        }
    })
}

/// The move of `slot` away from this thread is complete.
pub(super) fn moved(slot: u32) {
    MOVING.with(|m| m.borrow_mut().remove(&slot));
}

/// The slot's messages reach this thread's JavaScript as bytes (true) or as strings and ArrayBuffers.
pub(super) fn set_as_bytes(slot: u32, on: bool) {
    AS_BYTES.with(|s| {
        let mut s = s.borrow_mut();
        let i = slot as usize;
        if i >= s.len() {
            if !on {
                return;
            }
            s.resize(i + 1, false);
        }
        s[i] = on;
    })
}

pub(super) fn as_bytes(slot: u32) -> bool {
    AS_BYTES.with(|s| s.borrow().get(slot as usize).copied().unwrap_or(false))
}
