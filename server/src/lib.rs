//! Vitals' gRPC server: the services of `vitals.v1` over the store, plus health,
//! reflection and gRPC-Web on one port.

pub mod api;
pub mod audit;
pub mod auth;
pub mod convert;
pub mod error;
pub mod history_cache;
pub mod history_loader;
pub mod logging;
pub mod models;
pub mod server;

pub use server::{ServerConfig, TlsFiles, serve};
