//! The text model in service, as the rest of Vitals sees it: a comment in, the domain's
//! [`CommentAnalysis`] out (the topic named as the version named it), and the words a
//! follow-up route is matched against.

use vitals_domain::StoredEvent;
use vitals_domain::comments::{CommentAnalysis, CommentTopic, comment_of};
use vitals_domain::evaluation::{
    CommentSummary, NEGATIVE_SENTIMENT, RECENT_COMMENT_DAYS, TopicMention,
};
use vitals_domain::features::known_at;
use vitals_domain::time::{MICROS_PER_DAY, Micros};

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

/// What the customer wrote in the [`RECENT_COMMENT_DAYS`] before `as_of` (as known then),
/// read with the text model in service: how many, how many negative, their mean
/// sentiment, and the subjects of the negative ones.
pub fn summary(
    text_model: Option<&LoadedText>,
    events: &[StoredEvent],
    as_of: Micros,
) -> CommentSummary {
    let from = as_of.saturating_sub(RECENT_COMMENT_DAYS * MICROS_PER_DAY);
    let mut out = CommentSummary::default();
    let mut sum = 0.0;
    for e in events {
        if e.time < from || !known_at(e.time, e.record_time, as_of) {
            continue;
        }
        let Some((_, said, _)) = comment_of(&e.payload) else {
            continue;
        };
        let a = analyse_comment(text_model, said);
        let sentiment = f64::from(a.sentiment);
        out.comments += 1;
        sum += sentiment;
        if sentiment > NEGATIVE_SENTIMENT {
            continue;
        }
        out.negative += 1;
        if let Some(topic) = a.topic {
            match out
                .negative_topics
                .iter_mut()
                .find(|t| t.topic == topic.name)
            {
                Some(t) => {
                    t.comments += 1;
                    t.last_time = t.last_time.max(e.time);
                }
                None => out.negative_topics.push(TopicMention {
                    topic: topic.name,
                    comments: 1,
                    last_time: e.time,
                }),
            }
        }
    }
    if out.comments > 0 {
        out.mean_sentiment = Some(sum / f64::from(out.comments));
    }
    out.negative_topics.sort_by(|a, b| {
        b.comments
            .cmp(&a.comments)
            .then(b.last_time.cmp(&a.last_time))
    });
    out
}
