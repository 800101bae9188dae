//! A benchmark, not a test (ignored): DynamoDB Local's start-up time and throughput under JVM option sets,
//! to choose the options `DynamoDbLocal::start` passes. For each set it starts the jar in memory, times
//! start-up to the first answered call (CreateTable, with a stream as Parley's table has) and the CPU
//! the JVM took for it, then has 16 clients make PutItem, UpdateItem (ADD) and Query (a 20-item
//! partition) calls in turn: the first 5,000 (a test's DynamoDB Local, still compiling), then 40,000
//! more (the run command's, warmed up). It reports DynamoDB Local's CPU per call (what the two cores
//! feel; wall-clock rates swing with whatever else runs) and calls per second for each, and its
//! resident memory.
//!
//! `cargo test -p dynamodb-local --test jvm -- --ignored --nocapture`
//! (`JVM_BENCH_COLD_CALLS`, `JVM_BENCH_WARM_CALLS`, `JVM_BENCH_CLIENTS`, `JVM_BENCH_ROUNDS` change the
//! phases, concurrency and repetitions; `JVM_BENCH_ONLY=<label>;<label>` runs only those sets.) The clients are plain blocking HTTP/1.1 over
//! keep-alive connections, so that they take as little of the two cores as can be.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AUTHORIZATION: &str =
    "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/// The option sets compared: label, options (before `-jar`).
