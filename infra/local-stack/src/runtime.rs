//! Runs function binaries the way Lambda does: each instance is a process that polls its own Lambda
//! Runtime API endpoint for the next event and posts the result back. An instance takes one event at
//! a time; warm instances are reused; a new one starts when all are busy, up to a per-function cap;
//! the function's timeout is enforced by killing the instance; an instance that dies is replaced by the
//! next invocation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::activity::Activity;
use crate::ids;
use crate::logs::LogBook;

/// Lambda's limit on a function's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lambda's limit on a synchronous invocation's event and on its answer: 6 MB (6,291,456 bytes).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub executable: PathBuf,
    /// `parley-functions <binary>` in the debug and `local` profiles (`binaries::function_command`).
    pub arguments: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The function did not answer within its timeout; the instance was stopped.
    Timeout,
    /// The function reported an error (a panic, or an `Err` from the handler): Lambda's error payload.
    Function(String),
    /// The process died, or never became ready.
    Crashed(String),
    /// The event is over Lambda's synchronous payload limit; Lambda refuses it
    /// (`RequestEntityTooLargeException`) without running the function.
    PayloadTooLarge,
    /// Every unit of the function's reserved concurrency was busy: Lambda refuses the invocation
    /// (`TooManyRequestsException`) without running it.
    Throttled,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Timeout => write!(f, "task timed out"),
            InvokeError::Function(payload) => write!(f, "function error: {payload}"),
            InvokeError::Crashed(why) => write!(f, "instance failed: {why}"),
            InvokeError::Throttled => write!(f, "throttled: its reserved concurrency is in use"),
            InvokeError::PayloadTooLarge => write!(
                f,
                "the event is over Lambda's synchronous payload limit of {MAX_SYNC_PAYLOAD_BYTES} bytes"
            ),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FunctionStats {
    pub invocations: u64,
    pub cold_starts: u64,
    pub errors: u64,
    /// Invocations refused because the function's reserved concurrency was in use.
    pub throttles: u64,
    /// Init durations (process start to first poll of the Runtime API), in microseconds.
    pub init_micros: Vec<u64>,
}

enum Outcome {
    Response(Bytes),
    Error(Bytes),
    Crashed(String),
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    reply: oneshot::Sender<Outcome>,
}

/// The Runtime API side of one instance.
struct RuntimeApi {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    ready: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
}

struct Instance {
    name: String,
    queue: mpsc::Sender<Invocation>,
    alive: Arc<AtomicBool>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    exited: watch::Receiver<bool>,
}

impl Instance {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    fn kill(&self) {
        if let Some(kill) = self.kill.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = kill.send(());
        }
    }

    async fn wait_exited(&self) {
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|done| *done).await;
    }

    async fn invoke(&self, payload: Bytes, timeout: Duration) -> Result<Bytes, InvokeError> {
        let (reply, outcome) = oneshot::channel();
        let deadline_ms = ids::epoch_millis(SystemTime::now()) + timeout.as_millis() as u64;
        let invocation = Invocation {
            request_id: ids::invocation_id(),
            payload,
            deadline_ms,
            reply,
        };
        self.queue
            .send(invocation)
            .await
            .map_err(|_| InvokeError::Crashed("the instance is gone".to_owned()))?;
        match tokio::time::timeout(timeout, outcome).await {
            Err(_) => {
                self.kill();
                Err(InvokeError::Timeout)
            }
            Ok(Err(_)) => Err(InvokeError::Crashed("the instance stopped".to_owned())),
            Ok(Ok(Outcome::Response(body))) => Ok(body),
            Ok(Ok(Outcome::Error(body))) => Err(InvokeError::Function(String::from_utf8_lossy(&body).into_owned())),
            Ok(Ok(Outcome::Crashed(why))) => Err(InvokeError::Crashed(why)),
        }
    }
}

