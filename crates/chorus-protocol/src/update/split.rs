//! Cutting an update at its holes: what a document can apply now, and what has to wait.
//!
//! Yjs never integrates a struct whose client's earlier clocks it lacks: it keeps that struct,
//! and everything after it from the same client, pending until the hole is filled. yrs 0.28.1
//! integrates such structs at once behind a hole marker, so a document fed a hole reads
//! differently from every Yjs replica. Honest clients do send holes: a client that typed
//! while offline and types again the moment its socket reopens sends the new edit before the
//! sync step 2 carrying the offline ones, and a Yjs client with pending structs of its own
//! writes Skip structs into its sync step 2 (`encodeStateAsUpdate` merges them in). A server
//! must neither refuse these nor let yrs integrate them early; [`split_update_v1`] lets it do
//! what Yjs does: apply the part before each hole, and hold the rest until the hole is filled.

use std::ops::Range;

use crate::ProtocolError;
use crate::lib0::write_var_uint;

use super::{Parser, UpdateError, UpdateLimits};

/// Where one client section's structs lie in the input.
pub(super) struct SectionLayout {
    client: u64,
    structs: Vec<StructLayout>,
}

struct StructLayout {
    clock: u32,
    bytes: Range<usize>,
    skip: bool,
}

impl SectionLayout {
    pub(super) fn new(client: u64) -> Self {
        Self {
            client,
            structs: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, clock: u32, bytes: Range<usize>, skip: bool) {
        self.structs.push(StructLayout { clock, bytes, skip });
    }
}

/// An update cut against a document's clocks by [`split_update_v1`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// What the document can apply now: each client's structs up to the first hole, for the
    /// clients whose structs start at or before the document's clock, and the whole delete
    /// set (deletes of clocks the document lacks wait inside yrs, as in Yjs). `None` when that
    /// is nothing.
    pub now: Option<Vec<u8>>,
    /// What has to wait: each client's structs after its first hole (all of them when they
    /// start past the document's clock). `None` when nothing waits.
    pub later: Option<Vec<u8>>,
    /// For `later`: the clock the document must reach for each of its clients before any of
    /// it can be applied (the first clock of that client's waiting structs).
    pub needs: Vec<(u64, u32)>,
}

/// Cuts a Yjs v1 update into the part a document whose clock per client is `clock_of` can
/// apply now and the part that must wait for missing clocks (see the module documentation).
///
/// The cut is made between structs, whose v1 bytes are copied unchanged: no struct is
/// re-encoded, so each part is exactly what its sender wrote. Both parts should still be
/// validated against the document before they are applied, as any update is.
///
/// # Errors
/// An [`UpdateError`] if `bytes` is not a well-formed v1 update.
pub fn split_update_v1(bytes: &[u8], clock_of: &dyn Fn(u64) -> u32) -> Result<Split, UpdateError> {
    // Only the layout is wanted here; what the parts may contain is for the validator.
    let limits = UpdateLimits {
        max_clients: usize::MAX,
        max_type_depth: usize::MAX,
        check_origins: false,
        ..UpdateLimits::default()
    };
    let mut parser = Parser::new(bytes, &limits, None);
    parser.layout = Some(Vec::new());
    parser.structs()?;
    let delete_set_start = parser.decoder.position();
    parser.delete_set()?;
    if !parser.decoder.is_empty() {
        return Err(ProtocolError::TrailingBytes(parser.decoder.remaining()).into());
    }
    let delete_set = &bytes[delete_set_start..];
    let sections = parser.layout.take().unwrap_or_default();

    let mut now = Vec::new();
    let mut later = Vec::new();
    let mut needs = Vec::new();
    for section in &sections {
        let structs = section.structs.as_slice();
        let Some(first) = structs.first() else {
            continue;
        };
        let (head, tail) = if first.clock > clock_of(section.client) {
            (&structs[..0], structs)
        } else {
            match structs.iter().position(|s| s.skip) {
                Some(hole) => (&structs[..hole], &structs[hole..]),
                None => (structs, &structs[structs.len()..]),
            }
        };
        if !head.is_empty() {
            now.push((section.client, head));
        }
        // A waiting part starts at its first real struct: leading holes carry nothing.
        let tail = &tail[tail.iter().position(|s| !s.skip).unwrap_or(tail.len())..];
        if let Some(start) = tail.first() {
            needs.push((section.client, start.clock));
            later.push((section.client, tail));
        }
    }
    let empty_delete_set = delete_set == [0];
    Ok(Split {
        now: (!now.is_empty() || !empty_delete_set).then(|| encode(bytes, &now, delete_set)),
        later: (!later.is_empty()).then(|| encode(bytes, &later, &[0])),
        needs,
    })
}