fn candidates(heap: &str) -> Vec<(&'static str, Vec<String>)> {
    let with = |extra: &[&str]| -> Vec<String> {
        let mut options = vec![format!("-Xmx{heap}")];
        options.extend(extra.iter().map(|s| (*s).to_owned()));
        options
    };
    vec![
        ("serial (current)", with(&["-XX:+UseSerialGC"])),
        (
            "serial, C1 only",
            with(&["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]),
        ),
        ("parallel", with(&["-XX:+UseParallelGC"])),
        (
            "serial, Xms=Xmx, pretouch",
            with(&["-XX:+UseSerialGC", &format!("-Xms{heap}"), "-XX:+AlwaysPreTouch"]),
        ),
        ("serial, Xss256k", with(&["-XX:+UseSerialGC", "-Xss256k"])),
        ("serial, -UsePerfData", with(&["-XX:+UseSerialGC", "-XX:-UsePerfData"])),
        ("serial, Xshare:off", with(&["-XX:+UseSerialGC", "-Xshare:off"])),
        (
            "serial, app CDS",
            with(&[
                "-XX:+UseSerialGC",
                "-XX:SharedArchiveFile=/tmp/parley-dynamodb-local-bench.jsa",
            ]),
        ),
        (
            "serial, C1 only, app CDS",
            with(&[
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:SharedArchiveFile=/tmp/parley-dynamodb-local-bench.jsa",
            ]),
        ),
    ]
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts DynamoDB Local and creates the table: the server, the time to the first answer, and the CPU
/// seconds the JVM took for it.
fn start(options: &[String]) -> (Server, Duration, f64) {
    let jar = dynamodb_local::ensure_installed().expect("DynamoDB Local installs");
    let dir = jar.parent().unwrap().to_path_buf();
    let port = dynamodb_local::free_port().unwrap();
    let started = Instant::now();
    let child = Command::new("java")
        .args(options)
        .arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .arg("-jar")
        .arg(&jar)
        .args([
            "-sharedDb",
            "-disableTelemetry",
            "-inMemory",
            "-port",
            &port.to_string(),
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("java starts");
    let server = Server { child, port };
    loop {
        if let Ok(mut connection) = Connection::open(port) {
            let (status, _) = connection.call(
                "CreateTable",
                r#"{"TableName":"Bench","BillingMode":"PAY_PER_REQUEST",
                "AttributeDefinitions":[{"AttributeName":"PK","AttributeType":"S"},{"AttributeName":"SK","AttributeType":"S"}],
                "KeySchema":[{"AttributeName":"PK","KeyType":"HASH"},{"AttributeName":"SK","KeyType":"RANGE"}],
                "StreamSpecification":{"StreamEnabled":true,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#,
            );
            assert_eq!(status, 200, "CreateTable");
            let cpu = cpu_seconds(server.child.id());
            return (server, started.elapsed(), cpu);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "DynamoDB Local started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Connection {
    fn open(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
            port,
        })
    }

    /// One DynamoDB call: the status and the body.
    fn call(&mut self, operation: &str, body: &str) -> (u16, String) {
        let request = format!(
            "POST / HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: \
             DynamoDB_20120810.{operation}\r\nauthorization: {AUTHORIZATION}\r\ncontent-length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("request written");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Runs the mix until `target` calls have been answered: (calls, errors, seconds taken).
fn run_load(port: u16, clients: u64, target: u64) -> (u64, u64, f64) {
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (stop, calls, errors) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&errors));
            std::thread::spawn(move || {
                let mut connection = Connection::open(port).expect("connect");
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) && calls.load(Ordering::Relaxed) < target {
                    let pk = format!("CONV#{}", (client * 7919 + n) % 200);
                    let sk = format!("MSG#{:06}", n % 20);
                    let (operation, body) = match n % 3 {
                        0 => (
                            "PutItem",
                            format!(
                                r#"{{"TableName":"Bench","Item":{{"PK":{{"S":"{pk}"}},"SK":{{"S":"{sk}"}},"text":{{"S":"hello there, a message of some length {n}"}},"n":{{"N":"{n}"}}}}}}"#
                            ),
                        ),
                        1 => (
                            "UpdateItem",
                            format!(
                                r#"{{"TableName":"Bench","Key":{{"PK":{{"S":"{pk}"}},"SK":{{"S":"COUNTER"}}}},"UpdateExpression":"ADD c :one","ExpressionAttributeValues":{{":one":{{"N":"1"}}}},"ReturnValues":"UPDATED_NEW"}}"#
                            ),
                        ),
                        _ => (
                            "Query",
                            format!(
                                r#"{{"TableName":"Bench","KeyConditionExpression":"PK = :pk AND begins_with(SK, :m)","ExpressionAttributeValues":{{":pk":{{"S":"{pk}"}},":m":{{"S":"MSG#"}}}},"Limit":20,"ScanIndexForward":false}}"#
                            ),
                        ),
                    };
                    let (status, _) = connection.call(operation, &body);
                    if status == 200 {
                        calls.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    (
        calls.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn dynamodb_local_under_jvm_option_sets() {
    let cold = env_number("JVM_BENCH_COLD_CALLS", 5_000);
    let warm = env_number("JVM_BENCH_WARM_CALLS", 40_000);
    let clients = env_number("JVM_BENCH_CLIENTS", 16);
    let rounds = env_number("JVM_BENCH_ROUNDS", 1);
    let only = std::env::var("JVM_BENCH_ONLY").ok();
    // The app CDS archive of the last set: written by a run that exits (as a test's DynamoDB Local does).
    let archive = "/tmp/parley-dynamodb-local-bench.jsa";
    {
        let _ = std::fs::remove_file(archive);
        let mut options = vec![
            "-Xmx384m".to_owned(),
            "-XX:+UseSerialGC".to_owned(),
            format!("-XX:ArchiveClassesAtExit={archive}"),
        ];
        options.push("-Xlog:cds=off".to_owned());
        let (mut server, _, _) = start(&options);
        run_load(server.port, 2, 2_000);
        // A clean exit writes the archive (SIGTERM runs the JVM's shutdown).
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
        let _ = server.child.wait();
    }
    println!(
        "| options | start to first answer (ms) | its CPU (ms) | first {cold} calls: CPU per call (us) | calls/s | next \
         {warm}: CPU per call (us) | calls/s | RSS after (MB) | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for round in 0..rounds {
        for (label, options) in candidates("384m") {
            if only.as_deref().is_some_and(|o| !o.split(';').any(|o| o == label)) {
                continue;
            }
            let (server, startup, startup_cpu) = start(&options);
            let pid = server.child.id();
            let cpu_before = cpu_seconds(pid);
            let (cold_calls, cold_errors, cold_seconds) = run_load(server.port, clients, cold);
            let cpu_cold = cpu_seconds(pid) - cpu_before;
            let (warm_calls, warm_errors, warm_seconds) = run_load(server.port, clients, warm);
            let cpu_warm = cpu_seconds(pid) - cpu_before - cpu_cold;
            println!(
                "| {label}{} (`{}`) | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                if rounds > 1 {
                    format!(", round {}", round + 1)
                } else {
                    String::new()
                },
                options.join(" "),
                startup.as_millis(),
                startup_cpu * 1e3,
                cpu_cold * 1e6 / cold_calls.max(1) as f64,
                cold_calls as f64 / cold_seconds,
                cpu_warm * 1e6 / warm_calls.max(1) as f64,
                warm_calls as f64 / warm_seconds,
                rss_mb(pid),
                cold_errors + warm_errors,
            );
        }
    }
}
