//! The run command as a person uses it: start, see the URLs, serve, Ctrl-C, and nothing left behind.

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Every process below `root`, from /proc.
fn descendants(root: u32) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) start with state, then ppid.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if found.insert(*child) {
                todo.push(*child);
            }
        }
    }
    found
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn ctrl_c_stops_everything_and_leaves_no_orphans() {
    let mut stack = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-stack"))
        // Debug functions: what the test suite builds anyway (the run command's own `local` profile
        // would be a second optimised build of every function).
        .args([
            "--http-port",
            "0",
            "--ws-port",
            "0",
            "--in-memory",
            "--quiet",
            "--debug",
            "--no-web",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the local stack");
    let pid = stack.id().unwrap();
    let mut lines = BufReader::new(stack.stdout.take().unwrap()).lines();
    let mut http_url = None;
    let mut printed = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(600), lines.next_line()).await {
        printed.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("HTTP API:") {
            http_url = Some(url.trim().to_owned());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let http_url = http_url.unwrap_or_else(|| panic!("no HTTP URL printed: {printed:?}"));
    assert!(
        printed
            .iter()
            .any(|l| l.contains("WebSocket API:") && l.contains("ws://127.0.0.1:")),
        "{printed:?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // Serve something, so that function instances are running too.
    let client = reqwest::Client::new();
    let health = client
        .post(format!("{http_url}/auth/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 400, "the login function answered");
    let me = client.get(format!("{http_url}/users/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);

    let before = descendants(pid);
    assert!(
        before.len() >= 3,
        "DynamoDB Local and two function instances run: {before:?}"
    );

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(30), stack.wait())
        .await
        .expect("the stack stops within 30 s after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left: Vec<u32> = before.into_iter().filter(|p| running(*p)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
