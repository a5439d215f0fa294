//! One message to every open connection of a server. The frame is built once and queued by reference in every
//! write queue (no copy per client); connections with permessage-deflate compress it for themselves. A client
//! whose queue is over the limit is skipped rather than allowed to hold the others back or grow without bound.

use std::sync::Arc;

use bytes::BytesMut;

use super::connection::{Conn, OPEN};
use super::listener::Server;
use crate::protocol::sender::encode_frame;

pub struct Delivery {
    pub sent: u32,
    pub skipped: u32,
    /// The connections that got the message: their queues need a flush.
    pub queued: Vec<Arc<Conn>>,
}

pub fn broadcast(server: &Server, opcode: u8, payload: &[u8], limit: usize) -> Delivery {
    let mut frame = BytesMut::new();
    encode_frame(&mut frame, opcode, payload, None);
    let frame = frame.freeze();
    let mut delivery = Delivery { sent: 0, skipped: 0, queued: Vec::new() };
    for conn in server.connections() {
        if conn.state() != OPEN {
            continue;
        }
        if conn.outbox.buffered() > limit {
            delivery.skipped += 1;
            continue;
        }
        let queued = if conn.compresses(payload.len()) {
            conn.queue_compressed(opcode, payload)
        } else if server.config.masking {
            // Masked frames differ per connection (sack's `masking` option): no sharing.
            conn.queue_frame(opcode, payload.len(), |buf| buf.extend_from_slice(payload))
        } else {
            conn.queue_shared(frame.clone())
        };
        if queued {
            delivery.sent += 1;
            delivery.queued.push(conn);
        }
    }
    delivery
}
