//! A room over a sequence of messages, through the room's own core (`chorus_room::RoomCore`,
//! the one the server drives): see `shared/room_driver.rs`, `run_room`. State carries over
//! between messages, so this reaches what a single update cannot: origins into content of
//! earlier updates, held and pending structs waiting for later ones, deletes of both.
//!
//! Checks: no panic anywhere; every frame and log record the room emits validates and decodes;
//! and at the end what a joiner gets, applied to a fresh replica, gives the room's state
//! vector and text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "shared/room_driver.rs"]
mod room_driver;

fuzz_target!(|data: &[u8]| room_driver::run_room(data));
