//! A one-hidden-layer neural network (ReLU, then a single logit), trained with Adam
//! over candle tensors and candle's autograd.
//!
//! The non-linear alternative to the logistic model: it captures interactions between
//! inputs (say, tenure × monthly charge) that a linear logit cannot. Training is
//! deterministic for a given seed: the initial weights, the early-stopping hold-out
//! and the mini-batch order all come from one seeded generator.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{ModelError, Rows, WeightsFile, sigmoid};

/// Adam's moment decay rates and denominator guard, as in the original paper.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;
/// Rows per candle batch when scoring, to bound memory on million-row inputs.
const SCORE_CHUNK_ROWS: usize = 65_536;

/// Training settings.
#[derive(Debug, Clone)]
pub struct MlpParams {
    /// Units in the hidden ReLU layer.
    pub hidden: usize,
    /// Most passes over the training rows.
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Decoupled (AdamW-style) weight decay on the weight matrices, per unit of
    /// learning rate; biases are not decayed.
    pub weight_decay: f64,
    pub seed: u64,
    /// Stop after this many epochs in a row without a better hold-out log loss
    /// (0 behaves as 1). The best weights seen are kept either way.
    pub patience: usize,
}

impl Default for MlpParams {
    fn default() -> Self {
        Self {
            hidden: 32,
            epochs: 30,
            batch_size: 512,
            learning_rate: 5e-3,
            weight_decay: 1e-4,
            seed: 0,
            patience: 4,
        }
    }
}

/// How a fit went.
#[derive(Debug, Clone)]
pub struct MlpFitInfo {
    /// Epochs actually run (fewer than `MlpParams::epochs` when stopped early).
    pub epochs_run: usize,
    /// The epoch (1-based) whose weights were kept.
    pub best_epoch: usize,
    /// Hold-out log loss of the kept weights; `None` when too few rows for a hold-out.
    pub best_holdout_loss: Option<f64>,
    /// Mean training log loss over the last epoch run.
    pub final_train_loss: f64,
    pub stopped_early: bool,
    /// Rows used to train and rows held out for early stopping.
    pub train_rows: usize,
    pub holdout_rows: usize,
}

/// The fitted network: `logit = b2 + Σⱼ w2ⱼ·relu(b1ⱼ + Σᵢ xᵢ·w1ᵢⱼ)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    inputs: usize,
    hidden: usize,
    /// Row-major `inputs × hidden`.
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

/// The trainable tensors, as candle variables.
struct Params {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Params {
    /// Each variable with whether it is decayed (weights are, biases are not).
    fn all(&self) -> [(&Var, bool); 4] {
        [
            (&self.w1, true),
            (&self.b1, false),
            (&self.w2, true),
            (&self.b2, false),
        ]
    }

    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        forward(
            x,
            self.w1.as_tensor(),
            self.b1.as_tensor(),
            self.w2.as_tensor(),
            self.b2.as_tensor(),
        )
    }

    fn snapshot(&self, inputs: usize, hidden: usize) -> Result<Mlp, ModelError> {
        let vec = |v: &Var| v.as_tensor().flatten_all()?.to_vec1::<f32>();
        let b2 = vec(&self.b2)?;
        Ok(Mlp {
            inputs,
            hidden,
            w1: vec(&self.w1)?,
            b1: vec(&self.b1)?,
            w2: vec(&self.w2)?,
            b2: b2.first().copied().unwrap_or(0.0),
        })
    }
}

/// Logits `(n, 1)` for rows `x` `(n, inputs)`.
fn forward(
    x: &Tensor,
    w1: &Tensor,
    b1: &Tensor,
    w2: &Tensor,
    b2: &Tensor,
) -> candle_core::Result<Tensor> {
    x.matmul(w1)?
        .broadcast_add(b1)?
        .relu()?
        .matmul(w2)?
        .broadcast_add(b2)
}

/// Mean binary cross-entropy of labels `y` (0/1) under logits `z`, computed stably as
/// `max(z,0) − y·z + ln(1 + e^−|z|)`.
fn bce_with_logits(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    (softplus - y.mul(z)?)?.mean_all()
}

/// The rows `idx` of `x` as one row-major buffer, and their labels as 0/1.
fn gather(x: Rows<'_>, y: &[bool], idx: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let mut xs = Vec::with_capacity(idx.len() * x.cols);
    let mut ys = Vec::with_capacity(idx.len());
    for &i in idx {
        xs.extend_from_slice(x.row(i));
        ys.push(f32::from(u8::from(y[i])));
    }
    (xs, ys)
}

