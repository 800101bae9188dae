//! A local stand-in for Secrets Manager, holding the template's `AWS::SecretsManager::Secret`s, so the
//! functions read the token secret with `GetSecretValue` as deployed (`AWS_ENDPOINT_URL_SECRETS_MANAGER`
//! points at the gateway), and a test or a person can rotate it with `PutSecretValue`.
//!
//! The protocol is AWS JSON 1.1: `POST /` with `X-Amz-Target: secretsmanager.<Operation>`, a JSON
//! object each way; an error is a 400 with `{"__type": "<Code>", "Message": ...}`, as the service sends.
//!
//! Served: GetSecretValue (by name, full ARN or ARN without its random suffix; by `VersionId` or
//! `VersionStage`), PutSecretValue (the new version becomes AWSCURRENT and the old one AWSPREVIOUS) and
//! DescribeSecret. Secrets are the template's, created when the stack starts; their `SecretString` is
//! the JSON of their keys' local values (`Options::secrets` over the `SecretStringTemplate` literals).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::ids::{self, name_in_secret_arn, secret_arn};

const TARGET_PREFIX: &str = "secretsmanager.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The service's own limit on a secret value is 64 KiB.
const MAX_REQUEST_BYTES: usize = 128 * 1024;

type HttpResponse = Response<Full<Bytes>>;

/// Whether a request on the gateway's WebSocket port is for this API.
pub fn serves<B>(request: &Request<B>) -> bool {
    crate::is_aws_json_call(request, TARGET_PREFIX)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    fn not_found() -> Self {
        ApiError::new(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        )
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameterException", message)
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new("InvalidRequestException", message)
    }

    /// What Secrets Manager answers a caller its policies do not allow (see [`SecretsManager::authorize`]).
    #[allow(dead_code)]
    pub fn access_denied(message: impl Into<String>) -> Self {
        ApiError::new("AccessDeniedException", message)
    }

    fn response(&self) -> HttpResponse {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "__type": self.code, "Message": self.message }),
        )
    }
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    string: String,
    stages: Vec<String>,
    created: SystemTime,
}

#[derive(Debug, Clone)]
struct Secret {
    name: String,
    arn: String,
    description: Option<String>,
    created: SystemTime,
    last_changed: SystemTime,
    /// Newest last; only those with a stage are kept (the service also drops unlabelled versions).
    versions: Vec<Version>,
}

impl Secret {
    fn by_stage(&self, stage: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.stages.iter().any(|s| s == stage))
    }
}

/// One call, as an authorization check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The IAM action, e.g. `secretsmanager:GetSecretValue`.
    pub action: &'a str,
    /// The secret's ARN (or, for a secret that does not exist, the `SecretId` as given).
    pub resource: &'a str,
    /// The caller's access key id, from the SigV4 `Authorization` header.
    pub access_key_id: Option<&'a str>,
}

pub struct SecretsManager {
    /// By name.
    secrets: Mutex<BTreeMap<String, Secret>>,
    /// The functions' roles and where denials are logged; None: nothing is checked.
    iam: Option<(std::sync::Arc<crate::iam::Iam>, std::sync::Arc<crate::logs::LogBook>)>,
}

