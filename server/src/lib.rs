//! Vitals' gRPC server: the services of `vitals.v1` over the store, plus health,
//! reflection and gRPC-Web on one port.

pub mod api;
pub mod audit;
pub mod auth;
pub mod console;
pub mod convert;
pub mod error;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod observe;
pub mod refresh;
pub mod server;
pub mod settings;

pub use server::{ServerConfig, TlsFiles, serve};
