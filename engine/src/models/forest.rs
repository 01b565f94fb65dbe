//! A random forest of smartcore decision trees, each grown on a bootstrap sample of the
//! rows and a random subset of the columns.
//!
//! smartcore's own `RandomForestClassifier` gives no probabilities, so the forest is
//! assembled here from `DecisionTreeClassifier`s. Note that smartcore 0.7's
//! `predict_proba` is one-hot at the leaf (it reports the leaf's majority class, not
//! its class frequencies), so a forest probability is the share of trees voting
//! churn: a good ranking score, but coarse (steps of 1/trees) and not calibrated.
//!
//! Everything is deterministic for a given seed: tree `i` draws its rows, columns
//! and smartcore seed from its own generator, whichever thread fits it.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters,
};

use super::{ModelError, Rows};
use crate::metrics::roc_auc;

type Tree = DecisionTreeClassifier<f32, u32, DenseMatrix<f32>, Vec<u32>>;

const FORMAT_VERSION: u32 = 1;
/// Trees are fitted and scored in this many fixed groups, one thread each. The
/// grouping is fixed (not taken from the machine) so sums add up in the same order
/// everywhere.
const THREADS: usize = 2;
/// Rows per scoring batch, to bound memory on million-row inputs.
const SCORE_CHUNK_ROWS: usize = 65_536;
/// Permutation importance is measured on at most this many rows.
const IMPORTANCE_ROWS: usize = 5_000;

/// Fitting settings.
#[derive(Debug, Clone)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Columns each tree sees; `None` picks `max(⌈√cols⌉, cols/3)`.
    pub features_per_tree: Option<usize>,
    pub seed: u64,
    /// Bootstrap sample size cap: each tree draws `min(rows, max_rows_per_tree)` rows
    /// with replacement, so fits on millions of rows stay bounded.
    pub max_rows_per_tree: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            trees: 100,
            max_depth: 10,
            min_samples_leaf: 20,
            features_per_tree: None,
            seed: 0,
            max_rows_per_tree: 50_000,
        }
    }
}

impl ForestParams {
    /// The number of columns each tree sees for data with `cols` columns.
    pub fn columns_per_tree(&self, cols: usize) -> usize {
        let k = self.features_per_tree.unwrap_or_else(|| {
            let sqrt = (cols as f64).sqrt().ceil() as usize;
            sqrt.max(cols / 3)
        });
        k.clamp(1, cols.max(1))
    }
}

#[derive(Debug, PartialEq)]
enum Learner {
    Tree(Box<Tree>),
    /// The bootstrap sample held a single class (true: all churned).
    Constant(bool),
}

#[derive(Debug, PartialEq)]
struct Member {
    /// Ascending indices of the inputs this tree reads, in the order it reads them.
    columns: Vec<usize>,
    learner: Learner,
}

impl Member {
    /// Positive-class probabilities for the rows of `data` (row-major, `cols` wide).
    fn probabilities(&self, data: &[f32], cols: usize) -> Result<Vec<f64>, ModelError> {
        let rows = data.len() / cols;
        let tree = match &self.learner {
            Learner::Constant(positive) => return Ok(vec![f64::from(u8::from(*positive)); rows]),
            Learner::Tree(tree) => tree,
        };
        // Column-major: each selected column's values in turn.
        let mut values = Vec::with_capacity(rows * self.columns.len());
        for &c in &self.columns {
            values.extend(data.chunks_exact(cols).map(|row| row[c]));
        }
        let matrix = DenseMatrix::new(rows, self.columns.len(), values, true)
            .map_err(|e| ModelError::Shape(e.to_string()))?;
        let proba = tree
            .predict_proba(&matrix)
            .map_err(|e| ModelError::Shape(format!("tree prediction failed: {e}")))?;
        // The tree's classes are the sorted labels it saw, [0, 1] (single-class
        // samples become `Constant`, and `load` checks files): column 1 is churn.
        if proba.shape() != (rows, 2) {
            return Err(ModelError::Shape(format!(
                "a tree gave {:?} probabilities for {rows} rows of 2 classes",
                proba.shape()
            )));
        }
        Ok((0..rows).map(|i| *proba.get((i, 1))).collect())
    }
}

