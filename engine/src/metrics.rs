//! Evaluation metrics for binary (churn / no churn) models and for segmentations.
//!
//! Everything here is pure, `f64`, deterministic and `O(n log n)` (silhouette is
//! `O(sample² · dims)` by design), so the trainer and the server compute identical
//! numbers from identical inputs.
//!
//! No function panics on any input. Inputs a metric cannot be defined on (empty,
//! mismatched lengths, a single class, NaN scores, probabilities outside `[0, 1]`)
//! are refused with a [`MetricsError`] instead of producing NaN: every number in a
//! returned value is finite, because reports are stored as JSON and `serde_json`
//! writes NaN and infinities as `null`, which would not read back as `f64`.
//!
//! Conventions follow scikit-learn wherever it has one, so numbers can be checked
//! against it: ROC AUC counts tied pairs as half, average precision is
//! `average_precision_score` (step-wise, no interpolation), log loss clips at
//! `1e-15`, and silhouette gives points in singleton clusters 0.

use rand::{SeedableRng, rngs::StdRng, seq::index};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Curves are for plotting and for storing alongside a model, not for computing
/// areas (the areas are computed exactly from the full ranking), so a few hundred
/// points are plenty and keep a stored report small whatever the data size.
pub const MAX_CURVE_POINTS: usize = 200;

/// Upper bound on calibration bins and lift-curve points. Tables this long are
/// always a caller bug, and refusing them is better than an allocation failure,
/// which aborts the process rather than returning an error.
pub const MAX_TABLE_ROWS: usize = 10_000;

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before taking
/// logs, as scikit-learn does, so one confidently wrong prediction costs a large
/// but finite amount instead of making the whole loss infinite.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Calibration bins in a [`BinaryReport`]: deciles are what people read.
pub const REPORT_CALIBRATION_BINS: usize = 10;

/// Lift-curve points in a [`BinaryReport`]: one every 5% of customers.
pub const REPORT_LIFT_POINTS: usize = 20;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// No samples at all: every metric here is an average or a ranking over them.
    #[error("no samples to evaluate")]
    Empty,
    /// Labels and scores (or points and assignments) must pair up one to one;
    /// silently truncating would evaluate against the wrong rows.
    #[error("length mismatch: {labels} labels but {values} values")]
    LengthMismatch { labels: usize, values: usize },
    /// Ranking metrics compare positives against negatives, so both must occur.
    #[error("needs both classes, got {positives} positives and {negatives} negatives")]
    NeedsBothClasses { positives: usize, negatives: usize },
    /// A NaN or infinite score has no place in a ranking.
    #[error("score at index {index} is not finite ({value})")]
    NonFiniteScore { index: usize, value: f64 },
    /// Probability metrics are meaningless for values outside `[0, 1]` (or NaN);
    /// such values usually mean raw margins were passed instead of probabilities.
    #[error("probability at index {index} is not in [0, 1] ({value})")]
    ProbabilityOutOfRange { index: usize, value: f64 },
    /// Point coordinates must be finite for distances to mean anything.
    #[error("coordinate at index {index} is not finite")]
    NonFiniteCoordinate { index: usize },
    /// Flat point data must hold exactly `points × dims` values.
    #[error("data holds {values} values, not {points} points of {dims} dimensions")]
    DimensionMismatch {
        values: usize,
        points: usize,
        dims: usize,
    },
    /// Silhouette contrasts a point's own cluster with the nearest other one.
    #[error("needs at least 2 clusters among the evaluated points, got {found}")]
    NeedsTwoClusters { found: usize },
    /// A parameter (bins, fraction, points, dims, sample size) out of its range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

/// One equal-width bin of predicted probability.
///
/// Empty bins are kept (with `count` 0 and `mean_predicted` and `observed_rate`
/// both 0.0) so that tables from different models always line up row by row;
/// 0.0 rather than NaN keeps them serialisable, and `count` tells them apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Inclusive lower edge.
    pub lower: f64,
    /// Exclusive upper edge, except that the last bin also holds 1.0.
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// How much better than random the top `fraction` of customers by score is.
///
/// When the cut falls inside a group of tied scores, the tied group contributes
/// its positives pro rata, so the result never depends on row order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiftAt {
    /// The requested fraction; the group is `ceil(fraction · n)` customers, at least 1.
    pub fraction: f64,
    /// Positive rate in the group divided by the overall positive rate.
    pub lift: f64,
    /// Share of all positives that fall in the group.
    pub capture: f64,
    /// The lowest score in the group: contacting everyone at or above it.
    pub threshold: f64,
}

/// Everything the trainer stores about a binary model's quality on one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryReport {
    pub n: usize,
    pub positives: usize,
    pub base_rate: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub calibration: Vec<CalibrationBin>,
    pub lift_10: LiftAt,
    pub lift_20: LiftAt,
    /// `(false positive rate, true positive rate)`, see [`roc_curve`].
    pub roc: Vec<(f64, f64)>,
    /// `(recall, precision)`, see [`pr_curve`].
    pub pr: Vec<(f64, f64)>,
    pub lift: Vec<LiftAt>,
}

