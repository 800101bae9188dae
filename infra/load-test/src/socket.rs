//! A user's WebSocket, held open for the whole run: every event goes to the delivery tracker, pongs are
//! timed, a socket that closes under the user is opened again (as a client app would), and frames other
//! tasks hand over through the [`SocketLink`] are sent, their `ack`s handed back.
//!
//! One task owns the socket, so reads and writes never contend for it; open-loop arrivals that send a
//! `sendMessage` talk to that task through the link.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client::CallError;
use crate::stats::{route, Outcome};
use crate::user::{connect, Member, RunContext, Socket};

/// Reads the member's socket until `close` turns true (see [`hold`]); the closed loop sends nothing over
/// it but pings.
pub async fn hold_socket(context: Arc<RunContext>, member: Arc<Member>, socket: Socket, close: watch::Receiver<bool>) {
    let (link, frames) = SocketLink::new();
    hold(context, member, socket, link, frames, close).await;
}

/// A `sendMessage` waiting for its answer.
struct PendingAck {
    client_id: String,
    reply: oneshot::Sender<Result<(), CallError>>,
}

/// The way into a held socket: frames to send, and the `sendMessage` frames waiting for an answer, in the
/// order they were sent.
pub struct SocketLink {
    outgoing: mpsc::UnboundedSender<String>,
    waiting: Mutex<VecDeque<PendingAck>>,
}

impl SocketLink {
    /// The link, and the receiving end of its frames for [`hold`].
    pub fn new() -> (Arc<SocketLink>, mpsc::UnboundedReceiver<String>) {
        let (outgoing, frames) = mpsc::unbounded_channel();
        let link = SocketLink {
            outgoing,
            waiting: Mutex::new(VecDeque::new()),
        };
        (Arc::new(link), frames)
    }

    /// Sends a `sendMessage` frame and waits for its `ack` (Ok) or error frame (the status the same error
    /// has on the HTTP API). The caller bounds the wait: dropping the future forgets the frame.
    pub async fn send_message(&self, conversation: &str, client_id: &str, body: &str) -> Result<(), CallError> {
        let frame = json!({
            "action": "sendMessage",
            "conversationId": conversation,
            "clientMessageId": client_id,
            "body": body,
        })
        .to_string();
        let (reply, answer) = oneshot::channel();
        {
            // Queued and registered under one lock, so the waiting list is in the order the frames go out:
            // an error frame names no `clientMessageId`, and is matched to the oldest frame still waiting.
            let mut waiting = self.waiting.lock().expect("socket link lock");
            waiting.retain(|p| !p.reply.is_closed());
            if self.outgoing.send(frame).is_err() {
                return Err(CallError::Transport("the socket is closed".to_owned()));
            }
            waiting.push_back(PendingAck {
                client_id: client_id.to_owned(),
                reply,
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(CallError::Transport("the socket closed before the ack".to_owned())))
    }

    fn acknowledged(&self, client_id: &str) {
        let mut waiting = self.waiting.lock().expect("socket link lock");
        if let Some(at) = waiting.iter().position(|p| p.client_id == client_id) {
            let pending = waiting.remove(at).expect("a position inside the list");
            let _ = pending.reply.send(Ok(()));
        }
    }

    fn refused(&self, status: u16, message: String) {
        let oldest = self.waiting.lock().expect("socket link lock").pop_front();
        if let Some(pending) = oldest {
            let _ = pending.reply.send(Err(CallError::Status(status, message)));
        }
    }

    /// The socket closed: nothing sent on it will be answered.
    fn closed(&self) {
        let waiting: Vec<PendingAck> = self.waiting.lock().expect("socket link lock").drain(..).collect();
        for pending in waiting {
            let _ = pending
                .reply
                .send(Err(CallError::Transport("the socket closed before the ack".to_owned())));
        }
    }
}

/// The HTTP status docs/API-GUIDE.md "Errors" gives an error `code` (an error frame carries the code, not the status).
pub fn status_of_error_code(code: &str) -> u16 {
    match code {
        "validation_failed" | "invalid_json" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "not_found" => 404,
        "conflict" => 409,
        "payload_too_large" => 413,
        "unsupported_media_type" => 415,
        "rate_limited" => 429,
        "unavailable" => 503,
        _ => 500,
    }
}

/// Reads the member's socket until `close` turns true (see the module's notes).
pub async fn hold(
    context: Arc<RunContext>,
    member: Arc<Member>,
    mut socket: Socket,
    link: Arc<SocketLink>,
    mut frames: mpsc::UnboundedReceiver<String>,
    mut close: watch::Receiver<bool>,
) {
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + context.heartbeat, context.heartbeat);
    let mut ping_started: Option<Instant> = None;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
                    match event["type"].as_str() {
                        Some("pong") => {
                            if let Some(started) = ping_started.take() {
                                context.recorder.record(route::WS_PING, started.elapsed(), Outcome::Status(200));
                            }
                        }
                        Some("ack") => {
                            if let Some(client_id) = event["clientMessageId"].as_str() {
                                link.acknowledged(client_id);
                            }
                        }
                        Some("error") => link.refused(
                            status_of_error_code(event["error"]["code"].as_str().unwrap_or_default()),
                            event["error"]["message"].as_str().unwrap_or_default().to_owned(),
                        ),
                        // API Gateway's own frame when a route's function failed: a 502 on the HTTP API.
                        None if event.get("connectionId").is_some() && event.get("message").is_some() => {
                            link.refused(502, event["message"].as_str().unwrap_or_default().to_owned());
                        }
                        _ => context.tracker.on_event(member.index, &member.user_id, &event),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    link.closed();
                    if *close.borrow() {
                        return;
                    }
                    match reopen(&context, &member, &mut close).await {
                        Some(reopened) => {
                            socket = reopened;
                            context.reconnects.fetch_add(1, Ordering::Relaxed);
                            ping_started = None;
                        }
                        None => return,
                    }
                }
            },
            Some(frame) = frames.recv() => {
                // A failed write shows up as the socket's end on the next read.
                let _ = socket.send(Message::text(frame)).await;
            }
            _ = heartbeat.tick() => {
                if ping_started.is_some() {
                    // No pong for a whole heartbeat: count it as lost.
                    context.recorder.record(route::WS_PING, context.heartbeat, Outcome::Transport);
                }
                ping_started = Some(Instant::now());
                let _ = socket.send(Message::text(json!({ "action": "ping" }).to_string())).await;
            }
            _ = close.changed() => {
                let _ = socket.close(None).await;
                // Read to the server's close, so its $disconnect has started before the run ends.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = socket.next().await {}
                })
                .await;
                link.closed();
                return;
            }
        }
    }
}

