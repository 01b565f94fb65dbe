//! Hashed text features: word unigrams and bigrams (after negation marking) and character
//! n-grams, each counted with sublinear term frequency and hashed with a sign into
//! `2^bits` buckets (the hashing trick: no vocabulary to store or look up, and collisions
//! cancel in expectation thanks to the sign).
//!
//! The hash is written out here (FNV-1a with a final mix) rather than taken from a crate
//! because a saved model depends on every bucket staying where it is: no hasher whose
//! output may change between versions will do.

use super::language::Family;
use super::tokenize::Tokenized;

pub(crate) const DEFAULT_HASH_BITS: u32 = 20;
pub(crate) const MIN_HASH_BITS: u32 = 10;
pub(crate) const MAX_HASH_BITS: u32 = 24;

/// Names this file's choice of features; a model file from other features is refused.
pub(crate) const FEATURES_VERSION: &str = "hashed-v1";

/// Namespaces, so that the word "good" and the character 4-gram "good" are different
/// features.
const WORD: u8 = b'w';
const BIGRAM: u8 = b'b';
const CHAR: u8 = b'c';

/// Character n-gram lengths. English: within words padded by a space (scikit-learn's
/// `char_wb`), which catches stems and misspellings; 3 to 5 characters measured better
/// than 2 to 5 on all three English corpora in `fixtures/comments` (and 2-grams are a
/// quarter of the features). Chinese: over runs of characters,
/// where one- and two-character grams are most of the signal (most words are one or two
/// characters and jieba's segmentation is not always right).
const ENGLISH_CHARS: (usize, usize) = (3, 5);
const CHINESE_CHARS: (usize, usize) = (1, 2);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn fnv_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

#[inline]
fn fnv_start(namespace: u8) -> u64 {
    fnv_extend(FNV_OFFSET, &[namespace])
}

/// MurmurHash3's finaliser: FNV's low bits are weak, and the bucket is the low bits.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The bucket and sign of a feature key.
#[inline]
pub(crate) fn bucket(key: u64, bits: u32) -> (u32, f32) {
    let h = mix(key);
    let b = (h & ((1u64 << bits) - 1)) as u32;
    (b, if h >> 63 == 1 { -1.0 } else { 1.0 })
}

/// Feature keys (before bucketing) of one comment, appended to `keys`.
pub(crate) fn keys(family: Family, tok: &Tokenized<'_>, text: &str, keys: &mut Vec<u64>) {
    for t in &tok.tokens {
        keys.push(fnv_extend(fnv_start(WORD), t.as_bytes()));
    }
    for pair in tok.tokens.windows(2) {
        let h = fnv_extend(fnv_start(BIGRAM), pair[0].as_bytes());
        keys.push(fnv_extend(fnv_extend(h, &[0x1f]), pair[1].as_bytes()));
    }
    let mut bounds = Vec::with_capacity(16);
    match family {
        Family::English => {
            let mut padded = String::new();
            for w in &tok.words {
                padded.clear();
                padded.push(' ');
                padded.push_str(w);
                padded.push(' ');
                char_grams(&padded, ENGLISH_CHARS, &mut bounds, keys);
            }
        }
        Family::Chinese => {
            for run in text.split(|c: char| !c.is_alphanumeric()) {
                if !run.is_empty() {
                    char_grams(run, CHINESE_CHARS, &mut bounds, keys);
                }
            }
        }
    }
}

/// Every n-gram of `min..=max` characters of `s`, hashed incrementally from each start.
/// `bounds` is scratch space for the characters' byte offsets.
fn char_grams(s: &str, (min, max): (usize, usize), bounds: &mut Vec<usize>, keys: &mut Vec<u64>) {
    let bytes = s.as_bytes();
    bounds.clear();
    bounds.extend(s.char_indices().map(|(i, _)| i));
    bounds.push(s.len());
    let chars = bounds.len().saturating_sub(1);
    for i in 0..chars {
        let mut h = fnv_start(CHAR);
        for n in 1..=max.min(chars - i) {
            h = fnv_extend(h, &bytes[bounds[i + n - 1]..bounds[i + n]]);
            if n >= min {
                keys.push(h);
            }
        }
    }
}

/// The hashed row of one comment: `(bucket, Σ sign·(1 + ln tf))`, sorted by bucket, with
/// buckets whose signed sum cancelled to zero left out. Term frequency is taken per
/// feature before hashing, as a TF-IDF vectoriser would count it.
pub(crate) fn hashed_row(
    family: Family,
    tok: &Tokenized<'_>,
    text: &str,
    bits: u32,
    scratch: &mut Vec<u64>,
) -> Vec<(u32, f32)> {
    scratch.clear();
    keys(family, tok, text, scratch);
    scratch.sort_unstable();
    let mut row: Vec<(u32, f32)> = Vec::with_capacity(scratch.len());
    let mut i = 0;
    while i < scratch.len() {
        let key = scratch[i];
        let mut j = i + 1;
        while j < scratch.len() && scratch[j] == key {
            j += 1;
        }
        let tf = (j - i) as f32;
        let (b, sign) = bucket(key, bits);
        row.push((b, sign * (1.0 + tf.ln())));
        i = j;
    }
    row.sort_unstable_by_key(|&(b, _)| b);
    let mut merged: Vec<(u32, f32)> = Vec::with_capacity(row.len());
    for (b, v) in row {
        match merged.last_mut() {
            Some(last) if last.0 == b => last.1 += v,
            _ => merged.push((b, v)),
        }
    }
    merged.retain(|&(_, v)| v != 0.0);
    merged
}

/// Smoothed inverse document frequency, as scikit-learn computes it: `ln((1+n)/(1+df)) + 1`.
pub(crate) fn idf(documents: usize, df: u32) -> f32 {
    (((1.0 + documents as f64) / (1.0 + f64::from(df))).ln() + 1.0) as f32
}

/// Scales a hashed row (`cols`, `vals`) by `idf` and to unit length, in place.
pub(crate) fn tfidf_in_place(cols: &[u32], vals: &mut [f32], idf: &[f32]) {
    let mut norm = 0.0f32;
    for (c, v) in cols.iter().zip(vals.iter_mut()) {
        *v *= idf[*c as usize];
        norm += *v * *v;
    }
    if norm > 0.0 {
        let scale = 1.0 / norm.sqrt();
        vals.iter_mut().for_each(|v| *v *= scale);
    }
}