/// Area under the ROC curve.
///
/// Computed as the trapezoidal area under the exact, tie-grouped ROC curve with
/// integer counts, which is algebraically the Mann-Whitney `U / (P · N)` with
/// average ranks for ties (a tied positive/negative pair counts one half). The
/// integer form is exact up to the final division, so it cannot drift with `n`.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    Ok(Ranking::new(labels, scores)?.roc_auc())
}

/// ROC curve as `(fpr, tpr)` points, one per distinct score threshold from the
/// highest down, starting at `(0, 0)` and ending at `(1, 1)`; longer curves are
/// thinned evenly by threshold rank to [`MAX_CURVE_POINTS`], keeping both ends.
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Result<Vec<(f64, f64)>, MetricsError> {
    Ok(Ranking::new(labels, scores)?.roc_curve())
}

/// Average precision, exactly as scikit-learn's `average_precision_score`:
/// `Σ (Rₙ − Rₙ₋₁) · Pₙ` over distinct thresholds (ties grouped). Unlike the
/// trapezoidal area under the PR curve it does not reward the optimistic linear
/// interpolation between points, which overstates models on rare positives.
pub fn pr_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    Ok(Ranking::new(labels, scores)?.average_precision())
}

/// Precision-recall curve as `(recall, precision)` points, from the highest
/// threshold down. It starts at `(0, 1)` (scikit-learn's convention for the empty
/// selection) and ends at `(1, base rate)` (everyone selected); longer curves are
/// thinned evenly by threshold rank to [`MAX_CURVE_POINTS`], keeping both ends.
pub fn pr_curve(labels: &[bool], scores: &[f64]) -> Result<Vec<(f64, f64)>, MetricsError> {
    Ok(Ranking::new(labels, scores)?.pr_curve())
}

/// Mean negative log-likelihood of the labels under the predicted probabilities,
/// clipped by [`LOG_LOSS_EPS`]. Needs no particular class mix.
pub fn log_loss(labels: &[bool], probs: &[f64]) -> Result<f64, MetricsError> {
    check_probabilities(labels, probs)?;
    Ok(log_loss_unchecked(labels, probs))
}

/// Mean squared difference between probability and outcome (0 or 1): a proper
/// scoring rule that, unlike log loss, stays bounded for confident mistakes.
pub fn brier(labels: &[bool], probs: &[f64]) -> Result<f64, MetricsError> {
    check_probabilities(labels, probs)?;
    Ok(brier_unchecked(labels, probs))
}

/// Reliability table: `bins` equal-width bins over `[0, 1]`, bin `i` holding
/// probabilities in `[i/bins, (i+1)/bins)` and the last one also 1.0.
///
/// Membership is decided against the very edges reported in the table (not just
/// `floor(p · bins)`, which rounding can push across an edge), so every row is
/// consistent with its own `lower`/`upper`.
pub fn calibration_table(
    labels: &[bool],
    probs: &[f64],
    bins: usize,
) -> Result<Vec<CalibrationBin>, MetricsError> {
    check_probabilities(labels, probs)?;
    check_rows("bins", bins)?;
    Ok(calibration_unchecked(labels, probs, bins))
}

/// Lift and capture of the top `fraction` (in `(0, 1]`) of customers by score.
pub fn lift_at(labels: &[bool], scores: &[f64], fraction: f64) -> Result<LiftAt, MetricsError> {
    check_fraction(fraction)?;
    Ok(Ranking::new(labels, scores)?.lift_at(fraction))
}

/// [`lift_at`] for fractions `1/points, 2/points, …, 1`, from one sort.
pub fn lift_curve(
    labels: &[bool],
    scores: &[f64],
    points: usize,
) -> Result<Vec<LiftAt>, MetricsError> {
    check_rows("points", points)?;
    Ok(Ranking::new(labels, scores)?.lift_curve(points))
}

/// All binary metrics at once, validating and sorting only once.
///
/// `probs` must be probabilities (the report includes log loss, Brier and
/// calibration) and both classes must be present (it includes ranking metrics).
pub fn binary_report(labels: &[bool], probs: &[f64]) -> Result<BinaryReport, MetricsError> {
    check_probabilities(labels, probs)?;
    let ranking = Ranking::new(labels, probs)?;
    let n = labels.len();
    Ok(BinaryReport {
        n,
        positives: ranking.positives,
        base_rate: ranking.positives as f64 / n as f64,
        roc_auc: ranking.roc_auc(),
        pr_auc: ranking.average_precision(),
        log_loss: log_loss_unchecked(labels, probs),
        brier: brier_unchecked(labels, probs),
        calibration: calibration_unchecked(labels, probs, REPORT_CALIBRATION_BINS),
        lift_10: ranking.lift_at(0.1),
        lift_20: ranking.lift_at(0.2),
        roc: ranking.roc_curve(),
        pr: ranking.pr_curve(),
        lift: ranking.lift_curve(REPORT_LIFT_POINTS),
    })
}