/// The instances of one function.
pub struct FunctionPool {
    pub spec: FunctionSpec,
    idle: Mutex<Vec<Arc<Instance>>>,
    all: Mutex<HashMap<String, Arc<Instance>>>,
    slots: Semaphore,
    /// Refuse rather than wait when every slot is busy: the slots are the function's reserved
    /// concurrency, not only this machine's limit on instances.
    throttles: bool,
    /// The slots' number.
    concurrency: usize,
    next_instance: AtomicU64,
    stats: Mutex<FunctionStats>,
    logs: Arc<LogBook>,
    stopping: AtomicBool,
    /// Told while an invocation runs (the stream pollers wait on it).
    activity: Arc<Activity>,
}

impl FunctionPool {
    /// At most `max_instances` run at once (more wait); a `reserved_concurrency` at or under that is
    /// Lambda's limit, so invocations beyond it are throttled as Lambda throttles them. Over it, the
    /// local limit is the tighter one and invocations wait for it, as they would not on AWS.
    pub fn new(
        spec: FunctionSpec,
        max_instances: usize,
        reserved_concurrency: Option<usize>,
        logs: Arc<LogBook>,
        activity: Arc<Activity>,
    ) -> Arc<Self> {
        let max_instances = max_instances.max(1);
        let throttles = reserved_concurrency.is_some_and(|reserved| reserved <= max_instances);
        let slots = match reserved_concurrency {
            Some(reserved) if throttles => reserved,
            _ => max_instances,
        };
        Arc::new(FunctionPool {
            spec,
            idle: Mutex::default(),
            all: Mutex::default(),
            slots: Semaphore::new(slots),
            throttles,
            concurrency: slots,
            next_instance: AtomicU64::new(1),
            stats: Mutex::default(),
            logs,
            stopping: AtomicBool::new(false),
            activity,
        })
    }

