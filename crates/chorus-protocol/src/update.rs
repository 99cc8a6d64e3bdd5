//! A bounded, single-pass validator for Yjs v1 updates, run before yrs ever sees one.
//!
//! yrs 0.28.1 trusts its input in ways a server cannot afford (see
//! `docs/hostile-inputs.md`): a clock that wraps past 2^32, or merely reaches
//! 2^31, panics and leaves a dangling block in the document ([`MAX_STRUCT_CLOCK`]), client ids
//! of 2^53 and above are silently aliased, `Any`
//! values recurse without a depth limit until the stack overflows, a v2 payload on the v1 path
//! decodes "successfully" as garbage, and thousands of fake client ids in one update make
//! integration quadratic. [`validate_update_v1`] refuses all of those with an [`UpdateError`]
//! that names the problem, and otherwise returns an [`UpdateSummary`].
//!
//! # The format (lib0 v1 encoding, Yjs `writeClientsStructs` / `writeDeleteSet`)
//! ```text
//! update    := structs • deleteSet                      (nothing may follow)
//! structs   := varUint(sections) • section*
//! section   := varUint(count ≥ 1) • varUint(client) • varUint(firstClock) • struct{count}
//! struct    := 0x00 • varUint(len)                      GC
//!            | 0x0a • varUint(len)                      Skip
//!            | info • [ID if info&0x80] • [ID if info&0x40]
//!                   • [if neither: varUint(0) • ID | varUint(1) • varString(root)
//!                      • [varString(parentSub) if info&0x20]]
//!                   • content(info & 0x1f)
//! ID        := varUint(client) • varUint(clock)
//! deleteSet := varUint(clients) • (varUint(client) • varUint(n) • (varUint(clock) • varUint(len)){n})*
//! ```
//! Content kinds: 1 Deleted(len), 3 Binary(bytes), 4 String(UTF-8; its length counts UTF-16
//! units), 5 Embed(JSON), 6 Format(key, JSON), 7 Type(type ref, element name for XmlElement),
//! 8 Any(count, lib0 `Any`×count), 9 Doc(guid, `Any` options). Kinds that Yjs and yrs read
//! differently are refused: see [`UpdateError::UnsupportedContent`] and
//! [`UpdateError::UnsupportedTypeRef`].
//!
//! # Cost
//! One pass over the input. Every declared count is checked against the bytes left before the
//! loop that uses it, so no count can make the validator loop or allocate beyond what the input
//! holds. The only allocations are the set of distinct client ids (at most
//! [`UpdateLimits::max_clients`] entries), for items nested inside shared types created in the
//! same update a list of clock spans used to measure type nesting, and lists proportional to
//! the input for the origin checks.

mod clients;
mod content;
mod error;
mod joins;
mod limits;
mod nesting;
mod runs;
mod split;

use crate::ProtocolError;
use crate::lib0::Decoder;
use crate::state_vector::check_count;

use std::collections::HashMap;

use clients::ClientSet;
use joins::ClockRanges;
use nesting::TypeDepths;

pub use error::{Section, UpdateError};
pub use limits::{
    DEFAULT_MAX_ANY_DEPTH, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_TYPE_DEPTH, StructId, UpdateLimits,
    UpdateSummary,
};
pub use nesting::DocIndex;
pub use runs::{ClockRun, clock_runs_v1};
pub use split::{Split, split_update_v1};

/// Smallest possible client section: count, client and clock (one byte each) and one 2-byte
/// struct. Lets a section count be refused before looping over it.
const MIN_SECTION_BYTES: usize = 5;

/// Smallest possible struct: a GC or Skip with a one-byte length. An item needs at least 3.
const MIN_STRUCT_BYTES: usize = 2;

/// Smallest delete-set entry (client id and a zero range count) and smallest range.
const MIN_DELETE_ENTRY_BYTES: usize = 2;

