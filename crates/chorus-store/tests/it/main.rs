//! Integration tests of chorus-store against real backends: files in temporary directories,
//! the Redis at `CHORUS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`; the tests fail,
//! never skip, without it) and, with `--features s3`, a `moto_server` each S3 test starts.

mod compact;
mod config;
mod damaged_snapshots;
mod fs_log;
mod helpers;
mod log_contract;
mod ops;
mod redis_log;
mod snapshots;
mod versions;