/// Opens the socket again with a fresh token, backing off, until it works or `close` is set.
async fn reopen(context: &RunContext, member: &Member, close: &mut watch::Receiver<bool>) -> Option<Socket> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let token = member.fresh_token(context).await;
        if let Ok(socket) = connect(context, &token).await {
            return Some(socket);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = close.changed() => return None,
        }
        if *close.borrow() {
            return None;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_api_statuses() {
        assert_eq!(status_of_error_code("rate_limited"), 429);
        assert_eq!(status_of_error_code("validation_failed"), 400);
        assert_eq!(status_of_error_code("unavailable"), 503);
        assert_eq!(status_of_error_code("something new"), 500);
    }

    #[tokio::test]
    async fn acks_match_by_client_id_and_errors_the_oldest_waiting() {
        let (link, mut frames) = SocketLink::new();
        let first = tokio::spawn({
            let link = Arc::clone(&link);
            async move { link.send_message("c", "a", "x").await }
        });
        // The frame goes out before anyone answers it.
        let frame: Value = serde_json::from_str(&frames.recv().await.unwrap()).unwrap();
        assert_eq!(
            (frame["action"].as_str(), frame["clientMessageId"].as_str()),
            (Some("sendMessage"), Some("a"))
        );
        let second = tokio::spawn({
            let link = Arc::clone(&link);
            async move { link.send_message("c", "b", "y").await }
        });
        frames.recv().await.unwrap();
        link.acknowledged("b");
        assert_eq!(second.await.unwrap(), Ok(()));
        link.refused(429, "slow down".to_owned());
        assert_eq!(
            first.await.unwrap(),
            Err(CallError::Status(429, "slow down".to_owned()))
        );
        let third = tokio::spawn({
            let link = Arc::clone(&link);
            async move { link.send_message("c", "c", "z").await }
        });
        frames.recv().await.unwrap();
        link.closed();
        assert!(matches!(third.await.unwrap(), Err(CallError::Transport(_))));
    }
}
