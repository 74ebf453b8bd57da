//! Embeddings with llama.cpp in process, for `POST /v1/embeddings`: an [`Embedder`] loads a GGUF
//! (a BERT-style encoder such as all-MiniLM-L6-v2, or any model llama.cpp can pool) into its own
//! context with embeddings on, and turns texts into L2-normalised vectors with exact prompt-token
//! counts for billing.
//!
//! Texts are tokenised on the caller's thread (so bad input is refused before it queues) and
//! decoded on one worker thread that owns the context. Each text is decoded alone, as one
//! sequence in one batch: a vector depends only on its text, never on what else was asked in
//! the same call, so a batch equals its texts embedded one by one, bit for bit, and a result can
//! be checked by recomputing it.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::llama::{LoadError, backend};
use crate::model_file::{default_model_name, sha256_file};

/// How to load and run an embedding model.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The advertised name; the file stem if not given.
    pub model_name: Option<String>,
    /// CPU threads of the one context.
    pub threads: u32,
    /// Layers offloaded to a GPU (99 for all).
    pub gpu_layers: u32,
    /// The longest input in tokens, special tokens included; the model's training context when
    /// not given, and never more (an encoder has no positions past it).
    pub max_input_tokens: Option<u32>,
}

/// One input's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The vector, with unit L2 norm (`dimensions()` long).
    pub vector: Vec<f32>,
    /// Tokens the input was billed as, the model's special tokens (BERT's `[CLS]` and `[SEP]`)
    /// included, as llama-server counts them.
    pub prompt_tokens: u32,
}

/// The embeddings of one call, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One per input.
    pub data: Vec<Embedding>,
}

impl Embeddings {
    /// Prompt tokens of all inputs together (the `usage.prompt_tokens` of the call).
    pub fn prompt_tokens(&self) -> u64 {
        self.data.iter().map(|embedding| u64::from(embedding.prompt_tokens)).sum()
    }
}

/// An embedding call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The call had no inputs.
    #[error("no inputs to embed")]
    NoInputs,
    /// An input is the empty string.
    #[error("input {index} is empty")]
    EmptyInput {
        /// Its position in the call.
        index: usize,
    },
    /// An input has more tokens than the model takes.
    #[error("input {index} is {tokens} tokens, more than the model's limit of {limit}")]
    InputTooLong {
        /// Its position in the call.
        index: usize,
        /// Its tokens, special tokens included.
        tokens: usize,
        /// [`Embedder::max_input_tokens`].
        limit: u32,
    },
    /// llama.cpp failed while decoding.
    #[error("embedding failed: {0}")]
    Inference(String),
    /// The worker thread has stopped.
    #[error("the embedder is not running")]
    Stopped,
}

/// An embedding model loaded in process, with its own context on its own worker thread.
///
/// Calls from several threads queue for the one context.
#[derive(Debug)]
pub struct Embedder {
    model: Arc<LlamaModel>,
    model_name: String,
    model_sha256: String,
    dimensions: usize,
    max_input_tokens: u32,
    jobs: std_mpsc::Sender<Job>,
}

