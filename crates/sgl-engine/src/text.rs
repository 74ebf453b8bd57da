//! Turning token pieces into text a caller may see: whole UTF-8 characters only (a piece can
//! end mid-character), and nothing that could still turn out to be the start of a stop string.

/// Accumulates token bytes and releases text.
#[derive(Debug, Default)]
pub struct TextAssembler {
    pending: Vec<u8>,
    held: String,
    stop: Vec<String>,
    stopped: bool,
}

impl TextAssembler {
    /// An assembler that ends the text before the first of `stop`.
    pub fn new(stop: Vec<String>) -> Self {
        Self { stop, ..Self::default() }
    }

    /// Whether a stop string has been seen.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Adds a token's bytes and returns the text that is now safe to release.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        if self.stopped {
            return String::new();
        }
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(text) => text.len(),
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            // Invalid bytes (not just an unfinished character) are replaced, not held forever.
            Err(_) => {
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                self.held.push_str(&text);
                return self.release();
            }
        };
        let complete: Vec<u8> = self.pending.drain(..valid).collect();
        self.held.push_str(std::str::from_utf8(&complete).unwrap_or_default());
        self.release()
    }

    /// Releases everything still held (at the end of generation).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let mut rest = std::mem::take(&mut self.held);
        rest.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.pending)));
        rest
    }

    fn release(&mut self) -> String {
        if let Some(at) = self.stop.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.stopped = true;
            let out = self.held[..at].to_owned();
            self.held.clear();
            return out;
        }
        // Hold back the longest tail that is a prefix of some stop string.
        let keep = self
            .stop
            .iter()
            .flat_map(|stop| (1..stop.len()).rev().filter(move |n| stop.is_char_boundary(*n)).map(move |n| &stop[..n]))
            .filter(|prefix| self.held.ends_with(prefix))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_owned();
        self.held.drain(..cut);
        out
    }
}

#[cfg(test)]
mod tests {
    //! Characters split across tokens, stop strings split across tokens.

    use super::*;

    fn run(stop: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut assembler = TextAssembler::new(stop.iter().map(|s| (*s).to_owned()).collect());
        let mut out = String::new();
        for piece in pieces {
            out.push_str(&assembler.push(piece));
        }
        out.push_str(&assembler.finish());
        (out, assembler.stopped())
    }

    #[test]
    fn characters_split_across_pieces_come_out_whole() {
        let euro = "€".as_bytes();
        let mut assembler = TextAssembler::new(Vec::new());
        assert_eq!(assembler.push(&euro[..1]), "");
        assert_eq!(assembler.push(&euro[1..]), "€");
        assert_eq!(run(&[], &[b"a\xff", b"b"]).0, "a\u{fffd}b");
    }

    #[test]
    fn stop_strings_end_the_text_even_across_pieces() {
        assert_eq!(run(&["\n\n"], &[b"Hello", b"\n", b"\nmore"]), ("Hello".to_owned(), true));
        assert_eq!(run(&["END"], &[b"abcE", b"N", b"D!"]), ("abc".to_owned(), true));
        // A partial match that does not complete is released in the end.
        assert_eq!(run(&["END"], &[b"abcE", b"N"]), ("abcEN".to_owned(), false));
        assert_eq!(run(&["x", "yz"], &[b"ayzbx"]), ("a".to_owned(), true));
    }
}
