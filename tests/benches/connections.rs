//! `cargo bench -p parley-tests --bench connections`: how many concurrent WebSocket clients the local stack
//! holds on this machine, and the memory each costs.
//!
//! The local stack (the real template, in-memory DynamoDB Local, the function binaries as built: debug by
//! default) runs in this process. The clients run in a child process (this same executable, started with
//! `PARLEY_CONNECTIONS_CLIENT=1`), so this process's resident memory is the gateway's (with its log book and
//! bookkeeping), not the clients', and each side has its own file-descriptor budget. The parent tells the
//! child what to do over stdin, one line at a time; the child answers on stdout.
//!
//! Users are written straight to the stack's table and given tokens signed with the local secret (as the
//! realtime bench does); the connections are spread evenly over them. Connections are opened in steps
//! (1k, 2k, 5k, 10k, 20k, 50k, ... up to the cap); at each step a sample of the connections is asked
//! `{"action":"ping"}` and must answer `pong`, and the resident memory of the gateway (this process), of
//! the function instances (its children other than java and the client) and of DynamoDB Local is read
//! from /proc. Bytes per connection = growth since the baseline (users written, log book full, no
//! connection) / connections held.
//!
//! Settings (environment): `CONNECTIONS_MAX` (cap, default 10000), `CONNECTIONS_USERS` (default 100),
//! `CONNECTIONS_PROFILE` (`debug` or `release` function binaries, default debug; nothing is built, so
//! build first: `cargo build --workspace --bins` or with `--release`), `CONNECTIONS_PARALLEL` (upgrades in
//! flight, default 64), `CONNECTIONS_PING_SAMPLE` (default 200).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use local_stack::{LocalStack, Options, Profile, LOCAL_TOKEN_SECRET};
use parley::auth::tokens::TokenKeys;
use parley::config::Config;
use parley::AppContext;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const CLIENT_ENV: &str = "PARLEY_CONNECTIONS_CLIENT";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---- file descriptors: the soft limit up to what is allowed (no libc dependency in this crate) ----

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
}

const RLIMIT_NOFILE: i32 = 7;

/// Raises the open-files limit to `wanted` (the hard limit too, when allowed), else the soft limit to the
/// hard one. Returns (soft, hard) afterwards.
fn raise_fd_limit(wanted: u64) -> (u64, u64) {
    let mut limit = Rlimit { cur: 0, max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a struct of the kernel's layout (two u64 on Linux).
    unsafe {
        getrlimit(RLIMIT_NOFILE, &mut limit);
        if limit.cur < wanted {
            let raised = Rlimit {
                cur: wanted.max(limit.cur),
                max: wanted.max(limit.max),
            };
            if setrlimit(RLIMIT_NOFILE, &raised) != 0 {
                let soft = Rlimit {
                    cur: limit.max,
                    max: limit.max,
                };
                setrlimit(RLIMIT_NOFILE, &soft);
            }
        }
        getrlimit(RLIMIT_NOFILE, &mut limit);
    }
    (limit.cur, limit.max)
}

// ---- /proc ----
//
// At the limit this process has no file descriptor to spare, so the status files of the processes
// measured are kept open from the first reading on and re-read in place (procfs regenerates them).

#[derive(Default)]
struct Procs {
    status: HashMap<u32, (String, std::fs::File)>,
}

impl Procs {
    /// VmRSS of `pid` in KiB, from its kept-open status file (opened now if it is new).
    fn rss_kib(&mut self, pid: u32, comm: &str) -> u64 {
        let file = match self.status.entry(pid) {
            std::collections::hash_map::Entry::Occupied(known) => &known.into_mut().1,
            std::collections::hash_map::Entry::Vacant(new) => {
                match std::fs::File::open(format!("/proc/{pid}/status")) {
                    Ok(file) => &new.insert((comm.to_owned(), file)).1,
                    Err(_) => return 0,
                }
            }
        };
        let mut buffer = vec![0u8; 8192];
        let read = file.read_at(&mut buffer, 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&buffer[..read]);
        text.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// (pid, comm) of the children of `parent`: from /proc when it can be listed, else the ones known.
    fn children(&mut self, parent: u32) -> Vec<(u32, String)> {
        match children(parent) {
            Some(found) => found,
            None => self
                .status
                .iter()
                .filter(|(pid, _)| **pid != parent)
                .map(|(pid, (comm, _))| (*pid, comm.clone()))
                .collect(),
        }
    }
}

/// Open descriptors of this process, or None when even that cannot be opened.
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// (pid, comm) of this process's children; None when /proc cannot be read (no descriptor left).
fn children(parent: u32) -> Option<Vec<(u32, String)>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push((pid, comm));
        }
    }
    Some(found)
}

