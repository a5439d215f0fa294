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
use redis::streams::StreamRangeReply;
use redis::{RedisError, Value};
use tokio::sync::Notify;

use super::broadcast::{send_to, Audience};
use super::server::Server;
use super::stats;
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

/// How long one XREAD waits for entries before it asks again (each answer also confirms Redis is up).
const READ_BLOCK_MS: usize = 1000;
/// Entries per XREAD, and publications per pipelined write...
const BATCH: usize = 512;
/// ...unless their payloads pass this many bytes first (a batch in flight is held outside the queue's bound).
const BATCH_BYTES: usize = 1024 * 1024;
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
    /// Publications dropped for space since the writer last reported drops.
    dropped: u64,
}

impl Outgoing {
    /// What it counts against `queue_limit`.
    fn cost(&self) -> usize {
        self.payload.len() + ENTRY_OVERHEAD
    }
}

impl Queue {
    /// Appends a publication, then drops the oldest waiting ones (never the newest) while over `limit` bytes.
    fn push(&mut self, audience: Audience, opcode: u8, payload: Bytes, limit: usize) {
        let entry = Outgoing { seq: self.next_seq, audience, opcode, payload };
        self.next_seq += 1;
        self.bytes += entry.cost();
        self.entries.push_back(entry);
        while self.bytes > limit && self.entries.len() > 1 {
            self.pop();
            self.dropped += 1;
        }
    }

    fn pop(&mut self) -> Option<Outgoing> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.cost();
        Some(entry)
    }

    /// The oldest publications, up to a batch, out of the queue.
    fn take_batch(&mut self) -> Vec<Outgoing> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            let Some(entry) = self.pop() else { break };
            bytes += entry.payload.len();
            batch.push(entry);
        }
        batch
    }
}

