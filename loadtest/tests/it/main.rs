//! Integration tests: the real `chorus-loadtest` binary against a real `chorus serve` process and
//! against the bare relay, all on 127.0.0.1 with port 0.
//!
//! The `chorus` binary comes from `CHORUS_BIN` or the same target directory as this test
//! (`cargo build -p chorus-cli` first); a missing binary fails the tests with that hint.

mod helpers;
mod hocuspocus;
mod idle;
mod join;
mod run;
mod soak;
