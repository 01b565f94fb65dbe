//! What customers write: which events carry a comment, what an analysis of one says, and
//! which scored comments teach a sentiment model which way they lean.
//!
//! The analysis itself (language, words, the models) is the engine's (`vitals_engine::text`);
//! this module holds only the facts every layer shares.

use serde::{Deserialize, Serialize};

use crate::records::{EventPayload, Feedback, FeedbackKind};

/// Where a comment came from: a survey answer or review, or an interaction's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentSource {
    Feedback,
    Interaction,
}

impl CommentSource {
    pub const ALL: [CommentSource; 2] = [Self::Feedback, Self::Interaction];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feedback => "feedback",
            Self::Interaction => "interaction",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The comment an event carries, if any: a feedback comment or an interaction's note
/// with something in it. Retention actions' notes are the company's words, not the
/// customer's, and are never analysed.
pub fn comment_of(payload: &EventPayload) -> Option<(CommentSource, &str, &str)> {
    let (source, text, channel) = match payload {
        EventPayload::Feedback(f) => (CommentSource::Feedback, f.comment.as_deref()?, &f.channel),
        EventPayload::Interaction(i) => {
            (CommentSource::Interaction, i.note.as_deref()?, &i.channel)
        }
        _ => return None,
    };
    (!text.trim().is_empty()).then_some((source, text, channel.as_str()))
}

/// What the analysis of one comment found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentAnalysis {
    /// A BCP 47 tag: `en`, `zh-Hans`, `zh-Hant`, or `und` when neither.
    pub language: String,
    /// From -1 (negative) to +1 (positive).
    pub sentiment: f32,
    /// The subject it is about, when the text model in service found topics.
    pub topic: Option<CommentTopic>,
    /// The text model version that analysed it; 0 for the built-in lexicons.
    pub model_version: u64,
}

/// A subject customers write about, as one text model version named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentTopic {
    /// Its number within the model version.
    pub id: u32,
    /// Its top terms, in the comments' own language (`delivery / late / parcel`).
    pub name: String,
}

/// Whether a scored comment is a positive (`Some(true)`) or negative (`Some(false)`)
/// example for a sentiment model, by the scale's usual cuts: NPS promoters (9-10) against
/// detractors (0-6), CSAT and review stars 4-5 against 1-2, CES 1-2 (little effort)
/// against 5-7. The middle of each scale says little either way and is left out, as is
/// a comment without a score or without text.
pub fn sentiment_label(feedback: &Feedback) -> Option<bool> {
    if feedback
        .comment
        .as_deref()
        .is_none_or(|c| c.trim().is_empty())
    {
        return None;
    }
    lean_of_score(feedback.kind, feedback.score?)
}

/// Which way a score on `kind`'s scale leans, by the cuts of [`sentiment_label`]; `None`
/// in the middle of the scale.
pub fn lean_of_score(kind: FeedbackKind, score: i32) -> Option<bool> {
    match kind {
        FeedbackKind::Nps => match score {
            9..=10 => Some(true),
            0..=6 => Some(false),
            _ => None,
        },
        FeedbackKind::Csat | FeedbackKind::Review => match score {
            4..=5 => Some(true),
            1..=2 => Some(false),
            _ => None,
        },
        FeedbackKind::Ces => match score {
            1..=2 => Some(true),
            5..=7 => Some(false),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Interaction, InteractionKind, Severity};

    fn answer(kind: FeedbackKind, score: Option<i32>, comment: Option<&str>) -> Feedback {
        Feedback {
            kind,
            score,
            comment: comment.map(str::to_owned),
            channel: "web".into(),
        }
    }

    #[test]
    fn labels_follow_each_scale_s_cuts_and_leave_the_middle_out() {
        let label = |kind, score| sentiment_label(&answer(kind, Some(score), Some("words")));
        assert_eq!(label(FeedbackKind::Nps, 10), Some(true));
        assert_eq!(label(FeedbackKind::Nps, 9), Some(true));
        assert_eq!(label(FeedbackKind::Nps, 8), None);
        assert_eq!(label(FeedbackKind::Nps, 7), None);
        assert_eq!(label(FeedbackKind::Nps, 6), Some(false));
        assert_eq!(label(FeedbackKind::Nps, 0), Some(false));
        assert_eq!(label(FeedbackKind::Csat, 4), Some(true));
        assert_eq!(label(FeedbackKind::Csat, 3), None);
        assert_eq!(label(FeedbackKind::Review, 1), Some(false));
        // Effort: low is good.
        assert_eq!(label(FeedbackKind::Ces, 1), Some(true));
        assert_eq!(label(FeedbackKind::Ces, 4), None);
        assert_eq!(label(FeedbackKind::Ces, 7), Some(false));
    }

    #[test]
    fn no_score_or_no_words_teaches_nothing() {
        assert_eq!(
            sentiment_label(&answer(FeedbackKind::Review, None, Some("late again"))),
            None
        );
        assert_eq!(
            sentiment_label(&answer(FeedbackKind::Review, Some(1), None)),
            None
        );
        assert_eq!(
            sentiment_label(&answer(FeedbackKind::Review, Some(1), Some("  "))),
            None
        );
    }

    #[test]
    fn comments_come_from_feedback_and_interaction_notes_only() {
        let review = EventPayload::Feedback(answer(FeedbackKind::Review, None, Some("late")));
        assert_eq!(
            comment_of(&review),
            Some((CommentSource::Feedback, "late", "web"))
        );
        let blank = EventPayload::Feedback(answer(FeedbackKind::Nps, Some(3), Some(" ")));
        assert_eq!(comment_of(&blank), None);
        let call = EventPayload::Interaction(Interaction {
            kind: InteractionKind::Complaint,
            severity: Severity::High,
            category: String::new(),
            channel: "phone".into(),
            ticket_id: String::new(),
            resolved_time: None,
            note: Some("charged twice".into()),
        });
        assert_eq!(
            comment_of(&call),
            Some((CommentSource::Interaction, "charged twice", "phone"))
        );
    }
}