impl SecretsManager {
    /// `secrets`: name -> initial `SecretString`.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        let now = SystemTime::now();
        let secrets = secrets
            .into_iter()
            .map(|(name, string)| {
                let secret = Secret {
                    arn: secret_arn(&name),
                    name: name.clone(),
                    description: None,
                    created: now,
                    last_changed: now,
                    versions: vec![Version {
                        id: ids::invocation_id(),
                        string,
                        stages: vec!["AWSCURRENT".to_owned()],
                        created: now,
                    }],
                };
                (name, secret)
            })
            .collect();
        SecretsManager {
            secrets: Mutex::new(secrets),
            iam: None,
        }
    }

    /// Checks the functions' calls against their roles (`Options::iam_enforcement`).
    pub fn with_iam(
        mut self,
        iam: Option<(std::sync::Arc<crate::iam::Iam>, std::sync::Arc<crate::logs::LogBook>)>,
    ) -> Self {
        self.iam = iam;
        self
    }

    /// The template's secrets: each `AWS::SecretsManager::Secret`, named by its logical id (what
    /// `!Ref` names locally, see `resolve.rs`), holding its literal `SecretString` or the JSON of its
    /// keys' local values.
    pub fn from_template(template: &parley_template::Template, resolver: &crate::resolve::Resolver) -> Self {
        let mut secrets = Vec::new();
        for id in template.resource_ids() {
            if template.resource_type(&id) != Some("AWS::SecretsManager::Secret") {
                continue;
            }
            let literal = template
                .resource(&id)
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("SecretString"))
                .and_then(|s| s.as_str())
                .map(str::to_owned);
            let string = literal.unwrap_or_else(|| {
                let keys: Map<String, Value> = resolver
                    .secret_keys(&id)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                Value::Object(keys).to_string()
            });
            secrets.push((id, string));
        }
        SecretsManager::new(secrets)
    }

    /// The current `SecretString` of a secret (by name or ARN).
    pub fn current(&self, secret_id: &str) -> Option<String> {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let secret = find(&secrets, secret_id)?;
        secret.by_stage("AWSCURRENT").map(|v| v.string.clone())
    }

    /// The one place a call is authorized: every operation comes through here with its action and
    /// resource before it reads or changes anything. Locally everything is allowed; the IAM check
    /// (the calling function's role by `call.access_key_id`) goes here.
    fn authorize(&self, call: &Call) -> Result<(), ApiError> {
        let Some((iam, logs)) = &self.iam else {
            return Ok(());
        };
        let Some(role) = call.access_key_id.and_then(|key| iam.role_of_key(key)) else {
            return Ok(());
        };
        match crate::iam::check(role, call.action, call.resource, &[]) {
            None => Ok(()),
            Some((message, log)) => {
                logs.gateway(&log);
                Err(ApiError::new("AccessDeniedException", message))
            }
        }
    }

    pub async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let operation = header("x-amz-target")
            .and_then(|t| t.strip_prefix(TARGET_PREFIX).map(str::to_owned))
            .unwrap_or_default();
        let access_key_id = header("authorization").and_then(|a| crate::iam::access_key_id(&a).map(str::to_owned));
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return ApiError::invalid_request(format!("the request body is over {MAX_REQUEST_BYTES} bytes"))
                    .response()
            }
        };
        let input: Value = match serde_json::from_slice(&body) {
            Ok(value @ Value::Object(_)) => value,
            _ if body.is_empty() => json!({}),
            _ => {
                return ApiError::new("SerializationException", "the request body is not a JSON object").response();
            }
        };
        let result = match operation.as_str() {
            "GetSecretValue" => self.get_secret_value(&input, access_key_id.as_deref()),
            "PutSecretValue" => self.put_secret_value(&input, access_key_id.as_deref()),
            "DescribeSecret" => self.describe_secret(&input, access_key_id.as_deref()),
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!(
                    "The local stack's Secrets Manager does not implement {other}: its secrets are template.yaml's, \
                     created when the stack starts."
                ),
            )),
        };
        match result {
            Ok(output) => json_response(StatusCode::OK, &output),
            Err(error) => error.response(),
        }
    }

    /// Looks the secret up and authorizes the call on it; an unknown secret is authorized on the id as
    /// given, so a caller without permission learns nothing about which secrets exist.
    fn with_secret<T>(
        &self,
        input: &Value,
        action: &str,
        access_key_id: Option<&str>,
        act: impl FnOnce(&mut Secret) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let secret_id = input
            .get("SecretId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_parameter("You must provide a SecretId."))?;
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let name = find(&secrets, secret_id).map(|s| s.name.clone());
        let resource = name.as_ref().map_or(secret_id.to_owned(), |n| secret_arn(n));
        self.authorize(&Call {
            action,
            resource: &resource,
            access_key_id,
        })?;
        let secret = name.and_then(|n| secrets.get_mut(&n)).ok_or_else(ApiError::not_found)?;
        act(secret)
    }

    fn get_secret_value(&self, input: &Value, access_key_id: Option<&str>) -> Result<Value, ApiError> {
        let version_id = input.get("VersionId").and_then(Value::as_str);
        let stage = input.get("VersionStage").and_then(Value::as_str);
        self.with_secret(input, "secretsmanager:GetSecretValue", access_key_id, |secret| {
            let version = match (version_id, stage) {
                (Some(id), stage) => secret
                    .versions
                    .iter()
                    .find(|v| v.id == id && stage.is_none_or(|s| v.stages.iter().any(|vs| vs == s))),
                (None, stage) => secret.by_stage(stage.unwrap_or("AWSCURRENT")),
            }
            .ok_or_else(|| {
                ApiError::new(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for the specified version or staging label.",
                )
            })?;
            Ok(json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": version.id,
                "SecretString": version.string,
                "VersionStages": version.stages,
                "CreatedDate": epoch_seconds(version.created),
            }))
        })
    }

    fn put_secret_value(&self, input: &Value, access_key_id: Option<&str>) -> Result<Value, ApiError> {
        let string = match (input.get("SecretString"), input.get("SecretBinary")) {
            (Some(Value::String(s)), None) => s.clone(),
            (None, Some(_)) => {
                return Err(ApiError::invalid_request(
                    "The local stack's Secrets Manager holds SecretString values only.",
                ))
            }
            _ => {
                return Err(ApiError::invalid_parameter(
                    "You must provide either SecretString or SecretBinary.",
                ))
            }
        };
        let token = input
            .get("ClientRequestToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let stages: Vec<String> = match input.get("VersionStages").and_then(Value::as_array) {
            Some(stages) => stages.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            None => vec!["AWSCURRENT".to_owned()],
        };
        self.with_secret(input, "secretsmanager:PutSecretValue", access_key_id, |secret| {
            if let Some(existing) = token.as_ref().and_then(|t| secret.versions.iter().find(|v| &v.id == t)) {
                // A retried call with the same token is idempotent; another value under it is an error.
                if existing.string != string {
                    return Err(ApiError::new(
                        "ResourceExistsException",
                        "You can't modify an existing version, you can only create a new version.",
                    ));
                }
                return Ok(json!({
                    "ARN": secret.arn, "Name": secret.name, "VersionId": existing.id, "VersionStages": existing.stages,
                }));
            }
            let now = SystemTime::now();
            if stages.iter().any(|s| s == "AWSCURRENT") {
                // The current version becomes the previous one, as a rotation leaves it.
                for version in &mut secret.versions {
                    version.stages.retain(|s| s != "AWSPREVIOUS");
                }
                for version in &mut secret.versions {
                    if let Some(current) = version.stages.iter_mut().find(|s| *s == "AWSCURRENT") {
                        *current = "AWSPREVIOUS".to_owned();
                    }
                }
            }
            for version in &mut secret.versions {
                version.stages.retain(|s| s == "AWSPREVIOUS" || !stages.contains(s));
            }
            let version = Version {
                id: token.unwrap_or_else(ids::invocation_id),
                string,
                stages: stages.clone(),
                created: now,
            };
            secret.versions.push(version.clone());
            secret.versions.retain(|v| !v.stages.is_empty());
            secret.last_changed = now;
            Ok(json!({
                "ARN": secret.arn, "Name": secret.name, "VersionId": version.id, "VersionStages": version.stages,
            }))
        })
    }

    fn describe_secret(&self, input: &Value, access_key_id: Option<&str>) -> Result<Value, ApiError> {
        self.with_secret(input, "secretsmanager:DescribeSecret", access_key_id, |secret| {
            let stages: Map<String, Value> = secret
                .versions
                .iter()
                .map(|v| (v.id.clone(), json!(v.stages)))
                .collect();
            let mut output = json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "CreatedDate": epoch_seconds(secret.created),
                "LastChangedDate": epoch_seconds(secret.last_changed),
                "VersionIdsToStages": stages,
            });
            if let Some(description) = &secret.description {
                output["Description"] = json!(description);
            }
            Ok(output)
        })
    }
}

