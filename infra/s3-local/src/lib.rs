//! An S3-compatible server for tests and the local stack: installs the pinned npm package `s3rver`
//! (package.json and package-lock.json beside this crate) on first use, and runs it on the machine's
//! Node.js through `start.js`, which creates the bucket and accepts the local dummy credentials.
//!
//! Why s3rver (probed against `moto[server]` 5.2.5 with presigned PUTs): s3rver refuses an expired
//! presigned URL (403) and an unknown access key; moto refuses neither. Neither verifies SigV4
//! signatures, so `start.js` verifies them (presigned query and Authorization header alike) before
//! s3rver sees a request: a tampered signature, or a body with another `Content-Length` or
//! `Content-Type` than the signed ones, is refused with 403 as S3 refuses it, and so is an anonymous
//! request (the bucket is private). It also answers S3's conditional write (`If-None-Match: *` on a
//! `PUT`: 412 when the object exists), which s3rver ignores and Parley's upload URLs carry. Parley
//! also checks the stored object's size and type (HeadObject) before attaching it, which holds
//! whatever the storage lets through.
//!
//! The process is `local_process::Server`: it dies with the process that started it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The credentials the local server accepts besides s3rver's own (`S3RVER`): what the local stack
/// gives the functions.
pub const ACCESS_KEY: &str = "local";
pub const SECRET_KEY: &str = "local";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Node.js is needed to run the local S3 server, and `node` could not be started: {0}")]
    NodeMissing(std::io::Error),
    #[error("installing s3rver with npm failed ({0}); is npm installed and the npm registry reachable?")]
    Install(String),
    #[error("port {0} is already in use; choose another one")]
    PortInUse(u16),
    #[error("the local S3 server did not start: {0}")]
    Start(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the objects are kept.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A fresh temporary folder, removed when the server stops (s3rver always keeps files).
    InMemory,
    /// This folder (created if missing), so a restart keeps the objects.
    Directory(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub storage: Storage,
    /// `None`: a free port.
    pub port: Option<u16>,
    /// The bucket created at start-up (kept if it exists).
    pub bucket: String,
    /// Origins allowed to upload and download from a browser (the bucket's CORS rule).
    pub cors_origins: Vec<String>,
}

/// A running server. Dropping it stops the server.
pub struct S3Local {
    process: local_process::Server,
    port: u16,
    bucket: String,
    scratch: Option<PathBuf>,
}

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn installed(dir: &Path) -> bool {
    dir.join("node_modules/s3rver/package.json").is_file()
}

/// Runs `npm ci` (pinned by package-lock.json) the first time; several processes take turns.
pub fn ensure_installed() -> Result<PathBuf, Error> {
    let dir = package_dir();
    local_process::npm_ci(&dir, || installed(&dir)).map_err(Error::Install)?;
    if !installed(&dir) {
        return Err(Error::Install(
            "npm finished but s3rver is not in node_modules".to_owned(),
        ));
    }
    Ok(dir)
}

const START_TIMEOUT: Duration = Duration::from_secs(30);

impl S3Local {
    pub fn start(options: Options) -> Result<Self, Error> {
        let dir = ensure_installed()?;
        let port = match options.port {
            Some(port) => {
                TcpListener::bind(("127.0.0.1", port)).map_err(|_| Error::PortInUse(port))?;
                port
            }
            None => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        };
        let (data, scratch) = match &options.storage {
            Storage::Directory(data) => (data.clone(), None),
            Storage::InMemory => {
                let scratch = std::env::temp_dir().join(format!("parley-s3-{}-{port}", std::process::id()));
                (scratch.clone(), Some(scratch))
            }
        };
        std::fs::create_dir_all(&data)?;
        let mut command = Command::new("node");
        command
            .arg(dir.join("start.js"))
            .args(["127.0.0.1", &port.to_string()])
            .arg(&data)
            .arg(&options.bucket)
            .arg(options.cors_origins.join(","))
            .current_dir(&dir);
        let mut server = S3Local {
            process: local_process::Server::spawn("s3-local", command).map_err(Error::NodeMissing)?,
            port,
            bucket: options.bucket,
            scratch,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if server.process.has_exited() {
                return Err(Error::Start(format!(
                    "node exited; its last output:\n{}",
                    server.process.last_output()
                )));
            }
            let ready = server.process.printed(|line| line.starts_with("listening"));
            if ready && TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
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

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoint the functions are given (`AWS_ENDPOINT_URL_S3`, path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, then SIGKILL after five seconds) and removes an in-memory run's folder.
    pub fn stop(&mut self) {
        self.process.stop();
        if let Some(scratch) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(scratch);
        }
    }
}

impl Drop for S3Local {
    fn drop(&mut self) {
        self.stop();
    }
}
