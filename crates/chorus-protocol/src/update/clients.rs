//! The distinct client ids of one update, bounded by the configured limit.

use std::collections::HashMap;

use super::error::{Section, UpdateError};

const IN_STRUCTS: u8 = 1;
const IN_DELETE_SET: u8 = 2;

/// Client ids seen so far and the sections each appeared in. Never holds more than `limit`
/// entries, so an update announcing 100 000 clients costs `limit` insertions, not 100 000.
pub(super) struct ClientSet {
    seen: HashMap<u64, u8>,
    limit: usize,
    struct_clients: usize,
}

impl ClientSet {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            seen: HashMap::new(),
            limit,
            struct_clients: 0,
        }
    }

    /// Records `client` in `section`.
    ///
    /// # Errors
    /// [`UpdateError::DuplicateClient`] if it is already in that section,
    /// [`UpdateError::TooManyClients`] if it is one distinct client too many.
    pub(super) fn insert(&mut self, client: u64, section: Section) -> Result<(), UpdateError> {
        let bit = match section {
            Section::Structs => IN_STRUCTS,
            Section::DeleteSet => IN_DELETE_SET,
        };
        if !self.seen.contains_key(&client) && self.seen.len() >= self.limit {
            return Err(UpdateError::TooManyClients { limit: self.limit });
        }
        let sections = self.seen.entry(client).or_insert(0);
        if *sections & bit != 0 {
            return Err(UpdateError::DuplicateClient { client, section });
        }
        *sections |= bit;
        if bit == IN_STRUCTS {
            self.struct_clients += 1;
        }
        Ok(())
    }

    /// Distinct client ids in both sections.
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Client ids with a struct section.
    pub(super) fn struct_clients(&self) -> usize {
        self.struct_clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_appear_once_per_section() {
        let mut set = ClientSet::new(2);
        assert_eq!(set.insert(7, Section::Structs), Ok(()));
        assert_eq!(set.insert(7, Section::DeleteSet), Ok(()));
        assert_eq!(
            set.insert(7, Section::DeleteSet),
            Err(UpdateError::DuplicateClient {
                client: 7,
                section: Section::DeleteSet
            })
        );
        assert_eq!((set.len(), set.struct_clients()), (1, 1));
    }

    #[test]
    fn refuses_one_client_past_the_limit() {
        let mut set = ClientSet::new(2);
        assert_eq!(set.insert(1, Section::Structs), Ok(()));
        assert_eq!(set.insert(2, Section::DeleteSet), Ok(()));
        assert_eq!(
            set.insert(3, Section::DeleteSet),
            Err(UpdateError::TooManyClients { limit: 2 })
        );
        // A known client is still fine at the limit.
        assert_eq!(set.insert(1, Section::DeleteSet), Ok(()));
    }
}