#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    gateway_kib: u64,
    functions_kib: u64,
    function_instances: usize,
    dynamodb_kib: u64,
    client_kib: u64,
    gateway_fds: Option<usize>,
}

fn memory(procs: &mut Procs, client_pid: u32) -> Memory {
    let me = std::process::id();
    let mut m = Memory {
        gateway_kib: procs.rss_kib(me, "gateway"),
        gateway_fds: open_fds(),
        client_kib: procs.rss_kib(client_pid, "client"),
        ..Memory::default()
    };
    for (pid, comm) in procs.children(me) {
        if pid == client_pid || pid == me {
            continue;
        }
        let rss = procs.rss_kib(pid, &comm);
        if rss == 0 {
            continue; // gone
        }
        if comm == "java" {
            m.dynamodb_kib += rss;
        } else {
            m.functions_kib += rss;
            m.function_instances += 1;
        }
    }
    m
}

fn fds(m: &Memory) -> String {
    m.gateway_fds
        .map(|n| n.to_string())
        .unwrap_or_else(|| "none left".to_owned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

// ---- the client process ----

struct Held {
    commands: mpsc::UnboundedSender<oneshot::Sender<Result<Duration, String>>>,
}

/// One connection's task: answers ping requests from the parent, notices when the server closes it.
async fn hold(
    mut socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    mut commands: mpsc::UnboundedReceiver<oneshot::Sender<Result<Duration, String>>>,
    closed: Arc<AtomicUsize>,
) {
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(reply) = command else { break };
                let started = Instant::now();
                if let Err(e) = socket.send(Message::text(r#"{"action":"ping"}"#)).await {
                    let _ = reply.send(Err(format!("send: {e}")));
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    loop {
                        match socket.next().await {
                            Some(Ok(Message::Text(text))) => {
                                let value: Value = serde_json::from_str(&text).unwrap_or_default();
                                if value["type"] == "pong" {
                                    return Ok(started.elapsed());
                                }
                            }
                            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Err(format!("read: {e}")),
                            None => return Err("closed".to_owned()),
                        }
                    }
                })
                .await
                .unwrap_or_else(|_| Err("no pong within 10 s".to_owned()));
                let failed = answer.is_err();
                let _ = reply.send(answer);
                if failed {
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = socket.close(None).await;
}

async fn client() {
    let (soft, hard) = raise_fd_limit(env_or::<u64>("CONNECTIONS_MAX", 10_000) + 4_096);
    let ws_url = std::env::var("PARLEY_WS_URL").expect("PARLEY_WS_URL");
    let parallel: usize = env_or("CONNECTIONS_PARALLEL", 64);
    let answer = |line: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").expect("stdout");
        out.flush().expect("stdout");
    };
    answer(&format!("ready {soft} {hard}"));
    // The parent's commands, read on a thread of their own (this crate's tokio has no stdin support).
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut tokens: Vec<String> = Vec::new();
    let mut held: Vec<Held> = Vec::new();
    let closed = Arc::new(AtomicUsize::new(0));
    while let Some(line) = lines.recv().await {
        let mut words = line.split_whitespace();
        let reply = match words.next() {
            Some("token") => {
                tokens.push(words.next().unwrap_or_default().to_owned());
                continue;
            }
            Some("open") => {
                let target: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let started = Instant::now();
                let mut failed = 0usize;
                let mut first_error = String::new();
                let mut in_flight = tokio::task::JoinSet::new();
                let mut next = held.len();
                let mut connect_ms: Vec<f64> = Vec::new();
                // Stop early when failures pile up: the limit is found.
                while (held.len() < target || !in_flight.is_empty()) && failed < 100 {
                    while held.len() + in_flight.len() < target && in_flight.len() < parallel {
                        let url = format!("{ws_url}/?token={}", tokens[next % tokens.len()]);
                        next += 1;
                        in_flight.spawn(async move {
                            let at = Instant::now();
                            let result =
                                tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
                                    .await
                                    .map_err(|_| "upgrade timed out after 10 s".to_owned())
                                    .and_then(|r| r.map_err(|e| e.to_string()));
                            (result.map(|(socket, _)| socket), at.elapsed())
                        });
                    }
                    match in_flight.join_next().await {
                        Some(Ok((Ok(socket), took))) => {
                            connect_ms.push(took.as_secs_f64() * 1000.0);
                            let (tx, rx) = mpsc::unbounded_channel();
                            tokio::spawn(hold(socket, rx, Arc::clone(&closed)));
                            held.push(Held { commands: tx });
                        }
                        Some(Ok((Err(e), _))) => {
                            failed += 1;
                            if first_error.is_empty() {
                                first_error = e;
                            }
                        }
                        Some(Err(e)) => {
                            failed += 1;
                            if first_error.is_empty() {
                                first_error = e.to_string();
                            }
                        }
                        None => break,
                    }
                }
                connect_ms.sort_by(f64::total_cmp);
                format!(
                    "opened {} {failed} {:.3} {:.1} {:.1} {}",
                    held.len(),
                    started.elapsed().as_secs_f64(),
                    percentile(&connect_ms, 0.5),
                    percentile(&connect_ms, 0.95),
                    first_error.replace('\n', " ")
                )
            }
            Some("ping") => {
                let sample: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(100);
                let sample = sample.min(held.len()).max(1);
                let mut waiting = Vec::new();
                for i in 0..sample {
                    let index = i * held.len() / sample;
                    let (tx, rx) = oneshot::channel();
                    if held[index].commands.send(tx).is_ok() {
                        waiting.push(rx);
                    }
                }
                let mut ok = Vec::new();
                let mut first_error = String::new();
                for rx in waiting {
                    match rx.await {
                        Ok(Ok(took)) => ok.push(took.as_secs_f64() * 1000.0),
                        Ok(Err(e)) => {
                            if first_error.is_empty() {
                                first_error = e
                            }
                        }
                        Err(_) => {
                            if first_error.is_empty() {
                                first_error = "the connection's task ended".to_owned()
                            }
                        }
                    }
                }
                ok.sort_by(f64::total_cmp);
                format!(
                    "pinged {} {sample} {:.1} {:.1} {} {}",
                    ok.len(),
                    percentile(&ok, 0.5),
                    ok.last().copied().unwrap_or(f64::NAN),
                    closed.load(Ordering::SeqCst),
                    first_error.replace('\n', " ")
                )
            }
            _ => break,
        };
        answer(&reply);
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

// ---- the parent: the stack, the steps, the measurements ----

struct Child {
    process: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Child {
    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the client process takes commands");
        self.stdin.flush().expect("flush");
    }

    fn hear(&mut self) -> String {
        self.stdout
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| "gone".to_owned())
    }

    /// A command and its answer, without blocking the runtime the gateway runs on.
    async fn ask(child: &Arc<std::sync::Mutex<Child>>, line: String) -> String {
        let child = Arc::clone(child);
        tokio::task::spawn_blocking(move || {
            let mut child = child.lock().unwrap();
            child.say(&line);
            child.hear()
        })
        .await
        .expect("the client thread")
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    if std::env::var_os(CLIENT_ENV).is_some() {
        client().await;
        return;
    }
    let cap: usize = env_or("CONNECTIONS_MAX", 10_000);
    // At most 20 open connections per user (docs/API-GUIDE.md "Limits"): enough users for the cap.
    let users: usize = env_or("CONNECTIONS_USERS", cap.div_ceil(20).max(100));
    let ping_sample: usize = env_or("CONNECTIONS_PING_SAMPLE", 200);
    let profile = match std::env::var("CONNECTIONS_PROFILE").as_deref() {
        Ok("release") => Profile::Release,
        _ => Profile::Debug,
    };
    let (soft, hard) = raise_fd_limit(cap as u64 + 4_096);
    println!(
        "connections: cap {cap}, {users} users, {profile:?} functions, {} cores, open files limit {soft} (hard {hard})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    let mut options = Options::for_tests(local_stack::workspace_template());
    options.profile = profile;
    options.build = false;
    // A run can outlast API Gateway's 10 minute idle timeout; the clients are idle between steps.
    options.limits.idle_timeout = Duration::from_secs(6 * 3600);
    options.limits.max_connection_duration = Duration::from_secs(6 * 3600);
    options
        .parameters
        .extend(parley_tests::RATE_LIMITS_OFF.map(|(name, value)| (name.to_owned(), value.to_owned())));
    let stack = LocalStack::start(options).await.expect("the local stack");
    let sdk = dynamodb_local::sdk_config(stack.dynamodb_endpoint().expect("DynamoDB Local")).await;
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("ChatTable".to_owned()),
        "TOKEN_SECRET" => Some(LOCAL_TOKEN_SECRET.to_owned()),
        _ => None,
    })
    .expect("configuration");
    let context = AppContext::new(config, &sdk);
    // Tokens for the whole run (a long run must not see them expire).
    let keys = TokenKeys::new(LOCAL_TOKEN_SECRET.as_bytes(), Duration::from_secs(12 * 3600));
    let mut tokens = Vec::with_capacity(users);
    for i in 0..users {
        let id = parley_tests::silent_user(&context.store, &format!("conn{i}")).await;
        tokens.push(keys.issue(&id, "bench", SystemTime::now()).expect("a token"));
    }

    // Fill the gateway's log book (it keeps the last 20,000 lines) before the baseline, so its growth is
    // not counted as the connections'. Each ping invocation logs a line or two.
    let ping_event = {
        let path = local_stack::workspace_template()
            .with_file_name("events")
            .join("ws-ping.json");
        let text = std::fs::read_to_string(&path).expect("events/ws-ping.json");
        serde_json::from_str::<Value>(&text).expect("JSON")
    };
    let stack = Arc::new(stack);
    let mut lines_before = 0;
    for _ in 0..100 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..400 {
            let (stack, event) = (Arc::clone(&stack), ping_event.clone());
            batch.spawn(async move { stack.invoke("ws-ping", &event).await.is_ok() });
        }
        batch.join_all().await;
        let lines = stack.logs().len();
        if lines == lines_before {
            break;
        }
        lines_before = lines;
    }
    println!("log book: {lines_before} lines before the baseline");

    // The client process.
    let mut process = std::process::Command::new(std::env::current_exe().expect("this executable"))
        .env(CLIENT_ENV, "1")
        .env("PARLEY_WS_URL", stack.ws_url())
        .env("CONNECTIONS_MAX", cap.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the client process");
    let client_pid = process.id();
    let stdin = process.stdin.take().expect("stdin");
    let stdout = std::io::BufReader::new(process.stdout.take().expect("stdout")).lines();
    let child = Arc::new(std::sync::Mutex::new(Child { process, stdin, stdout }));
    let ready = tokio::task::spawn_blocking({
        let child = Arc::clone(&child);
        move || child.lock().unwrap().hear()
    })
    .await
    .unwrap();
    println!("client process {client_pid}: {ready} (open files soft, hard)");
    {
        let mut child = child.lock().unwrap();
        for token in &tokens {
            child.say(&format!("token {token}"));
        }
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut procs = Procs::default();
    let baseline = memory(&mut procs, client_pid);
    println!(
        "baseline: gateway {:.1} MiB, {} function instances {:.1} MiB, DynamoDB Local {:.1} MiB, client {:.1} MiB, gateway fds {}",
        mib(baseline.gateway_kib),
        baseline.function_instances,
        mib(baseline.functions_kib),
        mib(baseline.dynamodb_kib),
        mib(baseline.client_kib),
        fds(&baseline)
    );

    let mut steps: VecDeque<usize> = [1_000usize, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
        .into_iter()
        .filter(|s| *s < cap)
        .collect();
    steps.push_back(cap);
    let mut rows = Vec::new();
    let mut stopped = None;
    let mut previous_held = 0usize;
    for step in steps {
        let answer = Child::ask(&child, format!("open {step}")).await;
        // opened <held> <failed> <secs> <p50 ms> <p95 ms> <first error...>
        let words: Vec<&str> = answer.splitn(7, ' ').collect();
        if words.first() != Some(&"opened") {
            stopped = Some(format!("the client process answered {answer:?}"));
            break;
        }
        let held: usize = words[1].parse().unwrap_or(0);
        let failed: usize = words[2].parse().unwrap_or(0);
        let secs: f64 = words[3].parse().unwrap_or(f64::NAN);
        let (connect_p50, connect_p95) = (words[4].to_owned(), words[5].to_owned());
        let error = words.get(6).copied().unwrap_or("").to_owned();
        let server_side = stack.open_connections();
        let pinged = Child::ask(&child, format!("ping {ping_sample}")).await;
        // pinged <ok> <sample> <p50 ms> <max ms> <closed so far> <first error...>
        let p: Vec<&str> = pinged.splitn(7, ' ').collect();
        let ping_ok: usize = p.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        let ping_n: usize = p.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        let closed: usize = p.get(5).and_then(|v| v.parse().ok()).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = memory(&mut procs, client_pid);
        let per_conn = |now: u64, base: u64| (now.saturating_sub(base) as f64 * 1024.0) / held.max(1) as f64;
        println!(
            "step {step}: held {held} (server {server_side}), failed {failed}, {secs:.1} s ({:.0}/s), upgrade p50 {connect_p50} ms p95 {connect_p95} ms; \
             ping {ping_ok}/{ping_n} p50 {} ms max {} ms, closed {closed}; gateway {:.1} MiB ({} fds), functions {} x {:.1} MiB, \
             DynamoDB Local {:.1} MiB, client {:.1} MiB{}",
            held.saturating_sub(previous_held) as f64 / secs,
            p.get(3).unwrap_or(&"?"),
            p.get(4).unwrap_or(&"?"),
            mib(m.gateway_kib),
            fds(&m),
            m.function_instances,
            mib(m.functions_kib),
            mib(m.dynamodb_kib),
            mib(m.client_kib),
            if error.is_empty() { String::new() } else { format!("; first error: {error}") }
        );
        let gateway_per_conn = per_conn(m.gateway_kib, baseline.gateway_kib);
        rows.push((held, server_side, ping_ok, ping_n, m, gateway_per_conn));
        previous_held = held;
        if held < step || ping_ok < ping_n || closed > 0 {
            stopped = Some(format!(
                "at step {step}: held {held}, {failed} failed upgrades (first: {error}); ping {ping_ok}/{ping_n}, {closed} closed ({}); \
                 gateway file descriptors: {} of {soft}",
                p.get(6).unwrap_or(&""),
                fds(&m)
            ));
            break;
        }
    }

    println!();
    println!("| connections held | server side | ping sample answered | gateway fds | gateway RSS (MiB) | gateway bytes/connection | function instances RSS (MiB) | DynamoDB Local RSS (MiB) | client process RSS (MiB) | client bytes/connection |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| 0 (baseline) | 0 | - | {} | {:.1} | - | {:.1} ({} instances) | {:.1} | {:.1} | - |",
        fds(&baseline),
        mib(baseline.gateway_kib),
        mib(baseline.functions_kib),
        baseline.function_instances,
        mib(baseline.dynamodb_kib),
        mib(baseline.client_kib)
    );
    for (held, server_side, ping_ok, ping_n, m, gateway_per_conn) in &rows {
        println!(
            "| {held} | {server_side} | {ping_ok}/{ping_n} | {} | {:.1} | {:.0} | {:.1} ({} instances) | {:.1} | {:.1} | {:.0} |",
            fds(m),
            mib(m.gateway_kib),
            gateway_per_conn,
            mib(m.functions_kib),
            m.function_instances,
            mib(m.dynamodb_kib),
            mib(m.client_kib),
            (m.client_kib.saturating_sub(baseline.client_kib) as f64 * 1024.0) / (*held).max(1) as f64
        );
    }
    match stopped {
        Some(why) => println!("\nstopped {why}"),
        None => println!("\nheld every step up to the cap ({cap}); raise CONNECTIONS_MAX to look for the limit"),
    }

    // Stop the stack first: it closes its side without running $disconnect for every connection.
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
    let child = Arc::try_unwrap(child).ok().map(|m| m.into_inner().unwrap());
    if let Some(mut child) = child {
        drop(child.stdin);
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.process.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.process.kill();
            let _ = child.process.wait();
        })
        .await;
    }
}
