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

use vitals_domain::words::Language;

/// The language of the words the server writes into an answer (factor labels and values,
/// segment names, how a value was reached, why a part is absent, a review's sentence):
/// the caller's `accept-language` metadata (browsers send it; `vitals_domain::words`),
/// English without it. Error messages stay English: they are for the developer calling.
pub(crate) fn language_of<T>(request: &tonic::Request<T>) -> Language {
    request
        .metadata()
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map_or(Language::English, Language::from_accept_language)
}
