//! The web client (`web/`) in a real browser: Debian's Chromium (installed with apt-get when missing and
//! this runs as root), driven by `playwright-core` (pinned by web/package-lock.json; no downloaded
//! browser builds). The test installs the pinned npm packages (`npm ci`, skipped while the lock file is
//! unchanged), builds the client, runs its Vitest unit tests, starts three local stacks that serve the
//! built client (one with a tiny sign-in rate limit, one that closes every WebSocket after 6 s), and runs
//! `web/e2e/run.mjs` against them.
//!
//! `PARLEY_SCREENSHOT=<file.png>` also saves a screenshot of a conversation (the README's).

use std::path::{Path, PathBuf};
use std::process::Command;

use parley_tests::{start_stack_with, RATE_LIMITS_OFF};

const CHROMIUM: &str = "/usr/bin/chromium";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../web")
        .canonicalize()
        .expect("the web client's folder")
}

fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CI", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{program} could not be started: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn must(dir: &Path, program: &str, args: &[&str]) -> String {
    let (ok, output) = run(dir, program, args);
    assert!(ok, "`{program} {}` failed:\n{output}", args.join(" "));
    output
}

/// Debian's `chromium`: present, or installed when we may (root), or a clear failure.
fn chromium() -> String {
    if Path::new(CHROMIUM).is_file() {
        return CHROMIUM.to_owned();
    }
    let root = run(Path::new("/"), "id", &["-u"]).1.trim() == "0";
    assert!(
        root,
        "{CHROMIUM} is missing: install Debian's chromium package (`sudo apt-get install -y chromium`); \
         the browser tests drive it with playwright-core and download no browser of their own"
    );
    let (ok, output) = run(Path::new("/"), "apt-get", &["install", "-y", "chromium"]);
    if !ok {
        // A fresh machine may not have the package lists yet.
        must(Path::new("/"), "apt-get", &["update"]);
        let (ok, again) = run(Path::new("/"), "apt-get", &["install", "-y", "chromium"]);
        assert!(ok, "apt-get install -y chromium failed:\n{output}\n{again}");
    }
    assert!(
        Path::new(CHROMIUM).is_file(),
        "apt-get installed chromium, but {CHROMIUM} is missing"
    );
    CHROMIUM.to_owned()
}

/// `npm ci` (exactly the lock file), only when the lock file changed since the last install.
fn npm_ci(web: &Path) {
    let lock_file = std::fs::read_to_string(web.join("package-lock.json")).expect("web/package-lock.json");
    let stamp = web.join("node_modules/.parley-installed-lock.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock_file.as_str()) {
        return;
    }
    must(web, "npm", &["ci", "--no-audit", "--no-fund", "--prefer-offline"]);
    std::fs::write(&stamp, lock_file).expect("the install stamp");
}

