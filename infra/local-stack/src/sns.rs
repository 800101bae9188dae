//! A local stand-in for Amazon SNS mobile push, enough for APNs and FCM devices: platform endpoints of
//! any platform application ARN, and publishes to them recorded (never sent anywhere), so tests can see
//! what a phone would have been sent ([`Sns::published`]) and what a dead device does
//! ([`Sns::disable_endpoint`], or `SetEndpointAttributes` with `Enabled=false`, as SNS itself does when
//! APNs or FCM reports the token invalid).
//!
//! The protocol is awsQuery, as `aws-sdk-sns` speaks it: `POST /` with a form body
//! (`Action=<Operation>&Version=2010-03-31&...`), XML back; an error is a 4xx with
//! `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>..`.
//!
//! Served: CreatePlatformEndpoint (idempotent for the same token), Publish (to an endpoint;
//! `MessageStructure=json` needs a JSON object with a `default` key), DeleteEndpoint (idempotent),
//! SetEndpointAttributes (`Enabled`), GetEndpointAttributes. Anything else is `InvalidAction`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};

use crate::ids::{self, ACCOUNT_ID, REGION};

/// SNS's own limit on a request (a 256 KiB message and its parameters).
const MAX_REQUEST_BYTES: usize = 300 * 1024;

type HttpResponse = Response<Full<Bytes>>;

/// Whether a request on the gateway's WebSocket port is an SNS call: a form POST to `/`.
pub fn serves<B>(request: &Request<B>) -> bool {
    request.method() == hyper::Method::POST
        && request.uri().path() == "/"
        && request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

/// One publish, as a test reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsPublish {
    pub target_arn: String,
    /// The device token of the endpoint.
    pub token: String,
    pub message: String,
    pub message_structure: Option<String>,
    pub at: SystemTime,
}

#[derive(Debug, Clone)]
struct Endpoint {
    token: String,
    enabled: bool,
}

#[derive(Debug)]
struct Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Error {
    fn invalid(message: impl Into<String>) -> Self {
        Error {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidParameter",
            message: message.into(),
        }
    }
}

pub struct Sns {
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
    published: Mutex<Vec<SnsPublish>>,
    iam: Option<(std::sync::Arc<crate::iam::Iam>, std::sync::Arc<crate::logs::LogBook>)>,
}

impl Sns {
    pub fn new(iam: Option<(std::sync::Arc<crate::iam::Iam>, std::sync::Arc<crate::logs::LogBook>)>) -> Self {
        Sns {
            endpoints: Mutex::new(BTreeMap::new()),
            published: Mutex::new(Vec::new()),
            iam,
        }
    }

    /// Every publish so far, oldest first.
    pub fn published(&self) -> Vec<SnsPublish> {
        self.published.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Marks an endpoint disabled, as SNS does when the platform reports its token invalid; `false` when
    /// there is no such endpoint.
    pub fn disable_endpoint(&self, arn: &str) -> bool {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        match endpoints.get_mut(arn) {
            Some(endpoint) => {
                endpoint.enabled = false;
                true
            }
            None => false,
        }
    }

    /// The endpoints now registered (ARN, token).
    pub fn endpoints(&self) -> Vec<(String, String)> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints
            .iter()
            .map(|(arn, e)| (arn.clone(), e.token.clone()))
            .collect()
    }