/// Mean silhouette coefficient (Euclidean) of a clustering of row-major `f32`
/// points (`dims` values per point, one assignment per point).
///
/// Exact silhouette is quadratic in the number of points, too slow for a whole
/// customer base, so it is estimated on a uniform random sample of at most
/// `sample` points, drawn reproducibly from `seed` (all points when there are no
/// more than `sample`), with distances taken only between sampled points: cost
/// `O(sample² · dims)`. Points whose cluster has no other sampled member score 0,
/// as in scikit-learn. At least 2 clusters must occur in the sample; a tiny
/// cluster can be missed by sampling, in which case a larger `sample` helps.
pub fn silhouette(
    data: &[f32],
    dims: usize,
    assignments: &[usize],
    sample: usize,
    seed: u64,
) -> Result<f64, MetricsError> {
    if dims == 0 {
        return Err(MetricsError::InvalidParameter(
            "dims must be at least 1".into(),
        ));
    }
    if sample < 2 {
        return Err(MetricsError::InvalidParameter(format!(
            "sample must be at least 2, got {sample}"
        )));
    }
    let n = assignments.len();
    if n.checked_mul(dims) != Some(data.len()) {
        return Err(MetricsError::DimensionMismatch {
            values: data.len(),
            points: n,
            dims,
        });
    }
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if let Some(index) = data.iter().position(|v| !v.is_finite()) {
        return Err(MetricsError::NonFiniteCoordinate { index });
    }

    let mut chosen: Vec<usize> = if n <= sample {
        (0..n).collect()
    } else {
        let mut rng = StdRng::seed_from_u64(seed);
        index::sample(&mut rng, n, sample).into_vec()
    };
    // Sorted so the summation order, and hence the last bits of the result, does
    // not depend on the order the sampler happened to return indices in.
    chosen.sort_unstable();

    // Cluster ids can be arbitrary; map them to dense indices for the sum buffers.
    let mut ids: Vec<usize> = chosen
        .iter()
        .filter_map(|&i| assignments.get(i).copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(MetricsError::NeedsTwoClusters { found: ids.len() });
    }
    let mut members: Vec<(usize, &[f32])> = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let (Some(id), Some(row)) = (assignments.get(i), data.get(i * dims..(i + 1) * dims)) else {
            continue;
        };
        if let Ok(cluster) = ids.binary_search(id) {
            members.push((cluster, row));
        }
    }
    let mut sizes = vec![0usize; ids.len()];
    for &(cluster, _) in &members {
        sizes[cluster] += 1;
    }

    let mut sums = vec![0.0f64; ids.len()];
    let mut total = Sum::default();
    for (i, &(own, row)) in members.iter().enumerate() {
        if sizes[own] < 2 {
            total.add(0.0);
            continue;
        }
        sums.iter_mut().for_each(|s| *s = 0.0);
        for (j, &(other, other_row)) in members.iter().enumerate() {
            if i != j {
                sums[other] += euclidean(row, other_row);
            }
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = sums
            .iter()
            .zip(&sizes)
            .enumerate()
            .filter(|&(c, (_, &size))| c != own && size > 0)
            .map(|(_, (&sum, &size))| sum / size as f64)
            .fold(f64::INFINITY, f64::min);
        let scale = a.max(b);
        // Coincident clusters (a = b = 0) are indistinguishable: 0, as scikit-learn.
        total.add(if scale > 0.0 { (b - a) / scale } else { 0.0 });
    }
    Ok(total.value() / members.len() as f64)
}

fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// Cumulative counts at the end of one group of tied scores, in descending
/// score order: selecting everyone scored `>= score` selects `seen` customers,
/// `tp` of them positive. Every threshold-based metric is a function of these.
#[derive(Debug, Clone, Copy)]
struct Group {
    score: f64,
    seen: usize,
    tp: usize,
}

/// Validated, sorted and tie-grouped scores, shared by all ranking metrics.
#[derive(Debug)]
struct Ranking {
    groups: Vec<Group>,
    positives: usize,
    negatives: usize,
}

