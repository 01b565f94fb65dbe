//! End-to-end tests: every one runs against a real server on an ephemeral port, over a
//! real database, once on SQLite and once on PostgreSQL, through the generated client.

mod auth;
mod comments;
mod customers;
mod evaluation;
mod events;
mod faults;
mod followups;
mod history;
mod history_cache;
mod limits;
mod models;
mod portfolio;
mod refresh_work;
mod store_evaluations;
mod surface;
