//! Fitting a text model: per family, the sentiment model from the labelled comments
//! (or the lexicon, with the reason) and topics from a sample of all comments.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;

use super::features::{self, hashed_row, tfidf_in_place};
use super::language::Family;
use super::sparse::{self, BLOCK_ROWS, Block};
use super::tokenize::{self, Prepared, tokenize};
use super::topics::{self, TopicModel, TopicSettings};
use super::{
    FamilyModel, FamilyReport, Linear, SentimentSource, TextModel, TextParams, TextReport,
    TrainingComment, lexicon,
};
use crate::metrics::roc_auc;
use crate::models::ModelError;

/// C values tried, as multiples of `TextParams::c`, when choosing by held-out AUC.
const C_GRID: [f64; 3] = [0.25, 1.0, 4.0];
/// Choosing C fits each candidate on at most this many training comments (and scores at
/// most as many again): enough to rank a handful of C values, and cheap on a million.
const SELECT_ROWS: usize = 20_000;
/// Fewer labelled comments than this are refitted on train and held-out together once the
/// held-out AUC is known: the fifth held out is worth having in a small set, and in a large
/// one it adds little for the time a second fit takes.
const REFIT_BELOW: usize = 50_000;
/// L-BFGS stops when the largest gradient component of the mean loss is below this:
/// scikit-learn's default; 1e-5 gave the same held-out AUC (to ±0.0005) on every corpus
/// in `fixtures/comments` for twice the iterations.
const TOL: f64 = 1e-4;
/// Fewer comments than this on either side of a split make an AUC too noisy to choose by.
const MIN_SELECT_ROWS: usize = 100;

