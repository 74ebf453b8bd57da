//! `pipeline.json`: what to run (the format is described in the crate documentation). A
//! [`Pipeline`] exists only validated: every size positive, every number finite, the sigmas in
//! order, every model file present next to the pipeline file.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::PipelineError;

/// Largest image or latent side the worker accepts.
const MAX_SIDE: u32 = 8192;
/// Longest token sequence the worker accepts.
const MAX_TOKENS: u32 = 4096;
/// Most sampler steps the worker accepts.
const MAX_STEPS: u32 = 1000;

/// A validated pipeline and the folder its model paths are relative to.
#[derive(Debug, Clone)]
pub struct Pipeline {
    dir: PathBuf,
    spec: PipelineSpec,
}

/// The two pipeline kinds, as written in `pipeline.json` (`"kind"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PipelineSpec {
    /// A one-step model: noise in, image out.
    Consistency(ConsistencySpec),
    /// Text encoder, UNet sampled over a few Euler steps, VAE decoder.
    TextToImage(TextToImageSpec),
}

/// A one-step (consistency) model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencySpec {
    /// The ONNX model, relative to the pipeline file.
    pub model: PathBuf,
    /// The model's input names.
    pub inputs: ConsistencyInputs,
    /// The model's output name: a `[1, channels, height, width]` float tensor.
    pub output: String,
    /// The image the model makes (and the noise it takes).
    pub image: ImageSize,
    /// The noise level: the noise input is N(0, 1) noise times `sigma`, and the sigma input is `sigma`.
    pub sigma: f32,
    /// The conditioning scalar; present exactly when `inputs.condition` is.
    #[serde(default)]
    pub condition: Option<f32>,
    /// How output values become 8-bit pixels.
    pub pixels: PixelMap,
    /// When set, the worker refuses to run on any other ONNX Runtime version.
    #[serde(default)]
    pub onnxruntime_version: Option<String>,
}

/// The input names of a consistency model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyInputs {
    /// The noisy image, `[1, channels, height, width]` float.
    pub noise: String,
    /// The noise level, `[1]` or a scalar, float.
    pub sigma: String,
    /// The conditioning scalar, `[1]` or a scalar, float.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A text-to-image pipeline of three models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextToImageSpec {
    /// The byte-level tokenizer's settings.
    pub tokenizer: TokenizerSpec,
    /// Token ids in, a float embedding out.
    pub text_encoder: TextEncoderSpec,
    /// The denoiser, called once per step.
    pub unet: UnetSpec,
    /// Latent in, image out.
    pub vae_decoder: VaeDecoderSpec,
    /// The latent's size (`[1, channels, height, width]`).
    pub latent: ImageSize,
    /// The sigma schedule.
    pub schedule: ScheduleSpec,
    /// The image the decoder makes.
    pub image: ImageSize,
    /// How decoder output values become 8-bit pixels.
    pub pixels: PixelMap,
    /// When set, the worker refuses to run on any other ONNX Runtime version.
    #[serde(default)]
    pub onnxruntime_version: Option<String>,
}

/// The byte-level tokenizer (see `tokenizer.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    /// The id tensor's fixed length, `BOS` and `EOS` included.
    pub max_length: u32,
}

/// The text encoder's file and names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderSpec {
    /// The ONNX model, relative to the pipeline file.
    pub model: PathBuf,
    /// The token id input, `[1, max_length]`, int64 or int32.
    pub input: String,
    /// The embedding output, float, any shape; fed to the UNet as it is.
    pub output: String,
}

/// The UNet's file and names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetSpec {
    /// The ONNX model, relative to the pipeline file.
    pub model: PathBuf,
    /// The noisy latent input.
    pub latent_input: String,
    /// The noise level input, `[1]` or a scalar.
    pub sigma_input: String,
    /// The text embedding input.
    pub text_input: String,
    /// The prediction output, shaped like the latent.
    pub output: String,
    /// What the output predicts.
    pub prediction: Prediction,
}

/// What a UNet's output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// The clean latent itself.
    Denoised,
    /// The noise: the clean latent is `x - sigma * output`.
    Epsilon,
}

