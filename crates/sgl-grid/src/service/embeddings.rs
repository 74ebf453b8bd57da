//! Embeddings (`POST /v1/embeddings`, `docs/protocol.md` §15): a request checked against the
//! embedding models nodes announce, what it may cost, and the answer in OpenAI's shapes.

use sgl_protocol::api::embeddings::{
    EmbeddingInput, EmbeddingJobResult, EmbeddingList, EmbeddingModel, EmbeddingObject, EmbeddingRequest,
    EmbeddingUsage, EmbeddingVector, EncodingFormat,
};

use crate::service::schedule::estimate_tokens;

/// Most inputs one request may hold (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// Why an embeddings request is refused before anything is dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingError {
    /// No model named.
    #[error("model is required")]
    NoModel,
    /// Token ids instead of text.
    #[error("token arrays are not served: send the text (the node's model tokenises it)")]
    TokenInput,
    /// Nothing to embed.
    #[error("input must hold at least one text")]
    NoInputs,
    /// More than [`MAX_INPUTS`] texts.
    #[error("input holds {0} texts; at most {MAX_INPUTS} are allowed per request")]
    TooManyInputs(usize),
    /// An empty text.
    #[error("input[{0}] is empty; every input must hold text")]
    EmptyInput(usize),
    /// A text certainly longer than the model takes.
    #[error("input[{index}] is about {estimated} tokens; {model} takes at most {limit} tokens per input")]
    InputTooLong {
        /// Its position.
        index: usize,
        /// Its estimated tokens.
        estimated: u64,
        /// The model.
        model: String,
        /// The model's limit.
        limit: u32,
    },
    /// `dimensions` other than the model's width.
    #[error(
        "{model} makes {native}-dimensional vectors and does not shorten them; leave dimensions out or set it to {native}"
    )]
    Dimensions {
        /// The model.
        model: String,
        /// Its width.
        native: u32,
    },
    /// The model is a chat model.
    #[error("{0} is a chat model; /v1/embeddings takes an embedding model (see GET /v1/models)")]
    ChatModel(String),
    /// No node serves the model.
    #[error("the model {0} does not exist or no node serves it now")]
    UnknownModel(String),
}

/// A checked embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingJob {
    /// The embedding model.
    pub model: String,
    /// The texts, in order.
    pub inputs: Vec<String>,
    /// How vectors are returned.
    pub format: EncodingFormat,
    /// A bound on the inputs' tokens, which the hold covers: their bytes plus two special
    /// tokens each (a token of these models spans at least one byte).
    pub token_bound: u64,
}

impl EmbeddingJob {
    /// Checks `request` against `announced`, the embedding models live nodes announce (those of
    /// other names are passed over); `is_chat_model` tells a chat model's name from an unknown
    /// one.
    pub fn check(
        request: EmbeddingRequest,
        announced: &[EmbeddingModel],
        is_chat_model: impl Fn(&str) -> bool,
    ) -> Result<Self, EmbeddingError> {
        let model = request.model;
        if model.trim().is_empty() {
            return Err(EmbeddingError::NoModel);
        }
        let inputs = match request.input {
            EmbeddingInput::Text(text) => vec![text],
            EmbeddingInput::Texts(texts) => texts,
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenArrays(_) => return Err(EmbeddingError::TokenInput),
        };
        match inputs.len() {
            0 => return Err(EmbeddingError::NoInputs),
            n if n > MAX_INPUTS => return Err(EmbeddingError::TooManyInputs(n)),
            _ => {}
        }
        if let Some(index) = inputs.iter().position(String::is_empty) {
            return Err(EmbeddingError::EmptyInput(index));
        }
        let announced: Vec<&EmbeddingModel> = announced.iter().filter(|m| m.name == model).collect();
        let Some(limits) = announced.iter().max_by_key(|m| m.max_input_tokens) else {
            return Err(if is_chat_model(&model) {
                EmbeddingError::ChatModel(model)
            } else {
                EmbeddingError::UnknownModel(model)
            });
        };
        if let Some(asked) = request.dimensions
            && !announced.iter().any(|m| m.dimensions == asked)
        {
            return Err(EmbeddingError::Dimensions { model, native: limits.dimensions });
        }
        for (index, input) in inputs.iter().enumerate() {
            let estimated = estimate_tokens(input.len() as u64);
            if estimated > u64::from(limits.max_input_tokens) {
                return Err(EmbeddingError::InputTooLong { index, estimated, model, limit: limits.max_input_tokens });
            }
        }
        let token_bound = inputs.iter().map(|input| input.len() as u64 + 2).sum();
        Ok(Self { model, inputs, format: request.encoding_format.unwrap_or_default(), token_bound })
    }

    /// OpenAI's answer for this request from a node's checked result and its decoded vectors.
    pub fn answer(&self, vectors: Vec<Vec<f32>>, result: EmbeddingJobResult) -> EmbeddingList {
        let encoded = match self.format {
            EncodingFormat::Float => vectors.into_iter().map(EmbeddingVector::Float).collect::<Vec<_>>(),
            EncodingFormat::Base64 => result.data.into_iter().map(EmbeddingVector::Base64).collect(),
        };
        let data = encoded
            .into_iter()
            .zip(0u32..)
            .map(|(embedding, index)| EmbeddingObject { object: "embedding".into(), index, embedding })
            .collect();
        let tokens = result.usage.prompt_tokens;
        EmbeddingList {
            object: "list".into(),
            data,
            model: self.model.clone(),
            usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
        }
    }
}

#[cfg(test)]
mod tests;