/// Tokenised inputs for the worker and where to send their vectors.
#[derive(Debug)]
struct Job {
    inputs: Vec<Vec<LlamaToken>>,
    reply: std_mpsc::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

impl Embedder {
    /// Hashes and loads the model and starts its worker thread. Blocking (about 0.2 s for a
    /// 46 MB model): call it off the async runtime.
    pub fn load(options: &EmbedOptions) -> Result<Self, LoadError> {
        let model_sha256 = sha256_file(&options.model_path)
            .map_err(|source| LoadError::Io { path: options.model_path.clone(), source })?;
        let params = LlamaModelParams::default().with_n_gpu_layers(options.gpu_layers);
        let model = Arc::new(
            LlamaModel::load_from_file(backend()?, &options.model_path, &params)
                .map_err(|e| LoadError::Llama(e.to_string()))?,
        );
        let pooling = pooling_for(metadata_pooling(&model))?;
        let trained = model.n_ctx_train().max(1);
        let max_input_tokens = options.max_input_tokens.map_or(trained, |limit| limit.clamp(1, trained));
        let dimensions = usize::try_from(model.n_embd_out())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| LoadError::Unsupported("the model reports no embedding width".into()))?;
        let worker = Worker {
            model: Arc::clone(&model),
            pooling,
            max_input_tokens,
            threads: i32::try_from(options.threads.max(1)).unwrap_or(1),
            dimensions,
        };
        let (jobs, queue) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("sgl-embed".into())
            .spawn(move || worker.run(&queue, &ready_tx))
            .map_err(|e| LoadError::Llama(format!("starting the embedding thread: {e}")))?;
        ready_rx.recv().map_err(|_| LoadError::Llama("the embedding thread died while starting".into()))??;
        Ok(Self {
            model,
            model_name: options.model_name.clone().unwrap_or_else(|| default_model_name(&options.model_path)),
            model_sha256,
            dimensions,
            max_input_tokens,
            jobs,
        })
    }

    /// Embeds each input, in order. Blocking: call it off the async runtime (`spawn_blocking`).
    /// The whole call fails if any input is empty or too long, before anything is decoded.
    pub fn embed(&self, inputs: &[String]) -> Result<Embeddings, EmbedError> {
        if inputs.is_empty() {
            return Err(EmbedError::NoInputs);
        }
        let tokens = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| self.tokenize(index, input))
            .collect::<Result<Vec<_>, _>>()?;
        let counts: Vec<u32> = tokens.iter().map(|t| u32::try_from(t.len()).unwrap_or(u32::MAX)).collect();
        let (reply, vectors) = std_mpsc::channel();
        self.jobs.send(Job { inputs: tokens, reply }).map_err(|_| EmbedError::Stopped)?;
        let vectors = vectors.recv().map_err(|_| EmbedError::Stopped)??;
        let data = vectors.into_iter().zip(counts).map(|(vector, prompt_tokens)| Embedding { vector, prompt_tokens });
        Ok(Embeddings { data: data.collect() })
    }

    /// An input's tokens as the model sees them: its special tokens added, special-token text
    /// in the input (`[SEP]` typed by a caller) read as plain text.
    fn tokenize(&self, index: usize, input: &str) -> Result<Vec<LlamaToken>, EmbedError> {
        if input.is_empty() {
            return Err(EmbedError::EmptyInput { index });
        }
        let tokens = self.model.vocab().tokenize(input.as_bytes(), true, false);
        if tokens.len() > self.max_input_tokens as usize {
            return Err(EmbedError::InputTooLong { index, tokens: tokens.len(), limit: self.max_input_tokens });
        }
        Ok(tokens)
    }

    /// Length of every vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The model's name as advertised to the grid.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// sha256 hex of the GGUF.
    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// The longest input in tokens, special tokens included.
    pub fn max_input_tokens(&self) -> u32 {
        self.max_input_tokens
    }
}

/// The pooling the GGUF declares (`{arch}.pooling_type`), if any.
fn metadata_pooling(model: &LlamaModel) -> Option<i32> {
    let arch = model.meta_val_str("general.architecture").ok()?;
    model.meta_val_str(&format!("{arch}.pooling_type")).ok()?.trim().parse().ok()
}

/// Mean pooling unless the GGUF declares CLS, last-token or mean pooling; a reranker's rank
/// pooling yields scores, not vectors, and is refused.
fn pooling_for(declared: Option<i32>) -> Result<LlamaPoolingType, LoadError> {
    match declared.map(LlamaPoolingType::from) {
        Some(pooling @ (LlamaPoolingType::Mean | LlamaPoolingType::Cls | LlamaPoolingType::Last)) => Ok(pooling),
        Some(LlamaPoolingType::Rank) => {
            Err(LoadError::Unsupported("a reranker (rank pooling), not an embedding model".into()))
        }
        _ => Ok(LlamaPoolingType::Mean),
    }
}