/// Checks that `bytes` is one well-formed Yjs v1 update within `limits`.
///
/// Accepts everything Yjs 13 and yrs 0.28 encoders write (other than the content kinds the two
/// decode differently, see [`UpdateError::UnsupportedContent`] and
/// [`UpdateError::UnsupportedTypeRef`]), and nothing in the hostile classes known to make
/// yrs wrap a clock, alias a client id, recurse without bound or loop over counts the input
/// cannot hold. It checks structure only: a well-formed update that is inconsistent with the
/// document (say, origins pointing into content it also deletes) can still reach bugs in yrs'
/// integration, so keep applying under the panic containment the server already has (see
/// `fuzz/README.md` for a known case).
///
/// # Errors
/// An [`UpdateError`] naming the first problem found; [`UpdateError::is_policy`] tells the ones
/// that come from `limits` apart from malformed input.
pub fn validate_update_v1(
    bytes: &[u8],
    limits: &UpdateLimits,
) -> Result<UpdateSummary, UpdateError> {
    validate(bytes, limits, None).map(|(summary, ..)| summary)
}

/// [`validate_update_v1`] for an update to a document that `index` describes:
/// [`UpdateLimits::max_type_depth`] then bounds the depth of the whole document, not just of
/// what this update nests by itself, and origins are checked against the runs and garbage the
/// document holds.
///
/// `clock_of`, when given, tells the document's clock for a client (its state vector): an
/// item whose two origins, of one client, lie past what the document and this update hold is
/// then refused ([`UpdateError::OriginsAheadOfDocument`], which tells what to wait for), since
/// it would wait in yrs' pending set and integrate later without its origins' order ever being
/// checked; and the summary counts the sections that start past the document's clock
/// ([`UpdateSummary::gaps`]). Leave it out for content the server already trusts. Once the update is applied, pass the returned [`IndexUpdate`] to
/// [`DocIndex::absorb`]; for an update that ends up refused for another reason, drop it, so
/// that refused content never shapes later checks.
///
/// # Errors
/// As [`validate_update_v1`].
pub fn validate_update_v1_in(
    bytes: &[u8],
    limits: &UpdateLimits,
    index: &DocIndex,
    clock_of: Option<&dyn Fn(u64) -> u32>,
) -> Result<(UpdateSummary, IndexUpdate), UpdateError> {
    let (summary, spans, joins) = validate(bytes, limits, Some((index, clock_of)))?;
    Ok((summary, IndexUpdate { spans, joins }))
}

/// What an accepted update adds to its document's [`DocIndex`].
#[derive(Debug, Default)]
pub struct IndexUpdate {
    spans: HashMap<u64, Vec<nesting::Span>>,
    joins: ClockRanges,
}

impl DocIndex {
    /// Takes in what an applied update added to the document.
    pub fn absorb(&mut self, update: IndexUpdate) {
        self.absorb_spans(update.spans);
        self.absorb_joins(update.joins);
    }
}

/// An accepted update's summary, and what [`DocIndex`] takes from it.
type Validated = (UpdateSummary, HashMap<u64, Vec<nesting::Span>>, ClockRanges);

/// The document an update is checked against: its index, and its clock per client if known.
type KnownDoc<'k> = (&'k DocIndex, Option<&'k dyn Fn(u64) -> u32>);

fn validate(
    bytes: &[u8],
    limits: &UpdateLimits,
    doc: Option<KnownDoc<'_>>,
) -> Result<Validated, UpdateError> {
    let mut parser = Parser::new(bytes, limits, doc);
    parser.structs()?;
    parser.delete_set()?;
    parser.check_origin_order()?;
    if !parser.decoder.is_empty() {
        // Also what most v2 updates run into: their first byte reads as "no structs" and the
        // column lengths as a short delete set, leaving the rest unread.
        return Err(ProtocolError::TrailingBytes(parser.decoder.remaining()).into());
    }
    let mut summary = parser.summary;
    summary.clients = parser.clients.len();
    summary.struct_clients = parser.clients.struct_clients();
    Ok((summary, parser.depths.into_spans(), parser.joins))
}