/// The fitted forest.
#[derive(PartialEq)]
pub struct Forest {
    inputs: usize,
    members: Vec<Member>,
}

impl fmt::Debug for Forest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forest")
            .field("inputs", &self.inputs)
            .field("trees", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// The `THREADS` contiguous groups of `0..n`, some possibly empty.
fn groups(n: usize) -> [Range<usize>; THREADS] {
    let per = n.div_ceil(THREADS);
    std::array::from_fn(|t| (t * per).min(n)..((t + 1) * per).min(n))
}

/// A generator for item `index` of a seeded family, independent of the others.
fn derived_rng(seed: u64, index: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn fit_member(
    x: Rows<'_>,
    y: &[bool],
    params: &ForestParams,
    k: usize,
    index: usize,
) -> Result<Member, ModelError> {
    let mut rng = derived_rng(params.seed, index);
    let mut columns = rand::seq::index::sample(&mut rng, x.cols, k).into_vec();
    columns.sort_unstable();
    let m = x.rows.min(params.max_rows_per_tree);
    let picks: Vec<usize> = (0..m).map(|_| rng.random_range(0..x.rows)).collect();
    let labels: Vec<u32> = picks.iter().map(|&r| u32::from(y[r])).collect();
    let positives = labels.iter().filter(|&&l| l == 1).count();
    if positives == 0 || positives == m {
        return Ok(Member {
            columns,
            learner: Learner::Constant(positives > 0),
        });
    }
    let mut values = Vec::with_capacity(m * k);
    for &c in &columns {
        values.extend(picks.iter().map(|&r| x.data[r * x.cols + c]));
    }
    let matrix = DenseMatrix::new(m, k, values, true)
        .map_err(|e| ModelError::Training(format!("tree {index}: {e}")))?;
    let mut tree_params = DecisionTreeClassifierParameters::default()
        .with_max_depth(params.max_depth)
        .with_min_samples_leaf(params.min_samples_leaf);
    tree_params.seed = Some(rng.random());
    let tree = Tree::fit(&matrix, &labels, tree_params)
        .map_err(|e| ModelError::Training(format!("tree {index}: {e}")))?;
    Ok(Member {
        columns,
        learner: Learner::Tree(Box::new(tree)),
    })
}

fn check_rows(x: Rows<'_>, inputs: usize) -> Result<(), ModelError> {
    if x.cols != inputs || x.data.len() != x.rows * x.cols {
        return Err(ModelError::Shape(format!(
            "model takes {inputs} inputs, rows have {} ({} values for {} rows)",
            x.cols,
            x.data.len(),
            x.rows
        )));
    }
    Ok(())
}

impl Forest {
    /// Fits `params.trees` trees on `x` (standardized rows) and labels `y`.
    pub fn fit(x: Rows<'_>, y: &[bool], params: &ForestParams) -> Result<Self, ModelError> {
        super::check_training_set(x, y)?;
        let bad = |what: &str| Err(ModelError::Training(format!("invalid settings: {what}")));
        if params.trees == 0 {
            return bad("trees must be at least 1");
        }
        if params.min_samples_leaf == 0 {
            return bad("min_samples_leaf must be at least 1");
        }
        if params.max_rows_per_tree == 0 {
            return bad("max_rows_per_tree must be at least 1");
        }
        if params
            .features_per_tree
            .is_some_and(|k| k == 0 || k > x.cols)
        {
            return bad("features_per_tree must be between 1 and the number of columns");
        }
        let k = params.columns_per_tree(x.cols);
        let fitted: Vec<Result<Vec<Member>, ModelError>> = std::thread::scope(|s| {
            let handles: Vec<_> = groups(params.trees)
                .into_iter()
                .map(|range| {
                    s.spawn(move || range.map(|i| fit_member(x, y, params, k, i)).collect())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ModelError::Training(
                            "a tree-fitting thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let mut members = Vec::with_capacity(params.trees);
        for group in fitted {
            members.extend(group?);
        }
        Ok(Self {
            inputs: x.cols,
            members,
        })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn trees(&self) -> usize {
        self.members.len()
    }

    /// The churn probability for one row of `inputs()` values: the mean over trees of
    /// each tree's churn probability. Values missing from a short row read as 0 (the
    /// average customer on standardized inputs).
    pub fn probability(&self, row: &[f32]) -> f64 {
        let padded: Vec<f32>;
        let row = if row.len() >= self.inputs {
            &row[..self.inputs]
        } else {
            padded = (0..self.inputs)
                .map(|c| row.get(c).copied().unwrap_or(0.0))
                .collect();
            &padded
        };
        let total: f64 = groups(self.members.len())
            .into_iter()
            .map(|range| {
                self.members[range]
                    .iter()
                    .map(|member| {
                        // A validated tree cannot fail on a well-formed row; should it
                        // anyway, it abstains at even odds rather than panic.
                        member
                            .probabilities(row, self.inputs)
                            .ok()
                            .and_then(|p| p.first().copied())
                            .unwrap_or(0.5)
                    })
                    .sum::<f64>()
            })
            .sum();
        total / self.members.len() as f64
    }

    /// Probabilities for many rows at once, each tree scoring a whole batch.
    pub fn probabilities(&self, x: Rows<'_>) -> Result<Vec<f64>, ModelError> {
        check_rows(x, self.inputs)?;
        let mut out = Vec::with_capacity(x.rows);
        for chunk in x.data.chunks(SCORE_CHUNK_ROWS * x.cols) {
            let rows = chunk.len() / x.cols;
            let sums: Vec<Result<Vec<f64>, ModelError>> = std::thread::scope(|s| {
                let handles: Vec<_> = groups(self.members.len())
                    .into_iter()
                    .map(|range| {
                        s.spawn(move || {
                            let mut sum = vec![0.0; rows];
                            for member in &self.members[range] {
                                let p = member.probabilities(chunk, x.cols)?;
                                sum.iter_mut().zip(p).for_each(|(s, p)| *s += p);
                            }
                            Ok(sum)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ModelError::Shape("a scoring thread panicked".into()))
                        })
                    })
                    .collect()
            });
            let mut total = vec![0.0; rows];
            for sum in sums {
                total.iter_mut().zip(sum?).for_each(|(t, s)| *t += s);
            }
            let trees = self.members.len() as f64;
            out.extend(total.into_iter().map(|t| t / trees));
        }
        Ok(out)
    }

    /// Permutation importance: for each input, how much the ROC-AUC on (at most
    /// 5,000 seeded rows of) `x` drops when that input's values are shuffled across
    /// rows. Inputs no tree reads score exactly 0.
    pub fn feature_importance(
        &self,
        x: Rows<'_>,
        y: &[bool],
        seed: u64,
    ) -> Result<Vec<f64>, ModelError> {
        check_rows(x, self.inputs)?;
        if y.len() != x.rows {
            return Err(ModelError::Shape(format!(
                "{} labels for {} rows",
                y.len(),
                x.rows
            )));
        }
        let auc = |labels: &[bool], scores: &[f64]| {
            roc_auc(labels, scores)
                .map_err(|e| ModelError::Training(format!("cannot measure importance: {e}")))
        };
        let cols = x.cols;
        let picks: Vec<usize> = if x.rows > IMPORTANCE_ROWS {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut picks = rand::seq::index::sample(&mut rng, x.rows, IMPORTANCE_ROWS).into_vec();
            picks.sort_unstable();
            picks
        } else {
            (0..x.rows).collect()
        };
        let labels: Vec<bool> = picks.iter().map(|&r| y[r]).collect();
        let mut data: Vec<f32> = Vec::with_capacity(picks.len() * cols);
        for &r in &picks {
            data.extend_from_slice(x.row(r));
        }
        let base = auc(&labels, &self.probabilities(Rows::new(&data, cols)?)?)?;
        let mut used = vec![false; cols];
        for member in &self.members {
            if matches!(member.learner, Learner::Tree(_)) {
                member.columns.iter().for_each(|&c| used[c] = true);
            }
        }
        let mut importance = vec![0.0; cols];
        for c in (0..cols).filter(|&c| used[c]) {
            let original: Vec<f32> = data.chunks_exact(cols).map(|row| row[c]).collect();
            let mut shuffled = original.clone();
            shuffled.shuffle(&mut derived_rng(seed, c));
            data.chunks_exact_mut(cols)
                .zip(&shuffled)
                .for_each(|(row, v)| row[c] = *v);
            importance[c] = base - auc(&labels, &self.probabilities(Rows::new(&data, cols)?)?)?;
            data.chunks_exact_mut(cols)
                .zip(&original)
                .for_each(|(row, v)| row[c] = *v);
        }
        Ok(importance)
    }

    /// Writes the forest as one JSON file: the format version, the number of inputs
    /// and, per tree, its column indices and the serialized smartcore tree.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let file = ForestFileRef {
            format_version: FORMAT_VERSION,
            inputs: self.inputs,
            trees: self
                .members
                .iter()
                .map(|m| TreeFileRef {
                    columns: &m.columns,
                    learner: match &m.learner {
                        Learner::Tree(tree) => LearnerRef::Tree(tree),
                        Learner::Constant(positive) => LearnerRef::Constant(*positive),
                    },
                })
                .collect(),
        };
        let bad = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| bad(format!("cannot encode: {e}")))?;
        std::fs::write(path, bytes).map_err(|e| bad(format!("cannot write: {e}")))
    }

    /// Reads a forest saved by `save`, refusing one that does not take `inputs`
    /// inputs, reads columns out of range, or holds a malformed tree.
    pub fn load(path: &Path, inputs: usize) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let file: ForestFile = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a readable forest file: {e}")))?;
        if file.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not {FORMAT_VERSION}",
                file.format_version
            )));
        }
        if file.inputs != inputs {
            return Err(bad(format!(
                "takes {} inputs; the schema has {inputs}",
                file.inputs
            )));
        }
        if file.trees.is_empty() {
            return Err(bad("holds no trees".into()));
        }
        let mut members = Vec::with_capacity(file.trees.len());
        for (i, tree) in file.trees.into_iter().enumerate() {
            let columns = tree.columns;
            if columns.is_empty()
                || columns.iter().any(|&c| c >= inputs)
                || columns.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(bad(format!(
                    "tree {i} reads columns {columns:?}, not ascending indices below {inputs}"
                )));
            }
            let learner = match tree.learner {
                LearnerFile::Constant(positive) => Learner::Constant(positive),
                LearnerFile::Tree(value) => {
                    let shape = TreeShape::deserialize(&value)
                        .map_err(|e| bad(format!("tree {i} is malformed: {e}")))?;
                    shape
                        .check(columns.len())
                        .map_err(|reason| bad(format!("tree {i} {reason}")))?;
                    let tree = Tree::deserialize(&value)
                        .map_err(|e| bad(format!("tree {i} is malformed: {e}")))?;
                    Learner::Tree(Box::new(tree))
                }
            };
            members.push(Member { columns, learner });
        }
        Ok(Self { inputs, members })
    }
}

