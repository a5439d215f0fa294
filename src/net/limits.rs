//! Limits a server enforces before any JavaScript runs: how many connections it holds (in all and per client
//! address), how fast one connection may send, and how long one may stay quiet or open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A server's limits; every field is off by default.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_messages_per_second: Option<u32>,
    pub max_bytes_per_second: Option<u64>,
    /// Over a rate limit, stop reading until the budget allows (true) instead of closing with 1008.
    pub pause_over_rate: bool,
    /// Nothing received for this long: close with 1001.
    pub idle_timeout: Option<Duration>,
    /// Ping a quiet connection before `idle_timeout` closes it (so that a live peer's pong keeps it open).
    pub ping_when_idle: bool,
    /// Close with 1001 this long after the connection opened (load balancers then rebalance).
    pub max_lifetime: Option<Duration>,
}

/// Why an upgrade was refused by a connection limit.
#[derive(Debug, PartialEq, Eq)]
pub enum OverLimit {
    Total,
    PerAddress,
}

/// The connections a server holds, counted in all and per client address.
#[derive(Default)]
pub struct Admissions {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection: dropping it gives its place back, unless a connection keeps it (`keep`).
pub struct Admission<'a> {
    admissions: &'a Admissions,
    ip: Option<IpAddr>,
}

/// How a connection holds its admission for its whole life: a byte, not an `Admission` (see `Admission::keep`).
pub const NOT_ADMITTED: u8 = 0;
/// Counted in all only.
pub const ADMITTED: u8 = 1;
/// Counted in all and for its address.
pub const ADMITTED_PER_ADDRESS: u8 = 2;

impl Admission<'_> {
    /// The admission as the byte its connection keeps; `Admissions::give_back_kept` ends it.
    pub fn keep(self) -> u8 {
        let kept = if self.ip.is_some() { ADMITTED_PER_ADDRESS } else { ADMITTED };
        // Nothing to free: the admission is a reference and an address, and its place is now the byte's.
        std::mem::forget(self);
        kept
    }
}

impl Admissions {
    /// Admits a connection from `ip`, or says which limit it is over. Counted per address only when that
    /// limit is set (no map is kept otherwise).
    pub fn admit(&self, ip: IpAddr, limits: &Limits) -> Result<Admission<'_>, OverLimit> {
        let total = self.total.fetch_add(1, Ordering::AcqRel) + 1;
        let mut admission = Admission { admissions: self, ip: None };
        if limits.max_connections.is_some_and(|max| total > max) {
            return Err(OverLimit::Total);
        }
        let Some(max) = limits.max_connections_per_ip else { return Ok(admission) };
        let mut per_ip = self.per_ip.lock().unwrap();
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= max {
            return Err(OverLimit::PerAddress);
        }
        *count += 1;
        admission.ip = Some(ip);
        Ok(admission)
    }

    /// Connections held now (any state).
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Ends an admission kept as a byte (`Admission::keep`) by a connection from `ip`.
    pub fn give_back_kept(&self, kept: u8, ip: IpAddr) {
        match kept {
            ADMITTED => self.give_back(None),
            ADMITTED_PER_ADDRESS => self.give_back(Some(ip)),
            _ => {}
        }
    }

    fn give_back(&self, ip: Option<IpAddr>) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = ip {
            let mut per_ip = self.per_ip.lock().unwrap();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.admissions.give_back(self.ip);
    }
}

/// A token bucket: `rate` per second, holding at most one second's worth.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        Bucket { rate, tokens: rate, at: now }
    }

    /// Takes `n` tokens (the balance may go negative); how long until it is back to zero, if it is below.
    fn take(&mut self, n: f64, now: Instant) -> Option<Duration> {
        self.tokens = (self.tokens + self.rate * now.saturating_duration_since(self.at).as_secs_f64()).min(self.rate);
        self.at = now;
        self.tokens -= n;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// The rate limits of one connection, checked in its read path.
#[derive(Debug)]
pub struct Budget {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Budget {
    /// None when the server sets no rate limit (nothing is checked then).
    pub fn new(limits: &Limits) -> Option<Self> {
        let now = Instant::now();
        let messages = limits.max_messages_per_second.map(|r| Bucket::new(r as f64, now));
        let bytes = limits.max_bytes_per_second.map(|r| Bucket::new(r as f64, now));
        (messages.is_some() || bytes.is_some()).then_some(Budget { messages, bytes })
    }

    /// Spends what a read delivered; how long the connection must wait before the budget allows more.
    pub fn spend(&mut self, messages: u64, bytes: u64) -> Option<Duration> {
        let now = Instant::now();
        let waits = [
            self.messages.as_mut().and_then(|b| b.take(messages as f64, now)),
            self.bytes.as_mut().and_then(|b| b.take(bytes as f64, now)),
        ];
        waits.into_iter().flatten().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_count_in_all_and_per_address_and_give_places_back() {
        let admissions = Admissions::default();
        let limits = Limits { max_connections: Some(3), max_connections_per_ip: Some(2), ..Default::default() };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admissions.admit(a, &limits).unwrap();
        let _second = admissions.admit(a, &limits).unwrap();
        assert_eq!(admissions.admit(a, &limits).err(), Some(OverLimit::PerAddress));
        let _third = admissions.admit(b, &limits).unwrap();
        assert_eq!(admissions.admit(b, &limits).err(), Some(OverLimit::Total));
        assert_eq!(admissions.open(), 3);
        drop(first);
        assert!(admissions.admit(a, &limits).is_ok());
        // Kept as a connection keeps it, the place is held until given back.
        let kept = admissions.admit(a, &limits).unwrap().keep();
        assert_eq!(kept, ADMITTED_PER_ADDRESS);
        assert_eq!(admissions.admit(b, &limits).err(), Some(OverLimit::Total));
        assert_eq!(admissions.open(), 3);
        admissions.give_back_kept(kept, a);
        assert_eq!(admissions.open(), 2);
        assert!(admissions.admit(a, &limits).is_ok());
    }

    #[test]
    fn a_budget_allows_a_second_of_burst_then_asks_to_wait() {
        let limits = Limits { max_messages_per_second: Some(10), max_bytes_per_second: Some(1000), ..Default::default() };
        let mut budget = Budget::new(&limits).unwrap();
        assert_eq!(budget.spend(10, 100), None);
        let wait = budget.spend(1, 10).unwrap();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(150), "{wait:?}");
        let mut bytes = Budget::new(&Limits { max_bytes_per_second: Some(1000), ..Default::default() }).unwrap();
        assert!(bytes.spend(1, 3000).unwrap() >= Duration::from_millis(1900));
        assert!(Budget::new(&Limits::default()).is_none());
    }
}
