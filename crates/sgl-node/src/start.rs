//! `sgl start`: the seed's flags, the resource preset (§3.5, but `--resource-percent` now also
//! scales the job slots, as its help always claimed), the engine, the embedding model, and the
//! agent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sgl_engine::Engine;
use sgl_engine::embed::{EmbedOptions, Embedder};
use sgl_engine::llama::{LlamaEngine, LlamaOptions, LoadError};

/// Which engine serves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// llama.cpp inside this process (the default).
    #[default]
    InProcess,
    /// A supervised llama-server child.
    LlamaServer,
    /// Any OpenAI-compatible server at `--engine-url`.
    Url,
}

impl EngineKind {
    /// The name `--engine` takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "inprocess",
            Self::LlamaServer => "llama-server",
            Self::Url => "url",
        }
    }
}

/// `SGL_ENGINE` or `--engine` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?}: expected inprocess, llama-server or url")]
pub struct UnknownEngine(String);

impl std::str::FromStr for EngineKind {
    type Err = UnknownEngine;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "inprocess" | "in-process" => Ok(Self::InProcess),
            "llama-server" | "server" => Ok(Self::LlamaServer),
            "url" | "upstream" => Ok(Self::Url),
            other => Err(UnknownEngine(other.to_owned())),
        }
    }
}

/// Threads, GPU layers and slots from `--resource-percent` and the explicit flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// CPU threads in all.
    pub threads: u32,
    /// Layers offloaded to a GPU.
    pub gpu_layers: u32,
    /// Parallel jobs.
    pub slots: u32,
}

impl Preset {
    /// The seed's formula for threads and GPU layers (`threads = ceil(cpus × p / 100)`,
    /// `gpu_layers = 99` from 50 % up, else `round(99 × p / 100)`), and slots scaled the same
    /// way from `--max-jobs` (`ceil(max_jobs × p / 100)`, at least 1). Explicit flags win.
    pub fn compute(
        cpus: u32,
        resource_percent: u8,
        max_jobs: u32,
        threads: Option<u32>,
        gpu_layers: Option<u32>,
    ) -> Self {
        let p = u32::from(resource_percent.clamp(1, 100));
        let scaled = |n: u32| (n * p).div_ceil(100).max(1);
        Self {
            threads: threads.unwrap_or_else(|| scaled(cpus.max(1))).max(1),
            gpu_layers: gpu_layers.unwrap_or(if p >= 50 { 99 } else { (99 * p + 50) / 100 }),
            slots: scaled(max_jobs.max(1)),
        }
    }
}

/// The watchdog's patience for a model file of `bytes` (seed §3.8: it must exceed the grid's
/// stuck-job limit for models of that size).
pub fn watchdog_after(bytes: u64) -> Duration {
    const GB: u64 = 1_000_000_000;
    Duration::from_millis(match bytes {
        b if b < 11 * GB => 600_000,
        b if b < 40 * GB => 1_200_000,
        _ => 2_100_000,
    })
}

/// What the in-process engine needs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The GGUF.
    pub model_path: PathBuf,
    /// The advertised name; the file stem when absent.
    pub model_name: Option<String>,
    /// Per-slot context.
    pub context_size: u32,
    /// Prompt batch size.
    pub batch_size: u32,
    /// The preset.
    pub preset: Preset,
}

/// Loads the in-process engine off the async runtime, reporting progress from 0.0 to 1.0.
pub async fn load_in_process(
    options: EngineOptions,
    progress: impl FnMut(f32) + Send + 'static,
) -> Result<Arc<dyn Engine>, LoadError> {
    let llama = LlamaOptions {
        model_path: options.model_path,
        model_name: options.model_name,
        context_size: options.context_size,
        slots: options.preset.slots,
        threads: options.preset.threads,
        gpu_layers: options.preset.gpu_layers,
        batch_size: options.batch_size,
    };
    let engine = tokio::task::spawn_blocking(move || LlamaEngine::load(&llama, progress))
        .await
        .map_err(|e| LoadError::Llama(format!("the loader thread failed: {e}")))??;
    Ok(Arc::new(engine))
}

/// Loads an embedding model off the async runtime, with the preset's threads and GPU layers.
pub async fn load_embedder(
    model_path: PathBuf,
    model_name: Option<String>,
    preset: Preset,
) -> Result<Arc<Embedder>, LoadError> {
    let options = EmbedOptions {
        model_path,
        model_name,
        threads: preset.threads,
        gpu_layers: preset.gpu_layers,
        max_input_tokens: None,
    };
    let embedder = tokio::task::spawn_blocking(move || Embedder::load(&options))
        .await
        .map_err(|e| LoadError::Llama(format!("the loader thread failed: {e}")))??;
    Ok(Arc::new(embedder))
}

#[cfg(test)]
mod tests {
    //! The preset and the engine names.

    use super::*;

    #[test]
    fn preset_follows_the_seed_and_scales_slots() {
        assert_eq!(Preset::compute(8, 100, 1, None, None), Preset { threads: 8, gpu_layers: 99, slots: 1 });
        assert_eq!(Preset::compute(8, 50, 4, None, None), Preset { threads: 4, gpu_layers: 99, slots: 2 });
        assert_eq!(Preset::compute(8, 25, 4, None, None), Preset { threads: 2, gpu_layers: 25, slots: 1 });
        assert_eq!(Preset::compute(2, 1, 1, None, None), Preset { threads: 1, gpu_layers: 1, slots: 1 });
        assert_eq!(Preset::compute(8, 30, 3, Some(7), Some(0)), Preset { threads: 7, gpu_layers: 0, slots: 1 });
    }

    #[test]
    fn engine_names_and_watchdog_sizes() {
        assert_eq!("In-Process".parse::<EngineKind>().unwrap(), EngineKind::InProcess);
        assert_eq!("llama-server".parse::<EngineKind>().unwrap(), EngineKind::LlamaServer);
        assert_eq!("url".parse::<EngineKind>().unwrap(), EngineKind::Url);
        assert!("vllm".parse::<EngineKind>().unwrap_err().to_string().contains("inprocess, llama-server or url"));
        assert_eq!(watchdog_after(300_000_000), Duration::from_secs(600));
        assert_eq!(watchdog_after(20_000_000_000), Duration::from_secs(1200));
        assert_eq!(watchdog_after(70_000_000_000), Duration::from_secs(2100));
    }
}
