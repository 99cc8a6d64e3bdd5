//! Document (room) names.

use std::fmt;

/// Longest accepted name, in UTF-8 bytes.
pub const MAX_DOC_NAME_BYTES: usize = 512;

/// The name of a document, which is also the name of its room.
///
/// Any non-empty UTF-8 string of at most [`MAX_DOC_NAME_BYTES`] bytes without control
/// characters; `/` is allowed, so names can carry a tenant or folder prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocName(String);

/// Why a string is not a valid [`DocName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocNameError {
    /// The name is empty.
    #[error("document name is empty")]
    Empty,
    /// The name is longer than [`MAX_DOC_NAME_BYTES`].
    #[error("document name is {0} bytes long; the limit is {MAX_DOC_NAME_BYTES}")]
    TooLong(usize),
    /// The name contains a control character.
    #[error("document name contains a control character")]
    ControlCharacter,
}

impl DocName {
    /// Validates `name`.
    ///
    /// # Errors
    /// See [`DocNameError`].
    pub fn parse(name: impl Into<String>) -> Result<Self, DocNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(DocNameError::Empty);
        }
        if name.len() > MAX_DOC_NAME_BYTES {
            return Err(DocNameError::TooLong(name.len()));
        }
        if name.chars().any(char::is_control) {
            return Err(DocNameError::ControlCharacter);
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for DocName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DocName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_paths_and_unicode() {
        assert!(DocName::parse("team/notes/2026 plan ü").is_ok());
        assert!(DocName::parse("x".repeat(MAX_DOC_NAME_BYTES)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_control_characters() {
        assert_eq!(DocName::parse(""), Err(DocNameError::Empty));
        assert_eq!(
            DocName::parse("x".repeat(MAX_DOC_NAME_BYTES + 1)),
            Err(DocNameError::TooLong(MAX_DOC_NAME_BYTES + 1))
        );
        assert_eq!(DocName::parse("a\nb"), Err(DocNameError::ControlCharacter));
    }
}
