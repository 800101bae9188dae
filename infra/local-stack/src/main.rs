//! `cargo run -p local-stack`: Parley on this machine.
//!
//! `cargo run` builds this binary unoptimised (the dev profile, which the tests share). When it is to
//! build the functions with an optimised profile, the unoptimised binary builds the gateway itself with
//! the `local` profile, in one `cargo build --profile local` with the functions, and hands over to it:
//! exec, the same process, the same arguments; that one finds the functions fresh and serves. Under load it takes
//! about a third of the CPU per request the unoptimised one does (BENCHMARKS.md, issue 21), and the
//! tests' build is unchanged.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use local_stack::{LocalStack, Options, Profile, Storage};

/// Set for the optimised gateway the unoptimised one hands over to: it hands over to nothing.
const HANDED_OVER: &str = "PARLEY_LOCAL_STACK_OPTIMISED";

const USAGE: &str = "\
Runs Parley locally: DynamoDB Local, every function of template.yaml, and a gateway speaking API
Gateway's HTTP and WebSocket protocols.

Usage: cargo run -p local-stack -- [options]

  --http-port N          HTTP API port (default 3000)
  --ws-port N            WebSocket API, @connections, CloudWatch and SQS port (default 3001)
  --web-port N           web client port (default 3002; built from web/ first when web/dist is missing)
  --no-web               do not serve the web client
  --s3-port N            the S3-compatible server of the attachments (s3rver; default 3003)
  --in-memory            keep no data (default: kept under .local/dynamodb)
  --data-dir DIR         where DynamoDB Local keeps its data
  --release              build and run the functions with the release profile (what Lambda runs; slow
                         to build: fat LTO)
  --debug                build and run unoptimised functions, and stay on the unoptimised gateway that
                         `cargo run` built (the quickest build; too slow for load)
                         Default: the `local` profile, optimised without fat LTO, for the functions,
                         and for the gateway itself, which `cargo run`'s unoptimised build hands over to
  --no-build             run the binaries already built (and the gateway `cargo run` built)
  --artifacts DIR        run `sam build`'s artifacts (DIR/<LogicalId>/bootstrap, e.g. .aws-sam/build)
  --template FILE        another SAM template (default: the workspace's template.yaml)
  --parameter NAME=VALUE a template parameter
  --secret SECRET.KEY=VALUE
                         a local value for a key of one of the template's Secrets Manager secrets
                         (TokenSigningSecret.current has a local default; keys the template writes,
                         such as TokenSigningSecret.previous, default to the template's value)
  --max-instances N      concurrent instances per function (default 10)
  --quiet                do not echo function logs
  --no-iam               let every function call anything (by default each function's DynamoDB,
                         SQS, @connections, CloudWatch and Secrets Manager calls are checked against
                         the statements its role gets from the template, and denials are logged)
  --queue-visibility-timeout SECONDS
                         every SQS queue's visibility timeout instead of the template's (a failed
                         message comes back after it)
  --faults SPEC          inject AWS failures, e.g. dynamodb=0.05,connections=0.05 (a share split
                         evenly over the kinds), or per kind: dynamodb.throttle, dynamodb.conflict,
                         dynamodb.internal, dynamodb.internal_after_write (the write is applied),
                         dynamodb.timeout, dynamodb.timeout_after_write, connections.error,
                         connections.timeout; also gone=CONNECTION_ID, seed=N, hold=30s (how long
                         a held request waits). The functions reach DynamoDB through a fault proxy,
                         and GET/PUT /@faults on the WebSocket port reads and replaces the settings
                         (--faults dynamodb=0 turns all that on with nothing broken yet)
  --fault-seed N         seed of the fault draws (default 0), to replay a run
  --sdk-attempt-timeout-ms N
                         the functions' SDK attempt timeout (default 5000; lower it for timeouts)
  --ws-idle-timeout SECONDS
                         close WebSocket connections idle this long (default 600, API Gateway's)
  --ws-max-connection-duration SECONDS
                         close every WebSocket connection this long after it opened (default 7200)
";

/// A positive number of seconds (fractions allowed, so tests can close connections quickly).
fn seconds(text: &str, flag: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 7.0 * 24.0 * 3600.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} needs a number of seconds above 0 and at most 604800 (7 days)"))
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options::new(local_stack::workspace_template());
    let mut args = args.into_iter();
    let mut template: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--http-port" => {
                options.http_port = value("--http-port")?
                    .parse()
                    .map_err(|_| "--http-port needs a port number")?
            }
            "--ws-port" => {
                options.ws_port = value("--ws-port")?
                    .parse()
                    .map_err(|_| "--ws-port needs a port number")?
            }
            "--web-port" => {
                options.web_port = Some(
                    value("--web-port")?
                        .parse()
                        .map_err(|_| "--web-port needs a port number")?,
                )
            }
            "--no-web" => options.web_port = None,
            "--s3-port" => {
                options.s3_port = value("--s3-port")?
                    .parse()
                    .map_err(|_| "--s3-port needs a port number")?
            }
            "--in-memory" => options.storage = Storage::InMemory,
            "--data-dir" => options.storage = Storage::Directory(PathBuf::from(value("--data-dir")?)),
            "--release" => options.profile = Profile::Release,
            "--debug" => options.profile = Profile::Debug,
            "--no-build" => options.build = false,
            "--no-iam" => options.iam_enforcement = false,
            "--artifacts" => options.artifacts = Some(PathBuf::from(value("--artifacts")?)),
            "--template" => template = Some(PathBuf::from(value("--template")?)),
            "--parameter" => {
                let pair = value("--parameter")?;
                let (name, val) = pair.split_once('=').ok_or("--parameter takes NAME=VALUE")?;
                options.parameters.insert(name.to_owned(), val.to_owned());
            }
            "--secret" => {
                let pair = value("--secret")?;
                let (name, val) = pair.split_once('=').ok_or("--secret takes SECRET.KEY=VALUE")?;
                options.secrets.insert(name.to_owned(), val.to_owned());
            }
            "--max-instances" => {
                options.max_instances_per_function = value("--max-instances")?
                    .parse()
                    .map_err(|_| "--max-instances needs a number")?
            }
            "--quiet" => options.echo_logs = false,
            "--queue-visibility-timeout" => {
                let seconds: f64 = value("--queue-visibility-timeout")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.0..=43_200.0).contains(s))
                    .ok_or("--queue-visibility-timeout needs a number of seconds from 0 to 43200")?;
                options.queue_visibility_timeout = Some(std::time::Duration::from_secs_f64(seconds));
            }
            "--faults" => {
                options.faults.apply_spec(&value("--faults")?)?;
                options.fault_injection = true;
            }
            "--fault-seed" => {
                options.faults.seed = value("--fault-seed")?
                    .parse()
                    .map_err(|_| "--fault-seed needs a whole number")?
            }
            "--sdk-attempt-timeout-ms" => {
                let ms: u64 = value("--sdk-attempt-timeout-ms")?
                    .parse()
                    .map_err(|_| "--sdk-attempt-timeout-ms needs a number of milliseconds")?;
                options.sdk_attempt_timeout = std::time::Duration::from_millis(ms.max(1));
            }
            "--ws-idle-timeout" => {
                options.limits.idle_timeout = seconds(&value("--ws-idle-timeout")?, "--ws-idle-timeout")?;
            }
            "--ws-max-connection-duration" => {
                options.limits.max_connection_duration =
                    seconds(&value("--ws-max-connection-duration")?, "--ws-max-connection-duration")?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if let Some(template) = template {
        // A relative path would make the workspace (found above the template) the empty path.
        let template = std::path::absolute(&template).unwrap_or(template);
        if let Storage::Directory(_) = options.storage {
            options.storage =
                Storage::Directory(template.parent().unwrap_or(&PathBuf::from(".")).join(".local/dynamodb"));
        }
        options.template = template;
    }
    Ok(options)
}

