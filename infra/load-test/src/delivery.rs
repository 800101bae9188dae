//! Send-to-delivery bookkeeping: every message a virtual user sends is expected on the sockets of the
//! other members of its group; each arrival is timed from the moment the send request started.
//!
//! A send is registered before its request goes out, because the fan-out can reach the other sockets
//! before the HTTP response reaches the sender. Only a send that succeeded counts as expected; arrivals
//! are matched by `clientMessageId` (unique per run) and deduplicated per recipient, since delivery is
//! at-least-once.
//!
//! The API delivers a message to every open connection of every member (docs/API-GUIDE.md "Delivery
//! rules"), "the sender's other devices included", skipping only the connection a WebSocket `sendMessage`
//! came from. So a send over HTTP also owes the sender's own socket its copy; the open loop counts that
//! copy as expected (`own_copy`), while the closed loop, whose numbers BENCHMARKS.md compares across
//! issues, keeps counting it apart as an echo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::stats::Recorder;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    /// Sends that succeeded and so owe deliveries.
    pub sends: u64,
    /// Deliveries owed: for each successful send, the other members of its group (and, when the send asked
    /// for it, the sender's own socket: see the module's notes).
    pub expected: u64,
    /// Deliveries that arrived in time (first arrival per recipient).
    pub received: u64,
    /// Owed deliveries that had not arrived when their send was given up on.
    pub missing: u64,
    /// The same message again on the same socket (at-least-once delivery).
    pub duplicates: u64,
    /// Arrivals of messages no longer tracked: after the delivery timeout, or after a failed send.
    pub late_or_unknown: u64,
    /// The sender's own socket receiving its message when that copy was not counted as owed.
    pub echoes: u64,
}

struct Pending {
    started: Instant,
    group: usize,
    /// The sender's own socket is owed a copy too.
    own_copy: bool,
    expected: u32,
    confirmed: bool,
    recipients: Vec<usize>,
}

struct Inner {
    pending: HashMap<String, Pending>,
    counts: DeliveryCounts,
}

pub struct Tracker {
    recorder: Arc<Recorder>,
    timeout: Duration,
    inner: Mutex<Inner>,
}

impl Tracker {
    /// `timeout`: how long after its send a delivery may still arrive before it counts as missing.
    pub fn new(recorder: Arc<Recorder>, timeout: Duration) -> Self {
        Tracker {
            recorder,
            timeout,
            inner: Mutex::new(Inner {
                pending: HashMap::new(),
                counts: DeliveryCounts::default(),
            }),
        }
    }

    /// A send is about to start: `others` members of `group` should receive `client_id`, and with
    /// `own_copy` the sender's own socket too.
    pub fn expect(&self, client_id: &str, group: usize, others: u32, own_copy: bool, started: Instant) {
        self.inner.lock().expect("tracker lock").pending.insert(
            client_id.to_owned(),
            Pending {
                started,
                group,
                own_copy,
                expected: others + u32::from(own_copy),
                confirmed: false,
                recipients: Vec::new(),
            },
        );
    }

    /// The send succeeded: its deliveries are owed.
    pub fn confirm(&self, client_id: &str) {
        let mut inner = self.inner.lock().expect("tracker lock");
        let Some(pending) = inner.pending.get_mut(client_id) else {
            return;
        };
        pending.confirmed = true;
        let (expected, done) = (pending.expected, pending.recipients.len() as u32 >= pending.expected);
        inner.counts.sends += 1;
        inner.counts.expected += u64::from(expected);
        if done {
            inner.pending.remove(client_id);
        }
    }

    /// The send failed: nothing is owed; anything that arrived anyway was not expected.
    pub fn cancel(&self, client_id: &str) {
        let mut inner = self.inner.lock().expect("tracker lock");
        if let Some(pending) = inner.pending.remove(client_id) {
            let arrived = pending.recipients.len() as u64;
            inner.counts.received -= arrived;
            inner.counts.late_or_unknown += arrived;
        }
    }

    /// A server event (one frame, or one event of a `batch`) reached the socket of user `recipient`.
    pub fn on_event(&self, recipient: usize, recipient_id: &str, event: &Value) {
        match event["type"].as_str() {
            Some("batch") => {
                for inner in event["events"].as_array().into_iter().flatten() {
                    self.on_event(recipient, recipient_id, inner);
                }
            }
            Some("message.new") => {
                let message = &event["message"];
                let client_id = message["clientMessageId"].as_str().unwrap_or_default();
                let own = message["senderId"].as_str() == Some(recipient_id);
                self.arrived(recipient, client_id, own, Instant::now());
            }
            _ => {}
        }
    }

    fn arrived(&self, recipient: usize, client_id: &str, own: bool, at: Instant) {
        let mut inner = self.inner.lock().expect("tracker lock");
        let owed_to_sender = inner.pending.get(client_id).is_some_and(|p| p.own_copy);
        if own && !owed_to_sender {
            inner.counts.echoes += 1;
            return;
        }
        let Some(pending) = inner.pending.get_mut(client_id) else {
            inner.counts.late_or_unknown += 1;
            return;
        };
        if pending.recipients.contains(&recipient) {
            inner.counts.duplicates += 1;
            return;
        }
        pending.recipients.push(recipient);
        let latency = at.saturating_duration_since(pending.started);
        let done = pending.confirmed && pending.recipients.len() as u32 >= pending.expected;
        inner.counts.received += 1;
        if done {
            inner.pending.remove(client_id);
        }
        drop(inner);
        self.recorder.record_delivery(latency);
    }