/// A v1 update of the given sections, whose structs are copied from `bytes`, and a delete set.
fn encode(bytes: &[u8], sections: &[(u64, &[StructLayout])], delete_set: &[u8]) -> Vec<u8> {
    let size: usize = sections
        .iter()
        .flat_map(|(_, structs)| structs.iter().map(|s| s.bytes.len() + 2))
        .sum();
    let mut out = Vec::with_capacity(size + 16 * sections.len() + delete_set.len());
    write_var_uint(&mut out, sections.len() as u64);
    for (client, structs) in sections {
        write_var_uint(&mut out, structs.len() as u64);
        write_var_uint(&mut out, *client);
        write_var_uint(&mut out, u64::from(structs[0].clock));
        for s in *structs {
            out.extend_from_slice(&bytes[s.bytes.clone()]);
        }
    }
    out.extend_from_slice(delete_set);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::validate_update_v1;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    /// Client 1: "a" at clock 0, a Skip of 3, "b" at clock 4; a delete of client 9's clock 0.
    const A_HOLE_B: &str = "010301000401017401610a030401017401620109010001";
    /// Client 1: "b" alone at clock 4, no deletes.
    const B_AT_4: &str = "0101010404010174016200";

    #[test]
    fn an_update_in_step_is_all_now() {
        let update = hex("010101000401017402616200");
        let split = split_update_v1(&update, &|_| 0).expect("valid");
        assert_eq!(split.now.as_deref(), Some(update.as_slice()));
        assert_eq!(split.later, None);
        assert!(split.needs.is_empty());
    }

    #[test]
    fn a_skip_cuts_a_section_into_now_and_later() {
        let split = split_update_v1(&hex(A_HOLE_B), &|_| 0).expect("valid");
        // "a" and the delete set now; "b" at clock 4 once the document reaches clock 4.
        assert_eq!(split.now, Some(hex("010101000401017401610109010001")));
        assert_eq!(split.later, Some(hex(B_AT_4)));
        assert_eq!(split.needs, vec![(1, 4)]);
        for part in [split.now, split.later].into_iter().flatten() {
            validate_update_v1(&part, &UpdateLimits::default()).expect("each part is an update");
        }
    }

    #[test]
    fn a_section_past_the_documents_clock_waits_whole() {
        let b_at_4 = hex(B_AT_4);
        let split = split_update_v1(&b_at_4, &|_| 2).expect("valid");
        assert_eq!(split.now, None, "no structs now and no deletes");
        assert_eq!(split.later.as_deref(), Some(b_at_4.as_slice()));
        assert_eq!(split.needs, vec![(1, 4)]);
        // Once the document reaches clock 4 it is all now.
        let split = split_update_v1(&b_at_4, &|_| 4).expect("valid");
        assert_eq!(split.now.as_deref(), Some(b_at_4.as_slice()));
        assert_eq!(split.later, None);
    }

    #[test]
    fn sections_of_other_clients_are_cut_on_their_own() {
        // Client 2 "x" at 0 (in step) and client 1 "a" at 5 (past the document's clock 0).
        let update = hex("0201020004010174017801010504010174016100");
        let split = split_update_v1(&update, &|_| 0).expect("valid");
        assert_eq!(split.now, Some(hex("0101020004010174017800")));
        assert_eq!(split.later, Some(hex("0101010504010174016100")));
        assert_eq!(split.needs, vec![(1, 5)]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(split_update_v1(&[0xff], &|_| 0).is_err());
        assert!(split_update_v1(&[0, 0, 0], &|_| 0).is_err());
    }
}