    pub async fn handle<B>(&self, request: Request<B>, caller: Option<&crate::iam::Role>) -> HttpResponse
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return error_response(&Error::invalid("the request is too large")),
        };
        let params: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let action = params.get("Action").cloned().unwrap_or_default();
        let outcome = self
            .authorize(caller, &action, &params)
            .and_then(|()| self.call(&action, &params));
        match outcome {
            Ok(result) => xml_response(StatusCode::OK, &action, &result),
            Err(error) => error_response(&error),
        }
    }

    fn authorize(
        &self,
        caller: Option<&crate::iam::Role>,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let (Some((_, logs)), Some(role)) = (&self.iam, caller) else {
            return Ok(());
        };
        let resource = match action {
            "CreatePlatformEndpoint" => params.get("PlatformApplicationArn"),
            "Publish" => params.get("TargetArn").or_else(|| params.get("TopicArn")),
            _ => params.get("EndpointArn"),
        }
        .cloned()
        .unwrap_or_else(|| "*".to_owned());
        match crate::iam::check(role, &format!("sns:{action}"), &resource, &[]) {
            None => Ok(()),
            Some((message, log)) => {
                logs.gateway(&log);
                Err(Error {
                    status: StatusCode::FORBIDDEN,
                    code: "AuthorizationError",
                    message,
                })
            }
        }
    }

    fn call(&self, action: &str, params: &BTreeMap<String, String>) -> Result<String, Error> {
        let param = |name: &str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::invalid(format!("Invalid parameter: {name}")))
        };
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        match action {
            "CreatePlatformEndpoint" => {
                let application = param("PlatformApplicationArn")?;
                let token = param("Token")?;
                let platform = platform_of(application)
                    .ok_or_else(|| Error::invalid("Invalid parameter: PlatformApplicationArn"))?;
                if platform.starts_with("APNS") && !(token.len() <= 400 && token.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(Error::invalid(
                        "Invalid parameter: Token Reason: iOS device tokens must be no more than 400 hexadecimal characters",
                    ));
                }
                let name = application.rsplit('/').next().unwrap_or("app");
                let existing = endpoints
                    .iter()
                    .find(|(arn, e)| e.token == *token && arn.contains(&format!("endpoint/{platform}/{name}/")))
                    .map(|(arn, _)| arn.clone());
                let arn = existing.unwrap_or_else(|| {
                    let arn = format!(
                        "arn:aws:sns:{REGION}:{ACCOUNT_ID}:endpoint/{platform}/{name}/{}",
                        ids::request_id()
                    );
                    endpoints.insert(
                        arn.clone(),
                        Endpoint {
                            token: token.clone(),
                            enabled: true,
                        },
                    );
                    arn
                });
                Ok(format!("<EndpointArn>{}</EndpointArn>", escape(&arn)))
            }
            "Publish" => {
                let target = param("TargetArn")?;
                let message = param("Message")?;
                let structure = params.get("MessageStructure").cloned();
                let endpoint = endpoints.get(target).ok_or(Error {
                    status: StatusCode::NOT_FOUND,
                    code: "NotFound",
                    message: "Endpoint does not exist".to_owned(),
                })?;
                if !endpoint.enabled {
                    return Err(Error::invalid("Endpoint is disabled")).map_err(|e| Error {
                        code: "EndpointDisabled",
                        ..e
                    });
                }
                if structure.as_deref() == Some("json") {
                    let parsed: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(message).ok();
                    if !parsed.is_some_and(|m| m.get("default").is_some_and(|d| d.is_string())) {
                        return Err(Error::invalid(
                            "Invalid parameter: Message Structure - No default entry in JSON message body",
                        ));
                    }
                }
                let token = endpoint.token.clone();
                drop(endpoints);
                self.published
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(SnsPublish {
                        target_arn: target.clone(),
                        token,
                        message: message.clone(),
                        message_structure: structure,
                        at: SystemTime::now(),
                    });
                Ok(format!("<MessageId>{}</MessageId>", ids::request_id()))
            }
            "DeleteEndpoint" => {
                endpoints.remove(param("EndpointArn")?);
                Ok(String::new())
            }
            "SetEndpointAttributes" => {
                let arn = param("EndpointArn")?;
                let endpoint = endpoints.get_mut(arn).ok_or(Error {
                    status: StatusCode::NOT_FOUND,
                    code: "NotFound",
                    message: "Endpoint does not exist".to_owned(),
                })?;
                for index in 1.. {
                    let Some(key) = params.get(&format!("Attributes.entry.{index}.key")) else {
                        break;
                    };
                    let value = params
                        .get(&format!("Attributes.entry.{index}.value"))
                        .cloned()
                        .unwrap_or_default();
                    match key.as_str() {
                        "Enabled" => endpoint.enabled = value.eq_ignore_ascii_case("true"),
                        "Token" => endpoint.token = value,
                        _ => {}
                    }
                }
                Ok(String::new())
            }
            "GetEndpointAttributes" => {
                let endpoint = endpoints.get(param("EndpointArn")?).ok_or(Error {
                    status: StatusCode::NOT_FOUND,
                    code: "NotFound",
                    message: "Endpoint does not exist".to_owned(),
                })?;
                Ok(format!(
                    "<Attributes><entry><key>Enabled</key><value>{}</value></entry><entry><key>Token</key><value>{}</value></entry></Attributes>",
                    endpoint.enabled,
                    escape(&endpoint.token)
                ))
            }
            other => Err(Error {
                status: StatusCode::BAD_REQUEST,
                code: "InvalidAction",
                message: format!(
                    "The action {other} is not valid for this web service (the local SNS serves mobile push only)."
                ),
            }),
        }
    }
}