pub struct Backplane {
    config: BackplaneConfig,
    key: String,
    /// This server's id in the stream's entries.
    origin: String,
    queue: Mutex<Queue>,
    queued: Notify,
    state: AtomicU8,
    /// The last 'error' reported, so that a persisting one is not repeated at every retry.
    last_error: Mutex<Option<String>>,
    /// The connection presence uses (its own: the reader's blocks).
    presence: std::sync::OnceLock<ConnectionManager>,
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
        Backplane { key: format!("ferrows:{}", config.name), config, origin, queue: Mutex::default(), queued: Notify::new(), state: AtomicU8::new(UNKNOWN), last_error: Mutex::new(None), presence: std::sync::OnceLock::new() }
    }

    /// Starts the writer and the reader; they end when the server stops.
    pub fn start(rt: &tokio::runtime::Runtime, server: &Arc<Server>) {
        let Some(backplane) = server.backplane.clone() else { return };
        let client = match redis::Client::open(backplane.config.url.as_str()) {
            Ok(client) => client,
            Err(e) => return backplane.set_state(server, DOWN, Some(format!("backplane: {e}"))),
        };
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(MAX_RETRY)
            // Few attempts per command: the loops here retry on their own, and 'down' is reported promptly.
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Longer than a blocking read.
            .set_response_timeout(Some(Duration::from_millis(READ_BLOCK_MS as u64 + 2000)));
        {
            let (server, backplane, client, config) = (server.clone(), backplane.clone(), client.clone(), config.clone());
            rt.spawn(async move {
                // Inside the runtime: the manager needs its reactor.
                let Ok(manager) = ConnectionManager::new_lazy_with_config(client, config) else { return };
                let _ = backplane.presence.set(manager.clone());
                tokio::select! {
                    _ = super::presence::publish_counts(server.clone(), backplane, manager) => {}
                    _ = server.stopped() => {}
                }
            });
        }
        for reader in [false, true] {
            let (server, backplane, client, config) = (server.clone(), backplane.clone(), client.clone(), config.clone());
            rt.spawn(async move {
                let manager = match ConnectionManager::new_lazy_with_config(client, config) {
                    Ok(manager) => manager,
                    Err(e) => return backplane.set_state(&server, DOWN, Some(format!("backplane: {e}"))),
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

    /// The stream's key; presence keys start with it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This server's id among the servers on the stream.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The connection for presence queries, once the backplane started.
    pub fn presence_connection(&self) -> Option<ConnectionManager> {
        self.presence.get().cloned()
    }

    /// 'up', 'down' or 'unknown' (not connected yet), and the bytes of publications waiting for Redis.
    pub fn status(&self) -> (&'static str, usize) {
        let state = match self.state.load(Ordering::Acquire) {
            UP => "up",
            DOWN => "down",
            _ => "unknown",
        };
        (state, self.queue.lock().unwrap().bytes)
    }

    /// Queues a publication for the other servers (local subscribers already have it).
    pub fn enqueue(&self, audience: Audience, opcode: u8, payload: Bytes) {
        self.queue.lock().unwrap().push(audience, opcode, payload, self.config.queue_limit);
        self.queued.notify_one();
    }

    /// Records the state; the application hears of each change ('up' or 'down', with the error behind a 'down').
    fn set_state(&self, server: &Server, state: u8, error: Option<String>) {
        if self.state.swap(state, Ordering::AcqRel) == state {
            return;
        }
        if state == UP {
            *self.last_error.lock().unwrap() = None;
        }
        self.emit(server, if state == UP { "up" } else { "down" }, error);
    }

    /// An error that leaves the state as it is: reported once, not at every retry, until the next 'up'.
    fn error(&self, server: &Server, message: String) {
        let mut last = self.last_error.lock().unwrap();
        if last.as_ref() == Some(&message) {
            return;
        }
        *last = Some(message.clone());
        drop(last);
        self.emit(server, "error", Some(message));
    }

    fn emit(&self, server: &Server, state: &'static str, error: Option<String>) {
        if !server.is_closed() {
            server.sink.deliver_one(Event::Backplane { state, error });
        }
    }

    /// A failed command: connection trouble makes the backplane 'down'; anything else is an 'error'.
    fn failed(&self, server: &Server, e: &RedisError) {
        let message = format!("backplane: {e}");
        if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
            self.set_state(server, DOWN, Some(message));
        } else {
            self.error(server, message);
        }
    }

    /// Sends queued publications in order, many per round trip, until the server stops. A batch leaves the
    /// queue when the writer takes it and is retried until Redis confirms it: drops for space only ever hit
    /// publications not yet taken, so the count reported is exact.
    async fn write(&self, server: &Server, mut redis: ConnectionManager) {
        let mut retry = MIN_RETRY;
        let mut batch = Vec::new();
        loop {
            let notified = self.queued.notified();
            let dropped = {
                let mut q = self.queue.lock().unwrap();
                if batch.is_empty() {
                    batch = q.take_batch();
                }
                std::mem::take(&mut q.dropped)
            };
            if dropped > 0 {
                stats::add(&server.stats.backplane_dropped, dropped);
                // Every drop is reported (not deduplicated like other errors): the counts add up to what was lost.
                self.emit(server, "error", Some(format!("backplane: Redis unreachable or behind and the queue full, {dropped} oldest publications dropped")));
            }
            if batch.is_empty() {
                notified.await;
                continue;
            }
            let mut pipe = redis::pipe();
            for entry in &batch {
                pipe.add_command(self.xadd(entry)).ignore();
            }
            match pipe.query_async::<()>(&mut redis).await {
                Ok(()) => {
                    retry = MIN_RETRY;
                    batch.clear();
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
                    .query_async::<Value>(&mut redis).await
                    .map(|reply| {
                        let entries = stream_entries(reply);
                        if let Some((last, _)) = entries.last() {
                            last_id = Some(last.clone());
                        }
                        self.deliver(server, entries, &mut seen);
                    }),
            };
            match result {
                Ok(()) => {
                    retry = MIN_RETRY;
                    self.set_state(server, UP, None);
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
    fn deliver(&self, server: &Server, entries: Vec<(String, Vec<Value>)>, seen: &mut Seen) {
        let mut touched = HashMap::new();
        for incoming in entries.into_iter().filter_map(|(_, fields)| decode(fields)) {
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

/// The entries of an XREAD reply as (id, fields), read straight from the reply (no map per entry, no copies).
fn stream_entries(reply: Value) -> Vec<(String, Vec<Value>)> {
    let streams: Vec<Value> = match reply {
        // [[key, entries], ...]; Nil when nothing came within the block time.
        Value::Array(streams) => streams.into_iter().filter_map(|s| into_array(s).filter(|kv| kv.len() == 2)?.pop()).collect(),
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|entries| into_array(entries).unwrap_or_default())
        .filter_map(|entry| {
            // [id, [field, value, field, value, ...]]
            let mut pair = into_array(entry).filter(|p| p.len() == 2)?;
            let fields = into_array(pair.pop()?)?;
            let id = String::from_utf8(into_bytes(pair.pop()?)?).ok()?;
            Some((id, fields))
        })
        .collect()
}

fn into_array(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// How many publications an XREAD reply holds, read as the reader reads them (entries of any other shape are
/// skipped): the fuzz target's way in, with replies parsed from arbitrary bytes.
#[cfg(feature = "fuzzing")]
pub fn count_publications(reply: Value) -> usize {
    stream_entries(reply).into_iter().filter_map(|(_, fields)| decode(fields)).count()
}

/// Reads the fields of an entry written by `Backplane::xadd`; None for anything else found in the stream.
fn decode(fields: Vec<Value>) -> Option<Incoming> {
    let (mut origin, mut seq, mut topic, mut binary, mut payload) = (None, None, None, false, None);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let value = into_bytes(value)?;
        match &into_bytes(name)?[..] {
            b"o" => origin = Some(String::from_utf8(value).ok()?),
            b"s" => seq = Some(std::str::from_utf8(&value).ok()?.parse().ok()?),
            b"t" => topic = Some(Arc::<str>::from(std::str::from_utf8(&value).ok()?)),
            b"b" => binary = true,
            b"d" => payload = Some(value),
            _ => {}
        }
    }
    let payload = payload?;
    if !binary && simdutf8::basic::from_utf8(&payload).is_err() {
        return None;
    }
    Some(Incoming {
        origin: origin?,
        seq: seq?,
        audience: topic.map_or(Audience::Everyone, Audience::Topic),
        opcode: if binary { OP_BINARY } else { OP_TEXT },
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> Vec<Value> {
        fields.iter().flat_map(|(k, v)| [Value::BulkString(k.as_bytes().to_vec()), Value::BulkString(v.to_vec())]).collect()
    }

    #[test]
    fn decodes_what_xadd_writes() {
        let topic = entry(&[("o", b"abc"), ("s", b"7"), ("t", b"room:42"), ("d", b"hello")]);
        assert_eq!(
            decode(topic),
            Some(Incoming { origin: "abc".into(), seq: 7, audience: Audience::Topic(Arc::from("room:42")), opcode: OP_TEXT, payload: b"hello".to_vec() })
        );
        let everyone = entry(&[("o", b"abc"), ("s", b"8"), ("b", b"1"), ("d", &[0xff, 0])]);
        assert_eq!(decode(everyone).map(|i| (i.audience, i.opcode)), Some((Audience::Everyone, OP_BINARY)));
    }

    #[test]
    fn reads_the_entries_of_an_xread_reply() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |id: &str, fields: Vec<Value>| Value::Array(vec![bulk(id), Value::Array(fields)]);
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("ferrows:x"),
            Value::Array(vec![entry("1-0", vec![bulk("o"), bulk("a")]), entry("2-0", vec![]), Value::Nil]),
        ])]);
        let entries = stream_entries(reply);
        assert_eq!(entries.iter().map(|(id, f)| (id.as_str(), f.len())).collect::<Vec<_>>(), [("1-0", 2), ("2-0", 0)]);
        assert!(stream_entries(Value::Nil).is_empty(), "nothing within the block time");
    }

    #[test]
    fn refuses_foreign_or_broken_entries() {
        assert_eq!(decode(entry(&[("d", b"x")])), None, "no origin");
        assert_eq!(decode(entry(&[("o", b"a"), ("s", b"x1"), ("d", b"x")])), None, "bad sequence number");
        assert_eq!(decode(entry(&[("o", b"a"), ("s", b"1"), ("d", &[0xc3, 0x28])])), None, "text that is not UTF-8");
        assert_eq!(decode(entry(&[("o", b"a"), ("s", b"1"), ("t", &[0xff]), ("d", b"x")])), None, "topic that is not UTF-8");
    }

    #[test]
    fn a_batch_is_bounded_by_count_and_bytes() {
        let mut q = Queue::default();
        let mut push = |len: usize| q.push(Audience::Everyone, OP_TEXT, Bytes::from(vec![b'x'; len]), usize::MAX);
        (0..BATCH + 1).for_each(|_| push(1));
        push(BATCH_BYTES);
        push(1);
        let seqs = |batch: Vec<Outgoing>| batch.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(q.take_batch()), (0..BATCH as u64).collect::<Vec<_>>());
        let big = BATCH as u64 + 1;
        assert_eq!(seqs(q.take_batch()), [big - 1, big], "bytes: the batch ends with the entry that passed the bound");
        assert_eq!(seqs(q.take_batch()), [big + 1]);
        assert!(q.take_batch().is_empty());
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn over_the_limit_the_oldest_are_dropped_never_the_newest() {
        let mut q = Queue::default();
        for _ in 0..5 {
            q.push(Audience::Everyone, OP_TEXT, Bytes::from_static(b"0123456789"), 3 * (10 + ENTRY_OVERHEAD));
        }
        assert_eq!((q.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), q.dropped), (vec![2, 3, 4], 2));
        q.push(Audience::Everyone, OP_TEXT, Bytes::from(vec![0; 1000]), 100);
        assert_eq!((q.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), q.dropped), (vec![5], 5), "alone over the limit, the newest stays");
    }

    #[test]
    fn a_resent_entry_is_delivered_once() {
        let mut seen = Seen::default();
        let order = [("a", 1), ("a", 2), ("b", 1), ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)];
        let delivered: Vec<_> = order.iter().filter(|(o, s)| seen.first_time(o, *s)).collect();
        assert_eq!(delivered, [&("a", 1), &("a", 2), &("b", 1), &("a", 3), &("b", 2)]);
    }
}
