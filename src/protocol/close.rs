//! Close frames (RFC 6455 §5.5.1, §7.4): which codes a peer may send, and decoding the payload.

use super::utf8::Utf8Validator;
use super::ProtocolError;

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const NO_STATUS: u16 = 1005;
pub const ABNORMAL: u16 = 1006;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const POLICY_VIOLATION: u16 = 1008;
pub const MESSAGE_TOO_BIG: u16 = 1009;
pub const INTERNAL_ERROR: u16 = 1011;
pub const TRY_AGAIN_LATER: u16 = 1013;

/// The longest close reason: a control frame's payload less the two bytes of the code.
pub const MAX_REASON: usize = super::frame::MAX_CONTROL_PAYLOAD - 2;

/// Codes that may appear on the wire; 1004-1006 and 1015 are reserved for local use.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Decodes a received close payload into (code, reason); an empty payload means 1005.
pub fn decode(payload: &[u8]) -> Result<(u16, String), ProtocolError> {
    match payload.len() {
        0 => Ok((NO_STATUS, String::new())),
        1 => Err(ProtocolError::BadClosePayload),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_code(code) {
                return Err(ProtocolError::BadCloseCode(code));
            }
            let reason = &payload[2..];
            let mut v = Utf8Validator::default();
            v.feed(reason).and_then(|_| v.finish()).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok((code, String::from_utf8_lossy(reason).into_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_valid_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
            assert!(!is_valid_code(bad), "{bad}");
        }
    }

    #[test]
    fn decodes_payloads() {
        assert_eq!(decode(&[]).unwrap(), (NO_STATUS, String::new()));
        assert_eq!(decode(&[0x03, 0xE8, b'o', b'k']).unwrap(), (1000, "ok".into()));
        assert_eq!(decode(&[0x03]).unwrap_err(), ProtocolError::BadClosePayload);
        assert_eq!(decode(&[0x03, 0xED]).unwrap_err(), ProtocolError::BadCloseCode(1005));
        assert_eq!(decode(&[0x03, 0xE8, 0xFF]).unwrap_err().close_code(), INVALID_PAYLOAD);
    }
}
