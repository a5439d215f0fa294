//! Broadcast mode: `conns` clients connect (spread over the servers given); the first also publishes. The server is expected to send every
//! message it receives to all clients (its broadcast). Every client checks that it gets every message, once, in
//! order, byte for byte. The publisher keeps `inflight` messages outstanding: it sends message n only once every
//! client has received message n - inflight. Reports deliveries (messages received by a client) per second.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::{handshake, make_pattern, open, parse_frame, payload_of, write_frame, Args, Stats};

struct Shared {
    /// Per ring slot: how many clients received the message currently in that slot.
    arrivals: Vec<AtomicUsize>,
    sent_at: Mutex<Vec<Instant>>,
    published: AtomicU64,
    all_arrived: Notify,
}

pub async fn run(args: Arc<Args>) -> Stats {
    let start = Instant::now();
    let mut streams = Vec::new();
    for id in 0..args.conns {
        let Ok(mut stream) = open(&args, id).await else { return Stats { errors: 1, ..Default::default() } };
        let Ok(rest) = handshake(&mut stream, &args).await else { return Stats { errors: 1, ..Default::default() } };
        streams.push((stream, rest));
    }
    let window = args.inflight.max(1);
    let shared = Arc::new(Shared {
        arrivals: (0..window).map(|_| AtomicUsize::new(0)).collect(),
        sent_at: Mutex::new(vec![start; window]),
        published: AtomicU64::new(0),
        all_arrived: Notify::new(),
    });
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let stop = measure_from + Duration::from_secs_f64(args.seconds);
    let mut readers = Vec::new();
    let mut publisher = None;
    for (i, (stream, rest)) in streams.into_iter().enumerate() {
        let (read, write) = tokio::io::split(stream);
        if i == 0 {
            publisher = Some(write);
        }
        readers.push(tokio::spawn(receive(args.clone(), shared.clone(), read, rest, measure_from, stop)));
    }
    let mut write = publisher.expect("at least one connection");
    let pattern = make_pattern(args.size);
    let mut frame = Vec::new();
    let mut seq = 0u64;
    while Instant::now() < stop {
        if seq >= window as u64 {
            let slot = &shared.arrivals[(seq % window as u64) as usize];
            loop {
                let notified = shared.all_arrived.notified();
                if slot.load(Ordering::Acquire) >= args.conns {
                    break;
                }
                if tokio::time::timeout(Duration::from_secs(10), notified).await.is_err() {
                    break;
                }
            }
            slot.store(0, Ordering::Release);
        }
        shared.sent_at.lock().unwrap()[(seq % window as u64) as usize] = Instant::now();
        frame.clear();
        write_frame(&mut frame, 1, payload_of(&pattern, seq, args.size), (seq as u32 ^ 0x5A5A_A5A5).to_ne_bytes(), false);
        shared.published.store(seq + 1, Ordering::Release);
        if write.write_all(&frame).await.is_err() || write.flush().await.is_err() {
            break;
        }
        seq += 1;
    }
    Stats::collect(readers).await
}

async fn receive<R: tokio::io::AsyncRead + Unpin>(
    args: Arc<Args>,
    shared: Arc<Shared>,
    mut read: R,
    mut rbuf: Vec<u8>,
    measure_from: Instant,
    stop: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let pattern = make_pattern(args.size);
    let window = args.inflight.max(1) as u64;
    let mut next = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut consumed = 0;
        let arrived = Instant::now();
        while let Some((first, range, total)) = parse_frame(&rbuf[consumed..]) {
            let body = &rbuf[consumed + range.start..consumed + range.end];
            if first & 0x0F != 1 || body != payload_of(&pattern, next, args.size) {
                stats.errors += 1;
            }
            let sent = shared.sent_at.lock().unwrap()[(next % window) as usize];
            if sent >= measure_from && arrived <= stop {
                stats.messages += 1;
                stats.latencies_us.push((arrived - sent).as_micros().min(u32::MAX as u128) as u32);
            }
            if shared.arrivals[(next % window) as usize].fetch_add(1, Ordering::AcqRel) + 1 >= args.conns {
                shared.all_arrived.notify_waiters();
            }
            next += 1;
            consumed += total;
        }
        rbuf.drain(..consumed);
        if Instant::now() >= stop && next >= shared.published.load(Ordering::Acquire) {
            return stats;
        }
        match tokio::time::timeout(Duration::from_secs(10), read.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => rbuf.extend_from_slice(&chunk[..n]),
            _ => {
                stats.errors += shared.published.load(Ordering::Acquire).saturating_sub(next);
                return stats;
            }
        }
    }
}
