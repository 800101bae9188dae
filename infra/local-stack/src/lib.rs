//! Parley's local stack: AWS DynamoDB Local, every function of template.yaml run as Lambda runs it, and a
//! gateway that speaks API Gateway's HTTP API (payload v2.0) and WebSocket API (with @connections).
//! The WebSocket port also serves a CloudWatch metrics API (ListMetrics, GetMetricData,
//! GetMetricStatistics) answering from the Embedded Metric Format lines the functions print, and the
//! SQS API over the template's queues, which feed the functions' SQS event source mappings; the
//! functions find both, as they find @connections and DynamoDB Local, through `AWS_ENDPOINT_URL_*`.
//! The table's stream on DynamoDB Local feeds the functions' DynamoDB stream event source mappings.
//!
//! The binary (`cargo run -p local-stack`) is the README's run command; the library is what the
//! end-to-end tests start, on free ports and in memory.

mod activity;
mod binaries;
mod cbor;
mod cloudwatch;
mod cors;
mod dynamodb_proxy;
mod dynamodb_relay;
mod event_filter;
mod event_sources;
pub mod faults;
mod http_api;
mod iam;
mod ids;
mod lambda_api;
mod local_secrets;
mod logs;
mod metrics;
mod resolve;
mod runtime;
mod secretsmanager;
mod sns;
mod sqs;
mod streams;
mod url;
mod web;
mod websocket;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use binaries::{function_command, Profile};
pub use dynamodb_local::{Jit, Storage};
pub use faults::{FaultConfig, FaultCounters, FaultInjector, FaultProxy};
pub use iam::access_key_for;
pub use logs::LogLine;
pub use runtime::FunctionStats;
pub use sns::SnsPublish;
pub use streams::StreamCalls;
pub use websocket::Limits;

use activity::Activity;
use dynamodb_local::DynamoDbLocal;
use dynamodb_relay::DynamoDbRelay;
use http_api::{HttpGateway, HttpRoute, HttpRouter, RouteAuthorizer};
use logs::LogBook;
use parley_template::Template;
use resolve::Resolver;
use runtime::{FunctionPool, FunctionSpec};
use websocket::{WsApi, WsGateway, WsRoute};