fn check_params(params: &MlpParams) -> Result<(), ModelError> {
    let bad = |what: &str| Err(ModelError::Training(format!("invalid settings: {what}")));
    if params.hidden == 0 {
        return bad("hidden must be at least 1");
    }
    if params.epochs == 0 {
        return bad("epochs must be at least 1");
    }
    if params.batch_size == 0 {
        return bad("batch_size must be at least 1");
    }
    if !(params.learning_rate.is_finite() && params.learning_rate > 0.0) {
        return bad("learning_rate must be positive and finite");
    }
    if !(params.weight_decay.is_finite() && params.weight_decay >= 0.0) {
        return bad("weight_decay must be non-negative and finite");
    }
    Ok(())
}

impl Mlp {
    /// Fits on `x` (standardized rows) and labels `y`, holding out the last 10% of a
    /// seeded permutation of the rows to stop early and pick the best epoch.
    pub fn fit(
        x: Rows<'_>,
        y: &[bool],
        params: &MlpParams,
    ) -> Result<(Self, MlpFitInfo), ModelError> {
        super::check_training_set(x, y)?;
        check_params(params)?;
        let (n, d, h) = (x.rows, x.cols, params.hidden);
        let device = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(params.seed);

        // Hold-out: the last 10% of a seeded permutation.
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let holdout_rows = n / 10;
        let (train_idx, hold_idx) = order.split_at(n - holdout_rows);
        let (train_x, train_y) = gather(x, y, train_idx);
        let nt = train_idx.len();
        let train_x = Tensor::from_vec(train_x, (nt, d), &device)?;
        let train_y = Tensor::from_vec(train_y, (nt, 1), &device)?;
        let holdout = if holdout_rows > 0 {
            let (hx, hy) = gather(x, y, hold_idx);
            Some((
                Tensor::from_vec(hx, (holdout_rows, d), &device)?,
                Tensor::from_vec(hy, (holdout_rows, 1), &device)?,
            ))
        } else {
            None
        };

        // He-uniform for the ReLU layer, Xavier-uniform for the output layer; the
        // output bias starts at the log-odds of churn in the training rows.
        let limit1 = (6.0 / d as f64).sqrt();
        let w1: Vec<f32> = (0..d * h)
            .map(|_| rng.random_range(-limit1..limit1) as f32)
            .collect();
        let limit2 = (6.0 / (h + 1) as f64).sqrt();
        let w2: Vec<f32> = (0..h)
            .map(|_| rng.random_range(-limit2..limit2) as f32)
            .collect();
        let train_positives = train_idx.iter().filter(|&&i| y[i]).count();
        let rate = (train_positives as f64 / nt as f64).clamp(1e-4, 1.0 - 1e-4);
        let b2 = (rate / (1.0 - rate)).ln() as f32;
        let vars = Params {
            w1: Var::from_vec(w1, (d, h), &device)?,
            b1: Var::zeros(h, DType::F32, &device)?,
            w2: Var::from_vec(w2, (h, 1), &device)?,
            b2: Var::from_vec(vec![b2], 1, &device)?,
        };
        let mut moments = vars
            .all()
            .iter()
            .map(|(v, _)| Ok((v.zeros_like()?, v.zeros_like()?)))
            .collect::<Result<Vec<(Tensor, Tensor)>, ModelError>>()?;

        let lr = params.learning_rate;
        let decay = 1.0 - lr * params.weight_decay;
        let mut step = 0i32;
        let mut best: Option<(Mlp, f64, usize)> = None;
        let mut since_best = 0;
        let mut epochs_run = 0;
        let mut stopped_early = false;
        let mut final_train_loss = f64::NAN;
        let mut batch_order: Vec<u32> = (0..nt)
            .map(|i| u32::try_from(i).map_err(|_| ModelError::Shape("too many rows".into())))
            .collect::<Result<_, _>>()?;

        for epoch in 1..=params.epochs {
            batch_order.shuffle(&mut rng);
            let mut loss_sum = 0.0;
            for batch in batch_order.chunks(params.batch_size) {
                let idx = Tensor::from_slice(batch, batch.len(), &device)?;
                let xb = train_x.index_select(&idx, 0)?;
                let yb = train_y.index_select(&idx, 0)?;
                let loss = bce_with_logits(&vars.logits(&xb)?, &yb)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?) * batch.len() as f64;
                let grads = loss.backward()?;
                step += 1;
                let correction1 = 1.0 - BETA1.powi(step);
                let correction2 = 1.0 - BETA2.powi(step);
                for ((var, decayed), (m, v)) in vars.all().into_iter().zip(moments.iter_mut()) {
                    let g = grads
                        .get(var.as_tensor())
                        .ok_or_else(|| ModelError::Training("a parameter got no gradient".into()))?
                        .detach();
                    *m = (m.affine(BETA1, 0.0)? + g.affine(1.0 - BETA1, 0.0)?)?;
                    *v = (v.affine(BETA2, 0.0)? + g.sqr()?.affine(1.0 - BETA2, 0.0)?)?;
                    let m_hat = m.affine(1.0 / correction1, 0.0)?;
                    let v_hat = v.affine(1.0 / correction2, 0.0)?;
                    let update = (m_hat / (v_hat.sqrt()? + EPSILON)?)?.affine(lr, 0.0)?;
                    let current = var.as_detached_tensor();
                    let current = if decayed {
                        current.affine(decay, 0.0)?
                    } else {
                        current
                    };
                    var.set(&(current - update)?)?;
                }
            }
            epochs_run = epoch;
            final_train_loss = loss_sum / nt as f64;
            if !final_train_loss.is_finite() {
                return Err(ModelError::Training(format!(
                    "the training loss diverged at epoch {epoch}: lower the learning rate"
                )));
            }
            let Some((hx, hy)) = &holdout else {
                continue;
            };
            let loss = f64::from(bce_with_logits(&vars.logits(hx)?, hy)?.to_scalar::<f32>()?);
            if best.as_ref().is_none_or(|(_, b, _)| loss < *b) {
                best = Some((vars.snapshot(d, h)?, loss, epoch));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= params.patience.max(1) && epoch < params.epochs {
                    stopped_early = true;
                    break;
                }
            }
        }

