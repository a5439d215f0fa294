//! Topic membership of a server's connections (uWebSockets.js-style pub/sub): topic → subscribers, and each
//! connection's own topics so that it leaves them all when it closes. A publish visits only the subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::connection::{Conn, CLOSED};

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

#[derive(Default)]
pub struct Topics {
    inner: Mutex<Membership>,
}

#[derive(Default)]
struct Membership {
    subscribers: HashMap<Arc<str>, HashMap<u64, Weak<Conn>>>,
    /// Connection id → its topics, in the order it subscribed.
    joined: HashMap<u64, Vec<Arc<str>>>,
}

impl Topics {
    /// Adds `conn` to `topic`; false if it was already there or is closed.
    pub fn subscribe(&self, conn: &Arc<Conn>, topic: &str) -> bool {
        let mut m = self.inner.lock().unwrap();
        // Checked under the lock that `leave_all` takes after the state became CLOSED: no entry outlives it.
        if conn.state() == CLOSED {
            return false;
        }
        let joined = m.joined.entry(conn.id).or_default();
        if joined.iter().any(|t| &**t == topic) {
            return false;
        }
        let name: Arc<str> = m.subscribers.get_key_value(topic).map_or_else(|| Arc::from(topic), |(k, _)| k.clone());
        m.joined.get_mut(&conn.id).expect("entry made above").push(name.clone());
        m.subscribers.entry(name).or_default().insert(conn.id, Arc::downgrade(conn));
        true
    }

    /// Removes `conn` from `topic`; false if it was not subscribed.
    pub fn unsubscribe(&self, conn: &Conn, topic: &str) -> bool {
        let mut m = self.inner.lock().unwrap();
        let Some(joined) = m.joined.get_mut(&conn.id) else { return false };
        let Some(at) = joined.iter().position(|t| &**t == topic) else { return false };
        joined.remove(at);
        if joined.is_empty() {
            m.joined.remove(&conn.id);
        }
        m.leave(conn.id, topic);
        true
    }

    /// Removes `conn` from every topic (it closed).
    pub fn leave_all(&self, conn: &Conn) {
        let mut m = self.inner.lock().unwrap();
        for topic in m.joined.remove(&conn.id).unwrap_or_default() {
            m.leave(conn.id, &topic);
        }
    }

    /// The topics `conn` is subscribed to.
    pub fn of(&self, conn: &Conn) -> Vec<String> {
        let m = self.inner.lock().unwrap();
        m.joined.get(&conn.id).map_or_else(Vec::new, |topics| topics.iter().map(|t| t.to_string()).collect())
    }

    /// How many connections are subscribed to `topic`.
    pub fn count(&self, topic: &str) -> usize {
        self.inner.lock().unwrap().subscribers.get(topic).map_or(0, HashMap::len)
    }

    /// The topics with at least one subscriber, and how many each has.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let m = self.inner.lock().unwrap();
        let mut counts: Vec<(String, usize)> = m.subscribers.iter().map(|(t, subs)| (t.to_string(), subs.len())).collect();
        counts.sort();
        counts
    }

    /// The live subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<Arc<Conn>> {
        let m = self.inner.lock().unwrap();
        m.subscribers.get(topic).map_or_else(Vec::new, |subs| subs.values().filter_map(Weak::upgrade).collect())
    }
}

impl Membership {
    fn leave(&mut self, id: u64, topic: &str) {
        if let Some(subs) = self.subscribers.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                self.subscribers.remove(topic);
            }
        }
    }
}