/// The token secret of local runs (`TokenSigningSecret.current`), unless `--secret` says otherwise.
pub const LOCAL_TOKEN_SECRET: &str = "parley-local-development-secret-not-for-production";

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] parley_template::TemplateError),
    #[error("resource {resource}: {problem}")]
    Resource { resource: String, problem: String },
    #[error("port {port} is already in use; pick another with {flag} (or stop what is using it)")]
    PortInUse { port: u16, flag: &'static str },
    #[error("building the functions failed: {0}")]
    Build(String),
    #[error("function binary {0} is missing; build it, or leave out --no-build")]
    MissingBinary(String),
    #[error(transparent)]
    DynamoDb(#[from] dynamodb_local::Error),
    #[error("fault injection: {0}")]
    Faults(String),
    #[error("web client: {0}")]
    Web(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub template: PathBuf,
    /// 0: any free port.
    pub http_port: u16,
    pub ws_port: u16,
    pub storage: Storage,
    pub profile: Profile,
    /// Run `cargo build` for the functions first.
    pub build: bool,
    /// Run `sam build`'s artifacts (`<dir>/<LogicalId>/bootstrap`, e.g. `.aws-sam/build`) instead of
    /// the workspace's binaries; nothing is built.
    pub artifacts: Option<PathBuf>,
    pub max_instances_per_function: usize,
    pub limits: Limits,
    /// Values for the template's parameters.
    pub parameters: BTreeMap<String, String>,
    /// Local values of the template's Secrets Manager secrets, by `<Secret>.<JSON key>`: what the
    /// functions' `{{resolve:secretsmanager:...}}` environment values become.
    pub secrets: BTreeMap<String, String>,
    /// Echo function output and gateway remarks to stdout.
    pub echo_logs: bool,
    pub dynamodb_heap_mb: u32,
    /// How DynamoDB Local's JVM compiles: for a long run (the optimising compiler), or for a test's
    /// short one (the quick compiler: less CPU to start and for the first thousands of calls).
    pub dynamodb_jit: Jit,
    /// Every queue's visibility timeout; None: the template's. Tests set a short one, so failed
    /// messages come back in a second rather than a minute.
    pub queue_visibility_timeout: Option<Duration>,
    /// Put the DynamoDB fault proxy between the functions and DynamoDB Local, break @connections
    /// posts, and serve `/@faults`, as `faults` says (changeable while running). Off: no extra hop.
    pub fault_injection: bool,
    /// The configuration fault injection starts with.
    pub faults: FaultConfig,
    /// Check each function's DynamoDB, SQS, @connections and CloudWatch calls against the statements
    /// its role gets from the template, as AWS does, so a missing permission fails here rather than
    /// after a deploy. Off: every function may do anything, as before.
    pub iam_enforcement: bool,
    /// The functions' `SDK_ATTEMPT_TIMEOUT_MS`: fault runs set it low, so each held call costs little.
    pub sdk_attempt_timeout: Duration,
    /// Serve the web client (`web/dist`, built first when missing and `build` is on) on this port
    /// (0: any free port); None: no web client.
    pub web_port: Option<u16>,
    /// The built web client; None: `web/dist` of the workspace.
    pub web_root: Option<PathBuf>,
    /// How long the HTTP API waits for a function's answer before its own 504: API Gateway's 30 s
    /// (tests shorten it).
    pub http_integration_timeout: Duration,
    /// The S3-compatible server's port (s3rver, see the `s3-local` crate; 0: any free port), started
    /// when the template has an `AWS::S3::Bucket` named `AttachmentsBucket`; its objects are kept
    /// beside the table's data (`<data>/../s3`) unless the storage is in memory.
    pub s3_port: u16,
    /// How long an asynchronous invocation (`InvocationType=Event`) that failed waits before its first
    /// retry (the second waits twice as long): Lambda's one minute; tests shorten it.
    pub lambda_async_retry_delay: Duration,
}

impl Options {
    /// The settings of the README's run command: ports 3000 and 3001, data kept under `.local/`.
    pub fn new(template: PathBuf) -> Self {
        let data = template.parent().unwrap_or(Path::new(".")).join(".local/dynamodb");
        Options {
            template,
            http_port: 3000,
            ws_port: 3001,
            storage: Storage::Directory(data),
            profile: Profile::Local,
            build: true,
            artifacts: None,
            max_instances_per_function: 10,
            limits: Limits::default(),
            parameters: local_parameters(),
            secrets: BTreeMap::from([("TokenSigningSecret.current".to_owned(), LOCAL_TOKEN_SECRET.to_owned())]),
            echo_logs: true,
            dynamodb_heap_mb: 512,
            dynamodb_jit: Jit::Peak,
            queue_visibility_timeout: None,
            fault_injection: false,
            faults: FaultConfig::default(),
            iam_enforcement: true,
            sdk_attempt_timeout: Duration::from_secs(5),
            web_port: Some(3002),
            web_root: None,
            http_integration_timeout: http_api::INTEGRATION_TIMEOUT,
            s3_port: 3003,
            lambda_async_retry_delay: Duration::from_secs(60),
        }
    }

    /// What tests want: free ports, an in-memory database, quiet, debug functions (the quickest build).
    pub fn for_tests(template: PathBuf) -> Self {
        Options {
            http_port: 0,
            ws_port: 0,
            storage: Storage::InMemory,
            profile: Profile::Debug,
            echo_logs: false,
            dynamodb_heap_mb: 384,
            dynamodb_jit: Jit::Quick,
            web_port: None,
            s3_port: 0,
            lambda_async_retry_delay: Duration::from_secs(1),
            ..Options::new(template)
        }
    }
}

/// Parameters every local run has unless told otherwise: tests run their own Web Push service on
/// 127.0.0.1, and APNs and FCM devices register with the SNS stand-in's platform applications.
fn local_parameters() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PushLoopbackEndpoints".to_owned(), "allow".to_owned()),
        (
            "ApnsPlatformApplicationArn".to_owned(),
            format!("arn:aws:sns:{}:{}:app/APNS/parley-local", ids::REGION, ids::ACCOUNT_ID),
        ),
        (
            "FcmPlatformApplicationArn".to_owned(),
            format!("arn:aws:sns:{}:{}:app/GCM/parley-local", ids::REGION, ids::ACCOUNT_ID),
        ),
    ])
}

pub struct LocalStack {
    http_address: SocketAddr,
    ws_address: SocketAddr,
    web_address: Option<SocketAddr>,
    dynamodb_endpoint: Option<String>,
    pools: HashMap<String, Arc<FunctionPool>>,
    http: Arc<HttpGateway>,
    websocket: Arc<WsGateway>,
    logs: Arc<LogBook>,
    shutdown: watch::Sender<bool>,
    dynamodb: Option<DynamoDbLocal>,
    /// What `dynamodb_endpoint` hands out: DynamoDB Local through a relay that wakes the stream pollers.
    dynamodb_relay: Option<DynamoDbRelay>,
    sqs: Arc<sqs::Sqs>,
    secretsmanager: Arc<secretsmanager::SecretsManager>,
    sns: Arc<sns::Sns>,
    event_sources: event_sources::EventSources,
    streams: streams::Streams,
    faults: Option<Arc<FaultInjector>>,
    fault_proxy: Option<FaultProxy>,
    iam_proxy: Option<iam::proxy::DynamoDbIamProxy>,
    s3: Option<s3_local::S3Local>,
    /// In front of `s3` when IAM is enforced: the endpoint the functions (and their presigned URLs) use.
    s3_iam_proxy: Option<iam::s3_proxy::S3IamProxy>,
}

async fn bind(port: u16, flag: &'static str) -> Result<TcpListener, StackError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => StackError::PortInUse { port, flag },
            _ => StackError::Io(e),
        })
}

