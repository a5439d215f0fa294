//! The network layer: one tokio runtime for the process, listeners, and a task per connection that runs the
//! protocol over its socket. It hands events to an `EventSink` and knows nothing about JavaScript.

pub mod backlog;
pub mod backplane;
pub mod bridge;
pub mod broadcast;
pub mod connection;
pub mod drain;
pub mod failure;
pub mod http;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod outbox;
pub mod presence;
pub mod read_buffer;
pub mod route;
pub mod signal;
pub mod runtime;
pub mod secure;
pub mod send;
pub mod server;
pub mod socket;
pub mod stats;
pub mod tls;
pub mod topics;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use backlog::Backlog;
pub use connection::Conn;

/// What the network tells its owner, one connection or server at a time.
pub enum Event {
    /// A valid upgrade request is waiting for accept or reject; targets the server, carries the new connection
    /// and the slot of its events. The slot comes with the event: a connection can end (a posted one, while it
    /// moves), and its route forget the slot, before the event is handled.
    Upgrade { conn: Arc<Conn>, slot: u32 },
    /// A plain HTTP request for the application to answer; targets the server.
    Request(Arc<http::Exchange>),
    Text(Bytes),
    /// One data frame, for an application that assembles messages itself.
    Frame { opcode: u8, fin: bool, data: Bytes },
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The write queue emptied after the socket had been full.
    Drain,
    /// The connection is gone; always its last event.
    Closed { code: u16, reason: String },
    /// The server stopped listening (after a drain: and its connections are gone); always its last event.
    ServerClosed,
    /// Every connection of a draining server is gone (targets the server).
    Drained,
    /// Not shown to the consumer: resolved once every event before it was handled (and the replies those
    /// handlers queued are in the outbox).
    Barrier(tokio::sync::oneshot::Sender<()>),
    /// A socket failed (targets the server). For `Failure::NotTls` the application decides through `decide`
    /// whether the connection goes on in plain text.
    Failure { failure: failure::Failure, peer: SocketAddr, local: SocketAddr, decide: Option<tokio::sync::oneshot::Sender<bool>> },
    /// A connection handed over by another thread, with the slot of its events here (as for `Upgrade`); targets
    /// a receiver registration. `last`: the registration is used up (a one-shot `accept`).
    Posted { conn: Arc<Conn>, slot: u32, last: bool },
    /// Not shown to the consumer: the connection of this slot moved away and every event it had is behind.
    MoveEnd,
    /// Bytes for JavaScript to write to the Node socket of a bridged connection (targets the bridge).
    Output(Bytes),
    /// JavaScript should end (or destroy) the Node socket of a bridge; its last event.
    BridgeEnd { abort: bool },
    /// The bridge read enough: JavaScript may resume its paused socket.
    BridgeResume,
    /// The server's backplane went 'up' or 'down', or had an 'error' (targets the server).
    Backplane { state: &'static str, error: Option<String> },
}

impl Event {
    /// Bytes this event holds while it waits for its consumer (what backpressure counts).
    pub fn weight(&self) -> usize {
        match self {
            Event::Text(b) | Event::Binary(b) | Event::Frame { data: b, .. } | Event::Ping(b) | Event::Pong(b) => b.len(),
            _ => 0,
        }
    }
}

/// Where events go: the binding implements it with a per-thread event pump.
pub trait EventSink: Send + Sync {
    /// Queues `events` for the object known to the consumer as `slot`; false once the consumer is gone.
    fn deliver(&self, slot: u32, events: &mut Vec<Event>) -> bool;
    /// A fresh slot for a new connection.
    fn new_slot(&self) -> u32;
    /// Shared with the consumer: readers pause while it is full.
    fn backlog(&self) -> &Backlog;
}

/// An event destination: a consumer and the slot it knows the object by.
#[derive(Clone)]
pub struct Sink {
    pub consumer: Arc<dyn EventSink>,
    pub slot: u32,
}

impl Sink {
    /// Queues `events` for the consumer, counting their bytes against its backlog.
    pub fn deliver(&self, events: &mut Vec<Event>) -> bool {
        self.consumer.backlog().add(events.iter().map(Event::weight).sum());
        self.consumer.deliver(self.slot, events)
    }
    pub fn deliver_one(&self, event: Event) -> bool {
        self.deliver(&mut vec![event])
    }
}
