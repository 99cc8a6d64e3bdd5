//! The live progress line (indicatif, on stderr; hidden when stderr is not a terminal).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// How often the line is redrawn.
const REFRESH: Duration = Duration::from_millis(250);

/// A progress line whose text a closure recomputes on every refresh.
#[derive(Debug)]
pub struct Live {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Live {
    /// Starts refreshing; `status` is called every 250 ms and must be cheap.
    pub fn start(enabled: bool, status: impl Fn() -> String + Send + 'static) -> Self {
        let bar = if enabled {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
        let task = tokio::spawn({
            let bar = bar.clone();
            async move {
                let mut interval = tokio::time::interval(REFRESH);
                loop {
                    interval.tick().await;
                    bar.set_message(status());
                    bar.tick();
                }
            }
        });
        Self { bar, task }
    }

    /// Stops refreshing and clears the line.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
