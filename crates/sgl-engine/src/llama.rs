//! llama.cpp in process: the model is loaded once and shared; each parallel slot is a worker
//! thread with its own context (and KV cache), so `slots` jobs run at once and decoding never
//! touches the async runtime.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use sgl_protocol::api::inference::Usage;
use tokio::sync::mpsc;

use crate::model_file::{default_model_name, sha256_file};
use crate::template::ChatTemplate;
use crate::text::TextAssembler;
use crate::{Engine, EngineError, EngineEvent, FinishReason, GenerateRequest, Generation};

/// Events buffered between a worker and its consumer.
const EVENT_BUFFER: usize = 256;
/// A busy engine without progress for this long is unhealthy (seed §3.4).
const STALL_MS: i64 = 120_000;

/// How to load and run a model.
#[derive(Debug, Clone)]
pub struct LlamaOptions {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The advertised name; the file stem if not given.
    pub model_name: Option<String>,
    /// Per-slot context in tokens.
    pub context_size: u32,
    /// Parallel jobs.
    pub slots: u32,
    /// CPU threads in all, shared between slots.
    pub threads: u32,
    /// Layers offloaded to a GPU (99 for all).
    pub gpu_layers: u32,
    /// Prompt tokens decoded per batch.
    pub batch_size: u32,
}

/// The model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the model file failed.
    #[error("reading {path}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// llama.cpp refused the backend, the model or a context.
    #[error("llama.cpp: {0}")]
    Llama(String),
    /// The model loads but cannot serve what was asked of it (a reranker as an embedding model).
    #[error("unsupported model: {0}")]
    Unsupported(String),
}

/// The process-wide llama.cpp backend, initialised once (llama.cpp allows one).
pub(crate) fn backend() -> Result<&'static LlamaBackend, LoadError> {
    static BACKEND: OnceLock<Option<LlamaBackend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init().ok().map(|mut backend| {
                backend.void_logs();
                backend
            })
        })
        .as_ref()
        .ok_or_else(|| LoadError::Llama("the llama.cpp backend failed to initialise".into()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Default)]
struct Health {
    busy: AtomicUsize,
    last_progress_ms: AtomicI64,
}

struct Job {
    request: GenerateRequest,
    events: mpsc::Sender<EngineEvent>,
    cancel: Arc<AtomicBool>,
}

/// What a worker is asked to do.
enum Work {
    Generate(Job),
    Bench(DecodeBench, std_mpsc::Sender<Result<DecodeTiming, EngineError>>),
}

/// `llama-bench`'s workload, run on a serving slot's own context: `prompt_tokens` random tokens
/// decoded as one prompt (pp), then, from an empty cache, `generated_tokens` single-token decodes
/// of random tokens (tg). No sampling, no text: the decode speed alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeBench {
    /// Prompt tokens (llama-bench's `-p`, 512 by default).
    pub prompt_tokens: u32,
    /// Generated tokens (llama-bench's `-n`, 128 by default).
    pub generated_tokens: u32,
    /// Seeds the random tokens.
    pub seed: u64,
}

/// How long each half of a [`DecodeBench`] took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeTiming {
    /// Decoding the prompt.
    pub prompt: Duration,
    /// All single-token decodes.
    pub generation: Duration,
}

