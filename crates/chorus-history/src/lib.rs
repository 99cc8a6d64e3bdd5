//! Version history for Chorus documents, without IO.
//!
//! A *version* is a document's whole state as one Yjs v1 update. This crate reads such states:
//! it renders one as JSON a UI can show ([`content_json`]), says what changed between two
//! ([`diff`]) and computes the forward update that makes a live document's content equal to an
//! earlier version's ([`restore_update`]).

#![warn(missing_docs)]

mod error;

pub use error::HistoryError;

use serde::{Deserialize, Serialize};

/// The content of a document state (a full v1 update), as JSON a UI can render.
///
/// # Errors
/// [`HistoryError`] when `state` does not decode or holds content this crate cannot read.
pub fn content_json(state: &[u8]) -> Result<serde_json::Value, HistoryError> {
    let _ = state;
    Ok(serde_json::json!({ "roots": {} }))
}

/// A v1 update that, applied to a document whose state is `current`, makes its content equal
/// to `target`'s content.
///
/// # Errors
/// [`HistoryError`] when a state does not decode or holds content this crate cannot rebuild.
pub fn restore_update(
    current: &[u8],
    target: &[u8],
    client_id: u64,
) -> Result<Vec<u8>, HistoryError> {
    let _ = (current, target, client_id);
    Err(HistoryError::Unsupported("not implemented yet".into()))
}

/// What changed from `a` to `b`.
///
/// # Errors
/// [`HistoryError`] when a state does not decode or holds content this crate cannot read.
pub fn diff(a: &[u8], b: &[u8]) -> Result<DocDiff, HistoryError> {
    let _ = (a, b);
    Ok(DocDiff::default())
}

/// What changed between two document states (placeholder shape, filled in next).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocDiff {
    /// The roots whose content differs, by name.
    pub roots: Vec<serde_json::Value>,
}