/// State of one validation pass.
struct Parser<'a, 'l> {
    decoder: Decoder<'a>,
    limits: &'l UpdateLimits,
    clients: ClientSet,
    depths: TypeDepths<'l>,
    /// The document the update is for, when the caller keeps a [`DocIndex`].
    known: Option<&'l DocIndex>,
    summary: UpdateSummary,
    /// This update's runs of a client's clocks known to sit in clock order.
    joins: ClockRanges,
    /// Items whose left and right origins are of one client (not neighbours by clock): the
    /// item, that client, and the clocks of its left and right origin.
    same_client_origins: Vec<(StructId, u64, u32, u32)>,
    /// Where each client's structs in this update end, when checked against the document's
    /// clocks.
    ends: HashMap<u64, u32>,
    /// The document's clock per client, when the caller knows it.
    clock_of: Option<&'l dyn Fn(u64) -> u32>,
    /// Where each section's structs lie in the input, for [`split_update_v1`] only.
    layout: Option<Vec<split::SectionLayout>>,
}

impl<'a, 'l> Parser<'a, 'l> {
    fn new(bytes: &'a [u8], limits: &'l UpdateLimits, doc: Option<KnownDoc<'l>>) -> Self {
        let known = doc.map(|(index, _)| index);
        Parser {
            decoder: Decoder::new(bytes),
            limits,
            clients: ClientSet::new(limits.max_clients),
            depths: TypeDepths::with_known(known),
            known,
            summary: UpdateSummary::default(),
            joins: ClockRanges::default(),
            same_client_origins: Vec::new(),
            ends: HashMap::new(),
            clock_of: doc.and_then(|(_, clock_of)| clock_of),
            layout: None,
        }
    }
}

impl Parser<'_, '_> {
    fn structs(&mut self) -> Result<(), UpdateError> {
        let sections = read_count(&mut self.decoder, "client sections", MIN_SECTION_BYTES)?;
        for _ in 0..sections {
            let count = read_u32(&mut self.decoder, "struct count")?;
            let client = read_client(&mut self.decoder)?;
            if count == 0 {
                return Err(UpdateError::EmptyClientSection { client });
            }
            check(&self.decoder, "structs", u64::from(count), MIN_STRUCT_BYTES)?;
            self.clients.insert(client, Section::Structs)?;
            let first = read_u32(&mut self.decoder, "clock")?;
            let mut clock = first;
            // Where the section's clocks stop running without a hole: at its first Skip.
            let mut contiguous_end = None;
            let mut layout = self
                .layout
                .as_ref()
                .map(|_| split::SectionLayout::new(client));
            for _ in 0..count {
                let id = StructId { client, clock };
                let start = self.decoder.position();
                let skips = self.summary.skips;
                let len = self.one_struct(id)?;
                let is_skip = self.summary.skips > skips;
                if is_skip {
                    contiguous_end.get_or_insert(clock);
                }
                if let Some(layout) = &mut layout {
                    layout.push(clock, start..self.decoder.position(), is_skip);
                }
                clock = end_clock(clock, len).ok_or(UpdateError::ClockOverflow {
                    client,
                    clock,
                    len,
                })?;
                self.summary.structs += 1;
            }
            if let (Some(sections), Some(layout)) = (&mut self.layout, layout) {
                sections.push(layout);
            }
            if let Some(clock_of) = self.clock_of {
                let held = clock_of(client);
                if first > held {
                    self.summary.gaps += 1;
                }
                // Only a check against the document's clocks needs where sections end; clocks
                // behind a hole count only once the hole is filled.
                if first <= held {
                    self.ends.insert(client, contiguous_end.unwrap_or(clock));
                }
            }
        }
        Ok(())
    }

    /// Reads one struct and returns its length in clock ticks.
    fn one_struct(&mut self, id: StructId) -> Result<u32, UpdateError> {
        let info = self.decoder.read_u8()?;
        if info != content::SKIP {
            self.summary.first_struct.get_or_insert(id);
        }
        if info == content::SKIP {
            self.summary.skips += 1;
        }
        let len = match info {
            content::GC => read_u32(&mut self.decoder, "struct length")?,
            content::SKIP => read_u32(&mut self.decoder, "struct length")?,
            _ => self.item(id, info)?,
        };
        if len == 0 {
            return Err(UpdateError::EmptyStruct {
                client: id.client,
                clock: id.clock,
            });
        }
        Ok(len)
    }

