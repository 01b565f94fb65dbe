//! Vitals' engine: the domain model and the pure logic over it.
//!
//! No database and no network: the store persists these types, the server maps the
//! API onto them, and the trainer and the server compute features from them, so a
//! model is always scored on exactly what it was trained on.

pub mod campaign;
pub mod currency;
pub mod domain;
pub mod evaluation;
pub mod features;
pub mod followup;
pub mod labels;
pub mod metrics;
pub mod models;
pub mod portfolio;
pub mod reference;
pub mod registry;
pub mod time;
pub mod validate;

pub use domain::*;
pub use validate::{FieldViolation, Violations};
