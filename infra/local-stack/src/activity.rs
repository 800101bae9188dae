//! Whether anything is happening on the stack, for the stand-ins that would otherwise poll for nothing
//! (the DynamoDB stream pollers): every write a function makes happens while one of its invocations
//! runs, and every write made from outside (a test, a tool, a person) goes through the stack's DynamoDB
//! endpoint (`dynamodb_relay`). Both report here; a poller that has found nothing for a while waits on
//! it instead of asking DynamoDB Local again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::time::Instant;

pub struct Activity {
    started: Instant,
    /// Invocations running now.
    in_flight: AtomicUsize,
    /// When something last happened, in milliseconds since `started`.
    last_ms: AtomicU64,
    notify: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }
}

impl Activity {
    /// Something happened just now (a call relayed to DynamoDB Local, an invocation started or ended).
    pub fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// An invocation runs until the guard is dropped.
    pub fn invocation(self: &Arc<Self>) -> Running {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Running(Arc::clone(self))
    }

    /// Whether an invocation runs now, or something happened within `within`.
    pub fn busy(&self, within: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last) < within
    }

    /// Completes at the next `touch`. Enable it (or poll it once) before checking `busy`, so that a
    /// touch in between is not missed.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

/// One running invocation (see `Activity::invocation`).
pub struct Running(Arc<Activity>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_while_an_invocation_runs_and_for_a_while_after_anything() {
        let tail = Duration::from_millis(100);
        let activity = Arc::new(Activity::default());
        tokio::time::sleep(tail * 2).await;
        assert!(!activity.busy(tail));
        let running = activity.invocation();
        tokio::time::sleep(tail * 2).await;
        assert!(activity.busy(tail), "an invocation runs");
        drop(running);
        assert!(activity.busy(tail), "it has just ended");
        tokio::time::sleep(tail * 2).await;
        assert!(!activity.busy(tail));
        let notified = activity.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        activity.touch();
        notified.await;
        assert!(activity.busy(tail));
    }
}
