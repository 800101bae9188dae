//! CORS as an HTTP API with a `CorsConfiguration` answers it: API Gateway itself replies to preflight
//! `OPTIONS` requests (no route or function involved) and adds the `Access-Control-*` headers to every
//! response for an allowed origin. The configuration is read from the template's
//! `AWS::Serverless::HttpApi` (`AllowOrigins` may be a `!Ref` to a `CommaDelimitedList` parameter).

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use parley_template::Intrinsic;
use serde_yaml_ng::Value;

use crate::resolve::Resolver;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

/// A string, `!Ref X` or `{Ref: X}`, resolved; a list is each of its items resolved.
fn strings(value: &Value, resolver: &Resolver) -> Result<Vec<String>, String> {
    let one = |v: &Value| -> Result<Vec<String>, String> {
        let intrinsic = match v {
            Value::String(s) => Intrinsic::Literal(s.clone()),
            Value::Number(n) => Intrinsic::Literal(n.to_string()),
            Value::Tagged(t) if t.tag == "Ref" => Intrinsic::Ref(t.value.as_str().unwrap_or_default().to_owned()),
            Value::Mapping(m) if m.len() == 1 && m.get("Ref").is_some() => {
                Intrinsic::Ref(m.get("Ref").and_then(Value::as_str).unwrap_or_default().to_owned())
            }
            other => return Err(format!("cannot evaluate {other:?}")),
        };
        // A CommaDelimitedList parameter resolves to its comma-joined text.
        Ok(resolver
            .resolve(&intrinsic)?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect())
    };
    match value {
        Value::Sequence(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>().map(|v| v.concat()),
        other => one(other),
    }
}

/// The CORS configuration of the template's HTTP API, if it has one.
pub fn from_template(path: &Path, resolver: &Resolver) -> Result<Option<Cors>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let root: Value = serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?;
    let Some(resources) = root.get("Resources").and_then(Value::as_mapping) else {
        return Ok(None);
    };
    let api = resources
        .values()
        .find(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::HttpApi"));
    let Some(config) = api
        .and_then(|a| a.get("Properties"))
        .and_then(|p| p.get("CorsConfiguration"))
    else {
        return Ok(None);
    };
    let list = |key: &str| match config.get(key) {
        Some(v) => strings(v, resolver).map_err(|e| format!("CorsConfiguration.{key}: {e}")),
        None => Ok(Vec::new()),
    };
    Ok(Some(Cors {
        allow_origins: list("AllowOrigins")?,
        allow_methods: list("AllowMethods")?,
        allow_headers: list("AllowHeaders")?,
        expose_headers: list("ExposeHeaders")?,
        max_age: config.get("MaxAge").and_then(Value::as_u64),
        allow_credentials: config.get("AllowCredentials").and_then(Value::as_bool).unwrap_or(false),
    }))
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for this request's `Origin`, when it is allowed.
    fn allowed_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == origin) {
            Some(origin.to_owned())
        } else if self.allow_origins.iter().any(|o| o == "*") {
            Some(if self.allow_credentials {
                origin.to_owned()
            } else {
                "*".to_owned()
            })
        } else {
            None
        }
    }

    /// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): API Gateway's answer.
    pub fn preflight(&self, method: &str, headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
        if method != "OPTIONS" {
            return None;
        }
        let origin = headers.get("origin")?.to_str().ok()?;
        let requested = headers.get("access-control-request-method")?.to_str().ok()?;
        let mut response = Response::builder().status(StatusCode::NO_CONTENT);
        let method_ok = self
            .allow_methods
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(requested));
        if let (Some(allowed), true) = (self.allowed_origin(origin), method_ok) {
            response = response.header("access-control-allow-origin", allowed);
            let methods = if self.allow_methods.iter().any(|m| m == "*") {
                requested.to_owned()
            } else {
                self.allow_methods.join(",")
            };
            response = response.header("access-control-allow-methods", methods);
            let wanted = headers
                .get("access-control-request-headers")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let allow_headers = if self.allow_headers.iter().any(|h| h == "*") {
                wanted.to_owned()
            } else {
                self.allow_headers.join(",")
            };
            if !allow_headers.is_empty() {
                response = response.header("access-control-allow-headers", allow_headers);
            }
            if let Some(max_age) = self.max_age {
                response = response.header("access-control-max-age", max_age.to_string());
            }
            if self.allow_credentials {
                response = response.header("access-control-allow-credentials", "true");
            }
        }
        response.header("vary", "Origin").body(Full::new(Bytes::new())).ok()
    }

    /// Adds the CORS headers to a response for a request from `origin`.
    pub fn decorate(&self, origin: Option<&str>, headers: &mut HeaderMap) {
        let Some(allowed) = origin.and_then(|o| self.allowed_origin(o)) else {
            return;
        };
        if let Ok(value) = HeaderValue::from_str(&allowed) {
            headers.insert("access-control-allow-origin", value);
        }
        if !self.expose_headers.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&self.expose_headers.join(",")) {
                headers.insert("access-control-expose-headers", value);
            }
        }
        if self.allow_credentials {
            headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
        }
        headers.append("vary", HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["authorization".into(), "content-type".into()],
            expose_headers: vec!["retry-after".into()],
            max_age: Some(600),
            allow_credentials: false,
        }
    }

    fn preflight_headers(origin: &str, method: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("origin", origin.parse().unwrap());
        headers.insert("access-control-request-method", method.parse().unwrap());
        headers
    }

    #[test]
    fn preflights_are_answered_for_allowed_origins_only() {
        let any = cors(&["*"]);
        let answer = any
            .preflight("OPTIONS", &preflight_headers("http://a", "POST"))
            .unwrap();
        assert_eq!(answer.status(), 204);
        assert_eq!(answer.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            answer.headers()["access-control-allow-headers"],
            "authorization,content-type"
        );
        assert_eq!(answer.headers()["access-control-max-age"], "600");
        let one = cors(&["http://a"]);
        let refused = one
            .preflight("OPTIONS", &preflight_headers("http://b", "POST"))
            .unwrap();
        assert!(refused.headers().get("access-control-allow-origin").is_none());
        assert!(any.preflight("GET", &preflight_headers("http://a", "POST")).is_none());
        assert!(any.preflight("OPTIONS", &HeaderMap::new()).is_none());
    }

    #[test]
    fn responses_carry_the_origin_and_exposed_headers() {
        let mut headers = HeaderMap::new();
        cors(&["http://a"]).decorate(Some("http://a"), &mut headers);
        assert_eq!(headers["access-control-allow-origin"], "http://a");
        assert_eq!(headers["access-control-expose-headers"], "retry-after");
        let mut headers = HeaderMap::new();
        cors(&["http://a"]).decorate(Some("http://b"), &mut headers);
        assert!(headers.is_empty());
    }
}