/// `APNS`, `APNS_SANDBOX` or `GCM` from `arn:aws:sns:<region>:<account>:app/<platform>/<name>`.
fn platform_of(application_arn: &str) -> Option<&str> {
    let rest = application_arn.strip_prefix("arn:aws:sns:")?;
    let (_, app) = rest.split_once(":app/")?;
    let (platform, name) = app.split_once('/')?;
    (matches!(platform, "APNS" | "APNS_SANDBOX" | "GCM") && !name.is_empty()).then_some(platform)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_response(status: StatusCode, action: &str, result: &str) -> HttpResponse {
    let body = format!(
        "<{action}Response xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        ids::request_id()
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn error_response(error: &Error) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        error.code,
        escape(&error.message),
        ids::request_id()
    );
    Response::builder()
        .status(error.status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_come_from_application_arns() {
        assert_eq!(
            platform_of("arn:aws:sns:us-east-1:123456789012:app/GCM/parley"),
            Some("GCM")
        );
        assert_eq!(
            platform_of("arn:aws:sns:us-east-1:123456789012:app/APNS/parley"),
            Some("APNS")
        );
        assert_eq!(platform_of("arn:aws:sns:us-east-1:123456789012:app/SMS/parley"), None);
        assert_eq!(platform_of("nonsense"), None);
    }

    #[test]
    fn endpoints_are_idempotent_and_publishes_recorded() {
        let sns = Sns::new(None);
        let create = |token: &str| {
            let params = BTreeMap::from([
                (
                    "PlatformApplicationArn".to_owned(),
                    "arn:aws:sns:us-east-1:123456789012:app/GCM/parley".to_owned(),
                ),
                ("Token".to_owned(), token.to_owned()),
            ]);
            sns.call("CreatePlatformEndpoint", &params).unwrap()
        };
        let first = create("device-1");
        assert_eq!(create("device-1"), first);
        assert_ne!(create("device-2"), first);
        let arn = first
            .trim_start_matches("<EndpointArn>")
            .trim_end_matches("</EndpointArn>")
            .to_owned();
        let publish = |message: &str| {
            let params = BTreeMap::from([
                ("TargetArn".to_owned(), arn.clone()),
                ("Message".to_owned(), message.to_owned()),
                ("MessageStructure".to_owned(), "json".to_owned()),
            ]);
            sns.call("Publish", &params)
        };
        assert!(publish(r#"{"default":"hi","GCM":"{}"}"#).is_ok());
        assert_eq!(publish(r#"{"GCM":"{}"}"#).unwrap_err().code, "InvalidParameter");
        assert_eq!(sns.published().len(), 1);
        assert_eq!(sns.published()[0].token, "device-1");
        assert!(sns.disable_endpoint(&arn));
        assert_eq!(publish(r#"{"default":"hi"}"#).unwrap_err().code, "EndpointDisabled");
    }
}
