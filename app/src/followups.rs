//! Which follow-ups a live event batch opens, under the rules in force, and the cache of
//! those rules. The store records tasks in the batch's transaction; what opens them is
//! decided here (the rules are the domain's, `vitals_domain::followup`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vitals_domain::comments::{CommentAnalysis, comment_of};
use vitals_domain::followup::{FollowUpRules, might_signal};
use vitals_domain::time::Micros;
use vitals_domain::{NewEvent, StoredEvent};
use vitals_engine::evaluation::{LoadedText, routing_words};
use vitals_store::{FollowUpOpener, Result, Store, VersionedRules};

/// How long a process trusts the rules it read: a change made through another server
/// applies here within this time; one made through this process applies at once.
const RULES_TTL: Duration = Duration::from_secs(1);

/// The follow-up rules in force, re-read at most once a second: recording an event that
/// may signal must not pay a query for rules that change a few times a year.
#[derive(Debug, Default)]
pub struct RulesCache {
    last: Mutex<Option<(Instant, Arc<VersionedRules>)>>,
}

impl RulesCache {
    /// The rules in force as read within the last second.
    pub fn in_force(&self, store: &Store) -> Result<Arc<VersionedRules>> {
        if let Some(rules) = self.fresh() {
            return Ok(rules);
        }
        let rules = Arc::new(store.rules_in_force()?);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), rules.clone()));
        }
        Ok(rules)
    }

    fn fresh(&self) -> Option<Arc<VersionedRules>> {
        let last = self.last.lock().ok()?;
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < RULES_TTL)
            .map(|(_, rules)| rules.clone())
    }

    /// Stores a new version of the rules (see [`Store::update_follow_up_rules`]) and
    /// applies it in this process at once.
    pub fn update(
        &self,
        store: &Store,
        expected_version: i64,
        rules: &FollowUpRules,
        actor: &str,
    ) -> Result<VersionedRules> {
        self.forget();
        let updated = store.update_follow_up_rules(expected_version, rules, actor);
        self.forget();
        updated
    }

    fn forget(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = None;
        }
    }
}

/// The rules a live batch is recorded under, read only when one of its events could
/// signal at all: the bulk of events (purchases) pay nothing for follow-ups.
pub fn rules_for(
    cache: &RulesCache,
    store: &Store,
    batch: &[(usize, NewEvent)],
) -> Result<Option<Arc<VersionedRules>>> {
    if batch.iter().any(|(_, e)| might_signal(&e.payload)) {
        cache.in_force(store).map(Some)
    } else {
        Ok(None)
    }
}

/// Runs `record` with the opener of `rules`: an event signals as the rules say, as of
/// `now`; a negative comment also by the subject it is about (its words and its topic's
/// terms under `text`, the text model in service).
pub fn with_opener<T>(
    rules: Option<&VersionedRules>,
    text: Option<&LoadedText>,
    now: Micros,
    record: impl FnOnce(Option<&FollowUpOpener<'_>>) -> T,
) -> T {
    match rules {
        None => record(None),
        Some(rules) => {
            let signal_of = |e: &StoredEvent, analysis: Option<&CommentAnalysis>| {
                let mut signals: Vec<_> = rules.rules.signal_of_event(e, now).into_iter().collect();
                let negative = |a: &&CommentAnalysis| {
                    rules
                        .rules
                        .negative_comment
                        .opens_on(f64::from(a.sentiment))
                };
                // Only a negative comment is matched against the routes: a comment's
                // words are gathered (segmented again) for those alone.
                if let (Some(a), Some((_, said, _))) =
                    (analysis.filter(negative), comment_of(&e.payload))
                {
                    let words = routing_words(text, said, a);
                    let words: Vec<&str> = words.iter().map(String::as_str).collect();
                    signals.extend(rules.rules.signal_of_comment(
                        f64::from(a.sentiment),
                        &words,
                        said,
                        now,
                    ));
                }
                signals
            };
            record(Some(&FollowUpOpener {
                rules_version: rules.version,
                signal_of: &signal_of,
            }))
        }
    }
}
