//! L2-regularised logistic regression, fitted with L-BFGS over candle tensors.
//!
//! The default churn model: robust on small data, calibrated by construction, and
//! exactly explainable: the logit is `bias + Σ wᵢ·xᵢ` over standardized inputs, so
//! `wᵢ·xᵢ` is feature i's exact contribution relative to an average customer.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::{ModelError, Rows, WeightsFile, lbfgs, sigmoid};

/// Fitting settings, named as in scikit-learn so results compare directly.
#[derive(Debug, Clone)]
pub struct LogisticParams {
    /// Inverse regularisation strength (scikit-learn's `C`): the objective is
    /// `C·Σ logloss + ½‖w‖²`; the bias is not penalised.
    pub c: f64,
    pub max_iter: usize,
    /// Stop when the largest gradient component (of the mean loss) is below this.
    pub tol: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 200,
            tol: 1e-4,
        }
    }
}

/// How a fit went.
#[derive(Debug, Clone)]
pub struct FitInfo {
    pub iterations: usize,
    pub evaluations: usize,
    pub converged: bool,
    pub final_loss: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl LogisticRegression {
    /// Fits on `x` (standardized rows) and labels `y`.
    pub fn fit(
        x: Rows<'_>,
        y: &[bool],
        params: &LogisticParams,
    ) -> Result<(Self, FitInfo), ModelError> {
        let positives = super::check_training_set(x, y)?;
        let (n, d) = (x.rows, x.cols);
        let device = Device::Cpu;
        let xt = Tensor::from_slice(x.data, (n, d), &device)?;
        let x_transposed = xt.t()?;
        let y_f32: Vec<f32> = y.iter().map(|&v| f32::from(u8::from(v))).collect();
        let yt = Tensor::from_slice(&y_f32, (n, 1), &device)?;
        // Mean-loss form of scikit-learn's objective: logloss/n + ‖w‖²/(2·C·n).
        let l2 = 1.0 / (params.c.max(1e-12) * n as f64);

        let objective = |p: &[f64]| -> Result<(f64, Vec<f64>), ModelError> {
            let w: Vec<f32> = p[..d].iter().map(|&v| v as f32).collect();
            let b = p[d];
            let wt = Tensor::from_slice(&w, (d, 1), &device)?;
            let z = xt.matmul(&wt)?.affine(1.0, b)?;
            // softplus(z) - y·z, computed stably: max(z,0) + ln(1 + e^-|z|).
            let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            let loss_rows = (softplus - yt.mul(&z)?)?;
            let data_loss = f64::from(loss_rows.sum_all()?.to_scalar::<f32>()?) / n as f64;
            let prob = (z.neg()?.exp()? + 1.0)?.recip()?;
            let residual = (prob - &yt)?;
            let gw = x_transposed
                .matmul(&residual)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let gb = f64::from(residual.sum_all()?.to_scalar::<f32>()?) / n as f64;
            let penalty: f64 = p[..d].iter().map(|v| v * v).sum::<f64>() * l2 / 2.0;
            let mut grad: Vec<f64> = gw
                .iter()
                .zip(&p[..d])
                .map(|(g, w)| f64::from(*g) / n as f64 + l2 * w)
                .collect();
            grad.push(gb);
            Ok((data_loss + penalty, grad))
        };

        // Start from the base rate: all weights zero, bias at the log-odds of churn.
        let rate = positives as f64 / n as f64;
        let mut x0 = vec![0.0; d + 1];
        x0[d] = (rate / (1.0 - rate)).ln();
        let m = lbfgs::minimize(objective, x0, params.max_iter, params.tol)?;
        let model = Self {
            weights: m.x[..d].iter().map(|&v| v as f32).collect(),
            bias: m.x[d] as f32,
        };
        Ok((
            model,
            FitInfo {
                iterations: m.iterations,
                evaluations: m.evaluations,
                converged: m.converged,
                final_loss: m.value,
            },
        ))
    }

    pub fn inputs(&self) -> usize {
        self.weights.len()
    }

    /// The log-odds of churn for one row.
    pub fn logit(&self, row: &[f32]) -> f64 {
        f64::from(self.bias)
            + self
                .weights
                .iter()
                .zip(row)
                .map(|(w, x)| f64::from(*w) * f64::from(*x))
                .sum::<f64>()
    }

    pub fn probability(&self, row: &[f32]) -> f64 {
        sigmoid(self.logit(row))
    }

    /// Each input's exact contribution to the logit, relative to an average customer.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(row)
            .map(|(w, x)| f64::from(*w) * f64::from(*x))
            .collect()
    }

    /// Probabilities for many rows at once, as one matrix product.
    pub fn probabilities(&self, x: Rows<'_>) -> Result<Vec<f64>, ModelError> {
        if x.cols != self.inputs() {
            return Err(ModelError::Shape(format!(
                "model takes {} inputs, rows have {}",
                self.inputs(),
                x.cols
            )));
        }
        if x.rows == 0 {
            return Ok(Vec::new());
        }
        let device = Device::Cpu;
        let xt = Tensor::from_slice(x.data, (x.rows, x.cols), &device)?;
        let wt = Tensor::from_slice(&self.weights, (x.cols, 1), &device)?;
        let z = xt
            .matmul(&wt)?
            .affine(1.0, f64::from(self.bias))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(z.into_iter().map(|v| sigmoid(f64::from(v))).collect())
    }

