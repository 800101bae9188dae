//! One virtual user: signs up (or in), holds one WebSocket, and chats in its group with think time between
//! actions: history three times as often as a send, and the conversation list as often as a send.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::{Api, CallError, Session};
use crate::delivery::Tracker;
use crate::stats::{route, Outcome, Recorder};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What every user of a run shares.
pub struct RunContext {
    pub api: Api,
    pub ws_base: String,
    pub recorder: Arc<Recorder>,
    pub tracker: Arc<Tracker>,
    pub run_id: String,
    pub think: Duration,
    /// How often a socket sends `{"action":"ping"}` (keeps it inside the 10-minute idle limit).
    pub heartbeat: Duration,
    /// How long a send's deliveries may take before they count as missing.
    pub delivery_timeout: Duration,
    /// Users chatting right now.
    pub active: AtomicUsize,
    /// Sockets that closed under a user and were opened again.
    pub reconnects: AtomicU64,
    /// Users that could not get set up (sign-up, socket or group creation failed).
    pub setup_failures: AtomicU64,
    /// Sign-ups in flight at once. Each one is an argon2 hash (tens of milliseconds of a core): a ramp
    /// of hundreds a second queues them for longer than the request timeout, and the users fail as
    /// transport errors before they ever chat. People sign up over days, not seconds; the load test
    /// bounds them so it measures chatting.
    pub signups: tokio::sync::Semaphore,
}

/// Sign-ups in flight at once (see [`RunContext::signups`]).
pub const CONCURRENT_SIGNUPS: usize = 8;
/// A sign-up that got no answer or a 5xx is tried again this many times, as an app would.
const SIGNUP_ATTEMPTS: u32 = 3;

/// The password of every virtual user (8..=128 characters).
pub const PASSWORD: &str = "load-test-password";

/// A small, fast PRNG (xorshift64*): think times and action choices need no quality beyond "not in step".
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a user does after a pause: weights 3 (history) : 1 (send) : 1 (list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    History,
    Send,
    List,
}

impl Action {
    pub fn pick(rng: &mut Rng) -> Action {
        match rng.next_u64() % 5 {
            0..=2 => Action::History,
            3 => Action::Send,
            _ => Action::List,
        }
    }
}

/// A signed-in user of the run.
pub struct Member {
    /// The user's number in the run (also its place in the group partition).
    pub index: usize,
    pub user_id: String,
    pub session: Arc<Mutex<Session>>,
}

impl Member {
    pub fn username(run_id: &str, index: usize) -> String {
        format!("lt{run_id}_{index}")
    }

    pub async fn sign_in(context: &RunContext, index: usize) -> Result<Member, CallError> {
        let _permit = context
            .signups
            .acquire()
            .await
            .expect("the sign-up semaphore is never closed");
        let username = Self::username(&context.run_id, index);
        let mut attempt = 1;
        let session = loop {
            match context.api.sign_up_or_in(&username, PASSWORD).await {
                Err(CallError::Transport(_) | CallError::TimedOut | CallError::Status(500..=599, _))
                    if attempt < SIGNUP_ATTEMPTS =>
                {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        Ok(Member {
            index,
            user_id: session.user_id.clone(),
            session: Arc::new(Mutex::new(session)),
        })
    }

    pub fn token(&self) -> String {
        self.session.lock().expect("session lock").access.clone()
    }

    /// The access token, refreshed first when it is near its end (soaks outlive the 15-minute tokens).
    pub async fn fresh_token(&self, context: &RunContext) -> String {
        let current = self.session.lock().expect("session lock").clone();
        if Instant::now() < current.refresh_at {
            return current.access;
        }
        match context.api.refresh(&current).await {
            Ok(renewed) => {
                let token = renewed.access.clone();
                *self.session.lock().expect("session lock") = renewed;
                token
            }
            // Recorded as an error already; the old token may still have a little life left.
            Err(_) => current.access,
        }
    }
}

/// Opens `ws_base/?token=...`, recording the upgrade (the `$connect` authorizer and function) as a request.
pub async fn connect(context: &RunContext, token: &str) -> Result<Socket, CallError> {
    let url = format!("{}/?token={token}", context.ws_base);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::connect_async(url)).await;
    let latency = started.elapsed();
    match result {
        Ok(Ok((socket, response))) => {
            context
                .recorder
                .record(route::WS_CONNECT, latency, Outcome::Status(response.status().as_u16()));
            Ok(socket)
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            context
                .recorder
                .record(route::WS_CONNECT, latency, Outcome::Status(status));
            Err(CallError::Status(status, "WebSocket upgrade refused".to_owned()))
        }
        Ok(Err(e)) => {
            context.recorder.record(route::WS_CONNECT, latency, Outcome::Transport);
            Err(CallError::Transport(e.to_string()))
        }
        Err(_) => {
            context.recorder.record(route::WS_CONNECT, latency, Outcome::TimedOut);
            Err(CallError::TimedOut)
        }
    }
}

/// The chat loop, until `stop` turns true: pause, then one action.
pub async fn chat(
    context: Arc<RunContext>,
    member: Arc<Member>,
    group: usize,
    conversation: String,
    others: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(member.index as u64 ^ 0x5eed);
    let mut sent = 0u64;
    while !*stop.borrow() {
        let pause = context.think.mul_f64(0.5 + rng.unit());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let token = member.fresh_token(&context).await;
        // Errors are recorded by the client; a user carries on after one, as a person would retry.
        match Action::pick(&mut rng) {
            Action::History => {
                let _ = context.api.history(&token, &conversation).await;
            }
            Action::List => {
                let _ = context.api.list_conversations(&token).await;
            }
            Action::Send => {
                sent += 1;
                let client_id = format!("{}-{}-{sent}", context.run_id, member.index);
                let body = format!(
                    "Message {sent} from virtual user {} of run {}: an ordinary line of chat.",
                    member.index, context.run_id
                );
                context.tracker.expect(&client_id, group, others, false, Instant::now());
                match context.api.send(&token, &conversation, &client_id, &body).await {
                    Ok(_) => context.tracker.confirm(&client_id),
                    Err(_) => context.tracker.cancel(&client_id),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_mix_is_three_to_one_to_one() {
        let mut rng = Rng::new(7);
        let (mut history, mut send, mut list) = (0, 0, 0);
        for _ in 0..50_000 {
            match Action::pick(&mut rng) {
                Action::History => history += 1,
                Action::Send => send += 1,
                Action::List => list += 1,
            }
        }
        let ratio = history as f64 / send as f64;
        assert!((2.8..3.2).contains(&ratio), "history/send {ratio}");
        let ratio = list as f64 / send as f64;
        assert!((0.9..1.1).contains(&ratio), "list/send {ratio}");
        let unit: Vec<f64> = (0..1000).map(|_| rng.unit()).collect();
        assert!(unit.iter().all(|u| (0.0..1.0).contains(u)));
    }

    #[test]
    fn usernames_fit_the_api() {
        let name = Member::username("k3x9a1", 123_456);
        assert!((3..=32).contains(&name.len()));
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)));
    }
}