    /// Gives up on confirmed sends older than the timeout (their missing deliveries count as missing), so a
    /// soak's bookkeeping stays small.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.inner.lock().expect("tracker lock");
        let timeout = self.timeout;
        let mut missing = 0;
        inner.pending.retain(|_, p| {
            let keep = !p.confirmed || now.saturating_duration_since(p.started) < timeout;
            if !keep {
                missing += u64::from(p.expected.saturating_sub(p.recipients.len() as u32));
            }
            keep
        });
        inner.counts.missing += missing;
    }

    /// Sends of `group` still waiting for deliveries.
    pub fn pending_in(&self, group: usize) -> usize {
        let inner = self.inner.lock().expect("tracker lock");
        inner.pending.values().filter(|p| p.group == group).count()
    }

    pub fn pending(&self) -> usize {
        self.inner.lock().expect("tracker lock").pending.len()
    }

    /// The end of the run: whatever is still owed is missing.
    pub fn finish(&self) -> DeliveryCounts {
        let mut inner = self.inner.lock().expect("tracker lock");
        let mut missing = 0;
        for (_, p) in inner.pending.drain() {
            if p.confirmed {
                missing += u64::from(p.expected.saturating_sub(p.recipients.len() as u32));
            }
        }
        inner.counts.missing += missing;
        inner.counts
    }

    pub fn counts(&self) -> DeliveryCounts {
        self.inner.lock().expect("tracker lock").counts
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(client_id: &str, sender: &str) -> Value {
        json!({ "type": "message.new", "message": { "clientMessageId": client_id, "senderId": sender, "body": "x" } })
    }

    fn tracker() -> (Arc<Recorder>, Tracker) {
        let recorder = Arc::new(Recorder::new());
        (Arc::clone(&recorder), Tracker::new(recorder, Duration::from_secs(30)))
    }

    #[test]
    fn every_other_member_once() {
        let (recorder, tracker) = tracker();
        tracker.expect("m1", 0, 2, false, Instant::now());
        // Arrives before the HTTP response: still counted.
        tracker.on_event(1, "u1", &event("m1", "u0"));
        tracker.on_event(0, "u0", &event("m1", "u0"));
        tracker.confirm("m1");
        // The same event twice on one socket, inside a batch.
        tracker.on_event(
            1,
            "u1",
            &json!({ "type": "batch", "events": [event("m1", "u0"), { "type": "typing" }] }),
        );
        tracker.on_event(2, "u2", &event("m1", "u0"));
        assert_eq!(tracker.pending(), 0);
        let counts = tracker.finish();
        assert_eq!(
            counts,
            DeliveryCounts {
                sends: 1,
                expected: 2,
                received: 2,
                missing: 0,
                duplicates: 1,
                late_or_unknown: 0,
                echoes: 1,
            }
        );
        assert_eq!(recorder.delivery().len(), 2);
    }

    #[test]
    fn missing_failed_and_late() {
        let (_, tracker) = tracker();
        let long_ago = Instant::now();
        tracker.expect("m1", 0, 3, false, long_ago);
        tracker.confirm("m1");
        tracker.on_event(1, "u1", &event("m1", "u0"));
        tracker.expect("m2", 0, 3, false, Instant::now());
        tracker.on_event(1, "u1", &event("m2", "u0"));
        tracker.cancel("m2");
        assert_eq!(tracker.pending_in(0), 1);
        tracker.expire(long_ago + Duration::from_secs(31));
        assert_eq!(tracker.pending_in(0), 0);
        tracker.on_event(2, "u2", &event("m1", "u0"));
        let counts = tracker.finish();
        assert_eq!((counts.expected, counts.received, counts.missing), (3, 1, 2));
        assert_eq!(counts.late_or_unknown, 2);
    }

    #[test]
    fn an_http_send_owes_the_senders_own_socket_its_copy() {
        let (recorder, tracker) = tracker();
        // Over HTTP: user 0's own socket is owed the message too.
        tracker.expect("h1", 0, 2, true, Instant::now());
        tracker.on_event(0, "u0", &event("h1", "u0"));
        tracker.on_event(1, "u1", &event("h1", "u0"));
        tracker.confirm("h1");
        // The sender's copy again: a duplicate, not a second delivery.
        tracker.on_event(0, "u0", &event("h1", "u0"));
        assert_eq!(tracker.pending(), 1, "user 2 still owed");
        tracker.on_event(2, "u2", &event("h1", "u0"));
        // Over WebSocket: the sending connection is skipped, so nothing is owed to it.
        tracker.expect("w1", 0, 2, false, Instant::now());
        tracker.confirm("w1");
        tracker.on_event(1, "u1", &event("w1", "u0"));
        let counts = tracker.finish();
        assert_eq!(
            (counts.sends, counts.expected, counts.received, counts.missing),
            (2, 5, 4, 1)
        );
        assert_eq!((counts.duplicates, counts.echoes), (1, 0));
        assert_eq!(recorder.delivery().len(), 4);
    }
}
