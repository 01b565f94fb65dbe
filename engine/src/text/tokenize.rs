//! Normalisation and tokens: NFKC, lower case, Traditional → Simplified, words (jieba for
//! Chinese, Unicode word boundaries otherwise), with negation marked on the words it
//! governs so that a linear model sees "not_good" as its own feature.

use std::sync::LazyLock;

use jieba_rs::Jieba;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use super::language::{self, Family, Language};

/// Longer comments are cut here (at a character boundary): a pasted log or e-mail thread
/// must not make one analysis cost milliseconds, and its first 16 KiB say enough.
pub(crate) const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The prefix marking a word in the scope of a negation.
pub(crate) const NEGATED: &str = "not_";

/// How many words after a negator it governs (the clause ends it sooner). English
/// phrases put a few words between ("not at all happy"); Chinese words are longer units.
const ENGLISH_SCOPE: usize = 3;
const CHINESE_SCOPE: usize = 2;

/// VADER's negations (vaderSentiment.py, MIT), plus the words ending in "n't".
const ENGLISH_NEGATORS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "no", "none",
    "nope", "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt",
    "werent", "without", "wont", "wouldnt", "rarely", "seldom", "nobody", "hardly",
];

/// Words that turn a sentence around: a negation does not reach past them.
const ENGLISH_CONTRASTS: &[&str] = &["but", "however", "although", "though", "yet", "except"];

/// HowNet's negation words (the lexicon's `deny` list) and the common compounds jieba keeps
/// whole.
const CHINESE_NEGATORS: &[&str] = &[
    "不",
    "没",
    "没有",
    "无",
    "未",
    "别",
    "莫",
    "勿",
    "非",
    "甭",
    "休",
    "不是",
    "并不",
    "并非",
    "并没有",
    "并没",
    "从不",
    "从未",
    "从没",
    "毫无",
    "绝不",
    "决不",
    "不太",
    "不怎么",
    "不够",
    "不再",
    "不会",
    "不能",
    "不要",
    "不用",
    "不可",
    "没什么",
    "无法",
    "未必",
    "不大",
];

const CHINESE_CONTRASTS: &[&str] = &["但", "但是", "可是", "不过", "然而", "却", "只是"];

/// jieba's default dictionary, loaded once per process (it takes about 0.2 s).
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Loads the dictionary now rather than on the first Chinese comment.
pub(crate) fn warm_up() {
    LazyLock::force(&JIEBA);
    language::warm_up();
}

/// jieba's part-of-speech tags of words that never say what a comment is about:
/// pronouns, adverbs, prepositions, conjunctions, particles, numerals and measure words,
/// time and direction words, interjections, set phrases and non-words.
const FUNCTION_TAGS: &[&str] = &[
    "r", "rr", "rz", "d", "p", "c", "u", "uj", "ul", "uz", "ug", "uv", "ud", "y", "e", "o", "m",
    "mq", "q", "t", "tg", "f", "l", "x", "zg",
];

/// Whether a Chinese word may name a topic, by its part of speech in jieba's dictionary:
/// not a function word, and not a one-character verb (住, 买, 装: too vague alone). A word
/// jieba only finds by splitting (还会 = 还 + 会) is judged by its parts.
pub(crate) fn may_name_a_subject(word: &str) -> bool {
    let tags = JIEBA.tag(word, false);
    match tags.as_slice() {
        [one] => {
            let vague_verb = one.tag == "v" && word.chars().count() == 1;
            !(FUNCTION_TAGS.contains(&one.tag) || vague_verb)
        }
        parts => !parts.iter().any(|t| FUNCTION_TAGS.contains(&t.tag)),
    }
}

/// A comment normalised once, with the language that normalisation decided.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub language: Language,
    /// NFKC, lower case, control characters as spaces, Traditional converted to Simplified.
    pub text: String,
}

/// Normalises `text` and detects its language.
pub(crate) fn prepare(text: &str) -> Prepared {
    let norm = nfkc_lower(text);
    let (language, simplified) = language::detect_normalised(&norm);
    Prepared {
        language,
        text: simplified.unwrap_or(norm),
    }
}

/// Normalises `text` taken to be in `language`.
pub(crate) fn normalise(text: &str, language: Language) -> String {
    let norm = nfkc_lower(text);
    if language == Language::ChineseTraditional {
        language::to_simplified(&norm)
    } else {
        norm
    }
}

fn truncate(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn nfkc_lower(text: &str) -> String {
    let text = truncate(text);
    let mut out = String::with_capacity(text.len() + 8);
    let mut push = |c: char| {
        if c.is_ascii() {
            out.push(if c.is_ascii_control() {
                ' '
            } else {
                c.to_ascii_lowercase()
            });
        } else if c.is_control() {
            out.push(' ');
        } else if matches!(c, '\u{2018}' | '\u{2019}' | '\u{02BC}') {
            // Typographic apostrophes, so "didn’t" is "didn't".
            out.push('\'');
        } else {
            out.extend(c.to_lowercase());
        }
    };
    // ASCII is already in NFKC.
    if text.is_ascii() {
        text.chars().for_each(&mut push);
    } else {
        text.nfkc().for_each(&mut push);
    }
    out
}

/// Pictographs: emoji carry much of a short comment's tone, so they are tokens too.
pub(crate) fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{1F000}'..='\u{1FAFF}'
        | '\u{2600}'..='\u{27BF}'
        | '\u{2B00}'..='\u{2BFF}'
        | '\u{2300}'..='\u{23FF}')
}