#[derive(Serialize)]
struct ForestFileRef<'a> {
    format_version: u32,
    inputs: usize,
    trees: Vec<TreeFileRef<'a>>,
}

#[derive(Serialize)]
struct TreeFileRef<'a> {
    columns: &'a [usize],
    learner: LearnerRef<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LearnerRef<'a> {
    Tree(&'a Tree),
    Constant(bool),
}

#[derive(Deserialize)]
struct ForestFile {
    format_version: u32,
    inputs: usize,
    trees: Vec<TreeFile>,
}

#[derive(Deserialize)]
struct TreeFile {
    columns: Vec<usize>,
    learner: LearnerFile,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LearnerFile {
    Tree(serde_json::Value),
    Constant(bool),
}

/// The parts of a serialized smartcore tree that prediction relies on, read to check
/// a file before handing it to smartcore (whose prediction indexes without checks).
#[derive(Deserialize)]
struct TreeShape {
    nodes: Vec<NodeShape>,
    num_classes: usize,
    classes: Vec<u32>,
    num_features: usize,
}

#[derive(Deserialize)]
struct NodeShape {
    output: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

impl TreeShape {
    fn check(&self, columns: usize) -> Result<(), String> {
        if self.num_classes != 2 || self.classes != [0, 1] {
            return Err(format!("has classes {:?}, not [0, 1]", self.classes));
        }
        if self.num_features != columns {
            return Err(format!(
                "reads {} features but lists {columns} columns",
                self.num_features
            ));
        }
        if self.nodes.is_empty() {
            return Err("has no nodes".into());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.output >= 2 {
                return Err(format!("node {i} outputs class {}", node.output));
            }
            match (node.true_child, node.false_child) {
                (None, None) => {}
                // Children always come after their parent, so descent terminates.
                (Some(t), Some(f))
                    if t > i && f > i && t < self.nodes.len() && f < self.nodes.len() =>
                {
                    if node.split_feature >= columns
                        || !node.split_value.is_some_and(f64::is_finite)
                    {
                        return Err(format!("node {i} has a bad split"));
                    }
                }
                _ => return Err(format!("node {i} has bad children")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::logistic::{LogisticParams, LogisticRegression};
    use crate::models::test_data::xor_like;

    #[test]
    fn learns_an_interaction_a_linear_model_cannot() {
        let (x, y) = xor_like(4_000, 11);
        let (vx, vy) = xor_like(2_000, 12);
        let rows = Rows::new(&x, 4).expect("rows");
        let val = Rows::new(&vx, 4).expect("rows");
        let params = ForestParams {
            seed: 4,
            ..ForestParams::default()
        };
        let forest = Forest::fit(rows, &y, &params).expect("fit");
        assert_eq!((forest.trees(), forest.inputs()), (100, 4));
        let probs = forest.probabilities(val).expect("probs");
        let auc = roc_auc(&vy, &probs).expect("auc");
        assert!(auc > 0.85, "forest auc {auc}");

        let (lr, _) = LogisticRegression::fit(rows, &y, &LogisticParams::default()).expect("lr");
        let linear = roc_auc(&vy, &lr.probabilities(val).expect("probs")).expect("auc");
        assert!(linear < 0.6, "linear auc {linear}");

        for i in [0, 1, 777, 1_999] {
            assert_eq!(probs[i].to_bits(), forest.probability(val.row(i)).to_bits());
        }

        // x0 and x1 matter, the noise columns barely.
        let importance = forest.feature_importance(val, &vy, 1).expect("importance");
        assert_eq!(importance.len(), 4);
        assert!(importance[0] > 0.1 && importance[1] > 0.1, "{importance:?}");
        assert!(
            importance[2].abs() < 0.03 && importance[3].abs() < 0.03,
            "{importance:?}"
        );
    }

    #[test]
    fn same_seed_same_forest_and_exact_round_trip() {
        let (x, y) = xor_like(1_500, 5);
        let rows = Rows::new(&x, 4).expect("rows");
        let params = ForestParams {
            trees: 12,
            seed: 8,
            max_rows_per_tree: 1_000,
            ..ForestParams::default()
        };
        let a = Forest::fit(rows, &y, &params).expect("fit a");
        let b = Forest::fit(rows, &y, &params).expect("fit b");
        let pa = a.probabilities(rows).expect("pa");
        let pb = b.probabilities(rows).expect("pb");
        assert!(pa.iter().zip(&pb).all(|(p, q)| p.to_bits() == q.to_bits()));
        let c = Forest::fit(rows, &y, &ForestParams { seed: 9, ..params }).expect("fit c");
        assert_ne!(
            pa,
            c.probabilities(rows).expect("pc"),
            "another seed differs"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let (path_a, path_b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        a.save(&path_a).expect("save a");
        b.save(&path_b).expect("save b");
        let bytes = std::fs::read(&path_a).expect("read");
        assert_eq!(
            bytes,
            std::fs::read(&path_b).expect("read"),
            "same seed, same file"
        );
        let loaded = Forest::load(&path_a, 4).expect("load");
        assert!(loaded == a);
        let pl = loaded.probabilities(rows).expect("pl");
        assert!(pa.iter().zip(&pl).all(|(p, q)| p.to_bits() == q.to_bits()));

        assert!(
            matches!(Forest::load(&path_a, 5), Err(ModelError::File { .. })),
            "schema mismatch"
        );
        std::fs::write(&path_b, &bytes[..bytes.len() - 10]).expect("truncate");
        assert!(
            matches!(Forest::load(&path_b, 4), Err(ModelError::File { .. })),
            "truncated"
        );
        let text = String::from_utf8(bytes).expect("utf8");
        let first_columns = format!("{:?}", a.members[0].columns).replace(' ', "");
        let tampered = text.replacen(&first_columns, "[0,7]", 1);
        assert_ne!(tampered, text);
        std::fs::write(&path_b, tampered).expect("tamper");
        assert!(
            matches!(Forest::load(&path_b, 4), Err(ModelError::File { .. })),
            "column out of range"
        );
    }

    #[test]
    fn single_class_bootstraps_become_constant_trees() {
        // One positive in 200 rows: most 20-row bootstraps see negatives only.
        let x: Vec<f32> = (0..200).map(|i| i as f32 / 100.0).collect();
        let y: Vec<bool> = (0..200).map(|i| i == 150).collect();
        let rows = Rows::new(&x, 1).expect("rows");
        let params = ForestParams {
            trees: 10,
            min_samples_leaf: 1,
            max_rows_per_tree: 20,
            ..ForestParams::default()
        };
        let forest = Forest::fit(rows, &y, &params).expect("fit");
        assert!(
            forest
                .members
                .iter()
                .any(|m| m.learner == Learner::Constant(false))
        );
        let probs = forest.probabilities(rows).expect("probs");
        assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(probs[0] < 0.5);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.json");
        forest.save(&path).expect("save");
        assert!(Forest::load(&path, 1).expect("load") == forest);
    }

    #[test]
    fn refuses_single_class_bad_shapes_and_bad_settings() {
        let x = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let rows = Rows::new(&x, 2).expect("rows");
        let params = ForestParams::default();
        assert!(matches!(
            Forest::fit(rows, &[true, true, true], &params),
            Err(ModelError::Training(_))
        ));
        assert!(matches!(
            Forest::fit(rows, &[true], &params),
            Err(ModelError::Shape(_))
        ));
        assert!(matches!(
            Forest::fit(
                rows,
                &[true, false, true],
                &ForestParams {
                    features_per_tree: Some(3),
                    ..params.clone()
                }
            ),
            Err(ModelError::Training(_))
        ));
        let forest = Forest::fit(rows, &[true, false, true], &params).expect("tiny");
        assert!(matches!(
            forest.probabilities(Rows::new(&x, 3).expect("rows")),
            Err(ModelError::Shape(_))
        ));
        assert_eq!(ForestParams::default().columns_per_tree(4), 2);
        assert_eq!(ForestParams::default().columns_per_tree(30), 10);
        assert_eq!(ForestParams::default().columns_per_tree(1), 1);
    }
}