impl Ranking {
    fn new(labels: &[bool], scores: &[f64]) -> Result<Self, MetricsError> {
        check_lengths(labels, scores)?;
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(MetricsError::NonFiniteScore { index, value });
        }
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(MetricsError::NeedsBothClasses {
                positives,
                negatives,
            });
        }

        let mut pairs: Vec<(f64, bool)> =
            scores.iter().copied().zip(labels.iter().copied()).collect();
        // total_cmp puts -0.0 right next to 0.0, and groups are split with `!=`,
        // so the two zeros still land in one tie group.
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut groups: Vec<Group> = Vec::new();
        let (mut seen, mut tp) = (0, 0);
        for (i, &(score, label)) in pairs.iter().enumerate() {
            seen += 1;
            tp += usize::from(label);
            let group_ends = pairs.get(i + 1).is_none_or(|next| next.0 != score);
            if group_ends {
                groups.push(Group { score, seen, tp });
            }
        }
        Ok(Self {
            groups,
            positives,
            negatives,
        })
    }

    fn roc_auc(&self) -> f64 {
        let mut twice_area: u128 = 0;
        let (mut prev_fp, mut prev_tp) = (0u128, 0u128);
        for g in &self.groups {
            let (fp, tp) = ((g.seen - g.tp) as u128, g.tp as u128);
            twice_area += (fp - prev_fp) * (tp + prev_tp);
            (prev_fp, prev_tp) = (fp, tp);
        }
        let twice_pairs = 2 * self.positives as u128 * self.negatives as u128;
        twice_area as f64 / twice_pairs as f64
    }

    fn roc_curve(&self) -> Vec<(f64, f64)> {
        let (p, n) = (self.positives as f64, self.negatives as f64);
        let points = std::iter::once((0.0, 0.0))
            .chain(
                self.groups
                    .iter()
                    .map(|g| ((g.seen - g.tp) as f64 / n, g.tp as f64 / p)),
            )
            .collect();
        thin(points)
    }

    fn average_precision(&self) -> f64 {
        let p = self.positives as f64;
        let mut total = Sum::default();
        let mut prev_tp = 0;
        for g in &self.groups {
            if g.tp > prev_tp {
                let recall_step = (g.tp - prev_tp) as f64 / p;
                total.add(recall_step * (g.tp as f64 / g.seen as f64));
            }
            prev_tp = g.tp;
        }
        total.value()
    }

    fn pr_curve(&self) -> Vec<(f64, f64)> {
        let p = self.positives as f64;
        let points = std::iter::once((0.0, 1.0))
            .chain(
                self.groups
                    .iter()
                    .map(|g| (g.tp as f64 / p, g.tp as f64 / g.seen as f64)),
            )
            .collect();
        thin(points)
    }

    fn n(&self) -> usize {
        self.positives + self.negatives
    }

    /// `fraction` must already be checked to lie in `(0, 1]`.
    fn lift_at(&self, fraction: f64) -> LiftAt {
        let n = self.n();
        // The relative slack absorbs representation error, so that 0.07 of 100
        // customers is 7 and not 8 (0.07 · 100 is 7.000000000000001 in f64).
        let wanted = (fraction * n as f64 * (1.0 - 1e-9)).ceil();
        let k = (wanted as usize).clamp(1, n);
        let (positives_in_top, threshold) = self.positives_in_top(k);
        let base_rate = self.positives as f64 / n as f64;
        LiftAt {
            fraction,
            lift: positives_in_top / k as f64 / base_rate,
            capture: positives_in_top / self.positives as f64,
            threshold,
        }
    }

    /// Expected positives among the top `k` (`1..=n`) and the lowest score among
    /// them; a tie group straddling the cut contributes its positives pro rata.
    fn positives_in_top(&self, k: usize) -> (f64, f64) {
        let at = self.groups.partition_point(|g| g.seen < k);
        let Some(group) = self.groups.get(at) else {
            // Unreachable for k <= n: the last group has seen == n.
            return (
                self.positives as f64,
                self.groups.last().map_or(0.0, |g| g.score),
            );
        };
        let (before_seen, before_tp) = at
            .checked_sub(1)
            .and_then(|i| self.groups.get(i))
            .map_or((0, 0), |g| (g.seen, g.tp));
        let taken = (k - before_seen) as f64;
        let tied_rate = (group.tp - before_tp) as f64 / (group.seen - before_seen) as f64;
        (before_tp as f64 + taken * tied_rate, group.score)
    }

    fn lift_curve(&self, points: usize) -> Vec<LiftAt> {
        (1..=points)
            .map(|j| self.lift_at(j as f64 / points as f64))
            .collect()
    }
}

/// Keeps at most [`MAX_CURVE_POINTS`], evenly spaced by index, first and last kept.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let m = points.len();
    if m <= MAX_CURVE_POINTS {
        return points;
    }
    (0..MAX_CURVE_POINTS)
        .filter_map(|j| points.get(j * (m - 1) / (MAX_CURVE_POINTS - 1)).copied())
        .collect()
}

fn check_lengths(labels: &[bool], values: &[f64]) -> Result<(), MetricsError> {
    if labels.len() != values.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            values: values.len(),
        });
    }
    if labels.is_empty() {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

fn check_probabilities(labels: &[bool], probs: &[f64]) -> Result<(), MetricsError> {
    check_lengths(labels, probs)?;
    match probs
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        Some((index, &value)) => Err(MetricsError::ProbabilityOutOfRange { index, value }),
        None => Ok(()),
    }
}

fn check_rows(name: &str, rows: usize) -> Result<(), MetricsError> {
    if rows == 0 || rows > MAX_TABLE_ROWS {
        return Err(MetricsError::InvalidParameter(format!(
            "{name} must be in 1..={MAX_TABLE_ROWS}, got {rows}"
        )));
    }
    Ok(())
}

fn check_fraction(fraction: f64) -> Result<(), MetricsError> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(MetricsError::InvalidParameter(format!(
            "fraction must be in (0, 1], got {fraction}"
        )));
    }
    Ok(())
}