/// A uniform number in [0, 1) from `x`: splits by customer without keeping a set of them.
fn unit(x: u64, salt: u64) -> f64 {
    let mut z = x ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x0094_d49b_b133_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
pub(crate) fn unit_for_tests(x: u64) -> f64 {
    unit(x, 0x7e57)
}

fn both_classes(indices: &[usize], comments: &[TrainingComment<'_>]) -> bool {
    let positives = indices
        .iter()
        .filter(|&&i| comments[i].positive == Some(true))
        .count();
    positives > 0 && positives < indices.len()
}

/// Splits `indices` into (kept, held out) by `key`'s hash.
fn split_by(
    indices: &[usize],
    share: f64,
    salt: u64,
    key: impl Fn(usize) -> u64,
) -> (Vec<usize>, Vec<usize>) {
    indices.iter().partition(|&&i| unit(key(i), salt) >= share)
}

/// Hashed rows of `indices`, in blocks, with their labels.
fn blocks(
    family: Family,
    indices: &[usize],
    comments: &[TrainingComment<'_>],
    prepared: &[Prepared],
    bits: u32,
) -> Vec<Block> {
    indices
        .par_chunks(BLOCK_ROWS)
        .map_init(Vec::new, |scratch, chunk| {
            let mut block = Block::new();
            for &i in chunk {
                let text = &prepared[i].text;
                let tok = tokenize(family, text);
                let row = hashed_row(family, &tok, text, bits, scratch);
                block.push(&row, comments[i].positive == Some(true));
            }
            block
        })
        .collect()
}

/// Documents containing each bucket, over `blocks` (rows hold each bucket once).
fn document_frequency(blocks: &[Block], buckets: usize) -> Vec<u32> {
    let threads = rayon::current_num_threads().max(1);
    let per_task = blocks.len().div_ceil(threads).max(1);
    blocks
        .par_chunks(per_task)
        .map(|chunk| {
            let mut df = vec![0u32; buckets];
            for b in chunk {
                for &c in &b.cols {
                    df[c as usize] += 1;
                }
            }
            df
        })
        .reduce(
            || vec![0u32; buckets],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

fn auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    roc_auc(labels, scores).ok()
}

fn lexicon_scores(family: Family, indices: &[usize], prepared: &[Prepared]) -> Vec<f64> {
    let lex = lexicon::of(family);
    indices
        .par_iter()
        .map(|&i| f64::from(lex.score(&tokenize(family, &prepared[i].text))))
        .collect()
}

fn labels_of(indices: &[usize], comments: &[TrainingComment<'_>]) -> Vec<bool> {
    indices
        .iter()
        .map(|&i| comments[i].positive == Some(true))
        .collect()
}

/// The first blocks holding at most `rows` rows (at least one block).
fn head(blocks: &[Block], rows: usize) -> Vec<&Block> {
    let mut out = Vec::new();
    let mut n = 0;
    for b in blocks {
        if !out.is_empty() && n + b.rows() > rows {
            break;
        }
        n += b.rows();
        out.push(b);
    }
    out
}

/// A family's sentiment: a learned model, or None for the lexicon; and its report.
fn fit_sentiment(
    family: Family,
    comments: &[TrainingComment<'_>],
    prepared: &[Prepared],
    members: &[usize],
    params: &TextParams,
) -> Result<(Option<Arc<Linear>>, FamilyReport), ModelError> {
    let labelled: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| comments[i].positive.is_some())
        .collect();
    let positive = labelled
        .iter()
        .filter(|&&i| comments[i].positive == Some(true))
        .count();
    let mut report = FamilyReport {
        family,
        comments: members.len(),
        labelled: labelled.len(),
        positive,
        train: 0,
        held_out: labelled.len(),
        sentiment: SentimentSource::Lexicon,
        why_lexicon: None,
        roc_auc_learned: None,
        roc_auc_lexicon: None,
        topics: 0,
        c: None,
        iterations: None,
        converged: None,
        held_out_by_customer: false,
    };
    // Nothing is learned from the lexicon, so every labelled comment measures it.
    let lexicon_only = |report: &mut FamilyReport, why: String| {
        report.why_lexicon = Some(why);
        report.roc_auc_lexicon = auc(
            &labels_of(&labelled, comments),
            &lexicon_scores(family, &labelled, prepared),
        );
    };
    if labelled.len() < params.min_labelled.max(2) {
        let why = format!(
            "{} labelled comments, fewer than {}",
            labelled.len(),
            params.min_labelled.max(2)
        );
        lexicon_only(&mut report, why);
        return Ok((None, report));
    }
    if positive == 0 || positive == labelled.len() {
        let which = if positive == 0 {
            "negative"
        } else {
            "positive"
        };
        let why = format!("all {} labelled comments are {which}", labelled.len());
        lexicon_only(&mut report, why);
        return Ok((None, report));
    }

    // Held out by customer, so that a customer's habits of phrase do not flatter the
    // score; by comment when the customers are too few for both parts to hold both classes.
    let salt = params.seed ^ 0x5e17_u64 ^ family.index() as u64;
    let share = params.held_out_share;
    let (mut train, mut held) = split_by(&labelled, share, salt, |i| comments[i].group);
    report.held_out_by_customer = true;
    if !both_classes(&train, comments) || !both_classes(&held, comments) {
        (train, held) = split_by(&labelled, share, salt, |i| i as u64);
        report.held_out_by_customer = false;
    }
    if !both_classes(&train, comments) {
        let why = format!(
            "{} labelled comments cannot be split into training and held-out parts that both hold positive and negative comments",
            labelled.len()
        );
        lexicon_only(&mut report, why);
        return Ok((None, report));
    }
    let mut rng = StdRng::seed_from_u64(salt);
    train.shuffle(&mut rng);
    held.shuffle(&mut rng);
    // A random sample of customers' comments when there are more than the fit takes.
    train.truncate(params.max_fit_rows.max(MIN_SELECT_ROWS));

    // C is chosen on a split of the training part, again by customer.
    let (inner_train, inner_val) = split_by(&train, 0.2, salt ^ 0xc, |i| comments[i].group);
    let select = params.select_c
        && inner_train.len() >= MIN_SELECT_ROWS
        && inner_val.len() >= MIN_SELECT_ROWS / 4
        && both_classes(&inner_train, comments)
        && both_classes(&inner_val, comments);
    let train_order: Vec<usize> = if select {
        inner_train.iter().chain(&inner_val).copied().collect()
    } else {
        train.clone()
    };

    let bits = params.hash_bits;
    let buckets = 1usize << bits;
    let mut train_blocks = if select {
        let mut b = blocks(family, &inner_train, comments, prepared, bits);
        b.extend(blocks(family, &inner_val, comments, prepared, bits));
        b
    } else {
        blocks(family, &train_order, comments, prepared, bits)
    };
    let inner_train_blocks = inner_train.len().div_ceil(BLOCK_ROWS);
    let mut held_blocks = blocks(family, &held, comments, prepared, bits);

    // IDF from the training part only; then every row to unit-length TF-IDF.
    let df = document_frequency(&train_blocks, buckets);
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| features::idf(train_order.len(), d))
        .collect();
    let idf_unseen = features::idf(train_order.len(), 0);
    let transform =
        |b: &mut Block| b.for_each_row_mut(|cols, vals| tfidf_in_place(cols, vals, &idf));
    train_blocks.par_iter_mut().for_each(transform);
    held_blocks.par_iter_mut().for_each(transform);

    // Fit over the buckets that occur, not all 2^bits, so the optimiser's vectors scale
    // with the data; numbered by falling document frequency, so the few thousand features
    // most rows share sit together in memory and the gradient pass stays in cache (in
    // bucket order every feature of every row was a cache miss: three times slower).
    let refit = labelled.len() < REFIT_BELOW && !held.is_empty();
    let df_all = if refit {
        let held_df = document_frequency(&held_blocks, buckets);
        df.iter().zip(&held_df).map(|(a, b)| a + b).collect()
    } else {
        df.clone()
    };
    let mut bucket_of: Vec<u32> = (0..buckets as u32)
        .filter(|&b| df_all[b as usize] > 0)
        .collect();
    bucket_of.sort_by_key(|&b| std::cmp::Reverse(df_all[b as usize]));
    let mut column_of = vec![u32::MAX; buckets];
    for (col, &b) in bucket_of.iter().enumerate() {
        column_of[b as usize] = col as u32;
    }
    let columns = bucket_of.len();
    train_blocks
        .par_iter_mut()
        .for_each(|b| b.remap(&column_of));
    held_blocks.par_iter_mut().for_each(|b| b.remap(&column_of));

    let mut c = params.c;
    let mut start: Option<Vec<f64>> = None;
    if select {
        let fit_on = head(&train_blocks[..inner_train_blocks], SELECT_ROWS);
        let score_on = head(&train_blocks[inner_train_blocks..], SELECT_ROWS);
        let (global, local_of) = sparse::used_columns(&fit_on, columns);
        let sample = sparse::remapped(&fit_on, &local_of);
        let sample: Vec<&Block> = sample.iter().collect();
        // Scored rows keep only the sample's columns: the others have no weight there.
        let scored = sparse::remapped(&score_on, &local_of);
        let scored: Vec<&Block> = scored.iter().collect();
        let val_labels = sparse::labels(&scored);
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        // Each candidate from the same cold start: warm-starting one C from another's
        // optimum can already meet the gradient tolerance and stop where it started.
        for m in C_GRID {
            let candidate = params.c * m;
            let fit = sparse::fit(&sample, global.len(), candidate, None, params.max_iter, TOL)?;
            let a = auc(&val_labels, &sparse::logits(&scored, &fit.params)).unwrap_or(0.0);
            if best.as_ref().is_none_or(|b| a > b.0) {
                best = Some((a, candidate, fit.params));
            }
        }
        if let Some((_, chosen, local)) = best {
            c = chosen;
            // The sample's solution, in the full column space, starts the final fit.
            let mut warm = vec![0.0; columns + 1];
            for (l, &g) in global.iter().enumerate() {
                warm[g as usize] = local[l];
            }
            warm[columns] = local[global.len()];
            start = Some(warm);
        }
    }
    let all_train: Vec<&Block> = train_blocks.iter().collect();
    let fit = sparse::fit(
        &all_train,
        columns,
        c,
        start.as_deref(),
        params.max_iter,
        TOL,
    )?;
    report.c = Some(c);
    report.iterations = Some(fit.iterations);
    report.converged = Some(fit.converged);
    report.train = train.len();
    report.held_out = held.len();
    report.sentiment = SentimentSource::Learned;
    let held_refs: Vec<&Block> = held_blocks.iter().collect();
    let held_labels = sparse::labels(&held_refs);
    report.roc_auc_learned = auc(&held_labels, &sparse::logits(&held_refs, &fit.params));
    report.roc_auc_lexicon = auc(&held_labels, &lexicon_scores(family, &held, prepared));

    let mut final_params = fit.params;
    if refit {
        let everything: Vec<&Block> = train_blocks.iter().chain(&held_blocks).collect();
        final_params = sparse::fit(
            &everything,
            columns,
            c,
            Some(&final_params),
            params.max_iter,
            TOL,
        )?
        .params;
    }

    let mut table = vec![[idf_unseen, 0.0f32]; buckets];
    for (slot, &i) in table.iter_mut().zip(&idf) {
        slot[0] = i;
    }
    for (col, &bucket) in bucket_of.iter().enumerate() {
        table[bucket as usize][1] = final_params[col] as f32;
    }
    let linear = Linear {
        bits,
        table,
        bias: final_params[columns] as f32,
        idf_unseen,
        c,
    };
    Ok((Some(Arc::new(linear)), report))
}

/// Fits every family's sentiment and topics.
pub(crate) fn fit(
    comments: &[TrainingComment<'_>],
    params: &TextParams,
) -> Result<(TextModel, TextReport), ModelError> {
    params.check()?;
    tokenize::warm_up();
    let prepared: Vec<Prepared> = comments
        .par_iter()
        .map(|c| tokenize::prepare(c.text))
        .collect();
    let mut families = Vec::new();
    let mut reports = Vec::new();
    let mut all_topics = Vec::new();
    for family in Family::ALL {
        let members: Vec<usize> = (0..comments.len())
            .filter(|&i| prepared[i].language.family() == family)
            .collect();
        let (sentiment, mut report) = fit_sentiment(family, comments, &prepared, &members, params)?;

        let mut sample = members.clone();
        if sample.len() > params.topic_sample {
            let mut rng = StdRng::seed_from_u64(params.seed ^ 0x70_91c5 ^ family.index() as u64);
            sample.shuffle(&mut rng);
            sample.truncate(params.topic_sample);
        }
        let docs: Vec<Vec<String>> = sample
            .par_iter()
            .map(|&i| tokenize(family, &prepared[i].text).tokens)
            .collect();
        let settings = TopicSettings {
            topics: params.topics_per_family,
            vocabulary: params.vocabulary,
            min_doc_freq: params.min_doc_freq,
            min_similarity: params.topic_min_similarity,
            seed: params.seed ^ family.index() as u64,
        };
        let first_id = all_topics.len() as u32;
        let topic_model: Option<TopicModel> = match topics::fit(family, &docs, settings, first_id) {
            Some((model, found)) => {
                report.topics = found.len();
                all_topics.extend(found);
                Some(model)
            }
            None => None,
        };
        families.push(FamilyModel {
            sentiment,
            topics: topic_model.map(Arc::new),
        });
        reports.push(report);
    }
    let [english, chinese]: [FamilyModel; 2] = families
        .try_into()
        .map_err(|_| ModelError::Training("expected two language families".into()))?;
    Ok((
        TextModel {
            families: [english, chinese],
            topics: all_topics,
        },
        TextReport { families: reports },
    ))
}
