//! L2-regularised logistic regression on sparse rows, fitted with the crate's L-BFGS.
//!
//! Written by hand because neither library in the engine can do it: candle has no sparse
//! matrices, smartcore's logistic regression takes dense matrices only, and a dense
//! million-row by million-bucket matrix is out of the question. One pass over the rows
//! computes the loss and the gradient together, split over the cores by blocks of rows.

use rayon::prelude::*;

use crate::models::{ModelError, lbfgs, sigmoid};

/// Rows per block: the unit of parallel work and of train / held-out assembly.
pub(crate) const BLOCK_ROWS: usize = 4096;

/// A block of rows in compressed sparse row form, with their labels.
#[derive(Debug, Default)]
pub(crate) struct Block {
    pub indptr: Vec<u32>,
    pub cols: Vec<u32>,
    pub vals: Vec<f32>,
    pub labels: Vec<bool>,
}

impl Block {
    pub(crate) fn new() -> Self {
        Self {
            indptr: vec![0],
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, row: &[(u32, f32)], label: bool) {
        for &(c, v) in row {
            self.cols.push(c);
            self.vals.push(v);
        }
        self.indptr.push(self.cols.len() as u32);
        self.labels.push(label);
    }

    pub(crate) fn rows(&self) -> usize {
        self.labels.len()
    }

    pub(crate) fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// Applies `f` to every row's `(cols, vals)` in place.
    pub(crate) fn for_each_row_mut(&mut self, mut f: impl FnMut(&mut [u32], &mut [f32])) {
        for i in 0..self.rows() {
            let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
            f(&mut self.cols[a..b], &mut self.vals[a..b]);
        }
    }
}

impl Block {
    /// Renumbers columns through `column_of`, dropping entries mapped to `u32::MAX`.
    pub(crate) fn remap(&mut self, column_of: &[u32]) {
        let mut kept = 0usize;
        let mut start = 0usize;
        for i in 0..self.rows() {
            let end = self.indptr[i + 1] as usize;
            for k in start..end {
                let c = column_of[self.cols[k] as usize];
                if c != u32::MAX {
                    self.cols[kept] = c;
                    self.vals[kept] = self.vals[k];
                    kept += 1;
                }
            }
            // In column order, a row's reads and writes move forward through memory.
            let row_start = self.indptr[i] as usize;
            let mut pairs: Vec<(u32, f32)> = self.cols[row_start..kept]
                .iter()
                .copied()
                .zip(self.vals[row_start..kept].iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|p| p.0);
            for (k, (c, v)) in pairs.into_iter().enumerate() {
                self.cols[row_start + k] = c;
                self.vals[row_start + k] = v;
            }
            start = end;
            self.indptr[i + 1] = kept as u32;
        }
        self.cols.truncate(kept);
        self.vals.truncate(kept);
    }
}

/// Copies of `blocks` with columns renumbered through `column_of` (see [`Block::remap`]).
pub(crate) fn remapped(blocks: &[&Block], column_of: &[u32]) -> Vec<Block> {
    blocks
        .par_iter()
        .map(|b| {
            let mut copy = Block {
                indptr: b.indptr.clone(),
                cols: b.cols.clone(),
                vals: b.vals.clone(),
                labels: b.labels.clone(),
            };
            copy.remap(column_of);
            copy
        })
        .collect()
}

/// The columns of `0..columns` that `blocks` use, in order: `(new → old, old → new)`,
/// unused columns mapping to `u32::MAX`. A fit on a sample renumbered so costs what the
/// sample holds, not what the whole data set does.
pub(crate) fn used_columns(blocks: &[&Block], columns: usize) -> (Vec<u32>, Vec<u32>) {
    let mut used = vec![false; columns];
    for b in blocks {
        for &c in &b.cols {
            used[c as usize] = true;
        }
    }
    let mut new_of = vec![u32::MAX; columns];
    let mut old_of = Vec::new();
    for (c, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        new_of[c] = old_of.len() as u32;
        old_of.push(c as u32);
    }
    (old_of, new_of)
}

pub(crate) fn rows(blocks: &[&Block]) -> usize {
    blocks.iter().map(|b| b.rows()).sum()
}

pub(crate) fn labels(blocks: &[&Block]) -> Vec<bool> {
    blocks
        .iter()
        .flat_map(|b| b.labels.iter().copied())
        .collect()
}

/// A fitted model over `columns` columns: weights, then the bias.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    pub params: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
}

#[inline]
fn row_logit(cols: &[u32], vals: &[f32], w: &[f32], bias: f64) -> f64 {
    let mut z = 0.0f32;
    for (&c, &v) in cols.iter().zip(vals) {
        z += v * w[c as usize];
    }
    bias + f64::from(z)
}