fn log_loss_unchecked(labels: &[bool], probs: &[f64]) -> f64 {
    let mut total = Sum::default();
    for (&label, &p) in labels.iter().zip(probs) {
        let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
        total.add(-(if label { p } else { 1.0 - p }).ln());
    }
    total.value() / labels.len() as f64
}

fn brier_unchecked(labels: &[bool], probs: &[f64]) -> f64 {
    let mut total = Sum::default();
    for (&label, &p) in labels.iter().zip(probs) {
        let d = p - f64::from(u8::from(label));
        total.add(d * d);
    }
    total.value() / labels.len() as f64
}

fn calibration_unchecked(labels: &[bool], probs: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let edge = |i: usize| i as f64 / bins as f64;
    let mut counts = vec![0usize; bins];
    let mut positives = vec![0usize; bins];
    let mut predicted: Vec<Sum> = vec![Sum::default(); bins];
    for (&label, &p) in labels.iter().zip(probs) {
        let mut i = ((p * bins as f64).floor() as usize).min(bins - 1);
        if i > 0 && p < edge(i) {
            i -= 1;
        } else if i + 1 < bins && p >= edge(i + 1) {
            i += 1;
        }
        counts[i] += 1;
        positives[i] += usize::from(label);
        predicted[i].add(p);
    }
    (0..bins)
        .map(|i| {
            let count = counts[i];
            let (mean_predicted, observed_rate) = if count == 0 {
                (0.0, 0.0)
            } else {
                (
                    predicted[i].value() / count as f64,
                    positives[i] as f64 / count as f64,
                )
            };
            CalibrationBin {
                lower: edge(i),
                upper: edge(i + 1),
                count,
                mean_predicted,
                observed_rate,
            }
        })
        .collect()
}

