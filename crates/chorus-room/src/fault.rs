//! A test-only fault: makes the document engine panic on purpose, so tests can check what a
//! panic inside yrs does to a room (its connections close with 1011, other rooms carry on, the
//! room reloads from its last snapshot). Compiled only with the `fault-injection` feature,
//! which only test builds enable.

use std::sync::Mutex;

static MARKERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// From now on, applying a client update whose bytes contain `marker` panics inside the
/// document engine.
pub fn panic_on_update_containing(marker: &[u8]) {
    MARKERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(marker.to_vec());
}

/// Panics if `update` holds an armed marker; called inside the document's panic guard.
pub(crate) fn check(update: &[u8]) {
    let markers = MARKERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if markers
        .iter()
        .any(|marker| update.windows(marker.len()).any(|w| w == marker.as_slice()))
    {
        drop(markers);
        panic!("injected fault: the document engine panics on this update");
    }
}
