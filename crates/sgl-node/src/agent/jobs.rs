//! Running one job: check it, open it, generate, seal, sign and report (sgl-protocol.md §3);
//! embedding jobs in `embed`.
//!
//! - A sealed job is opened with the node's X25519 secret; its plaintext lives only in memory
//!   and is never logged. Failure reasons sent to the grid never quote the request.
//! - A job streams only when the grid's cleartext marker, the sealed request's own `stream` and
//!   a v2 request all say so (a relay cannot turn streaming on by itself, §3.1).
//! - The first generated token is sent at once (the caller's time to first token); later
//!   chunks are flushed every [`FLUSH_TOKENS`] tokens or [`FLUSH_AFTER`] after the first
//!   unflushed token, whichever comes first. Sequence numbers come from the sealer, so none is
//!   ever reused, and no `final` chunk follows an error (seed weakness R2).
//! - When the grid answers `closed: true` the caller has gone: generation stops and the final
//!   chunk carries the usage actually spent.

use std::time::Duration;

use rand_core::OsRng;
use sgl_engine::{EngineError, EngineEvent, GenerateRequest, Generation};
use sgl_protocol::api::inference::{InferenceRequest, JobPayload, JobResult, Usage};
use sgl_protocol::api::node::{
    ChunkPost, ChunkResponse, CompleteJobRequest, CompletedResult, JOB_TYPE_INFERENCE, JobType, PendingJob,
    ResultSignature, StreamChunkPost, StreamErrorPost,
};
use sgl_protocol::envelope::{EnvelopeError, EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{OpenError, ReplySealer, SealError, SealVersion, StreamSealer, open_request};
use zeroize::Zeroizing;

use super::Shared;
use super::report::with_retries;
use crate::client::ClientError;

mod embed;

/// Tokens per stream chunk at most.
pub const FLUSH_TOKENS: usize = 4;
/// The longest a generated token waits before it is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Why a job failed; the text is what the grid is told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Not an inference job.
    #[error("Unsupported job type: {0}")]
    UnsupportedJobType(String),
    /// The payload is neither a sealed nor a plain request.
    #[error("Invalid payload: {0}")]
    BadPayload(String),
    /// Nothing to run.
    #[error("Payload must contain 'messages' array or 'prompt' string")]
    NoPayload,
    /// The sealed request did not open.
    #[error("decrypt failed: {0}")]
    Decrypt(#[from] OpenError),
    /// The opened request is not an inference request. Only the position is reported, never
    /// the text, which is the caller's secret.
    #[error("Invalid messages format: the request is not valid JSON for a chat request (line {line}, column {column})")]
    BadRequest {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The node was started without a model.
    #[error("No inference engine configured — start with --model-path")]
    NoEngine,
    /// An embedding job reached a node without an embedding model.
    #[error("No embedding model configured — start with --embedding-model")]
    NoEmbedder,
    /// An embedding job came unsealed: its texts would have crossed the grid in clear.
    #[error("embedding jobs must be sealed")]
    UnsealedEmbedding,
    /// The opened embedding request is not one. Only the position is reported.
    #[error("Invalid embedding request: not valid JSON for an embedding request (line {line}, column {column})")]
    BadEmbeddingRequest {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The embedding model refused the inputs (empty, too long) or failed.
    #[error("{0}")]
    Embed(#[from] sgl_engine::embed::EmbedError),
    /// The embedding worker task died.
    #[error("the embedding task failed: {0}")]
    EmbedTask(String),
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// Sealing the reply failed.
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] EnvelopeError),
    /// The grid could not be told the result.
    #[error("reporting to the grid failed: {0}")]
    Report(#[from] ClientError),
}

impl JobError {
    /// The code a failure report carries: an input the model cannot take is the caller's fault.
    fn code(&self) -> Option<sgl_protocol::api::node::FailCode> {
        use sgl_engine::embed::EmbedError;
        match self {
            Self::Embed(EmbedError::InputTooLong { .. } | EmbedError::EmptyInput { .. } | EmbedError::NoInputs) => {
                Some(sgl_protocol::api::node::FailCode::InputRejected)
            }
            _ => None,
        }
    }
}

/// How to answer a job.
#[derive(Debug)]
pub enum Reply {
    /// An unsealed job (a seed grid's legacy path): the result goes back in clear.
    Plain,
    /// Seal the whole reply.
    Sealed(ReplySealer),
    /// Stream sealed chunks bound to the request's secret nonce.
    Stream {
        /// The caller's response key and version.
        sealer: ReplySealer,
        /// The nonce from inside the sealed request.
        nonce: String,
    },
}

/// Checks a job and opens its request.
pub fn prepare(
    secret: &sgl_protocol::identity::EncryptionSecret,
    job: &PendingJob,
) -> Result<(InferenceRequest, Reply), JobError> {
    if job.job_type != JOB_TYPE_INFERENCE {
        return Err(JobError::UnsupportedJobType(job.job_type.chars().take(64).collect()));
    }
    let payload = job.payload().map_err(|e| JobError::BadPayload(e.to_string()))?.ok_or(JobError::NoPayload)?;
    match payload {
        JobPayload::Plain(request) => Ok((request, Reply::Plain)),
        JobPayload::Sealed { enc, stream, max_tokens: billed } => {
            let opened = open_request(secret, &enc)?;
            let mut request: InferenceRequest = serde_json::from_slice(&opened.plaintext)
                .map_err(|e| JobError::BadRequest { line: e.line(), column: e.column() })?;
            // Never generate more than the grid escrowed for.
            if let Some(billed) = billed {
                let asked = request.max_tokens.unwrap_or(u64::from(sgl_engine::request::DEFAULT_MAX_TOKENS));
                request.max_tokens = Some(asked.min(billed.max(1)));
            }
            let wants_stream = stream && request.stream == Some(true) && opened.reply.version() == SealVersion::V2;
            let reply = if wants_stream {
                Reply::Stream { nonce: request.nonce.clone().unwrap_or_default(), sealer: opened.reply }
            } else {
                Reply::Sealed(opened.reply)
            };
            Ok((request, reply))
        }
    }
}

/// Signs results for one node under the envelope version the grid accepts.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The node's identity key.
    pub identity: &'a NodeIdentity,
    /// The node's id.
    pub node_id: &'a NodeId,
    /// v2 for our grids, v1 for a seed grid.
    pub version: EnvelopeVersion,
    /// The served GGUF's sha256, claimed in v2.
    pub model_sha256: Option<&'a str>,
}

impl Signer<'_> {
    /// Signs one payload.
    pub fn sign(
        &self,
        job_id: &JobId,
        kind: ResultKind,
        payload: &[u8],
        usage: Option<&Usage>,
    ) -> Result<ResultSignature, EnvelopeError> {
        let claims =
            ResultClaims { job_id, node_id: self.node_id, kind, payload, usage, model_sha256: self.model_sha256 };
        let v2 = self.version == EnvelopeVersion::V2;
        Ok(ResultSignature {
            result_envelope_signature: claims.sign(self.identity, self.version)?,
            result_envelope_version: self.version.tag().to_owned(),
            model_sha256: self.model_sha256.filter(|_| v2).map(str::to_owned),
            proof_of_execution: v2.then(|| claims.proof_of_execution()),
        })
    }
}

/// The `/complete` body for a finished non-stream job: sealed when the request was.
pub fn complete_body(
    job_id: &JobId,
    result: &JobResult,
    sealer: Option<&ReplySealer>,
    signer: &Signer<'_>,
) -> Result<CompleteJobRequest, JobError> {
    let plaintext = Zeroizing::new(result.to_compact_json());
    let usage = Some(result.usage);
    Ok(match sealer {
        Some(sealer) => {
            let sealed_result = sealer.seal(plaintext.as_bytes(), &mut OsRng)?;
            let signature =
                signer.sign(job_id, ResultKind::Sealed, sealed_result.ciphertext.as_bytes(), usage.as_ref())?;
            CompleteJobRequest { result: CompletedResult::Sealed { sealed_result }, usage, signature }
        }
        None => {
            let signature = signer.sign(job_id, ResultKind::Plain, plaintext.as_bytes(), usage.as_ref())?;
            CompleteJobRequest {
                result: CompletedResult::Plain { encrypted_result: plaintext.to_string() },
                usage,
                signature,
            }
        }
    })
}

/// What a job did, for the log (counts only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Tokens spent.
    pub usage: Usage,
    /// Streamed.
    pub streamed: bool,
    /// The caller left before the end.
    pub caller_left: bool,
}