/// By name, full ARN, or ARN without its random suffix (what Secrets Manager accepts as `SecretId`).
fn find<'a>(secrets: &'a BTreeMap<String, Secret>, secret_id: &str) -> Option<&'a Secret> {
    if let Some(secret) = secrets.get(secret_id) {
        return Some(secret);
    }
    secrets
        .values()
        .find(|s| s.arn == secret_id || name_in_secret_arn(secret_id, false) == Some(s.name.as_str()))
}

fn epoch_seconds(at: SystemTime) -> f64 {
    ids::epoch_millis(at) as f64 / 1000.0
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-requestid", ids::invocation_id())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

    use super::*;
    use crate::ids::{secret_name, REGION};

    const TOKEN: &str = r#"{"current":"parley-local-development-secret-not-for-production","previous":"none"}"#;

    /// The service on a port of its own, and a real SDK client pointed at it.
    async fn start() -> (Arc<SecretsManager>, aws_sdk_secretsmanager::Client) {
        let service = Arc::new(SecretsManager::new([(
            "TokenSigningSecret".to_owned(),
            TOKEN.to_owned(),
        )]));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = Arc::clone(&service);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = Arc::clone(&served);
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(move |request| {
                        let service = Arc::clone(&service);
                        async move {
                            assert!(serves(&request));
                            Ok::<_, std::convert::Infallible>(service.handle(request).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new(REGION))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "local", "local", None, None, "test",
            ))
            .endpoint_url(format!("http://{address}"))
            .build();
        (service, aws_sdk_secretsmanager::Client::from_conf(config))
    }

    #[tokio::test]
    async fn get_secret_value_by_name_and_by_arn() {
        let (_, client) = start().await;
        let arn = secret_arn("TokenSigningSecret");
        assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:TokenSigningSecret-"));
        let partial = arn[..arn.len() - 7].to_owned();
        for id in ["TokenSigningSecret", arn.as_str(), partial.as_str()] {
            let got = client.get_secret_value().secret_id(id).send().await.unwrap();
            assert_eq!(got.secret_string(), Some(TOKEN), "{id}");
            assert_eq!(got.arn(), Some(arn.as_str()));
            assert_eq!(got.name(), Some("TokenSigningSecret"));
            assert_eq!(got.version_stages(), ["AWSCURRENT"]);
        }
    }

    #[tokio::test]
    async fn an_unknown_secret_is_resource_not_found() {
        let (_, client) = start().await;
        for id in ["Nope", &secret_arn("Nope")] {
            let error = client.get_secret_value().secret_id(id).send().await.unwrap_err();
            let service = error.into_service_error();
            assert!(service.is_resource_not_found_exception(), "{service:?}");
            assert_eq!(
                service.message(),
                Some("Secrets Manager can't find the specified secret.")
            );
        }
        let error = client
            .put_secret_value()
            .secret_id("Nope")
            .secret_string("{}")
            .send()
            .await
            .unwrap_err();
        assert!(error.into_service_error().is_resource_not_found_exception());
    }

    #[tokio::test]
    async fn a_put_value_is_current_and_the_old_one_previous() {
        let (service, client) = start().await;
        let rotated = r#"{"current":"another-secret-another-secret-another","previous":"parley-local-development-secret-not-for-production"}"#;
        let put = client
            .put_secret_value()
            .secret_id(secret_arn("TokenSigningSecret"))
            .secret_string(rotated)
            .send()
            .await
            .unwrap();
        assert_eq!(put.version_stages(), ["AWSCURRENT"]);
        let got = client
            .get_secret_value()
            .secret_id("TokenSigningSecret")
            .send()
            .await
            .unwrap();
        assert_eq!(got.secret_string(), Some(rotated));
        assert_eq!(got.version_id(), put.version_id());
        assert_eq!(service.current("TokenSigningSecret").as_deref(), Some(rotated));
        let previous = client
            .get_secret_value()
            .secret_id("TokenSigningSecret")
            .version_stage("AWSPREVIOUS")
            .send()
            .await
            .unwrap();
        assert_eq!(previous.secret_string(), Some(TOKEN));

        let described = client
            .describe_secret()
            .secret_id("TokenSigningSecret")
            .send()
            .await
            .unwrap();
        let stages = described.version_ids_to_stages().unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[put.version_id().unwrap()], ["AWSCURRENT"]);
    }

    #[tokio::test]
    async fn other_operations_are_refused_by_name() {
        let (_, client) = start().await;
        let error = client.list_secrets().send().await.unwrap_err();
        let service = error.into_service_error();
        assert_eq!(service.code(), Some("UnknownOperationException"));
        assert!(service.message().unwrap().contains("ListSecrets"));
    }

    #[test]
    fn arns_name_their_secrets() {
        let arn = secret_arn("TokenSigningSecret");
        assert_eq!(secret_arn("TokenSigningSecret"), arn, "stable");
        assert_eq!(secret_name(&arn), "TokenSigningSecret");
        assert_eq!(secret_name("TokenSigningSecret"), "TokenSigningSecret");
    }
}