/// The VAE decoder's file and names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeDecoderSpec {
    /// The ONNX model, relative to the pipeline file.
    pub model: PathBuf,
    /// The latent input.
    pub input: String,
    /// The image output, `[1, image.channels, image.height, image.width]` float.
    pub output: String,
    /// The latent is multiplied by this before decoding (1 unless given).
    #[serde(default = "one")]
    pub latent_scale: f32,
}

/// The sigma schedule (see `schedule.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// How many UNet calls.
    pub steps: u32,
    /// The first (largest) sigma.
    pub sigma_max: f32,
    /// The last sigma before zero.
    pub sigma_min: f32,
}

/// A tensor's image dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSize {
    /// Channels (for an image: 1, grey, or 3, RGB).
    pub channels: u32,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

impl ImageSize {
    /// The `[1, channels, height, width]` tensor shape.
    pub fn batch_shape(&self) -> Vec<i64> {
        vec![1, i64::from(self.channels), i64::from(self.height), i64::from(self.width)]
    }

    /// How many values a `[1, channels, height, width]` tensor holds.
    pub fn n_values(&self) -> usize {
        self.channels as usize * self.height as usize * self.width as usize
    }
}

/// How float outputs become 8-bit pixels: `round(255 * clamp((v - lo) / (hi - lo), 0, 1))`, NaN
/// as 0.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "map", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PixelMap {
    /// `lo` and `hi` fixed.
    Linear {
        /// The value shown as 0.
        min: f32,
        /// The value shown as 255.
        max: f32,
    },
    /// `lo` and `hi` the smallest and largest finite value of each image (all 0 when equal).
    MinMax,
}

fn one() -> f32 {
    1.0
}

impl Pipeline {
    /// Reads and validates `path`; model paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Read { path: path.into(), source })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let spec = serde_json::from_str(&text).map_err(|source| PipelineError::Parse { path: path.into(), source })?;
        Self::new(spec, dir)
    }

    /// Validates `spec`, whose model paths are relative to `dir`.
    pub fn new(spec: PipelineSpec, dir: &Path) -> Result<Self, PipelineError> {
        match &spec {
            PipelineSpec::Consistency(consistency) => validate_consistency(consistency)?,
            PipelineSpec::TextToImage(text_to_image) => validate_text_to_image(text_to_image)?,
        }
        let pipeline = Self { dir: dir.to_path_buf(), spec };
        for model in pipeline.model_files() {
            pipeline.model_path(model)?;
        }
        Ok(pipeline)
    }

    /// What the pipeline runs.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The ONNX Runtime version the pipeline pins, if it pins one.
    pub fn required_engine_version(&self) -> Option<&str> {
        match &self.spec {
            PipelineSpec::Consistency(spec) => spec.onnxruntime_version.as_deref(),
            PipelineSpec::TextToImage(spec) => spec.onnxruntime_version.as_deref(),
        }
    }

    /// Every model file, as written in the pipeline.
    pub fn model_files(&self) -> Vec<&Path> {
        match &self.spec {
            PipelineSpec::Consistency(spec) => vec![&spec.model],
            PipelineSpec::TextToImage(spec) => {
                vec![&spec.text_encoder.model, &spec.unet.model, &spec.vae_decoder.model]
            }
        }
    }

    /// Where a model named in the pipeline is: relative to the pipeline's folder, never outside it.
    pub fn model_path(&self, relative: &Path) -> Result<PathBuf, PipelineError> {
        let inside = relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || relative.as_os_str().is_empty() {
            return Err(PipelineError::ModelPathNotRelative { path: relative.into() });
        }
        let path = self.dir.join(relative);
        if !path.is_file() {
            return Err(PipelineError::ModelMissing { path });
        }
        Ok(path)
    }
}

fn invalid(field: &'static str, reason: &'static str) -> PipelineError {
    PipelineError::Invalid { field, reason }
}

fn check_name(field: &'static str, name: &str) -> Result<(), PipelineError> {
    if name.is_empty() { Err(invalid(field, "must not be empty")) } else { Ok(()) }
}

fn check_positive(field: &'static str, value: f32) -> Result<(), PipelineError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(invalid(field, "must be a finite number above 0")) }
}