impl LocalStack {
    pub async fn start(options: Options) -> Result<Self, StackError> {
        let template = Template::load(&options.template)?;
        let options = Options {
            secrets: local_secrets::fill(&template, &options.storage, options.secrets.clone())?,
            ..options
        };
        let functions = template.functions()?;
        streams::check(&functions)?;
        let websocket_apis = template.websocket_apis()?;
        let queues = template.queues()?;
        let table = template.table().ok();
        let workspace = workspace_root(&options.template);

        // Claim the ports before anything slow, so a clash is reported at once.
        let http_listener = bind(options.http_port, "--http-port").await?;
        let ws_listener = bind(options.ws_port, "--ws-port").await?;
        let http_address = http_listener.local_addr()?;
        let ws_address = ws_listener.local_addr()?;
        let web_listener = match options.web_port {
            Some(port) => Some(bind(port, "--web-port").await?),
            None => None,
        };
        let web_address = web_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let logs = Arc::new(LogBook::new(options.echo_logs));
        let activity = Arc::new(Activity::default());
        let sqs_endpoint = format!("http://{ws_address}");
        let sqs = sqs::Sqs::new(
            &queues,
            options.queue_visibility_timeout,
            &sqs_endpoint,
            Arc::clone(&logs),
        );

        let web_root = options
            .web_root
            .clone()
            .unwrap_or_else(|| web::source_dir(&workspace).join("dist"));
        if web_listener.is_some() && !web_root.join("index.html").is_file() {
            if !options.build {
                return Err(StackError::Web(format!(
                    "{} is missing: build the web client with `npm ci && npm run build` in {} (or --no-web)",
                    web_root.join("index.html").display(),
                    web::source_dir(&workspace).display()
                )));
            }
            logs.gateway("building the web client (npm ci, npm run build)");
            let (web_dir, dist) = (web::source_dir(&workspace), web_root.clone());
            tokio::task::spawn_blocking(move || web::ensure_built(&web_dir, &dist))
                .await
                .map_err(|e| StackError::Web(e.to_string()))?
                .map_err(StackError::Web)?;
        }
        let function_binaries: Vec<String> = functions.iter().map(|f| f.binary.clone()).collect();
        let binaries = binaries::binaries_to_build(&workspace, options.profile, &function_binaries);
        if options.build && options.artifacts.is_none() && !binaries.is_empty() {
            logs.gateway(&format!("building {} functions", function_binaries.len()));
            let (workspace, profile, binaries) = (workspace.clone(), options.profile, binaries.clone());
            tokio::task::spawn_blocking(move || binaries::build(&workspace, profile, &binaries))
                .await
                .map_err(|e| StackError::Build(e.to_string()))?
                .map_err(StackError::Build)?;
        }

        let (dynamodb, local_endpoint, table_stream) = match &table {
            Some(table) => {
                let dynamo_options = dynamodb_local::Options {
                    storage: options.storage.clone(),
                    port: None,
                    max_heap_mb: options.dynamodb_heap_mb,
                    jit: options.dynamodb_jit,
                };
                let server = tokio::task::spawn_blocking(move || DynamoDbLocal::start(dynamo_options))
                    .await
                    .map_err(|e| StackError::Build(e.to_string()))??;
                let endpoint = server.endpoint();
                let sdk = dynamodb_local::sdk_config(&endpoint).await;
                dynamodb_local::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table.logical_id, table).await?;
                logs.gateway(&format!("DynamoDB Local on {endpoint}, table {}", table.logical_id));
                let stream = match &table.stream_view_type {
                    Some(_) => Some(streams::table_stream(&endpoint, &table.logical_id).await?),
                    None => None,
                };
                (Some(server), Some(endpoint), stream)
            }
            None => (None, None, None),
        };
        let s3 = start_s3(&options, &resolver_for_cors(&template, &options)).await?;
        if let Some(s3) = &s3 {
            logs.gateway(&format!("S3 (s3rver) on {}, bucket {}", s3.endpoint(), s3.bucket()));
        }
        let faults = match options.fault_injection {
            true => Some(Arc::new(
                FaultInjector::new(options.faults.clone()).map_err(StackError::Faults)?,
            )),
            false => None,
        };
        let dynamodb_relay = match &dynamodb {
            Some(server) => Some(DynamoDbRelay::start(server.port(), Arc::clone(&activity)).await?),
            None => None,
        };
        let dynamodb_endpoint = dynamodb_relay.as_ref().map(DynamoDbRelay::endpoint);
        let fault_proxy = match (&faults, &local_endpoint) {
            (Some(faults), Some(endpoint)) => Some(FaultProxy::start(endpoint, Arc::clone(faults)).await?),
            _ => None,
        };
        let functions_dynamodb = fault_proxy
            .as_ref()
            .map(FaultProxy::endpoint)
            .or(local_endpoint.clone());

