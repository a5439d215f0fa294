//! What a server can tell about itself, in one native call each: `stats()` (its counters) and the local
//! presence of topics (`subscribers`, `topicList`).

use napi::bindgen_prelude::*;
use napi::Env;

use super::server::NativeServer;
use super::values;
use std::time::Duration;

use crate::net::drain::drain;
use crate::net::presence;
use crate::net::runtime::runtime;
use crate::net::stats::get;
use crate::protocol::close;

#[napi(object)]
pub struct CloseCodeCount {
    pub code: u32,
    pub count: f64,
}

#[napi(object)]
pub struct RefusedCounts {
    /// Bad upgrade requests (the protocol's checks).
    pub invalid: f64,
    /// Over maxConnections or maxConnectionsPerIp.
    pub limit: f64,
    /// Refused by the application (reject, verifyClient and the like).
    pub application: f64,
    /// While the server was closing or draining.
    pub closing: f64,
}

#[napi(object)]
pub struct BackplaneStats {
    /// 'up', 'down' or 'unknown'.
    pub state: String,
    /// Bytes of publications waiting for Redis.
    pub queued_bytes: f64,
    /// Publications dropped because that queue was full.
    pub dropped: f64,
}

#[napi(object)]
pub struct ServerStats {
    /// Connections held now (pending upgrades included).
    pub connections: f64,
    /// Connections accepted since the server started.
    pub accepted: f64,
    pub refused: RefusedCounts,
    pub messages_in: f64,
    pub bytes_in: f64,
    pub messages_out: f64,
    pub bytes_out: f64,
    pub frames_compressed: f64,
    /// Bytes compression saved.
    pub bytes_saved: f64,
    /// Times a connection was paused because its queue was over maxBackpressure.
    pub backpressure_pauses: f64,
    /// Times a connection was paused by its rate limit.
    pub rate_limited: f64,
    /// Deliveries broadcasts and publications skipped (queue over broadcastLimit).
    pub skipped: f64,
    pub close_codes_sent: Vec<CloseCodeCount>,
    pub close_codes_received: Vec<CloseCodeCount>,
    pub backplane: Option<BackplaneStats>,
}

/// How the promise of `subscriberCount` gets its number (one type for both ways it is resolved).
type Resolve = Box<dyn FnOnce(Env) -> Result<f64> + Send>;

#[napi(object)]
pub struct TopicCount {
    pub topic: String,
    pub subscribers: u32,
}

fn counts(list: Vec<(u16, u64)>) -> Vec<CloseCodeCount> {
    list.into_iter().map(|(code, count)| CloseCodeCount { code: code as u32, count: count as f64 }).collect()
}

#[napi]
impl NativeServer {
    /// The server's counters, read at once.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> ServerStats {
        let server = &self.server;
        let s = &server.stats;
        let n = |c| get(c) as f64;
        let (sent, received) = s.close_codes();
        ServerStats {
            connections: server.admissions.open() as f64,
            accepted: n(&s.accepted),
            refused: RefusedCounts {
                invalid: n(&s.refused_invalid),
                limit: n(&s.refused_limit),
                application: n(&s.refused_by_application),
                closing: n(&s.refused_closing),
            },
            messages_in: n(&s.messages_in),
            bytes_in: n(&s.bytes_in),
            messages_out: n(&s.messages_out),
            bytes_out: n(&s.bytes_out),
            frames_compressed: n(&s.frames_compressed),
            bytes_saved: n(&s.bytes_saved),
            backpressure_pauses: n(&s.backpressure_pauses),
            rate_limited: n(&s.rate_limited),
            skipped: n(&s.skipped),
            close_codes_sent: counts(sent),
            close_codes_received: counts(received),
            backplane: server.backplane.as_ref().map(|b| {
                let (state, queued) = b.status();
                BackplaneStats { state: state.to_string(), queued_bytes: queued as f64, dropped: n(&s.backplane_dropped) }
            }),
        }
    }

    /// Stops accepting, closes every connection with `code` and `reason`, spread over `within` milliseconds,
    /// and sends a DRAINED event once all are gone (those left at `within` + closeTimeout are dropped). False
    /// when the server is closed already (no event follows).
    #[napi(catch_unwind)]
    pub fn drain(&self, code: u32, reason: String, within: f64) -> Result<bool> {
        let code = u16::try_from(code).ok().filter(|&c| close::is_valid_code(c)).ok_or_else(|| Error::new(Status::InvalidArg, format!("invalid close code {code}")))?;
        if reason.len() > close::MAX_REASON {
            return Err(Error::new(Status::InvalidArg, format!("The reason must not be greater than {} bytes", close::MAX_REASON)));
        }
        if self.server.is_closed() {
            return Ok(false);
        }
        drain(&self.server, code, reason.into_bytes(), Duration::from_millis(within.max(0.0) as u64));
        Ok(true)
    }

    /// How many of this process's connections are subscribed to `topic`.
    #[napi(catch_unwind)]
    pub fn subscribers(&self, topic: String) -> Result<u32> {
        Ok(self.server.topics.count(&values::topic_name(topic)?) as u32)
    }

    /// Subscribers of `topic` in every process on the backplane (without one: in this process). Resolves with a
    /// number; rejects when Redis cannot be asked.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn subscriber_count<'env>(&self, env: &'env Env, topic: String) -> Result<Object<'env>> {
        let topic = values::topic_name(topic)?;
        let (deferred, promise) = env.create_deferred::<f64, Resolve>()?;
        let server = self.server.clone();
        let Some((backplane, redis)) = server.backplane.clone().and_then(|b| b.presence_connection().map(|r| (b, r))) else {
            let local = server.topics.count(&topic) as f64;
            deferred.resolve(Box::new(move |_| Ok(local)));
            return Ok(promise);
        };
        let rt = runtime(None).map_err(Error::from_reason)?;
        rt.spawn(async move {
            match presence::count(&server, &backplane, redis, &topic).await {
                Ok(n) => deferred.resolve(Box::new(move |_| Ok(n as f64))),
                Err(e) => deferred.reject(Error::from_reason(format!("subscriberCount: {e}"))),
            }
        });
        Ok(promise)
    }

    /// The topics with subscribers in this process, with their counts.
    #[napi(catch_unwind)]
    pub fn topic_list(&self) -> Vec<TopicCount> {
        self.server.topics.counts().into_iter().map(|(topic, n)| TopicCount { topic, subscribers: n as u32 }).collect()
    }
}
