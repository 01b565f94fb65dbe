//! Vitals' application layer: the decisions the server and the trainer share, between
//! the transport (gRPC handlers, the command line) and the storage. The store stores and
//! reads; what to compute and which follow-ups a result opens is decided here.
//!
//! - `refresh`: evaluate every customer with the models in service, store the snapshots
//!   and open the follow-ups their risk calls for.

pub mod refresh;

pub use refresh::{RefreshProgress, refresh_evaluations};
