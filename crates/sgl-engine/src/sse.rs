//! An incremental parser for the server-sent events an OpenAI-compatible server streams: feed it
//! bytes as they arrive, split anywhere (mid-line, mid-UTF-8 character, between `\r` and `\n`),
//! and it returns each complete `data:` payload and the `[DONE]` marker.
//!
//! Pure: no I/O, no JSON. Each `data:` line is one payload (OpenAI-compatible servers send one
//! line per event, so multi-line events are not joined). Comments (`:`), blank lines and other
//! fields (`event:`, `id:`, `retry:`) are skipped. Bytes that do not yet form a complete line
//! are buffered, up to a cap: a peer that sends more than the cap without a newline is an error,
//! not unbounded memory.

/// The seed node's cap on buffered, unprocessed stream bytes.
pub const MAX_BUFFERED_BYTES: usize = 2 * 1024 * 1024;

/// One parsed line worth acting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseEvent {
    /// The text after `data:` (one optional leading space removed).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// The stream cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// More than the cap arrived without completing a line.
    #[error("the event stream buffered more than {limit} bytes without a complete line")]
    Oversized {
        /// The cap in bytes.
        limit: usize,
    },
    /// A complete line is not UTF-8.
    #[error("the event stream sent a line that is not UTF-8")]
    NotUtf8,
    /// The stream ended before `[DONE]`.
    #[error("the event stream ended without [DONE] (truncated)")]
    Truncated,
}

/// Incremental parser state: the bytes of the current, incomplete line.
#[derive(Debug)]
pub struct SseParser {
    buffer: Vec<u8>,
    limit: usize,
    done: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(MAX_BUFFERED_BYTES)
    }
}

impl SseParser {
    /// A parser that fails once more than `limit` bytes wait for a newline.
    pub fn new(limit: usize) -> Self {
        Self { buffer: Vec::new(), limit, done: false }
    }

    /// Whether `[DONE]` has been seen; later lines are ignored.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Adds `bytes` and returns the events of every line they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        if self.done {
            return Ok(events);
        }
        // Only the new bytes can hold a newline the buffer has not seen.
        let mut start = 0;
        let mut scan_from = self.buffer.len();
        self.buffer.extend_from_slice(bytes);
        while let Some(offset) = self.buffer[scan_from..].iter().position(|&b| b == b'\n') {
            let end = scan_from + offset;
            if let Some(event) = parse_line(&self.buffer[start..end])? {
                let done = event == SseEvent::Done;
                events.push(event);
                if done {
                    self.done = true;
                    self.buffer.clear();
                    return Ok(events);
                }
            }
            start = end + 1;
            scan_from = start;
        }
        self.buffer.drain(..start);
        if self.buffer.len() > self.limit {
            return Err(SseError::Oversized { limit: self.limit });
        }
        Ok(events)
    }

    /// The stream has ended: fine after `[DONE]`, [`SseError::Truncated`] otherwise (never a
    /// forged final event).
    pub fn finish(&self) -> Result<(), SseError> {
        if self.done { Ok(()) } else { Err(SseError::Truncated) }
    }
}

/// One line without its `\n` (a trailing `\r` is dropped too).
fn parse_line(line: &[u8]) -> Result<Option<SseEvent>, SseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        // Blank lines end an event, `:` lines are comments, other fields do not matter here.
        return Ok(None);
    };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    let data = std::str::from_utf8(data).map_err(|_| SseError::NotUtf8)?;
    if data.trim() == "[DONE]" {
        return Ok(Some(SseEvent::Done));
    }
    Ok(Some(SseEvent::Data(data.to_owned())))
}

#[cfg(test)]
mod tests {
    //! Byte inputs split at awkward places.

    use super::*;

    fn data(text: &str) -> SseEvent {
        SseEvent::Data(text.to_owned())
    }

    /// Feeds `pieces` one after another and collects every event.
    fn feed(parser: &mut SseParser, pieces: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(parser.push(piece)?);
        }
        Ok(events)
    }

    #[test]
    fn whole_events_and_done() {
        let mut parser = SseParser::default();
        let events = feed(&mut parser, &[b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"]).unwrap();
        assert_eq!(events, vec![data("{\"a\":1}"), data("{\"b\":2}"), SseEvent::Done]);
        assert!(parser.is_done());
        assert_eq!(parser.finish(), Ok(()));
    }

    #[test]
    fn lines_split_mid_line_and_mid_prefix() {
        let mut parser = SseParser::default();
        let events = feed(&mut parser, &[b"da", b"ta: hel", b"lo\n", b"\nd", b"ata:x\n"]).unwrap();
        assert_eq!(events, vec![data("hello"), data("x")]);
        assert_eq!(parser.finish(), Err(SseError::Truncated));
    }

    #[test]
    fn every_split_point_of_a_multibyte_stream_gives_the_same_events() {
        let stream =
            "data: {\"c\":\"h\u{e9}llo \u{1f600} \u{4e16}\"}\r\n\r\n: keep-alive\r\ndata: [DONE]\r\n".as_bytes();
        let whole = feed(&mut SseParser::default(), &[stream]).unwrap();
        assert_eq!(whole, vec![data("{\"c\":\"h\u{e9}llo \u{1f600} \u{4e16}\"}"), SseEvent::Done]);
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let events = feed(&mut parser, &[&stream[..split], &stream[split..]]).unwrap();
            assert_eq!(events, whole, "split at {split}");
        }
        // One byte at a time, so every character and every `\r\n` is split.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed(&mut SseParser::default(), &bytes).unwrap(), whole);
    }

    #[test]
    fn comments_other_fields_and_blank_lines_are_skipped() {
        let mut parser = SseParser::default();
        let events = feed(&mut parser, &[b": ping\n\nevent: message\nid: 7\nretry: 10\ndata:no-space\n\n"]).unwrap();
        assert_eq!(events, vec![data("no-space")]);
    }

    #[test]
    fn lines_after_done_are_ignored() {
        let mut parser = SseParser::default();
        let events = feed(&mut parser, &[b"data: [DONE]\ndata: late\n", b"data: later\n"]).unwrap();
        assert_eq!(events, vec![SseEvent::Done]);
    }

    #[test]
    fn a_missing_done_is_truncation() {
        let mut parser = SseParser::default();
        assert_eq!(feed(&mut parser, &[b"data: {}\n\ndata: [DO"]).unwrap(), vec![data("{}")]);
        assert_eq!(parser.finish(), Err(SseError::Truncated));
    }

    #[test]
    fn an_oversized_incomplete_line_fails_but_many_complete_lines_do_not() {
        let mut parser = SseParser::new(16);
        assert!(parser.push(b"data: 0123456789").unwrap().is_empty());
        assert_eq!(parser.push(b"abcdef"), Err(SseError::Oversized { limit: 16 }));
        // Complete lines are consumed, so a large read of short lines stays under the cap.
        let mut parser = SseParser::new(16);
        let many = "data: x\n".repeat(100);
        assert_eq!(parser.push(many.as_bytes()).unwrap().len(), 100);
    }

    #[test]
    fn invalid_utf8_in_a_complete_line_fails() {
        let mut parser = SseParser::default();
        assert_eq!(parser.push(b"data: \xff\xfe\n"), Err(SseError::NotUtf8));
    }
}
