//! Draining a JavaScript thread's pump: the threadsafe function's callback hands every waiting event to a
//! single JavaScript `dispatch(codes, shared, ...payloads)` call per batch (see `events` for the layout), and frames that
//! handlers send during a batch are written once, at its end.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::{sys, Env, JsValue};

use super::events::{self, KIND_BITS};
use super::pump::{self, Pump, Tsfn};
use super::values;
use crate::net::send::corked;
use crate::net::Event;
use crate::protocol::close::GOING_AWAY;

/// Events handed to JavaScript per `dispatch` call.
const BATCH: usize = 4096;
/// Batches per wake-up before the thread is given back to its event loop (timers, I/O) for a turn.
const BATCHES_PER_WAKE: usize = 16;

/// Starts this thread's pump; `dispatch(codes, shared, ...payloads)` receives every batch and returns the indices of the
/// events it could not deliver (their connection was posted to another thread meanwhile), or undefined.
#[napi(catch_unwind)]
pub fn start_pump(env: Env, dispatch: Function<'_>) -> Result<()> {
    if pump::is_installed() {
        return Err(Error::from_reason("ferrows: the event pump of this thread is already started"));
    }
    let pump = Arc::new(Pump::new());
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
    *pump.tsfn.write().unwrap() = Tsfn(tsfn);
    let hook_pump = pump.clone();
    env.add_env_cleanup_hook((), move |_| {
        // The environment is going away: no thread may call into it from now on, its registrations to receive
        // posted connections are void, and the connections it held close as "going away".
        *hook_pump.tsfn.write().unwrap() = Tsfn(ptr::null_mut());
        super::threads::forget(&hook_pump);
        for conn in super::handles::release_all() {
            if hook_pump.holds(&conn) {
                conn.close(GOING_AWAY, b"");
            }
        }
        pump::install(None);
    })?;
    pump::install(Some(pump));
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
    if more || !pump.rx.is_empty() {
        pump.wake();
    }
}

/// Hands up to `BATCH` events to one `dispatch` call; Ok(true) if the batch was full (more may wait).
unsafe fn dispatch_batch(env: sys::napi_env, dispatch: sys::napi_value, pump: &Pump, consumed: &mut usize) -> Result<bool> {
    // Sized once: collected from the channel's iterator, which gives no length, the vector grew by doubling,
    // moving the batch each time.
    let mut events = Vec::with_capacity(pump.rx.len().min(BATCH));
    events.extend(pump.rx.try_iter().take(BATCH));
    if events.is_empty() {
        return Ok(false);
    }
    let full = events.len() == BATCH;
    let mut barriers = Vec::new();
    // Filtered in place (the vector's own storage is reused).
    let mut events: Vec<(u32, Event)> = events
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
    // Codes in a typed array Rust fills in place; payloads as the call's own arguments (rest parameters in
    // JavaScript), which V8 gathers in one go: an array set element by element cost a property lookup each.
    let (codes_array, codes) = values::uint32_array(env, events.len())?;
    let mut argv = Vec::with_capacity(2 + events.len());
    argv.extend([codes_array, ptr::null_mut()]);
    let mut ended = Vec::new();
    let mut shared: Vec<u8> = Vec::new();
    for (i, (slot, event)) in events.iter_mut().enumerate() {
        let slot = *slot;
        if matches!(event, Event::Upgrade { .. } | Event::Posted { .. }) {
            // A connection this thread's JavaScript now holds.
            pump::retain(env, pump);
        }
        // The last event of its slot (a one-shot registration is used up by its connection).
        if matches!(event, Event::Closed { .. } | Event::ServerClosed | Event::Posted { last: true, .. }) {
            ended.push(slot);
        }
        let (kind, payload) = events::to_js(env, slot, event, &mut shared)?;
        codes[i] = slot << KIND_BITS | kind;
        argv.push(payload);
    }
    let mut result = ptr::null_mut();
    argv[1] = if shared.is_empty() { values::undefined(env)? } else { values::array_buffer(env, &bytes::Bytes::from(shared))? };
    let status = sys::napi_call_function(env, values::undefined(env)?, dispatch, argv.len(), argv.as_ptr(), &mut result);
    if status == sys::Status::napi_ok {
        pass_on_undelivered(env, result, &mut events)?;
    }
    for slot in ended {
        // A connection posted during this batch keeps its slot until its move ends (`MoveEnd` frees it).
        if pump::moving(slot).is_none() {
            pump.free_slot(slot);
            pump::release(env, pump);
        }
    }
    resolve(barriers);
    if status != sys::Status::napi_ok {
        return Err(Error::from_reason("dispatch threw"));
    }
    Ok(full)
}

/// Events of this batch that JavaScript did not take because their connection was posted to another thread
/// while the batch ran: they go to that thread, ahead of what is still queued here for it.
unsafe fn pass_on_undelivered(env: sys::napi_env, result: sys::napi_value, events: &mut [(u32, Event)]) -> Result<()> {
    let Some(indices) = Option::<Vec<u32>>::from_napi_value(env, result)? else { return Ok(()) };
    for index in indices {
        let Some((slot, event)) = events.get_mut(index as usize) else { continue };
        if let Some(conn) = pump::moving(*slot) {
            conn.route.forward(std::mem::replace(event, Event::MoveEnd));
        }
    }
    Ok(())
}

/// Events that never reach JavaScript: barriers, the end of a move, and events of a connection that moved to
/// another thread (passed on to it). Returns the others.
fn handle_natively(env: sys::napi_env, pump: &Pump, slot: u32, event: Event, barriers: &mut Vec<tokio::sync::oneshot::Sender<()>>) -> Option<(u32, Event)> {
    match (event, pump::moving(slot)) {
        (Event::MoveEnd, moving) => {
            if let Some(conn) = moving {
                pump::moved(slot);
                conn.route.finish_move();
            }
            pump.free_slot(slot);
            pump::release(env, pump);
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

/// Tells the connections waiting on these barriers that everything before them was handled.
fn resolve(barriers: Vec<tokio::sync::oneshot::Sender<()>>) {
    for handled in barriers {
        let _ = handled.send(());
    }
}
