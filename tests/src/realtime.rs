//! Real-time test clients: users registered over HTTP, real WebSocket connections, frames read with a
//! deadline and `batch` frames opened, on any [`Stack`].

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::Stack;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// Clients of one stack.
#[derive(Clone, Copy)]
pub struct Clients {
    pub stack: &'static Stack,
}

impl Clients {
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let answer = self.stack.call(method, path, token, body).await;
        (answer.status, answer.body)
    }

    pub async fn user(&self, prefix: &str) -> User {
        let username = format!("{prefix}{}", &ulid::Ulid::generate().to_string()[18..].to_lowercase());
        let (status, body) = self
            .call(
                "POST",
                "/auth/register",
                None,
                Some(json!({ "username": username, "password": "real time!" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn connect_with(&self, query: &str) -> Result<Socket, u16> {
        let request = format!("{}/?{query}", self.stack.ws_url).into_client_request().unwrap();
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("WebSocket error: {e}"),
        }
    }

    pub async fn connect(&self, user: &User) -> Socket {
        self.connect_with(&format!("token={}", user.token))
            .await
            .expect("connected")
    }

    pub async fn group(&self, owner: &User, members: &[&User]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let (status, body) = self
            .call(
                "POST",
                "/conversations",
                Some(&owner.token),
                Some(json!({ "type": "group", "name": "rt", "memberIds": ids })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn http_send(&self, sender: &User, conversation: &str, client_id: &str, body: &str) -> Value {
        let (status, message) = self
            .call(
                "POST",
                &format!("/conversations/{conversation}/messages"),
                Some(&sender.token),
                Some(json!({ "clientMessageId": client_id, "body": body })),
            )
            .await;
        assert_eq!(status, 201, "{message}");
        message
    }
}

/// The next text frame, within 15 s.
pub async fn next(socket: &mut Socket) -> Value {
    next_within(socket, Duration::from_secs(15))
        .await
        .expect("a frame within the deadline")
}

/// The first event (of the frames that come, `batch` frames unpacked) that `want` accepts; the events
/// before it, and the others of its frame, are passed over.
pub async fn until(socket: &mut Socket, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        for event in events_of(next(socket).await) {
            if want(&event) {
                return event;
            }
        }
    }
}

/// The next text frame, or None when none comes within `wait`. A frame that only announces a new
/// conversation is skipped: a socket opened just after a conversation was created may or may not get
/// its `conversation.created` (the worker reads the connections when it delivers), and the tests that
/// use this read what comes after. [`next_frame_within`] sees every frame.
pub async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_frame_within(socket, left).await?;
        if !events_of(frame.clone())
            .iter()
            .all(|e| e["type"] == "conversation.created")
        {
            return Some(frame);
        }
    }
}

/// The next text frame, whatever it is, or None when none comes within `wait`. Every frame is checked
/// against asyncapi.yaml ([`crate::contract_ws::check_ws_frame`]).
pub async fn next_frame_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.ok()?;
        match frame.expect("open").expect("valid") {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                crate::contract_ws::check_ws_frame(&frame);
                return Some(frame);
            }
            Message::Close(close) => panic!("closed: {close:?}"),
            _ => continue,
        }
    }
}

/// The next `count` events of `kind` on `socket`, within 15 s: other events are skipped, and every
/// event of a `batch` frame is looked at (several of one kind can come in one frame).
pub async fn events_of_kind(socket: &mut Socket, kind: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut found = Vec::new();
    while found.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_frame_within(socket, left)
            .await
            .unwrap_or_else(|| panic!("{} of {count} {kind} events within 15 s: {found:?}", found.len()));
        found.extend(events_of(frame).into_iter().filter(|e| e["type"] == kind));
    }
    found
}

/// Events of a frame: a `batch` is opened.
pub fn events_of(frame: Value) -> Vec<Value> {
    if frame["type"] == "batch" {
        frame["events"].as_array().unwrap().clone()
    } else {
        vec![frame]
    }
}

/// Nothing but a late `conversation.created` (see [`next_within`]) arrives for `for_ms`.
pub async fn silent(socket: &mut Socket, for_ms: u64) {
    if let Some(frame) = next_within(socket, Duration::from_millis(for_ms)).await {
        panic!("expected nothing, got {frame}");
    }
}

pub async fn send_frame(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}
