//! Embeddings (`POST /v1/embeddings`): plain, in OpenAI's shapes (the grid reads the texts and
//! checks the node's answer), or sealed to a reserved node and verified here (the grid never
//! reads the texts or the vectors).

use rand_core::OsRng;
use sgl_protocol::api::caller::{ReserveRequest, SealedChatResponse};
use sgl_protocol::api::embeddings::{
    EmbeddingJobRequest, EmbeddingJobResult, EmbeddingList, EmbeddingRequest, decode_vector,
};
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::node::JobType;
use sgl_protocol::seal::{SealVersion, seal_request};
use zeroize::Zeroizing;

use crate::client::{Client, decode};
use crate::error::{Error, VerifyError};
use crate::verify::{Verification, VerifiedNode, verify_and_open};

/// Sealed embeddings, verified: the node's signature over the answer, its usage and its model
/// hash, and one vector per input, all of one width.
#[derive(Debug, Clone)]
pub struct VerifiedEmbeddings {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The node's embedding model.
    pub model: String,
    /// The signed usage (`prompt_tokens`; `completion_tokens` is 0).
    pub usage: Usage,
    /// What was verified.
    pub verification: Verification,
}

impl Client {
    /// Plain OpenAI embeddings: the grid sees the texts and seals them to a node itself.
    pub async fn embeddings_plain(&self, request: &EmbeddingRequest) -> Result<EmbeddingList, Error> {
        decode(self.post_once("/v1/embeddings", request).await?).await
    }

    /// Sealed, verified embeddings of `inputs` with `model`: reserves a node serving it as an
    /// embedding model (its keybind verified), seals the texts to it, and checks the signed
    /// answer before opening it. Not retried: a failure may follow work the node did.
    pub async fn embeddings(&self, model: &str, inputs: &[String]) -> Result<VerifiedEmbeddings, Error> {
        let reservation = ReserveRequest {
            model: model.to_owned(),
            cluster: None,
            node: None,
            max_price: None,
            pay_in_coin: None,
            job_type: Some(JobType::Embedding),
        };
        let node = self.reserve_with(&reservation).await?;
        self.embeddings_with_node(&node, inputs).await
    }

    /// Sealed embeddings on a node already reserved for them (the reservation is used up).
    pub async fn embeddings_with_node(
        &self,
        node: &VerifiedNode,
        inputs: &[String],
    ) -> Result<VerifiedEmbeddings, Error> {
        let request = EmbeddingJobRequest { input: inputs.to_vec() };
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&request).map_err(|e| VerifyError::UnexpectedShape(format!("the request: {e}")))?,
        );
        let (enc, opener) = seal_request(node.encryption_key(), SealVersion::V2, &plaintext, &mut OsRng)
            .map_err(|e| VerifyError::UnexpectedShape(format!("cannot seal to the node's key: {e}")))?;
        let body = serde_json::json!({"reservation_token": node.reservation_token(), "enc": enc});
        let response: SealedChatResponse = decode(self.post_once("/v1/embeddings", &body).await?).await?;
        Ok(open_embeddings(node, &opener, &response, inputs.len())?)
    }
}

/// Verifies and opens a sealed embeddings answer for `inputs` texts.
fn open_embeddings(
    node: &VerifiedNode,
    opener: &sgl_protocol::seal::ReplyOpener,
    response: &SealedChatResponse,
    inputs: usize,
) -> Result<VerifiedEmbeddings, VerifyError> {
    let (plaintext, usage, verification) = verify_and_open(node, opener, response)?;
    let result: EmbeddingJobResult = serde_json::from_slice(&plaintext)
        .map_err(|e| VerifyError::UnexpectedShape(format!("the opened answer is not embeddings: {e}")))?;
    if result.usage != usage {
        return Err(VerifyError::UnexpectedShape("the sealed usage differs from the signed usage".into()));
    }
    if result.data.len() != inputs {
        return Err(VerifyError::UnexpectedShape(format!("{} vectors for {inputs} inputs", result.data.len())));
    }
    // Every vector as wide as the first (one that does not decode fails below).
    let width = result.data.first().and_then(|first| decode_vector(first)).map_or(0, |first| first.len());
    let vectors = result.vectors(width).map_err(|e| VerifyError::UnexpectedShape(e.to_string()))?;
    Ok(VerifiedEmbeddings { vectors, model: result.model, usage, verification })
}
