//! An `embedding` job (`docs/protocol.md` §15): always sealed; the texts are opened, embedded by
//! the node's embedding model off the async runtime, and the vectors sealed to the caller's
//! response key and signed with the embedding model's hash. The texts are never logged.

use rand_core::OsRng;
use sgl_protocol::api::embeddings::{EmbeddingJobRequest, EmbeddingJobResult, encode_vector};
use sgl_protocol::api::inference::{JobPayload, Usage};
use sgl_protocol::api::node::{CompleteJobRequest, CompletedResult, PendingJob};
use sgl_protocol::envelope::ResultKind;
use sgl_protocol::seal::open_request;
use zeroize::Zeroizing;

use super::{JobError, Outcome, Signer};
use crate::agent::Shared;
use crate::agent::report::with_retries;

/// Runs one embedding job and posts its sealed, signed result.
pub(super) async fn execute(shared: &Shared, job: &PendingJob) -> Result<Outcome, JobError> {
    let embedder = shared.embedder.clone().ok_or(JobError::NoEmbedder)?;
    let payload = job.payload().map_err(|e| JobError::BadPayload(e.to_string()))?.ok_or(JobError::NoPayload)?;
    let JobPayload::Sealed { enc, .. } = payload else { return Err(JobError::UnsealedEmbedding) };
    let opened = open_request(&shared.secret, &enc)?;
    let request: EmbeddingJobRequest = serde_json::from_slice(&opened.plaintext)
        .map_err(|e| JobError::BadEmbeddingRequest { line: e.line(), column: e.column() })?;
    shared.touch();
    let model = embedder.model_name().to_owned();
    let model_sha256 = embedder.model_sha256().to_owned();
    let embeddings = tokio::task::spawn_blocking(move || embedder.embed(&request.input))
        .await
        .map_err(|e| JobError::EmbedTask(e.to_string()))??;
    shared.touch();
    let result = EmbeddingJobResult {
        data: embeddings.data.iter().map(|embedding| encode_vector(&embedding.vector)).collect(),
        model,
        usage: Usage::new(embeddings.prompt_tokens(), 0),
    };
    let plaintext = Zeroizing::new(result.to_compact_json());
    let sealed_result = opened.reply.seal(plaintext.as_bytes(), &mut OsRng)?;
    let signer = Signer {
        identity: &shared.identity,
        node_id: &shared.node_id,
        version: shared.envelope_version(),
        model_sha256: Some(&model_sha256),
    };
    let usage = Some(result.usage);
    let signature = signer.sign(&job.id, ResultKind::Sealed, sealed_result.ciphertext.as_bytes(), usage.as_ref())?;
    let body = CompleteJobRequest { result: CompletedResult::Sealed { sealed_result }, usage, signature };
    with_retries("complete", &job.id, serde_json::Value::Null, || async {
        shared.client.complete(&job.id, &shared.token(), &body).await
    })
    .await?;
    Ok(Outcome { usage: result.usage, streamed: false, caller_left: false })
}