/// Runs a job to its end and reports it. Returns the failure (already reported) or the outcome.
pub(crate) async fn run(shared: &Shared, job: &PendingJob) -> Result<Outcome, JobError> {
    let mut streamed_any = false;
    let result = execute(shared, job, &mut streamed_any).await;
    if let Err(error) = &result {
        report_failure(shared, &job.id, error, streamed_any).await;
    }
    result
}

async fn execute(shared: &Shared, job: &PendingJob, streamed_any: &mut bool) -> Result<Outcome, JobError> {
    if JobType::from_wire(&job.job_type) == Some(JobType::Embedding) {
        return embed::execute(shared, job).await;
    }
    let (request, reply) = prepare(&shared.secret, job)?;
    let engine = shared.engine.as_ref().ok_or(JobError::NoEngine)?;
    let generate = GenerateRequest::from_inference(&request)?;
    drop(request);
    let generation = engine.generate(generate);
    let signer_version = shared.envelope_version();
    let signer = Signer {
        identity: &shared.identity,
        node_id: &shared.node_id,
        version: signer_version,
        model_sha256: engine.model_sha256(),
    };
    match reply {
        Reply::Stream { sealer, nonce } => {
            let stream = sealer.stream(&nonce, &mut OsRng)?;
            stream_job(shared, &job.id, generation, stream, &signer, streamed_any).await
        }
        Reply::Plain | Reply::Sealed(_) => {
            let completion = collect(shared, generation).await?;
            let result =
                JobResult { content: completion.0, model: engine.model_name().to_owned(), usage: completion.1 };
            let sealer = match &reply {
                Reply::Sealed(sealer) => Some(sealer),
                _ => None,
            };
            let body = complete_body(&job.id, &result, sealer, &signer)?;
            let token = || shared.token();
            with_retries("complete", &job.id, serde_json::Value::Null, || async {
                shared.client.complete(&job.id, &token(), &body).await
            })
            .await?;
            Ok(Outcome { usage: result.usage, streamed: false, caller_left: false })
        }
    }
}

