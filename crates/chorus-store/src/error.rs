//! [`StoreError`]: why a store or log operation failed; [`FormatError`]: what is wrong with
//! stored bytes.

use std::error::Error as StdError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk failed.
    #[error("{action} {location}")]
    Io {
        /// What was being done, e.g. "writing snapshot".
        action: &'static str,
        /// The file or key involved.
        location: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// A remote backend (Redis, object storage) failed or could not be reached.
    #[error("{action} {location}")]
    Backend {
        /// What was being done, e.g. "saving snapshot".
        action: &'static str,
        /// The key or object involved (never a URL with credentials).
        location: String,
        /// The underlying failure.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Stored bytes failed their integrity check. Nothing from them is returned, and they are
    /// never overwritten: they stay in place until the next save moves them aside to
    /// `<name>.corrupt-<unix ms>`.
    #[error("{location} is corrupt: {reason}")]
    Corrupt {
        /// The file or key involved.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller handed the store something it cannot keep, e.g. a snapshot that is not a Yjs
    /// v1 update, or a record longer than the log format allows.
    #[error("refusing to store {location}: {reason}")]
    Rejected {
        /// The document involved.
        location: String,
        /// Why.
        reason: String,
    },
    /// A compare-and-swap save lost the race this many times in a row; the stored snapshot is
    /// intact and the caller may retry later.
    #[error("snapshot {location}: gave up after {attempts} conflicting concurrent writes")]
    Contended {
        /// The key or object involved.
        location: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The store configuration cannot work.
    #[error("store configuration: {0}")]
    Config(String),
}

/// What is wrong with stored bytes in one of Chorus' checksummed formats
/// ([`snapshot_file`](crate::snapshot_file), [`log_record`](crate::log_record)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The bytes do not start with the format's magic.
    #[error("not a Chorus {0} (bad magic)")]
    BadMagic(&'static str),
    /// The bytes end before the named part.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The named part fails its checksum.
    #[error("{0} checksum mismatch (torn write or corruption)")]
    Checksum(&'static str),
    /// The stored document name is not UTF-8.
    #[error("the document name is not UTF-8")]
    NameNotUtf8,
    /// The payload is not as long as its header says.
    #[error("payload length {declared} does not match the {present} bytes present")]
    Length {
        /// The length in the header.
        declared: u64,
        /// The bytes actually there.
        present: usize,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] from any error type.
    pub fn backend(
        action: &'static str,
        location: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            action,
            location: location.into(),
            source: Box::new(source),
        }
    }

    /// A [`StoreError::Io`] about a path.
    pub(crate) fn io<'a>(
        action: &'static str,
        location: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        // The path is formatted only on failure: the success path (every update-log append)
        // should not pay for a string it never shows.
        move |source| Self::Io {
            action,
            location: location.display().to_string(),
            source,
        }
    }

    /// A [`StoreError::Io`] for a blocking task that panicked or was cancelled.
    pub(crate) fn join(
        action: &'static str,
        location: String,
    ) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |join| Self::Io {
            action,
            location,
            source: std::io::Error::other(join),
        }
    }
}
