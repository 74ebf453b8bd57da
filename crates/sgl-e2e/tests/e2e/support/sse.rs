//! A minimal server-sent events reader over a streaming `reqwest` response, and the same
//! parsing for a whole SSE body (what the tampering proxy rewrites).

use std::collections::VecDeque;

/// One SSE event: its `event:` name, if any, and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Parses complete events out of `buffer` (bytes, so that a character split between two
/// reads survives), leaving an unfinished one in it. The grid ends lines with `\n`.
fn drain_events(buffer: &mut Vec<u8>) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.windows(2).position(|pair| pair == b"\n\n") {
        let block: Vec<u8> = buffer.drain(..end + 2).collect();
        if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
            events.push(event);
        }
    }
    events
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = Some(name.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (!data.is_empty() || event.is_some()).then(|| SseEvent { event, data: data.join("\n") })
}

/// Every event of a whole SSE body.
pub(crate) fn parse_all(body: &str) -> Vec<SseEvent> {
    let mut buffer = body.replace("\r\n", "\n").into_bytes();
    let mut events = drain_events(&mut buffer);
    events.extend(parse_block(&String::from_utf8_lossy(&buffer)));
    events
}

/// Events as they arrive.
#[derive(Debug)]
pub(crate) struct SseReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
    queue: VecDeque<SseEvent>,
    ended: bool,
}

impl SseReader {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self { response, buffer: Vec::new(), queue: VecDeque::new(), ended: false }
    }

    /// The next event, `None` at the end of the body; a broken connection is an error.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.response.chunk().await? {
                Some(bytes) => {
                    self.buffer.extend_from_slice(&bytes);
                    self.queue.extend(drain_events(&mut self.buffer));
                }
                None => {
                    self.ended = true;
                    self.queue.extend(parse_block(&String::from_utf8_lossy(&std::mem::take(&mut self.buffer))));
                }
            }
        }
    }
}
