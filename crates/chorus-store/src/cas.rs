//! What compare-and-swap saves (Redis, object stores) share: the pause between two attempts.

use std::time::Duration;

/// Ceiling of the random pause between two compare-and-swap attempts.
const MAX_CAS_BACKOFF: Duration = Duration::from_millis(50);

/// Sleeps a random while before compare-and-swap attempt `attempt`, so competing writers spread
/// instead of colliding again at once.
pub(crate) async fn backoff(attempt: u32) {
    let ceiling = Duration::from_millis(1u64 << attempt.min(6)).min(MAX_CAS_BACKOFF);
    let pause = ceiling.mul_f64(fastrand::f64());
    tokio::time::sleep(pause).await;
}