    pub fn stats(&self) -> FunctionStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, update: impl FnOnce(&mut FunctionStats)) {
        update(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Runs one event on a warm instance, or a new one. When all slots are busy it waits, or is
    /// throttled when the slots are the function's reserved concurrency.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        if payload.len() > MAX_SYNC_PAYLOAD_BYTES {
            self.logs.gateway(&format!(
                "{}: an event of {} bytes is over Lambda's synchronous payload limit ({MAX_SYNC_PAYLOAD_BYTES})",
                self.spec.logical_id,
                payload.len()
            ));
            return Err(InvokeError::PayloadTooLarge);
        }
        let stopping = |_| InvokeError::Crashed("the stack is stopping".to_owned());
        let _slot = match self.throttles {
            true => match self.slots.try_acquire() {
                Ok(slot) => slot,
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    self.record(|s| s.throttles += 1);
                    self.logs.gateway(&format!(
                        "{}: throttled (Rate Exceeded): its reserved concurrency of {} is in use",
                        self.spec.logical_id, self.concurrency
                    ));
                    return Err(InvokeError::Throttled);
                }
                Err(tokio::sync::TryAcquireError::Closed) => return Err(stopping(())),
            },
            false => self.slots.acquire().await.map_err(|_| stopping(()))?,
        };
        let _running = self.activity.invocation();
        self.record(|s| s.invocations += 1);
        let warm = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let instance = match warm.filter(|i| i.is_alive()) {
            Some(instance) => instance,
            None => self
                .start_instance()
                .await
                .inspect_err(|_| self.record(|s| s.errors += 1))?,
        };
        let result = instance.invoke(payload, self.spec.timeout).await.and_then(|response| {
            // Lambda drops an answer over the limit and reports a function error in its place.
            match response.len() > MAX_SYNC_PAYLOAD_BYTES {
                true => Err(InvokeError::Function(format!(
                    r#"{{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD_BYTES} bytes)."}}"#,
                    response.len()
                ))),
                false => Ok(response),
            }
        });
        match &result {
            Err(InvokeError::Timeout) => self.logs.gateway(&format!(
                "{}: task timed out after {:?}; instance stopped",
                instance.name, self.spec.timeout
            )),
            Err(InvokeError::Crashed(why)) => self.logs.gateway(&format!("{}: {why}", instance.name)),
            _ => {}
        }
        if result.is_err() {
            self.record(|s| s.errors += 1);
        }
        if instance.is_alive() && !matches!(result, Err(InvokeError::Timeout)) {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(instance);
        }
        result
    }

    async fn start_instance(self: &Arc<Self>) -> Result<Arc<Instance>, InvokeError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(InvokeError::Crashed("the stack is stopping".to_owned()));
        }
        let number = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}#{number}", self.spec.binary);
        let crashed = |why: String| InvokeError::Crashed(why);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| crashed(format!("cannot open a Runtime API port: {e}")))?;
        let runtime_address = listener.local_addr().map_err(|e| crashed(e.to_string()))?;
        let (queue_tx, queue_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = oneshot::channel();
        let api = Arc::new(RuntimeApi {
            function_arn: ids::function_arn(&self.spec.logical_id),
            queue: tokio::sync::Mutex::new(queue_rx),
            current: Mutex::new(None),
            ready: Mutex::new(Some(ready_tx)),
        });
        let server = tokio::spawn(serve_runtime_api(
            listener,
            Arc::clone(&api),
            Arc::clone(&self.logs),
            name.clone(),
        ));

        let mut command = tokio::process::Command::new(&self.spec.executable);
        command
            .args(&self.spec.arguments)
            .env_clear()
            .envs(passthrough_environment())
            .envs(self.spec.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(lambda_environment(&self.spec, &name, &runtime_address.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The instance dies with the gateway, even if the gateway is killed outright.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.as_std_mut().pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            server.abort();
            crashed(format!("cannot start {}: {e}", self.spec.executable.display()))
        })?;
        for (stream, label) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                "stdout",
            ),
            (child.stderr.take().map(|s| Box::new(s) as _), "stderr"),
        ] {
            let Some(stream) = stream else { continue };
            let logs = Arc::clone(&self.logs);
            let (source, instance) = (self.spec.binary.clone(), name.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.push(&source, &instance, &line);
                }
                let _ = label;
            });
        }

        let alive = Arc::new(AtomicBool::new(true));
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exited_tx, exited_rx) = watch::channel(false);
        {
            let alive = Arc::clone(&alive);
            let api = Arc::clone(&api);
            let logs = Arc::clone(&self.logs);
            let pool = Arc::downgrade(self);
            let name = name.clone();
            tokio::spawn(async move {
                let status = tokio::select! {
                    status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    _ = kill_rx => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        "stopped by the gateway".to_owned()
                    }
                };
                alive.store(false, Ordering::SeqCst);
                server.abort();
                let why = format!("the process exited ({status})");
                if let Some(ready) = api.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = ready.send(Err(why.clone()));
                }
                if let Some((_, reply)) = api.current.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = reply.send(Outcome::Crashed(why.clone()));
                }
                let mut queue = api.queue.lock().await;
                queue.close();
                while let Ok(invocation) = queue.try_recv() {
                    let _ = invocation.reply.send(Outcome::Crashed(why.clone()));
                }
                if let Some(pool) = pool.upgrade() {
                    pool.all.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
                    if !pool.stopping.load(Ordering::SeqCst) {
                        logs.gateway(&format!("{name}: {why}"));
                    }
                }
                let _ = exited_tx.send(true);
            });
        }
        let instance = Arc::new(Instance {
            name: name.clone(),
            queue: queue_tx,
            alive,
            kill: Mutex::new(Some(kill_tx)),
            exited: exited_rx,
        });
        self.all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), Arc::clone(&instance));

        match tokio::time::timeout(INIT_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => {
                let init = started.elapsed();
                self.record(|s| {
                    s.cold_starts += 1;
                    s.init_micros.push(init.as_micros() as u64);
                });
                self.logs.gateway(&format!(
                    "{name}: cold start, init {:.1} ms",
                    init.as_secs_f64() * 1000.0
                ));
                Ok(instance)
            }
            Ok(Ok(Err(why))) => Err(crashed(format!("{name} failed during init: {why}"))),
            Ok(Err(_)) => Err(crashed(format!("{name} failed during init"))),
            Err(_) => {
                instance.kill();
                Err(crashed(format!(
                    "{name} did not poll for an event within {INIT_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Stops every instance and waits for the processes to exit.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.slots.close();
        let instances: Vec<Arc<Instance>> = self
            .all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for instance in &instances {
            instance.kill();
        }
        for instance in &instances {
            let _ = tokio::time::timeout(Duration::from_secs(5), instance.wait_exited()).await;
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// What a process inherits from the gateway's environment; everything else comes from the template.
fn passthrough_environment() -> Vec<(String, String)> {
    ["PATH", "HOME", "RUST_BACKTRACE", "LANG"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_owned(), v)))
        .collect()
}

/// The variables Lambda sets in every execution environment.
fn lambda_environment(spec: &FunctionSpec, instance: &str, runtime_api: &str) -> Vec<(String, String)> {
    let today = &ids::rfc3339(SystemTime::now())[..10];
    vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.logical_id.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), spec.memory_mb.to_string()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", spec.logical_id),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("{}/[$LATEST]{}", today.replace('-', "/"), instance),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_EXECUTION_ENV".into(), "AWS_Lambda_provided.al2023".into()),
        ("_HANDLER".into(), "bootstrap".into()),
        ("TZ".into(), ":UTC".into()),
    ]
}

type RuntimeResponse = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &str) -> RuntimeResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn serve_runtime_api(listener: TcpListener, api: Arc<RuntimeApi>, logs: Arc<LogBook>, name: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            crate::accept_failed().await;
            continue;
        };
        let api = Arc::clone(&api);
        let logs = Arc::clone(&logs);
        let name = name.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let api = Arc::clone(&api);
                let logs = Arc::clone(&logs);
                let name = name.clone();
                async move { Ok::<_, Infallible>(runtime_api_request(&api, &logs, &name, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn runtime_api_request(
    api: &RuntimeApi,
    logs: &LogBook,
    name: &str,
    request: Request<Incoming>,
) -> RuntimeResponse {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"unknown Runtime API path","errorType":"InvalidRequest"}"#,
        );
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, r#"{"errorMessage":"unreadable body"}"#),
    };
    match (method.as_str(), route.split('/').collect::<Vec<_>>().as_slice()) {
        ("GET", ["invocation", "next"]) => {
            if let Some(ready) = api.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = ready.send(Ok(()));
            }
            let Some(invocation) = api.queue.lock().await.recv().await else {
                return reply(StatusCode::GONE, r#"{"errorMessage":"the instance is stopping"}"#);
            };
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &invocation.request_id)
                .header("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", &api.function_arn)
                .header("lambda-runtime-trace-id", ids::trace_id())
                .body(Full::new(invocation.payload));
            *api.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((invocation.request_id, invocation.reply));
            response.unwrap_or_else(|_| reply(StatusCode::INTERNAL_SERVER_ERROR, "{}"))
        }
        ("POST", ["invocation", request_id, kind @ ("response" | "error")]) => {
            let mut current = api.current.lock().unwrap_or_else(|p| p.into_inner());
            match current.take() {
                Some((id, sender)) if id == *request_id => {
                    let outcome = if *kind == "response" {
                        Outcome::Response(body)
                    } else {
                        logs.gateway(&format!("{name}: function error: {}", String::from_utf8_lossy(&body)));
                        Outcome::Error(body)
                    };
                    let _ = sender.send(outcome);
                    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                other => {
                    *current = other;
                    reply(
                        StatusCode::BAD_REQUEST,
                        r#"{"errorMessage":"no such invocation in progress","errorType":"InvalidRequestID"}"#,
                    )
                }
            }
        }
        ("POST", ["init", "error"]) => {
            let why = format!("init error: {}", String::from_utf8_lossy(&body));
            logs.gateway(&format!("{name}: {why}"));
            if let Some(ready) = api.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = ready.send(Err(why));
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"unknown Runtime API path","errorType":"InvalidRequest"}"#,
        ),
    }
}
