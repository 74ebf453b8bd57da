//! Generating images: a [`Generator`] holds a loaded pipeline and makes image `index` of a run
//! seeded with `seed`, the same pixels whenever the engine version, CPU class and thread count
//! are the same; [`write_images`] writes a run's images as `image-0000.png`, `image-0001.png`, ….

use std::path::{Path, PathBuf};

use crate::consistency::ConsistencyRunner;
use crate::engine::Engine;
use crate::error::GenerateError;
use crate::picture::Picture;
use crate::pipeline::{Pipeline, PipelineSpec};
use crate::text_to_image::TextToImageRunner;

/// How to run a pipeline.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Intra-op threads per model (1 in verification mode).
    pub threads: usize,
    /// The prompt: required by `text-to-image`, refused by `consistency`.
    pub prompt: Option<String>,
}

/// A loaded pipeline, ready to make images.
#[derive(Debug)]
pub struct Generator {
    runner: Runner,
}

#[derive(Debug)]
enum Runner {
    Consistency(Box<ConsistencyRunner>),
    TextToImage(Box<TextToImageRunner>),
}

impl Generator {
    /// Loads the pipeline's models on `engine` (and encodes the prompt), checking the engine
    /// version the pipeline pins and that the prompt fits the pipeline kind.
    pub fn new(engine: &Engine, pipeline: &Pipeline, settings: &RunSettings) -> Result<Self, GenerateError> {
        if let Some(required) = pipeline.required_engine_version().filter(|v| *v != engine.version()) {
            return Err(GenerateError::EngineVersion {
                required: required.to_owned(),
                loaded: engine.version().to_owned(),
            });
        }
        let runner = match (pipeline.spec(), settings.prompt.as_deref()) {
            (PipelineSpec::Consistency(_), Some(_)) => return Err(GenerateError::PromptUnused),
            (PipelineSpec::TextToImage(_), None) => return Err(GenerateError::PromptRequired),
            (PipelineSpec::Consistency(spec), None) => {
                Runner::Consistency(Box::new(ConsistencyRunner::new(engine, pipeline, spec, settings.threads)?))
            }
            (PipelineSpec::TextToImage(spec), Some(prompt)) => {
                Runner::TextToImage(Box::new(TextToImageRunner::new(engine, pipeline, spec, settings.threads, prompt)?))
            }
        };
        Ok(Self { runner })
    }

    /// Image `index` of a run seeded with `seed`; it does not depend on any other image.
    pub fn image(&mut self, seed: u64, index: u64) -> Result<Picture, GenerateError> {
        match &mut self.runner {
            Runner::Consistency(runner) => runner.image(seed, index),
            Runner::TextToImage(runner) => runner.image(seed, index),
        }
    }
}

/// The file name of image `index`: `image-0000.png`.
pub fn image_file_name(index: u64) -> String {
    format!("image-{index:04}.png")
}

/// Makes images `0..count` of a run seeded with `seed` into `out` (created if missing) and
/// returns their paths.
pub fn write_images(
    generator: &mut Generator,
    seed: u64,
    count: u64,
    out: &Path,
) -> Result<Vec<PathBuf>, GenerateError> {
    std::fs::create_dir_all(out).map_err(|source| GenerateError::Write { path: out.into(), source })?;
    let mut paths = Vec::new();
    for index in 0..count {
        let png = generator.image(seed, index)?.to_png()?;
        let path = out.join(image_file_name(index));
        std::fs::write(&path, png).map_err(|source| GenerateError::Write { path: path.clone(), source })?;
        paths.push(path);
    }
    Ok(paths)
}
