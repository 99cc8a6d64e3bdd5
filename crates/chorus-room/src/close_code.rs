//! RFC 6455 close codes Chorus sends.

/// The server is shutting down; the client should reconnect (to another node).
pub const GOING_AWAY: u16 = 1001;
/// The frame was not a binary y-websocket message.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// The message could not be decoded or applied.
pub const INVALID_PAYLOAD: u16 = 1007;
/// The message broke a rule (e.g. a text frame, a read-only write).
pub const POLICY: u16 = 1008;
/// The message exceeded `--max-message-bytes`.
pub const TOO_BIG: u16 = 1009;
/// The token expired while connected (y-websocket 3.1 stops reconnecting on 4400-4499).
pub const FORBIDDEN: u16 = 4403;
/// The document was deleted (`DELETE /api/v1/docs/{doc}`). In the 4400-4499 range so that
/// clients do not reconnect: one that did would upload its copy and bring the document back.
pub const DOCUMENT_DELETED: u16 = 4404;
/// The room failed; the client should reconnect, which reloads it.
pub const INTERNAL_ERROR: u16 = 1011;
/// The client fell behind or the room is busy; it resynchronises when it reconnects.
pub const TRY_AGAIN_LATER: u16 = 1013;