/// Neumaier-compensated sum: averages over millions of customers otherwise lose
/// digits, and it keeps results independent of data size in the low bits.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        self.compensation += if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use std::cmp::Ordering;

    const F: bool = false;
    const T: bool = true;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12
    }

    /// 100 customers, the first 25 (highest scores) positive.
    fn perfect_100() -> (Vec<bool>, Vec<f64>) {
        let labels = (0..100).map(|i| i < 25).collect();
        let scores = (0..100).map(|i| 1.0 - f64::from(i) / 100.0).collect();
        (labels, scores)
    }

    #[test]
    fn roc_auc_matches_scikit_learn_docs_example() {
        let auc = roc_auc(&[F, F, T, T], &[0.1, 0.4, 0.35, 0.8]).expect("auc");
        assert_eq!(auc, 0.75);
    }

    #[test]
    fn roc_auc_ties_and_perfect_ranking() {
        let labels = [F, T, F, T, T];
        assert_eq!(roc_auc(&labels, &[0.3; 5]).expect("auc"), 0.5);
        assert_eq!(
            roc_auc(&labels, &[0.1, 0.9, 0.2, 0.8, 0.7]).expect("auc"),
            1.0
        );
        assert_eq!(
            roc_auc(&labels, &[0.9, 0.1, 0.8, 0.2, 0.3]).expect("auc"),
            0.0
        );
        // One tied positive/negative pair out of 4 counts as half: 3.5 / 4.
        assert_eq!(
            roc_auc(&[F, F, T, T], &[0.1, 0.5, 0.5, 0.9]).expect("auc"),
            0.875
        );
        // -0.0 and 0.0 are the same score.
        assert_eq!(roc_auc(&[F, T], &[0.0, -0.0]).expect("auc"), 0.5);
    }

    #[test]
    fn roc_auc_equals_brute_force_pair_count_with_ties() {
        let mut rng = StdRng::seed_from_u64(7);
        let labels: Vec<bool> = (0..300).map(|_| rng.random_bool(0.3)).collect();
        let scores: Vec<f64> = (0..300)
            .map(|_| f64::from(rng.random_range(0..20u8)) / 20.0)
            .collect();
        let mut twice = 0u64;
        let mut pairs = 0u64;
        for (i, &li) in labels.iter().enumerate() {
            for (j, &lj) in labels.iter().enumerate() {
                if li && !lj {
                    pairs += 1;
                    twice += match scores[i].partial_cmp(&scores[j]) {
                        Some(Ordering::Greater) => 2,
                        Some(Ordering::Equal) => 1,
                        _ => 0,
                    };
                }
            }
        }
        let expected = twice as f64 / (2 * pairs) as f64;
        assert!(close(roc_auc(&labels, &scores).expect("auc"), expected));
    }

    #[test]
    fn average_precision_matches_scikit_learn_docs_example() {
        let ap = pr_auc(&[F, F, T, T], &[0.1, 0.4, 0.35, 0.8]).expect("ap");
        assert_eq!(ap, 0.8333333333333333);
    }

    #[test]
    fn average_precision_groups_ties() {
        // All tied: one threshold, recall 0 -> 1 at precision = base rate.
        assert!(close(pr_auc(&[F, T, F, F], &[0.5; 4]).expect("ap"), 0.25));
        // scikit-learn: average_precision_score([1,0,1,0], [0.9,0.5,0.5,0.1]) = 0.8333…
        // (recall 0.5 at precision 1, then 0.5 more at precision 2/3).
        assert!(close(
            pr_auc(&[T, F, T, F], &[0.9, 0.5, 0.5, 0.1]).expect("ap"),
            0.5 + 0.5 * 2.0 / 3.0
        ));
        assert_eq!(pr_auc(&[T, T, F], &[0.9, 0.8, 0.1]).expect("ap"), 1.0);
    }

    #[test]
    fn roc_curve_small_is_exact() {
        let curve = roc_curve(&[F, F, T, T], &[0.1, 0.4, 0.35, 0.8]).expect("roc");
        assert_eq!(
            curve,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn pr_curve_small_is_exact() {
        let curve = pr_curve(&[F, F, T, T], &[0.1, 0.4, 0.35, 0.8]).expect("pr");
        assert_eq!(
            curve,
            vec![
                (0.0, 1.0),
                (0.5, 1.0),
                (0.5, 0.5),
                (1.0, 2.0 / 3.0),
                (1.0, 0.5)
            ]
        );
    }

    #[test]
    fn long_curves_are_thinned_and_keep_their_ends() {
        let labels: Vec<bool> = (0..5000).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> = (0..5000).map(|i| f64::from(i) / 5000.0).collect();
        let roc = roc_curve(&labels, &scores).expect("roc");
        assert_eq!(roc.len(), MAX_CURVE_POINTS);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(roc.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let pr = pr_curve(&labels, &scores).expect("pr");
        assert_eq!(pr.len(), MAX_CURVE_POINTS);
        assert_eq!(pr.first(), Some(&(0.0, 1.0)));
        assert_eq!(pr.last(), Some(&(1.0, 1667.0 / 5000.0)));
    }

    #[test]
    fn log_loss_hand_computed() {
        let loss = log_loss(&[T, F], &[0.8, 0.4]).expect("loss");
        assert!(close(loss, -(0.8f64.ln() + 0.6f64.ln()) / 2.0));
        // Clipped: a certain mistake costs -ln(1e-15), not infinity.
        let loss = log_loss(&[T], &[0.0]).expect("loss");
        assert!(close(loss, -(1e-15f64).ln()));
        assert_eq!(
            log_loss(&[T, F], &[1.0, 0.0]).expect("loss"),
            -(1.0f64 - 1e-15).ln()
        );
    }

    #[test]
    fn brier_hand_computed() {
        // (0.2² + 0.4² + 0 + 1) / 4
        let b = brier(&[T, F, T, F], &[0.8, 0.4, 1.0, 1.0]).expect("brier");
        assert!(close(b, (0.04 + 0.16 + 0.0 + 1.0) / 4.0));
        // Single class is fine for probability metrics.
        assert_eq!(brier(&[F, F], &[0.0, 0.0]).expect("brier"), 0.0);
    }

    #[test]
    fn calibration_bins_counts_and_edges() {
        let labels = [F, T, F, T, T, F];
        let probs = [0.0, 0.05, 0.3, 0.3, 0.99, 1.0];
        let table = calibration_table(&labels, &probs, 10).expect("table");
        assert_eq!(table.len(), 10);
        let counts: Vec<usize> = table.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 0, 0, 2, 0, 0, 0, 0, 0, 2]);
        assert_eq!(table[0].lower, 0.0);
        assert_eq!(table[9].upper, 1.0);
        assert!(close(table[0].mean_predicted, 0.025));
        assert_eq!(table[0].observed_rate, 0.5);
        assert_eq!(table[3].observed_rate, 0.5);
        assert!(close(table[9].mean_predicted, 0.995));
        assert_eq!(
            table[1],
            CalibrationBin {
                lower: 0.1,
                upper: 0.2,
                count: 0,
                mean_predicted: 0.0,
                observed_rate: 0.0
            }
        );
        // Values exactly on an edge go to the bin that starts there.
        let table = calibration_table(&[F, F, F], &[0.2, 0.6, 0.7], 10).expect("table");
        assert_eq!(table[2].count, 1);
        assert_eq!(table[6].count, 1);
        assert_eq!(table[7].count, 1);
        for b in &table {
            assert!(b.lower <= b.upper);
        }
    }

    #[test]
    fn lift_of_perfect_ranking() {
        let (labels, scores) = perfect_100();
        let l = lift_at(&labels, &scores, 0.1).expect("lift");
        assert_eq!(l.lift, 4.0);
        assert_eq!(l.capture, 0.4);
        assert!(close(l.threshold, 0.91));
        let l = lift_at(&labels, &scores, 0.5).expect("lift");
        assert_eq!(l.lift, 2.0);
        assert_eq!(l.capture, 1.0);
        let l = lift_at(&labels, &scores, 1.0).expect("lift");
        assert_eq!((l.lift, l.capture), (1.0, 1.0));
        // 0.07 * 100 must be 7 customers, not 8.
        let l = lift_at(&labels, &scores, 0.07).expect("lift");
        assert!(close(l.threshold, 0.94));
        // Rounds up to at least one customer.
        let l = lift_at(&labels, &scores, 1e-9).expect("lift");
        assert_eq!((l.lift, l.capture, l.threshold), (4.0, 0.04, 1.0));
    }

    #[test]
    fn lift_shares_ties_pro_rata() {
        // All scores tied: any top group is the average customer.
        let labels = [T, F, F, F];
        let l = lift_at(&labels, &[0.5; 4], 0.25).expect("lift");
        assert_eq!((l.lift, l.capture, l.threshold), (1.0, 0.25, 0.5));
    }

    #[test]
    fn lift_curve_fractions() {
        let (labels, scores) = perfect_100();
        let curve = lift_curve(&labels, &scores, 4).expect("curve");
        let fractions: Vec<f64> = curve.iter().map(|l| l.fraction).collect();
        assert_eq!(fractions, vec![0.25, 0.5, 0.75, 1.0]);
        let lifts: Vec<f64> = curve.iter().map(|l| l.lift).collect();
        assert!(close(lifts[0], 4.0) && close(lifts[1], 2.0));
        assert!(close(lifts[2], 4.0 / 3.0) && close(lifts[3], 1.0));
    }

    #[test]
    fn binary_report_assembles_everything_and_round_trips_json() {
        let (labels, _) = perfect_100();
        let probs: Vec<f64> = (0..100).map(|i| if i < 25 { 0.7 } else { 0.2 }).collect();
        let report = binary_report(&labels, &probs).expect("report");
        assert_eq!((report.n, report.positives), (100, 25));
        assert_eq!(report.base_rate, 0.25);
        assert_eq!(report.roc_auc, 1.0);
        assert_eq!(report.pr_auc, 1.0);
        assert!(close(
            report.log_loss,
            -(25.0 * 0.7f64.ln() + 75.0 * 0.8f64.ln()) / 100.0
        ));
        assert!(close(report.brier, (25.0 * 0.09 + 75.0 * 0.04) / 100.0));
        assert_eq!(report.calibration.len(), REPORT_CALIBRATION_BINS);
        assert_eq!(report.calibration[2].count, 75);
        assert_eq!(report.calibration[7].count, 25);
        assert_eq!(report.lift_10.lift, 4.0);
        assert_eq!(report.lift_20.capture, 0.8);
        assert_eq!(report.lift.len(), REPORT_LIFT_POINTS);
        assert_eq!(report.roc.last(), Some(&(1.0, 1.0)));
        let json = serde_json::to_string(&report).expect("serialise");
        // Every number is finite, so the JSON reads back. (Without serde_json's
        // `float_roundtrip` feature parsing may differ in the last bit, hence `close`.)
        let back: BinaryReport = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back.calibration, report.calibration);
        assert_eq!((back.roc, back.pr), (report.roc, report.pr));
        assert_eq!(back.lift.len(), report.lift.len());
        for (a, b) in back.lift.iter().zip(&report.lift) {
            assert!(close(a.lift, b.lift) && close(a.capture, b.capture));
        }
    }

    #[test]
    fn errors_on_bad_input() {
        assert_eq!(roc_auc(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(log_loss(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(
            pr_auc(&[T, F], &[0.5]),
            Err(MetricsError::LengthMismatch {
                labels: 2,
                values: 1
            })
        );
        assert_eq!(
            roc_auc(&[T, T], &[0.1, 0.2]),
            Err(MetricsError::NeedsBothClasses {
                positives: 2,
                negatives: 0
            })
        );
        assert!(matches!(
            lift_at(&[F, F], &[0.1, 0.2], 0.1),
            Err(MetricsError::NeedsBothClasses { .. })
        ));
        assert!(matches!(
            binary_report(&[F], &[0.1]),
            Err(MetricsError::NeedsBothClasses { .. })
        ));
        assert!(matches!(
            roc_curve(&[T, F], &[f64::NAN, 0.2]),
            Err(MetricsError::NonFiniteScore { index: 0, .. })
        ));
        assert!(matches!(
            brier(&[T, F], &[0.5, f64::NAN]),
            Err(MetricsError::ProbabilityOutOfRange { index: 1, .. })
        ));
        assert!(matches!(
            binary_report(&[T, F], &[1.5, 0.2]),
            Err(MetricsError::ProbabilityOutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            calibration_table(&[T], &[0.5], 0),
            Err(MetricsError::InvalidParameter(_))
        ));
        assert!(matches!(
            lift_at(&[T, F], &[0.5, 0.1], 0.0),
            Err(MetricsError::InvalidParameter(_))
        ));
        assert!(matches!(
            lift_at(&[T, F], &[0.5, 0.1], f64::NAN),
            Err(MetricsError::InvalidParameter(_))
        ));
        assert!(matches!(
            lift_curve(&[T, F], &[0.5, 0.1], 0),
            Err(MetricsError::InvalidParameter(_))
        ));
    }

    #[test]
    fn random_inputs_give_finite_results_or_errors() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let n = rng.random_range(0..12usize);
            let labels: Vec<bool> = (0..n).map(|_| rng.random_bool(0.4)).collect();
            // Few distinct values, so ties are common; the exact edges 0 and 1 too.
            let probs: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(0..=4u8)) / 4.0)
                .collect();
            if let Ok(r) = binary_report(&labels, &probs) {
                let mut all = vec![r.base_rate, r.roc_auc, r.pr_auc, r.log_loss, r.brier];
                all.extend(r.roc.iter().flat_map(|&(a, b)| [a, b]));
                all.extend(r.pr.iter().flat_map(|&(a, b)| [a, b]));
                for l in r.lift.iter().chain([&r.lift_10, &r.lift_20]) {
                    all.extend([l.lift, l.capture, l.threshold]);
                    assert!(l.capture <= 1.0 + 1e-12);
                }
                for b in &r.calibration {
                    all.extend([b.mean_predicted, b.observed_rate]);
                }
                assert!(all.iter().all(|v| v.is_finite()), "{r:?}");
                assert!((0.0..=1.0).contains(&r.roc_auc) && (0.0..=1.0).contains(&r.pr_auc));
                assert_eq!(r.calibration.iter().map(|b| b.count).sum::<usize>(), n);
            }
            let dims = rng.random_range(1..3usize);
            let data: Vec<f32> = (0..n * dims).map(|_| rng.random_range(-1.0..1.0)).collect();
            let assignments: Vec<usize> = (0..n).map(|_| rng.random_range(0..3)).collect();
            if let Ok(s) = silhouette(&data, dims, &assignments, 5, 9) {
                assert!((-1.0..=1.0).contains(&s), "{s}");
            }
        }
    }

    fn blob(rng: &mut StdRng, n: usize, centre: (f32, f32), data: &mut Vec<f32>) {
        for _ in 0..n {
            data.push(centre.0 + rng.random_range(-1.0..1.0f32));
            data.push(centre.1 + rng.random_range(-1.0..1.0f32));
        }
    }

    #[test]
    fn silhouette_hand_computed() {
        // 1-D: {0, 1} and {10, 11}.
        let s = silhouette(&[0.0, 1.0, 10.0, 11.0], 1, &[3, 3, 8, 8], 100, 0).expect("s");
        assert!(close(s, (9.5 / 10.5 + 8.5 / 9.5) / 2.0));
        // A singleton cluster scores 0: (0.9 + 8/9 + 0) / 3.
        let s = silhouette(&[0.0, 1.0, 10.0], 1, &[0, 0, 1], 100, 0).expect("s");
        assert!(close(s, (0.9 + 8.0 / 9.0) / 3.0));
    }

    #[test]
    fn silhouette_separated_blobs_near_one() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut data = Vec::new();
        blob(&mut rng, 150, (0.0, 0.0), &mut data);
        blob(&mut rng, 150, (100.0, 100.0), &mut data);
        let assignments: Vec<usize> = (0..300).map(|i| usize::from(i >= 150)).collect();
        let s = silhouette(&data, 2, &assignments, 1000, 0).expect("s");
        assert!(s > 0.98, "{s}");
        // Sampled: deterministic for a seed, and still near 1.
        let a = silhouette(&data, 2, &assignments, 100, 42).expect("s");
        let b = silhouette(&data, 2, &assignments, 100, 42).expect("s");
        assert_eq!(a, b);
        assert!(a > 0.98, "{a}");
    }

    #[test]
    fn silhouette_arbitrary_split_of_one_blob_near_zero() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut data = Vec::new();
        blob(&mut rng, 400, (5.0, -3.0), &mut data);
        let assignments: Vec<usize> = (0..400).map(|i| i % 2).collect();
        let s = silhouette(&data, 2, &assignments, 400, 0).expect("s");
        assert!(s.abs() < 0.05, "{s}");
    }

    #[test]
    fn silhouette_errors() {
        assert_eq!(silhouette(&[], 2, &[], 10, 0), Err(MetricsError::Empty));
        assert!(matches!(
            silhouette(&[0.0, 1.0, 2.0], 2, &[0, 1], 10, 0),
            Err(MetricsError::DimensionMismatch { .. })
        ));
        assert!(matches!(
            silhouette(&[0.0, 1.0], 0, &[0, 1], 10, 0),
            Err(MetricsError::InvalidParameter(_))
        ));
        assert!(matches!(
            silhouette(&[0.0, 1.0], 1, &[0, 1], 1, 0),
            Err(MetricsError::InvalidParameter(_))
        ));
        assert_eq!(
            silhouette(&[0.0, 1.0], 1, &[4, 4], 10, 0),
            Err(MetricsError::NeedsTwoClusters { found: 1 })
        );
        assert!(matches!(
            silhouette(&[0.0, f32::NAN], 1, &[0, 1], 10, 0),
            Err(MetricsError::NonFiniteCoordinate { index: 1 })
        ));
        assert!(matches!(
            silhouette(&[0.0], usize::MAX, &[0, 1], 10, 0),
            Err(MetricsError::DimensionMismatch { .. })
        ));
    }
}