/// The in-process engine.
#[derive(Debug)]
pub struct LlamaEngine {
    model_name: String,
    model_sha256: String,
    slots: u32,
    context_size: u32,
    jobs: Mutex<std_mpsc::Sender<Work>>,
    health: Arc<Health>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl LlamaEngine {
    /// Hashes and loads the model, reporting load progress (0.0 to 1.0), and starts one worker
    /// thread per slot. Blocking: call it off the async runtime.
    pub fn load(options: &LlamaOptions, mut progress: impl FnMut(f32) + Send + 'static) -> Result<Self, LoadError> {
        let io_error = |source| LoadError::Io { path: options.model_path.clone(), source };
        let model_sha256 = sha256_file(&options.model_path).map_err(io_error)?;
        let backend = backend()?;
        let params =
            LlamaModelParams::default().with_n_gpu_layers(options.gpu_layers).with_progress_callback(move |p| {
                progress(p);
                true
            });
        let model = Arc::new(
            LlamaModel::load_from_file(backend, &options.model_path, &params)
                .map_err(|e| LoadError::Llama(e.to_string()))?,
        );
        let vocab = model.vocab();
        let token_text = |token| String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned();
        let template = ChatTemplate::choose(
            model.meta_val_str("tokenizer.chat_template").ok(),
            &model.meta_val_str("general.architecture").unwrap_or_default(),
            &token_text(vocab.bos()),
            &token_text(vocab.eos()),
        );
        let slots = options.slots.max(1);
        let threads_per_slot = i32::try_from((options.threads / slots).max(1)).unwrap_or(1);
        let (jobs, queue) = std_mpsc::channel::<Work>();
        let queue = Arc::new(Mutex::new(queue));
        let health = Arc::new(Health::default());
        let (ready_tx, ready_rx) = std_mpsc::channel();
        for slot in 0..slots {
            let worker = Worker {
                model: Arc::clone(&model),
                template: template.clone(),
                context_size: options.context_size,
                batch_size: options.batch_size.max(1),
                threads: threads_per_slot,
                health: Arc::clone(&health),
            };
            let (queue, ready_tx) = (Arc::clone(&queue), ready_tx.clone());
            std::thread::Builder::new()
                .name(format!("sgl-inference-{slot}"))
                .spawn(move || worker.run(&queue, &ready_tx))
                .map_err(|e| LoadError::Llama(format!("starting a worker thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..slots {
            ready_rx.recv().map_err(|_| LoadError::Llama("a worker died while starting".into()))??;
        }
        Ok(Self {
            model_name: options.model_name.clone().unwrap_or_else(|| default_model_name(&options.model_path)),
            model_sha256,
            slots,
            context_size: options.context_size,
            jobs: Mutex::new(jobs),
            health,
        })
    }

    /// Runs `workload` on the next free slot and waits for it: the engine's decode speed with
    /// its serving configuration (threads, batch, context), measured the way `llama-bench`
    /// measures. Blocking: call it off the async runtime.
    pub fn bench_decode(&self, workload: DecodeBench) -> Result<DecodeTiming, EngineError> {
        let (reply, timing) = std_mpsc::channel();
        let sent = self.jobs.lock().map(|jobs| jobs.send(Work::Bench(workload, reply)).is_ok()).unwrap_or(false);
        if !sent {
            return Err(EngineError::Stopped);
        }
        timing.recv().map_err(|_| EngineError::Stopped)?
    }
}

impl Engine for LlamaEngine {
    fn model_name(&self) -> &str {
        &self.model_name
    }

    fn model_sha256(&self) -> Option<&str> {
        Some(&self.model_sha256)
    }

    fn slots(&self) -> u32 {
        self.slots
    }

    fn context_size(&self) -> u32 {
        self.context_size
    }

    fn generate(&self, request: GenerateRequest) -> Generation {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job { request, events: events.clone(), cancel: Arc::clone(&cancel) };
        let sent = self.jobs.lock().map(|jobs| jobs.send(Work::Generate(job)).is_ok()).unwrap_or(false);
        if !sent {
            let _ = events.try_send(EngineEvent::Failed(EngineError::Stopped));
        }
        Generation::new(receiver, cancel)
    }

    fn is_healthy(&self) -> bool {
        self.health.busy.load(Ordering::Relaxed) == 0
            || now_ms() - self.health.last_progress_ms.load(Ordering::Relaxed) < STALL_MS
    }
}

/// One slot: a thread with its own context.
struct Worker {
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    context_size: u32,
    batch_size: u32,
    threads: i32,
    health: Arc<Health>,
}

impl Worker {
    fn run(self, queue: &Mutex<std_mpsc::Receiver<Work>>, ready: &std_mpsc::Sender<Result<(), LoadError>>) {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.context_size.max(64)))
            .with_n_batch(self.batch_size)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let backend = match backend() {
            Ok(backend) => backend,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let mut context = match self.model.new_context(backend, params) {
            Ok(context) => context,
            Err(error) => {
                let _ = ready.send(Err(LoadError::Llama(format!("creating a context: {error}"))));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            let job = match queue.lock() {
                Ok(queue) => queue.recv(),
                Err(_) => return,
            };
            let job = match job {
                Ok(Work::Generate(job)) => job,
                Ok(Work::Bench(workload, reply)) => {
                    let _ = reply.send(self.bench(&mut context, workload));
                    continue;
                }
                Err(_) => return,
            };
            self.health.busy.fetch_add(1, Ordering::Relaxed);
            self.health.last_progress_ms.store(now_ms(), Ordering::Relaxed);
            let outcome = self.generate(&mut context, &job);
            let last = match outcome {
                Ok((usage, finish_reason)) => EngineEvent::Done { usage, finish_reason },
                Err(error) => EngineEvent::Failed(error),
            };
            let _ = job.events.blocking_send(last);
            self.health.busy.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn generate(
        &self,
        context: &mut llama_cpp_2::context::LlamaContext<'_>,
        job: &Job,
    ) -> Result<(Usage, FinishReason), EngineError> {
        let sampling = &job.request.sampling;
        let prompt =
            self.template.render(&job.request.messages).map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        let n_ctx = context.n_ctx() as usize;
        if tokens.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        if tokens.len() >= n_ctx {
            return Err(EngineError::PromptTooLarge { prompt_tokens: tokens.len(), context_size: self.context_size });
        }
        let inference = |e: &dyn std::fmt::Display| EngineError::Inference(e.to_string());
        context.clear_kv_cache();
        let batch_size = self.batch_size as usize;
        let mut batch = LlamaBatch::new(batch_size.max(1), 1);
        for (chunk_idx, chunk) in tokens.chunks(batch_size).enumerate() {
            batch.clear();
            let base = chunk_idx * batch_size;
            for (offset, token) in chunk.iter().enumerate() {
                let position = i32::try_from(base + offset).unwrap_or(i32::MAX);
                let last = base + offset == tokens.len() - 1;
                batch.add(*token, position, &[0], last).map_err(|e| inference(&e))?;
            }
            context.decode(&mut batch).map_err(|e| inference(&e))?;
            if job.cancel.load(Ordering::Relaxed) {
                return Ok((Usage::new(tokens.len() as u64, 0), FinishReason::Cancelled));
            }
        }
        let mut sampler = sampler(sampling);
        let mut assembler = TextAssembler::new(sampling.stop.clone());
        let mut n_past = tokens.len();
        let mut n_completion: u64 = 0;
        let finish = loop {
            if job.cancel.load(Ordering::Relaxed) {
                break FinishReason::Cancelled;
            }
            let token = sampler.sample(context, batch.n_tokens() - 1);
            n_completion += 1;
            self.health.last_progress_ms.store(now_ms(), Ordering::Relaxed);
            // The end-of-generation token counts, as llama-server counts it.
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            let text = assembler.push(&vocab.token_to_piece(token, false, None));
            if !text.is_empty() && job.events.blocking_send(EngineEvent::Text(text)).is_err() {
                break FinishReason::Cancelled;
            }
            if assembler.stopped() {
                break FinishReason::Stop;
            }
            if n_completion >= u64::from(sampling.max_tokens) || n_past + 1 >= n_ctx {
                break FinishReason::Length;
            }
            batch.clear();
            batch.add(token, i32::try_from(n_past).unwrap_or(i32::MAX), &[0], true).map_err(|e| inference(&e))?;
            n_past += 1;
            context.decode(&mut batch).map_err(|e| inference(&e))?;
        };
        let rest = assembler.finish();
        if !rest.is_empty() && finish != FinishReason::Cancelled {
            let _ = job.events.blocking_send(EngineEvent::Text(rest));
        }
        Ok((Usage::new(tokens.len() as u64, n_completion), finish))
    }
}

impl Worker {
    /// llama-bench's `test_prompt` then `test_gen`, on this slot's context.
    fn bench(
        &self,
        context: &mut llama_cpp_2::context::LlamaContext<'_>,
        workload: DecodeBench,
    ) -> Result<DecodeTiming, EngineError> {
        let inference = |e: &dyn std::fmt::Display| EngineError::Inference(e.to_string());
        let n_vocab = u64::try_from(self.model.n_vocab()).unwrap_or(1).max(1);
        let mut state = workload.seed | 1;
        let mut random_token = || {
            // xorshift64: any spread of token ids does; llama-bench uses `rand() % n_vocab`.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            LlamaToken(i32::try_from(state % n_vocab).unwrap_or(0))
        };
        let n_prompt = workload.prompt_tokens as usize;
        if n_prompt + workload.generated_tokens as usize >= context.n_ctx() as usize {
            return Err(EngineError::InvalidRequest("the workload does not fit the context".into()));
        }

        context.clear_kv_cache();
        let started = Instant::now();
        let batch_size = (self.batch_size as usize).max(1);
        let mut batch = LlamaBatch::new(batch_size, 1);
        let mut position = 0;
        while position < n_prompt {
            batch.clear();
            let end = (position + batch_size).min(n_prompt);
            for pos in position..end {
                let pos_i32 = i32::try_from(pos).unwrap_or(i32::MAX);
                batch.add(random_token(), pos_i32, &[0], pos == n_prompt - 1).map_err(|e| inference(&e))?;
            }
            context.decode(&mut batch).map_err(|e| inference(&e))?;
            position = end;
        }
        context.synchronize();
        let prompt = started.elapsed();

        context.clear_kv_cache();
        let started = Instant::now();
        let mut token = self.model.vocab().bos();
        for pos in 0..workload.generated_tokens {
            batch.clear();
            batch.add(token, i32::try_from(pos).unwrap_or(i32::MAX), &[0], true).map_err(|e| inference(&e))?;
            context.decode(&mut batch).map_err(|e| inference(&e))?;
            context.synchronize();
            token = random_token();
        }
        let generation = started.elapsed();
        context.clear_kv_cache();
        Ok(DecodeTiming { prompt, generation })
    }
}

/// How the next token is chosen.
enum Sampler {
    /// The most likely token, read straight from the logits. llama.cpp's greedy sampler gives
    /// the same token (the first of equal maxima) but first copies all 262,144 candidates of
    /// Gemma's vocabulary into a fresh array, which cost about 2 ms a token here.
    Greedy,
    /// llama.cpp's sampler chain.
    Chain(LlamaSampler),
}

impl Sampler {
    fn sample(&mut self, context: &llama_cpp_2::context::LlamaContext<'_>, index: i32) -> LlamaToken {
        match self {
            Self::Greedy => LlamaToken(argmax(context.get_logits_ith(index))),
            Self::Chain(chain) => chain.sample(context, index),
        }
    }
}

/// The index of the first largest value (0 for an empty slice).
fn argmax(values: &[f32]) -> i32 {
    let mut best = 0;
    for (index, value) in values.iter().enumerate() {
        if *value > values[best] {
            best = index;
        }
    }
    i32::try_from(best).unwrap_or(0)
}

/// Greedy at temperature 0; otherwise top-k, top-p, min-p, temperature, then a seeded draw.
fn sampler(sampling: &crate::Sampling) -> Sampler {
    if sampling.temperature <= 0.0 {
        return Sampler::Greedy;
    }
    let mut chain = Vec::new();
    if let Some(k) = sampling.top_k {
        chain.push(LlamaSampler::top_k(k));
    }
    if let Some(p) = sampling.top_p {
        chain.push(LlamaSampler::top_p(p, 1));
    }
    if let Some(p) = sampling.min_p {
        chain.push(LlamaSampler::min_p(p, 1));
    }
    chain.push(LlamaSampler::temp(sampling.temperature));
    chain.push(LlamaSampler::dist(sampling.seed));
    Sampler::Chain(LlamaSampler::chain_simple(chain))
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima_as_llama_cpp_s_greedy_sampler_does() {
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0, 1.9]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0]), 1);
        assert_eq!(argmax(&[7.0]), 0);
        assert_eq!(argmax(&[]), 0);
    }
}
