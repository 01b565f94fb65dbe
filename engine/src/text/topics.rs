//! Topics without labels: TF-IDF over a family's words (stop words, tone words and
//! fragments left out), spherical k-means (cosine similarity, k-means++ seeding) on the
//! unit-length sparse rows, each topic named by its centroid's heaviest words.
//!
//! The crate's `kmeans` module is dense; comments over a 5,000-word vocabulary have ten or
//! so non-zero entries each, so this one keeps the rows sparse and only the centroids dense.

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::language::{self, Family};
use super::lexicon;
use super::tokenize::{self, NEGATED};

/// A topic: what a group of comments is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub id: u32,
    pub family: Family,
    /// The top three terms joined by " / ", in the comments' own language.
    pub name: String,
    /// The heaviest terms of the topic's centroid, heaviest first.
    pub terms: Vec<String>,
    /// The share of the family's sampled comments assigned to it.
    pub share: f64,
}

/// Terms listed per topic, and in its name.
const TERMS_PER_TOPIC: usize = 8;
const TERMS_IN_NAME: usize = 3;
/// A term in more than this share of comments says nothing about any one group.
const MAX_DOC_SHARE: f64 = 0.5;
const MAX_ITERATIONS: usize = 50;
/// Restarts from different seeds; the tightest clustering wins.
const RESTARTS: usize = 4;

/// Whether `token` may name a topic: a word (letters or Han, no punctuation, not only
/// digits), not negated, not a stop word, not a tone word, and not a lone Latin letter.
pub(crate) fn is_topic_term(family: Family, token: &str) -> bool {
    if token.starts_with(NEGATED) || !token.chars().all(char::is_alphanumeric) {
        return false;
    }
    if !token.chars().any(|c| c.is_alphabetic()) {
        return false;
    }
    let latin = token.chars().all(|c| !language::is_han(c));
    if latin && token.chars().count() < 2 {
        return false;
    }
    // Latin words inside Chinese comments (brands, "app") are judged by the English lists.
    if lexicon::stop_words(family).contains(token)
        || (latin && lexicon::stop_words(Family::English).contains(token))
    {
        return false;
    }
    let tone = lexicon::of(family).is_tone_word(token)
        || (latin && lexicon::of(Family::English).is_tone_word(token));
    !tone
}

/// How topic vocabularies are built and clustered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicSettings {
    pub topics: usize,
    pub vocabulary: usize,
    pub min_doc_freq: usize,
    pub min_similarity: f32,
    pub seed: u64,
}

/// A family's topics as served: vocabulary, idf, and unit-length centroids stored
/// term-major (`terms × k`), so scoring a comment touches one contiguous row per word.
#[derive(Clone, PartialEq)]
pub(crate) struct TopicModel {
    pub first_id: u32,
    pub terms: Vec<String>,
    pub index: HashMap<String, u32>,
    pub idf: Vec<f32>,
    pub k: usize,
    pub centroids: Vec<f32>,
    pub min_similarity: f32,
}

impl std::fmt::Debug for TopicModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicModel")
            .field("first_id", &self.first_id)
            .field("topics", &self.k)
            .field("terms", &self.terms.len())
            .field("min_similarity", &self.min_similarity)
            .finish_non_exhaustive()
    }
}

impl TopicModel {
    pub(crate) fn new(
        first_id: u32,
        terms: Vec<String>,
        idf: Vec<f32>,
        k: usize,
        centroids: Vec<f32>,
        min_similarity: f32,
    ) -> Self {
        let index = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self {
            first_id,
            terms,
            index,
            idf,
            k,
            centroids,
            min_similarity,
        }
    }

    /// Sublinear TF-IDF of `tokens` over the vocabulary, unit length, sorted by column.
    fn vector(&self, tokens: &[String]) -> Vec<(u32, f32)> {
        let mut cols: Vec<u32> = tokens
            .iter()
            .filter_map(|t| self.index.get(t.as_str()).copied())
            .collect();
        tfidf(&mut cols, &self.idf)
    }

    /// The nearest topic's id, if it is similar enough to count.
    pub(crate) fn assign(&self, tokens: &[String]) -> Option<u32> {
        let v = self.vector(tokens);
        if v.is_empty() {
            return None;
        }
        let (best, sim) = nearest(&v, &self.centroids, self.k);
        (sim > self.min_similarity).then_some(self.first_id + best as u32)
    }

