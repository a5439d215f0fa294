//! One message to many connections of a server: all of them (broadcast) or a topic's subscribers (publish).
//! The frame is built once and queued by reference in every write queue (no copy per client); connections
//! with permessage-deflate compress it for themselves. A client whose queue is over the server's
//! `broadcast_limit` is skipped rather than allowed to hold the others back or grow without bound. With a
//! backplane the message also goes to the servers of other processes.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::connection::{Conn, OPEN};
use super::server::Server;
use super::stats;
use crate::protocol::sender::encode_frame;

/// Who gets a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Audience {
    Everyone,
    Topic(Arc<str>),
}

pub struct Delivery {
    pub sent: u32,
    pub skipped: u32,
    /// The connections that got the message: their queues need a flush.
    pub queued: Vec<Arc<Conn>>,
}

/// Sends to `audience` here and, with a backplane, in every other process on it.
pub fn publish(server: &Server, audience: Audience, opcode: u8, payload: Bytes) -> Delivery {
    let delivery = send_to(server, &audience, opcode, &payload);
    if let Some(backplane) = &server.backplane {
        backplane.enqueue(audience, opcode, payload);
    }
    delivery
}

/// Sends to `audience` among this server's own connections.
pub fn send_to(server: &Server, audience: &Audience, opcode: u8, payload: &[u8]) -> Delivery {
    let conns = match audience {
        Audience::Everyone => server.connections(),
        Audience::Topic(topic) => server.topics.subscribers(topic),
    };
    let mut frame = BytesMut::new();
    encode_frame(&mut frame, opcode, payload, None);
    let frame = frame.freeze();
    let mut delivery = Delivery { sent: 0, skipped: 0, queued: Vec::new() };
    // Shared frames are counted here (queue_shared sees a frame, not a message).
    let mut shared = 0u64;
    for conn in conns {
        if conn.state() != OPEN {
            continue;
        }
        if conn.outbox.buffered() > server.config.broadcast_limit {
            delivery.skipped += 1;
            continue;
        }
        let queued = if conn.compresses(payload.len()) {
            conn.queue_compressed(opcode, payload)
        } else if server.config.masking {
            // Masked frames differ per connection (sack's `masking` option): no sharing.
            conn.queue_frame(opcode, payload.len(), |buf| buf.extend_from_slice(payload))
        } else {
            let queued = conn.queue_shared(frame.clone());
            shared += queued as u64;
            queued
        };
        if queued {
            delivery.sent += 1;
            delivery.queued.push(conn);
        }
    }
    stats::add(&server.stats.skipped, delivery.skipped as u64);
    stats::add(&server.stats.messages_out, shared);
    stats::add(&server.stats.bytes_out, shared * payload.len() as u64);
    delivery
}
