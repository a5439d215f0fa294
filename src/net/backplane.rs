//! Broadcasts and topic publications across processes and hosts, over one Redis Stream per backplane name.
//!
//! Every server on a backplane appends what it publishes to the stream (`XADD ... MAXLEN ~ n`) and reads the
//! stream from the last entry it has seen (`XREAD BLOCK`), handing each entry's frame, built once, to its own
//! subscribers' write queues: nothing of it passes through JavaScript. Local subscribers got the message at
//! publication, so a server skips entries of its own origin. After a lost connection the reader resumes from
//! its last entry id and the writer resends what was not confirmed, in order; entries carry a per-origin
//! sequence number so that a resent entry is delivered once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{RedisError, Value};
use tokio::sync::Notify;

use super::broadcast::{send_to, Audience};
use super::listener::Server;
use super::Event;
use crate::protocol::frame::{OP_BINARY, OP_TEXT};

pub struct BackplaneConfig {
    pub url: String,
    /// Servers naming the same backplane share its stream.
    pub name: String,
    /// The stream keeps about this many entries: the window a reconnecting server can catch up on.
    pub max_len: usize,
    /// Bytes of publications held while Redis is unreachable; the oldest are dropped beyond it.
    pub queue_limit: usize,
}

/// How long one XREAD waits for entries; also how often a quiet reader notices its server stopped.
const READ_BLOCK_MS: usize = 1000;
/// Entries per XREAD, and publications per pipelined write.
const BATCH: usize = 512;
/// Counted against `queue_limit` per queued publication besides its payload.
const ENTRY_OVERHEAD: usize = 64;
const MIN_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

struct Outgoing {
    seq: u64,
    audience: Audience,
    opcode: u8,
    payload: Bytes,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Outgoing>,
    bytes: usize,
    next_seq: u64,
    /// Publications dropped since the queue last emptied (reported once per overflow).
    dropped: u64,
}

pub struct Backplane {
    config: BackplaneConfig,
    key: String,
    /// This server's id in the stream's entries.
    origin: String,
    queue: Mutex<Queue>,
    queued: Notify,
    state: AtomicU8,
}

/// A stream entry from another server.
#[derive(Debug, PartialEq)]
struct Incoming {
    origin: String,
    seq: u64,
    audience: Audience,
    opcode: u8,
    payload: Vec<u8>,
}

