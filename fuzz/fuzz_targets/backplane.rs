//! What the backplane reader takes from Redis: an XREAD reply (parsed from RESP bytes by the redis crate) and
//! the entries in it, which another process, or anyone with access to the stream, may have written.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = redis::parse_redis_value(data) {
        let _ = ferrows::net::backplane::count_publications(reply);
    }
});
