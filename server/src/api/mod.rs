//! One file per gRPC service: convert and validate the request, call the store, convert
//! the answer. A service's message conversions live beside it in `<service>_proto.rs`
//! (the shared ones, customers and events, in `crate::convert`).

pub mod customers;
pub mod evaluation;
mod evaluation_proto;
pub mod events;
pub mod followups;
mod followups_proto;
pub mod models;
pub mod portfolio;
