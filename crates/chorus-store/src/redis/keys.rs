//! Redis key names.
//!
//! For a document with [stem](crate::naming) `s` under prefix `p`:
//! - `p{s}:snap`: hash `{d: snapshot (snapshot_file format), v: version token}`;
//! - `p{s}:log`: stream of records `{u: update, c: CRC-32 LE}` with ids `<seq>-0`;
//! - `p{s}:meta`: hash `{n: highest sequence number handed out, name: document name}`;
//! - `p{s}:snap.corrupt-<ms>`, `p{s}:log.corrupt-<ms>`: damaged data kept aside;
//! - `p{s}:vmeta`, `p{s}:versions`: hashes of version id to its description (JSON) and to the
//!   whole stored version;
//! - `p{s}:activity`: hash of `<minute>|<identity>|n` (updates) and `…|b` (bytes) counters.
//!
//! The braces make `{s}` the Redis Cluster hash tag, so each document's keys share a slot and the
//! scripts that touch two of them stay legal there. Stems hold no braces or glob characters.

use chorus_protocol::DocName;

use crate::naming::{self, Stem};

/// Suffix of snapshot keys.
pub const SNAP: &str = ":snap";
/// Suffix of log stream keys.
pub const LOG: &str = ":log";
/// Suffix of log metadata keys.
pub const META: &str = ":meta";
/// Suffix of version description hashes.
pub const VERSION_META: &str = ":vmeta";
/// Suffix of version hashes.
pub const VERSIONS: &str = ":versions";
/// Suffix of activity counter hashes.
pub const ACTIVITY: &str = ":activity";

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (e.g. `chorus:`; may be empty).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `doc` with `suffix` ([`SNAP`], [`LOG`], [`META`]).
    pub fn of(&self, doc: &DocName, suffix: &str) -> String {
        format!("{}{{{}}}{suffix}", self.prefix, naming::stem(doc))
    }

    /// A `SCAN MATCH` pattern for every key with `suffix`.
    pub fn pattern(&self, suffix: &str) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 8);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str("{*}");
        pattern.push_str(suffix);
        pattern
    }

    /// What a key found by [`Keys::pattern`] says about its document.
    pub fn parse(&self, key: &str, suffix: &str) -> Stem {
        key.strip_prefix(self.prefix.as_str())
            .and_then(|k| k.strip_prefix('{'))
            .and_then(|k| k.strip_suffix(suffix))
            .and_then(|k| k.strip_suffix('}'))
            .map_or(Stem::Foreign, naming::parse_stem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_pattern() {
        let keys = Keys::new("t*[x]:");
        let doc = DocName::parse("team/{notes}*").expect("name");
        let key = keys.of(&doc, SNAP);
        assert!(key.starts_with("t*[x]:{team%2F%7Bnotes%7D%2A}"));
        assert_eq!(keys.parse(&key, SNAP), Stem::Name(doc));
        assert_eq!(keys.pattern(SNAP), "t\\*\\[x\\]:{*}:snap");
        assert_eq!(keys.parse("other:{a}:snap", SNAP), Stem::Foreign);
    }
}
