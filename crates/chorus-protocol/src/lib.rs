//! The y-websocket wire protocol as standard Yjs clients speak it, with no I/O.
//!
//! Chorus decodes every frame itself rather than through yrs' `DefaultProtocol`, which swallows
//! truncation errors: every decoder here takes untrusted bytes, returns a [`ProtocolError`]
//! instead of panicking, and never allocates more than the input can justify.
//!
//! # Layout
//! - [`lib0`]: variable-length integers, byte arrays and strings.
//! - [`message`]: the top-level messages (sync, awareness, auth, query-awareness) and framing.
//! - [`state_vector`]: Yjs v1 state vectors.
//! - [`awareness`]: awareness (presence) updates.
//! - [`doc_name`]: validated document names.
//! - [`hocuspocus`]: the Hocuspocus framing (address, type, payload) around the same messages.
//! - [`update`]: a bounded validator for Yjs v1 updates, run before yrs sees one.

pub mod awareness;
pub mod doc_name;
mod error;
pub mod hocuspocus;
pub mod lib0;
pub mod message;
pub mod state_vector;
pub mod update;

pub use awareness::{AwarenessEntry, AwarenessUpdate};
pub use doc_name::{DocName, DocNameError};
pub use error::ProtocolError;
pub use message::{AuthMessage, Message, SyncFrame, SyncMessage};
pub use state_vector::StateVector;
pub use update::{UpdateError, UpdateLimits, UpdateSummary, validate_update_v1};