impl Backplane {
    pub fn new(config: BackplaneConfig) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let origin = format!("{:016x}{:08x}", RandomState::new().hash_one(std::time::SystemTime::now()), std::process::id());
        Backplane { key: format!("ferrows:{}", config.name), config, origin, queue: Mutex::default(), queued: Notify::new(), state: AtomicU8::new(UNKNOWN) }
    }

    /// Starts the writer and the reader; they end when the server stops.
    pub fn start(rt: &tokio::runtime::Runtime, server: &Arc<Server>) {
        let Some(backplane) = server.backplane.clone() else { return };
        let client = match redis::Client::open(backplane.config.url.as_str()) {
            Ok(client) => client,
            Err(e) => return backplane.report(server, DOWN, Some(format!("backplane: {e}"))),
        };
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(MAX_RETRY)
            // Few attempts per command: the loops here retry on their own, and 'down' is reported promptly.
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Longer than a blocking read.
            .set_response_timeout(Some(Duration::from_millis(READ_BLOCK_MS as u64 + 2000)));
        for reader in [false, true] {
            let (server, backplane, client, config) = (server.clone(), backplane.clone(), client.clone(), config.clone());
            rt.spawn(async move {
                let manager = match ConnectionManager::new_lazy_with_config(client, config) {
                    Ok(manager) => manager,
                    Err(e) => return backplane.report(&server, DOWN, Some(format!("backplane: {e}"))),
                };
                let run = async {
                    if reader { backplane.read(&server, manager).await } else { backplane.write(&server, manager).await }
                };
                tokio::select! {
                    _ = run => {}
                    _ = server.stopped() => {}
                }
            });
        }
    }

    /// Whether Redis answers at `url` (for `required` backplanes, checked before the server starts).
    pub async fn probe(url: &str) -> Result<(), String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(Duration::from_secs(2)));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.map_err(|e| e.to_string())?;
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| e.to_string())
    }

    /// Queues a publication for the other servers (local subscribers already have it).
    pub fn enqueue(&self, audience: Audience, opcode: u8, payload: Bytes) {
        let mut q = self.queue.lock().unwrap();
        let seq = q.next_seq;
        q.next_seq += 1;
        q.bytes += payload.len() + ENTRY_OVERHEAD;
        q.entries.push_back(Outgoing { seq, audience, opcode, payload });
        while q.bytes > self.config.queue_limit && q.entries.len() > 1 {
            let old = q.entries.pop_front().expect("more than one entry");
            q.bytes -= old.payload.len() + ENTRY_OVERHEAD;
            q.dropped += 1;
        }
        drop(q);
        self.queued.notify_one();
    }

    /// Tells the application about a change of state ('up'/'down') or an error that did not change it.
    fn report(&self, server: &Server, state: u8, error: Option<String>) {
        let changed = self.state.swap(state, Ordering::AcqRel) != state;
        if server.is_closed() || (!changed && error.is_none()) {
            return;
        }
        let name = match (changed, state) {
            (true, UP) => "up",
            (true, _) => "down",
            (false, _) => "error",
        };
        server.sink.deliver_one(Event::Backplane { state: name, error });
    }

    /// A failed command: connection trouble makes the backplane 'down'; anything else is an 'error'.
    fn failed(&self, server: &Server, e: &RedisError) {
        let connection = e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout();
        let state = if connection { DOWN } else { self.state.load(Ordering::Acquire) };
        self.report(server, state, Some(format!("backplane: {e}")));
    }

    /// Sends queued publications in order, many per round trip, until the server stops.
    async fn write(&self, server: &Server, mut redis: ConnectionManager) {
        let mut retry = MIN_RETRY;
        loop {
            let notified = self.queued.notified();
            let (batch, last_seq, dropped) = {
                let mut q = self.queue.lock().unwrap();
                let mut pipe = redis::pipe();
                for entry in q.entries.iter().take(BATCH) {
                    pipe.add_command(self.xadd(entry)).ignore();
                }
                (pipe, q.entries.iter().take(BATCH).last().map(|e| e.seq), std::mem::take(&mut q.dropped))
            };
            if dropped > 0 {
                let error = format!("backplane: Redis unreachable and the queue full, {dropped} oldest publications dropped");
                self.report(server, self.state.load(Ordering::Acquire), Some(error));
            }
            let Some(last_seq) = last_seq else {
                notified.await;
                continue;
            };
            match batch.query_async::<()>(&mut redis).await {
                Ok(()) => {
                    retry = MIN_RETRY;
                    let mut q = self.queue.lock().unwrap();
                    // Entries dropped meanwhile for space are gone already; only the sent ones are left to remove.
                    while q.entries.front().is_some_and(|e| e.seq <= last_seq) {
                        let sent = q.entries.pop_front().expect("checked");
                        q.bytes -= sent.payload.len() + ENTRY_OVERHEAD;
                    }
                }
                Err(e) => {
                    self.failed(server, &e);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    fn xadd(&self, entry: &Outgoing) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key).arg("MAXLEN").arg("~").arg(self.config.max_len).arg("*");
        cmd.arg("o").arg(&self.origin).arg("s").arg(entry.seq);
        if let Audience::Topic(topic) = &entry.audience {
            cmd.arg("t").arg(&**topic);
        }
        if entry.opcode == OP_BINARY {
            cmd.arg("b").arg(1);
        }
        cmd.arg("d").arg(&entry.payload[..]);
        cmd
    }

    /// Follows the stream from its end at the first connection, delivering other servers' entries.
    async fn read(&self, server: &Server, mut redis: ConnectionManager) {
        let mut retry = MIN_RETRY;
        let mut last_id: Option<String> = None;
        let mut seen = Seen::default();
        loop {
            let result = match &last_id {
                None => redis::cmd("XREVRANGE").arg(&self.key).arg("+").arg("-").arg("COUNT").arg(1)
                    .query_async::<StreamRangeReply>(&mut redis).await
                    .map(|r| { last_id = Some(r.ids.first().map_or_else(|| "0-0".to_string(), |e| e.id.clone())); }),
                Some(from) => redis::cmd("XREAD").arg("COUNT").arg(BATCH).arg("BLOCK").arg(READ_BLOCK_MS).arg("STREAMS").arg(&self.key).arg(from)
                    .query_async::<Option<StreamReadReply>>(&mut redis).await
                    .map(|reply| {
                        let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
                        if let Some(last) = entries.last() {
                            last_id = Some(last.id.clone());
                        }
                        self.deliver(server, entries, &mut seen);
                    }),
            };
            match result {
                Ok(()) => {
                    retry = MIN_RETRY;
                    self.report(server, UP, None);
                }
                Err(e) => {
                    self.failed(server, &e);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Hands a batch of entries to the local connections: one write per connection for the whole batch.
    fn deliver(&self, server: &Server, entries: Vec<StreamId>, seen: &mut Seen) {
        let mut touched = HashMap::new();
        for incoming in entries.iter().filter_map(decode) {
            if incoming.origin == self.origin || !seen.first_time(&incoming.origin, incoming.seq) {
                continue;
            }
            let delivery = send_to(server, &incoming.audience, incoming.opcode, &incoming.payload);
            for conn in delivery.queued {
                touched.entry(conn.id).or_insert(conn);
            }
        }
        for conn in touched.into_values() {
            conn.flush();
        }
    }
}

/// The highest sequence number delivered per origin: a resent entry is not delivered twice.
#[derive(Default)]
struct Seen(HashMap<String, u64>);

impl Seen {
    fn first_time(&mut self, origin: &str, seq: u64) -> bool {
        match self.0.get_mut(origin) {
            Some(last) if seq <= *last => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                self.0.insert(origin.to_string(), seq);
                true
            }
        }
    }
}

/// Reads an entry written by `Backplane::xadd`; None for anything else found in the stream.
fn decode(entry: &StreamId) -> Option<Incoming> {
    let field = |name: &str| match entry.map.get(name) {
        Some(Value::BulkString(bytes)) => Some(bytes.as_slice()),
        Some(Value::SimpleString(s)) => Some(s.as_bytes()),
        _ => None,
    };
    let text = |name: &str| field(name).and_then(|b| std::str::from_utf8(b).ok());
    let payload = field("d")?.to_vec();
    let binary = field("b").is_some();
    if !binary && simdutf8::basic::from_utf8(&payload).is_err() {
        return None;
    }
    Some(Incoming {
        origin: text("o")?.to_string(),
        seq: text("s")?.parse().ok()?,
        audience: match text("t") {
            Some(topic) => Audience::Topic(Arc::from(topic)),
            None if field("t").is_some() => return None,
            None => Audience::Everyone,
        },
        opcode: if binary { OP_BINARY } else { OP_TEXT },
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> StreamId {
        StreamId { id: "1-0".into(), map: fields.iter().map(|(k, v)| (k.to_string(), Value::BulkString(v.to_vec()))).collect(), ..Default::default() }
    }

    #[test]
    fn decodes_what_xadd_writes() {
        let topic = entry(&[("o", b"abc"), ("s", b"7"), ("t", b"room:42"), ("d", b"hello")]);
        assert_eq!(
            decode(&topic),
            Some(Incoming { origin: "abc".into(), seq: 7, audience: Audience::Topic(Arc::from("room:42")), opcode: OP_TEXT, payload: b"hello".to_vec() })
        );
        let everyone = entry(&[("o", b"abc"), ("s", b"8"), ("b", b"1"), ("d", &[0xff, 0])]);
        assert_eq!(decode(&everyone).map(|i| (i.audience, i.opcode)), Some((Audience::Everyone, OP_BINARY)));
    }

    #[test]
    fn refuses_foreign_or_broken_entries() {
        assert_eq!(decode(&entry(&[("d", b"x")])), None, "no origin");
        assert_eq!(decode(&entry(&[("o", b"a"), ("s", b"x1"), ("d", b"x")])), None, "bad sequence number");
        assert_eq!(decode(&entry(&[("o", b"a"), ("s", b"1"), ("d", &[0xc3, 0x28])])), None, "text that is not UTF-8");
        assert_eq!(decode(&entry(&[("o", b"a"), ("s", b"1"), ("t", &[0xff]), ("d", b"x")])), None, "topic that is not UTF-8");
    }

    #[test]
    fn a_resent_entry_is_delivered_once() {
        let mut seen = Seen::default();
        let order = [("a", 1), ("a", 2), ("b", 1), ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)];
        let delivered: Vec<_> = order.iter().filter(|(o, s)| seen.first_time(o, *s)).collect();
        assert_eq!(delivered, [&("a", 1), &("a", 2), &("b", 1), &("a", 3), &("b", 2)]);
    }
}
