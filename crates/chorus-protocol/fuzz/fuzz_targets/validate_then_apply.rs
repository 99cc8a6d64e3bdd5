//! What the server does with a client update: the connection's check, then the room's document
//! (`chorus_room::RoomDoc::apply_client`), fresh and holding seed content; see
//! `shared/room_driver.rs`, `run_validate_then_apply`. Build with debug assertions (the fuzz
//! profile enables them) so yrs' asserts fire.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "shared/room_driver.rs"]
mod room_driver;

fuzz_target!(|data: &[u8]| room_driver::run_validate_then_apply(data));
