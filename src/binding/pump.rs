//! The event pump of one JavaScript thread. Network threads queue events on a channel and wake the thread through
//! one threadsafe function only when the queue was idle; the wake-up then hands every waiting event to a single
//! JavaScript `dispatch(events)` call as a flat array `[slot << KIND_BITS | kind, payload, ...]`. Frames that handlers
//! send during the batch are written once, at its end.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};

use crossbeam_channel::{unbounded, Receiver, Sender};
use napi::bindgen_prelude::*;
use bytes::Bytes;
use napi::{sys, Env, JsValue};

use super::connection::{socket_address, NativeConnection, SocketEnds};
use super::http::NativeHttpExchange;
use super::values;
use crate::net::failure::Failure;
use crate::net::send::corked;
use crate::net::{Backlog, Conn, Event, EventSink};
use crate::protocol::close::GOING_AWAY;

/// Events handed to JavaScript per `dispatch` call.
const BATCH: usize = 4096;
/// Batches per wake-up before the thread is given back to its event loop (timers, I/O) for a turn.
const BATCHES_PER_WAKE: usize = 16;
/// Bytes received but not yet taken by JavaScript, per thread, before its sockets stop being read.
const BACKLOG_LIMIT: usize = 4 * 1024 * 1024;

/// Bits of an event code that hold its kind (the rest is the slot); lib/pump.js unpacks the same way.
const KIND_BITS: u32 = 5;

pub const KIND_TEXT: u32 = 0;
pub const KIND_BINARY: u32 = 1;
pub const KIND_UPGRADE: u32 = 2;
pub const KIND_CLOSED: u32 = 3;
pub const KIND_DRAIN: u32 = 4;
pub const KIND_PING: u32 = 5;
pub const KIND_PONG: u32 = 6;
pub const KIND_SERVER_CLOSED: u32 = 7;
pub const KIND_REQUEST: u32 = 8;
pub const KIND_POSTED: u32 = 9;
pub const KIND_FAILURE: u32 = 10;
pub const KIND_TEXT_BYTES: u32 = 12;
pub const KIND_OUTPUT: u32 = 13;
pub const KIND_BRIDGE_END: u32 = 14;
pub const KIND_BRIDGE_RESUME: u32 = 15;
pub const KIND_BINARY_BYTES: u32 = 16;
pub const KIND_FRAME: u32 = 17;
pub const KIND_BACKPLANE: u32 = 18;

/// Messages for Node Buffers up to this size share one ArrayBuffer per batch (their payload is a number:
/// offset * 65536 + length); larger ones get their own.
const SHARED_MAX: usize = 65535;

struct Tsfn(sys::napi_threadsafe_function);
// The handle is only used through napi calls documented as callable from any thread.
unsafe impl Send for Tsfn {}
unsafe impl Sync for Tsfn {}

pub struct Pump {
    /// Connections this thread's JavaScript holds, by slot: closed with 1001 if the thread goes away.
    owned: Mutex<HashMap<u32, Weak<Conn>>>,
    tx: Sender<(u32, Event)>,
    rx: Receiver<(u32, Event)>,
    scheduled: AtomicBool,
    /// Null once the thread's environment is torn down.
    tsfn: RwLock<Tsfn>,
    slots: Mutex<Slots>,
    backlog: Backlog,
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
    fn free_slot(&self, slot: u32) {
        self.slots.lock().unwrap().free.push(slot);
    }

    /// False once the thread's environment is gone.
    pub fn is_alive(&self) -> bool {
        !self.tsfn.read().unwrap().0.is_null()
    }

    /// This thread's JavaScript now holds `conn`.
    fn adopt(&self, conn: &Arc<Conn>) {
        self.owned.lock().unwrap().insert(conn.slot(), Arc::downgrade(conn));
    }

    fn disown(&self, slot: u32) {
        self.owned.lock().unwrap().remove(&slot);
    }
}

/// A registration of this thread ends without an event: its slot is free and it no longer keeps the thread alive.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // an opaque handle of the current call, passed on to napi, never dereferenced here
pub fn unregister(env: sys::napi_env, pump: &Pump, slot: u32) {
    pump.free_slot(slot);
    release(env, pump);
}

/// Called on the posting thread: events still queued here for `slot` go to the connection's new thread.
pub fn forward_queued(slot: u32, conn: Arc<Conn>) {
    MOVING.with(|m| m.borrow_mut().insert(slot, conn));
}

