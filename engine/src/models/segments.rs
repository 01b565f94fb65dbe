//! Customer segments: k-means on standardized, log-scaled behaviour,
//! satisfaction and numeric attributes, with a profile of each segment in plain words.
//!
//! `kmeans.rs` fits the clustering (k-means++ seeding, Lloyd iterations); the published
//! model keeps only the centroids, so serving is a nearest-centroid lookup.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::domain::AttributeValue;
use crate::features::{Behaviour, RawFeatures, is_heavy_tailed};
use vitals_domain::evaluation::SegmentTrait;
use vitals_domain::explain::{SegmentWords, segment_words};
use vitals_domain::words::Language;

/// The behavioural and satisfaction inputs segments are made of.
pub const SEGMENT_BEHAVIOUR: [&str; 9] = [
    "recency_days",
    "frequency_365d",
    "monetary_365d",
    "avg_order_value",
    "tenure_days",
    "nps_mean",
    "csat_mean",
    "complaints_365d",
    "late_payment_share",
];

/// One input of the clustering and how it is scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInput {
    /// A behavioural feature name, or `attr.<name>` for a numeric attribute.
    pub name: String,
    pub log: bool,
    pub mean: f64,
    pub std: f64,
}

/// What sets a segment apart: one input, how far its mean lies from the population's
/// (in standard deviations), and that said in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trait {
    pub input: String,
    pub z: f64,
    pub phrase: String,
}

impl SegmentProfile {
    /// The facts the profile's words are made of.
    pub fn scores(&self) -> Vec<SegmentTrait> {
        self.traits
            .iter()
            .map(|t| SegmentTrait {
                input: t.input.clone(),
                z: t.z,
            })
            .collect()
    }

    /// The profile's name, description and trait phrases in `lang`.
    pub fn words(&self, lang: Language) -> SegmentWords {
        segment_words(&self.scores(), lang)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    pub id: usize,
    pub name: String,
    pub description: String,
    pub size: usize,
    pub share: f64,
    pub traits: Vec<Trait>,
}

/// A fitted segmentation: scaling, centroids (standardized space) and profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentModel {
    pub inputs: Vec<SegmentInput>,
    pub centroids: Vec<Vec<f32>>,
    pub profiles: Vec<SegmentProfile>,
}

/// Metadata saved beside the centroids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub inputs: Vec<SegmentInput>,
    pub profiles: Vec<SegmentProfile>,
}

fn raw_input(name: &str, raw: &RawFeatures) -> f64 {
    if let Some(attr) = name.strip_prefix("attr.") {
        return match raw.attributes.get(attr) {
            Some(AttributeValue::Number(x)) => *x,
            Some(AttributeValue::Bool(b)) => f64::from(u8::from(*b)),
            _ => f64::NAN,
        };
    }
    Behaviour::from_name(name).map_or(f64::NAN, |b| b.of(&raw.behaviour))
}

impl SegmentModel {
    /// The inputs that vary in `rows`: the segment behaviours and numeric attributes.
    fn choose_inputs(rows: &[RawFeatures]) -> Vec<SegmentInput> {
        let mut names: Vec<String> = SEGMENT_BEHAVIOUR.iter().map(|s| (*s).to_owned()).collect();
        let mut attrs: Vec<&str> = rows
            .iter()
            .flat_map(|r| {
                r.attributes.iter().filter_map(|(k, v)| {
                    matches!(v, AttributeValue::Number(_)).then_some(k.as_str())
                })
            })
            .collect();
        attrs.sort_unstable();
        attrs.dedup();
        names.extend(attrs.into_iter().map(|a| format!("attr.{a}")));
        names
            .into_iter()
            .filter_map(|name| {
                let log = is_heavy_tailed(&name);
                let values: Vec<f64> = rows
                    .iter()
                    .map(|r| scale_raw(raw_input(&name, r), log))
                    .filter(|v| v.is_finite())
                    .collect();
                if values.len() < 2 {
                    return None;
                }
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (values.len() - 1) as f64;
                (var.sqrt() > 1e-9).then(|| SegmentInput {
                    name,
                    log,
                    mean,
                    std: var.sqrt(),
                })
            })
            .collect()
    }

    /// The standardized input vector of one customer (undefined values at the mean).
    pub fn vector(&self, raw: &RawFeatures) -> Vec<f32> {
        vector_of(&self.inputs, raw)
    }

    /// The nearest segment.
    pub fn assign(&self, raw: &RawFeatures) -> usize {
        nearest(&self.centroids, &self.vector(raw))
    }

    pub fn k(&self) -> usize {
        self.centroids.len()
    }