/// Collects a whole generation, stamping progress for the watchdog.
async fn collect(shared: &Shared, mut generation: Generation) -> Result<(String, Usage), JobError> {
    let mut text = String::new();
    while let Some(event) = generation.events.recv().await {
        shared.touch();
        match event {
            EngineEvent::Text(piece) => text.push_str(&piece),
            EngineEvent::Done { usage, .. } => return Ok((text, usage)),
            EngineEvent::Failed(error) => return Err(error.into()),
        }
    }
    Err(EngineError::Stopped.into())
}

/// What a chunk says about tokens: the final chunk's exact usage, or (v2 only: a seed grid
/// expects usage on the final chunk alone) the completion tokens sent so far, signed, so that
/// a stream cut short is billed for what its caller received.
#[derive(Debug, Clone, Copy)]
enum ChunkUsage {
    /// A delta after `sent` completion tokens in all.
    Sent(usize),
    /// The end, with the engine's exact counts.
    Final(Usage),
}

/// Seals, signs and posts one chunk, with retries.
async fn post_chunk(
    shared: &Shared,
    job_id: &JobId,
    sealer: &mut StreamSealer,
    signer: &Signer<'_>,
    text: &str,
    usage: ChunkUsage,
) -> Result<ChunkResponse, JobError> {
    let (is_final, usage) = match usage {
        ChunkUsage::Final(usage) => (true, Some(usage)),
        ChunkUsage::Sent(tokens) => {
            let v2 = signer.version == sgl_protocol::envelope::EnvelopeVersion::V2;
            (false, v2.then(|| Usage::new(0, tokens as u64)))
        }
    };
    let chunk = sealer.seal_chunk(text.as_bytes(), is_final, &mut OsRng)?;
    let kind = ResultKind::Stream { seq: chunk.seq, is_final };
    let signature = signer.sign(job_id, kind, chunk.ciphertext.as_bytes(), usage.as_ref())?;
    let post = ChunkPost::Chunk(StreamChunkPost {
        seq: chunk.seq,
        is_final,
        ciphertext: chunk.ciphertext,
        algorithm: sgl_protocol::seal::ALGORITHM_V2_STREAM.to_owned(),
        ephemeral_public_key: chunk.ephemeral_public_key,
        usage,
        signature,
    });
    let gone = ChunkResponse { ok: false, closed: true };
    Ok(with_retries("chunk", job_id, gone, || async { shared.client.chunk(job_id, &shared.token(), &post).await })
        .await?)
}

