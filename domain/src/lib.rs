//! Vitals' domain: what a customer, an event and an evaluation are, and the rules about
//! them that need no trained model and no IO. `vitals-store` stores these types and
//! depends on nothing else of Vitals; `vitals-engine` adds the models.
//!
//! - `records`: customers, events, attributes (re-exported at the root).
//! - `validate`, `currency`, `time`: what is valid, money, instants.
//! - `features`, `labels`, `reference`: point-in-time features, churn labels, reference
//!   statistics for the scorecard.
//! - `evaluation`: an evaluation's parts and result types; RFM, scorecard, lifecycle, the
//!   scoring scheme.
//! - `followup`: the rules that turn signals into follow-up tasks, and a task's moves.
//! - `campaign`: control-group draws and campaign effects.
//! - `comments`: which events carry a comment, what its analysis says, which scored
//!   comments teach sentiment.
//! - `portfolio`: portfolio metrics counted from raw rows.

pub mod campaign;
pub mod comments;
pub mod currency;
pub mod evaluation;
pub mod explain;
pub mod features;
pub mod followup;
pub mod labels;
pub mod portfolio;
pub mod records;
pub mod reference;
pub mod time;
pub mod validate;
pub mod words;

pub use records::*;
pub use validate::{FieldViolation, Violations};