/// Builds the optimised gateway and becomes it. Returns only on failure, with what went wrong.
fn hand_over(options: &Options) -> String {
    println!(
        "{:>26} | building the gateway itself and the functions optimised (cargo build --profile local)",
        "gateway"
    );
    let gateway = match local_stack::build_gateway(options) {
        Ok(gateway) => gateway,
        Err(e) => return format!("the optimised gateway could not be built ({e})"),
    };
    let error = std::process::Command::new(&gateway)
        .args(std::env::args_os().skip(1))
        .env(HANDED_OVER, "1")
        .exec();
    format!("{} could not be started ({error})", gateway.display())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("error: {problem}\n");
            }
            eprint!("{USAGE}");
            return if problem.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    if cfg!(debug_assertions)
        && options.build
        && options.artifacts.is_none()
        && options.profile != Profile::Debug
        && std::env::var_os(HANDED_OVER).is_none()
    {
        // Only returns when the optimised gateway could not be built or started.
        let problem = hand_over(&options);
        eprintln!("warning: {problem}; running the unoptimised gateway");
    }
    let stack = match LocalStack::start(options).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Parley is running.");
    println!("  HTTP API:       {}", stack.http_url());
    println!("  WebSocket API:  {}", stack.ws_url());
    println!("  @connections:   {}/{{connectionId}}", stack.connections_url());
    if let Some(web) = stack.web_url() {
        println!("  Web client:     {web}");
    }
    println!(
        "  CloudWatch:     {} (metrics from the functions' EMF lines)",
        stack.cloudwatch_url()
    );
    if let Some(endpoint) = stack.dynamodb_endpoint() {
        println!("  DynamoDB Local: {endpoint}");
    }
    println!("  SQS:            {} (the template's queues)", stack.sqs_url());
    if let Some(s3) = stack.s3_url() {
        println!("  S3 (s3rver):    {s3} (the attachments bucket, path-style; IAM-checked unless --no-iam)");
    }
    if let Some(proxy) = stack.fault_proxy_url() {
        println!("  Fault proxy:    {proxy} (the functions' DynamoDB)");
    }
    if let Some(url) = stack.faults_url() {
        println!("  Faults:         {url} (GET, PUT)");
    }
    println!("Press Ctrl-C to stop.");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
    }
    println!("Stopping...");
    stack.stop().await;
    println!("Stopped.");
    ExitCode::SUCCESS
}