        let mut resolver = Resolver::new(&template, options.parameters.clone())
            .with_secrets(&options.secrets)
            .with_sqs_endpoint(sqs_endpoint.clone());
        if let Some(stream) = &table_stream {
            resolver = resolver.with_stream_label(&stream.table, &stream.label);
        }
        let iam = match options.iam_enforcement {
            true => {
                let (roles, remarks) = iam::policies::roles(&template, &functions, &resolver);
                for remark in remarks {
                    logs.gateway(&remark);
                }
                Some(Arc::new(iam::Iam::new(roles)))
            }
            false => None,
        };
        let secretsmanager = Arc::new(
            secretsmanager::SecretsManager::from_template(&template, &resolver)
                .with_iam(iam.as_ref().map(|iam| (Arc::clone(iam), Arc::clone(&logs)))),
        );
        let sns = Arc::new(sns::Sns::new(
            iam.as_ref().map(|iam| (Arc::clone(iam), Arc::clone(&logs))),
        ));
        let iam_proxy = match (&iam, &functions_dynamodb, &table) {
            (Some(iam), Some(upstream), Some(table)) => {
                let authorizer = iam::proxy::Authorizer {
                    iam: Arc::clone(iam),
                    keys: iam::dynamodb::KeyNames::new(std::slice::from_ref(table)),
                    logs: Arc::clone(&logs),
                };
                Some(iam::proxy::DynamoDbIamProxy::start(upstream, authorizer).await?)
            }
            _ => None,
        };
        let functions_dynamodb = iam_proxy
            .as_ref()
            .map(iam::proxy::DynamoDbIamProxy::endpoint)
            .or(functions_dynamodb);
        let s3_iam_proxy = match (&iam, &s3) {
            // The proxy takes the S3 port the user asked for: it is what presigned URLs name.
            (Some(iam), Some(s3)) => Some(
                iam::s3_proxy::S3IamProxy::start(options.s3_port, &s3.endpoint(), Arc::clone(iam), Arc::clone(&logs))
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AddrInUse => StackError::PortInUse {
                            port: options.s3_port,
                            flag: "--s3-port",
                        },
                        _ => StackError::Io(e),
                    })?,
            ),
            _ => None,
        };
        let functions_s3 = s3_iam_proxy
            .as_ref()
            .map(iam::s3_proxy::S3IamProxy::endpoint)
            .or_else(|| s3.as_ref().map(s3_local::S3Local::endpoint));
        let mut pools: HashMap<String, Arc<FunctionPool>> = HashMap::new();
        for function in &functions {
            let mut environment = Vec::new();
            for (name, value) in &function.environment {
                let value = resolver.resolve(value).map_err(|problem| StackError::Resource {
                    resource: function.logical_id.clone(),
                    problem: format!("environment variable {name}: {problem}"),
                })?;
                environment.push((name.clone(), value));
            }
            environment.extend([
                ("AWS_REGION".to_owned(), ids::REGION.to_owned()),
                ("AWS_DEFAULT_REGION".to_owned(), ids::REGION.to_owned()),
                // Each function its own key, as each has its own role: how the services tell callers apart.
                (
                    "AWS_ACCESS_KEY_ID".to_owned(),
                    iam::access_key_for(&function.logical_id),
                ),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "local".to_owned()),
                ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
                (
                    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI".to_owned(),
                    format!("http://{ws_address}"),
                ),
                ("AWS_ENDPOINT_URL_CLOUDWATCH".to_owned(), format!("http://{ws_address}")),
                // The SDK's name for Secrets Manager's endpoint variable (service id "Secrets Manager").
                (
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
                    format!("http://{ws_address}"),
                ),
                ("AWS_ENDPOINT_URL_SQS".to_owned(), sqs_endpoint.clone()),
                ("AWS_ENDPOINT_URL_SNS".to_owned(), format!("http://{ws_address}")),
                ("AWS_ENDPOINT_URL_LAMBDA".to_owned(), format!("http://{ws_address}")),
                // DynamoDB Local is a JVM sharing a laptop's cores with every function and the clients:
                // under load one call can take seconds, which DynamoDB itself never does. A retry then
                // only doubles the work (and a retried transaction can fail its own condition).
                (
                    "SDK_ATTEMPT_TIMEOUT_MS".to_owned(),
                    options.sdk_attempt_timeout.as_millis().to_string(),
                ),
            ]);
            if let Some(endpoint) = &functions_dynamodb {
                environment.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), endpoint.clone()));
            }
            if let Some(s3) = &functions_s3 {
                // Path-style addressing (`attachments::Storage` uses it whenever this is set).
                environment.push(("AWS_ENDPOINT_URL_S3".to_owned(), s3.clone()));
            }
            let (executable, arguments) = match &options.artifacts {
                Some(artifacts) => (artifacts.join(&function.logical_id).join("bootstrap"), Vec::new()),
                None => binaries::function_command(&workspace, options.profile, &function.binary),
            };
            if !executable.is_file() {
                return Err(StackError::MissingBinary(executable.display().to_string()));
            }
            let spec = FunctionSpec {
                logical_id: function.logical_id.clone(),
                binary: function.binary.clone(),
                executable,
                arguments,
                environment,
                timeout: Duration::from_secs(function.timeout_secs),
                memory_mb: function.memory_mb,
            };
            let reserved_concurrency = template
                .reserved_concurrency(&function.logical_id, &options.parameters)
                .map_err(StackError::Template)?
                .map(|reserved| reserved as usize);
            pools.insert(
                function.logical_id.clone(),
                FunctionPool::new(
                    spec,
                    options.max_instances_per_function,
                    reserved_concurrency,
                    Arc::clone(&logs),
                    Arc::clone(&activity),
                ),
            );
        }

        let pool_of = |logical_id: &str, user: &str| {
            pools.get(logical_id).cloned().ok_or_else(|| StackError::Resource {
                resource: user.to_owned(),
                problem: format!("{logical_id} is not an AWS::Serverless::Function"),
            })
        };
        let mut http_routes = Vec::new();
        for function in &functions {
            for route in &function.http_routes {
                let pool = pool_of(&function.logical_id, &function.logical_id)?;
                let mut served = HttpRoute::new(&route.method, &route.path, pool);
                if let Some(authorizer) = &route.authorizer {
                    served.authorizer = Some(RouteAuthorizer {
                        function: pool_of(&authorizer.function, &function.logical_id)?,
                        identity_headers: authorizer.identity_headers.clone(),
                        simple_responses: authorizer.simple_responses,
                    });
                }
                http_routes.push(served);
            }
        }
        let router = HttpRouter::new(http_routes);
        let cors = cors::from_template(&options.template, &resolver).map_err(|problem| StackError::Resource {
            resource: "HttpApi".to_owned(),
            problem,
        })?;
        let ws_api = match websocket_apis.as_slice() {
            [] => None,
            [api] => {
                let selection_path =
                    WsApi::selection_path(&api.route_selection_expression).map_err(|problem| StackError::Resource {
                        resource: api.logical_id.clone(),
                        problem,
                    })?;
                let mut routes = HashMap::new();
                for route in &api.routes {
                    let authorizer = match &route.authorizer {
                        Some(a) => Some((pool_of(&a.function, &api.logical_id)?, a.identity_sources.clone())),
                        None => None,
                    };
                    routes.insert(
                        route.route_key.clone(),
                        WsRoute {
                            route_key: route.route_key.clone(),
                            function: pool_of(&route.function, &api.logical_id)?,
                            authorizer,
                            has_response: route.has_response,
                        },
                    );
                }
                Some(WsApi { selection_path, routes })
            }
            more => {
                return Err(StackError::Resource {
                    resource: more[1].logical_id.clone(),
                    problem: "the local stack serves one WebSocket API".to_owned(),
                })
            }
        };

        let lambda = lambda_api::LambdaApi::new(
            pools.clone(),
            lambda_api::dead_letter_queues(&template, &sqs),
            Arc::clone(&sqs),
            iam.clone(),
            Arc::clone(&logs),
            options.lambda_async_retry_delay,
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let event_sources = event_sources::start(
            &functions,
            &pools,
            &sqs,
            options.max_instances_per_function,
            options.queue_visibility_timeout.is_some(),
            shutdown_rx.clone(),
            &logs,
        )?;
        // Before the stack reports itself started: a LATEST mapping then misses nothing written after.
        let checkpoint_file = match &options.storage {
            Storage::Directory(dir) => Some(dir.join("stream-checkpoints.json")),
            Storage::InMemory => None,
        };
        let streams = streams::start(
            &functions,
            table_stream.as_ref(),
            checkpoint_file,
            &pools,
            &sqs,
            &activity,
            shutdown_rx.clone(),
            &logs,
        )
        .await?;
        sqs.spawn_metrics(shutdown_rx.clone());
        let http = Arc::new(HttpGateway {
            router,
            logs: Arc::clone(&logs),
            cors,
            integration_timeout: options.http_integration_timeout,
        });
        if let Some(listener) = web_listener {
            let client = web::WebClient::new(
                web_root,
                &format!("http://{http_address}"),
                &format!("ws://{ws_address}"),
            );
            tokio::spawn(serve(listener, shutdown_rx.clone(), move |request, _peer| {
                Arc::clone(&client).handle(request)
            }));
        }
        let websocket = Arc::new(
            WsGateway::new(
                ws_api,
                options.limits.clone(),
                Arc::clone(&logs),
                ws_address.to_string(),
            )
            .with_faults(faults.clone())
            .with_iam(connections_iam(iam.as_ref(), &template, &websocket_apis, &resolver)),
        );
        {
            let http = Arc::clone(&http);
            tokio::spawn(serve(http_listener, shutdown_rx.clone(), move |request, peer| {
                Arc::clone(&http).handle(request, peer)
            }));
        }
        {
            let websocket = Arc::clone(&websocket);
            let metrics = Arc::clone(logs.metrics());
            let sqs = Arc::clone(&sqs);
            let secretsmanager = Arc::clone(&secretsmanager);
            let sns = Arc::clone(&sns);
            let lambda = Arc::clone(&lambda);
            let iam = iam.clone();
            let logs = Arc::clone(&logs);
            tokio::spawn(serve(
                ws_listener,
                shutdown_rx,
                move |request: Request<Incoming>, peer| {
                    let websocket = Arc::clone(&websocket);
                    let metrics = Arc::clone(&metrics);
                    let sqs = Arc::clone(&sqs);
                    let secretsmanager = Arc::clone(&secretsmanager);
                    let sns = Arc::clone(&sns);
                    let lambda = Arc::clone(&lambda);
                    let iam = iam.clone();
                    let logs = Arc::clone(&logs);
                    async move {
                        let caller = iam.as_deref().and_then(|iam| iam.caller(&request));
                        if cloudwatch::serves(request.uri().path()) {
                            let denied = caller.and_then(|role| cloudwatch::denial(role, request.uri().path(), &logs));
                            match denied {
                                Some(denied) => Ok(denied),
                                None => Ok(cloudwatch::handle(&metrics, request).await),
                            }
                        } else if sqs::serves(&request) {
                            Ok(sqs.handle(request, caller).await)
                        } else if secretsmanager::serves(&request) {
                            Ok(secretsmanager.handle(request).await)
                        } else if sns::serves(&request) {
                            Ok(sns.handle(request, caller).await)
                        } else if lambda_api::serves(&request) {
                            Ok(lambda.handle(request, caller).await)
                        } else {
                            websocket.handle(request, peer).await
                        }
                    }
                },
            ));
        }
        Ok(LocalStack {
            http_address,
            ws_address,
            web_address,
            dynamodb_endpoint,
            pools,
            http,
            websocket,
            logs,
            shutdown,
            dynamodb,
            dynamodb_relay,
            sqs,
            secretsmanager,
            sns,
            event_sources,
            streams,
            faults,
            fault_proxy,
            iam_proxy,
            s3,
            s3_iam_proxy,
        })
    }

    /// The local S3 endpoint the functions get (`AWS_ENDPOINT_URL_S3`; the IAM proxy in front of the
    /// S3 server when IAM is enforced), when the template has the attachments bucket.
    pub fn s3_url(&self) -> Option<String> {
        match &self.s3_iam_proxy {
            Some(proxy) => Some(proxy.endpoint()),
            None => self.s3.as_ref().map(s3_local::S3Local::endpoint),
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_address)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws_address)
    }

    /// Where the web client is served (with its `/config.json`), when it is.
    pub fn web_url(&self) -> Option<String> {
        self.web_address.map(|address| format!("http://{address}"))
    }

    /// The base URL of the @connections management API.
    pub fn connections_url(&self) -> String {
        format!("http://{}/@connections", self.ws_address)
    }

    /// The endpoint of the local CloudWatch metrics API (`AWS_ENDPOINT_URL_CLOUDWATCH` of the functions).
    pub fn cloudwatch_url(&self) -> String {
        format!("http://{}", self.ws_address)
    }

    /// The stack's DynamoDB endpoint: DynamoDB Local, through a relay that tells the stream pollers
    /// something may have been written (a write straight to DynamoDB Local's own port reaches the stream
    /// mappings within a minute while the stack is otherwise quiet; through this one, at once).
    pub fn dynamodb_endpoint(&self) -> Option<&str> {
        self.dynamodb_endpoint.as_deref()
    }

    /// The endpoint of the local Secrets Manager (`AWS_ENDPOINT_URL_SECRETS_MANAGER` of the functions).
    pub fn secretsmanager_url(&self) -> String {
        format!("http://{}", self.ws_address)
    }

    /// The current `SecretString` of a template secret (by logical id or ARN).
    /// What the functions published to SNS platform endpoints (APNs and FCM pushes), oldest first.
    pub fn sns_publishes(&self) -> Vec<sns::SnsPublish> {
        self.sns.published()
    }

    /// Disables an SNS platform endpoint, as SNS does when APNs or FCM reports its token invalid.
    pub fn disable_sns_endpoint(&self, arn: &str) -> bool {
        self.sns.disable_endpoint(arn)
    }

    /// The SNS platform endpoints now registered: (ARN, device token).
    pub fn sns_endpoints(&self) -> Vec<(String, String)> {
        self.sns.endpoints()
    }

    pub fn secret_string(&self, secret: &str) -> Option<String> {
        self.secretsmanager.current(secret)
    }

    /// The environment a function's processes start with (without the Lambda runtime's own variables).
    pub fn function_environment(&self, logical_id: &str) -> Option<Vec<(String, String)>> {
        self.pools.get(logical_id).map(|pool| pool.spec.environment.clone())
    }

    /// The endpoint of the local SQS API (`AWS_ENDPOINT_URL_SQS` of the functions).
    pub fn sqs_url(&self) -> String {
        format!("http://{}", self.ws_address)
    }

    /// The URL of a template queue (what `!Ref` gives the functions), by logical id.
    pub fn queue_url(&self, logical_id: &str) -> Option<String> {
        self.sqs.queue(logical_id).map(|q| q.config.url.clone())
    }

    /// The name of a template queue (`!GetAtt Q.QueueName`, the `QueueName` of its metrics), by logical
    /// id: a FIFO queue's ends in `.fifo`.
    pub fn queue_name(&self, logical_id: &str) -> Option<String> {
        self.sqs.queue(logical_id).map(|q| q.config.name.clone())
    }

    /// Stops (true) or resumes the event source mappings, SQS and DynamoDB stream alike: while stopped,
    /// messages pile up in the queues and records in the table's stream, and on resume they go out in
    /// batches. Batches already running finish (a stream batch's retries included).
    pub fn pause_event_sources(&self, paused: bool) {
        self.event_sources.pause(paused);
        self.streams.pause(paused);
    }

    /// Waits until every DynamoDB stream event source mapping has read the stream up to what was written
    /// before the call and has delivered (or filtered out, or discarded) all of it. While the event
    /// sources are paused with records waiting, it waits for the resume. Tests bound it with a timeout.
    pub async fn streams_idle(&self) {
        self.streams.idle().await;
    }

    /// How many calls the stream event source mappings (and the stack's start) have made to DynamoDB
    /// Local's streams API: DescribeTable, DescribeStream, GetShardIterator, GetRecords.
    pub fn stream_calls(&self) -> StreamCalls {
        self.streams.calls()
    }

    /// A template queue's messages by state: (visible, in flight, delayed). Panics for a logical id that
    /// is not a queue of the template.
    pub fn queue_depth(&self, logical_id: &str) -> (usize, usize, usize) {
        let depth = self.template_queue(logical_id).depth();
        (depth.visible, depth.in_flight, depth.delayed)
    }

    /// The bodies of a template queue's messages (visible, in flight and delayed), oldest first; they
    /// stay in the queue. Panics for a logical id that is not a queue of the template.
    pub fn queue_messages(&self, logical_id: &str) -> Vec<String> {
        self.template_queue(logical_id).bodies()
    }

    fn template_queue(&self, logical_id: &str) -> &Arc<sqs::Queue> {
        self.sqs.queue(logical_id).unwrap_or_else(|| {
            let known: Vec<&str> = self.sqs.queues().map(|q| q.config.logical_id.as_str()).collect();
            panic!("{logical_id} is not an AWS::SQS::Queue of the template (its queues: {known:?})")
        })
    }

    /// Where the functions' DynamoDB calls go when fault injection is on (the fault proxy).
    pub fn fault_proxy_url(&self) -> Option<String> {
        self.fault_proxy.as_ref().map(FaultProxy::endpoint)
    }

    /// The test harness's fault endpoint (`GET`/`PUT /@faults`), when fault injection is on.
    pub fn faults_url(&self) -> Option<String> {
        self.faults
            .as_ref()
            .map(|_| format!("http://{}/@faults", self.ws_address))
    }

    /// Replaces the fault configuration (as `PUT /@faults` does); an error when the shares are out of
    /// range or the stack runs without fault injection.
    pub fn set_faults(&self, config: FaultConfig) -> Result<(), String> {
        match &self.faults {
            Some(faults) => faults.set_config(config),
            None => Err("the stack runs without fault injection (Options::fault_injection)".to_owned()),
        }
    }

    /// The fault configuration and how many faults of each kind were injected (all zero without
    /// fault injection).
    pub fn faults(&self) -> (FaultConfig, FaultCounters) {
        match &self.faults {
            Some(faults) => (faults.config(), faults.counters()),
            None => (FaultConfig::default(), FaultCounters::default()),
        }
    }

    /// Counters of one function, by logical id or binary name.
    pub fn stats(&self, function: &str) -> Option<FunctionStats> {
        self.pools
            .iter()
            .find(|(id, pool)| *id == function || pool.spec.binary == function)
            .map(|(_, pool)| pool.stats())
    }

    /// Invokes a function directly with `payload`, as `aws lambda invoke` would (for functions no API
    /// routes to, such as the alarm responder). The function's result, or why there is none.
    pub async fn invoke(&self, function: &str, payload: &serde_json::Value) -> Result<serde_json::Value, String> {
        let pool = self
            .pools
            .iter()
            .find(|(id, pool)| *id == function || pool.spec.binary == function)
            .map(|(_, pool)| Arc::clone(pool))
            .ok_or_else(|| format!("no function {function}"))?;
        let result = pool
            .invoke(bytes::Bytes::from(payload.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&result).map_err(|e| format!("the result is not JSON: {e}"))
    }

    /// The HTTP routes served, most specific first: exactly the template's.
    pub fn http_routes(&self) -> Vec<String> {
        self.http.router.route_keys()
    }

    pub fn open_connections(&self) -> usize {
        self.websocket.connection_count()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lines()
    }

    /// Stops serving, closes connections, stops every function instance and DynamoDB Local.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.streams.flush() {
            self.logs
                .gateway(&format!("stream checkpoints could not be written ({e})"));
        }
        self.websocket.close_all();
        for pool in self.pools.values() {
            pool.stop().await;
        }
        if let Some(proxy) = self.fault_proxy.take() {
            proxy.stop();
        }
        if let Some(proxy) = self.iam_proxy.take() {
            proxy.stop();
        }
        if let Some(proxy) = self.s3_iam_proxy.take() {
            proxy.stop();
        }
        if let Some(relay) = self.dynamodb_relay.take() {
            relay.stop();
        }
        if let Some(mut s3) = self.s3.take() {
            let _ = tokio::task::spawn_blocking(move || s3.stop()).await;
        }
        if let Some(mut dynamodb) = self.dynamodb.take() {
            let _ = tokio::task::spawn_blocking(move || dynamodb.stop()).await;
        }
    }
}

