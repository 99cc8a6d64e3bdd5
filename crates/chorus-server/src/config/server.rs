//! Where the standalone server listens and what it serves besides Chorus's own routes.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::setting;

/// Listening and static files; an embedding application's own business (ignored by
/// [`crate::Chorus`]).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerConfig {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "CHORUS_LISTEN", default_value = "127.0.0.1:1234")]
    pub listen: SocketAddr,

    /// Serve the files of this directory at `/` (e.g. the built web demo, `web-demo/dist`)
    /// instead of the built-in home page.
    #[arg(long, env = "CHORUS_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
}

impl ServerConfig {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            problems.push(format!(
                "{} {} is not a directory; build the demo first \
                 (cd web-demo && npm ci && npm run build) or drop the flag",
                setting("static-dir"),
                dir.display()
            ));
        }
    }
}
