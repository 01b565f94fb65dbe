//! Model formats and inference: churn classifiers and segmentation.
//!
//! Every model works on rows produced by a `features::FeatureSchema` (standardized `f32`,
//! never NaN), saves itself to files the registry hashes and publishes, and loads back
//! refusing anything whose shape does not match its schema.

pub mod churn;
pub mod clv;
pub mod forest;
pub mod kmeans;
pub mod lbfgs;
pub mod logistic;
pub mod mlp;
pub mod segments;

/// A row-major matrix of model inputs.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
}

impl<'a> Rows<'a> {
    pub fn new(data: &'a [f32], cols: usize) -> Result<Self, ModelError> {
        if cols == 0 || !data.len().is_multiple_of(cols) {
            return Err(ModelError::Shape(format!(
                "{} values do not make rows of {cols} columns",
                data.len()
            )));
        }
        Ok(Self {
            data,
            rows: data.len() / cols,
            cols,
        })
    }

    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("cannot train: {0}")]
    Training(String),
    #[error("model file {path}: {reason}")]
    File { path: String, reason: String },
}

/// A safetensors model file, opened once; its tensors are read by name as `f32` values
/// with their shape, and every problem names the file.
pub(crate) struct WeightsFile {
    path: String,
    tensors: std::collections::HashMap<String, candle_core::Tensor>,
}

impl WeightsFile {
    pub(crate) fn open(path: &std::path::Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let tensors =
            candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| {
                ModelError::File {
                    path: shown.clone(),
                    reason: format!("not a readable safetensors file: {e}"),
                }
            })?;
        Ok(Self {
            path: shown,
            tensors,
        })
    }

    /// An error about this file.
    pub(crate) fn bad(&self, reason: String) -> ModelError {
        ModelError::File {
            path: self.path.clone(),
            reason,
        }
    }

    /// The shape and the values (row-major) of tensor `name`.
    pub(crate) fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.bad(format!("has no {name:?} tensor")))?;
        let values = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(format!("{name:?} is not an f32 tensor: {e}")))?;
        Ok((t.dims().to_vec(), values))
    }
}

/// Checks labelled training rows: one label per row, whole rows, both classes present.
/// Returns the number of positive labels.
pub fn check_training_set(x: Rows<'_>, y: &[bool]) -> Result<usize, ModelError> {
    if y.len() != x.rows {
        return Err(ModelError::Shape(format!(
            "{} labels for {} rows",
            y.len(),
            x.rows
        )));
    }
    if x.cols == 0 || x.data.len() != x.rows * x.cols {
        return Err(ModelError::Shape(format!(
            "{} values do not make {} rows of {} columns",
            x.data.len(),
            x.rows,
            x.cols
        )));
    }
    let positives = y.iter().filter(|&&v| v).count();
    if positives == 0 || positives == y.len() {
        return Err(ModelError::Training(
            "the labels hold a single class: every customer churned or none did".into(),
        ));
    }
    Ok(positives)
}

/// The logistic function, computed without overflow for any input.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Data sets the model tests share.
#[cfg(test)]
pub(crate) mod test_data {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// `y = 1` when `x0·x1 > 0`, with 10% of labels flipped; x2, x3 are noise: what a
    /// linear model cannot learn and a tree or a hidden layer can.
    pub(crate) fn xor_like(n: usize, seed: u64) -> (Vec<f32>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * 4);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: [f32; 4] = std::array::from_fn(|_| rng.random_range(-1.7f32..1.7));
            x.extend_from_slice(&row);
            y.push((row[0] * row[1] > 0.0) != (rng.random::<f64>() < 0.1));
        }
        (x, y)
    }
}
