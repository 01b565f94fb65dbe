//! The text model's files: `text.json` (what each family serves, topic vocabularies and
//! names) and `text.safetensors` (per family: the buckets a learned model uses with their
//! IDF and weight, and the topic centroids). Only buckets seen in training are stored, so
//! a model fitted on a few hundred comments is a few hundred kilobytes, not the whole
//! hash table.
//!
//! Loading checks everything a fit guarantees (shapes, order, finiteness, ranges) and
//! refuses a file that breaks any of it, naming the file.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::features::{FEATURES_VERSION, MAX_HASH_BITS, MIN_HASH_BITS};
use super::language::Family;
use super::topics::{MAX_TOPICS, Topic, TopicModel};
use super::{FamilyModel, Linear, TextModel};
use crate::models::ModelError;

pub(crate) const JSON_FILE: &str = "text.json";
pub(crate) const WEIGHTS_FILE: &str = "text.safetensors";
const FORMAT: u32 = 1;
/// Larger than any model a fit writes (24-bit hashing stores at most 16.8M buckets × 12
/// bytes); a bigger file is not ours, and is refused before it is read into memory.
const MAX_FILE_BYTES: u64 = 512 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextFile {
    format: u32,
    features: String,
    families: Vec<FamilyFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    family: Family,
    sentiment: SentimentFile,
    topics: Option<TopicsFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
enum SentimentFile {
    Lexicon,
    Learned {
        hash_bits: u32,
        bias: f32,
        idf_unseen: f32,
        c: f64,
        /// How many buckets the tensors hold.
        buckets: usize,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    first_id: u32,
    min_similarity: f32,
    terms: Vec<String>,
    idf: Vec<f32>,
    topics: Vec<Topic>,
}

fn file_error(path: &Path) -> impl Fn(String) -> ModelError + '_ {
    move |reason| ModelError::File {
        path: path.display().to_string(),
        reason,
    }
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

pub(crate) fn save(model: &TextModel, dir: &Path) -> Result<(), ModelError> {
    let json_path = dir.join(JSON_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut families = Vec::new();
    // Name, dtype, shape, bytes.
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for family in Family::ALL {
        let fm = &model.families[family.index()];
        let prefix = family.as_str();
        let sentiment = match &fm.sentiment {
            None => SentimentFile::Lexicon,
            Some(linear) => {
                let unseen = [linear.idf_unseen, 0.0];
                let (mut buckets, mut idf, mut weight) = (Vec::new(), Vec::new(), Vec::new());
                for (b, entry) in linear.table.iter().enumerate() {
                    if *entry != unseen {
                        buckets.push(b as u32);
                        idf.push(entry[0]);
                        weight.push(entry[1]);
                    }
                }
                let n = buckets.len();
                tensors.push((
                    format!("{prefix}.buckets"),
                    Dtype::U32,
                    vec![n],
                    le_bytes(&buckets, u32::to_le_bytes),
                ));
                tensors.push((
                    format!("{prefix}.idf"),
                    Dtype::F32,
                    vec![n],
                    le_bytes(&idf, f32::to_le_bytes),
                ));
                tensors.push((
                    format!("{prefix}.weight"),
                    Dtype::F32,
                    vec![n],
                    le_bytes(&weight, f32::to_le_bytes),
                ));
                SentimentFile::Learned {
                    hash_bits: linear.bits,
                    bias: linear.bias,
                    idf_unseen: linear.idf_unseen,
                    c: linear.c,
                    buckets: n,
                }
            }
        };
        let topics = fm.topics.as_ref().map(|t| {
            let by_topic = t.centroids_by_topic();
            tensors.push((
                format!("{prefix}.centroids"),
                Dtype::F32,
                vec![t.k, t.terms.len()],
                le_bytes(&by_topic, f32::to_le_bytes),
            ));
            TopicsFile {
                first_id: t.first_id,
                min_similarity: t.min_similarity,
                terms: t.terms.clone(),
                idf: t.idf.clone(),
                topics: model
                    .topics
                    .iter()
                    .filter(|topic| topic.family == family)
                    .cloned()
                    .collect(),
            }
        });
        families.push(FamilyFile {
            family,
            sentiment,
            topics,
        });
    }
    let file = TextFile {
        format: FORMAT,
        features: FEATURES_VERSION.to_string(),
        families,
    };

    let bad = file_error(&weights_path);
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&weights_path, bytes).map_err(|e| bad(format!("cannot write: {e}")))?;

    let bad = file_error(&json_path);
    let json = serde_json::to_vec_pretty(&file).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&json_path, json).map_err(|e| bad(format!("cannot write: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    let bad = file_error(path);
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(bad(format!(
            "is {} bytes, more than any text model ({MAX_FILE_BYTES})",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))
}

/// A tensor's values, checked for dtype and shape.
fn values<T, const N: usize>(
    st: &SafeTensors<'_>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    from: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, String> {
    let t = st
        .tensor(name)
        .map_err(|e| format!("has no readable {name:?} tensor: {e}"))?;
    if t.dtype() != dtype || t.shape() != shape {
        return Err(format!(
            "tensor {name:?} is {:?} {:?}, expected {dtype:?} {shape:?}",
            t.dtype(),
            t.shape()
        ));
    }
    Ok(t.data()
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            from(a)
        })
        .collect())
}

fn load_linear(
    st: &SafeTensors<'_>,
    prefix: &str,
    hash_bits: u32,
    bias: f32,
    idf_unseen: f32,
    c: f64,
    n: usize,
) -> Result<Linear, String> {
    if !(MIN_HASH_BITS..=MAX_HASH_BITS).contains(&hash_bits) {
        return Err(format!(
            "hash_bits {hash_bits} is outside {MIN_HASH_BITS}..={MAX_HASH_BITS}"
        ));
    }
    let size = 1usize << hash_bits;
    if n > size {
        return Err(format!("{n} buckets stored for a table of {size}"));
    }
    if !(bias.is_finite() && idf_unseen.is_finite() && idf_unseen > 0.0 && c.is_finite() && c > 0.0)
    {
        return Err(format!(
            "{prefix}: bias {bias}, unseen IDF {idf_unseen} or C {c} out of range"
        ));
    }
    let buckets = values(
        st,
        &format!("{prefix}.buckets"),
        Dtype::U32,
        &[n],
        u32::from_le_bytes,
    )?;
    let idf = values(
        st,
        &format!("{prefix}.idf"),
        Dtype::F32,
        &[n],
        f32::from_le_bytes,
    )?;
    let weight = values(
        st,
        &format!("{prefix}.weight"),
        Dtype::F32,
        &[n],
        f32::from_le_bytes,
    )?;
    if buckets.windows(2).any(|w| w[0] >= w[1])
        || buckets.last().is_some_and(|&b| b as usize >= size)
    {
        return Err(format!(
            "{prefix}.buckets are not strictly increasing below {size}"
        ));
    }
    if idf.iter().any(|v| !(v.is_finite() && *v > 0.0)) || weight.iter().any(|v| !v.is_finite()) {
        return Err(format!("{prefix}: IDF must be positive and weights finite"));
    }
    let mut table = vec![[idf_unseen, 0.0f32]; size];
    for ((&b, &i), &w) in buckets.iter().zip(&idf).zip(&weight) {
        table[b as usize] = [i, w];
    }
    Ok(Linear {
        bits: hash_bits,
        table,
        bias,
        idf_unseen,
        c,
    })
}

fn load_topics(
    st: &SafeTensors<'_>,
    family: Family,
    t: TopicsFile,
) -> Result<(TopicModel, Vec<Topic>), String> {
    let prefix = family.as_str();
    let (k, v) = (t.topics.len(), t.terms.len());
    if !(2..=MAX_TOPICS).contains(&k) || v < k {
        return Err(format!("{prefix}: {k} topics over {v} terms"));
    }
    let unique: HashSet<&str> = t.terms.iter().map(String::as_str).collect();
    if unique.len() != v || t.terms.iter().any(String::is_empty) {
        return Err(format!("{prefix}: topic terms are empty or repeated"));
    }
    if t.idf.len() != v || t.idf.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
        return Err(format!("{prefix}: topic IDF must be {v} positive values"));
    }
    if !t.min_similarity.is_finite() {
        return Err(format!(
            "{prefix}: topic similarity threshold is not finite"
        ));
    }
    for (i, topic) in t.topics.iter().enumerate() {
        if topic.id != t.first_id.saturating_add(i as u32)
            || topic.family != family
            || !(topic.share.is_finite() && (0.0..=1.0).contains(&topic.share))
        {
            return Err(format!(
                "{prefix}: topic {i} ({:?}) has the wrong id, family or share",
                topic.name
            ));
        }
    }
    let by_topic = values(
        st,
        &format!("{prefix}.centroids"),
        Dtype::F32,
        &[k, v],
        f32::from_le_bytes,
    )?;
    if by_topic.iter().any(|x| !x.is_finite()) {
        return Err(format!("{prefix}.centroids hold non-finite values"));
    }
    let centroids = TopicModel::transpose_in(&by_topic, k, v);
    let model = TopicModel::new(t.first_id, t.terms, t.idf, k, centroids, t.min_similarity);
    Ok((model, t.topics))
}

pub(crate) fn load(dir: &Path) -> Result<TextModel, ModelError> {
    let json_path = dir.join(JSON_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    let bad_json = file_error(&json_path);
    let file: TextFile = serde_json::from_slice(&read(&json_path)?)
        .map_err(|e| bad_json(format!("not a text model: {e}")))?;
    if file.format != FORMAT {
        return Err(bad_json(format!(
            "format {} (this build reads {FORMAT})",
            file.format
        )));
    }
    if file.features != FEATURES_VERSION {
        return Err(bad_json(format!(
            "features {:?} (this build computes {FEATURES_VERSION:?})",
            file.features
        )));
    }
    let mut seen: Vec<Family> = file.families.iter().map(|f| f.family).collect();
    seen.sort();
    if seen != Family::ALL {
        return Err(bad_json(format!(
            "must describe each family once, describes {seen:?}"
        )));
    }

    let bytes = read(&weights_path)?;
    let bad_weights = file_error(&weights_path);
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad_weights(format!("not a readable safetensors file: {e}")))?;

    let mut families: [FamilyModel; 2] = Default::default();
    let mut topics = Vec::new();
    for f in file.families {
        let prefix = f.family.as_str();
        let sentiment = match f.sentiment {
            SentimentFile::Lexicon => None,
            SentimentFile::Learned {
                hash_bits,
                bias,
                idf_unseen,
                c,
                buckets,
            } => Some(Arc::new(
                load_linear(&st, prefix, hash_bits, bias, idf_unseen, c, buckets)
                    .map_err(&bad_weights)?,
            )),
        };
        let topic_model = match f.topics {
            None => None,
            Some(t) => {
                let (model, found) = load_topics(&st, f.family, t).map_err(&bad_weights)?;
                topics.extend(found);
                Some(Arc::new(model))
            }
        };
        families[f.family.index()] = FamilyModel {
            sentiment,
            topics: topic_model,
        };
    }
    topics.sort_by_key(|t| t.id);
    if topics.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(bad_json("topic ids repeat across families".into()));
    }
    Ok(TextModel { families, topics })
}