    /// Writes `weight` (inputs) and `bias` (1) tensors as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let device = Device::Cpu;
        let mut tensors = HashMap::new();
        tensors.insert(
            "weight".to_string(),
            Tensor::from_slice(&self.weights, self.weights.len(), &device)?,
        );
        tensors.insert(
            "bias".to_string(),
            Tensor::from_slice(&[self.bias], 1, &device)?,
        );
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Reads a model saved by `save`, refusing one that does not take `inputs` inputs.
    pub fn load(path: &Path, inputs: usize) -> Result<Self, ModelError> {
        let file = WeightsFile::open(path)?;
        let bad = |reason: String| file.bad(reason);
        let (_, weights) = file.get("weight")?;
        let (_, bias) = file.get("bias")?;
        if weights.len() != inputs || bias.len() != 1 {
            return Err(bad(format!(
                "holds {} weights and {} biases; the schema has {inputs} inputs",
                weights.len(),
                bias.len()
            )));
        }
        if weights.iter().chain(&bias).any(|v| !v.is_finite()) {
            return Err(bad("holds non-finite parameters".into()));
        }
        Ok(Self {
            weights,
            bias: bias[0],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Rows from a known logistic model, to check the fit recovers it.
    fn synthetic(n: usize, w: &[f64], b: f64, seed: u64) -> (Vec<f32>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * w.len());
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let mut z = b;
            for wi in w {
                let v: f64 = rng.random_range(-2.0..2.0);
                x.push(v as f32);
                z += wi * v;
            }
            y.push(rng.random::<f64>() < sigmoid(z));
        }
        (x, y)
    }

    #[test]
    fn recovers_known_coefficients() {
        let truth = [1.5, -2.0, 0.0, 0.7];
        let (x, y) = synthetic(40_000, &truth, -0.5, 7);
        let rows = Rows::new(&x, truth.len()).expect("rows");
        let (m, info) = LogisticRegression::fit(rows, &y, &LogisticParams::default()).expect("fit");
        assert!(info.converged, "{info:?}");
        for (got, want) in m.weights.iter().zip(truth) {
            assert!(
                (f64::from(*got) - want).abs() < 0.08,
                "{:?} vs {truth:?}",
                m.weights
            );
        }
        assert!((f64::from(m.bias) + 0.5).abs() < 0.08);
        // Batch and single-row paths agree; contributions add up to the logit.
        let batch = m.probabilities(rows).expect("batch");
        for i in [0, 1, 999] {
            assert!((batch[i] - m.probability(rows.row(i))).abs() < 1e-5);
            let sum: f64 = m.contributions(rows.row(i)).iter().sum::<f64>() + f64::from(m.bias);
            assert!((sum - m.logit(rows.row(i))).abs() < 1e-9);
        }
    }

    #[test]
    fn matches_scikit_learn_on_a_small_problem() {
        // sklearn.linear_model.LogisticRegression(C=1.0, tol=1e-10).fit(X, y) on this data
        // (scikit-learn 1.9) gives coef_ = [[0.76046314]], intercept_ = [-9.6e-18].
        let x = [-2.0f32, -1.0, 1.0, 2.0, -0.5, 0.5];
        let y = [false, false, true, true, true, false];
        let rows = Rows::new(&x, 1).expect("rows");
        let (m, _) = LogisticRegression::fit(rows, &y, &LogisticParams::default()).expect("fit");
        assert!((m.weights[0] - 0.760_463).abs() < 1e-4, "{m:?}");
        assert!(m.bias.abs() < 1e-3, "{m:?}");
    }

    #[test]
    fn refuses_single_class_and_bad_shapes() {
        let x = [0.0f32; 6];
        let rows = Rows::new(&x, 2).expect("rows");
        assert!(matches!(
            LogisticRegression::fit(rows, &[true, true, true], &LogisticParams::default()),
            Err(ModelError::Training(_))
        ));
        assert!(matches!(
            LogisticRegression::fit(rows, &[true], &LogisticParams::default()),
            Err(ModelError::Shape(_))
        ));
        assert!(Rows::new(&x, 4).is_err());
    }

    #[test]
    fn saves_and_loads_exactly_and_refuses_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let m = LogisticRegression {
            weights: vec![0.5, -1.25, 3.0],
            bias: -0.75,
        };
        m.save(&path).expect("save");
        assert_eq!(LogisticRegression::load(&path, 3).expect("load"), m);
        assert!(
            LogisticRegression::load(&path, 4).is_err(),
            "schema mismatch"
        );
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        assert!(LogisticRegression::load(&path, 3).is_err(), "truncated");
    }
}
