//! Where a connection's events go, and moving that to another consumer (another JavaScript thread) without
//! losing, repeating or reordering an event. While a move is under way, new events are held; the previous
//! consumer passes on the events it had already queued (it meets an end marker after the last of them), and
//! only then do the held ones follow and the route becomes direct again.

use std::sync::{Arc, Mutex};

use super::{Event, EventSink, Sink};

enum State {
    Direct(Sink),
    /// Boxed: every connection holds a route, few ever move.
    Moving(Box<Move>),
    /// The last event (`Closed`) went out.
    Ended,
}

struct Move {
    /// None while the connection waits in a queue for a receiver.
    to: Option<Sink>,
    /// Events passed on by the previous consumer before `to` was known.
    earlier: Vec<Event>,
    /// Events that arrived since the move began.
    held: Vec<Event>,
    /// The previous consumer has passed on everything it had.
    previous_done: bool,
}

pub struct Route {
    state: Mutex<State>,
}

/// A move cannot start: the connection is closed or already moving.
#[derive(Debug)]
pub struct NotMovable;

impl Route {
    pub fn new(sink: Sink) -> Self {
        Route { state: Mutex::new(State::Direct(sink)) }
    }

    /// The slot the current (or next) consumer knows the connection by.
    pub fn slot(&self) -> Option<u32> {
        match &*self.state.lock().unwrap() {
            State::Direct(sink) => Some(sink.slot),
            State::Moving(m) => m.to.as_ref().map(|sink| sink.slot),
            State::Ended => None,
        }
    }

    /// The consumer whose backlog applies: None while queued or after the end.
    pub fn consumer(&self) -> Option<Arc<dyn EventSink>> {
        match &*self.state.lock().unwrap() {
            State::Direct(sink) => Some(sink.consumer.clone()),
            State::Moving(m) => m.to.as_ref().map(|sink| sink.consumer.clone()),
            State::Ended => None,
        }
    }

    pub fn is_ended(&self) -> bool {
        matches!(*self.state.lock().unwrap(), State::Ended)
    }

    /// Hands `events` on, in order with every other thread's; false once nobody can receive them.
    pub fn emit(&self, events: &mut Vec<Event>) -> bool {
        let mut state = self.state.lock().unwrap();
        match &mut *state {
            State::Direct(sink) => sink.deliver(events),
            State::Moving(m) => {
                m.held.append(events);
                true
            }
            State::Ended => {
                events.clear();
                false
            }
        }
    }

    /// The last event: nothing follows it.
    pub fn emit_last(&self, event: Event) {
        let mut state = self.state.lock().unwrap();
        match std::mem::replace(&mut *state, State::Ended) {
            State::Direct(sink) => {
                sink.deliver_one(event);
            }
            State::Moving(mut m) => {
                m.held.push(event);
                *state = State::Moving(m);
            }
            State::Ended => {}
        }
    }

    /// Starts moving to `to` (None: wait for a destination), first delivering `announce` (the receiver must know
    /// the connection before any of its events arrive). Returns the previous sink, which must be sent
    /// `Event::MoveEnd` so that it passes on what it still has.
    pub fn begin_move(&self, to: Option<Sink>, announce: Option<(Sink, Event)>) -> Result<Sink, NotMovable> {
        let mut state = self.state.lock().unwrap();
        match std::mem::replace(&mut *state, State::Ended) {
            State::Direct(previous) => {
                *state = State::Moving(Box::new(Move { to, earlier: Vec::new(), held: Vec::new(), previous_done: false }));
                if let Some((receiver, event)) = announce {
                    receiver.deliver_one(event);
                }
                Ok(previous)
            }
            other => {
                *state = other;
                Err(NotMovable)
            }
        }
    }

    /// Gives a queued move its destination, announcing it to the receiver first.
    pub fn set_destination(&self, sink: Sink, announce: (Sink, Event)) {
        let mut state = self.state.lock().unwrap();
        if let State::Moving(m) = &mut *state {
            m.to = Some(sink.clone());
            announce.0.deliver_one(announce.1);
            sink.deliver(&mut m.earlier);
        }
        Self::complete(&mut state);
    }

