//! The `consistency` pipeline: one model call per image. The noise input is seeded N(0, 1)
//! noise (`noise.rs`) times `sigma`, shaped `[1, channels, height, width]`; the sigma input is
//! `sigma` and the optional condition input is `condition`, each `[1]` or a scalar as the graph
//! declares; the output, shaped like the noise, becomes the image.

use crate::engine::Engine;
use crate::error::GenerateError;
use crate::model::{Feed, Model};
use crate::noise;
use crate::picture::Picture;
use crate::pipeline::{ConsistencySpec, Pipeline};

/// A loaded consistency pipeline.
#[derive(Debug)]
pub(crate) struct ConsistencyRunner {
    spec: ConsistencySpec,
    model: Model,
    sigma_shape: Vec<i64>,
    condition_shape: Vec<i64>,
}

impl ConsistencyRunner {
    pub(crate) fn new(
        engine: &Engine,
        pipeline: &Pipeline,
        spec: &ConsistencySpec,
        threads: usize,
    ) -> Result<Self, GenerateError> {
        let path = pipeline.model_path(&spec.model)?;
        let model = Model::load(engine, &path, threads, &spec.output)?;
        let sigma_shape = model.scalar_shape(&spec.inputs.sigma)?;
        let condition_shape = match &spec.inputs.condition {
            Some(name) => model.scalar_shape(name)?,
            None => Vec::new(),
        };
        Ok(Self { spec: spec.clone(), model, sigma_shape, condition_shape })
    }

    /// Image `index` of a run seeded with `seed`.
    pub(crate) fn image(&mut self, seed: u64, index: u64) -> Result<Picture, GenerateError> {
        let spec = &self.spec;
        let shape = spec.image.batch_shape();
        let mut noisy = noise::gaussian(seed, index, spec.image.n_values());
        noisy.iter_mut().for_each(|v| *v *= spec.sigma);
        let mut feeds = vec![
            (spec.inputs.noise.as_str(), Feed::F32(shape.clone(), noisy)),
            (spec.inputs.sigma.as_str(), Feed::F32(self.sigma_shape.clone(), vec![spec.sigma])),
        ];
        if let (Some(name), Some(value)) = (&spec.inputs.condition, spec.condition) {
            feeds.push((name.as_str(), Feed::F32(self.condition_shape.clone(), vec![value])));
        }
        let output = self.model.run(feeds, &spec.output, Some(&shape))?;
        Ok(Picture::from_planar(&output.values, spec.image, spec.pixels))
    }
}