#[test]
fn the_web_client_works_in_a_real_browser() {
    let web = web_dir();
    let chromium = chromium();
    // One test process at a time builds web/ (another checkout's run or a second test binary).
    std::fs::create_dir_all(web.join("../.local")).unwrap();
    let lock = std::fs::File::create(web.join("../.local/web-client.lock")).unwrap();
    lock.lock().unwrap();
    npm_ci(&web);
    must(&web, "npm", &["run", "build"]);
    println!("{}", must(&web, "npm", &["run", "--silent", "budget"]));
    must(&web, "npm", &["test"]);

    let serve_web = |options: &mut local_stack::Options| {
        options.web_port = Some(0);
        options.web_root = Some(web_dir().join("dist"));
    };
    let open = start_stack_with(&RATE_LIMITS_OFF, serve_web);
    let limited = start_stack_with(&[("RateLimitSensitivePerMinute", "3")], serve_web);
    // API Gateway closes every WebSocket connection after 2 hours (and one idle for 10 minutes); this
    // stack after 6 s, so the browser meets such a close and must reconnect and catch up.
    let short_lived = start_stack_with(&RATE_LIMITS_OFF, move |options| {
        serve_web(options);
        options.limits.max_connection_duration = std::time::Duration::from_secs(6);
    });
    let web_url = open.web_url.clone().expect("the stack serves the web client");
    let limited_url = limited.web_url.clone().expect("the stack serves the web client");
    let short_lived_url = short_lived.web_url.clone().expect("the stack serves the web client");

    let mut cors_refused: Vec<&str> = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The stack serves the app, its hashed assets with a long cache lifetime, and the API URLs.
        let client = reqwest::Client::new();
        let index = client.get(format!("{web_url}/")).send().await.unwrap();
        assert_eq!(index.status(), 200);
        assert_eq!(index.headers()["cache-control"], "no-cache");
        let html = index.text().await.unwrap();
        let asset = html
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .expect("index.html loads a hashed script");
        let script = client.get(format!("{web_url}{asset}")).send().await.unwrap();
        assert_eq!(script.status(), 200);
        assert!(script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let config: serde_json::Value = client
            .get(format!("{web_url}/config.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(config["httpUrl"], open.http_url.as_str());
        assert_eq!(config["wsUrl"], open.ws_url.as_str());
        // A route of the app gets the app; a missing asset and a path outside the folder do not.
        assert_eq!(client.get(format!("{web_url}/c/x")).send().await.unwrap().status(), 200);
        assert_eq!(
            client
                .get(format!("{web_url}/assets/nope.js"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        // CORS, as the template's HttpApi CorsConfiguration says: preflight and the response headers.
        let preflight = client
            .request(reqwest::Method::OPTIONS, format!("{}/auth/login", open.http_url))
            .header("origin", &web_url)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        assert!(preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST"));
        // Reactions (and blocks) are PUT and DELETE: a browser sends them only after a preflight allows them.
        for method in ["PUT", "DELETE"] {
            let preflight = client
                .request(
                    reqwest::Method::OPTIONS,
                    format!("{}/conversations/c/messages/m/reactions/%F0%9F%91%8D", open.http_url),
                )
                .header("origin", &web_url)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap();
            let allowed = preflight.headers().contains_key("access-control-allow-origin")
                && preflight
                    .headers()
                    .get("access-control-allow-methods")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|m| m.split(',').any(|m| m.trim().eq_ignore_ascii_case(method)));
            if !allowed {
                cors_refused.push(method);
            }
        }
        let health = client
            .get(format!("{}/health", open.http_url))
            .header("origin", &web_url)
            .send()
            .await
            .unwrap();
        assert_eq!(health.headers()["access-control-allow-origin"], "*");
        assert!(health.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("retry-after"));
    });

    let output = Command::new("node")
        .arg("e2e/run.mjs")
        .current_dir(&web)
        .env("PARLEY_WEB_URL", &web_url)
        .env("PARLEY_LIMITED_WEB_URL", &limited_url)
        .env("PARLEY_SHORT_LIVED_WEB_URL", &short_lived_url)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node could not be started");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    // Checked after the browser suite (which then fails at its first reaction) so that it still runs.
    assert!(
        cors_refused.is_empty(),
        "the HTTP API's CORS preflight refuses {cors_refused:?} (template.yaml, HttpApi CorsConfiguration \
         AllowMethods): browsers cannot send those requests (reactions and blocks are PUT and DELETE)\n{text}"
    );
    assert!(output.status.success(), "the browser suite failed:\n{text}");
    // The client keeps a sync token from sign-in on and catches up after a reconnect with `GET /sync`
    // (run.mjs checks that the answers carried the messages dave missed): carol's and dave's tokens,
    // and at least dave's sync after the stack closed his socket.
    let syncs = short_lived.stats("sync-get").map_or(0, |s| s.invocations);
    assert!(
        syncs >= 3,
        "the short-lived stack's sync-get ran {syncs} times: the web client does not sync after reconnects"
    );
}