    /// The centroids topic-major (`k × terms`), as saved.
    pub(crate) fn centroids_by_topic(&self) -> Vec<f32> {
        let v = self.terms.len();
        let mut out = vec![0.0; self.k * v];
        for j in 0..v {
            for t in 0..self.k {
                out[t * v + j] = self.centroids[j * self.k + t];
            }
        }
        out
    }

    /// Builds from centroids stored topic-major.
    pub(crate) fn transpose_in(by_topic: &[f32], k: usize, v: usize) -> Vec<f32> {
        let mut out = vec![0.0; k * v];
        for t in 0..k {
            for j in 0..v {
                out[j * k + t] = by_topic[t * v + j];
            }
        }
        out
    }
}

/// Column counts → sublinear TF-IDF, unit length. Sorts `cols`.
fn tfidf(cols: &mut [u32], idf: &[f32]) -> Vec<(u32, f32)> {
    cols.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(cols.len());
    let mut i = 0;
    while i < cols.len() {
        let mut j = i + 1;
        while j < cols.len() && cols[j] == cols[i] {
            j += 1;
        }
        let tf = (j - i) as f32;
        out.push((cols[i], (1.0 + tf.ln()) * idf[cols[i] as usize]));
        i = j;
    }
    let norm: f32 = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    out
}

/// The most similar centroid (term-major layout) and the cosine similarity to it.
fn nearest(v: &[(u32, f32)], centroids: &[f32], k: usize) -> (usize, f32) {
    let mut sims = [0.0f32; 64];
    let sims = &mut sims[..k.min(64)];
    for &(j, x) in v {
        let row = &centroids[j as usize * k..j as usize * k + sims.len()];
        for (s, c) in sims.iter_mut().zip(row) {
            *s += x * c;
        }
    }
    sims.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (t, &s)| {
            if s > best.1 { (t, s) } else { best }
        })
}

/// The most topics a family may have (assignment keeps similarities on the stack).
pub(crate) const MAX_TOPICS: usize = 64;

/// Finds topics in `docs` (each a comment's tokens). None when there are too few comments
/// or words to cluster.
pub(crate) fn fit(
    family: Family,
    docs: &[Vec<String>],
    settings: TopicSettings,
    first_id: u32,
) -> Option<(TopicModel, Vec<Topic>)> {
    let k = settings.topics.min(MAX_TOPICS);
    if k < 2 {
        return None;
    }
    // Vocabulary: the most frequent eligible terms by document frequency.
    let mut df: HashMap<&str, u32> = HashMap::new();
    for doc in docs {
        let unique: HashSet<&str> = doc
            .iter()
            .map(String::as_str)
            .filter(|t| is_topic_term(family, t))
            .collect();
        for t in unique {
            *df.entry(t).or_default() += 1;
        }
    }
    let max_df = ((docs.len() as f64 * MAX_DOC_SHARE) as u32).max(1);
    let mut vocab: Vec<(&str, u32)> = df
        .into_iter()
        .filter(|&(t, f)| {
            f as usize >= settings.min_doc_freq.max(1)
                && f <= max_df
                && (family == Family::English || tokenize::may_name_a_subject(t))
        })
        .collect();
    vocab.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    vocab.truncate(settings.vocabulary);
    if vocab.len() < k {
        return None;
    }
    let terms: Vec<String> = vocab.iter().map(|(t, _)| (*t).to_string()).collect();
    let idf: Vec<f32> = vocab
        .iter()
        .map(|&(_, f)| super::features::idf(docs.len(), f))
        .collect();
    let mut model = TopicModel::new(first_id, terms, idf, k, Vec::new(), settings.min_similarity);
    let rows: Vec<Vec<(u32, f32)>> = docs
        .iter()
        .map(|d| model.vector(d))
        .filter(|v| !v.is_empty())
        .collect();
    // Fewer than a handful of comments per topic makes topics of single comments.
    if rows.len() < 5 * k {
        return None;
    }
    let v = model.terms.len();
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x0070_91c5);
    let mut best: Option<(f64, Vec<f32>, Vec<usize>)> = None;
    for _ in 0..RESTARTS {
        let (score, centroids, assignment) = spherical_kmeans(&rows, v, k, &mut rng);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, centroids, assignment));
        }
    }
    let (_, centroids, _) = best?;
    model.centroids = centroids;

    // Order topics by size, largest first, counting only assignments that pass the
    // similarity threshold, as serving does.
    let mut counts = vec![0usize; k];
    for r in &rows {
        let (t, s) = nearest(r, &model.centroids, k);
        if s > model.min_similarity {
            counts[t] += 1;
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let by_topic = model.centroids_by_topic();
    let mut reordered = Vec::with_capacity(k * v);
    for &t in &order {
        reordered.extend_from_slice(&by_topic[t * v..(t + 1) * v]);
    }
    model.centroids = TopicModel::transpose_in(&reordered, k, v);

    let topics = order
        .iter()
        .enumerate()
        .map(|(rank, &t)| {
            let weights = &reordered[rank * v..(rank + 1) * v];
            let mut top: Vec<usize> = (0..v).filter(|&j| weights[j] > 0.0).collect();
            top.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
            top.truncate(TERMS_PER_TOPIC);
            let terms: Vec<String> = top.iter().map(|&j| model.terms[j].clone()).collect();
            Topic {
                id: first_id + rank as u32,
                family,
                name: terms
                    .iter()
                    .take(TERMS_IN_NAME)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" / "),
                terms,
                share: counts[t] as f64 / docs.len() as f64,
            }
        })
        .collect();
    Some((model, topics))
}

