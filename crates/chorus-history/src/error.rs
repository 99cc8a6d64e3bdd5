//! The one error type of this crate.

/// Why a state could not be read, diffed or restored.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The bytes are not a well-formed Yjs v1 update, or one in a class known to hurt yrs
    /// (checked by Chorus' own bounded validator before yrs sees them).
    #[error("invalid update: {0}")]
    Invalid(#[from] chorus_protocol::UpdateError),
    /// The bytes are not a Yjs v1 update.
    #[error("undecodable update: {0}")]
    Decode(#[from] yrs::encoding::read::Error),
    /// The update decodes but yrs refused to apply it.
    #[error("update does not apply: {0}")]
    Apply(#[from] yrs::error::UpdateError),
    /// Shared types or values nest deeper than this many levels.
    #[error("content nests deeper than {0} levels")]
    TooDeep(usize),
    /// The state holds content this crate cannot re-create (named in the message).
    #[error("unsupported content: {0}")]
    Unsupported(String),
    /// The client id is not a Yjs client id (53 bits).
    #[error("client id {0} is larger than 2^53 - 1")]
    InvalidClientId(u64),
    /// yrs panicked on this input (contained; nothing is kept from it).
    #[error("yrs panicked on this input")]
    Panicked,
    /// The document did not hold what was read from it a moment before (a bug, reported
    /// instead of letting yrs panic on a bad position).
    #[error("inconsistent document: {0}")]
    Inconsistent(String),
}

#[cfg(test)]
mod tests {
    /// The server moves errors across tasks and into `anyhow`.
    #[test]
    fn errors_are_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<super::HistoryError>();
    }
}
