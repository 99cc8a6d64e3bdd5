//! Who may connect: client tokens, the auth callback, allowed origins, the API key.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::setting;

/// A secret setting: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Client tokens, the auth callback, origins and the HTTP API's key.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Auth")]
pub struct AuthConfig {
    /// HS256 secret for client tokens (`?token=`). With neither this nor --auth-public-key the
    /// server is open to anyone who can reach it.
    #[arg(long, env = "CHORUS_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<Secret>,

    /// Bearer key for the HTTP API under /api/v1 (servers only; never give it to browsers).
    /// Without it the API is off.
    #[arg(long, env = "CHORUS_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// PEM public key (RSA for RS256, P-256 EC for ES256) that client tokens are signed for.
    #[arg(long, env = "CHORUS_AUTH_PUBLIC_KEY")]
    pub auth_public_key: Option<PathBuf>,

    /// Ask this URL whether a connection may open a document (instead of signed tokens): it is
    /// posted `{"doc", "token"}` and answers `{"access": "write"|"read"|"deny"}`.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_URL")]
    pub auth_callback_url: Option<reqwest::Url>,

    /// How long an answer of the auth callback is reused for the same token and document.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_CACHE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_callback_cache: Duration,

    /// Time limit of one auth-callback request; past it the connection gets 503.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub auth_callback_timeout: Duration,

    /// Origins allowed to open WebSockets, comma-separated (e.g. `https://app.example.com`);
    /// others get 403, against cross-site WebSocket hijacking. Empty: any origin.
    #[arg(long, env = "CHORUS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
}

impl AuthConfig {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.auth_secret.is_some() && self.auth_public_key.is_some() {
            problems.push(format!(
                "{} and {} are exclusive (tokens use one algorithm): drop one",
                setting("auth-secret"),
                setting("auth-public-key")
            ));
        }
        if self.auth_secret.as_ref().is_some_and(|s| s.0.len() < 32) {
            problems.push(format!(
                "{} must be at least 32 bytes; generate one with `openssl rand -hex 32`",
                setting("auth-secret")
            ));
        }
        if self.auth_callback_url.is_some()
            && (self.auth_secret.is_some() || self.auth_public_key.is_some())
        {
            problems.push(format!(
                "{} cannot be combined with --auth-secret / --auth-public-key: \
                 choose signed tokens or the callback",
                setting("auth-callback-url")
            ));
        }
        super::check_http_url(
            "auth-callback-url",
            self.auth_callback_url.as_ref(),
            problems,
        );
    }
}