/// Spherical k-means: returns the total cosine similarity of points to their centroids,
/// the unit-length centroids (term-major) and each point's cluster.
fn spherical_kmeans(
    rows: &[Vec<(u32, f32)>],
    v: usize,
    k: usize,
    rng: &mut StdRng,
) -> (f64, Vec<f32>, Vec<usize>) {
    let mut centroids = seed(rows, v, k, rng);
    let mut assignment = vec![usize::MAX; rows.len()];
    let mut similarity = vec![0.0f32; rows.len()];
    for _ in 0..MAX_ITERATIONS {
        let mut changed = 0;
        for (i, r) in rows.iter().enumerate() {
            let (t, s) = nearest(r, &centroids, k);
            if assignment[i] != t {
                changed += 1;
                assignment[i] = t;
            }
            similarity[i] = s;
        }
        // Sum each cluster's points, then scale to unit length.
        let mut sums = vec![0.0f32; v * k];
        let mut sizes = vec![0usize; k];
        for (r, &t) in rows.iter().zip(&assignment) {
            sizes[t] += 1;
            for &(j, x) in r {
                sums[j as usize * k + t] += x;
            }
        }
        for t in 0..k {
            if sizes[t] == 0 {
                // An empty cluster restarts at the point its centroid serves worst.
                let worst = (0..rows.len())
                    .min_by(|&a, &b| similarity[a].total_cmp(&similarity[b]))
                    .unwrap_or(0);
                similarity[worst] = f32::INFINITY;
                for &(j, x) in &rows[worst] {
                    sums[j as usize * k + t] = x;
                }
            }
            let norm: f32 = (0..v).map(|j| sums[j * k + t].powi(2)).sum::<f32>().sqrt();
            if norm > 0.0 {
                (0..v).for_each(|j| sums[j * k + t] /= norm);
            }
        }
        centroids = sums;
        if changed * 1000 <= rows.len() {
            break;
        }
    }
    let mut total = 0.0f64;
    for (i, r) in rows.iter().enumerate() {
        let (t, s) = nearest(r, &centroids, k);
        assignment[i] = t;
        total += f64::from(s);
    }
    (total, centroids, assignment)
}

/// k-means++ seeding under cosine distance (for unit vectors, squared Euclidean distance
/// is twice one minus the cosine).
fn seed(rows: &[Vec<(u32, f32)>], v: usize, k: usize, rng: &mut StdRng) -> Vec<f32> {
    let mut centroids = vec![0.0f32; v * k];
    let place = |centroids: &mut Vec<f32>, t: usize, row: &[(u32, f32)]| {
        for &(j, x) in row {
            centroids[j as usize * k + t] = x;
        }
    };
    let first = rng.random_range(0..rows.len());
    place(&mut centroids, 0, &rows[first]);
    let dot = |a: &[(u32, f32)], b: &[(u32, f32)]| -> f32 {
        let (mut i, mut j, mut s) = (0, 0, 0.0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += a[i].1 * b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    };
    let mut distance: Vec<f64> = rows
        .iter()
        .map(|r| f64::from((1.0 - dot(r, &rows[first])).max(0.0)))
        .collect();
    for t in 1..k {
        let total: f64 = distance.iter().sum();
        let chosen = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut pick = rows.len() - 1;
            for (i, &d) in distance.iter().enumerate() {
                target -= d;
                if target <= 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.random_range(0..rows.len())
        };
        place(&mut centroids, t, &rows[chosen]);
        for (d, r) in distance.iter_mut().zip(rows) {
            *d = d.min(f64::from((1.0 - dot(r, &rows[chosen])).max(0.0)));
        }
    }
    centroids
}
