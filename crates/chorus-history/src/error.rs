//! The one error type of this crate.

/// Why a state could not be read, diffed or restored.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The bytes are not a Yjs v1 update.
    #[error("undecodable update: {0}")]
    Decode(#[from] yrs::encoding::read::Error),
    /// The update decodes but yrs refused to apply it.
    #[error("update does not apply: {0}")]
    Apply(#[from] yrs::error::UpdateError),
    /// The state holds content this crate cannot rebuild (named in the message).
    #[error("unsupported content: {0}")]
    Unsupported(String),
}
