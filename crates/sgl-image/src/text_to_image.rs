//! The `text-to-image` pipeline. The prompt is tokenised (`tokenizer.rs`) into a `[1, max_length]`
//! id tensor (int64, or int32 when the graph declares it) and encoded once per run. Each image
//! starts from a latent `x` of seeded N(0, 1) noise (`noise.rs`) times the first sigma; for each
//! pair of sigmas `s, s'` of the schedule (`schedule.rs`) the UNet gets `x`, `s` (`[1]` or a
//! scalar, as declared) and the text embedding, its output gives the clean estimate `d` (the
//! output itself, or `x - s * output` for epsilon prediction), and one Euler step moves
//! `x <- x + (x - d) / s * (s' - s)`. The last step lands at sigma 0; the decoder then gets
//! `x * latent_scale` and its output becomes the image. No classifier-free guidance.

use crate::engine::Engine;
use crate::error::GenerateError;
use crate::model::{Feed, Model};
use crate::picture::Picture;
use crate::pipeline::{Pipeline, Prediction, TextToImageSpec};
use crate::{noise, schedule, tokenizer};

/// A loaded text-to-image pipeline with its prompt already encoded.
#[derive(Debug)]
pub(crate) struct TextToImageRunner {
    spec: TextToImageSpec,
    unet: Model,
    vae_decoder: Model,
    text: Feed,
    sigma_shape: Vec<i64>,
    sigmas: Vec<f32>,
}

impl TextToImageRunner {
    pub(crate) fn new(
        engine: &Engine,
        pipeline: &Pipeline,
        spec: &TextToImageSpec,
        threads: usize,
        prompt: &str,
    ) -> Result<Self, GenerateError> {
        let text = encode_prompt(engine, pipeline, spec, threads, prompt)?;
        let unet = Model::load(engine, &pipeline.model_path(&spec.unet.model)?, threads, &spec.unet.output)?;
        let vae_path = pipeline.model_path(&spec.vae_decoder.model)?;
        let vae_decoder = Model::load(engine, &vae_path, threads, &spec.vae_decoder.output)?;
        let sigma_shape = unet.scalar_shape(&spec.unet.sigma_input)?;
        let sigmas = schedule::sigmas(spec.schedule.steps, spec.schedule.sigma_max, spec.schedule.sigma_min);
        Ok(Self { spec: spec.clone(), unet, vae_decoder, text, sigma_shape, sigmas })
    }

    /// Image `index` of a run seeded with `seed`.
    pub(crate) fn image(&mut self, seed: u64, index: u64) -> Result<Picture, GenerateError> {
        let latent_shape = self.spec.latent.batch_shape();
        let mut latent = noise::gaussian(seed, index, self.spec.latent.n_values());
        latent.iter_mut().for_each(|v| *v *= self.sigmas[0]);
        for step in 0..self.sigmas.len() - 1 {
            let (sigma, next) = (self.sigmas[step], self.sigmas[step + 1]);
            let prediction = self.denoise(&latent, &latent_shape, sigma)?;
            euler_step(&mut latent, &prediction, self.spec.unet.prediction, sigma, next);
        }
        latent.iter_mut().for_each(|v| *v *= self.spec.vae_decoder.latent_scale);
        let vae = &self.spec.vae_decoder;
        let image_shape = self.spec.image.batch_shape();
        let feeds = vec![(vae.input.as_str(), Feed::F32(latent_shape, latent))];
        let output = self.vae_decoder.run(feeds, &vae.output, Some(&image_shape))?;
        Ok(Picture::from_planar(&output.values, self.spec.image, self.spec.pixels))
    }

    /// The UNet's output for `latent` at `sigma`.
    fn denoise(&mut self, latent: &[f32], latent_shape: &[i64], sigma: f32) -> Result<Vec<f32>, GenerateError> {
        let unet = &self.spec.unet;
        let feeds = vec![
            (unet.latent_input.as_str(), Feed::F32(latent_shape.to_vec(), latent.to_vec())),
            (unet.sigma_input.as_str(), Feed::F32(self.sigma_shape.clone(), vec![sigma])),
            (unet.text_input.as_str(), self.text.clone()),
        ];
        Ok(self.unet.run(feeds, &unet.output, Some(latent_shape))?.values)
    }
}

/// Tokenises `prompt` and runs the text encoder once; its output is the UNet's text input.
fn encode_prompt(
    engine: &Engine,
    pipeline: &Pipeline,
    spec: &TextToImageSpec,
    threads: usize,
    prompt: &str,
) -> Result<Feed, GenerateError> {
    let encoder_spec = &spec.text_encoder;
    let path = pipeline.model_path(&encoder_spec.model)?;
    let mut encoder = Model::load(engine, &path, threads, &encoder_spec.output)?;
    let max_length = spec.tokenizer.max_length as usize;
    let ids = tokenizer::tokenize(prompt, max_length);
    let shape = vec![1, max_length as i64];
    let feed = match encoder.input_type(&encoder_spec.input)? {
        ort::value::TensorElementType::Int32 => Feed::I32(shape, ids.iter().map(|&id| id as i32).collect()),
        _ => Feed::I64(shape, ids),
    };
    let output = encoder.run(vec![(encoder_spec.input.as_str(), feed)], &encoder_spec.output, None)?;
    Ok(Feed::F32(output.shape, output.values))
}

/// One Euler step of the probability-flow ODE from `sigma` to `next`, in place.
fn euler_step(latent: &mut [f32], prediction: &[f32], kind: Prediction, sigma: f32, next: f32) {
    for (x, &p) in latent.iter_mut().zip(prediction) {
        let denoised = match kind {
            Prediction::Denoised => p,
            Prediction::Epsilon => *x - sigma * p,
        };
        let derivative = (*x - denoised) / sigma;
        *x += derivative * (next - sigma);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euler_step_to_zero_lands_on_the_clean_estimate() {
        let mut latent = vec![4.0, -2.0];
        euler_step(&mut latent, &[1.0, 0.5], Prediction::Denoised, 2.0, 0.0);
        assert_eq!(latent, vec![1.0, 0.5]);
        // Epsilon: clean = x - sigma * eps = [4 - 2*1, -2 - 2*(-1)] = [2, 0]; halfway to sigma 1.
        let mut latent = vec![4.0, -2.0];
        euler_step(&mut latent, &[1.0, -1.0], Prediction::Epsilon, 2.0, 1.0);
        assert_eq!(latent, vec![3.0, -1.0]);
    }
}