    fn item(&mut self, id: StructId, info: u8) -> Result<u32, UpdateError> {
        let kind = content::item_kind(info)?;
        let left = (info & content::HAS_ORIGIN != 0)
            .then(|| read_id(&mut self.decoder))
            .transpose()?;
        let right = (info & content::HAS_RIGHT_ORIGIN != 0)
            .then(|| read_id(&mut self.decoder))
            .transpose()?;
        // An origin of the item's own client at or past its own clock: every writer creates
        // an item after its origins. (Left = right is written: see `origins_out_of_order`.)
        let own_earlier = |o: &StructId| o.client != id.client || o.clock < id.clock;
        if self.limits.check_origins && !left.iter().chain(&right).all(own_earlier) {
            return Err(UpdateError::InconsistentOrigins {
                client: id.client,
                clock: id.clock,
            });
        }
        let container_depth = if left.is_none() && right.is_none() {
            // Without origins the item names its parent; with them it inherits the origin's.
            let depth = match self.decoder.read_var_uint()? {
                content::PARENT_ROOT => {
                    self.decoder.read_var_string()?;
                    0
                }
                content::PARENT_ID => self.depths.type_depth(read_id(&mut self.decoder)?),
                other => return Err(UpdateError::InvalidParentInfo(other)),
            };
            if info & content::HAS_PARENT_SUB != 0 {
                self.decoder.read_var_string()?;
            }
            depth
        } else {
            let of = |origin: Option<StructId>| origin.map_or(0, |o| self.depths.container(o));
            of(left).max(of(right))
        };
        let content = content::read(&mut self.decoder, kind, self.limits)?;
        if content.is_type && container_depth >= self.limits.max_type_depth {
            return Err(UpdateError::TypeTooDeep {
                limit: self.limits.max_type_depth,
            });
        }
        self.depths
            .record(id, content.len, container_depth, content.is_type);
        // Clocks inside one item sit in order; the item's first clock joins the one before it
        // when that is its left origin (typing).
        let continues = id.clock > 0
            && left
                == Some(StructId {
                    client: id.client,
                    clock: id.clock - 1,
                });
        let joined_from = if continues {
            id.clock
        } else {
            id.clock.saturating_add(1)
        };
        self.joins
            .add(id.client, joined_from, id.clock.saturating_add(content.len));
        if let (Some(l), Some(r)) = (left, right)
            && l.client == r.client
            && l.clock.checked_add(1) != Some(r.clock)
        {
            self.same_client_origins
                .push((id, l.client, l.clock, r.clock));
        }
        Ok(content.len)
    }

    fn delete_set(&mut self) -> Result<(), UpdateError> {
        let entries = read_count(
            &mut self.decoder,
            "delete-set clients",
            MIN_DELETE_ENTRY_BYTES,
        )?;
        for _ in 0..entries {
            let client = read_client(&mut self.decoder)?;
            self.clients.insert(client, Section::DeleteSet)?;
            let ranges = read_count(&mut self.decoder, "delete ranges", MIN_DELETE_ENTRY_BYTES)?;
            for _ in 0..ranges {
                let clock = read_u32(&mut self.decoder, "delete clock")?;
                let len = read_u32(&mut self.decoder, "delete length")?;
                if len == 0 {
                    return Err(UpdateError::EmptyDeleteRange { client, clock });
                }
                // Delete ranges never take the i32 path, and "everything of client 1" is
                // written as a range to u32::MAX, so only real overflow is refused here.
                clock
                    .checked_add(len)
                    .ok_or(UpdateError::DeleteRangeOverflow { client, clock, len })?;
                self.summary.delete_ranges += 1;
            }
        }
        Ok(())
    }
}

