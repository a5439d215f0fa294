//! Presence across the processes on one backplane: each process keeps its topic counts in a Redis hash of its
//! own (`<stream key>:presence:<origin>`), rewritten every `REFRESH` with a TTL of `TTL`, so a process that dies
//! stops counting within the TTL. A count sums the other processes' hashes and this process's live count.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::backplane::Backplane;
use super::server::Server;

const REFRESH: Duration = Duration::from_secs(2);
const TTL: Duration = Duration::from_secs(6);

fn own_key(backplane: &Backplane) -> String {
    format!("{}:presence:{}", backplane.key(), backplane.origin())
}

/// Rewrites this process's hash every `REFRESH` until the server stops (errors wait for the next round: the
/// backplane's other loops report Redis's state).
pub async fn publish_counts(server: Arc<Server>, backplane: Arc<Backplane>, mut redis: ConnectionManager) {
    let key = own_key(&backplane);
    loop {
        let counts = server.topics.counts();
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !counts.is_empty() {
            pipe.hset_multiple(&key, &counts.iter().map(|(t, n)| (t.as_str(), *n)).collect::<Vec<_>>()).ignore();
            pipe.pexpire(&key, TTL.as_millis() as i64).ignore();
        }
        let _ = pipe.query_async::<()>(&mut redis).await;
        tokio::time::sleep(REFRESH).await;
    }
}

/// Subscribers of `topic` in every process on the backplane.
pub async fn count(server: &Server, backplane: &Backplane, mut redis: ConnectionManager, topic: &str) -> Result<u64, String> {
    let own = own_key(backplane);
    let pattern = format!("{}:presence:*", backplane.key());
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500)
            .query_async(&mut redis).await.map_err(|e| e.to_string())?;
        keys.extend(batch.into_iter().filter(|k| *k != own));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut total = server.topics.count(topic) as u64;
    if !keys.is_empty() {
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hget(key, topic);
        }
        let counts: Vec<Option<u64>> = pipe.query_async(&mut redis).await.map_err(|e| e.to_string())?;
        total += counts.into_iter().flatten().sum::<u64>();
    }
    Ok(total)
}