async fn stream_job(
    shared: &Shared,
    job_id: &JobId,
    mut generation: Generation,
    mut sealer: StreamSealer,
    signer: &Signer<'_>,
    streamed_any: &mut bool,
) -> Result<Outcome, JobError> {
    let mut pending = String::new();
    let mut pending_tokens = 0usize;
    // Completion tokens generated so far; a chunk carries every token generated before it.
    let mut generated = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut caller_left = false;
    loop {
        let event = match deadline {
            Some(at) => tokio::select! {
                event = generation.events.recv() => event,
                () = tokio::time::sleep_until(at) => {
                    deadline = None;
                    if !pending.is_empty() && !caller_left {
                        *streamed_any = true;
                        let sent = ChunkUsage::Sent(generated);
                        let answer = post_chunk(shared, job_id, &mut sealer, signer, &pending, sent).await?;
                        pending.clear();
                        pending_tokens = 0;
                        if answer.closed { caller_left = true; generation.cancel(); }
                    }
                    continue;
                }
            },
            None => generation.events.recv().await,
        };
        shared.touch();
        match event {
            Some(EngineEvent::Text(piece)) => {
                if caller_left {
                    continue;
                }
                pending.push_str(&piece);
                pending_tokens += 1;
                generated += 1;
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_AFTER);
                if pending_tokens >= FLUSH_TOKENS || generated == 1 {
                    *streamed_any = true;
                    let sent = ChunkUsage::Sent(generated);
                    let answer = post_chunk(shared, job_id, &mut sealer, signer, &pending, sent).await?;
                    pending.clear();
                    pending_tokens = 0;
                    deadline = None;
                    if answer.closed {
                        caller_left = true;
                        generation.cancel();
                    }
                }
            }
            Some(EngineEvent::Done { usage, .. }) => {
                if !pending.is_empty() && !caller_left {
                    *streamed_any = true;
                    post_chunk(shared, job_id, &mut sealer, signer, &pending, ChunkUsage::Sent(generated)).await?;
                }
                *streamed_any = true;
                post_chunk(shared, job_id, &mut sealer, signer, "", ChunkUsage::Final(usage)).await?;
                return Ok(Outcome { usage, streamed: true, caller_left });
            }
            Some(EngineEvent::Failed(error)) => return Err(error.into()),
            None => return Err(EngineError::Stopped.into()),
        }
    }
}

/// Tells the grid a job failed: a stream error once chunks went out (never a `final` after an
/// error), `/fail` otherwise or if that report fails.
async fn report_failure(shared: &Shared, job_id: &JobId, error: &JobError, streamed_any: bool) {
    let reason = error.to_string();
    tracing::warn!(target: "sgl::events::job", job_id = %job_id, reason = %reason, "job failed");
    if streamed_any {
        let post = ChunkPost::Error(StreamErrorPost { error: true, reason: Some(reason.clone()) });
        let gone = ChunkResponse { ok: true, closed: true };
        let sent = with_retries("stream error", job_id, gone, || async {
            shared.client.chunk(job_id, &shared.token(), &post).await
        })
        .await;
        if sent.is_ok() {
            return;
        }
    }
    let body =
        sgl_protocol::api::node::FailJobRequest { reason: reason.chars().take(500).collect(), code: error.code() };
    let sent = with_retries("fail", job_id, serde_json::Value::Null, || async {
        shared.client.fail(job_id, &shared.token(), &body).await
    })
    .await;
    if let Err(error) = sent {
        tracing::error!(job_id = %job_id, %error, "could not report the failure; the grid's reaper will finish the job");
    }
}

#[cfg(test)]
mod tests;
