//! The `image` job class's worker: runs an ONNX image pipeline on ONNX Runtime and writes
//! reproducible PNGs. The node agent runs the `sgl-image` binary under bubblewrap with the job's
//! bundle read-only at `/in` and `/out` writable, no network; redundant nodes compare the decoded
//! pixels. The engine is opened at run time (`ORT_DYLIB_PATH`, or `--ort`), never downloaded or
//! linked, so every replica runs the library, and the version, its node names.
//!
//! # Reproducibility
//!
//! Same pipeline, seed, ONNX Runtime version, CPU class and thread count: same pixels. The noise
//! is ChaCha20 keyed by the seed, one stream per image ([`noise`]); transcendental maths on the
//! host side is `libm` (pure Rust); sessions run sequentially with deterministic compute; each
//! image is computed alone (batch 1), so image `i` is the same whether a run makes 1 or 100.
//! PNG files carry no time or text chunks. ONNX Runtime picks kernels by CPU features, so
//! replicas should compare within a CPU class.
//!
//! # `pipeline.json`
//!
//! Model paths are relative to the pipeline file and may not leave its folder. Unknown fields
//! are errors. `onnxruntime_version` (optional, both kinds) makes the worker refuse any other
//! version. `pixels` is `{"map": "linear", "min": lo, "max": hi}` (`lo` shown as 0, `hi` as 255,
//! clamped) or `{"map": "min-max"}` (each image stretched over its own finite range).
//!
//! A one-step (consistency) model, here the terrain UNet from PyPI `adaptive-terrain-diffusion`
//! 0.4.2 (`condition` is the difficulty label `(d - 1) / 99`; its output is in [-1, 1]):
//!
//! ```json
//! {
//!   "kind": "consistency",
//!   "model": "terrain_consistency_unet_difficulty100.onnx",
//!   "inputs": { "noise": "noisy", "sigma": "sigma", "condition": "difficulty" },
//!   "output": "denoised",
//!   "image": { "channels": 1, "height": 128, "width": 128 },
//!   "sigma": 80.0,
//!   "condition": 0.5,
//!   "pixels": { "map": "linear", "min": -1.0, "max": 1.0 },
//!   "onnxruntime_version": "1.32.0"
//! }
//! ```
//!
//! The noise input gets N(0, 1) noise times `sigma` (`[1, channels, height, width]`, float32),
//! the sigma and condition inputs `[1]` or a scalar as the graph declares; the output must be
//! `[1, channels, height, width]` float32. See `consistency.rs`.
//!
//! A text-to-image pipeline (text encoder, UNet, VAE decoder):
//!
//! ```json
//! {
//!   "kind": "text-to-image",
//!   "tokenizer": { "max_length": 16 },
//!   "text_encoder": { "model": "text_encoder.onnx", "input": "input_ids", "output": "embedding" },
//!   "unet": { "model": "unet.onnx", "latent_input": "latent", "sigma_input": "sigma",
//!             "text_input": "text", "output": "prediction", "prediction": "epsilon" },
//!   "vae_decoder": { "model": "vae_decoder.onnx", "input": "latent", "output": "image",
//!                    "latent_scale": 1.0 },
//!   "latent": { "channels": 4, "height": 8, "width": 8 },
//!   "schedule": { "steps": 4, "sigma_max": 10.0, "sigma_min": 0.1 },
//!   "image": { "channels": 3, "height": 16, "width": 16 },
//!   "pixels": { "map": "linear", "min": -1.0, "max": 1.0 }
//! }
//! ```
//!
//! The tokenizer is byte-level ([`tokenizer`]), the schedule geometric ([`schedule`]), the
//! sampler Euler (`text_to_image.rs`); `prediction` is `denoised` or `epsilon`.

mod consistency;
mod engine;
mod error;
mod generate;
mod model;
pub mod noise;
mod ort_version;
mod picture;
mod pipeline;
pub mod schedule;
mod text_to_image;
pub mod tokenizer;

pub use engine::{ENGINE_NAME, Engine};
pub use error::{EngineError, GenerateError, PipelineError};
pub use generate::{Generator, RunSettings, image_file_name, write_images};
pub use picture::Picture;
pub use pipeline::{
    ConsistencyInputs, ConsistencySpec, ImageSize, Pipeline, PipelineSpec, PixelMap, Prediction, ScheduleSpec,
    TextEncoderSpec, TextToImageSpec, TokenizerSpec, UnetSpec, VaeDecoderSpec,
};