        let (model, best_holdout_loss, best_epoch) = match best {
            Some((model, loss, epoch)) => (model, Some(loss), epoch),
            None => (vars.snapshot(d, h)?, None, epochs_run),
        };
        if !model.all_finite() {
            return Err(ModelError::Training(
                "training produced non-finite weights: lower the learning rate".into(),
            ));
        }
        Ok((
            model,
            MlpFitInfo {
                epochs_run,
                best_epoch,
                best_holdout_loss,
                final_train_loss,
                stopped_early,
                train_rows: nt,
                holdout_rows,
            },
        ))
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    fn all_finite(&self) -> bool {
        self.w1
            .iter()
            .chain(&self.b1)
            .chain(&self.w2)
            .chain(std::iter::once(&self.b2))
            .all(|v| v.is_finite())
    }

    /// The log-odds of churn for one row (of `inputs()` values), in plain Rust.
    pub fn logit(&self, row: &[f32]) -> f64 {
        let mut hidden: Vec<f64> = self.b1.iter().map(|&b| f64::from(b)).collect();
        for (x, weights) in row.iter().zip(self.w1.chunks_exact(self.hidden)) {
            let x = f64::from(*x);
            for (a, w) in hidden.iter_mut().zip(weights) {
                *a += x * f64::from(*w);
            }
        }
        f64::from(self.b2)
            + hidden
                .iter()
                .zip(&self.w2)
                .map(|(a, w)| a.max(0.0) * f64::from(*w))
                .sum::<f64>()
    }

    pub fn probability(&self, row: &[f32]) -> f64 {
        sigmoid(self.logit(row))
    }