/// This thread's pump; `startPump` must have run on it.
pub fn current() -> Result<Arc<Pump>> {
    PUMP.with(|p| p.borrow().clone()).ok_or_else(|| Error::from_reason("ferrows: the event pump of this thread is not started"))
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
fn release(env: sys::napi_env, pump: &Pump) {
    let live = LIVE.get().saturating_sub(1);
    LIVE.set(live);
    if live == 0 {
        unsafe { sys::napi_unref_threadsafe_function(env, pump.tsfn.read().unwrap().0) };
    }
}

/// Starts this thread's pump; `dispatch(events)` receives every batch.
#[napi(catch_unwind)]
pub fn start_pump(env: Env, dispatch: Function<'_>) -> Result<()> {
    if PUMP.with(|p| p.borrow().is_some()) {
        return Err(Error::from_reason("ferrows: the event pump of this thread is already started"));
    }
    let (tx, rx) = unbounded();
    let pump = Arc::new(Pump {
        owned: Mutex::new(HashMap::new()),
        tx,
        rx,
        scheduled: AtomicBool::new(false),
        tsfn: RwLock::new(Tsfn(ptr::null_mut())),
        slots: Mutex::new(Slots::default()),
        backlog: Backlog::new(BACKLOG_LIMIT),
    });
    let context = Arc::into_raw(pump.clone()) as *mut c_void;
    let mut tsfn = ptr::null_mut();
    unsafe {
        let name = values::string(env.raw(), b"ferrows pump")?;
        let status = sys::napi_create_threadsafe_function(
            env.raw(),
            dispatch.raw(),
            ptr::null_mut(),
            name,
            0,
            1,
            context,
            Some(finalize_pump),
            context,
            Some(drain),
            &mut tsfn,
        );
        if status != sys::Status::napi_ok {
            drop(Arc::from_raw(context as *const Pump));
            return Err(Error::from_reason("ferrows: cannot create the event pump"));
        }
        sys::napi_unref_threadsafe_function(env.raw(), tsfn);
    }
    pump.tsfn.write().unwrap().0 = tsfn;
    let hook_pump = pump.clone();
    env.add_env_cleanup_hook((), move |_| {
        // The environment is going away: no thread may call into it from now on, its registrations to receive
        // posted connections are void, and the connections it held close as "going away".
        hook_pump.tsfn.write().unwrap().0 = ptr::null_mut();
        super::threads::forget(&hook_pump);
        let owned: Vec<Weak<Conn>> = hook_pump.owned.lock().unwrap().drain().map(|(_, c)| c).collect();
        for conn in owned.iter().filter_map(Weak::upgrade) {
            conn.close(GOING_AWAY, b"");
        }
        PUMP.with(|p| p.borrow_mut().take());
    })?;
    PUMP.with(|p| *p.borrow_mut() = Some(pump));
    Ok(())
}

unsafe extern "C" fn finalize_pump(_env: sys::napi_env, _data: *mut c_void, context: *mut c_void) {
    drop(Arc::from_raw(context as *const Pump));
}

/// The threadsafe function's callback, on the JavaScript thread: drains the queue in batches.
unsafe extern "C" fn drain(env: sys::napi_env, dispatch: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    if env.is_null() || context.is_null() {
        return;
    }
    // A panic must not unwind into Node: it becomes a JavaScript exception instead.
    let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drain_events(env, dispatch, &*(context as *const Pump))));
    if drained.is_err() {
        let message = std::ffi::CString::new("ferrows: internal error while delivering events").unwrap_or_default();
        sys::napi_throw_error(env, ptr::null(), message.as_ptr());
    }
}

unsafe fn drain_events(env: sys::napi_env, dispatch: sys::napi_value, pump: &Pump) {
    pump.scheduled.store(false, Ordering::SeqCst);
    let mut consumed = 0;
    let mut more = false;
    for _ in 0..BATCHES_PER_WAKE {
        // Every frame the batch's handlers send is written once the batch is over.
        let outcome = corked(|| {
            let mut scope = ptr::null_mut();
            sys::napi_open_handle_scope(env, &mut scope);
            let outcome = dispatch_batch(env, dispatch, pump, &mut consumed);
            sys::napi_close_handle_scope(env, scope);
            outcome
        });
        match outcome {
            Ok(true) => continue,
            Ok(false) => break,
            Err(_) => {
                // An exception is pending: Node reports it when we return; what is left waits for the next wake-up.
                more = true;
                break;
            }
        }
    }
    pump.backlog.release(consumed);
    if (more || !pump.rx.is_empty()) && !pump.scheduled.swap(true, Ordering::AcqRel) {
        let tsfn = pump.tsfn.read().unwrap();
        if !tsfn.0.is_null() {
            sys::napi_call_threadsafe_function(tsfn.0, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking);
        }
    }
}

