//! Handing accepted connections between JavaScript threads (sack's `WebSocket.Thread`): a process-wide
//! registry of names that threads wait on. A posted connection stays in the runtime; only its route moves to
//! the receiving thread's pump (see `net::route`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use napi::bindgen_prelude::*;
use napi::Env;

use super::pump::{self, Pump};
use crate::net::{Conn, Event, EventSink, Sink};
use crate::protocol::close::TRY_AGAIN_LATER;

/// Connections held for a name nobody waits on yet (`{ queue: true }`); the newest over it is refused.
const QUEUE_LIMIT: usize = 1024;

struct Receiver {
    pump: Arc<Pump>,
    /// The registration's slot in its thread.
    slot: u32,
    persistent: bool,
}

#[derive(Default)]
struct Name {
    receivers: VecDeque<Receiver>,
    queued: VecDeque<Arc<Conn>>,
}

static REGISTRY: LazyLock<Mutex<HashMap<String, Name>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Moves `conn` to `receiver`'s thread: the receiver learns of it first, then whatever the old thread still had
/// queued for it, then what arrived meanwhile.
fn hand_over(conn: &Arc<Conn>, receiver: &Receiver, to_queue: bool) -> bool {
    let to = Sink { consumer: receiver.pump.clone(), slot: receiver.pump.new_slot() };
    let posted = Event::Posted { conn: conn.clone(), slot: to.slot, last: !receiver.persistent };
    let announce = (Sink { consumer: receiver.pump.clone(), slot: receiver.slot }, posted);
    if to_queue {
        // Already moving (queued): it only needed a destination.
        conn.route.set_destination(to, announce);
        conn.wake();
        return true;
    }
    let Ok(previous) = conn.route.begin_move(Some(to), Some(announce)) else { return false };
    end_here(conn, previous);
    true
}

/// The posting thread passes on what it still has for the connection, up to the end marker.
fn end_here(conn: &Arc<Conn>, previous: Sink) {
    pump::forward_queued(previous.slot, conn.clone());
    previous.deliver_one(Event::MoveEnd);
}

/// Takes the next live receiver for a name; persistent ones go to the back (round robin).
fn next_receiver(entry: &mut Name) -> Option<Receiver> {
    while let Some(r) = entry.receivers.pop_front() {
        if !r.pump.is_alive() {
            continue;
        }
        if r.persistent {
            entry.receivers.push_back(Receiver { pump: r.pump.clone(), slot: r.slot, persistent: true });
        }
        return Some(r);
    }
    None
}

pub fn post(conn: &Arc<Conn>, name: &str, queue: bool) -> Result<bool> {
    let mine = pump::current()?;
    if !mine.holds(conn) {
        // Which of the three, and the socket's state: a report of this error should say what happened.
        let why = if conn.route.is_ended() {
            "its events ended (closed)"
        } else if conn.route.consumer().is_none() {
            "it is queued for another thread"
        } else {
            "another thread holds it (already posted)"
        };
        let state = ["connecting", "open", "closing", "closed"].get(conn.state() as usize).unwrap_or(&"unknown");
        return Err(Error::from_reason(format!("This connection is not held by this thread: {why}; socket {state}")));
    }
    let mut registry = REGISTRY.lock().unwrap();
    let entry = registry.entry(name.to_string()).or_default();
    if let Some(receiver) = next_receiver(entry) {
        return if hand_over(conn, &receiver, false) { Ok(true) } else { Err(Error::from_reason("The connection is closed")) };
    }
    if !queue {
        return Ok(false);
    }
    if entry.queued.len() >= QUEUE_LIMIT {
        conn.close(TRY_AGAIN_LATER, b"");
        return Ok(false);
    }
    let Ok(previous) = conn.route.begin_move(None, None) else { return Err(Error::from_reason("The connection is closed")) };
    end_here(conn, previous);
    entry.queued.push_back(conn.clone());
    Ok(true)
}

/// Registers this thread to receive connections posted to `name`; returns the registration's slot, which the
/// JavaScript side routes `posted` events of.
#[napi(catch_unwind)]
pub fn accept_posts(env: Env, name: String, persistent: bool) -> Result<u32> {
    let pump = pump::current()?;
    let slot = pump.new_slot();
    pump::retain(env.raw(), &pump);
    let receiver = Receiver { pump, slot, persistent };
    let mut registry = REGISTRY.lock().unwrap();
    let entry = registry.entry(name).or_default();
    // Connections queued for this name go to it at once (only one to a one-shot registration).
    while let Some(conn) = entry.queued.pop_front() {
        hand_over(&conn, &receiver, true);
        if !persistent {
            return Ok(slot);
        }
    }
    entry.receivers.push_back(receiver);
    Ok(slot)
}

/// Withdraws this thread's registrations for `name`; returns their slots (the JavaScript side drops them).
#[napi(catch_unwind)]
pub fn cancel_posts(env: Env, name: String) -> Result<Vec<u32>> {
    let pump = pump::current()?;
    let mut registry = REGISTRY.lock().unwrap();
    let mut slots = Vec::new();
    if let Some(entry) = registry.get_mut(&name) {
        entry.receivers.retain(|r| {
            let mine = Arc::ptr_eq(&r.pump, &pump);
            if mine {
                slots.push(r.slot);
            }
            !mine
        });
    }
    for slot in &slots {
        pump::unregister(env.raw(), &pump, *slot);
    }
    Ok(slots)
}

/// Drops every registration of a thread that is going away.
pub fn forget(pump: &Arc<Pump>) {
    for entry in REGISTRY.lock().unwrap().values_mut() {
        entry.receivers.retain(|r| !Arc::ptr_eq(&r.pump, pump));
    }
}