/// What @connections calls are checked against: the template's WebSocket API, named as `!Ref` names it
/// locally, and its stage.
fn connections_iam(
    iam: Option<&Arc<iam::Iam>>,
    template: &Template,
    apis: &[parley_template::WebSocketApi],
    resolver: &Resolver,
) -> Option<websocket::ConnectionsIam> {
    let api = apis.first()?;
    let stage = template
        .resource_ids()
        .into_iter()
        .filter(|id| template.resource_type(id) == Some("AWS::ApiGatewayV2::Stage"))
        .find_map(|id| {
            let properties = template.resource(&id)?.get("Properties")?;
            let name = properties.get("StageName")?.as_str()?;
            Some(name.to_owned())
        })
        .unwrap_or_else(|| "$default".to_owned());
    Some(websocket::ConnectionsIam {
        iam: Arc::clone(iam?),
        api_id: resolver
            .resolve(&parley_template::Intrinsic::Ref(api.logical_id.clone()))
            .unwrap_or_else(|_| api.logical_id.clone()),
        stage,
    })
}

/// What the run command runs when it builds: the gateway itself built with the `local` profile (an
/// unoptimised gateway takes a third of a core under load; BENCHMARKS.md, issue 21), in the same cargo
/// build as the template's functions, so a first run compiles their shared dependencies once and in
/// parallel; the optimised gateway's own build of the functions then finds them fresh. The path of the
/// optimised gateway.
pub fn build_gateway(options: &Options) -> Result<PathBuf, StackError> {
    let workspace = workspace_root(&options.template);
    let functions: Vec<String> = Template::load(&options.template)?
        .functions()?
        .into_iter()
        .map(|function| function.binary)
        .collect();
    let mut binaries = binaries::binaries_to_build(&workspace, Profile::Local, &functions);
    binaries.push(binaries::GATEWAY.to_owned());
    binaries::build(&workspace, Profile::Local, &binaries).map_err(StackError::Build)?;
    Ok(binaries::executable(&workspace, Profile::Local, binaries::GATEWAY))
}

