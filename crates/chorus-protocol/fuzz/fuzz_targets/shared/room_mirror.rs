//! The room's path for a client update, mirrored with yrs directly for the fuzz targets
//! (`RoomDoc::apply_client` and `Room::release_held` live in the server crate, out of this
//! crate's reach).

use chorus_protocol::update::{
    DocIndex, UpdateError, UpdateLimits, split_update_v1, validate_update_v1_in,
};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, OffsetKind, Options, ReadTxn, Transact, Update, WriteTxn};

/// Most updates the room holds for the one connection of a run (`--max-pending-structs`).
pub const MAX_HELD: usize = 64;

/// An update waiting for clocks: its bytes, and the clock each client must reach first.
pub type Held = (Vec<u8>, Vec<(u64, u32)>);

/// A document as the room makes one: text counted in UTF-16 units, as Yjs counts it.
pub fn room_doc(client: u64) -> Doc {
    Doc::with_options(Options {
        client_id: ClientID::new(client),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

/// As `RoomDoc::apply_client`: checked against the document, applied, or held. `Err` names
/// why the room would refuse it (and close its sender).
pub fn admit(
    room: &Doc,
    index: &mut DocIndex,
    held: &mut Vec<Held>,
    update: &[u8],
    reordered: &mut bool,
) -> Result<(), String> {
    let doc_limits = UpdateLimits {
        max_clients: usize::MAX,
        ..UpdateLimits::default()
    };
    let sv = room.transact().state_vector();
    let clock_of = |client: u64| sv.get(&ClientID::new(client));
    let mut hold = |held: &mut Vec<Held>, part: Held| {
        if held.len() < MAX_HELD {
            held.push(part);
        }
    };
    let mut split_and_admit = |index: &mut DocIndex,
                               held: &mut Vec<Held>,
                               hold: &mut dyn FnMut(&mut Vec<Held>, Held)|
     -> Result<(), String> {
        let split = split_update_v1(update, &clock_of).map_err(|e| e.to_string())?;
        if let Some(later) = split.later {
            hold(held, (later, split.needs));
        }
        match split.now {
            Some(now) => admit(room, index, held, &now, reordered),
            None => Ok(()),
        }
    };
    let (summary, added) = match validate_update_v1_in(update, &doc_limits, index, Some(&clock_of))
    {
        Ok(checked) => checked,
        Err(UpdateError::OriginsAheadOfDocument {
            needs_client,
            needs_clock,
            ..
        }) => {
            if split_update_v1(update, &clock_of).is_ok_and(|split| split.later.is_some()) {
                return split_and_admit(index, held, &mut hold);
            }
            hold(held, (update.to_vec(), vec![(needs_client, needs_clock)]));
            return Ok(());
        }
        Err(error) => return Err(format!("refused by the room: {error}")),
    };
    if summary.skips_clocks() {
        return split_and_admit(index, held, &mut hold);
    }
    let decoded = Update::decode_v1(update).map_err(|e| format!("yrs cannot decode it: {e}"))?;
    // As `RoomDoc::apply_decoded`: after a refusal midway, retry the pending set.
    let mut txn = room.transact_mut();
    let applied = txn.apply_update(decoded);
    if applied.is_err() && txn.has_missing_updates() {
        if let Some(pending) = txn.prune_pending() {
            let _ = txn.apply_update(pending);
        }
    }
    drop(txn);
    match applied {
        Ok(()) => {
            index.absorb(added);
            *reordered |= summary.origins_out_of_order > 0;
            Ok(())
        }
        Err(error) => Err(format!("yrs refused it: {error}")),
    }
}

/// As `Room::release_held`: every held update whose clocks arrived, in arrival order.
pub fn release(
    room: &Doc,
    index: &mut DocIndex,
    held: &mut Vec<Held>,
    reordered: &mut bool,
) -> Result<(), String> {
    loop {
        let sv = room.transact().state_vector();
        let ready = held.iter().position(|(_, needs)| {
            needs
                .iter()
                .all(|&(client, clock)| sv.get(&ClientID::new(client)) >= clock)
        });
        let Some(ready) = ready else { return Ok(()) };
        let (update, _) = held.remove(ready);
        admit(room, index, held, &update, reordered)?;
    }
}

/// A document's state vector, sorted, without clients at clock 0: yrs may keep one there (an
/// update whose structs all went pending, say), which means the same as no entry.
pub fn clocks(doc: &Doc) -> Vec<(u64, u32)> {
    let mut sv: Vec<(u64, u32)> = doc
        .transact()
        .state_vector()
        .iter()
        .filter(|&(_, &clock)| clock > 0)
        .map(|(client, &clock)| (client.get(), clock))
        .collect();
    sv.sort_unstable();
    sv
}