impl Parser<'_, '_> {
    /// Holds back an item whose two origins, of one client, lie past what the document and this
    /// update hold, and counts those whose origins contradict the order the document or this
    /// update fixes for that client's clocks (see the `joins` module), which honest clients
    /// write too ([`UpdateSummary::origins_out_of_order`]).
    fn check_origin_order(&mut self) -> Result<(), UpdateError> {
        // Typing writes neighbours, so nearly every update has nothing to check here.
        if !self.limits.check_origins || self.same_client_origins.is_empty() {
            return Ok(());
        }
        let doc_joins = self.known.map(DocIndex::joins);
        let sources: Vec<&ClockRanges> = std::iter::once(&self.joins).chain(doc_joins).collect();
        for &(item, client, left, right) in &self.same_client_origins {
            if let Some(clock_of) = self.clock_of {
                let held = clock_of(client).max(self.ends.get(&client).copied().unwrap_or(0));
                if left.max(right) >= held {
                    return Err(UpdateError::OriginsAheadOfDocument {
                        client: item.client,
                        clock: item.clock,
                        needs_client: client,
                        needs_clock: left.max(right).saturating_add(1),
                    });
                }
            }
            if left == right || joins::origins_contradict_run(&sources, client, left, right) {
                self.summary.origins_out_of_order += 1;
            }
        }
        Ok(())
    }
}

/// Largest clock a struct may end at. yrs keeps clocks in a `u32` but computes the offset of
/// an incoming struct against the local state as `local as i32 - clock as i32`
/// (`update.rs`, `Update::integrate`, yrs 0.28.1): from 2^31 on that difference has the wrong
/// sign, yrs takes a struct far ahead of its state for one it already holds, and the push
/// panics at `block_store.rs:317` — the same panic, with the same use-after-free behind it, as
/// a clock that wraps 2^32. A client that typed 2^31 characters does not exist.
pub const MAX_STRUCT_CLOCK: u32 = i32::MAX as u32;

/// The clock after `len` ticks from `clock`, if it stays within [`MAX_STRUCT_CLOCK`].
fn end_clock(clock: u32, len: u32) -> Option<u32> {
    clock
        .checked_add(len)
        .filter(|&end| end <= MAX_STRUCT_CLOCK)
}

/// Reads a varint that yrs reads as a `u32`.
fn read_u32(decoder: &mut Decoder<'_>, what: &'static str) -> Result<u32, UpdateError> {
    decoder.read_var_u32().map_err(|e| match e {
        ProtocolError::VarIntTooLarge => UpdateError::IntegerTooLarge { what },
        other => other.into(),
    })
}

/// Reads a client id, which must stay below 2^53 (yrs masks larger ones onto other clients).
fn read_client(decoder: &mut Decoder<'_>) -> Result<u64, UpdateError> {
    decoder.read_var_uint().map_err(|e| match e {
        ProtocolError::VarIntTooLarge => UpdateError::ClientIdTooLarge,
        other => other.into(),
    })
}

fn read_id(decoder: &mut Decoder<'_>) -> Result<StructId, UpdateError> {
    let client = read_client(decoder)?;
    let clock = read_u32(decoder, "origin clock")?;
    Ok(StructId { client, clock })
}

/// Reads an element count (a `u32` in yrs) that the remaining input must be able to hold at
/// `min_bytes` per element.
fn read_count(
    decoder: &mut Decoder<'_>,
    what: &'static str,
    min_bytes: usize,
) -> Result<u32, UpdateError> {
    let count = read_u32(decoder, what)?;
    check(decoder, what, u64::from(count), min_bytes)?;
    Ok(count)
}