    /// Probabilities for many rows at once, as candle matrix products over chunks.
    pub fn probabilities(&self, x: Rows<'_>) -> Result<Vec<f64>, ModelError> {
        if x.cols != self.inputs || x.data.len() != x.rows * x.cols {
            return Err(ModelError::Shape(format!(
                "model takes {} inputs, rows have {} ({} values for {} rows)",
                self.inputs,
                x.cols,
                x.data.len(),
                x.rows
            )));
        }
        let device = Device::Cpu;
        let w1 = Tensor::from_slice(&self.w1, (self.inputs, self.hidden), &device)?;
        let b1 = Tensor::from_slice(&self.b1, self.hidden, &device)?;
        let w2 = Tensor::from_slice(&self.w2, (self.hidden, 1), &device)?;
        let b2 = Tensor::from_slice(&[self.b2], 1, &device)?;
        let mut out = Vec::with_capacity(x.rows);
        for chunk in x.data.chunks(SCORE_CHUNK_ROWS * x.cols) {
            let xt = Tensor::from_slice(chunk, (chunk.len() / x.cols, x.cols), &device)?;
            let z = forward(&xt, &w1, &b1, &w2, &b2)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            out.extend(z.into_iter().map(|v| sigmoid(f64::from(v))));
        }
        Ok(out)
    }

    /// Writes `w1` (inputs × hidden), `b1` (hidden), `w2` (hidden) and `b2` (1) tensors
    /// as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let device = Device::Cpu;
        let mut tensors = HashMap::new();
        tensors.insert(
            "w1".to_string(),
            Tensor::from_slice(&self.w1, (self.inputs, self.hidden), &device)?,
        );
        tensors.insert(
            "b1".to_string(),
            Tensor::from_slice(&self.b1, self.hidden, &device)?,
        );
        tensors.insert(
            "w2".to_string(),
            Tensor::from_slice(&self.w2, self.hidden, &device)?,
        );
        tensors.insert(
            "b2".to_string(),
            Tensor::from_slice(&[self.b2], 1, &device)?,
        );
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Reads a model saved by `save`, refusing one that does not take `inputs` inputs.
    pub fn load(path: &Path, inputs: usize) -> Result<Self, ModelError> {
        let file = WeightsFile::open(path)?;
        let bad = |reason: String| file.bad(reason);
        let get = |name: &str| file.get(name);
        let (w1_dims, w1) = get("w1")?;
        let (b1_dims, b1) = get("b1")?;
        let (w2_dims, w2) = get("w2")?;
        let (b2_dims, b2) = get("b2")?;
        let hidden = b1.len();
        if hidden == 0
            || w1_dims != [inputs, hidden]
            || b1_dims != [hidden]
            || w2_dims != [hidden]
            || b2_dims != [1]
        {
            return Err(bad(format!(
                "holds w1 {w1_dims:?}, b1 {b1_dims:?}, w2 {w2_dims:?}, b2 {b2_dims:?}; \
                 the schema has {inputs} inputs"
            )));
        }
        let model = Self {
            inputs,
            hidden,
            w1,
            b1,
            w2,
            b2: b2[0],
        };
        if !model.all_finite() {
            return Err(bad("holds non-finite parameters".into()));
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use crate::models::logistic::{LogisticParams, LogisticRegression};
    use crate::models::test_data::xor_like;

    fn fast_params(seed: u64) -> MlpParams {
        MlpParams {
            batch_size: 128,
            learning_rate: 1e-2,
            seed,
            ..MlpParams::default()
        }
    }

    #[test]
    fn learns_an_interaction_a_linear_model_cannot() {
        let (x, y) = xor_like(4_000, 11);
        let (vx, vy) = xor_like(2_000, 12);
        let rows = Rows::new(&x, 4).expect("rows");
        let val = Rows::new(&vx, 4).expect("rows");
        let (m, info) = Mlp::fit(rows, &y, &fast_params(3)).expect("fit");
        assert_eq!(info.holdout_rows, 400);
        assert!(info.best_holdout_loss.is_some(), "{info:?}");
        let auc = roc_auc(&vy, &m.probabilities(val).expect("probs")).expect("auc");
        assert!(auc > 0.85, "mlp auc {auc}, {info:?}");

        let (lr, _) = LogisticRegression::fit(rows, &y, &LogisticParams::default()).expect("lr");
        let linear = roc_auc(&vy, &lr.probabilities(val).expect("probs")).expect("auc");
        assert!(linear < 0.6, "linear auc {linear}");

        // The plain-Rust row path agrees with the batched candle path.
        let batch = m.probabilities(val).expect("probs");
        for i in [0, 1, 777, 1_999] {
            assert!((batch[i] - m.probability(val.row(i))).abs() < 1e-5);
            assert!((sigmoid(m.logit(val.row(i))) - m.probability(val.row(i))).abs() < 1e-15);
        }
    }

    #[test]
    fn same_seed_same_model_and_exact_round_trip() {
        let (x, y) = xor_like(1_500, 5);
        let rows = Rows::new(&x, 4).expect("rows");
        let params = MlpParams {
            epochs: 6,
            ..fast_params(9)
        };
        let (a, ia) = Mlp::fit(rows, &y, &params).expect("fit a");
        let (b, ib) = Mlp::fit(rows, &y, &params).expect("fit b");
        assert_eq!(a, b);
        assert_eq!(ia.best_epoch, ib.best_epoch);
        let pa = a.probabilities(rows).expect("pa");
        let pb = b.probabilities(rows).expect("pb");
        assert!(pa.iter().zip(&pb).all(|(p, q)| p.to_bits() == q.to_bits()));
        let (c, _) = Mlp::fit(
            rows,
            &y,
            &MlpParams {
                seed: 10,
                ..params.clone()
            },
        )
        .expect("fit c");
        assert_ne!(a, c, "a different seed gives a different model");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mlp.safetensors");
        a.save(&path).expect("save");
        let loaded = Mlp::load(&path, 4).expect("load");
        assert_eq!(loaded, a);
        let pl = loaded.probabilities(rows).expect("pl");
        assert!(pa.iter().zip(&pl).all(|(p, q)| p.to_bits() == q.to_bits()));
        assert!(
            (0..rows.rows).all(|i| a.probability(rows.row(i)) == loaded.probability(rows.row(i)))
        );

        assert!(
            matches!(Mlp::load(&path, 5), Err(ModelError::File { .. })),
            "schema mismatch"
        );
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 7]).expect("truncate");
        assert!(
            matches!(Mlp::load(&path, 4), Err(ModelError::File { .. })),
            "truncated"
        );
    }

