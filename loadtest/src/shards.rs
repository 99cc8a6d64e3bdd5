//! The users of a `run` spread over one single-threaded runtime per core.
//!
//! On tokio's work-stealing runtime, a socket that becomes readable wakes its user's task on
//! one worker, and that worker wakes a parked sibling to share the work: with thousands of
//! users each receiving a few frames at a time, those wake-ups (a futex and two context switches
//! each) were a large part of the generator's CPU per delivery. Here each user lives on one
//! thread for its whole life, and its socket, timers and task belong to that thread's runtime,
//! so nothing is handed between threads except the run's shared counters.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The runtimes, one thread each; they stop when this is dropped.
#[derive(Debug)]
pub struct Shards {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Shards {
    /// Starts `count` (at least one) single-threaded runtimes.
    ///
    /// # Errors
    /// A runtime or its thread could not be created.
    pub fn start(count: usize) -> io::Result<Self> {
        let mut shards = Self {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            shards.handles.push(runtime.handle().clone());
            shards.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("users-{index}"))
                .spawn(move || {
                    // Tasks spawned through the handle run while this thread is in here.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            shards.threads.push(thread);
        }
        Ok(shards)
    }

    /// Runs `future` on the `n`-th runtime (modulo their number).
    pub fn spawn<F>(&self, n: usize, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[n % self.handles.len()].spawn(future)
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            // A thread that panicked has nothing left to clean up.
            let _ = thread.join();
        }
    }
}
