//! Vitals' offline tooling behind the `vitals-trainer` binary, as a library so tests and
//! other tools call the same code.
//!
//! - [`import`]: loading customers and events from files into the store.
//! - [`time`] and [`money`]: the parsing rules every importer shares.

pub mod generate;
pub mod import;
pub mod money;
pub mod report;
pub mod score;
pub mod time;
pub mod train;

pub use import::cdnow::import_cdnow;
pub use import::csv_generic::{import_customers, import_events};
pub use import::telco::import_telco;
pub use import::{ImportKind, ImportOptions, ImportSummary, Rejection};
