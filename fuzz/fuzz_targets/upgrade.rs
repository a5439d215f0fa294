//! The upgrade request: HTTP parsing, the RFC 6455 checks and permessage-deflate negotiation of its offers.
#![no_main]
use ferrows::protocol::deflate::{negotiate, DeflateConfig};
use ferrows::protocol::handshake::{parse_request, switching_protocols, validate_upgrade};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((request, used))) = parse_request(data, 16 * 1024) else { return };
    assert!(used <= data.len());
    if let Ok(upgrade) = validate_upgrade(&request, 426) {
        let offers: Vec<&str> = request.headers.iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|(_, value)| value.as_str())
            .collect();
        let config = DeflateConfig { compress: true, client_max_window_bits: Some(10), ..Default::default() };
        let answer = negotiate(&offers, &config).ok().flatten().map(|(_, answer)| answer);
        let response = switching_protocols(upgrade.key.as_str(), None, answer.as_deref(), &[]);
        assert!(response.starts_with(b"HTTP/1.1 101 "));
    }
});