/// Emoji presentation selectors, joiners and skin tones: the same emoji in another
/// rendering is the same token.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{1F3FB}'..='\u{1F3FF}'
    )
}

fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '\n'
            | '\u{2026}'
            | '\u{3002}'
            | '\u{3001}'
            | '\u{FF61}'
    )
}

/// A comment's words, ready for features, the lexicon and topics.
#[derive(Debug, Default)]
pub(crate) struct Tokenized<'a> {
    /// Normalised tokens with negation marked ("not_good").
    pub tokens: Vec<String>,
    /// The words as written (normalised, unmarked): character n-grams and the lexicon read
    /// these. Emoji are tokens but not words.
    pub words: Vec<&'a str>,
    /// The clause of each word, counted from 0: lexicon rules look back within a clause.
    pub clauses: Vec<u32>,
    /// Exclamation marks in the comment (the lexicon's emphasis).
    pub exclamations: u32,
}

/// Splits normalised `text` into the tokens of `family`.
pub(crate) fn tokenize(family: Family, text: &str) -> Tokenized<'_> {
    match family {
        Family::English => english(text),
        Family::Chinese => chinese(text),
    }
}

/// Tracks a negation's scope while walking a clause.
struct Negation {
    left: usize,
    scope: usize,
}

impl Negation {
    fn mark(&mut self, word: &str) -> String {
        if self.left > 0 {
            self.left -= 1;
            let mut t = String::with_capacity(NEGATED.len() + word.len());
            t.push_str(NEGATED);
            t.push_str(word);
            t
        } else {
            word.to_string()
        }
    }
}

fn is_english_negator(w: &str) -> bool {
    ENGLISH_NEGATORS.contains(&w) || w.ends_with("n't")
}

fn emoji_token(segment: &str) -> Option<String> {
    if !segment.chars().any(is_pictograph) {
        return None;
    }
    let t: String = segment.chars().filter(|&c| !is_emoji_modifier(c)).collect();
    (!t.is_empty()).then_some(t)
}

fn english(text: &str) -> Tokenized<'_> {
    let mut out = Tokenized::default();
    let mut negation = Negation {
        left: 0,
        scope: ENGLISH_SCOPE,
    };
    let mut clause = 0u32;
    for segment in text.split_word_bounds() {
        if segment.chars().any(char::is_alphanumeric) {
            let word = segment;
            if ENGLISH_CONTRASTS.contains(&word) {
                negation.left = 0;
            }
            out.tokens.push(negation.mark(word));
            out.words.push(word);
            out.clauses.push(clause);
            if is_english_negator(word) {
                negation.left = negation.scope;
            }
        } else if let Some(emoji) = emoji_token(segment) {
            out.tokens.push(emoji);
        } else if segment.chars().any(is_clause_break) {
            out.exclamations += segment.chars().filter(|&c| c == '!').count() as u32;
            negation.left = 0;
            clause += 1;
        }
    }
    out
}

fn chinese(text: &str) -> Tokenized<'_> {
    let mut out = Tokenized::default();
    let mut negation = Negation {
        left: 0,
        scope: CHINESE_SCOPE,
    };
    let mut clause = 0u32;
    for token in JIEBA.cut(text, true) {
        let word = token.word;
        if word.chars().any(char::is_alphanumeric) {
            if CHINESE_CONTRASTS.contains(&word) || ENGLISH_CONTRASTS.contains(&word) {
                negation.left = 0;
            }
            out.tokens.push(negation.mark(word));
            out.words.push(word);
            out.clauses.push(clause);
            if CHINESE_NEGATORS.contains(&word) || is_english_negator(word) {
                negation.left = negation.scope;
            }
        } else if let Some(emoji) = emoji_token(word) {
            out.tokens.push(emoji);
        } else if word.chars().any(is_clause_break) {
            out.exclamations += word.chars().filter(|&c| c == '!').count() as u32;
            negation.left = 0;
            clause += 1;
        }
    }
    out
}

/// The normalised tokens of `text` read as `language`: NFKC, lower case, Traditional
/// converted to Simplified, Chinese segmented by jieba and other text split at Unicode
/// word boundaries, emoji kept, punctuation dropped, and the words a negation governs
/// prefixed with `not_` ("not good" gives `not`, `not_good`; "不 满意" gives `不`,
/// `not_满意`).
pub fn tokens(text: &str, language: Language) -> Vec<String> {
    let norm = normalise(text, language);
    tokenize(language.family(), &norm).tokens
}
