//! Vitals' inference engine: the churn, segment and lifetime-value models (fitting,
//! scoring, explaining), their metrics, the registry they are published to, and the
//! evaluation of a customer with the models in service.
//!
//! No database and no network. The domain it works on (records, features, labels, the
//! scorecard) is `vitals-domain`'s, so the trainer and the server compute features from
//! the same code and a model is always scored on exactly what it was trained on.

pub mod evaluation;
pub mod metrics;
pub mod models;
pub mod registry;
pub mod text;

// The domain's modules, under the paths this crate's code names them by.
use vitals_domain::{features, labels, records as domain, reference, time};
