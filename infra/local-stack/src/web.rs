//! The web client (`web/`), served as the CloudFront distribution of template.yaml serves it: the built
//! files of `web/dist` (hashed assets cached for a year, `index.html` revalidated every time, unknown
//! paths answered with `index.html` for the single-page app's routes), plus a generated `/config.json`
//! naming the HTTP and WebSocket API URLs, so one build runs against any stack.

use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

pub struct WebClient {
    root: PathBuf,
    config: Bytes,
}

/// The client's sources: `web/` of the workspace.
pub fn source_dir(workspace: &Path) -> PathBuf {
    workspace.join("web")
}

/// Builds `web/dist` when it is missing: `npm ci` (pinned by `web/package-lock.json`) and `npm run build`.
pub fn ensure_built(web: &Path, dist: &Path) -> Result<(), String> {
    if dist.join("index.html").is_file() {
        return Ok(());
    }
    let how = format!(
        "the web client is not built ({} is missing); build it with `npm ci && npm run build` in {}, or run without it (--no-web)",
        dist.join("index.html").display(),
        web.display()
    );
    if !web.join("package-lock.json").is_file() {
        return Err(how);
    }
    for args in [&["ci", "--no-audit", "--no-fund"][..], &["run", "build"][..]] {
        let status = Command::new("npm")
            .args(args)
            .current_dir(web)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("{how} (npm could not be started: {e})"))?;
        if !status.success() {
            return Err(format!("{how} (`npm {}` failed)", args.join(" ")));
        }
    }
    Ok(())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl WebClient {
    pub fn new(root: PathBuf, http_url: &str, ws_url: &str) -> Arc<Self> {
        let config = json!({ "httpUrl": http_url, "wsUrl": ws_url }).to_string();
        Arc::new(WebClient {
            root,
            config: Bytes::from(config),
        })
    }

    fn reply(status: StatusCode, content_type: &str, cache: &str, body: Bytes) -> Response<Full<Bytes>> {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("cache-control", cache)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .body(Full::new(body))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }

    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
            return Ok(Self::reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "no-store",
                Bytes::from_static(b"method not allowed"),
            ));
        }
        let path = crate::url::percent_decode(request.uri().path());
        if path == "/config.json" {
            return Ok(Self::reply(
                StatusCode::OK,
                "application/json",
                "no-store",
                self.config.clone(),
            ));
        }
        let relative = Path::new(path.trim_start_matches('/'));
        if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Ok(Self::reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "no-store",
                Bytes::from_static(b"not found"),
            ));
        }
        let file = self.root.join(relative);
        let (file, found) = match tokio::fs::metadata(&file).await {
            Ok(meta) if meta.is_file() => (file, true),
            // A route of the single-page app (no extension) gets the app; a missing asset is a 404.
            _ if relative.extension().is_none() => (self.root.join("index.html"), true),
            _ => (file, false),
        };
        let body = match (found, tokio::fs::read(&file).await) {
            (true, Ok(body)) => Bytes::from(body),
            _ => {
                return Ok(Self::reply(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    "no-store",
                    Bytes::from_static(b"not found"),
                ))
            }
        };
        let cache = if relative.starts_with("assets") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        Ok(Self::reply(StatusCode::OK, content_type(&file), cache, body))
    }
}