/// Fits on `blocks` (columns `0..columns`), minimising scikit-learn's objective
/// `C·Σ logloss + ½‖w‖²` (in its mean form, so tolerances do not depend on the row count).
/// `start` warm-starts from an earlier fit's parameters.
pub(crate) fn fit(
    blocks: &[&Block],
    columns: usize,
    c: f64,
    start: Option<&[f64]>,
    max_iter: usize,
    tol: f64,
) -> Result<Fit, ModelError> {
    let n = rows(blocks);
    let positives: usize = blocks
        .iter()
        .map(|b| b.labels.iter().filter(|&&y| y).count())
        .sum();
    if positives == 0 || positives == n {
        return Err(ModelError::Training(
            "the labelled comments are all of one class".into(),
        ));
    }
    if !(c.is_finite() && c > 0.0) {
        return Err(ModelError::Training(format!("C must be positive, got {c}")));
    }
    let d = columns;
    let nf = n as f64;
    let l2 = 1.0 / (c * nf);
    let threads = rayon::current_num_threads().max(1);
    let per_task = blocks.len().div_ceil(threads).max(1);

    let objective = |p: &[f64]| -> Result<(f64, Vec<f64>), ModelError> {
        let w: Vec<f32> = p[..d].iter().map(|&v| v as f32).collect();
        let bias = p[d];
        let partials: Vec<(f64, f64, Vec<f32>)> = blocks
            .par_chunks(per_task)
            .map(|chunk| {
                // f32 halves what the scattered gradient writes touch; its rounding (about
                // 1e-7 of the mean gradient at a million rows) is far below the tolerance.
                let mut grad = vec![0.0f32; d];
                let (mut loss, mut grad_bias) = (0.0f64, 0.0f64);
                for block in chunk {
                    for i in 0..block.rows() {
                        let (cols, vals) = block.row(i);
                        let z = row_logit(cols, vals, &w, bias);
                        let y = if block.labels[i] { 1.0 } else { 0.0 };
                        // softplus(z) - y·z, stably.
                        loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
                        let r = sigmoid(z) - y;
                        grad_bias += r;
                        let r32 = r as f32;
                        for (&col, &v) in cols.iter().zip(vals) {
                            grad[col as usize] += r32 * v;
                        }
                    }
                }
                (loss, grad_bias, grad)
            })
            .collect();
        let mut grad = vec![0.0f64; d + 1];
        let mut loss = 0.0;
        for (l, gb, g) in partials {
            loss += l;
            grad[d] += gb;
            for (a, b) in grad.iter_mut().zip(&g) {
                *a += f64::from(*b);
            }
        }
        let mut penalty = 0.0;
        for (g, &wj) in grad[..d].iter_mut().zip(&p[..d]) {
            *g = *g / nf + l2 * wj;
            penalty += wj * wj;
        }
        grad[d] /= nf;
        Ok((loss / nf + penalty * l2 / 2.0, grad))
    };

    let x0 = match start {
        Some(s) if s.len() == d + 1 => s.to_vec(),
        _ => {
            let rate = positives as f64 / nf;
            let mut x0 = vec![0.0; d + 1];
            x0[d] = (rate / (1.0 - rate)).ln();
            x0
        }
    };
    let m = lbfgs::minimize(objective, x0, max_iter, tol)?;
    Ok(Fit {
        params: m.x,
        iterations: m.iterations,
        converged: m.converged,
    })
}

/// The logits of every row, in order.
pub(crate) fn logits(blocks: &[&Block], params: &[f64]) -> Vec<f64> {
    let d = params.len().saturating_sub(1);
    let w: Vec<f32> = params[..d].iter().map(|&v| v as f32).collect();
    let bias = params.get(d).copied().unwrap_or(0.0);
    blocks
        .par_iter()
        .map(|block| {
            (0..block.rows())
                .map(|i| {
                    let (cols, vals) = block.row(i);
                    row_logit(cols, vals, &w, bias)
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Sparse rows from a known logistic model over 50 columns, 5 active per row.
    fn synthetic(n: usize, seed: u64) -> (Block, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let truth: Vec<f64> = (0..50)
            .map(|j| {
                if j < 10 {
                    2.0
                } else if j < 20 {
                    -2.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut block = Block::new();
        for _ in 0..n {
            let mut row: Vec<(u32, f32)> =
                (0..5).map(|_| (rng.random_range(0..50u32), 0.5)).collect();
            row.sort_unstable_by_key(|r| r.0);
            row.dedup_by_key(|r| r.0);
            let z: f64 = row
                .iter()
                .map(|&(c, v)| truth[c as usize] * f64::from(v))
                .sum();
            block.push(&row, rng.random::<f64>() < sigmoid(z));
        }
        (block, truth)
    }

    #[test]
    fn recovers_the_signs_of_a_known_model_and_ranks_well() {
        let (block, truth) = synthetic(20_000, 3);
        let blocks = [&block];
        let fit = fit(&blocks, 50, 10.0, None, 200, 1e-6).expect("fit");
        assert!(fit.converged, "{fit:?}");
        for (j, t) in truth.iter().enumerate() {
            if *t != 0.0 {
                assert_eq!(
                    fit.params[j].signum(),
                    t.signum(),
                    "column {j}: {:?}",
                    &fit.params[..50]
                );
            } else {
                assert!(fit.params[j].abs() < 0.3, "column {j}: {}", fit.params[j]);
            }
        }
        // As good a ranking as the true model's, up to noise.
        let y = labels(&blocks);
        let auc = crate::metrics::roc_auc(&y, &logits(&blocks, &fit.params)).expect("auc");
        let mut truth_params = truth.clone();
        truth_params.push(0.0);
        let best = crate::metrics::roc_auc(&y, &logits(&blocks, &truth_params)).expect("auc");
        assert!(auc > best - 0.01 && auc > 0.75, "{auc} vs {best}");
    }

    #[test]
    fn refuses_one_class() {
        let mut block = Block::new();
        block.push(&[(0, 1.0)], true);
        block.push(&[(1, 1.0)], true);
        assert!(fit(&[&block], 2, 1.0, None, 10, 1e-6).is_err());
    }
}