/// Scales `vector` to unit L2 norm (a zero vector stays zero), as llama-server and
/// sentence-transformers' `Normalize` do.
fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in vector {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

/// The worker thread's state: it creates the context and serves jobs until the embedder drops.
struct Worker {
    model: Arc<LlamaModel>,
    pooling: LlamaPoolingType,
    max_input_tokens: u32,
    threads: i32,
    dimensions: usize,
}

impl Worker {
    fn run(self, queue: &std_mpsc::Receiver<Job>, ready: &std_mpsc::Sender<Result<(), LoadError>>) {
        // A whole input must fit one micro-batch: an encoder attends both ways, so llama.cpp
        // cannot split a sequence across micro-batches.
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.max_input_tokens))
            .with_n_batch(self.max_input_tokens)
            .with_n_ubatch(self.max_input_tokens)
            .with_n_seq_max(1)
            .with_embeddings(true)
            .with_pooling_type(self.pooling)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let context = backend().and_then(|backend| {
            self.model.new_context(backend, params).map_err(|e| LoadError::Llama(format!("creating a context: {e}")))
        });
        let mut context = match context {
            Ok(context) => context,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut batch = LlamaBatch::new(self.max_input_tokens as usize, 1);
        while let Ok(job) = queue.recv() {
            let vectors = job.inputs.iter().map(|tokens| self.embed_one(&mut context, &mut batch, tokens)).collect();
            let _ = job.reply.send(vectors);
        }
    }

    /// Decodes one input as sequence 0 of a fresh batch and reads its pooled vector.
    fn embed_one(
        &self,
        context: &mut LlamaContext<'_>,
        batch: &mut LlamaBatch<'_>,
        tokens: &[LlamaToken],
    ) -> Result<Vec<f32>, EmbedError> {
        let inference = |e: &dyn std::fmt::Display| EmbedError::Inference(e.to_string());
        // An encoder keeps no cache; a decoder used for embeddings must not attend to the last input.
        context.clear_kv_cache();
        batch.clear();
        batch.add_sequence(tokens, 0, false).map_err(|e| inference(&e))?;
        context.decode(batch).map_err(|e| inference(&e))?;
        let mut vector = context.embeddings_seq_ith(0).map_err(|e| inference(&e))?.to_vec();
        if vector.len() != self.dimensions {
            return Err(EmbedError::Inference(format!("{} values, expected {}", vector.len(), self.dimensions)));
        }
        normalize(&mut vector);
        Ok(vector)
    }
}

#[cfg(test)]
mod tests {
    //! Pooling choice and normalisation; the model itself is tested in `tests/llama`.

    use super::*;

    #[test]
    fn pooling_follows_the_gguf_except_for_rerankers_and_defaults_to_mean() {
        assert_eq!(pooling_for(None).unwrap(), LlamaPoolingType::Mean);
        assert_eq!(pooling_for(Some(0)).unwrap(), LlamaPoolingType::Mean, "no pooling gives token vectors");
        assert_eq!(pooling_for(Some(-1)).unwrap(), LlamaPoolingType::Mean);
        assert_eq!(pooling_for(Some(1)).unwrap(), LlamaPoolingType::Mean);
        assert_eq!(pooling_for(Some(2)).unwrap(), LlamaPoolingType::Cls);
        assert_eq!(pooling_for(Some(3)).unwrap(), LlamaPoolingType::Last);
        assert!(matches!(pooling_for(Some(4)), Err(LoadError::Unsupported(_))));
    }

    #[test]
    fn normalising_gives_unit_length_and_leaves_zero_alone() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }

    #[test]
    fn the_usage_of_a_call_sums_its_inputs() {
        let one = |prompt_tokens| Embedding { vector: vec![1.0], prompt_tokens };
        assert_eq!(Embeddings { data: vec![one(8), one(11), one(8)] }.prompt_tokens(), 27);
    }
}