fn check_size(field: &'static str, size: &ImageSize) -> Result<(), PipelineError> {
    if size.channels == 0 || size.height == 0 || size.width == 0 {
        return Err(invalid(field, "must have channels, height and width above 0"));
    }
    if size.height > MAX_SIDE || size.width > MAX_SIDE || size.channels > 64 {
        return Err(invalid(field, "is too large (sides up to 8192, up to 64 channels)"));
    }
    Ok(())
}

fn check_image(field: &'static str, size: &ImageSize) -> Result<(), PipelineError> {
    check_size(field, size)?;
    if size.channels != 1 && size.channels != 3 {
        return Err(invalid(field, "must have 1 (grey) or 3 (RGB) channels"));
    }
    Ok(())
}

fn check_pixels(map: &PixelMap) -> Result<(), PipelineError> {
    match *map {
        PixelMap::Linear { min, max } if !(min.is_finite() && max.is_finite() && min < max) => {
            Err(invalid("pixels", "must have finite min below max"))
        }
        _ => Ok(()),
    }
}

fn validate_consistency(spec: &ConsistencySpec) -> Result<(), PipelineError> {
    check_name("inputs.noise", &spec.inputs.noise)?;
    check_name("inputs.sigma", &spec.inputs.sigma)?;
    check_name("output", &spec.output)?;
    if spec.inputs.noise == spec.inputs.sigma {
        return Err(invalid("inputs.sigma", "must differ from inputs.noise"));
    }
    check_image("image", &spec.image)?;
    check_positive("sigma", spec.sigma)?;
    check_pixels(&spec.pixels)?;
    match (&spec.inputs.condition, spec.condition) {
        (Some(name), Some(value)) => {
            check_name("inputs.condition", name)?;
            if *name == spec.inputs.noise || *name == spec.inputs.sigma {
                return Err(invalid("inputs.condition", "must differ from the other inputs"));
            }
            if !value.is_finite() {
                return Err(invalid("condition", "must be a finite number"));
            }
            Ok(())
        }
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid("condition", "is required when inputs.condition is set")),
        (None, Some(_)) => Err(invalid("inputs.condition", "is required when condition is set")),
    }
}

fn validate_text_to_image(spec: &TextToImageSpec) -> Result<(), PipelineError> {
    if !(2..=MAX_TOKENS).contains(&spec.tokenizer.max_length) {
        return Err(invalid("tokenizer.max_length", "must be from 2 to 4096"));
    }
    check_name("text_encoder.input", &spec.text_encoder.input)?;
    check_name("text_encoder.output", &spec.text_encoder.output)?;
    check_name("unet.latent_input", &spec.unet.latent_input)?;
    check_name("unet.sigma_input", &spec.unet.sigma_input)?;
    check_name("unet.text_input", &spec.unet.text_input)?;
    check_name("unet.output", &spec.unet.output)?;
    let unet = &spec.unet;
    if unet.latent_input == unet.sigma_input
        || unet.latent_input == unet.text_input
        || unet.sigma_input == unet.text_input
    {
        return Err(invalid("unet", "must name three different inputs"));
    }
    check_name("vae_decoder.input", &spec.vae_decoder.input)?;
    check_name("vae_decoder.output", &spec.vae_decoder.output)?;
    if !(spec.vae_decoder.latent_scale.is_finite() && spec.vae_decoder.latent_scale != 0.0) {
        return Err(invalid("vae_decoder.latent_scale", "must be a finite number other than 0"));
    }
    check_size("latent", &spec.latent)?;
    check_image("image", &spec.image)?;
    check_pixels(&spec.pixels)?;
    let schedule = &spec.schedule;
    if !(1..=MAX_STEPS).contains(&schedule.steps) {
        return Err(invalid("schedule.steps", "must be from 1 to 1000"));
    }
    check_positive("schedule.sigma_min", schedule.sigma_min)?;
    check_positive("schedule.sigma_max", schedule.sigma_max)?;
    if schedule.sigma_max < schedule.sigma_min {
        return Err(invalid("schedule.sigma_max", "must not be below schedule.sigma_min"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