    /// Fits `k` segments on `rows` (a sample is fine: segments describe the population).
    pub fn fit(rows: &[RawFeatures], k: usize, seed: u64) -> Result<Self, ModelError> {
        let inputs = Self::choose_inputs(rows);
        if inputs.is_empty() {
            return Err(ModelError::Training(
                "no input varies across customers: nothing to segment on".into(),
            ));
        }
        if rows.len() < k * 2 || k < 2 {
            return Err(ModelError::Training(format!(
                "{} customers are too few for {k} segments",
                rows.len()
            )));
        }
        let d = inputs.len();
        let data: Vec<f32> = rows.iter().flat_map(|r| vector_of(&inputs, r)).collect();
        let assignments = kmeans_assign(&data, d, k, seed)?;
        Ok(Self::from_assignments(inputs, &data, &assignments, k))
    }

    /// Builds centroids and profiles from an assignment of the rows in `data`.
    fn from_assignments(
        inputs: Vec<SegmentInput>,
        data: &[f32],
        assignments: &[usize],
        k: usize,
    ) -> Self {
        let d = inputs.len();
        let mut sums = vec![vec![0.0f64; d]; k];
        let mut sizes = vec![0usize; k];
        for (row, &a) in data.chunks(d).zip(assignments) {
            sizes[a] += 1;
            for (s, v) in sums[a].iter_mut().zip(row) {
                *s += f64::from(*v);
            }
        }
        // Order segments by size, largest first, so ids are stable and readable.
        let mut order: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
        order.sort_by(|a, b| sizes[*b].cmp(&sizes[*a]).then(a.cmp(b)));
        let total = assignments.len().max(1) as f64;
        let mut centroids = Vec::with_capacity(order.len());
        let mut profiles = Vec::with_capacity(order.len());
        for (id, &c) in order.iter().enumerate() {
            let centroid: Vec<f64> = sums[c].iter().map(|s| s / sizes[c] as f64).collect();
            // Centroids live in standardized space: each coordinate is a z-score.
            let mut scores: Vec<SegmentTrait> = inputs
                .iter()
                .zip(&centroid)
                .filter(|(_, z)| z.abs() >= 0.25)
                .map(|(input, &z)| SegmentTrait {
                    input: input.name.clone(),
                    z,
                })
                .collect();
            scores.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
            scores.truncate(4);
            // Stored in English (reports, files); the API writes them in the reader's
            // language from the same scores.
            let words = segment_words(&scores, Language::English);
            let traits = scores
                .into_iter()
                .zip(words.traits)
                .map(|(score, phrase)| Trait {
                    input: score.input,
                    z: score.z,
                    phrase,
                })
                .collect();
            let (name, description) = (words.name, words.description);
            centroids.push(centroid.iter().map(|&v| v as f32).collect());
            profiles.push(SegmentProfile {
                id,
                name,
                description,
                size: sizes[c],
                share: sizes[c] as f64 / total,
                traits,
            });
        }
        Self {
            inputs,
            centroids,
            profiles,
        }
    }