    /// An event the previous consumer had already queued: passed on ahead of everything held.
    pub fn forward(&self, event: Event) {
        let mut state = self.state.lock().unwrap();
        if let State::Moving(m) = &mut *state {
            match &m.to {
                Some(sink) => {
                    sink.deliver_one(event);
                }
                None => m.earlier.push(event),
            }
        }
    }

    /// The previous consumer has passed on everything it had.
    pub fn finish_move(&self) {
        let mut state = self.state.lock().unwrap();
        if let State::Moving(m) = &mut *state {
            m.previous_done = true;
        }
        Self::complete(&mut state);
    }

    /// Once the destination is known and the previous consumer is done, the held events follow.
    fn complete(state: &mut State) {
        let ready = matches!(state, State::Moving(m) if m.to.is_some() && m.previous_done);
        if !ready {
            return;
        }
        let State::Moving(m) = std::mem::replace(state, State::Ended) else { unreachable!() };
        let Move { to: Some(sink), mut held, .. } = *m else { unreachable!() };
        let ended = held.iter().any(|e| matches!(e, Event::Closed { .. }));
        sink.deliver(&mut held);
        if !ended {
            *state = State::Direct(sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Backlog;
    use bytes::Bytes;
    use std::sync::Mutex as StdMutex;

    /// A consumer that records what it receives.
    struct Recorder {
        got: StdMutex<Vec<(u32, String)>>,
        backlog: Backlog,
    }

    impl EventSink for Recorder {
        fn deliver(&self, slot: u32, events: &mut Vec<Event>) -> bool {
            for e in events.drain(..) {
                let name = match e {
                    Event::Text(b) => String::from_utf8(b.to_vec()).unwrap(),
                    Event::MoveEnd => "end".into(),
                    Event::Closed { .. } => "closed".into(),
                    _ => "other".into(),
                };
                self.got.lock().unwrap().push((slot, name));
            }
            true
        }
        fn new_slot(&self) -> u32 {
            0
        }
        fn backlog(&self) -> &Backlog {
            &self.backlog
        }
    }

    fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder { got: StdMutex::new(Vec::new()), backlog: Backlog::new(usize::MAX) })
    }

    fn text(s: &str) -> Event {
        Event::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_move_keeps_every_event_in_order() {
        let (a, b) = (recorder(), recorder());
        let route = Route::new(Sink { consumer: a.clone(), slot: 1 });
        route.emit(&mut vec![text("1"), text("2")]);
        let previous = route.begin_move(Some(Sink { consumer: b.clone(), slot: 7 }), None).unwrap();
        previous.deliver_one(Event::MoveEnd);
        route.emit(&mut vec![text("4")]); // arrives during the move: held
        // The previous consumer meets 1, 2 (already queued before the move) and passes them on, then the marker.
        route.forward(text("2.5"));
        route.finish_move();
        route.emit(&mut vec![text("5")]);
        route.emit_last(Event::Closed { code: 1000, reason: String::new() });
        route.emit(&mut vec![text("never")]);
        let got_b: Vec<String> = b.got.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
        assert_eq!(got_b, ["2.5", "4", "5", "closed"]);
        assert!(b.got.lock().unwrap().iter().all(|(slot, _)| *slot == 7));
        let got_a: Vec<String> = a.got.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
        assert_eq!(got_a, ["1", "2", "end"]);
    }

    #[test]
    fn a_queued_move_waits_for_its_destination() {
        let (a, b) = (recorder(), recorder());
        let route = Route::new(Sink { consumer: a.clone(), slot: 1 });
        route.begin_move(None, None).unwrap();
        assert!(route.begin_move(None, None).is_err());
        route.forward(text("old"));
        route.finish_move();
        route.emit(&mut vec![text("new")]);
        assert!(b.got.lock().unwrap().is_empty());
        route.set_destination(Sink { consumer: b.clone(), slot: 3 }, (Sink { consumer: b.clone(), slot: 9 }, text("hello")));
        let got: Vec<(u32, String)> = b.got.lock().unwrap().clone();
        assert_eq!(got, [(9, "hello".to_string()), (3, "old".to_string()), (3, "new".to_string())]);
        route.emit(&mut vec![text("direct")]);
        assert_eq!(b.got.lock().unwrap().len(), 4);
    }
}
