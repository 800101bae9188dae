//! A group of virtual users: they sign up, open their sockets, one of them creates the group conversation
//! with the others, then all chat in it until the group is stopped.
//!
//! Users start and stop a whole group at a time. Every socket is open before the conversation exists
//! and stays open until the group's last sends have been delivered (or given up on), so "every other
//! member receives every message" is exactly what to expect of the backend.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::socket::hold_socket;
use crate::user::{chat, connect, Member, RunContext};

pub struct GroupHandle {
    pub index: usize,
    /// The run's user numbers in this group.
    pub users: Range<usize>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl GroupHandle {
    pub fn spawn(context: Arc<RunContext>, index: usize, users: Range<usize>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(context, index, users.clone(), stopped));
        GroupHandle {
            index,
            users,
            stop,
            task,
        }
    }

    /// Asks the users to finish their current action and leave; `join` waits for it.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub async fn join(self) {
        self.stop();
        let _ = self.task.await;
    }
}

async fn run(context: Arc<RunContext>, index: usize, users: Range<usize>, mut stop: watch::Receiver<bool>) {
    let wanted = users.len() as u64;
    let failed = |n: usize| {
        context.setup_failures.fetch_add(n as u64, Ordering::Relaxed);
    };

    let signed_in = join_all(users.map(|i| Member::sign_in(&context, i))).await;
    let members: Vec<Member> = signed_in.into_iter().filter_map(Result::ok).collect();
    failed(wanted as usize - members.len());
    if *stop.borrow() || members.is_empty() {
        return;
    }

    let sockets = join_all(members.iter().map(|m| {
        let token = m.token();
        let context = &context;
        async move { connect(context, &token).await }
    }))
    .await;
    let mut connected = Vec::new();
    for (member, socket) in members.into_iter().zip(sockets) {
        match socket {
            Ok(socket) => connected.push((Arc::new(member), socket)),
            Err(_) => failed(1),
        }
    }
    if *stop.borrow() || connected.is_empty() {
        return;
    }

    let creator = &connected[0].0;
    let others: Vec<String> = connected[1..].iter().map(|(m, _)| m.user_id.clone()).collect();
    let name = format!("load test {} group {index}", context.run_id);
    let conversation = match context.api.create_group(&creator.token(), &name, &others).await {
        Ok(id) => id,
        Err(_) => {
            failed(connected.len());
            return;
        }
    };

    let (close, closed) = watch::channel(false);
    let mut sockets = Vec::new();
    let mut chatters = Vec::new();
    let size = connected.len();
    for (member, socket) in connected {
        sockets.push(tokio::spawn(hold_socket(
            Arc::clone(&context),
            Arc::clone(&member),
            socket,
            closed.clone(),
        )));
        chatters.push(tokio::spawn(chat(
            Arc::clone(&context),
            member,
            index,
            conversation.clone(),
            size as u32 - 1,
            stop.clone(),
        )));
    }
    context.active.fetch_add(size, Ordering::Relaxed);
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    join_all(chatters).await;
    context.active.fetch_sub(size, Ordering::Relaxed);

    // Let the group's last messages arrive before the sockets go.
    let deadline = Instant::now() + context.delivery_timeout;
    while context.tracker.pending_in(index) > 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = close.send(true);
    join_all(sockets).await;
}
