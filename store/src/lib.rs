//! Vitals' storage: one code path over an embedded SQLite file (the default) and
//! PostgreSQL, through diesel. Owns the schema, the migrations runner and every query;
//! the server and the trainer call it and never grow a second copy.

pub mod audit;
pub mod campaigns;
pub mod comments;
pub mod customers;
pub mod db;
pub mod error;
pub mod evaluations;
pub mod events;
pub mod followups;
pub mod history;
pub mod page;
mod pgcopy;
pub mod portfolio;
pub mod refresh_work;
mod schema;
pub mod schemes;
pub mod settings;
pub mod snapshots;

pub use audit::{AuditEntry, AuditFilter};
pub use campaigns::{CampaignMember, CampaignRecord, CampaignReview, NewCampaign};
pub use comments::{CameWith, CommentFilter, CommentRecord, StaleComment, TrainingComment};
pub use customers::{CustomerFilter, CustomerName, RejectedRow, UpsertOutcome};
pub use db::{DatabaseUrl, PoolOptions, PoolStats, Store, redact_url};
pub use error::{Result, StoreError};
pub use evaluations::{
    AtRiskOrder, AtRiskQuery, CurrencyAtRisk, EvaluationRecord, RiskSummary, SegmentSummary,
};
pub use events::{BatchOutcome, EventFilter, RecordMode, RejectedEvent};
pub use followups::{
    CommentAnalyser, CustomerSignal, FollowUpFilter, FollowUpOpener, FollowUpRecord, VersionedRules,
};
pub use history::{CustomerLookup, History};
pub use page::Page;
pub use schemes::StoredScheme;
pub use settings::DataArgs;