fn check(
    decoder: &Decoder<'_>,
    what: &'static str,
    count: u64,
    min_bytes: usize,
) -> Result<(), UpdateError> {
    check_count(count, decoder.remaining(), min_bytes).map_err(|_| UpdateError::CountTooLarge {
        what,
        count,
        remaining: decoder.remaining(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(bytes: &[u8]) -> Result<UpdateSummary, UpdateError> {
        validate_update_v1(bytes, &UpdateLimits::default())
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    #[test]
    fn accepts_the_golden_transcript_update() {
        // Client 5 types "ab" into text "t".
        let summary = validate(&hex("010105000401017402616200")).expect("valid update");
        assert_eq!(
            summary,
            UpdateSummary {
                clients: 1,
                struct_clients: 1,
                structs: 1,
                delete_ranges: 0,
                skips: 0,
                gaps: 0,
                first_struct: Some(StructId {
                    client: 5,
                    clock: 0
                }),
                origins_out_of_order: 0,
            }
        );
    }

    #[test]
    fn accepts_the_empty_update() {
        let summary = validate(&[0, 0]).expect("valid update");
        assert!(summary.is_empty());
        assert_eq!(summary.first_struct, None);
    }

    #[test]
    fn refuses_the_19_byte_clock_wrap() {
        assert_eq!(
            validate(&hex("010101ffffffff0f0401047465787402787800")),
            Err(UpdateError::ClockOverflow {
                client: 1,
                clock: u32::MAX,
                len: 2
            })
        );
    }

    #[test]
    fn a_struct_may_end_exactly_at_the_largest_clock() {
        // "x" at clock 2^31 − 2: the next clock is 2^31 − 1.
        assert!(validate(&hex("010101feffffff0704010474657874017800")).is_ok());
        // At 2^31 − 1 it would end at 2^31.
        assert_eq!(
            validate(&hex("010101ffffffff0704010474657874017800")),
            Err(UpdateError::ClockOverflow {
                client: 1,
                clock: MAX_STRUCT_CLOCK,
                len: 1
            })
        );
    }

    #[test]
    fn refuses_clocks_yrs_reads_as_negative() {
        // Found by the validate_then_apply fuzz target: a GC at clock 0x8ffffffc, applied to a
        // document that knows client 1, panicked in yrs' block store.
        assert_eq!(
            validate(&hex("010101fcffffff08001700")),
            Err(UpdateError::ClockOverflow {
                client: 1,
                clock: 0x8fff_fffc,
                len: 0x17
            })
        );
    }

    #[test]
    fn refuses_origins_no_client_could_have_written() {
        // "B" by client 200 with item 100#3 as both left and right origin (the room fuzz
        // target's finding 6). Yjs' UndoManager writes that too (`tests/honest/README.md`), so
        // it is only counted.
        let same = hex("0101c80100c464036403014200");
        assert!(validate(&same).is_ok());
        let index = DocIndex::default();
        let limits = UpdateLimits::default();
        let counted = validate_update_v1_in(&same, &limits, &index, None).map(|(s, _)| s);
        assert_eq!(counted.map(|s| s.origins_out_of_order), Ok(1));
        // Its own id, or a later one of its own client, as an origin.
        for origin in ["0105", "0107"] {
            assert_eq!(
                validate(&hex(&format!("0101010584{origin}017800"))),
                Err(UpdateError::InconsistentOrigins {
                    client: 1,
                    clock: 5
                })
            );
        }
        assert!(
            validate(&hex("01010105840104017800")).is_ok(),
            "an earlier clock"
        );
        assert!(
            validate(&hex("01010105840209017800")).is_ok(),
            "another client"
        );
    }

    #[test]
    fn origins_of_one_client_are_checked_against_the_documents_runs() {
        let limits = UpdateLimits::default();
        let mut index = DocIndex::default();
        // Client 1 types "abcdefgh": clocks 0..8 in a row.
        let text = hex("010101000401017408616263646566676800");
        let (_, added) = validate_update_v1_in(&text, &limits, &index, None).expect("the text");
        index.absorb(added);
        // Accepted, and counted (Yjs' UndoManager writes such origins: see
        // `tests/honest/README.md`).
        let out_of_order = |update: &str| {
            validate_update_v1_in(&hex(update), &limits, &index, None)
                .map(|(s, _)| s.origins_out_of_order)
        };
        // "x" by client 2 between clock 5 and clock 2: the right origin is left of the left.
        let backwards = "01010200c401050102017800";
        assert_eq!(out_of_order(backwards), Ok(1));
        // Between 2 and 5: clocks 3 and 4 lie between.
        assert_eq!(out_of_order("01010200c401020105017800"), Ok(1));
        // Between neighbours.
        assert_eq!(out_of_order("01010200c401020103017800"), Ok(0));
        // Without the index the validator cannot tell.
        assert!(validate_update_v1(&hex(backwards), &limits).is_ok());
        // Origins past the document's clock: the item would wait, unchecked.
        let clock_of = |client: u64| if client == 1 { 8 } else { 0 };
        let ahead = hex("01010200c401090102017800");
        assert_eq!(
            validate_update_v1_in(&ahead, &limits, &index, Some(&clock_of)).map(|(s, _)| s),
            Err(UpdateError::OriginsAheadOfDocument {
                client: 2,
                clock: 0,
                needs_client: 1,
                needs_clock: 10,
            })
        );
    }

    #[test]
    fn accepts_origins_in_collected_content() {
        // Client 1's clocks 0..5 as garbage (GC), and "x" by client 2 right of clock 2: what a
        // `gc: false` client that typed inside content someone else deleted uploads. yrs (as
        // vendored, `vendor/yrs/CHORUS-PATCHES.md`) integrates it as garbage, as Yjs does.
        assert!(validate(&hex("020102008401020178010100000500")).is_ok());
    }

    #[test]
    fn accepts_cuts_inside_a_surrogate_pair() {
        // Client 1 writes "k😀z" (clocks 0..4, the emoji at 1 and 2), then "x" with its left
        // origin at clock 1, inside the emoji, and deletes everything: what a Yjs client writes
        // when code inserts at a UTF-16 index inside an emoji (any index is valid for
        // `Y.Text.insert`). Both Yjs and yrs write U+FFFD into the two halves; the room counts
        // text in UTF-16 units, as Yjs does, so the halves keep their length
        // (`room/doc.rs`, `new_document`).
        let emoji_then_x = "0102010004010174066bf09f98807a8401010178";
        assert!(validate(&hex(&format!("{emoji_then_x}0101010005"))).is_ok());
        assert!(validate(&hex("0102010004010174066bf09f98807a44010201780101010005")).is_ok());
        assert!(validate(&hex("010101000401017404f09f98800101010001")).is_ok());
    }

    /// `depth` maps, each the value "k" of the one before, from clock `first` of client 1.
    fn map_chain(first: u32, depth: u32) -> Vec<u8> {
        let mut u = vec![1, depth as u8, 1, first as u8];
        for clock in first..first + depth {
            if clock == 0 {
                u.extend([0x27, 1, 1, b'z', 1, b'k', 1]);
            } else {
                u.extend([0x27, 0, 1, clock as u8 - 1, 1, b'k', 1]);
            }
        }
        u.push(0);
        u
    }

    #[test]
    fn a_type_index_bounds_nesting_across_updates() {
        let limits = UpdateLimits {
            max_type_depth: 6,
            ..UpdateLimits::default()
        };
        // Alone, each chain of 4 is fine; with the index the second would reach depth 8.
        assert!(validate_update_v1(&map_chain(4, 4), &limits).is_ok());
        let mut types = DocIndex::default();
        let (_, added) =
            validate_update_v1_in(&map_chain(0, 4), &limits, &types, None).expect("4 deep");
        types.absorb(added);
        assert_eq!(
            validate_update_v1_in(&map_chain(4, 4), &limits, &types, None).map(|(s, _)| s),
            Err(UpdateError::TypeTooDeep { limit: 6 })
        );
        validate_update_v1_in(&map_chain(4, 2), &limits, &types, None).expect("6 deep");
        // Only what is absorbed counts: without the first chain the second is fine.
        assert!(
            validate_update_v1_in(&map_chain(4, 4), &limits, &DocIndex::default(), None).is_ok()
        );
    }

    #[test]
    fn counts_skips() {
        // Client 1: "a" at 0, a Skip of 3, "b" at 4.
        let summary = validate(&hex("010301000401017401610a0304010174016200")).expect("valid");
        assert_eq!(summary.skips, 1);
        assert_eq!(summary.first_struct.map(|s| s.clock), Some(0));
    }

    #[test]
    fn refuses_trailing_bytes() {
        assert_eq!(
            validate(&[0, 0, 0]),
            Err(UpdateError::Malformed(ProtocolError::TrailingBytes(1)))
        );
    }

    #[test]
    fn utf16_length_drives_the_clock() {
        // "😀" is one char, two UTF-16 units: a clock of 2^31 − 2 leaves no room for it.
        assert_eq!(
            validate(&hex("010101feffffff070401047465787404f09f988000")),
            Err(UpdateError::ClockOverflow {
                client: 1,
                clock: MAX_STRUCT_CLOCK - 1,
                len: 2
            })
        );
    }
}