/// Hands up to `BATCH` events to one `dispatch` call; Ok(true) if the batch was full (more may wait).
unsafe fn dispatch_batch(env: sys::napi_env, dispatch: sys::napi_value, pump: &Pump, consumed: &mut usize) -> Result<bool> {
    let events: Vec<(u32, Event)> = pump.rx.try_iter().take(BATCH).collect();
    if events.is_empty() {
        return Ok(false);
    }
    let full = events.len() == BATCH;
    let mut barriers = Vec::new();
    let events: Vec<(u32, Event)> = events
        .into_iter()
        .filter_map(|(slot, event)| {
            *consumed += event.weight();
            handle_natively(env, pump, slot, event, &mut barriers)
        })
        .collect();
    if events.is_empty() {
        resolve(barriers);
        return Ok(full);
    }
    let array = values::array(env, events.len() * 2)?;
    let mut ended = Vec::new();
    let mut shared: Vec<u8> = Vec::new();
    for (i, (slot, event)) in events.into_iter().enumerate() {
        let (kind, payload) = match event {
            Event::Text(data) => (KIND_TEXT, values::string(env, &data)?),
            Event::Binary(data) => (KIND_BINARY, values::array_buffer(env, data)?),
            Event::TextBytes(data) => (KIND_TEXT_BYTES, shared_bytes(env, &mut shared, data)?),
            Event::BinaryBytes(data) => (KIND_BINARY_BYTES, shared_bytes(env, &mut shared, data)?),
            Event::Frame { opcode, fin, data } => {
                let frame = values::array(env, 3)?;
                values::set_element(env, frame, 0, values::uint32(env, opcode as u32)?)?;
                values::set_element(env, frame, 1, values::uint32(env, fin as u32)?)?;
                values::set_element(env, frame, 2, values::array_buffer(env, data)?)?;
                (KIND_FRAME, frame)
            }
            Event::Output(data) => (KIND_OUTPUT, values::array_buffer(env, data)?),
            Event::BridgeEnd { abort } => (KIND_BRIDGE_END, values::uint32(env, abort as u32)?),
            Event::BridgeResume => (KIND_BRIDGE_RESUME, values::undefined(env)?),
            Event::Ping(data) => (KIND_PING, values::array_buffer(env, data)?),
            Event::Pong(data) => (KIND_PONG, values::array_buffer(env, data)?),
            Event::Drain => (KIND_DRAIN, values::undefined(env)?),
            Event::Upgrade(conn) => (KIND_UPGRADE, take_connection(env, pump, conn)?),
            Event::Posted(conn, last) => {
                if last {
                    ended.push(slot); // the one-shot registration is used up
                }
                (KIND_POSTED, take_connection(env, pump, conn)?)
            }
            Event::Request(exchange) => {
                let napi_env = Env::from_raw(env);
                let instance = NativeHttpExchange::new(exchange).into_instance(&napi_env)?;
                (KIND_REQUEST, instance.value)
            }
            Event::Failure { failure, peer, local, decide } => {
                let napi_env = Env::from_raw(env);
                let report = values::array(env, 4)?;
                values::set_element(env, report, 0, values::string(env, failure.name().as_bytes())?)?;
                values::set_element(env, report, 1, SocketEnds::to_napi_value(env, ends(peer, local))?)?;
                let detail = match failure {
                    Failure::UnknownHost(name) => values::string(env, name.as_bytes())?,
                    Failure::NotTls(first_bytes) => values::array_buffer(env, first_bytes)?,
                    _ => values::undefined(env)?,
                };
                values::set_element(env, report, 2, detail)?;
                let fallback = match decide {
                    Some(decide) => TlsFallback::new(decide).into_instance(&napi_env)?.value,
                    None => values::undefined(env)?,
                };
                values::set_element(env, report, 3, fallback)?;
                (KIND_FAILURE, report)
            }
            Event::Closed { code, reason } => {
                ended.push(slot);
                pump.disown(slot);
                let pair = values::array(env, 2)?;
                values::set_element(env, pair, 0, values::uint32(env, code as u32)?)?;
                values::set_element(env, pair, 1, values::string(env, reason.as_bytes())?)?;
                (KIND_CLOSED, pair)
            }
            Event::ServerClosed => {
                ended.push(slot);
                (KIND_SERVER_CLOSED, values::undefined(env)?)
            }
            Event::Backplane { state, error } => {
                let report = values::array(env, 2)?;
                values::set_element(env, report, 0, values::string(env, state.as_bytes())?)?;
                if let Some(error) = error {
                    values::set_element(env, report, 1, values::string(env, error.as_bytes())?)?;
                }
                (KIND_BACKPLANE, report)
            }
            Event::Barrier(_) | Event::MoveEnd => unreachable!("handled natively"),
        };
        values::set_element(env, array, (2 * i) as u32, values::uint32(env, slot << KIND_BITS | kind)?)?;
        values::set_element(env, array, (2 * i + 1) as u32, payload)?;
    }
    let mut result = ptr::null_mut();
    let shared = if shared.is_empty() { values::undefined(env)? } else { values::array_buffer(env, Bytes::from(shared))? };
    let argv = [array, shared];
    let status = sys::napi_call_function(env, values::undefined(env)?, dispatch, 2, argv.as_ptr(), &mut result);
    for slot in ended {
        // A connection posted during this batch keeps its slot until its move ends (`MoveEnd` frees it).
        if !MOVING.with(|m| m.borrow().contains_key(&slot)) {
            pump.free_slot(slot);
            release(env, pump);
        }
    }
    resolve(barriers);
    if status != sys::Status::napi_ok {
        return Err(Error::from_reason("dispatch threw"));
    }
    Ok(full)
}

