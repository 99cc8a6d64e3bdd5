//! Which clocks an update holds: each client's runs of clocks without a hole, read from the
//! struct headers alone.
//!
//! A receiver that wants to know *which* edits an update carries (a load generator matching
//! deliveries with what its typists sent, say) needs only where each client's structs start and
//! how long they are. A server that merges a burst of updates into one (Yjs updates merge like
//! the documents they describe) forwards one update for many edits, and a merged item can span
//! several of them, so the first struct alone does not tell. [`clock_runs_v1`] walks the structs
//! the way the validator does, with the same content readers, but keeps nothing: it allocates
//! only for `Any` content nested in arrays or maps, as the validator does.

use std::ops::Range;

use super::content;
use super::{MIN_SECTION_BYTES, MIN_STRUCT_BYTES, check, end_clock};
use super::{UpdateError, UpdateLimits, read_client, read_count, read_id, read_u32};

/// Clocks `clocks` of client `client` are all in the update, as items or garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRun {
    /// The client whose clocks these are.
    pub client: u64,
    /// The clocks, without a hole.
    pub clocks: Range<u32>,
}

/// Calls `each` with every run of clocks the structs of the v1 update `bytes` hold, in the
/// order they are written: one run per client section, split where a Skip (a hole left by a
/// merge) interrupts it. The delete set after the structs is not read.
///
/// This is not a validator: it reads only as far as it needs, and checks only what it must to
/// find the next struct (see [`super::validate_update_v1`] for input that is not trusted).
///
/// # Errors
/// An [`UpdateError`] when the structs are truncated or malformed; `each` has then been called
/// for the runs before the problem.
pub fn clock_runs_v1(bytes: &[u8], mut each: impl FnMut(ClockRun)) -> Result<(), UpdateError> {
    let limits = UpdateLimits::default();
    let mut decoder = crate::lib0::Decoder::new(bytes);
    let sections = read_count(&mut decoder, "client sections", MIN_SECTION_BYTES)?;
    for _ in 0..sections {
        let count = read_u32(&mut decoder, "struct count")?;
        let client = read_client(&mut decoder)?;
        check(&decoder, "structs", u64::from(count), MIN_STRUCT_BYTES)?;
        let mut clock = read_u32(&mut decoder, "clock")?;
        let mut run_start = clock;
        for _ in 0..count {
            let info = decoder.read_u8()?;
            let len = match info {
                content::GC | content::SKIP => read_u32(&mut decoder, "struct length")?,
                _ => {
                    let kind = content::item_kind(info)?;
                    let has_origin = info & content::HAS_ORIGIN != 0;
                    let has_right_origin = info & content::HAS_RIGHT_ORIGIN != 0;
                    if has_origin {
                        read_id(&mut decoder)?;
                    }
                    if has_right_origin {
                        read_id(&mut decoder)?;
                    }
                    if !has_origin && !has_right_origin {
                        match decoder.read_var_uint()? {
                            content::PARENT_ROOT => {
                                decoder.read_var_string()?;
                            }
                            content::PARENT_ID => {
                                read_id(&mut decoder)?;
                            }
                            other => return Err(UpdateError::InvalidParentInfo(other)),
                        }
                        if info & content::HAS_PARENT_SUB != 0 {
                            decoder.read_var_string()?;
                        }
                    }
                    content::read(&mut decoder, kind, &limits)?.len
                }
            };
            let end =
                end_clock(clock, len).ok_or(UpdateError::ClockOverflow { client, clock, len })?;
            if info == content::SKIP {
                if run_start < clock {
                    each(ClockRun {
                        client,
                        clocks: run_start..clock,
                    });
                }
                run_start = end;
            }
            clock = end;
        }
        if run_start < clock {
            each(ClockRun {
                client,
                clocks: run_start..clock,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact};

    fn runs(bytes: &[u8]) -> Vec<ClockRun> {
        let mut found = Vec::new();
        clock_runs_v1(bytes, |run| found.push(run)).expect("well formed");
        found
    }

    fn run(client: u64, clocks: Range<u32>) -> ClockRun {
        ClockRun { client, clocks }
    }

    /// Each insert of `chunks` as its own update, the way a typist sends them.
    fn typed(doc: &Doc, chunks: &[&str]) -> Vec<Vec<u8>> {
        let text = doc.get_or_insert_text("t");
        chunks
            .iter()
            .map(|chunk| {
                let before = doc.transact().state_vector();
                let mut txn = doc.transact_mut();
                let len = text.len(&txn);
                text.insert(&mut txn, len, chunk);
                drop(txn);
                doc.transact().encode_state_as_update_v1(&before)
            })
            .collect()
    }

    #[test]
    fn the_golden_transcript_update() {
        // Client 5 types "ab" into text "t".
        let update = [
            0x01, 0x01, 0x05, 0x00, 0x04, 0x01, 0x01, 0x74, 0x02, 0x61, 0x62, 0x00,
        ];
        assert_eq!(runs(&update), [run(5, 0..2)]);
        assert_eq!(runs(&[0x00, 0x00]), []);
    }

    /// Counts UTF-16 units, as clocks do.
    #[test]
    fn a_merged_burst_covers_every_part() {
        let doc = Doc::with_client_id(4_000_000_123);
        let parts = typed(&doc, &["abc", "d", "é😀", "fgh"]);
        let merged = yrs::merge_updates_v1(parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .expect("merges");
        assert_eq!(runs(&merged), [run(4_000_000_123, 0..10)]);
        // Each part on its own.
        let starts: Vec<Vec<ClockRun>> = parts.iter().map(|p| runs(p)).collect();
        assert_eq!(
            starts,
            [
                vec![run(4_000_000_123, 0..3)],
                vec![run(4_000_000_123, 3..4)],
                vec![run(4_000_000_123, 4..7)],
                vec![run(4_000_000_123, 7..10)],
            ]
        );
    }

    #[test]
    fn a_hole_splits_the_run() {
        let doc = Doc::with_client_id(9);
        let parts = typed(&doc, &["ab", "cd", "ef"]);
        // Without the middle part, the merge holds a Skip where it was.
        let merged =
            yrs::merge_updates_v1(vec![parts[0].as_slice(), parts[2].as_slice()]).expect("merges");
        assert_eq!(runs(&merged), [run(9, 0..2), run(9, 4..6)]);
    }

    #[test]
    fn several_clients_and_nested_content() {
        let a = Doc::with_client_id(1);
        let b = Doc::with_client_id(2);
        typed(&a, &["hello"]);
        {
            let map = b.get_or_insert_map("m");
            let mut txn = b.transact_mut();
            map.insert(
                &mut txn,
                "k",
                yrs::Any::from(vec![yrs::Any::from(1.5), "x".into()]),
            );
            map.insert(&mut txn, "n", yrs::MapPrelim::default());
        }
        let full = whole_state_of(&[&a, &b]);
        let mut found = runs(&full);
        found.sort_by_key(|r| r.client);
        assert_eq!(found, [run(1, 0..5), run(2, 0..2)]);
    }

    /// The documents' whole states merged into one update.
    fn whole_state_of(docs: &[&Doc]) -> Vec<u8> {
        let states: Vec<Vec<u8>> = docs
            .iter()
            .map(|doc| {
                doc.transact()
                    .encode_state_as_update_v1(&StateVector::default())
            })
            .collect();
        yrs::merge_updates_v1(states).expect("merges")
    }

    #[test]
    fn a_truncated_update_reports_the_runs_before_the_cut() {
        let a = Doc::with_client_id(1);
        let b = Doc::with_client_id(2);
        typed(&a, &["hello"]);
        typed(&b, &["world"]);
        let full = whole_state_of(&[&a, &b]);
        let mut seen = Vec::new();
        let cut = &full[..full.len() - 4];
        assert!(clock_runs_v1(cut, |r| seen.push(r)).is_err());
        assert_eq!(seen.len(), 1, "the first section is whole: {seen:?}");
        assert!(clock_runs_v1(&[0x01, 0x01, 0x85], |_| {}).is_err());
    }
}
