//! UTF-8 validation that runs as bytes arrive, so invalid text fails on the first bad byte, even mid-frame.

use simdutf8::compat::from_utf8;

#[derive(Default, Debug)]
pub struct Utf8Validator {
    /// The start of a code point split across chunks.
    pending: [u8; 4],
    pending_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// Validates the next chunk of a message.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let need = sequence_len(self.pending[0]);
            let take = (need - self.pending_len).min(data.len());
            let mut seq = [0u8; 4];
            seq[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            seq[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            let have = self.pending_len + take;
            match from_utf8(&seq[..have]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.pending = seq;
                    self.pending_len = have;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            data = &data[take..];
        }
        match from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // A valid but unfinished code point at the end: keep it for the next chunk.
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends a message: it is valid only if no code point was left unfinished.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], piece: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        for chunk in bytes.chunks(piece.max(1)) {
            v.feed(chunk)?;
        }
        v.finish()
    }

    #[test]
    fn accepts_valid_text_split_anywhere() {
        let text = "κόσμε 🎉 hello \u{10FFFF} end".as_bytes();
        for piece in 1..text.len() {
            assert_eq!(validate_in_pieces(text, piece), Ok(()), "piece {piece}");
        }
    }

    #[test]
    fn fails_fast_on_bad_byte() {
        let mut v = Utf8Validator::default();
        v.feed("κόσμε".as_bytes()).unwrap();
        assert_eq!(v.feed(&[0xED, 0xA0]), Err(InvalidUtf8)); // a surrogate, caught before it completes
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8)); // above U+10FFFF
    }

    #[test]
    fn rejects_unfinished_code_point_at_end() {
        assert_eq!(validate_in_pieces(&[0x61, 0xE2, 0x82], 1), Err(InvalidUtf8));
        assert_eq!(validate_in_pieces(&[0xC0, 0x80], 1), Err(InvalidUtf8));
    }
}
