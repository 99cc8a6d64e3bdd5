//! Version history for Chorus documents, without IO.
//!
//! A *version* is a document's whole state as one Yjs v1 update. This crate reads such states:
//! it renders one as JSON a UI can show ([`content_json`]), says what changed between two
//! ([`diff`]) and computes the forward update that makes a live document's content equal to an
//! earlier version's ([`restore_update`]). Restoring never rewrites history: it is an ordinary
//! edit (insertions and deletions by a fresh client id) that peers apply, merge with their
//! concurrent edits, and can undo.
//!
//! # Layout
//! - `model` (private): the content of a state as owned values, read once from yrs, with the
//!   inference of root kinds and the JSON rendering.
//! - `seq` (private): a bounded Myers shortest edit script, used for text and elements.
//! - `plan` (private): what to change, type by type; shared by restore and diff, so the diff a
//!   user reads is what a restore does.
//! - `restore` (private): applies a plan to a yrs document; `diff` (private): renders a plan
//!   as the public [`DocDiff`] types.
//! - [`HistoryError`]: the one error type.
//!
//! Every state goes through `chorus_protocol`'s bounded validator before yrs decodes it, so
//! bytes from a store cannot make yrs allocate without bound or panic on a wrapped clock.
//!
//! # Content JSON
//!
//! [`content_json`] returns `{"roots": {<name>: <node>}}`, roots sorted by name. A root without
//! live content is left out (once its deleted content is collected, a state cannot tell an
//! emptied root from one never created). Every node has a `"kind"`:
//!
//! | kind | fields |
//! |---|---|
//! | `text` | `"delta"`: `[{"insert": "chars", "attributes": {..}?}, {"insert": {"embed": <node>}, "attributes": {..}?}]` (Quill-style; runs with equal formatting merged) |
//! | `xml_text` | `"delta"` as for text, `"attributes"`: `{name: <node>}` |
//! | `map` | `"entries"`: `{key: <node>}` |
//! | `array` | `"items"`: `[<node>]` |
//! | `xml_fragment` | `"children"`: `[<node>]` |
//! | `xml_element` | `"tag"`, `"attributes"`: `{name: <node>}`, `"children"`: `[<node>]` |
//! | `xml_hook` | `"hook"` (its name), `"entries"` as for a map |
//! | `value` | `"value"`: the JSON value (`undefined` and non-finite numbers as `null`, binary as `{"$binary": "<hex>"}`) |
//! | `doc` | `"guid"`: a sub-document |
//!
//! Object keys are sorted. Roots carry no type in an encoded state, so a root's kind is
//! inferred from its content: characters or embeds make a `text` (with attributes an
//! `xml_text`), elements that are all XML nodes an `xml_fragment` (as Tiptap and y-prosemirror
//! write), other elements an `array`, entries alone a `map`. A root holding both elements and
//! entries (no honest editor writes one) shows both, as `"children"`/`"items"` and
//! `"attributes"`.
//!
//! # Diff JSON
//!
//! [`DocDiff`] serializes as `{"roots": {<name>: <change>}}` with only the roots that differ.
//! A change is one of
//! - `{"change": "added", "value": <node>}`, `{"change": "removed", "value": <node>}`,
//! - `{"change": "replaced", "before": <node>, "after": <node>}` (a value changed, or a kind),
//! - `{"change": "edited", "kind": .., "tag": ..?, "text": [..]?, "elements": [..]?, "keys": [..]?}`
//!   for a shared type edited in place, where
//!   - `text` lists, in order, `{"op": "insert"|"delete", "pos_a", "pos_b", "text" | "embed",
//!     "len", "attributes"?}` and `{"op": "format", "pos_a", "pos_b", "len", "attributes":
//!     {name: new value or null}}`. Positions and lengths count UTF-16 code units; `pos_a` is in
//!     the old text, `pos_b` in the new, so a UI can mark insertions in the new text and show
//!     deletions where they were;
//!   - `elements` lists `{"op": "insert"|"delete", "index_a", "index_b", "values": [<node>]}` and
//!     `{"op": "edit", "index_a", "index_b", "edits": {<edited fields>}}` for an element of the
//!     same kind and tag edited in place (a paragraph whose text changed);
//!   - `keys` lists `{"key", "change": <change>}` for map entries and XML attributes.
//!
//! # Limits
//!
//! Shared types or values nested deeper than 256 levels are refused ([`HistoryError::Invalid`]
//! from the validator, or [`HistoryError::TooDeep`]), so that reading a hostile state cannot
//! overflow the stack. Text (compared by Unicode scalar value, so a surrogate pair is never
//! split) and elements are aligned with a shortest edit script up to 2,048 differences (or 50 M
//! comparisons) per sequence; past that the differing middle is replaced whole (still exact,
//! only a larger change). Content a state holds only as pending (waiting for missing updates)
//! is not visible, so it is neither shown nor restored. A `Y.XmlHook` is edited in place but cannot be re-created
//! (yrs cannot create one), and a sub-document is kept by guid only.

