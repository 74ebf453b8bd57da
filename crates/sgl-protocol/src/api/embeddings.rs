//! Embeddings (`docs/protocol.md` §15): OpenAI's `POST /v1/embeddings` shapes, and the sealed
//! `embedding` job a node runs for one. A vector travels between node and grid as the base64 of
//! its little-endian `float32` values, which is exactly OpenAI's `encoding_format: "base64"`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::inference::Usage;

/// `input`: one text, several, or token arrays (which this grid refuses: its nodes tokenise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts, one vector each.
    Texts(Vec<String>),
    /// One input as token ids.
    Tokens(Vec<u32>),
    /// Several inputs as token ids.
    TokenArrays(Vec<Vec<u32>>),
}

/// How vectors are returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON arrays of numbers (OpenAI's default).
    #[default]
    Float,
    /// The base64 of the little-endian `float32` values (what OpenAI's SDKs ask for).
    Base64,
}

/// `POST /v1/embeddings` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingRequest {
    /// The text or texts to embed.
    pub input: EmbeddingInput,
    /// An embedding model a node serves (see `GET /v1/models`).
    pub model: String,
    /// `float` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    /// Only the model's own width is served: vectors are never truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// The caller's end-user id; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One vector in a response, in the requested encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// One input's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingObject {
    /// Always `embedding`.
    pub object: String,
    /// The input's position in the request.
    pub index: u32,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// The tokens an embeddings call was billed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens of all inputs, the model's special tokens included.
    pub prompt_tokens: u64,
    /// The same number: nothing is generated.
    pub total_tokens: u64,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingList {
    /// Always `list`.
    pub object: String,
    /// One entry per input, in input order.
    pub data: Vec<EmbeddingObject>,
    /// The model that made them.
    pub model: String,
    /// What was billed.
    pub usage: EmbeddingUsage,
}

/// An embedding model a node serves, as its heartbeat announces it (ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingModel {
    /// The name callers ask for.
    pub name: String,
    /// Length of every vector.
    pub dimensions: u32,
    /// The longest input in tokens, special tokens included.
    pub max_input_tokens: u32,
    /// sha256 hex of the GGUF; embedding results are signed with it.
    pub model_sha256: String,
}

/// The sealed plaintext of an `embedding` job: the texts, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingJobRequest {
    /// One or more non-empty texts.
    pub input: Vec<String>,
}

/// The sealed plaintext of an `embedding` job's result. Alphabetical field order, as
/// [`super::inference::JobResult`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingJobResult {
    /// One vector per input, in input order, each as [`encode_vector`] writes it.
    pub data: Vec<String>,
    /// The node's embedding model.
    pub model: String,
    /// `prompt_tokens` of all inputs; `completion_tokens` is 0.
    pub usage: Usage,
}

impl EmbeddingJobResult {
    /// The compact JSON a node seals.
    pub fn to_compact_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and integers always serialises")
    }

    /// The vectors, decoded; every one must have `dimensions` values.
    pub fn vectors(&self, dimensions: usize) -> Result<Vec<Vec<f32>>, VectorError> {
        self.data
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let vector = decode_vector(text).ok_or(VectorError::NotBase64 { index })?;
                match vector.len() {
                    n if n == dimensions => Ok(vector),
                    found => Err(VectorError::Width { index, found, expected: dimensions }),
                }
            })
            .collect()
    }
}

/// A result's vector is not what its model makes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    /// Not base64 of whole `float32` values.
    #[error("vector {index} is not the base64 of float32 values")]
    NotBase64 {
        /// Its position.
        index: usize,
    },
    /// The wrong number of values.
    #[error("vector {index} has {found} values; the model makes {expected}")]
    Width {
        /// Its position.
        index: usize,
        /// Values found.
        found: usize,
        /// The model's width.
        expected: usize,
    },
}

/// The base64 (standard alphabet, padded) of `vector`'s little-endian `float32` bytes.
pub fn encode_vector(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_vector`]; `None` unless `text` is padded standard base64 of a whole
/// number of `float32` values.
pub fn decode_vector(text: &str) -> Option<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    //! The wire shapes of embeddings.

    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_parse_as_openai_sends_them() {
        let parse = |value| serde_json::from_value::<EmbeddingInput>(value).unwrap();
        assert_eq!(parse(json!("a")), EmbeddingInput::Text("a".into()));
        assert_eq!(parse(json!(["a", "b"])), EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        assert_eq!(parse(json!([1, 2])), EmbeddingInput::Tokens(vec![1, 2]));
        assert_eq!(parse(json!([[1], [2, 3]])), EmbeddingInput::TokenArrays(vec![vec![1], vec![2, 3]]));
        let request: EmbeddingRequest =
            serde_json::from_value(json!({"model": "m", "input": "a", "encoding_format": "base64"})).unwrap();
        assert_eq!(request.encoding_format, Some(EncodingFormat::Base64));
        let unknown =
            serde_json::from_value::<EmbeddingRequest>(json!({"model": "m", "input": "a", "encoding_format": "int8"}));
        assert!(unknown.unwrap_err().to_string().contains("unknown variant `int8`"));
    }

    #[test]
    fn vectors_travel_as_base64_of_little_endian_float32() {
        let vector = [1.0f32, -2.5, f32::MIN_POSITIVE, 0.1];
        let text = encode_vector(&vector);
        assert_eq!(decode_vector(&text).unwrap(), vector);
        // What Python gets from base64.b64encode(struct.pack("<2f", 1.0, -2.5)).
        assert_eq!(encode_vector(&[1.0, -2.5]), "AACAPwAAIMA=");
        assert_eq!(decode_vector("AACAPwAA"), None, "six bytes are not whole float32 values");
        assert_eq!(decode_vector("not base64!"), None);
        let result = EmbeddingJobResult {
            data: vec![encode_vector(&vector), encode_vector(&vector[..3])],
            model: "m".into(),
            usage: Usage::new(3, 0),
        };
        assert_eq!(result.vectors(4).unwrap_err(), VectorError::Width { index: 1, found: 3, expected: 4 });
        let result = EmbeddingJobResult { data: vec!["%%".into()], ..result };
        assert_eq!(result.vectors(4).unwrap_err(), VectorError::NotBase64 { index: 0 });
    }
}
