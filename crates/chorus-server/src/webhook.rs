//! Webhooks: `POST` a signed JSON notice to `--webhook-url` when a document changes.
//!
//! The request body:
//!
//! ```json
//! { "event": "document.changed", "doc": "notes", "time": "2026-11-26T01:02:03.456Z",
//!   "size": 1234, "content": { "text": "..." } }
//! ```
//!
//! `content` (the document as JSON, like `GET /api/v1/docs/{doc}`) only with
//! `--webhook-include-content`. With `--webhook-secret`, the header
//! `X-Chorus-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes under the
//! secret; receivers recompute it and compare in constant time, and may refuse stale `time`s
//! against replays. `X-Chorus-Delivery` stays the same across the retries of one notice.
//!
//! Deliveries run in their own tasks: a receiver that is slow, failing or unreachable costs
//! retries (with exponential backoff and jitter), never a room's time. A newer notice for the
//! same document supersedes an older one still retrying, so a receiver that comes back gets the
//! latest state rather than a backlog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chorus_protocol::DocName;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::export::doc_to_json;
use crate::hooks::DocChange;

/// Deliveries in flight at once; more wait their turn (and may be superseded meanwhile).
const CONCURRENT_DELIVERIES: usize = 32;
/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where notices are posted.
    pub url: reqwest::Url,
    /// Key of the `X-Chorus-Signature` HMAC; unsigned without it.
    pub secret: Option<Vec<u8>>,
    /// Put the document's JSON content in each notice.
    pub include_content: bool,
    /// Attempts per notice (the first try included).
    pub max_attempts: u32,
    /// Time limit of one attempt.
    pub timeout: Duration,
}

/// Sends notices; cheap to clone.
#[derive(Clone)]
pub(crate) struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    client: reqwest::Client,
    /// The newest notice per document still being delivered.
    latest: Mutex<HashMap<DocName, u64>>,
    next_id: AtomicU64,
    slots: Semaphore,
}

impl Webhooks {
    /// A sender for `settings`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built (no usable TLS configuration).
    pub(crate) fn new(settings: WebhookSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("chorus/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                client,
                latest: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(fastrand::u64(..) >> 16),
                slots: Semaphore::new(CONCURRENT_DELIVERIES),
            }),
        })
    }

    /// Starts delivering `change` in a task of `tasks`; gives up retrying once `closing` is
    /// cancelled.
    pub(crate) fn send(
        &self,
        change: &DocChange,
        tasks: &TaskTracker,
        closing: &CancellationToken,
    ) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.latest().insert(change.doc.clone(), id);
        let this = self.clone();
        let change = change.clone();
        let closing = closing.clone();
        tasks.spawn(async move { this.deliver(id, change, closing).await });
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, HashMap<DocName, u64>> {
        self.inner
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn superseded(&self, doc: &DocName, id: u64) -> bool {
        self.latest().get(doc) != Some(&id)
    }

    async fn deliver(self, id: u64, change: DocChange, closing: CancellationToken) {
        let Ok(_slot) = self.inner.slots.acquire().await else {
            return;
        };
        if self.superseded(&change.doc, id) {
            return;
        }
        let body = match self.body(&change).await {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(doc = %change.doc, %error, "webhook: could not build the notice");
                return;
            }
        };
        let signature = self
            .inner
            .settings
            .secret
            .as_deref()
            .map(|key| sign(key, &body));
        let delivery = format!("{id:016x}");
        let settings = &self.inner.settings;
        for attempt in 1..=settings.max_attempts {
            let mut request = self
                .inner
                .client
                .post(settings.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Chorus-Delivery", &delivery)
                .header("X-Chorus-Attempt", attempt.to_string())
                .body(body.clone());
            if let Some(signature) = &signature {
                request = request.header("X-Chorus-Signature", signature);
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("answered {}", response.status())),
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(()) => {
                    metrics::counter!("chorus_webhooks_total", "outcome" => "delivered")
                        .increment(1);
                    tracing::debug!(doc = %change.doc, attempt, "webhook delivered");
                    self.forget(&change.doc, id);
                    return;
                }
                Err(error) => {
                    metrics::counter!("chorus_webhook_failures_total").increment(1);
                    tracing::warn!(doc = %change.doc, attempt, %error, "webhook attempt failed");
                }
            }
            if attempt == settings.max_attempts {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff(attempt)) => {}
                () = closing.cancelled() => break,
            }
            if self.superseded(&change.doc, id) {
                metrics::counter!("chorus_webhooks_total", "outcome" => "superseded").increment(1);
                return;
            }
        }
        metrics::counter!("chorus_webhooks_total", "outcome" => "abandoned").increment(1);
        tracing::error!(doc = %change.doc, "webhook abandoned after its last attempt");
        self.forget(&change.doc, id);
    }

    /// Drops the document's entry if `id` is still its newest notice, so the map only holds
    /// documents with a delivery in progress.
    fn forget(&self, doc: &DocName, id: u64) {
        let mut latest = self.latest();
        if latest.get(doc) == Some(&id) {
            latest.remove(doc);
        }
    }

    async fn body(&self, change: &DocChange) -> Result<bytes::Bytes, BodyError> {
        let time = humantime::format_rfc3339_millis(change.at).to_string();
        let mut notice = serde_json::json!({
            "event": "document.changed",
            "doc": change.doc.as_str(),
            "time": time,
            "size": change.state.len(),
        });
        if self.inner.settings.include_content {
            let state = change.state.clone();
            let content = tokio::task::spawn_blocking(move || doc_to_json(&state)).await??;
            notice["content"] = content;
        }
        Ok(serde_json::to_vec(&notice)?.into())
    }
}

/// Why a notice's body could not be made.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error("the conversion task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Delay before attempt `attempt + 1`: doubling from [`FIRST_BACKOFF`], at most
/// [`MAX_BACKOFF`], with up to 25 % jitter so retries from many rooms spread out.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    base + base.mul_f64(fastrand::f64() * 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert!(backoff(1) >= FIRST_BACKOFF && backoff(1) <= FIRST_BACKOFF.mul_f64(1.25));
        assert!(backoff(2) >= FIRST_BACKOFF * 2);
        assert!(backoff(40) <= MAX_BACKOFF.mul_f64(1.25));
    }
}
