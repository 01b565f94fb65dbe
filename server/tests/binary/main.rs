//! The `vitals-server` binary as an operator runs it (`CARGO_BIN_EXE_vitals-server`):
//! configured by flags and `VITALS_*` variables, with keys, TLS, limits, metrics, health
//! and migrations, spoken to by a real gRPC client over a real socket.

mod common;
mod failover;
mod lifecycle;
mod operability;
mod replica;
mod security;
mod shared_refresh;
