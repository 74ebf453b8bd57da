//! A small server-sent-events reader: bytes in, `(event, data)` pairs out. It frames on blank
//! lines, accepts CRLF, joins multi-line `data:`, and skips comments (keep-alives).

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` name, when given (`error` for an aborted sealed stream).
    pub(crate) event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub(crate) data: String,
}

/// Incremental parser: feed it bytes as they arrive, take complete events out.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

/// Largest event accepted; a sealed chunk is at most 1 MiB of base58 plus its fields.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// The stream is not SSE we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseError {
    /// An event grew beyond [`MAX_EVENT_BYTES`].
    TooLarge,
}

impl SseParser {
    /// Adds bytes and returns every event they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(event) = self.line(line) {
                events.push(event);
            }
        }
        let pending = self.buffer.len() + self.data.as_ref().map_or(0, String::len);
        if pending > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        Ok(events)
    }

    /// Ends the input: a last event without its blank line still counts.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = String::from_utf8_lossy(&rest).trim_end_matches(['\n', '\r']).to_owned();
        let from_rest = if rest.is_empty() { None } else { self.line(&rest) };
        from_rest.or_else(|| self.dispatch())
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        self.data.take().map(|data| SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    //! Framing: CRLF, split reads, comments, multi-line data, named events.

    use super::*;

    #[test]
    fn events_survive_split_reads_crlf_and_comments() {
        let mut parser = SseParser::default();
        let mut events = parser.feed(b": keep-alive\r\n\r\ndata: {\"seq\":0}\r\n\r\nda").unwrap();
        events.extend(parser.feed(b"ta: one\ndata: two\n\nevent: error\ndata: {\"error\":\"x\"}\n").unwrap());
        events.extend(parser.finish());
        assert_eq!(
            events,
            vec![
                SseEvent { event: None, data: "{\"seq\":0}".into() },
                SseEvent { event: None, data: "one\ntwo".into() },
                SseEvent { event: Some("error".into()), data: "{\"error\":\"x\"}".into() },
            ]
        );
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut parser = SseParser::default();
        let huge = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(parser.feed(&huge), Err(SseError::TooLarge));
    }
}
