//! One file per gRPC service: convert and validate the request, call the store, convert
//! the answer.

pub mod customers;
pub mod evaluation;
mod evaluation_proto;
pub mod events;
pub mod followups;
pub mod models;
pub mod portfolio;
