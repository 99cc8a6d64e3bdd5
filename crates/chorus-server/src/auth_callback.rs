//! The auth callback: for backends that keep their own sessions, Chorus asks them.
//!
//! With `--auth-callback-url`, each connection's token and document are posted to that URL as
//! `{"doc": "notes", "token": "..."}` (token `null` when the client sent none). The backend
//! answers `200` with `{"access": "write" | "read" | "deny"}`, optionally with
//! `"identity": "<who>"`, the name the connection's edits are attributed to in the document's
//! history (`anonymous` without it); any other status counts as `deny`. Answers are cached for `--auth-callback-cache` per (token, document), so a hundred
//! tabs reconnecting after a deploy cost the backend one request each, not one per retry. A
//! backend that cannot be reached refuses the connection with 503 (never opens it): the client
//! retries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chorus_protocol::DocName;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::hooks::{Access, Denied};

/// Entries the cache holds at most; beyond it, expired ones are dropped, then all.
const MAX_CACHED: usize = 10_000;

/// What the backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Write,
    Read,
    Deny,
}

#[derive(Deserialize)]
struct Answer {
    access: Verdict,
    #[serde(default)]
    identity: Option<String>,
}

/// A cached answer: when it came, the verdict, the identity it named.
type CachedAnswer = (Instant, Verdict, Option<String>);

/// Asks the backend at a URL, with a short cache.
pub struct AuthCallback {
    url: reqwest::Url,
    client: reqwest::Client,
    ttl: Duration,
    /// Keyed by a hash of (token, document): the cache never holds a token itself.
    cache: Mutex<HashMap<[u8; 32], CachedAnswer>>,
}

impl AuthCallback {
    /// A callback to `url`, each request limited to `timeout`, answers kept for `ttl`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built (no TLS backend, say).
    pub fn new(
        url: reqwest::Url,
        timeout: Duration,
        ttl: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("chorus/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            url,
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// What `token` may do on `doc`, from the cache or the backend.
    ///
    /// # Errors
    /// [`Denied`]: 403 when the backend says `deny` (or answers another status), 503 when it
    /// cannot be reached or answers nonsense.
    pub async fn check(&self, token: Option<&str>, doc: &DocName) -> Result<Access, Denied> {
        let key = cache_key(token, doc);
        let cached = self
            .cache()
            .get(&key)
            .filter(|(at, _, _)| at.elapsed() < self.ttl)
            .map(|(_, verdict, identity)| (*verdict, identity.clone()));
        let (verdict, identity) = match cached {
            Some(answer) => answer,
            None => {
                let (verdict, identity) = self.ask(token, doc).await?;
                self.remember(key, verdict, identity.clone());
                (verdict, identity)
            }
        };
        let access = match verdict {
            Verdict::Write => Access::WRITE,
            Verdict::Read => Access::READ,
            Verdict::Deny => return Err(Denied::forbidden("access to this document was denied")),
        };
        Ok(Access { identity, ..access })
    }

    async fn ask(
        &self,
        token: Option<&str>,
        doc: &DocName,
    ) -> Result<(Verdict, Option<String>), Denied> {
        let unavailable = |detail: String| {
            tracing::warn!(%detail, "auth callback failed; refusing the connection");
            Denied {
                status: 503,
                message: "the authorization service is unavailable; retry later".into(),
            }
        };
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "doc": doc.as_str(), "token": token }).to_string())
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            tracing::info!(status = %response.status(), %doc, "auth callback refused a connection");
            return Ok((Verdict::Deny, None));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!(
                "answer is not {{\"access\": \"write\"|\"read\"|\"deny\"}}: {e}"
            ))
        })?;
        Ok((answer.access, answer.identity))
    }

    fn remember(&self, key: [u8; 32], verdict: Verdict, identity: Option<String>) {
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            let ttl = self.ttl;
            cache.retain(|_, (at, _, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), verdict, identity));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], CachedAnswer>> {
        // One map operation per critical section: a poisoned lock holds a consistent map.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cache_key(token: Option<&str>, doc: &DocName) -> [u8; 32] {
    let mut hash = Sha256::new();
    match token {
        Some(token) => {
            hash.update([1]);
            hash.update((token.len() as u64).to_le_bytes());
            hash.update(token.as_bytes());
        }
        None => hash.update([0]),
    }
    hash.update(doc.as_str().as_bytes());
    hash.finalize().into()
}
