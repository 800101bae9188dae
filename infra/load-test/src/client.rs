//! Parley's HTTP API as the virtual users call it: one method per route, each timed and recorded.
//!
//! Latency is from just before the request is sent to the last byte of the response body, which is what
//! a client waits for. The open loop's measured requests go through an unrecorded `Api`: its scheduler
//! times every arrival itself (HTTP and WebSocket alike) and records how each one ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::stats::{route, Outcome, Recorder};

/// A failed call, as far as the virtual user cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Status(u16, String),
    Transport(String),
    /// No answer within the client's time-out.
    TimedOut,
}

impl CallError {
    /// How the call ended, as the statistics count it.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::Status(status, _) => Outcome::Status(*status),
            CallError::Transport(_) => Outcome::Transport,
            CallError::TimedOut => Outcome::TimedOut,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status(status, body) => write!(f, "HTTP {status}: {body}"),
            CallError::Transport(e) => write!(f, "transport: {e}"),
            CallError::TimedOut => write!(f, "timed out"),
        }
    }
}

/// Tokens of a signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
    /// When the access token should be refreshed (80 % of its life).
    pub refresh_at: Instant,
}

impl Session {
    fn from_reply(user_id: String, reply: &Value) -> Result<Self, CallError> {
        let field = |name: &str| {
            reply[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| CallError::Status(200, format!("no {name} in {reply}")))
        };
        let lifetime = Duration::from_secs(reply["expiresIn"].as_u64().unwrap_or(900));
        Ok(Session {
            user_id,
            access: field("accessToken")?,
            refresh: field("refreshToken")?,
            refresh_at: Instant::now() + lifetime.mul_f64(0.8),
        })
    }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// None: the caller times and records the calls itself.
    recorder: Option<Arc<Recorder>>,
}

/// The one HTTP client of a run. Proxies from the environment and redirects are off: either could send a
/// request somewhere other than the checked target.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Api {
    pub fn new(http: reqwest::Client, base: &str, recorder: Arc<Recorder>) -> Self {
        Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
            recorder: Some(recorder),
        }
    }

    /// An `Api` that records nothing: for callers that time and record each call themselves.
    pub fn unrecorded(http: reqwest::Client, base: &str) -> Self {
        Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
            recorder: None,
        }
    }

    fn record(&self, route: &'static str, latency: Duration, outcome: Outcome) {
        if let Some(recorder) = &self.recorder {
            recorder.record(route, latency, outcome);
        }
    }

    async fn call(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let result = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(bytes) => Ok((status, bytes)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let latency = started.elapsed();
        match result {
            Ok((status, bytes)) => {
                self.record(route, latency, Outcome::Status(status.as_u16()));
                if status.is_success() {
                    if bytes.is_empty() || status == StatusCode::NO_CONTENT {
                        return Ok(Value::Null);
                    }
                    serde_json::from_slice(&bytes)
                        .map_err(|e| CallError::Status(status.as_u16(), format!("unreadable JSON: {e}")))
                } else {
                    let text = String::from_utf8_lossy(&bytes);
                    Err(CallError::Status(status.as_u16(), text.chars().take(300).collect()))
                }
            }
            Err(e) if e.is_timeout() => {
                self.record(route, latency, Outcome::TimedOut);
                Err(CallError::TimedOut)
            }
            Err(e) => {
                self.record(route, latency, Outcome::Transport);
                Err(CallError::Transport(e.to_string()))
            }
        }
    }

    /// Registers `username`; when it is taken (a run id used again), logs in instead.
    pub async fn sign_up_or_in(&self, username: &str, password: &str) -> Result<Session, CallError> {
        let credentials = json!({ "username": username, "password": password });
        let reply = match self
            .call(
                route::REGISTER,
                Method::POST,
                "/auth/register",
                None,
                Some(&credentials),
            )
            .await
        {
            Err(CallError::Status(409, _)) => {
                self.call(route::LOGIN, Method::POST, "/auth/login", None, Some(&credentials))
                    .await?
            }
            other => other?,
        };
        let user_id = reply["user"]["id"]
            .as_str()
            .ok_or_else(|| CallError::Status(200, format!("no user.id in {reply}")))?
            .to_owned();
        Session::from_reply(user_id, &reply)
    }

    /// A fresh access token (and the rotated refresh token).
    pub async fn refresh(&self, session: &Session) -> Result<Session, CallError> {
        let body = json!({ "refreshToken": session.refresh });
        let reply = self
            .call(route::REFRESH, Method::POST, "/auth/refresh", None, Some(&body))
            .await?;
        Session::from_reply(session.user_id.clone(), &reply)
    }

    /// Creates a group of the caller and `members`; its id.
    pub async fn create_group(&self, token: &str, name: &str, members: &[String]) -> Result<String, CallError> {
        let body = json!({ "type": "group", "name": name, "memberIds": members });
        let reply = self
            .call(
                route::CREATE_GROUP,
                Method::POST,
                "/conversations",
                Some(token),
                Some(&body),
            )
            .await?;
        reply["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CallError::Status(201, format!("no id in {reply}")))
    }

    pub async fn list_conversations(&self, token: &str) -> Result<Value, CallError> {
        self.call(route::LIST, Method::GET, "/conversations?limit=20", Some(token), None)
            .await
    }

    pub async fn history(&self, token: &str, conversation: &str) -> Result<Value, CallError> {
        let path = format!("/conversations/{conversation}/messages?limit=50");
        self.call(route::HISTORY, Method::GET, &path, Some(token), None).await
    }

    pub async fn send(&self, token: &str, conversation: &str, client_id: &str, body: &str) -> Result<Value, CallError> {
        let path = format!("/conversations/{conversation}/messages");
        let body = json!({ "clientMessageId": client_id, "body": body });
        self.call(route::SEND, Method::POST, &path, Some(token), Some(&body))
            .await
    }
}
