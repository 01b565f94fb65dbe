//! The text model in service, as the rest of Vitals sees it: a comment in, the domain's
//! [`CommentAnalysis`] out (the topic named as the version named it), and the words a
//! follow-up route is matched against.

use vitals_domain::comments::{CommentAnalysis, CommentTopic};

use crate::text::{LoadedText, TextModel, detect_language, tokens};

/// Analyses `text` with `text_model`, or with the built-in lexicons (version 0) when no
/// text model is in service.
pub fn analyse_comment(text_model: Option<&LoadedText>, text: &str) -> CommentAnalysis {
    static LEXICONS: std::sync::LazyLock<TextModel> =
        std::sync::LazyLock::new(TextModel::lexicon_only);
    let (model, version) = match text_model {
        Some(t) => (&t.model, t.manifest.version),
        None => (&*LEXICONS, 0),
    };
    let a = model.analyse(text);
    CommentAnalysis {
        language: a.language.tag().to_owned(),
        sentiment: a.sentiment,
        topic: a.topic.and_then(|id| {
            model.topic(id).map(|t| CommentTopic {
                id,
                name: t.name.clone(),
            })
        }),
        model_version: version,
    }
}

/// The words a follow-up route is matched against: the comment's own normalised words
/// and its topic's terms.
pub fn routing_words(
    text_model: Option<&LoadedText>,
    text: &str,
    analysis: &CommentAnalysis,
) -> Vec<String> {
    let mut words = tokens(text, detect_language(text));
    if let (Some(t), Some(topic)) = (text_model, &analysis.topic)
        && let Some(found) = t.model.topic(topic.id)
    {
        words.extend(found.terms.iter().cloned());
    }
    words
}
