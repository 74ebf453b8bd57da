//! One ONNX model in a session, fed and read by name with every name, element type and shape
//! checked against the graph's own declarations, so that a pipeline naming the wrong input or
//! size gets a [`GenerateError`] that says which, not an engine message.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::session::SessionInputValue;
use ort::value::{Outlet, Tensor, TensorElementType, ValueType};

use crate::engine::Engine;
use crate::error::GenerateError;

/// A tensor to feed: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Feed {
    F32(Vec<i64>, Vec<f32>),
    I64(Vec<i64>, Vec<i64>),
    I32(Vec<i64>, Vec<i32>),
}

impl Feed {
    fn shape(&self) -> &[i64] {
        match self {
            Feed::F32(shape, _) | Feed::I64(shape, _) | Feed::I32(shape, _) => shape,
        }
    }

    fn element_type(&self) -> TensorElementType {
        match self {
            Feed::F32(..) => TensorElementType::Float32,
            Feed::I64(..) => TensorElementType::Int64,
            Feed::I32(..) => TensorElementType::Int32,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Feed::F32(..) => "float32",
            Feed::I64(..) => "int64",
            Feed::I32(..) => "int32",
        }
    }

    fn into_input(self) -> ort::Result<SessionInputValue<'static>> {
        Ok(match self {
            Feed::F32(shape, values) => Tensor::from_array((shape, values))?.into(),
            Feed::I64(shape, values) => Tensor::from_array((shape, values))?.into(),
            Feed::I32(shape, values) => Tensor::from_array((shape, values))?.into(),
        })
    }
}

/// A float output: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Output {
    pub(crate) shape: Vec<i64>,
    pub(crate) values: Vec<f32>,
}

/// A loaded model.
pub(crate) struct Model {
    path: PathBuf,
    session: Session,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.path).finish()
    }
}

impl Model {
    /// Loads `path` and checks that `output` is one of its float outputs.
    pub(crate) fn load(engine: &Engine, path: &Path, threads: usize, output: &str) -> Result<Self, GenerateError> {
        let session =
            engine.session(path, threads).map_err(|source| GenerateError::Session { model: path.into(), source })?;
        let model = Self { path: path.into(), session };
        model.check_output(output)?;
        Ok(model)
    }

    /// The feed shape for a scalar input: `[]` when the graph declares a scalar, else `[1]`.
    pub(crate) fn scalar_shape(&self, input: &str) -> Result<Vec<i64>, GenerateError> {
        let (_, declared) = self.declared(input)?;
        Ok(if declared.is_empty() { Vec::new() } else { vec![1] })
    }

    /// The element type of `input`.
    pub(crate) fn input_type(&self, input: &str) -> Result<TensorElementType, GenerateError> {
        Ok(self.declared(input)?.0)
    }

    /// Runs the model on `feeds` (every graph input, by name) and returns the float `output`,
    /// which must have the shape `expected` when given.
    pub(crate) fn run(
        &mut self,
        feeds: Vec<(&str, Feed)>,
        output: &str,
        expected: Option<&[i64]>,
    ) -> Result<Output, GenerateError> {
        self.check_feeds(&feeds)?;
        let mut inputs = Vec::with_capacity(feeds.len());
        for (name, feed) in feeds {
            let value = feed.into_input().map_err(|source| self.run_error(source))?;
            inputs.push((name.to_owned(), value));
        }
        let path = self.path.clone();
        let run_error = |source| GenerateError::Run { model: path.clone(), source };
        let outputs = self.session.run(inputs).map_err(run_error)?;
        let value = outputs.get(output).ok_or_else(|| GenerateError::UnknownOutput {
            model: path.clone(),
            name: output.to_owned(),
            available: outputs.keys().map(str::to_owned).collect(),
        })?;
        let (shape, values) = value.try_extract_tensor::<f32>().map_err(run_error)?;
        let shape = shape.to_vec();
        if let Some(expected) = expected.filter(|expected| *expected != shape.as_slice()) {
            return Err(GenerateError::OutputShape {
                model: path,
                name: output.to_owned(),
                expected: expected.to_vec(),
                actual: shape,
            });
        }
        Ok(Output { shape, values: values.to_vec() })
    }