/// Accepts HTTP/1.1 connections (with upgrades) until shutdown.
/// After a failed accept (out of file descriptors, most likely): accept fails again at once until
/// something closes, so spinning on it would take a whole core from the connections that could close.
pub(crate) async fn accept_failed() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Whether a request is an AWS JSON-protocol call to the service whose `X-Amz-Target`s start with
/// `target_prefix` (`AmazonSQS.`, `secretsmanager.`): how the services sharing the gateway's WebSocket
/// port tell their calls apart (WebSocket upgrades are GETs; @connections calls carry no target).
pub(crate) fn is_aws_json_call<B>(request: &Request<B>, target_prefix: &str) -> bool {
    request.method() == hyper::Method::POST
        && request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|target| target.starts_with(target_prefix))
}

async fn serve<H, F>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>>
        + Send
        + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    accept_failed().await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let handler = handler.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handler(request, peer));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// The Cargo workspace that holds the template's function crates: the nearest folder above the template
/// whose Cargo.toml declares `[workspace]`.
fn workspace_root(template: &Path) -> PathBuf {
    let start = template.parent().unwrap_or(Path::new("."));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// `template.yaml` of this workspace.
pub fn workspace_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

fn resolver_for_cors(template: &Template, options: &Options) -> Resolver {
    Resolver::new(template, options.parameters.clone()).with_secrets(&options.secrets)
}

/// Starts s3rver with the template's `AttachmentsBucket` (named by its logical id, as `!Ref` resolves
/// it locally), its CORS origins from `CorsAllowedOrigins`; none when the template has no such bucket.
async fn start_s3(options: &Options, resolver: &Resolver) -> Result<Option<s3_local::S3Local>, StackError> {
    const BUCKET: &str = "AttachmentsBucket";
    let text = std::fs::read_to_string(&options.template)?;
    let root: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| StackError::Resource {
        resource: BUCKET.to_owned(),
        problem: e.to_string(),
    })?;
    let is_bucket = root
        .get("Resources")
        .and_then(|r| r.get(BUCKET))
        .and_then(|b| b.get("Type"))
        .and_then(serde_yaml_ng::Value::as_str)
        == Some("AWS::S3::Bucket");
    if !is_bucket {
        return Ok(None);
    }
    let origins = resolver
        .resolve(&parley_template::Intrinsic::Ref("CorsAllowedOrigins".to_owned()))
        .map(|list| {
            list.split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let storage = match &options.storage {
        Storage::InMemory => s3_local::Storage::InMemory,
        Storage::Directory(dir) => s3_local::Storage::Directory(dir.parent().unwrap_or(dir).join("s3")),
    };
    let s3_options = s3_local::Options {
        storage,
        // With IAM enforced, the IAM proxy in front of it takes the port.
        port: (options.s3_port != 0 && !options.iam_enforcement).then_some(options.s3_port),
        bucket: BUCKET.to_owned(),
        cors_origins: origins,
    };
    let port = options.s3_port;
    tokio::task::spawn_blocking(move || s3_local::S3Local::start(s3_options))
        .await
        .map_err(|e| StackError::Build(e.to_string()))?
        .map(Some)
        .map_err(|e| match e {
            s3_local::Error::PortInUse(_) => StackError::PortInUse {
                port,
                flag: "--s3-port",
            },
            other => StackError::Resource {
                resource: BUCKET.to_owned(),
                problem: other.to_string(),
            },
        })
}
