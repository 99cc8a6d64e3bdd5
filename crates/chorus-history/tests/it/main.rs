//! Integration tests of chorus-history, one binary: documents built with yrs (gc on, as live
//! documents are), states encoded, restored and compared through the public API; the JS `yjs`
//! check runs the real npm package on the same bytes.

mod diff;
mod helpers;
mod hostile;
mod props;
mod restore;
mod yjs;
