//! JSON bodies from outside: what the grid reads from callers (plain and sealed chat, reserve)
//! and from nodes (heartbeat, chunk, completion, registration, prices, operator requests), what
//! a node reads from the grid (heartbeat answer, WebSocket message, job payload, chunk answer),
//! and what a caller reads from the grid (sealed answers, stream events, reservations, errors).
//!
//! The first byte picks the type, the rest is the body.
//!
//! Invariants: nothing panics; a body that decodes re-encodes to a body that decodes to the
//! same value, so the grid relays and stores exactly what it accepted; for the types that read
//! leniently on purpose (malformed pending jobs skipped, any value as a flag, the seed's error
//! shape) one round normalises and a second changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_fuzz::{json_round_trip, json_round_trip_normalising};
use sgl_protocol::api::caller::{
    ReserveRequest, ReserveResponse, SealedChatRequest, SealedChatResponse, SealedStreamEvent,
};
use sgl_protocol::api::error::ErrorBody;
use sgl_protocol::api::inference::JobPayload;
use sgl_protocol::api::node::{
    ChunkPost, ChunkResponse, CompleteJobRequest, HeartbeatRequest, HeartbeatResponse, RegisterNodeRequest,
    ServerMessage, SetPriceRequest, StreamChunkPost,
};
use sgl_protocol::api::openai::ChatCompletionRequest;
use sgl_protocol::api::operator::SignedOperatorRequest;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 18 {
        0 => {
            if let Some(request) = json_round_trip::<ChatCompletionRequest>(body) {
                let _ = request.effective_max_tokens();
                for message in &request.messages {
                    if let Some(content) = &message.content {
                        let _ = content.flattened();
                    }
                }
            }
        }
        1 => drop(json_round_trip::<SealedChatRequest>(body)),
        2 => drop(json_round_trip::<ReserveRequest>(body)),
        3 => drop(json_round_trip::<HeartbeatRequest>(body)),
        4 => drop(json_round_trip::<StreamChunkPost>(body)),
        5 => drop(json_round_trip::<ChunkPost>(body)),
        6 => drop(json_round_trip::<CompleteJobRequest>(body)),
        7 => drop(json_round_trip::<RegisterNodeRequest>(body)),
        8 => drop(json_round_trip::<SetPriceRequest>(body)),
        9 => drop(json_round_trip::<SignedOperatorRequest>(body)),
        10 => drop(json_round_trip::<SealedChatResponse>(body)),
        11 => drop(json_round_trip::<SealedStreamEvent>(body)),
        12 => drop(json_round_trip::<ReserveResponse>(body)),
        13 => drop(json_round_trip_normalising::<ErrorBody>(body)),
        14 => {
            if let Some(response) = json_round_trip_normalising::<HeartbeatResponse>(body) {
                for job in &response.pending_jobs.jobs {
                    let _ = job.payload();
                }
            }
        }
        15 => {
            if let Some(ServerMessage::Job { job }) = json_round_trip::<ServerMessage>(body) {
                let _ = job.payload();
            }
        }
        16 => drop(json_round_trip::<JobPayload>(body)),
        _ => drop(json_round_trip_normalising::<ChunkResponse>(body)),
    }
});
