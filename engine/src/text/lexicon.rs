//! Lexicon sentiment: what serves a family before its customer has labelled enough
//! comments to learn from. English is VADER's lexicon with its rules for negation,
//! intensifiers, "but" and exclamation marks; Chinese is HowNet's sentiment word lists
//! (positive, negative, negation, degree), scored the same way. The sources and licences
//! are in `lexicon/SOURCE.md`.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::language::Family;
use super::tokenize::Tokenized;

/// VADER's empirical constants (vaderSentiment.py): a booster adds this much valence, a
/// negation multiplies by `NEGATION`, `ALPHA` squashes the sum into -1..1, and each
/// exclamation mark (up to four) adds `EXCLAMATION` in the sum's direction.
const BOOST: f32 = 0.293;
const NEGATION: f32 = -0.74;
const ALPHA: f32 = 15.0;
const EXCLAMATION: f32 = 0.292;
/// How far back (in words of the same clause) a booster or negation reaches, and how a
/// booster fades with distance.
const WINDOW: usize = 3;
const FADE: [f32; WINDOW] = [1.0, 0.95, 0.9];
/// HowNet words have a polarity but no strength; VADER's words average about this much.
const CHINESE_VALENCE: f32 = 2.0;

/// VADER's boosters (`BOOSTER_DICT`, single words) and dampeners.
const ENGLISH_BOOSTERS: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];
const ENGLISH_DAMPENERS: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sorta",
    "sortof",
    "sort-of",
];
/// VADER's `NEGATE` list.
const ENGLISH_NEGATIONS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "none", "nope",
    "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "uh-uh", "wasnt",
    "werent", "without", "wont", "wouldnt", "rarely", "seldom", "despite", "no",
];
const ENGLISH_BUT: &[&str] = &["but"];
const CHINESE_BUT: &[&str] = &["但", "但是", "可是", "不过", "然而"];

/// Degree words' multipliers by HowNet category: `extreme` (非常, 极其), `very` (很,
/// 特别), `more` (更, 比较), `ish` (有点, 稍微).
const CHINESE_DEGREE: [(&str, f32); 4] = [
    ("extreme", 2.0),
    ("very", 1.5),
    ("more", 1.25),
    ("ish", 0.6),
];

#[derive(Debug)]
pub(crate) struct Lexicon {
    valence: HashMap<&'static str, f32>,
    /// Boosters (positive) and dampeners (negative): added for English, multiplied for
    /// Chinese.
    degree: HashMap<&'static str, f32>,
    negations: HashSet<&'static str>,
    but: &'static [&'static str],
    /// Whether degree words multiply (Chinese) or add (English, as VADER does).
    multiply: bool,
}

fn english() -> Lexicon {
    let valence = include_str!("lexicon/vader_en.tsv")
        .lines()
        .filter_map(|line| {
            let (word, value) = line.split_once('\t')?;
            Some((word, value.trim().parse::<f32>().ok()?))
        })
        .collect();
    let degree = ENGLISH_BOOSTERS
        .iter()
        .map(|&w| (w, BOOST))
        .chain(ENGLISH_DAMPENERS.iter().map(|&w| (w, -BOOST)))
        .collect();
    Lexicon {
        valence,
        degree,
        negations: ENGLISH_NEGATIONS.iter().copied().collect(),
        but: ENGLISH_BUT,
        multiply: false,
    }
}

