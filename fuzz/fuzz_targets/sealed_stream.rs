//! The caller's stream opener fed chunks in any order, altered or forged.
//!
//! The input is text. Its first line lists the plaintexts of an honest stream, separated by
//! `|` (the last one is the final chunk). The node seals that stream twice to the caller, under
//! two ephemeral keys (streams `a` and `b`, as if it had answered twice). Every further line is
//! one chunk delivered to the caller's opener:
//! - `a3` or `b3`: chunk 3 of stream `a` or `b`, optionally followed by changes: `-` drops the
//!   ephemeral key, `+` adds the stream's own, `x` puts the other stream's, `f` flips `final`,
//!   `s7` claims sequence number 7, `c` alters the ciphertext's last character;
//! - anything else: a relayed SSE event as JSON (`{"seq":0,"ct":"…","eph":"…","final":false}`).
//!
//! Invariants, checked against a model of the opener: a chunk opens exactly when it is the
//! next unaltered chunk of the stream whose chunk 0 opened first (chunk 0 carrying its
//! ephemeral key, later chunks the same key or none), and it opens to its plaintext; after any
//! refusal every chunk is refused as `Poisoned`; a chunk after the final one is `AfterFinal`;
//! `finish` succeeds only after the final chunk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_fuzz::{node_secret, rng};
use sgl_protocol::api::caller::SealedStreamEvent;
use sgl_protocol::seal::{SealVersion, SealedChunk, StreamError, open_request, seal_request};

/// At most this many chunks per stream and deliveries per input, to keep runs short.
const MAX_CHUNKS: usize = 16;
const MAX_DELIVERIES: usize = 64;
/// The `nonce` field the caller sealed inside its request, which every chunk's AAD binds.
const REQUEST_NONCE: &str = "fuzz-nonce";

fuzz_target!(|data: &[u8]| {
    let Some(text) = sgl_fuzz::text(data) else { return };
    let mut lines = text.lines();
    let texts: Vec<&str> = lines.next().unwrap_or_default().split('|').take(MAX_CHUNKS).collect();

    let node = node_secret();
    let (enc, caller) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(1)).expect("seals");
    let reply = open_request(&node, &enc).expect("opens").reply;
    let streams: Vec<Vec<SealedChunk>> = [2, 3]
        .into_iter()
        .map(|seed| {
            let mut sealer = reply.stream(REQUEST_NONCE, &mut rng(seed)).expect("v2 streams");
            let last = texts.len() - 1;
            texts
                .iter()
                .enumerate()
                .map(|(idx, text)| sealer.seal_chunk(text.as_bytes(), idx == last, &mut rng(seed)).expect("seals"))
                .collect()
        })
        .collect();
    let ephemeral_keys: Vec<&str> =
        streams.iter().map(|s| s[0].ephemeral_public_key.as_deref().expect("chunk 0 carries the key")).collect();

    let mut opener = caller.stream(REQUEST_NONCE).expect("v2 streams");
    let mut model = Model::default();
    for line in lines.take(MAX_DELIVERIES) {
        let Some(chunk) = delivery(line, &streams, &ephemeral_keys) else { continue };
        let result = opener.open_chunk(chunk.seq, &chunk.ct, chunk.eph.as_deref(), chunk.is_final);
        model.check(&chunk, &streams, &texts, result.map(|text| text.to_vec()));
        assert_eq!(opener.chunks_opened(), model.n_opened as u64);
    }
    match opener.finish() {
        Ok(()) => assert!(model.finished && !model.failed),
        Err(StreamError::Poisoned) => assert!(model.failed),
        Err(StreamError::Truncated) => assert!(!model.finished && !model.failed),
        Err(other) => panic!("finish failed with {other:?}"),
    }
});

/// The chunk a line delivers.
fn delivery(line: &str, streams: &[Vec<SealedChunk>], ephemeral_keys: &[&str]) -> Option<SealedStreamEvent> {
    let stream_idx = match line.as_bytes().first()? {
        b'a' => 0,
        b'b' => 1,
        _ => return serde_json::from_str(line).ok(),
    };
    let rest = &line[1..];
    let n_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let chunk = streams[stream_idx].get(rest[..n_digits].parse::<usize>().ok()?)?;
    let mut event = SealedStreamEvent {
        seq: chunk.seq,
        ct: chunk.ciphertext.clone(),
        eph: chunk.ephemeral_public_key.clone(),
        is_final: chunk.is_final,
        sig: None,
        sig_version: None,
        job_id: None,
        node_id: None,
        usage: None,
        model_sha256: None,
        proof_of_execution: None,
    };
    let mut changes = rest[n_digits..].chars().peekable();
    while let Some(change) = changes.next() {
        match change {
            '-' => event.eph = None,
            '+' => event.eph = Some(ephemeral_keys[stream_idx].to_owned()),
            'x' => event.eph = Some(ephemeral_keys[1 - stream_idx].to_owned()),
            'f' => event.is_final = !event.is_final,
            's' => {
                let mut digits = String::new();
                while let Some(digit) = changes.next_if(char::is_ascii_digit) {
                    digits.push(digit);
                }
                event.seq = digits.parse().unwrap_or(u64::MAX);
            }
            'c' => {
                let last = event.ct.pop()?;
                event.ct.push(if last == '2' { '3' } else { '2' });
            }
            _ => {}
        }
    }
    Some(event)
}

/// What the opener must have done so far.
#[derive(Debug, Default)]
struct Model {
    /// The stream whose chunk 0 opened; only its chunks may follow.
    committed: Option<usize>,
    n_opened: usize,
    finished: bool,
    failed: bool,
}

impl Model {
    fn check(
        &mut self,
        chunk: &SealedStreamEvent,
        streams: &[Vec<SealedChunk>],
        texts: &[&str],
        result: Result<Vec<u8>, StreamError>,
    ) {
        if self.failed {
            assert_eq!(result, Err(StreamError::Poisoned));
            return;
        }
        if self.finished {
            assert_eq!(result, Err(StreamError::AfterFinal));
            self.failed = true;
            return;
        }
        match self.genuine(chunk, streams) {
            Some(stream_idx) => {
                let text = result.unwrap_or_else(|error| panic!("the genuine chunk {chunk:?} failed: {error}"));
                assert_eq!(text, texts[self.n_opened].as_bytes());
                self.committed = Some(stream_idx);
                self.n_opened += 1;
                self.finished = chunk.is_final;
            }
            None => {
                assert!(result.is_err(), "a chunk that is not the next genuine one opened: {chunk:?}");
                self.failed = true;
            }
        }
    }

    /// The stream of which `chunk` is the next genuine chunk, if any.
    fn genuine(&self, chunk: &SealedStreamEvent, streams: &[Vec<SealedChunk>]) -> Option<usize> {
        let next = self.n_opened;
        (0..streams.len()).filter(|&idx| self.committed.is_none_or(|committed| committed == idx)).find(|&idx| {
            let Some(expected) = streams[idx].get(next) else { return false };
            let stream_key = streams[idx][0].ephemeral_public_key.as_deref();
            let key_ok = match (next, chunk.eph.as_deref()) {
                (0, eph) => eph == stream_key,
                (_, None) => true,
                (_, eph) => eph == stream_key,
            };
            chunk.seq == next as u64 && chunk.ct == expected.ciphertext && chunk.is_final == expected.is_final && key_ok
        })
    }
}
