//! Opaque page tokens for keyset pagination.
//!
//! A token carries the sort key of the last row served and the filter it was served
//! under, base64-encoded so clients treat it as opaque. Seeking past a key (rather than
//! skipping N rows) neither skips nor repeats rows while others insert.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Result, StoreError};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

/// One page of results and the token for the next, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Resolves a requested page size: 0 means the default; negative or above the maximum
/// is refused.
pub fn page_size(requested: i32) -> Result<usize> {
    match usize::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(StoreError::invalid(
            "page_size",
            format!("must be between 0 and {MAX_PAGE_SIZE}, got {requested}"),
        )),
    }
}

#[derive(serde::Deserialize, Serialize)]
struct Token<K, F> {
    key: K,
    filter: F,
}

pub(crate) fn encode<K: Serialize, F: Serialize>(key: K, filter: F) -> String {
    // Serializing plain tuples and structs of strings and integers cannot fail.
    let json = serde_json::to_vec(&Token { key, filter }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token, refusing one that is malformed or was issued under other filters.
pub(crate) fn decode<K: DeserializeOwned, F: DeserializeOwned + PartialEq>(
    token: &str,
    filter: &F,
) -> Result<Option<K>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || StoreError::invalid("page_token", "is not a token this server issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let t: Token<K, F> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if &t.filter != filter {
        return Err(StoreError::invalid(
            "page_token",
            "was issued for other filters: repeat the request's filters unchanged",
        ));
    }
    Ok(Some(t.key))
}

/// Splits a `limit + 1` fetch into a page, with a token made from the last row kept.
pub(crate) fn paginate<T, K: Serialize, F: Serialize>(
    mut rows: Vec<T>,
    limit: usize,
    filter: F,
    key_of: impl Fn(&T) -> K,
) -> Page<T> {
    let next_page_token = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode(key_of(last), filter))
    } else {
        None
    };
    Page {
        items: rows,
        next_page_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bind_their_filter() {
        let t = encode(("abc", 5), "region=EU");
        let key: Option<(String, i64)> = decode(&t, &"region=EU".to_string()).expect("decodes");
        assert_eq!(key, Some(("abc".to_string(), 5)));
        assert!(decode::<(String, i64), String>(&t, &"region=US".to_string()).is_err());
        assert!(decode::<(String, i64), String>("garbage!", &String::new()).is_err());
        assert_eq!(
            decode::<(String, i64), String>("", &String::new()).ok(),
            Some(None)
        );
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1000).ok(), Some(1000));
        assert!(page_size(1001).is_err());
        assert!(page_size(-1).is_err());
    }
}
