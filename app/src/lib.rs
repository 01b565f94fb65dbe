//! Vitals' application layer: the decisions the server and the trainer share, between
//! the transport (gRPC handlers, the command line) and the storage. The store stores and
//! reads; what to compute and which follow-ups a result opens is decided here.
//!
//! - `refresh`: evaluate every customer with the models in service, store the snapshots
//!   and open the follow-ups their risk calls for.
//! - `histories`: customers' histories for single evaluations, gathered, kept in memory
//!   and forgotten whenever they change (`HistoryWriter` for this process's own writes,
//!   which also opens the follow-ups a live event batch signals).
//! - `followups`: which follow-ups an event opens, and the cache of the rules in force.
//! - `schemes`: the scoring scheme in force, cached for scoring.

pub mod followups;
pub mod histories;
pub mod refresh;
pub mod schemes;

pub use refresh::{
    RefreshProgress, refresh_between, refresh_evaluations, work_on_one_shared_chunk,
    work_on_shared_refreshes,
};