    /// Writes `centroids.safetensors` and `segments.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let k = self.centroids.len();
        let d = self.inputs.len();
        let flat: Vec<f32> = self.centroids.iter().flatten().copied().collect();
        let mut tensors = HashMap::new();
        tensors.insert(
            "centroids".to_string(),
            Tensor::from_slice(&flat, (k, d), &Device::Cpu)?,
        );
        candle_core::safetensors::save(&tensors, dir.join("centroids.safetensors"))?;
        let meta = SegmentMeta {
            inputs: self.inputs.clone(),
            profiles: self.profiles.clone(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| ModelError::File {
            path: dir.join("segments.json").display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(dir.join("segments.json"), json).map_err(|e| ModelError::File {
            path: dir.join("segments.json").display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads a model written by `save`, checking the centroids match the inputs.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let meta_path = dir.join("segments.json");
        let bad = |path: &Path, reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&meta_path).map_err(|e| bad(&meta_path, e.to_string()))?;
        let meta: SegmentMeta =
            serde_json::from_slice(&bytes).map_err(|e| bad(&meta_path, e.to_string()))?;
        let path = dir.join("centroids.safetensors");
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| bad(&path, format!("not a readable safetensors file: {e}")))?;
        let t = tensors
            .get("centroids")
            .ok_or_else(|| bad(&path, "has no \"centroids\" tensor".into()))?;
        let rows = t
            .to_vec2::<f32>()
            .map_err(|e| bad(&path, format!("centroids are not an f32 matrix: {e}")))?;
        if rows.len() != meta.profiles.len()
            || rows.iter().any(|r| r.len() != meta.inputs.len())
            || rows.iter().flatten().any(|v| !v.is_finite())
        {
            return Err(bad(
                &path,
                format!(
                    "centroids do not match {} segments of {} inputs",
                    meta.profiles.len(),
                    meta.inputs.len()
                ),
            ));
        }
        Ok(Self {
            inputs: meta.inputs,
            centroids: rows,
            profiles: meta.profiles,
        })
    }
}

fn scale_raw(v: f64, log: bool) -> f64 {
    if log { v.max(0.0).ln_1p() } else { v }
}

fn vector_of(inputs: &[SegmentInput], raw: &RawFeatures) -> Vec<f32> {
    inputs
        .iter()
        .map(|i| {
            let v = scale_raw(raw_input(&i.name, raw), i.log);
            if v.is_finite() {
                ((v - i.mean) / i.std) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn nearest(centroids: &[Vec<f32>], x: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (c, centroid) in centroids.iter().enumerate() {
        let d: f32 = centroid.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (c, d);
        }
    }
    best.0
}

/// Runs k-means on row-major `data` and returns each row's cluster.
pub fn kmeans_assign(
    data: &[f32],
    dims: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, ModelError> {
    Ok(super::kmeans::fit(data, dims, k, seed, 300, 1e-4)?.assignments)
}

/// The result of choosing k.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KChoice {
    pub k: usize,
    pub silhouettes: Vec<(usize, f64)>,
}

/// Fits k = 3..=8 and keeps the k with the best silhouette (on a sample of rows).
pub fn fit_auto(rows: &[RawFeatures], seed: u64) -> Result<(SegmentModel, KChoice), ModelError> {
    let inputs = SegmentModel::choose_inputs(rows);
    if inputs.is_empty() {
        return Err(ModelError::Training(
            "no input varies across customers: nothing to segment on".into(),
        ));
    }
    let d = inputs.len();
    let data: Vec<f32> = rows.iter().flat_map(|r| vector_of(&inputs, r)).collect();
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    let mut silhouettes = Vec::new();
    for k in 3..=8 {
        if rows.len() < k * 2 {
            break;
        }
        let assignments = kmeans_assign(&data, d, k, seed)?;
        let s = crate::metrics::silhouette(&data, d, &assignments, 2_000, seed)
            .map_err(|e| ModelError::Training(format!("silhouette for k={k}: {e}")))?;
        silhouettes.push((k, s));
        if best.as_ref().is_none_or(|b| s > b.0) {
            best = Some((s, k, assignments));
        }
    }
    let Some((_, k, assignments)) = best else {
        return Err(ModelError::Training(format!(
            "{} customers are too few for 3 segments",
            rows.len()
        )));
    };
    Ok((
        SegmentModel::from_assignments(inputs, &data, &assignments, k),
        KChoice { k, silhouettes },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Attributes;

    fn row(freq: f64, spend: f64) -> RawFeatures {
        let mut behaviour = [f64::NAN; 28];
        behaviour[Behaviour::Frequency365d as usize] = freq;
        behaviour[Behaviour::Monetary365d as usize] = spend;
        behaviour[Behaviour::RecencyDays as usize] = 10.0;
        RawFeatures {
            behaviour,
            attributes: Attributes::new(),
        }
    }

    fn blobs() -> Vec<RawFeatures> {
        let mut rows = Vec::new();
        for i in 0..300 {
            let j = f64::from(i % 7);
            rows.push(row(1.0 + j * 0.01, 10.0 + j));
            rows.push(row(30.0 + j * 0.1, 5_000.0 + j * 10.0));
            if i % 3 == 0 {
                rows.push(row(8.0 + j * 0.05, 300.0 + j));
            }
        }
        rows
    }

    #[test]
    fn finds_the_groups_and_describes_them() {
        let rows = blobs();
        let model = SegmentModel::fit(&rows, 3, 42).expect("fit");
        assert_eq!(model.k(), 3);
        assert_eq!(model.profiles[0].size, 300);
        let big_spender = model.assign(&row(31.0, 5_100.0));
        let light = model.assign(&row(1.0, 12.0));
        assert_ne!(big_spender, light);
        let p = &model.profiles[big_spender];
        assert!(
            p.name.contains("Buys often") || p.name.contains("Spends a lot"),
            "{p:?}"
        );
        let p = &model.profiles[light];
        assert!(
            p.description.contains("rarely buys") || p.description.contains("spends little"),
            "{p:?}"
        );
    }

    #[test]
    fn saves_and_loads() {
        let model = SegmentModel::fit(&blobs(), 3, 1).expect("fit");
        let dir = tempfile::tempdir().expect("tempdir");
        model.save(dir.path()).expect("save");
        let back = SegmentModel::load(dir.path()).expect("load");
        assert_eq!(back, model);
        std::fs::write(dir.path().join("segments.json"), b"{}").expect("spoil");
        assert!(SegmentModel::load(dir.path()).is_err());
    }

    #[test]
    fn too_few_or_uniform_customers_are_refused() {
        assert!(SegmentModel::fit(&blobs()[..3], 3, 1).is_err());
        let same: Vec<_> = (0..50).map(|_| row(1.0, 1.0)).collect();
        assert!(SegmentModel::fit(&same, 3, 1).is_err());
    }
}
