//! Change notices: POSTed to a URL, and the debounce that also paces change hooks.

use std::time::Duration;

use clap::Args;

use super::{Secret, setting};
use crate::webhook::WebhookSettings;

/// The change webhook.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookConfig {
    /// POST a JSON notice here when a document changes (debounced by --change-debounce).
    #[arg(long, env = "CHORUS_WEBHOOK_URL")]
    pub webhook_url: Option<reqwest::Url>,

    /// Key of the webhook's `X-Chorus-Signature: sha256=<HMAC-SHA256 of the body>` header.
    #[arg(long, env = "CHORUS_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// Put the document's content (as JSON) in each webhook notice.
    #[arg(long, env = "CHORUS_WEBHOOK_INCLUDE_CONTENT")]
    pub webhook_include_content: bool,

    /// Attempts per webhook notice, the first included; retries back off exponentially.
    #[arg(long, env = "CHORUS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,

    /// Time limit of one webhook request.
    #[arg(long, env = "CHORUS_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// Quiet time after a change before webhooks and change hooks hear of it; a document edited
    /// without pause is announced at least every five times this.
    #[arg(long, env = "CHORUS_CHANGE_DEBOUNCE", default_value = "2s", value_parser = humantime::parse_duration)]
    pub change_debounce: Duration,
}

impl WebhookConfig {
    /// What the webhook sender needs, or `None` without `--webhook-url`.
    pub fn settings(&self) -> Option<WebhookSettings> {
        self.webhook_url.as_ref().map(|url| WebhookSettings {
            url: url.clone(),
            secret: self
                .webhook_secret
                .as_ref()
                .map(|s| s.0.as_bytes().to_vec()),
            include_content: self.webhook_include_content,
            max_attempts: self.webhook_max_attempts,
            timeout: self.webhook_timeout,
        })
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        super::check_http_url("webhook-url", self.webhook_url.as_ref(), problems);
        if self.webhook_url.is_some() && self.webhook_max_attempts == 0 {
            problems.push(format!(
                "{} must be at least 1",
                setting("webhook-max-attempts")
            ));
        }
        if self.webhook_secret.is_some() && self.webhook_url.is_none() {
            problems.push(format!(
                "{} is set but {} is not: set the URL notices go to, or drop the secret",
                setting("webhook-secret"),
                setting("webhook-url")
            ));
        }
        if self.change_debounce.is_zero() {
            problems.push(format!(
                "{} must be non-zero, e.g. 2s",
                setting("change-debounce")
            ));
        }
    }
}