fn chinese() -> Lexicon {
    let mut valence: HashMap<&str, f32> = HashMap::new();
    let mut degree = HashMap::new();
    let mut negations = HashSet::new();
    let mut ambiguous = HashSet::new();
    for line in include_str!("lexicon/hownet_zh.tsv").lines() {
        let Some((word, category)) = line.split_once('\t') else {
            continue;
        };
        match category.trim() {
            polarity @ ("pos" | "neg") => {
                let v = if polarity == "pos" {
                    CHINESE_VALENCE
                } else {
                    -CHINESE_VALENCE
                };
                // Listed as both positive and negative: no polarity to go by.
                if valence.insert(word, v).is_some_and(|old| old != v) {
                    ambiguous.insert(word);
                }
            }
            "deny" => {
                negations.insert(word);
            }
            other => {
                if let Some(&(_, m)) = CHINESE_DEGREE.iter().find(|(c, _)| *c == other) {
                    degree.insert(word, m);
                }
            }
        }
    }
    // HowNet lists function words among its sentiment words (对 "right", 是 "yes", 会
    // "can"), and jieba cuts them out of every other sentence; a word the stop-word list
    // calls a function word carries no sentiment here. 好 stays: in reviews it is "good".
    let stop = stop_words(Family::Chinese);
    valence.retain(|w, _| !ambiguous.contains(w) && (*w == "好" || !stop.contains(w)));
    // A negation word listed as negative too (没有) negates what follows rather than
    // counting as a complaint of its own; a sentiment word listed as a degree word too
    // (好 in 好大) counts as sentiment.
    for w in &negations {
        valence.remove(w);
    }
    degree.retain(|w, _| !valence.contains_key(w) && !negations.contains(w));
    Lexicon {
        valence,
        degree,
        negations,
        but: CHINESE_BUT,
        multiply: true,
    }
}

static STOP_EN: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("lexicon/stopwords_en.txt")
        .lines()
        .map(str::trim)
        .collect()
});
static STOP_ZH: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("lexicon/stopwords_zh.txt")
        .lines()
        .map(str::trim)
        .collect()
});

/// A family's stop words: function words, too common to say what a comment is about.
pub(crate) fn stop_words(family: Family) -> &'static HashSet<&'static str> {
    match family {
        Family::English => &STOP_EN,
        Family::Chinese => &STOP_ZH,
    }
}

static ENGLISH: LazyLock<Lexicon> = LazyLock::new(english);
static CHINESE: LazyLock<Lexicon> = LazyLock::new(chinese);

pub(crate) fn of(family: Family) -> &'static Lexicon {
    match family {
        Family::English => &ENGLISH,
        Family::Chinese => &CHINESE,
    }
}

impl Lexicon {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.valence.len()
    }

    /// Whether `word` carries tone rather than subject (a sentiment, degree or negation
    /// word): topics leave these out, so that they gather comments by what they are about.
    pub(crate) fn is_tone_word(&self, word: &str) -> bool {
        self.valence.get(word).is_some_and(|v| v.abs() >= 1.0)
            || self.degree.contains_key(word)
            || self.negations.contains(word)
    }

    fn is_negation(&self, word: &str) -> bool {
        self.negations.contains(word) || (!self.multiply && word.ends_with("n't"))
    }

    /// The comment's sentiment in -1..1 (0 when no word of the lexicon occurs).
    pub(crate) fn score(&self, tok: &Tokenized<'_>) -> f32 {
        let words = &tok.words;
        let mut values = vec![0.0f32; words.len()];
        for (i, &word) in words.iter().enumerate() {
            if self.degree.contains_key(word) {
                continue;
            }
            let Some(&base) = self.valence.get(word) else {
                continue;
            };
            let mut v = base;
            let mut negated = false;
            for d in 1..=WINDOW.min(i) {
                let j = i - d;
                if tok.clauses[j] != tok.clauses[i] {
                    break;
                }
                if let Some(&b) = self.degree.get(words[j]) {
                    if self.multiply {
                        v *= b;
                    } else {
                        v += v.signum() * b * FADE[d - 1];
                    }
                }
                negated ^= self.is_negation(words[j]);
            }
            if negated {
                v *= NEGATION;
            }
            values[i] = v;
        }
        // VADER's "but": what follows it is what the writer means.
        if let Some(b) = words.iter().position(|w| self.but.contains(w)) {
            for (i, v) in values.iter_mut().enumerate() {
                *v *= match i.cmp(&b) {
                    std::cmp::Ordering::Less => 0.5,
                    std::cmp::Ordering::Equal => 1.0,
                    std::cmp::Ordering::Greater => 1.5,
                };
            }
        }
        let mut sum: f32 = values.iter().sum();
        if sum != 0.0 {
            sum += sum.signum() * tok.exclamations.min(4) as f32 * EXCLAMATION;
        }
        (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0)
    }
}