#![warn(missing_docs)]

mod diff;
mod error;
mod model;
mod plan;
mod restore;
mod seq;

pub use diff::{Change, DocDiff, Edits, ElementEdit, KeyEdit, TextContent, TextEdit};
pub use error::HistoryError;

use chorus_protocol::{UpdateLimits, validate_update_v1};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, OffsetKind, Options, Transact, Update};

/// The largest Yjs client id: Yjs ids are 53-bit so that JavaScript numbers hold them.
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// The content of a document state (a full v1 update), as JSON a UI can render: every root type
/// by name, with its kind (text with formatting runs / map / array / xml tree). The shape is in
/// the [crate docs](crate#content-json).
///
/// # Errors
/// [`HistoryError`] when `state` does not decode or apply, or nests too deep.
pub fn content_json(state: &[u8]) -> Result<serde_json::Value, HistoryError> {
    contained(|| {
        let doc = load(state, ClientID::random())?;
        let roots = model::read_roots(&doc.transact())?;
        Ok(model::roots_json(&roots))
    })
}

/// A v1 update that, applied to a document whose state is `current` (a full v1 update of the
/// live document), makes its content equal to `target`'s content (a full v1 update of the
/// version).
///
/// Forward change only: history is never rewritten. Works when `current` was produced with gc
/// on. `client_id` is the Yjs client id the restore writes under (the server picks a fresh
/// one); no other peer may write under it at the same time. If the contents are already equal
/// the update is empty (it changes nothing when applied).
///
/// # Errors
/// [`HistoryError::InvalidClientId`] past 2⁵³ − 1; otherwise when a state does not decode or
/// apply, nests too deep, or needs what cannot be re-created (see the [crate docs](crate#limits)).
pub fn restore_update(
    current: &[u8],
    target: &[u8],
    client_id: u64,
) -> Result<Vec<u8>, HistoryError> {
    if client_id > MAX_CLIENT_ID {
        return Err(HistoryError::InvalidClientId(client_id));
    }
    contained(|| {
        let target_roots = {
            let doc = load(target, ClientID::random())?;
            model::read_roots(&doc.transact())?
        };
        let doc = load(current, ClientID::new(client_id))?;
        let current_roots = model::read_roots(&doc.transact())?;
        let mut txn = doc.transact_mut();
        restore::restore_roots(&mut txn, &current_roots, &target_roots)?;
        Ok(txn.encode_update_v1())
    })
}

/// What changed from `a` to `b`, for a UI: text insertions and deletions (with positions and
/// text), map keys added/removed/changed, array/xml elements added or removed. The JSON shape
/// is in the [crate docs](crate#diff-json).
///
/// # Errors
/// [`HistoryError`] when a state does not decode or apply, or nests too deep.
pub fn diff(a: &[u8], b: &[u8]) -> Result<DocDiff, HistoryError> {
    contained(|| {
        let read = |state: &[u8]| -> Result<_, HistoryError> {
            let doc = load(state, ClientID::random())?;
            let roots = model::read_roots(&doc.transact())?;
            Ok(roots)
        };
        diff::diff_roots(&read(a)?, &read(b)?)
    })
}

/// Runs `f`, turning a panic into [`HistoryError::Panicked`].
///
/// The validator and the range checks keep yrs from the panics known to this crate, but yrs
/// still has panicking paths in integration that well-formed input can reach (see
/// `crates/chorus-protocol/fuzz/README.md`). A history request must fail alone, not take its
/// caller down; the private documents `f` built are dropped with it and never reused.
fn contained<T>(f: impl FnOnce() -> Result<T, HistoryError>) -> Result<T, HistoryError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(Err(HistoryError::Panicked))
}

/// A private document holding `state`, with gc on (as live documents are) and text positions in
/// UTF-16 code units (as Yjs counts them).
fn load(state: &[u8], client_id: ClientID) -> Result<Doc, HistoryError> {
    // yrs trusts its input more than bytes from a store deserve (a 5-byte length can make it
    // reserve half a gigabyte, a wrapped clock panics): Chorus' validator goes first, with the
    // limits of state the server already holds (any number of clients over a document's life,
    // no origin checks), and this crate's depth bound.
    let limits = UpdateLimits {
        max_clients: usize::MAX,
        max_any_depth: model::MAX_DEPTH,
        max_type_depth: model::MAX_DEPTH,
        check_origins: false,
    };
    validate_update_v1(state, &limits)?;
    let doc = Doc::with_options(Options {
        client_id,
        offset_kind: OffsetKind::Utf16,
        skip_gc: false,
        ..Options::default()
    });
    let update = Update::decode_v1(state)?;
    // Content still waiting for missing updates (a live document may hold some) is not
    // visible, so it is neither shown nor restored.
    doc.transact_mut().apply_update(update)?;
    Ok(doc)
}