    #[test]
    fn load_refuses_missing_and_non_finite_tensors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mlp.safetensors");
        let device = Device::Cpu;
        let write = |w2: &[f32], with_b2: bool| {
            let mut t = HashMap::new();
            t.insert(
                "w1".to_string(),
                Tensor::from_slice(&[0.5f32, -0.5, 1.0, 2.0], (2, 2), &device).expect("w1"),
            );
            t.insert(
                "b1".to_string(),
                Tensor::from_slice(&[0.0f32, 0.1], 2, &device).expect("b1"),
            );
            t.insert(
                "w2".to_string(),
                Tensor::from_slice(w2, 2, &device).expect("w2"),
            );
            if with_b2 {
                t.insert(
                    "b2".to_string(),
                    Tensor::from_slice(&[0.3f32], 1, &device).expect("b2"),
                );
            }
            candle_core::safetensors::save(&t, &path).expect("save");
        };
        write(&[1.0, -1.0], true);
        let m = Mlp::load(&path, 2).expect("load");
        assert_eq!((m.inputs(), m.hidden()), (2, 2));
        // logit = 0.3 + 1·relu(0.5·1 + 1·2) − 1·relu(0.1 − 0.5 + 2·2) = 0.3 + 2.5 − 3.6
        assert!((m.logit(&[1.0, 2.0]) - (0.3 + 2.5 - 3.6)).abs() < 1e-6);
        write(&[1.0, -1.0], false);
        assert!(Mlp::load(&path, 2).is_err(), "missing b2");
        write(&[1.0, f32::NAN], true);
        assert!(Mlp::load(&path, 2).is_err(), "non-finite");
    }

    #[test]
    fn refuses_single_class_bad_shapes_and_bad_settings() {
        let x = [0.0f32; 6];
        let rows = Rows::new(&x, 2).expect("rows");
        let params = MlpParams::default();
        assert!(matches!(
            Mlp::fit(rows, &[false, false, false], &params),
            Err(ModelError::Training(_))
        ));
        assert!(matches!(
            Mlp::fit(rows, &[true], &params),
            Err(ModelError::Shape(_))
        ));
        assert!(matches!(
            Mlp::fit(
                rows,
                &[true, false, true],
                &MlpParams {
                    hidden: 0,
                    ..params
                }
            ),
            Err(ModelError::Training(_))
        ));
        let (m, info) = Mlp::fit(rows, &[true, false, true], &MlpParams::default()).expect("tiny");
        assert_eq!(info.holdout_rows, 0);
        assert!(matches!(
            m.probabilities(Rows::new(&x, 3).expect("rows")),
            Err(ModelError::Shape(_))
        ));
    }
}