/// Events that never reach JavaScript: barriers, the end of a move, and events of a connection that moved to
/// another thread (passed on to it). Returns the others.
fn handle_natively(env: sys::napi_env, pump: &Pump, slot: u32, event: Event, barriers: &mut Vec<tokio::sync::oneshot::Sender<()>>) -> Option<(u32, Event)> {
    // Almost always empty: no hash lookup per event unless some connection is being moved.
    let moving = MOVING.with(|m| {
        let m = m.borrow();
        if m.is_empty() {
            None
        } else {
            m.get(&slot).cloned()
        }
    });
    match (event, moving) {
        (Event::MoveEnd, moving) => {
            if let Some(conn) = moving {
                MOVING.with(|m| m.borrow_mut().remove(&slot));
                conn.route.finish_move();
            }
            pump.disown(slot);
            pump.free_slot(slot);
            release(env, pump);
            None
        }
        (event, Some(conn)) => {
            conn.route.forward(event);
            None
        }
        (Event::Barrier(handled), None) => {
            barriers.push(handled);
            None
        }
        (event, None) => Some((slot, event)),
    }
}

/// A small message goes into the batch's shared buffer (one allocation for all of them), a large one alone.
unsafe fn shared_bytes(env: sys::napi_env, shared: &mut Vec<u8>, data: Bytes) -> Result<sys::napi_value> {
    if data.len() > SHARED_MAX {
        return values::array_buffer(env, data);
    }
    let offset = shared.len();
    shared.extend_from_slice(&data);
    values::double(env, (offset * 65536 + data.len()) as f64)
}

fn ends(peer: std::net::SocketAddr, local: std::net::SocketAddr) -> SocketEnds {
    SocketEnds { remote: socket_address(peer), local: socket_address(local) }
}

/// The decision on a client that did not start TLS on a TLS port: plain text, or close.
#[napi]
pub struct TlsFallback {
    decide: Option<tokio::sync::oneshot::Sender<bool>>,
}

#[napi]
impl TlsFallback {
    pub fn new(decide: tokio::sync::oneshot::Sender<bool>) -> Self {
        TlsFallback { decide: Some(decide) }
    }

    /// true: go on in plain text; false: close. Only the first call counts.
    #[napi(catch_unwind)]
    pub fn decide(&mut self, plain: bool) -> bool {
        self.decide.take().is_some_and(|d| d.send(plain).is_ok())
    }
}

/// A connection this thread's JavaScript now holds.
unsafe fn take_connection(env: sys::napi_env, pump: &Pump, conn: Arc<Conn>) -> Result<sys::napi_value> {
    retain(env, pump);
    pump.adopt(&conn);
    let napi_env = Env::from_raw(env);
    Ok(NativeConnection::new(conn).into_instance(&napi_env)?.value)
}

/// Tells the connections waiting on these barriers that everything before them was handled.
fn resolve(barriers: Vec<tokio::sync::oneshot::Sender<()>>) {
    for handled in barriers {
        let _ = handled.send(());
    }
}