    fn run_error(&self, source: ort::Error) -> GenerateError {
        GenerateError::Run { model: self.path.clone(), source }
    }

    fn check_output(&self, name: &str) -> Result<(), GenerateError> {
        let outlet = find(self.session.outputs(), name).ok_or_else(|| GenerateError::UnknownOutput {
            model: self.path.clone(),
            name: name.to_owned(),
            available: names(self.session.outputs()),
        })?;
        match tensor_type(outlet.dtype()) {
            Some((TensorElementType::Float32, _)) => Ok(()),
            _ => Err(GenerateError::ElementType {
                model: self.path.clone(),
                name: name.to_owned(),
                declared: describe(outlet.dtype()),
                needed: "float32",
            }),
        }
    }

    fn declared(&self, input: &str) -> Result<(TensorElementType, &[i64]), GenerateError> {
        let outlet = find(self.session.inputs(), input).ok_or_else(|| GenerateError::UnknownInput {
            model: self.path.clone(),
            name: input.to_owned(),
            available: names(self.session.inputs()),
        })?;
        tensor_type(outlet.dtype()).ok_or_else(|| GenerateError::ElementType {
            model: self.path.clone(),
            name: input.to_owned(),
            declared: describe(outlet.dtype()),
            needed: "a tensor",
        })
    }

    /// Every feed names a graph input, every graph input is fed, and every feed has its input's
    /// element type and an accepted shape (checked in that order).
    fn check_feeds(&self, feeds: &[(&str, Feed)]) -> Result<(), GenerateError> {
        for (name, _) in feeds {
            self.declared(name)?;
        }
        if let Some(unfed) = self.session.inputs().iter().find(|input| !feeds.iter().any(|(n, _)| *n == input.name())) {
            return Err(GenerateError::UnfedInput { model: self.path.clone(), name: unfed.name().to_owned() });
        }
        for (name, feed) in feeds {
            let (element_type, declared) = self.declared(name)?;
            if element_type != feed.element_type() {
                return Err(GenerateError::ElementType {
                    model: self.path.clone(),
                    name: (*name).to_owned(),
                    declared: format!("{element_type:?}"),
                    needed: feed.type_name(),
                });
            }
            if !shape_accepts(declared, feed.shape()) {
                return Err(GenerateError::InputShape {
                    model: self.path.clone(),
                    name: (*name).to_owned(),
                    declared: declared.to_vec(),
                    fed: feed.shape().to_vec(),
                });
            }
        }
        Ok(())
    }
}

fn find<'a>(outlets: &'a [Outlet], name: &str) -> Option<&'a Outlet> {
    outlets.iter().find(|outlet| outlet.name() == name)
}

fn names(outlets: &[Outlet]) -> Vec<String> {
    outlets.iter().map(|outlet| outlet.name().to_owned()).collect()
}

fn tensor_type(value_type: &ValueType) -> Option<(TensorElementType, &[i64])> {
    match value_type {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape)),
        _ => None,
    }
}

fn describe(value_type: &ValueType) -> String {
    match tensor_type(value_type) {
        Some((element_type, _)) => format!("{element_type:?}"),
        None => format!("{value_type:?}"),
    }
}

/// A declared shape accepts a fed one of the same rank whose every fixed (non-negative)
/// dimension is equal.
fn shape_accepts(declared: &[i64], fed: &[i64]) -> bool {
    declared.len() == fed.len() && declared.iter().zip(fed).all(|(d, f)| *d < 0 || d == f)
}

#[cfg(test)]
mod tests {
    use super::shape_accepts;

    #[test]
    fn symbolic_dimensions_accept_anything_fixed_ones_only_themselves() {
        assert!(shape_accepts(&[-1, 1, 128, 128], &[1, 1, 128, 128]));
        assert!(!shape_accepts(&[-1, 1, 128, 128], &[1, 1, 64, 64]));
        assert!(!shape_accepts(&[-1], &[]));
        assert!(shape_accepts(&[], &[]));
    }
}
