//! Which language a comment is in, and the Traditional → Simplified conversion that lets
//! one Chinese model serve both scripts.

use std::sync::LazyLock;

use ferrous_opencc::OpenCC;
use ferrous_opencc::config::BuiltinConfig;
use serde::{Deserialize, Serialize};

/// The language of one comment, as far as analysis cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-Hans")]
    ChineseSimplified,
    #[serde(rename = "zh-Hant")]
    ChineseTraditional,
    /// No letters to judge by (empty, digits, emoji) or a script neither model reads.
    #[serde(rename = "und")]
    Undetermined,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Self::English,
        Self::ChineseSimplified,
        Self::ChineseTraditional,
        Self::Undetermined,
    ];

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::ChineseSimplified => "zh-Hans",
            Self::ChineseTraditional => "zh-Hant",
            Self::Undetermined => "und",
        }
    }

    /// Reads a tag written by [`Language::tag`]; tags compare case-insensitively, as BCP 47
    /// says they do.
    pub fn parse_tag(tag: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag.trim()))
    }

    /// The family whose sentiment model and topics serve this language. Undetermined text
    /// goes to English: what little it has (digits, emoji, Latin fragments) is read there.
    pub fn family(self) -> Family {
        match self {
            Self::ChineseSimplified | Self::ChineseTraditional => Family::Chinese,
            Self::English | Self::Undetermined => Family::English,
        }
    }
}

/// A group of languages sharing one sentiment model and one set of topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    English,
    Chinese,
}

impl Family {
    pub const ALL: [Family; 2] = [Self::English, Self::Chinese];

    /// Short name, used to prefix this family's tensors in the model file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Chinese => "zh",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::English => 0,
            Self::Chinese => 1,
        }
    }
}

/// OpenCC's phrase-level tables. Loading them cannot fail for the built-in configurations
/// (they are compiled into the crate), but a `None` keeps that an identity conversion
/// rather than a panic.
static T2S: LazyLock<Option<OpenCC>> =
    LazyLock::new(|| OpenCC::from_config(BuiltinConfig::T2s).ok());
static S2T: LazyLock<Option<OpenCC>> =
    LazyLock::new(|| OpenCC::from_config(BuiltinConfig::S2t).ok());

/// Loads the conversion tables now rather than on the first comment.
pub(crate) fn warm_up() {
    LazyLock::force(&T2S);
    LazyLock::force(&S2T);
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}'
        | '\u{30000}'..='\u{3134F}'
        | '\u{3007}')
}

/// Latin letters, including the accented ones of European languages.
pub(crate) fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}') && c.is_alphabetic())
}

/// Scripts written without spaces, whose letters are counted one by one like Han.
fn is_syllabic(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // kana
        | '\u{AC00}'..='\u{D7AF}' // hangul syllables
        | '\u{0E00}'..='\u{0E7F}') // thai
}

/// Detects the language of `text` (any form: it is normalised first).
pub fn detect_language(text: &str) -> Language {
    super::tokenize::prepare(text).language
}

/// Detects the language of normalised (NFKC, lower-case) text. When the text is
/// Traditional Chinese, also returns it converted to Simplified, which the detection had to
/// compute anyway.
pub(crate) fn detect_normalised(text: &str) -> (Language, Option<String>) {
    let mut han = 0usize;
    let mut latin_words = 0usize;
    let mut other = 0usize;
    // Han characters are counted one by one and Latin letters by the word: a Chinese
    // character carries about what an English word does, so "iPhone 很好用" is Chinese
    // and "I stayed at the 北京 Hilton" English.
    let mut in_latin = false;
    let mut in_other = false;
    for c in text.chars() {
        if is_han(c) {
            han += 1;
            (in_latin, in_other) = (false, false);
        } else if is_latin(c) {
            if !in_latin {
                latin_words += 1;
            }
            (in_latin, in_other) = (true, false);
        } else if is_syllabic(c) {
            other += 1;
            (in_latin, in_other) = (false, false);
        } else if c.is_alphabetic() {
            if !in_other {
                other += 1;
            }
            (in_latin, in_other) = (false, true);
        } else if !(c.is_ascii_digit() || c == '\'') {
            (in_latin, in_other) = (false, false);
        }
    }
    if han > 0 && 2 * han >= han + latin_words + other {
        return chinese_script(text);
    }
    if latin_words > 0 && latin_words >= other {
        (Language::English, None)
    } else {
        (Language::Undetermined, None)
    }
}

/// Simplified or Traditional: the characters OpenCC would change in each direction. A
/// Simplified text is left untouched by Traditional → Simplified, so most comments need
/// one conversion; only when it changes something is the other direction counted, because
/// a few characters (乾, 著, 麼) occur in both scripts.
fn chinese_script(text: &str) -> (Language, Option<String>) {
    let Some(t2s) = T2S.as_ref() else {
        return (Language::ChineseSimplified, None);
    };
    let simplified = t2s.convert(text);
    let traditional_marks = changed_chars(text, &simplified);
    if traditional_marks == 0 {
        return (Language::ChineseSimplified, None);
    }
    let simplified_marks = S2T
        .as_ref()
        .map_or(0, |s2t| changed_chars(text, &s2t.convert(text)));
    if traditional_marks > simplified_marks {
        (Language::ChineseTraditional, Some(simplified))
    } else {
        (Language::ChineseSimplified, None)
    }
}

fn changed_chars(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).filter(|(x, y)| x != y).count()
}

/// `text` in Simplified characters (phrase by phrase, as OpenCC converts).
pub(crate) fn to_simplified(text: &str) -> String {
    match T2S.as_ref() {
        Some(t2s) => t2s.convert(text),
        None => text.to_string(),
    }
}
