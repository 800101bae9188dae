//! Reads Parley's SAM `template.yaml`, CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)
//! included, into the few typed things the local tools need: the table definition, the SQS queues, and
//! the functions with their routes, queue and table stream events and environment. Errors name the
//! resource and the property at fault. `Fn::ForEach` loops (the `AWS::LanguageExtensions` transform)
//! are expanded first, as CloudFormation expands them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

mod conditions;
mod language_extensions;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template is not valid YAML: {0}")]
    Yaml(String),
    #[error("template: {0}")]
    Shape(String),
    #[error("resource {resource}: {problem}")]
    Resource { resource: String, problem: String },
}

fn resource_error(resource: &str, problem: impl Into<String>) -> TemplateError {
    TemplateError::Resource {
        resource: resource.to_owned(),
        problem: problem.into(),
    }
}

/// A value that may be a CloudFormation intrinsic function, left unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intrinsic {
    Literal(String),
    Ref(String),
    GetAtt(String),
    Sub(String),
    /// Any other function (`!If`, `!Join`, ...), kept as its name.
    Other(String),
}

impl Intrinsic {
    fn from_value(value: &Value) -> Intrinsic {
        match value {
            Value::String(s) => Intrinsic::Literal(s.clone()),
            Value::Number(n) => Intrinsic::Literal(n.to_string()),
            Value::Bool(b) => Intrinsic::Literal(b.to_string()),
            Value::Tagged(tagged) => {
                let name = tagged.tag.to_string().trim_start_matches('!').to_owned();
                let arg = match &tagged.value {
                    Value::String(s) => Some(s.clone()),
                    Value::Sequence(items) => {
                        Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."))
                    }
                    _ => None,
                };
                match (name.as_str(), arg) {
                    ("Ref", Some(arg)) => Intrinsic::Ref(arg),
                    ("GetAtt", Some(arg)) => Intrinsic::GetAtt(arg),
                    ("Sub", Some(arg)) => Intrinsic::Sub(arg),
                    _ => Intrinsic::Other(name),
                }
            }
            Value::Mapping(map) if map.len() == 1 => {
                let (k, v) = map.iter().next().expect("one entry");
                let key = k.as_str().unwrap_or_default();
                match (key, v.as_str()) {
                    ("Ref", Some(arg)) => Intrinsic::Ref(arg.to_owned()),
                    ("Fn::GetAtt", _) => Intrinsic::GetAtt(match v {
                        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."),
                        other => other.as_str().unwrap_or_default().to_owned(),
                    }),
                    ("Fn::Sub", Some(arg)) => Intrinsic::Sub(arg.to_owned()),
                    _ => Intrinsic::Other(key.to_owned()),
                }
            }
            _ => Intrinsic::Other("value".to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub attribute: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection_type: String,
}

/// An `AWS::DynamoDB::Table`'s key structure: what a local table needs to match the deployed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    pub logical_id: String,
    /// (name, type) pairs: `S`, `N` or `B`.
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<KeyElement>,
    pub global_indexes: Vec<IndexDefinition>,
    pub ttl_attribute: Option<String>,
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// Upper case, or `ANY`.
    pub method: String,
    /// As written: `/users/{userId}`, `/files/{proxy+}`.
    pub path: String,
    /// The Lambda authorizer in front of the route, if any.
    pub authorizer: Option<HttpAuthorizer>,
}

/// A Lambda authorizer of an `AWS::Serverless::HttpApi` (`Auth.Authorizers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAuthorizer {
    pub name: String,
    /// The logical id of its function.
    pub function: String,
    /// Header names that must be present (`Identity.Headers`).
    pub identity_headers: Vec<String>,
    /// `{isAuthorized, context}` answers (`EnableSimpleResponses`) rather than IAM policies.
    pub simple_responses: bool,
}

/// An `AWS::Serverless::Function`, with the template's `Globals` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDefinition {
    pub logical_id: String,
    /// The crate (and binary) name: `Metadata.BuildProperties.Binary`.
    pub binary: String,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub environment: BTreeMap<String, Intrinsic>,
    pub http_routes: Vec<HttpRoute>,
    /// The function's `Type: SQS` events: Lambda event source mappings.
    pub queue_events: Vec<QueueEvent>,
    /// The function's `Type: DynamoDB` events: event source mappings on the table's stream.
    pub stream_events: Vec<StreamEvent>,
}

/// An `AWS::SQS::Queue`, standard or FIFO, with SQS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDefinition {
    pub logical_id: String,
    /// `QueueName`, when the template names the queue.
    pub queue_name: Option<String>,
    /// `FifoQueue: true`: its FIFO settings; None for a standard queue.
    pub fifo: Option<FifoSettings>,
    pub visibility_timeout_secs: u64,
    pub delay_secs: u64,
    pub retention_secs: u64,
    pub maximum_message_size: u64,
    pub receive_wait_secs: u64,
    pub sqs_managed_sse: bool,
    pub redrive: Option<RedrivePolicy>,
}

impl QueueDefinition {
    /// The queue's name: `QueueName`, else the logical id, with the `.fifo` suffix SQS requires of a FIFO
    /// queue (CloudFormation adds it to the names it makes up for FIFO queues).
    pub fn name(&self) -> String {
        match (&self.queue_name, &self.fifo) {
            (Some(name), _) => name.clone(),
            (None, Some(_)) => format!("{}{FIFO_SUFFIX}", self.logical_id),
            (None, None) => self.logical_id.clone(),
        }
    }
}

/// What a FIFO queue's `ContentBasedDeduplication`, `DeduplicationScope` and `FifoThroughputLimit` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoSettings {
    /// Without a `MessageDeduplicationId`, the SHA-256 of the body deduplicates.
    pub content_based_deduplication: bool,
    pub deduplication_scope: DeduplicationScope,
    pub throughput_limit: FifoThroughputLimit,
}

/// Where a deduplication id must be unique for the deduplication interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeduplicationScope {
    Queue,
    MessageGroup,
}

/// Which throughput quota applies; the local stack enforces neither, it only reports the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FifoThroughputLimit {
    PerQueue,
    PerMessageGroupId,
}

impl DeduplicationScope {
    pub fn as_str(self) -> &'static str {
        match self {
            DeduplicationScope::Queue => "queue",
            DeduplicationScope::MessageGroup => "messageGroup",
        }
    }
}

impl FifoThroughputLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            FifoThroughputLimit::PerQueue => "perQueue",
            FifoThroughputLimit::PerMessageGroupId => "perMessageGroupId",
        }
    }
}

pub const FIFO_SUFFIX: &str = ".fifo";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// The logical id of the dead-letter queue (`deadLetterTargetArn: !GetAtt X.Arn`).
    pub dead_letter_queue: String,
    pub max_receive_count: u64,
}

/// A function event of `Type: SQS`: what Lambda's event source mapping is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    /// The event's name under `Events`.
    pub name: String,
    /// The logical id of the queue (`Queue: !GetAtt Q.Arn`).
    pub queue: String,
    pub batch_size: u64,
    pub maximum_batching_window_secs: u64,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`; None: as many as the function can run.
    pub maximum_concurrency: Option<u64>,
    pub enabled: bool,
}

/// Where a stream event source mapping starts reading a shard it has never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// Only records written after the mapping starts.
    Latest,
}

/// A function event of `Type: DynamoDB`: Lambda's event source mapping on the table's stream, with
/// Lambda's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The event's name under `Events`.
    pub name: String,
    /// The logical id of the table whose stream it reads (`Stream: !GetAtt T.StreamArn`).
    pub table: String,
    pub starting_position: StartingPosition,
    pub batch_size: u64,
    pub maximum_batching_window_secs: u64,
    pub bisect_batch_on_function_error: bool,
    /// `MaximumRetryAttempts`; None: -1, retried until the records expire.
    pub maximum_retry_attempts: Option<u64>,
    /// `MaximumRecordAgeInSeconds`; None: -1, as old as the stream keeps them.
    pub maximum_record_age_secs: Option<u64>,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, as written (JSON objects); a record must match one of them.
    pub filter_patterns: Vec<String>,
    /// `DestinationConfig.OnFailure`: the logical id of the standard SQS queue that gets the metadata
    /// of discarded batches.
    pub on_failure_queue: Option<String>,
    pub enabled: bool,
}

/// A route of an `AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketRoute {
    /// `$connect`, `$disconnect`, `$default` or a value of the selection expression.
    pub route_key: String,
    /// The logical id of the function its integration invokes.
    pub function: String,
    /// The logical id of the REQUEST authorizer's function (only `$connect` may have one).
    pub authorizer: Option<WebSocketAuthorizer>,
    /// True when an `AWS::ApiGatewayV2::RouteResponse` makes the route two-way.
    pub has_response: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketAuthorizer {
    pub function: String,
    /// e.g. `route.request.querystring.token`, `route.request.header.Auth`.
    pub identity_sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketApi {
    pub logical_id: String,
    /// e.g. `$request.body.action`.
    pub route_selection_expression: String,
    pub routes: Vec<WebSocketRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub default: Option<String>,
    pub no_echo: bool,
}

#[derive(Debug)]
pub struct Template {
    resources: Mapping,
    globals: Mapping,
    parameters: Mapping,
    /// The `Conditions` section, evaluated by `conditions::Template::condition_holds`.
    conditions: Mapping,
}

const DEFAULT_TIMEOUT_SECS: u64 = 3;
const DEFAULT_MEMORY_MB: u64 = 128;

/// SQS's defaults and bounds (CreateQueue), and Lambda's for SQS event source mappings.
const QUEUE_VISIBILITY_TIMEOUT: (u64, u64, u64) = (30, 0, 43_200);
const QUEUE_DELAY: (u64, u64, u64) = (0, 0, 900);
const QUEUE_RETENTION: (u64, u64, u64) = (345_600, 60, 1_209_600);
const QUEUE_MAXIMUM_MESSAGE_SIZE: (u64, u64, u64) = (1_048_576, 1_024, 1_048_576);
const QUEUE_RECEIVE_WAIT: (u64, u64, u64) = (0, 0, 20);
const MAX_RECEIVE_COUNT: (u64, u64, u64) = (10, 1, 1_000);
const SQS_BATCH_SIZE: (u64, u64, u64) = (10, 1, 10_000);
const SQS_FIFO_MAX_BATCH_SIZE: u64 = 10;
const SQS_BATCHING_WINDOW: (u64, u64, u64) = (0, 0, 300);
const SQS_MAXIMUM_CONCURRENCY: (u64, u64) = (2, 1_000);
/// Lambda's defaults and bounds for DynamoDB stream event source mappings.
const STREAM_BATCH_SIZE: (u64, u64, u64) = (100, 1, 10_000);
const STREAM_BATCHING_WINDOW: (u64, u64, u64) = (0, 0, 300);
const STREAM_MAXIMUM_RETRY_ATTEMPTS: (u64, u64) = (0, 10_000);
const STREAM_MAXIMUM_RECORD_AGE: (u64, u64) = (60, 604_800);
const STREAM_PARALLELIZATION_FACTOR: (u64, u64, u64) = (1, 1, 10);
/// Lambda's hard limits on filter criteria: filters per mapping, characters per pattern.
const MAX_FILTERS: usize = 10;
const MAX_FILTER_PATTERN_CHARS: usize = 4_096;

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut root: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        language_extensions::expand(&mut root)?;
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or_else(|| TemplateError::Shape("it has no Resources section".to_owned()))?;
        let globals = root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let parameters = root
            .get("Parameters")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let conditions = root
            .get("Conditions")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Template {
            resources,
            globals,
            parameters,
            conditions,
        })
    }

    fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources.iter().filter_map(move |(id, resource)| {
            let id = id.as_str()?;
            (resource.get("Type").and_then(Value::as_str) == Some(kind)).then_some((id, resource))
        })
    }

    /// The one `AWS::DynamoDB::Table`.
    pub fn table(&self) -> Result<TableDefinition, TemplateError> {
        let tables: Vec<_> = self.resources_of_type("AWS::DynamoDB::Table").collect();
        let [(id, resource)] = tables.as_slice() else {
            return Err(TemplateError::Shape(format!(
                "expected exactly one AWS::DynamoDB::Table, found {}",
                tables.len()
            )));
        };
        let props = resource
            .get("Properties")
            .ok_or_else(|| resource_error(id, "has no Properties"))?;
        let attributes = sequence(props, "AttributeDefinitions", id)?
            .iter()
            .map(|a| Ok((string(a, "AttributeName", id)?, string(a, "AttributeType", id)?)))
            .collect::<Result<Vec<_>, TemplateError>>()?;
        let key_schema = read_key_schema(props, id)?;
        let global_indexes = match props.get("GlobalSecondaryIndexes") {
            None => Vec::new(),
            Some(_) => sequence(props, "GlobalSecondaryIndexes", id)?
                .iter()
                .map(|index| {
                    Ok(IndexDefinition {
                        name: string(index, "IndexName", id)?,
                        key_schema: read_key_schema(index, id)?,
                        projection_type: index
                            .get("Projection")
                            .and_then(|p| p.get("ProjectionType"))
                            .and_then(Value::as_str)
                            .unwrap_or("ALL")
                            .to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, TemplateError>>()?,
        };
        for element in key_schema
            .iter()
            .chain(global_indexes.iter().flat_map(|i| &i.key_schema))
        {
            if !attributes.iter().any(|(name, _)| *name == element.attribute) {
                return Err(resource_error(
                    id,
                    format!("key attribute {} is not in AttributeDefinitions", element.attribute),
                ));
            }
        }
        let ttl = props.get("TimeToLiveSpecification");
        Ok(TableDefinition {
            logical_id: id.to_string(),
            attributes,
            key_schema,
            global_indexes,
            ttl_attribute: ttl
                .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
                .and_then(|t| t.get("AttributeName"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream_view_type: props
                .get("StreamSpecification")
                .and_then(|s| s.get("StreamViewType"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    pub fn parameters(&self) -> Vec<Parameter> {
        self.parameters
            .iter()
            .filter_map(|(name, spec)| {
                Some(Parameter {
                    name: name.as_str()?.to_owned(),
                    default: spec.get("Default").and_then(|d| match Intrinsic::from_value(d) {
                        Intrinsic::Literal(v) => Some(v),
                        _ => None,
                    }),
                    no_echo: spec.get("NoEcho").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect()
    }

    /// Every logical id the template defines.
    pub fn resource_ids(&self) -> Vec<String> {
        self.resources
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    }

    /// Every resource's logical id with its `Type`.
    pub fn resource_types(&self) -> BTreeMap<String, String> {
        self.resource_ids()
            .into_iter()
            .map(|id| {
                let kind = self.resource_type(&id).unwrap_or_default().to_owned();
                (id, kind)
            })
            .collect()
    }

    /// A resource as written (loops expanded), for checks of properties the typed readers skip.
    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.resources.get(logical_id)
    }

    /// The `Type` of a resource.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id)?.get("Type")?.as_str()
    }

    /// The WebSocket APIs, their routes resolved down to function logical ids.
    pub fn websocket_apis(&self) -> Result<Vec<WebSocketApi>, TemplateError> {
        let mut apis = Vec::new();
        for (api_id, api) in self.resources_of_type("AWS::ApiGatewayV2::Api") {
            let props = api
                .get("Properties")
                .ok_or_else(|| resource_error(api_id, "has no Properties"))?;
            if props.get("ProtocolType").and_then(Value::as_str) != Some("WEBSOCKET") {
                continue;
            }
            let route_selection_expression = string(props, "RouteSelectionExpression", api_id)?;
            let mut routes = Vec::new();
            for (route_id, route) in self.resources_of_type("AWS::ApiGatewayV2::Route") {
                let rprops = route
                    .get("Properties")
                    .ok_or_else(|| resource_error(route_id, "has no Properties"))?;
                if self.reference(rprops.get("ApiId")).as_deref() != Some(api_id) {
                    continue;
                }
                let route_key = string(rprops, "RouteKey", route_id)?;
                let integration = self.reference(rprops.get("Target")).ok_or_else(|| {
                    resource_error(
                        route_id,
                        "Target must name an integration: !Sub integrations/${Integration}",
                    )
                })?;
                let function = self.integration_function(&integration, route_id)?;
                let authorizer = match rprops.get("AuthorizationType").and_then(Value::as_str) {
                    Some("CUSTOM") => {
                        let authorizer_id = self.reference(rprops.get("AuthorizerId")).ok_or_else(|| {
                            resource_error(route_id, "AuthorizationType CUSTOM needs an AuthorizerId")
                        })?;
                        let authorizer = self
                            .resources
                            .get(authorizer_id.as_str())
                            .and_then(|a| a.get("Properties"))
                            .ok_or_else(|| {
                                resource_error(route_id, format!("authorizer {authorizer_id} is not defined"))
                            })?;
                        let uri = authorizer.get("AuthorizerUri");
                        let function = self.function_in_uri(uri).ok_or_else(|| {
                            resource_error(&authorizer_id, "AuthorizerUri must name a function's Arn")
                        })?;
                        let identity_sources = authorizer
                            .get("IdentitySource")
                            .and_then(Value::as_sequence)
                            .map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                            .unwrap_or_default();
                        Some(WebSocketAuthorizer {
                            function,
                            identity_sources,
                        })
                    }
                    _ => None,
                };
                let has_response = self
                    .resources_of_type("AWS::ApiGatewayV2::RouteResponse")
                    .any(|(_, response)| {
                        self.reference(response.get("Properties").and_then(|p| p.get("RouteId")))
                            .as_deref()
                            == Some(route_id)
                    });
                routes.push(WebSocketRoute {
                    route_key,
                    function,
                    authorizer,
                    has_response,
                });
            }
            routes.sort_by(|a, b| a.route_key.cmp(&b.route_key));
            apis.push(WebSocketApi {
                logical_id: api_id.to_owned(),
                route_selection_expression,
                routes,
            });
        }
        Ok(apis)
    }

    /// The logical id a value points at: `!Ref X`, `!GetAtt X.Attr`, or the one `${X}` / `${X.Attr}` of a `!Sub`
    /// that names a resource.
    fn reference(&self, value: Option<&Value>) -> Option<String> {
        match Intrinsic::from_value(value?) {
            Intrinsic::Ref(id) => Some(id),
            Intrinsic::GetAtt(path) => path.split('.').next().map(str::to_owned),
            Intrinsic::Sub(text) => sub_references(&text)
                .into_iter()
                .map(|r| r.split('.').next().unwrap_or_default().to_owned())
                .map(|id| self.function_of_alias(&id).unwrap_or(id))
                .find(|id| self.resources.contains_key(id.as_str())),
            Intrinsic::Literal(text) => text
                .strip_prefix("integrations/")
                .map(str::to_owned)
                .filter(|id| self.resources.contains_key(id.as_str())),
            Intrinsic::Other(_) => None,
        }
    }

    /// SAM names the alias it publishes for `AutoPublishAlias: live` `<Function>Aliaslive`: the function
    /// behind such an id.
    fn function_of_alias(&self, id: &str) -> Option<String> {
        let (function, alias) = id.split_once("Alias")?;
        let published = self
            .resources
            .get(function)?
            .get("Properties")?
            .get("AutoPublishAlias")?
            .as_str()?;
        (published == alias).then(|| function.to_owned())
    }

    /// The function logical id in a Lambda invocation URI (`...functions/${Fn.Arn}/invocations`).
    fn function_in_uri(&self, value: Option<&Value>) -> Option<String> {
        let id = self.reference(value)?;
        (self.resource_type(&id) == Some("AWS::Serverless::Function")).then_some(id)
    }

    fn integration_function(&self, integration_id: &str, route_id: &str) -> Result<String, TemplateError> {
        let integration = self
            .resources
            .get(integration_id)
            .and_then(|i| i.get("Properties"))
            .ok_or_else(|| resource_error(route_id, format!("integration {integration_id} is not defined")))?;
        self.function_in_uri(integration.get("IntegrationUri"))
            .ok_or_else(|| resource_error(integration_id, "IntegrationUri must name a function's Arn"))
    }

    /// The authorizer a route of `api` (None: SAM's implicit API) uses: the event's `Auth.Authorizer`
    /// (`NONE` for none), else the API's `DefaultAuthorizer`.
    fn route_authorizer(
        &self,
        api: Option<&str>,
        event_auth: Option<&Value>,
        function: &str,
    ) -> Result<Option<HttpAuthorizer>, TemplateError> {
        let auth = api
            .and_then(|id| self.resources.get(id))
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("Auth"));
        let chosen = match event_auth.and_then(|a| a.get("Authorizer")).and_then(Value::as_str) {
            Some("NONE") => return Ok(None),
            Some(name) => Some(name.to_owned()),
            None => auth
                .and_then(|a| a.get("DefaultAuthorizer"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let Some(name) = chosen else { return Ok(None) };
        let definition = auth
            .and_then(|a| a.get("Authorizers"))
            .and_then(|a| a.get(name.as_str()))
            .ok_or_else(|| resource_error(function, format!("authorizer {name} is not defined on its HttpApi")))?;
        let authorizer_function = self
            .reference(definition.get("FunctionArn"))
            .filter(|id| self.resource_type(id) == Some("AWS::Serverless::Function"))
            .ok_or_else(|| {
                resource_error(
                    api.unwrap_or(function),
                    format!("authorizer {name}: FunctionArn must be a function's Arn"),
                )
            })?;
        let identity_headers = definition
            .get("Identity")
            .and_then(|i| i.get("Headers"))
            .and_then(Value::as_sequence)
            .map(|h| h.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Some(HttpAuthorizer {
            name,
            function: authorizer_function,
            identity_headers,
            simple_responses: definition
                .get("EnableSimpleResponses")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    }

    /// Every `AWS::SQS::Queue`, sorted by logical id.
    pub fn queues(&self) -> Result<Vec<QueueDefinition>, TemplateError> {
        let mut queues = Vec::new();
        for (id, resource) in self.resources_of_type("AWS::SQS::Queue") {
            let empty = Value::Mapping(Mapping::new());
            let props = resource.get("Properties").unwrap_or(&empty);
            let fifo = fifo_settings(props, id)?;
            let queue_name = match props.get("QueueName") {
                None => None,
                Some(value) => match Intrinsic::from_value(value) {
                    Intrinsic::Literal(name) => Some(checked_queue_name(&name, fifo.is_some(), id)?),
                    _ => {
                        return Err(resource_error(
                            id,
                            "QueueName must be a plain string locally (or be left out: the queue is then named after its logical id)",
                        ))
                    }
                },
            };
            let redrive = match props.get("RedrivePolicy") {
                None => None,
                Some(policy) => Some(self.redrive_policy(policy, id)?),
            };
            queues.push(QueueDefinition {
                logical_id: id.to_owned(),
                queue_name,
                fifo,
                visibility_timeout_secs: bounded(props, "VisibilityTimeout", QUEUE_VISIBILITY_TIMEOUT, id)?,
                delay_secs: bounded(props, "DelaySeconds", QUEUE_DELAY, id)?,
                retention_secs: bounded(props, "MessageRetentionPeriod", QUEUE_RETENTION, id)?,
                maximum_message_size: bounded(props, "MaximumMessageSize", QUEUE_MAXIMUM_MESSAGE_SIZE, id)?,
                receive_wait_secs: bounded(props, "ReceiveMessageWaitTimeSeconds", QUEUE_RECEIVE_WAIT, id)?,
                // SSE-SQS is on for queues created since 2023 unless turned off.
                // SQS encrypts with its own keys unless the queue names a KMS key.
                sqs_managed_sse: flag(props, "SqsManagedSseEnabled", id)?
                    .unwrap_or(props.get("KmsMasterKeyId").is_none()),
                redrive,
            });
        }
        // SQS refuses a dead-letter queue of the other type, and so does CloudFormation's deployment.
        for queue in &queues {
            let Some(redrive) = &queue.redrive else { continue };
            let Some(target) = queues.iter().find(|q| q.logical_id == redrive.dead_letter_queue) else {
                continue;
            };
            let kind = |q: &QueueDefinition| if q.fifo.is_some() { "FIFO" } else { "standard" };
            if queue.fifo.is_some() != target.fifo.is_some() {
                return Err(resource_error(
                    &queue.logical_id,
                    format!(
                        "RedrivePolicy: the dead-letter queue of a {} queue must be a {} queue too, and {} is a {} queue",
                        kind(queue),
                        kind(queue),
                        target.logical_id,
                        kind(target)
                    ),
                ));
            }
        }
        queues.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
        Ok(queues)
    }

    /// Whether a queue of this template is a FIFO queue (false for anything unreadable: `queues()`
    /// reports that).
    fn queue_is_fifo(&self, id: &str) -> bool {
        self.resources
            .get(id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| flag(p, "FifoQueue", id).ok().flatten())
            .unwrap_or(false)
    }

    /// CloudFormation takes a RedrivePolicy as an object or as its JSON text.
    fn redrive_policy(&self, policy: &Value, id: &str) -> Result<RedrivePolicy, TemplateError> {
        let parsed;
        let policy = match policy {
            Value::String(text) => {
                parsed = serde_yaml_ng::from_str::<Value>(text)
                    .map_err(|e| resource_error(id, format!("RedrivePolicy is not valid JSON: {e}")))?;
                &parsed
            }
            other => other,
        };
        let target = policy
            .get("deadLetterTargetArn")
            .ok_or_else(|| resource_error(id, "RedrivePolicy needs a deadLetterTargetArn"))?;
        let dead_letter_queue = match Intrinsic::from_value(target) {
            Intrinsic::GetAtt(path) if path.ends_with(".Arn") => path.trim_end_matches(".Arn").to_owned(),
            // A literal ARN works when it names a queue of this template.
            Intrinsic::Literal(arn) if arn.starts_with("arn:") => {
                let name = arn.rsplit(':').next().unwrap_or_default();
                self.resources_of_type("AWS::SQS::Queue")
                    .find(|(queue_id, queue)| {
                        let named = queue
                            .get("Properties")
                            .and_then(|p| p.get("QueueName"))
                            .and_then(Value::as_str);
                        let unnamed = || match self.queue_is_fifo(queue_id) {
                            true => name.strip_suffix(FIFO_SUFFIX) == Some(*queue_id),
                            false => *queue_id == name,
                        };
                        named.map_or_else(unnamed, |named| named == name)
                    })
                    .map(|(queue_id, _)| queue_id.to_owned())
                    .ok_or_else(|| {
                        resource_error(id, format!("RedrivePolicy: {arn} is not a queue of this template"))
                    })?
            }
            _ => {
                return Err(resource_error(
                    id,
                    "RedrivePolicy.deadLetterTargetArn must be !GetAtt <Queue>.Arn of a queue in this template",
                ))
            }
        };
        if self.resource_type(&dead_letter_queue) != Some("AWS::SQS::Queue") {
            return Err(resource_error(
                id,
                format!("RedrivePolicy: {dead_letter_queue} is not an AWS::SQS::Queue of this template"),
            ));
        }
        if dead_letter_queue == id {
            return Err(resource_error(
                id,
                "RedrivePolicy: a queue cannot be its own dead-letter queue",
            ));
        }
        Ok(RedrivePolicy {
            dead_letter_queue,
            max_receive_count: bounded(policy, "maxReceiveCount", MAX_RECEIVE_COUNT, id)?,
        })
    }

    /// An event of `Type: SQS` (SAM's properties; `FilterCriteria` and the rest are refused, not ignored).
    fn queue_event(&self, name: &str, props: &Value, function: &str) -> Result<QueueEvent, TemplateError> {
        let problem = |text: String| resource_error(function, format!("event {name}: {text}"));
        let in_event = |error: TemplateError| match error {
            TemplateError::Resource { resource, problem } => TemplateError::Resource {
                resource,
                problem: format!("event {name}: {problem}"),
            },
            other => other,
        };
        let bounded = |value: &Value, key: &str, range| bounded(value, key, range, function).map_err(in_event);
        const KNOWN: [&str; 7] = [
            "Queue",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "ScalingConfig",
            "Enabled",
            "MetricsConfig",
        ];
        if let Some(map) = props.as_mapping() {
            for key in map.keys().filter_map(Value::as_str) {
                if !KNOWN.contains(&key) {
                    return Err(problem(format!(
                        "{key} is not supported by the local stack's SQS event source mappings"
                    )));
                }
            }
        }
        let queue = match props.get("Queue").map(Intrinsic::from_value) {
            Some(Intrinsic::GetAtt(path)) if path.ends_with(".Arn") => path.trim_end_matches(".Arn").to_owned(),
            _ => {
                return Err(problem(
                    "Queue must be !GetAtt <Queue>.Arn of a queue in this template".to_owned(),
                ))
            }
        };
        if self.resource_type(&queue) != Some("AWS::SQS::Queue") {
            return Err(problem(format!("{queue} is not an AWS::SQS::Queue of this template")));
        }
        let batch_size = bounded(props, "BatchSize", SQS_BATCH_SIZE)?;
        let maximum_batching_window_secs = bounded(props, "MaximumBatchingWindowInSeconds", SQS_BATCHING_WINDOW)?;
        if self.queue_is_fifo(&queue) {
            if batch_size > SQS_FIFO_MAX_BATCH_SIZE {
                return Err(problem(format!(
                    "{queue} is a FIFO queue, whose batches Lambda keeps to at most {SQS_FIFO_MAX_BATCH_SIZE} (BatchSize {batch_size})"
                )));
            }
            if maximum_batching_window_secs > 0 {
                return Err(problem(format!(
                    "{queue} is a FIFO queue, and Lambda supports no batching window for FIFO queues \
                     (MaximumBatchingWindowInSeconds {maximum_batching_window_secs})"
                )));
            }
        }
        if batch_size > 10 && maximum_batching_window_secs == 0 {
            return Err(problem(
                "a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1 (as Lambda requires)"
                    .to_owned(),
            ));
        }
        let mut report_batch_item_failures = false;
        if let Some(types) = props.get("FunctionResponseTypes") {
            let types = types
                .as_sequence()
                .ok_or_else(|| problem("FunctionResponseTypes must be a list".to_owned()))?;
            for kind in types {
                match kind.as_str() {
                    Some("ReportBatchItemFailures") => report_batch_item_failures = true,
                    other => return Err(problem(format!("unknown FunctionResponseTypes entry {other:?}"))),
                }
            }
        }
        let maximum_concurrency = match props.get("ScalingConfig") {
            None => None,
            Some(scaling) => match scaling.get("MaximumConcurrency") {
                None => None,
                Some(_) => {
                    let (low, high) = SQS_MAXIMUM_CONCURRENCY;
                    Some(bounded(scaling, "MaximumConcurrency", (low, low, high))?)
                }
            },
        };
        Ok(QueueEvent {
            name: name.to_owned(),
            queue,
            batch_size,
            maximum_batching_window_secs,
            report_batch_item_failures,
            maximum_concurrency,
            enabled: flag(props, "Enabled", function).map_err(in_event)?.unwrap_or(true),
        })
    }

    /// An event of `Type: DynamoDB` (SAM's properties): Lambda's event source mapping on a table stream of
    /// this template. What Lambda refuses is refused, and so is what the local stack cannot run
    /// (`AT_TIMESTAMP`, SNS destinations, tumbling windows, more than one batch per shard at a time).
    fn stream_event(&self, name: &str, props: &Value, function: &str) -> Result<StreamEvent, TemplateError> {
        let problem = |text: String| resource_error(function, format!("event {name}: {text}"));
        let in_event = |error: TemplateError| match error {
            TemplateError::Resource { resource, problem } => TemplateError::Resource {
                resource,
                problem: format!("event {name}: {problem}"),
            },
            other => other,
        };
        let bounded = |value: &Value, key: &str, range| bounded(value, key, range, function).map_err(in_event);
        let unlimited_or = |key: &str, (low, high): (u64, u64)| -> Result<Option<u64>, TemplateError> {
            let number = match props.get(key) {
                None => return Ok(None),
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                Some(_) => None,
            };
            match number {
                Some(-1) => Ok(None),
                Some(n) if n >= 0 && (low..=high).contains(&n.unsigned_abs()) => Ok(Some(n.unsigned_abs())),
                _ => Err(problem(format!(
                    "{key} must be -1 (no limit) or a whole number from {low} to {high}"
                ))),
            }
        };
        const KNOWN: [&str; 14] = [
            "Stream",
            "StartingPosition",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "BisectBatchOnFunctionError",
            "MaximumRetryAttempts",
            "MaximumRecordAgeInSeconds",
            "ParallelizationFactor",
            "FunctionResponseTypes",
            "FilterCriteria",
            "DestinationConfig",
            "Enabled",
            "MetricsConfig",
            "TumblingWindowInSeconds",
        ];
        if let Some(map) = props.as_mapping() {
            for key in map.keys().filter_map(Value::as_str) {
                if !KNOWN.contains(&key) {
                    return Err(problem(format!(
                        "{key} is not supported by the local stack's DynamoDB stream event source mappings"
                    )));
                }
            }
        }
        let table = match props.get("Stream").map(Intrinsic::from_value) {
            Some(Intrinsic::GetAtt(path)) if path.ends_with(".StreamArn") => {
                path.trim_end_matches(".StreamArn").to_owned()
            }
            _ => {
                return Err(problem(
                    "Stream must be !GetAtt <Table>.StreamArn of a table in this template".to_owned(),
                ))
            }
        };
        if self.resource_type(&table) != Some("AWS::DynamoDB::Table") {
            return Err(problem(format!(
                "{table} is not an AWS::DynamoDB::Table of this template"
            )));
        }
        let has_stream = self
            .resources
            .get(table.as_str())
            .and_then(|t| t.get("Properties"))
            .and_then(|p| p.get("StreamSpecification"))
            .and_then(|s| s.get("StreamViewType"))
            .is_some();
        if !has_stream {
            return Err(problem(format!(
                "{table} has no stream: give it a StreamSpecification with a StreamViewType"
            )));
        }
        let starting_position = match props.get("StartingPosition").and_then(Value::as_str) {
            Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
            Some("LATEST") => StartingPosition::Latest,
            Some("AT_TIMESTAMP") => {
                return Err(problem(
                    "StartingPosition AT_TIMESTAMP is for Kinesis streams, not DynamoDB streams; use TRIM_HORIZON or LATEST"
                        .to_owned(),
                ))
            }
            Some(other) => {
                return Err(problem(format!(
                    "StartingPosition {other:?} is not TRIM_HORIZON or LATEST"
                )))
            }
            None => {
                return Err(problem(
                    "StartingPosition is required for a DynamoDB stream: TRIM_HORIZON or LATEST".to_owned(),
                ))
            }
        };
        let parallelization_factor = bounded(props, "ParallelizationFactor", STREAM_PARALLELIZATION_FACTOR)?;
        if parallelization_factor > 1 {
            return Err(problem(format!(
                "ParallelizationFactor {parallelization_factor}: the local stack runs one batch per shard at a time \
                 (ParallelizationFactor 1)"
            )));
        }
        if props.get("TumblingWindowInSeconds").is_some() {
            return Err(problem(
                "TumblingWindowInSeconds (tumbling-window aggregation) is not supported by the local stack".to_owned(),
            ));
        }
        let mut report_batch_item_failures = false;
        if let Some(types) = props.get("FunctionResponseTypes") {
            let types = types
                .as_sequence()
                .ok_or_else(|| problem("FunctionResponseTypes must be a list".to_owned()))?;
            for kind in types {
                match kind.as_str() {
                    Some("ReportBatchItemFailures") => report_batch_item_failures = true,
                    other => return Err(problem(format!("unknown FunctionResponseTypes entry {other:?}"))),
                }
            }
        }
        Ok(StreamEvent {
            name: name.to_owned(),
            table,
            starting_position,
            batch_size: bounded(props, "BatchSize", STREAM_BATCH_SIZE)?,
            maximum_batching_window_secs: bounded(props, "MaximumBatchingWindowInSeconds", STREAM_BATCHING_WINDOW)?,
            bisect_batch_on_function_error: flag(props, "BisectBatchOnFunctionError", function)
                .map_err(in_event)?
                .unwrap_or(false),
            maximum_retry_attempts: unlimited_or("MaximumRetryAttempts", STREAM_MAXIMUM_RETRY_ATTEMPTS)?,
            maximum_record_age_secs: unlimited_or("MaximumRecordAgeInSeconds", STREAM_MAXIMUM_RECORD_AGE)?,
            report_batch_item_failures,
            filter_patterns: filter_patterns(props.get("FilterCriteria")).map_err(problem)?,
            on_failure_queue: self.on_failure_queue(props.get("DestinationConfig")).map_err(problem)?,
            enabled: flag(props, "Enabled", function).map_err(in_event)?.unwrap_or(true),
        })
    }

    /// A stream mapping's `DestinationConfig`: only `OnFailure`, to a standard SQS queue of this template.
    fn on_failure_queue(&self, config: Option<&Value>) -> Result<Option<String>, String> {
        let Some(config) = config else { return Ok(None) };
        let map = config
            .as_mapping()
            .ok_or_else(|| "DestinationConfig must be a mapping with OnFailure".to_owned())?;
        for key in map.keys().filter_map(Value::as_str) {
            if key != "OnFailure" {
                return Err(format!(
                    "DestinationConfig.{key}: a stream event source mapping has only an OnFailure destination"
                ));
            }
        }
        let Some(on_failure) = config.get("OnFailure") else {
            return Ok(None);
        };
        match on_failure.get("Type").and_then(Value::as_str) {
            None | Some("SQS") => {}
            Some("SNS") => return Err(
                "DestinationConfig.OnFailure: SNS destinations are not supported by the local stack; use an SQS queue"
                    .to_owned(),
            ),
            Some(other) => return Err(format!("DestinationConfig.OnFailure.Type {other:?} is not SQS")),
        }
        let target = on_failure
            .get("Destination")
            .map(Intrinsic::from_value)
            .ok_or_else(|| "DestinationConfig.OnFailure needs a Destination".to_owned())?;
        let id = match &target {
            Intrinsic::GetAtt(path) => path.split('.').next().unwrap_or_default().to_owned(),
            Intrinsic::Ref(id) => id.clone(),
            _ => String::new(),
        };
        match self.resource_type(&id) {
            Some("AWS::SQS::Queue") if matches!(&target, Intrinsic::GetAtt(path) if path.ends_with(".Arn")) => {}
            Some("AWS::SNS::Topic") => {
                return Err(format!(
                    "DestinationConfig.OnFailure: {id} is an SNS topic, and SNS destinations are not supported by the \
                     local stack; use an SQS queue"
                ))
            }
            _ => {
                return Err(
                    "DestinationConfig.OnFailure.Destination must be !GetAtt <Queue>.Arn of a queue in this template"
                        .to_owned(),
                )
            }
        }
        if self.queue_is_fifo(&id) {
            return Err(format!(
                "DestinationConfig.OnFailure: {id} is a FIFO queue, and Lambda sends discarded batches to standard queues only"
            ));
        }
        Ok(Some(id))
    }

    /// Every `AWS::Serverless::Function`, sorted by logical id.
    pub fn functions(&self) -> Result<Vec<FunctionDefinition>, TemplateError> {
        let mut functions = Vec::new();
        for (id, resource) in self.resources_of_type("AWS::Serverless::Function") {
            let props = resource
                .get("Properties")
                .ok_or_else(|| resource_error(id, "has no Properties"))?;
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| resource_error(id, "Metadata.BuildProperties.Binary (the function crate) is missing"))?
                .to_owned();
            let number = |name: &str, default: u64| -> Result<u64, TemplateError> {
                match props.get(name).or_else(|| self.globals.get(name)) {
                    None => Ok(default),
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| resource_error(id, format!("{name} must be a whole number"))),
                }
            };
            let mut environment = BTreeMap::new();
            for source in [self.globals.get("Environment"), props.get("Environment")]
                .into_iter()
                .flatten()
            {
                if let Some(vars) = source.get("Variables").and_then(Value::as_mapping) {
                    for (k, v) in vars {
                        let key = k
                            .as_str()
                            .ok_or_else(|| resource_error(id, "an environment variable name is not a string"))?;
                        environment.insert(key.to_owned(), Intrinsic::from_value(v));
                    }
                }
            }
            let mut http_routes = Vec::new();
            let mut queue_events = Vec::new();
            let mut stream_events = Vec::new();
            if let Some(events) = props.get("Events").and_then(Value::as_mapping) {
                for (name, event) in events {
                    if event.get("Type").and_then(Value::as_str) == Some("DynamoDB") {
                        let name = name.as_str().unwrap_or("?");
                        let event_props = event
                            .get("Properties")
                            .ok_or_else(|| resource_error(id, format!("event {name} has no Properties")))?;
                        stream_events.push(self.stream_event(name, event_props, id)?);
                        continue;
                    }
                    if event.get("Type").and_then(Value::as_str) == Some("SQS") {
                        let name = name.as_str().unwrap_or("?");
                        let event_props = event
                            .get("Properties")
                            .ok_or_else(|| resource_error(id, format!("event {name} has no Properties")))?;
                        queue_events.push(self.queue_event(name, event_props, id)?);
                        continue;
                    }
                    if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                        continue;
                    }
                    let name = name.as_str().unwrap_or("?");
                    let event_props = event
                        .get("Properties")
                        .ok_or_else(|| resource_error(id, format!("event {name} has no Properties")))?;
                    let method = string(event_props, "Method", id)?.to_ascii_uppercase();
                    let path = string(event_props, "Path", id)?;
                    if !path.starts_with('/') {
                        return Err(resource_error(
                            id,
                            format!("event {name}: Path must start with '/', got {path:?}"),
                        ));
                    }
                    let api = self.reference(event_props.get("ApiId"));
                    let authorizer = self.route_authorizer(api.as_deref(), event_props.get("Auth"), id)?;
                    http_routes.push(HttpRoute {
                        method,
                        path,
                        authorizer,
                    });
                }
            }
            functions.push(FunctionDefinition {
                logical_id: id.to_owned(),
                binary,
                timeout_secs: number("Timeout", DEFAULT_TIMEOUT_SECS)?,
                memory_mb: number("MemorySize", DEFAULT_MEMORY_MB)?,
                environment,
                http_routes,
                queue_events,
                stream_events,
            });
        }
        functions.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
        Ok(functions)
    }
}

/// `FilterCriteria: {Filters: [{Pattern: '<JSON>'}]}`: the patterns' texts, each checked to be a JSON
/// object (the local stack checks the operators it can evaluate).
fn filter_patterns(criteria: Option<&Value>) -> Result<Vec<String>, String> {
    let Some(criteria) = criteria else {
        return Ok(Vec::new());
    };
    let filters = criteria
        .get("Filters")
        .and_then(Value::as_sequence)
        .ok_or_else(|| "FilterCriteria needs Filters, a list of {Pattern: <JSON text>}".to_owned())?;
    if filters.len() > MAX_FILTERS {
        return Err(format!(
            "FilterCriteria has {} filters, and Lambda takes at most {MAX_FILTERS}",
            filters.len()
        ));
    }
    filters
        .iter()
        .enumerate()
        .map(|(index, filter)| {
            let pattern = filter
                .get("Pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("FilterCriteria.Filters[{index}].Pattern must be a JSON text (a string)"))?;
            if pattern.len() > MAX_FILTER_PATTERN_CHARS {
                return Err(format!(
                    "FilterCriteria.Filters[{index}].Pattern is longer than Lambda's {MAX_FILTER_PATTERN_CHARS} characters"
                ));
            }
            match serde_json::from_str::<serde_json::Value>(pattern) {
                Ok(serde_json::Value::Object(_)) => Ok(pattern.to_owned()),
                Ok(_) => Err(format!("FilterCriteria.Filters[{index}].Pattern must be a JSON object")),
                Err(e) => Err(format!("FilterCriteria.Filters[{index}].Pattern is not valid JSON: {e}")),
            }
        })
        .collect()
}

/// The `X` of every `${X}` in a `!Sub` text (`${!Literal}` escapes are skipped).
pub fn sub_references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            found.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    found
}

fn string(value: &Value, key: &str, resource: &str) -> Result<String, TemplateError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| resource_error(resource, format!("{key} is missing or not a string")))
}

/// A whole-number property (CloudFormation also takes numbers as strings) within `(default, min, max)`.
fn bounded(
    value: &Value,
    key: &str,
    (default, min, max): (u64, u64, u64),
    resource: &str,
) -> Result<u64, TemplateError> {
    let number = match value.get(key) {
        None => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => {
            return Err(resource_error(
                resource,
                format!("{key} must be a whole number (the local stack does not evaluate intrinsics there)"),
            ))
        }
    };
    match number {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(resource_error(
            resource,
            format!("{key} must be a whole number from {min} to {max}"),
        )),
    }
}

/// A queue's FIFO properties, checked as SQS checks them; None for a standard queue, which may have
/// none of them.
fn fifo_settings(props: &Value, id: &str) -> Result<Option<FifoSettings>, TemplateError> {
    const FIFO_ONLY: [&str; 3] = ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"];
    if !flag(props, "FifoQueue", id)?.unwrap_or(false) {
        if let Some(key) = FIFO_ONLY.iter().find(|key| props.get(**key).is_some()) {
            return Err(resource_error(
                id,
                format!("{key} is for FIFO queues only, and this is a standard queue (no FifoQueue: true)"),
            ));
        }
        return Ok(None);
    }
    let choice = |key: &str, values: [&'static str; 2]| -> Result<Option<&'static str>, TemplateError> {
        match props.get(key) {
            None => Ok(None),
            Some(Value::String(text)) if values.contains(&text.as_str()) => {
                Ok(values.iter().copied().find(|v| v == text))
            }
            Some(_) => Err(resource_error(
                id,
                format!("{key} must be {} or {}", values[0], values[1]),
            )),
        }
    };
    let deduplication_scope = match choice("DeduplicationScope", ["queue", "messageGroup"])? {
        Some("messageGroup") => DeduplicationScope::MessageGroup,
        _ => DeduplicationScope::Queue,
    };
    let throughput_limit = match choice("FifoThroughputLimit", ["perQueue", "perMessageGroupId"])? {
        Some("perMessageGroupId") => FifoThroughputLimit::PerMessageGroupId,
        _ => FifoThroughputLimit::PerQueue,
    };
    if throughput_limit == FifoThroughputLimit::PerMessageGroupId
        && deduplication_scope != DeduplicationScope::MessageGroup
    {
        return Err(resource_error(
            id,
            "FifoThroughputLimit: perMessageGroupId needs DeduplicationScope: messageGroup, as SQS requires",
        ));
    }
    Ok(Some(FifoSettings {
        content_based_deduplication: flag(props, "ContentBasedDeduplication", id)?.unwrap_or(false),
        deduplication_scope,
        throughput_limit,
    }))
}

/// SQS's rule for queue names: up to 80 letters, digits, hyphens and underscores, a FIFO queue's
/// ending in `.fifo` (counted in the 80).
fn checked_queue_name(name: &str, fifo: bool, id: &str) -> Result<String, TemplateError> {
    let stem = match (fifo, name.strip_suffix(FIFO_SUFFIX)) {
        (true, Some(stem)) => stem,
        (true, None) => {
            return Err(resource_error(
                id,
                format!("QueueName {name:?}: the name of a FIFO queue must end in {FIFO_SUFFIX}"),
            ))
        }
        (false, Some(_)) => {
            return Err(resource_error(
                id,
                format!("QueueName {name:?}: only a FIFO queue (FifoQueue: true) has a name ending in {FIFO_SUFFIX}"),
            ))
        }
        (false, None) => name,
    };
    let valid = !stem.is_empty()
        && name.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(resource_error(
            id,
            format!("QueueName {name:?}: up to 80 letters, digits, hyphens and underscores (and a FIFO queue's {FIFO_SUFFIX})"),
        ));
    }
    Ok(name.to_owned())
}

/// A boolean property (or `"true"`/`"false"`), None when absent.
fn flag(value: &Value, key: &str, resource: &str) -> Result<Option<bool>, TemplateError> {
    match value.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(resource_error(resource, format!("{key} must be true or false"))),
    }
}

fn sequence<'a>(value: &'a Value, key: &str, resource: &str) -> Result<&'a Vec<Value>, TemplateError> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .ok_or_else(|| resource_error(resource, format!("{key} is missing or not a list")))
}

fn read_key_schema(value: &Value, resource: &str) -> Result<Vec<KeyElement>, TemplateError> {
    sequence(value, "KeySchema", resource)?
        .iter()
        .map(|k| {
            Ok(KeyElement {
                attribute: string(k, "AttributeName", resource)?,
                key_type: string(k, "KeyType", resource)?,
            })
        })
        .collect()
}

/// `template.yaml` at the root of this workspace.
pub fn workspace_template_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projects_template() {
        let template = Template::load(&workspace_template_path()).unwrap();
        let table = template.table().unwrap();
        assert_eq!(table.logical_id, "ChatTable");
        assert_eq!(table.key_schema[0].attribute, "PK");
        assert_eq!(table.global_indexes[0].name, "GSI1");
        assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));
        let functions = template.functions().unwrap();
        let register = functions.iter().find(|f| f.binary == "auth-register").unwrap();
        assert_eq!(
            register.http_routes,
            vec![HttpRoute {
                method: "POST".into(),
                path: "/auth/register".into(),
                authorizer: None,
            }]
        );
        assert_eq!(register.environment["TABLE_NAME"], Intrinsic::Ref("ChatTable".into()));
        assert!(register.timeout_secs > 0);
    }

    #[test]
    fn reads_the_projects_queues_and_their_event_source() {
        let template = Template::load(&workspace_template_path()).unwrap();
        let queues = template.queues().unwrap();
        let delivery = queues.iter().find(|q| q.logical_id == "DeliveryQueue").unwrap();
        assert_eq!(delivery.visibility_timeout_secs, 60);
        assert_eq!(delivery.retention_secs, 3600);
        assert_eq!(
            delivery.fifo,
            Some(FifoSettings {
                content_based_deduplication: false,
                deduplication_scope: DeduplicationScope::MessageGroup,
                throughput_limit: FifoThroughputLimit::PerMessageGroupId,
            })
        );
        assert_eq!(delivery.name(), "DeliveryQueue.fifo");
        assert_eq!(
            delivery.redrive,
            Some(RedrivePolicy {
                dead_letter_queue: "DeliveryDeadLetterQueue".into(),
                max_receive_count: 3,
            })
        );
        let dead = queues
            .iter()
            .find(|q| q.logical_id == "DeliveryDeadLetterQueue")
            .unwrap();
        assert_eq!((dead.visibility_timeout_secs, dead.redrive.as_ref()), (30, None));
        assert!(dead.fifo.is_some(), "a FIFO queue's dead-letter queue is FIFO");
        let functions = template.functions().unwrap();
        let worker = functions.iter().find(|f| f.binary == "delivery-worker").unwrap();
        let deliveries = worker.queue_events.iter().find(|e| e.name == "Deliveries").unwrap();
        assert_eq!(
            *deliveries,
            QueueEvent {
                name: "Deliveries".into(),
                queue: "DeliveryQueue".into(),
                batch_size: 10,
                maximum_batching_window_secs: 0,
                report_batch_item_failures: true,
                maximum_concurrency: Some(50),
                enabled: true,
            }
        );
        assert!(worker.http_routes.is_empty());
    }

    const QUEUE_FUNCTION: &str = "
  F:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: f } }
    Properties:
      Events:
        Work:
          Type: SQS
          Properties:";

    fn queue_template(queue_properties: &str, event_properties: &str) -> Result<Template, TemplateError> {
        Template::parse(&format!(
            "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n{queue_properties}\n  D:\n    Type: AWS::SQS::Queue\n{QUEUE_FUNCTION}\n{event_properties}\n"
        ))
    }

    #[test]
    fn queues_take_sqs_defaults_and_both_redrive_forms() {
        let template = queue_template(
            "      DelaySeconds: \"5\"\n      RedrivePolicy: '{\"deadLetterTargetArn\": \"arn:aws:sqs:us-east-1:1:D\", \"maxReceiveCount\": \"4\"}'",
            "            Queue: { \"Fn::GetAtt\": [Q, Arn] }",
        )
        .unwrap();
        let queues = template.queues().unwrap();
        assert_eq!(
            queues[1],
            QueueDefinition {
                logical_id: "Q".into(),
                queue_name: None,
                fifo: None,
                visibility_timeout_secs: 30,
                delay_secs: 5,
                retention_secs: 345_600,
                maximum_message_size: 1_048_576,
                receive_wait_secs: 0,
                sqs_managed_sse: true,
                redrive: Some(RedrivePolicy {
                    dead_letter_queue: "D".into(),
                    max_receive_count: 4,
                }),
            }
        );
        assert_eq!(queues[0].logical_id, "D", "a queue without Properties is all defaults");
        let event = &template.functions().unwrap()[0].queue_events[0];
        assert_eq!(
            (
                event.queue.as_str(),
                event.batch_size,
                event.maximum_batching_window_secs,
                event.report_batch_item_failures,
                event.maximum_concurrency,
                event.enabled,
            ),
            ("Q", 10, 0, false, None, true),
            "SAM's defaults: batches of 10, no window, whole-batch failures, no concurrency cap"
        );
    }

    #[test]
    fn queue_mistakes_are_errors_naming_the_resource() {
        let queue_error = |queue: &str| {
            queue_template(queue, "            Queue: !GetAtt Q.Arn")
                .unwrap()
                .queues()
                .unwrap_err()
                .to_string()
        };
        for (queue, expected) in [
            ("      ContentBasedDeduplication: true", "for FIFO queues only"),
            ("      FifoQueue: false\n      DeduplicationScope: queue", "for FIFO queues only"),
            ("      FifoQueue: true\n      DeduplicationScope: group", "DeduplicationScope must be"),
            ("      FifoQueue: true\n      FifoThroughputLimit: perMessageGroupId", "needs DeduplicationScope"),
            ("      FifoQueue: true\n      QueueName: Q", "must end in .fifo"),
            ("      QueueName: Q.fifo", "only a FIFO queue"),
            ("      QueueName: \"with space\"", "letters, digits"),
            (
                "      FifoQueue: true\n      RedrivePolicy: { deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 3 }",
                "the dead-letter queue of a FIFO queue must be a FIFO queue too, and D is a standard queue",
            ),
        ] {
            let err = queue_error(queue);
            assert!(err.contains("resource Q") && err.contains(expected), "{queue}: {err}");
        }
        let to_nowhere =
            queue_error("      RedrivePolicy: { deadLetterTargetArn: !GetAtt Missing.Arn, maxReceiveCount: 3 }");
        assert!(to_nowhere.contains("Missing"), "{to_nowhere}");
        let too_long = queue_error("      VisibilityTimeout: 50000");
        assert!(
            too_long.contains("VisibilityTimeout") && too_long.contains("43200"),
            "{too_long}"
        );
        let zero = queue_error("      RedrivePolicy: { deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 0 }");
        assert!(zero.contains("maxReceiveCount"), "{zero}");

        let event_error = |event: &str| {
            queue_template("      DelaySeconds: 0", event)
                .unwrap()
                .functions()
                .unwrap_err()
                .to_string()
        };
        for (event, expected) in [
            ("            Queue: !GetAtt F.Arn", "not an AWS::SQS::Queue"),
            ("            Queue: !Ref Q", "!GetAtt <Queue>.Arn"),
            (
                "            Queue: !GetAtt Q.Arn\n            BatchSize: 11",
                "MaximumBatchingWindowInSeconds",
            ),
            (
                "            Queue: !GetAtt Q.Arn\n            ScalingConfig: { MaximumConcurrency: 1 }",
                "MaximumConcurrency",
            ),
            (
                "            Queue: !GetAtt Q.Arn\n            FunctionResponseTypes: [Everything]",
                "Everything",
            ),
            (
                "            Queue: !GetAtt Q.Arn\n            FilterCriteria: { Filters: [] }",
                "FilterCriteria",
            ),
        ] {
            let err = event_error(event);
            assert!(
                err.contains("resource F") && err.contains("event Work") && err.contains(expected),
                "{event}: {err}"
            );
        }
        let windowed = queue_template(
            "      DelaySeconds: 0",
            "            Queue: !GetAtt Q.Arn\n            BatchSize: 100\n            MaximumBatchingWindowInSeconds: 2\n            FunctionResponseTypes: [ReportBatchItemFailures]\n            ScalingConfig: { MaximumConcurrency: 5 }\n            Enabled: false",
        )
        .unwrap();
        let event = &windowed.functions().unwrap()[0].queue_events[0];
        assert_eq!(
            (
                event.batch_size,
                event.maximum_batching_window_secs,
                event.report_batch_item_failures,
                event.maximum_concurrency,
                event.enabled
            ),
            (100, 2, true, Some(5), false)
        );
    }

    #[test]
    fn fifo_queues_take_their_settings_and_their_event_limits() {
        let fifo_pair = |q_extra: &str, event: &str| {
            Template::parse(&format!(
                "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      FifoQueue: true\n{q_extra}      \
                 RedrivePolicy: {{ deadLetterTargetArn: \"arn:aws:sqs:us-east-1:1:D.fifo\", maxReceiveCount: 2 }}\n  \
                 D:\n    Type: AWS::SQS::Queue\n    Properties: {{ FifoQueue: \"true\" }}\n{QUEUE_FUNCTION}\n            \
                 Queue: !GetAtt Q.Arn\n{event}"
            ))
            .unwrap()
        };
        let template = fifo_pair(
            "      ContentBasedDeduplication: true\n      DeduplicationScope: messageGroup\n      FifoThroughputLimit: perMessageGroupId\n",
            "",
        );
        let queues = template.queues().unwrap();
        let (dead, queue) = (&queues[0], &queues[1]);
        assert_eq!(
            queue.fifo,
            Some(FifoSettings {
                content_based_deduplication: true,
                deduplication_scope: DeduplicationScope::MessageGroup,
                throughput_limit: FifoThroughputLimit::PerMessageGroupId,
            })
        );
        assert_eq!(
            dead.fifo,
            Some(FifoSettings {
                content_based_deduplication: false,
                deduplication_scope: DeduplicationScope::Queue,
                throughput_limit: FifoThroughputLimit::PerQueue,
            }),
            "SQS's defaults"
        );
        assert_eq!((queue.name(), dead.name()), ("Q.fifo".to_owned(), "D.fifo".to_owned()));
        assert_eq!(
            queue.redrive.as_ref().map(|r| r.dead_letter_queue.as_str()),
            Some("D"),
            "a literal ARN names a FIFO queue with its suffix"
        );
        assert_eq!(template.functions().unwrap()[0].queue_events[0].batch_size, 10);

        for (event, expected) in [
            (
                "            BatchSize: 11\n            MaximumBatchingWindowInSeconds: 1\n",
                "at most 10",
            ),
            ("            MaximumBatchingWindowInSeconds: 1\n", "no batching window"),
        ] {
            let err = fifo_pair("", event).functions().unwrap_err().to_string();
            assert!(
                err.contains("resource F") && err.contains("event Work") && err.contains(expected),
                "{event}: {err}"
            );
        }
        let standard_to_fifo = Template::parse(
            "Resources:\n  S:\n    Type: AWS::SQS::Queue\n    Properties:\n      RedrivePolicy: { deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 2 }\n  D:\n    Type: AWS::SQS::Queue\n    Properties: { FifoQueue: true }\n",
        )
        .unwrap();
        let err = standard_to_fifo.queues().unwrap_err().to_string();
        assert!(
            err.contains("resource S") && err.contains("standard queue must be a standard queue too"),
            "{err}"
        );
    }

    fn stream_template(event_properties: &str) -> Result<Template, TemplateError> {
        Template::parse(&format!(
            "Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{{AttributeName: PK, AttributeType: S}}]
      KeySchema: [{{AttributeName: PK, KeyType: HASH}}]
      StreamSpecification: {{ StreamViewType: NEW_AND_OLD_IMAGES }}
  Plain:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{{AttributeName: PK, AttributeType: S}}]
      KeySchema: [{{AttributeName: PK, KeyType: HASH}}]
  D:
    Type: AWS::SQS::Queue
  FifoD:
    Type: AWS::SQS::Queue
    Properties: {{ FifoQueue: true }}
  Topic:
    Type: AWS::SNS::Topic
  F:
    Type: AWS::Serverless::Function
    Metadata: {{ BuildProperties: {{ Binary: f }} }}
    Properties:
      Events:
        Changes:
          Type: DynamoDB
          Properties:
{event_properties}
"
        ))
    }

    #[test]
    fn stream_events_take_every_property_and_lambdas_defaults() {
        let template = stream_template(
            r#"            Stream: !GetAtt T.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 3
            MaximumRecordAgeInSeconds: 3600
            ParallelizationFactor: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "META"}]}}}}'
                - Pattern: '{"eventName": ["REMOVE"]}'
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt D.Arn"#,
        )
        .unwrap();
        let function = &template.functions().unwrap()[0];
        assert!(function.queue_events.is_empty());
        assert_eq!(
            function.stream_events,
            vec![StreamEvent {
                name: "Changes".into(),
                table: "T".into(),
                starting_position: StartingPosition::TrimHorizon,
                batch_size: 100,
                maximum_batching_window_secs: 1,
                bisect_batch_on_function_error: true,
                maximum_retry_attempts: Some(3),
                maximum_record_age_secs: Some(3600),
                report_batch_item_failures: true,
                filter_patterns: vec![
                    r#"{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "META"}]}}}}"#.into(),
                    r#"{"eventName": ["REMOVE"]}"#.into(),
                ],
                on_failure_queue: Some("D".into()),
                enabled: true,
            }]
        );

        let defaults = stream_template(
            "            Stream: { \"Fn::GetAtt\": [T, StreamArn] }\n            StartingPosition: LATEST\n            \
             MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: \"-1\"\n            Enabled: false",
        )
        .unwrap();
        let event = &defaults.functions().unwrap()[0].stream_events[0];
        assert_eq!(
            (
                event.starting_position,
                event.batch_size,
                event.maximum_batching_window_secs,
                event.bisect_batch_on_function_error,
                event.maximum_retry_attempts,
                event.maximum_record_age_secs,
                event.report_batch_item_failures,
                event.filter_patterns.len(),
                event.on_failure_queue.as_deref(),
                event.enabled,
            ),
            (
                StartingPosition::Latest,
                100,
                0,
                false,
                None,
                None,
                false,
                0,
                None,
                false
            ),
            "Lambda's defaults: batches of 100, no window, no bisecting, retries until the records expire"
        );
    }

    #[test]
    fn stream_event_mistakes_are_errors_naming_the_function_and_property() {
        let at = "            Stream: !GetAtt T.StreamArn\n            StartingPosition: TRIM_HORIZON\n";
        for (event, expected) in [
            ("            StartingPosition: LATEST".to_owned(), "Stream must be !GetAtt <Table>.StreamArn"),
            (
                "            Stream: !GetAtt T.Arn\n            StartingPosition: LATEST".to_owned(),
                "Stream must be !GetAtt <Table>.StreamArn",
            ),
            (
                "            Stream: arn:aws:dynamodb:us-east-1:1:table/T/stream/x\n            StartingPosition: LATEST"
                    .to_owned(),
                "Stream must be",
            ),
            (
                "            Stream: !GetAtt D.StreamArn\n            StartingPosition: LATEST".to_owned(),
                "D is not an AWS::DynamoDB::Table",
            ),
            (
                "            Stream: !GetAtt Plain.StreamArn\n            StartingPosition: LATEST".to_owned(),
                "Plain has no stream",
            ),
            ("            Stream: !GetAtt T.StreamArn".to_owned(), "StartingPosition is required"),
            (
                "            Stream: !GetAtt T.StreamArn\n            StartingPosition: AT_TIMESTAMP".to_owned(),
                "AT_TIMESTAMP",
            ),
            (
                "            Stream: !GetAtt T.StreamArn\n            StartingPosition: OLDEST".to_owned(),
                "StartingPosition \"OLDEST\"",
            ),
            (format!("{at}            BatchSize: 0"), "BatchSize must be a whole number from 1 to 10000"),
            (format!("{at}            BatchSize: 10001"), "BatchSize"),
            (
                format!("{at}            MaximumBatchingWindowInSeconds: 301"),
                "MaximumBatchingWindowInSeconds must be a whole number from 0 to 300",
            ),
            (format!("{at}            MaximumRetryAttempts: -2"), "MaximumRetryAttempts must be -1"),
            (format!("{at}            MaximumRetryAttempts: 10001"), "MaximumRetryAttempts"),
            (
                format!("{at}            MaximumRecordAgeInSeconds: 59"),
                "MaximumRecordAgeInSeconds must be -1 (no limit) or a whole number from 60 to 604800",
            ),
            (format!("{at}            ParallelizationFactor: 11"), "ParallelizationFactor must be"),
            (format!("{at}            ParallelizationFactor: 2"), "one batch per shard"),
            (format!("{at}            TumblingWindowInSeconds: 60"), "TumblingWindowInSeconds"),
            (format!("{at}            BisectBatchOnFunctionError: maybe"), "BisectBatchOnFunctionError must be true or false"),
            (format!("{at}            FunctionResponseTypes: [Everything]"), "Everything"),
            (format!("{at}            StartingPositionTimestamp: 1"), "StartingPositionTimestamp is not supported"),
            (format!("{at}            FilterCriteria: {{ Filters: [{{ Pattern: 'not json' }}] }}"), "Filters[0].Pattern is not valid JSON"),
            (format!("{at}            FilterCriteria: {{ Filters: [{{ Pattern: '[1]' }}] }}"), "must be a JSON object"),
            (format!("{at}            FilterCriteria: {{ Filters: [{{ Pattern: {{ a: b }} }}] }}"), "must be a JSON text"),
            (format!("{at}            FilterCriteria: {{}}"), "FilterCriteria needs Filters"),
            (
                format!("{at}            DestinationConfig: {{ OnFailure: {{ Destination: !GetAtt Topic.TopicArn, Type: SNS }} }}"),
                "SNS destinations are not supported by the local stack",
            ),
            (
                format!("{at}            DestinationConfig: {{ OnFailure: {{ Destination: !Ref Topic }} }}"),
                "Topic is an SNS topic",
            ),
            (
                format!("{at}            DestinationConfig: {{ OnFailure: {{ Destination: !GetAtt FifoD.Arn }} }}"),
                "FifoD is a FIFO queue",
            ),
            (
                format!("{at}            DestinationConfig: {{ OnFailure: {{ Destination: !GetAtt Missing.Arn }} }}"),
                "must be !GetAtt <Queue>.Arn",
            ),
            (
                format!("{at}            DestinationConfig: {{ OnSuccess: {{ Destination: !GetAtt D.Arn }} }}"),
                "only an OnFailure destination",
            ),
        ] {
            let err = stream_template(&event).unwrap().functions().unwrap_err().to_string();
            assert!(
                err.contains("resource F") && err.contains("event Changes") && err.contains(expected),
                "{event}: {err}"
            );
        }
    }

    #[test]
    fn understands_short_and_long_form_intrinsics() {
        let template = Template::parse(
            r#"
Globals:
  Function:
    Timeout: 7
Resources:
  F:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: f } }
    Properties:
      Environment:
        Variables:
          A: !Ref T
          B: !GetAtt T.Arn
          C: !Sub "${AWS::Region}-x"
          D: { "Fn::GetAtt": [T, StreamArn] }
          E: plain
          G: !If [Cond, a, b]
"#,
        )
        .unwrap();
        let f = &template.functions().unwrap()[0];
        assert_eq!(f.timeout_secs, 7);
        assert_eq!(f.environment["A"], Intrinsic::Ref("T".into()));
        assert_eq!(f.environment["B"], Intrinsic::GetAtt("T.Arn".into()));
        assert_eq!(f.environment["C"], Intrinsic::Sub("${AWS::Region}-x".into()));
        assert_eq!(f.environment["D"], Intrinsic::GetAtt("T.StreamArn".into()));
        assert_eq!(f.environment["E"], Intrinsic::Literal("plain".into()));
        assert_eq!(f.environment["G"], Intrinsic::Other("If".into()));
    }

    #[test]
    fn errors_name_the_resource() {
        let no_binary =
            Template::parse("Resources:\n  Broken:\n    Type: AWS::Serverless::Function\n    Properties: {}\n")
                .unwrap();
        let err = no_binary.functions().unwrap_err().to_string();
        assert!(err.contains("Broken") && err.contains("Binary"), "{err}");

        let bad_key = Template::parse(
            "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]\n      KeySchema: [{AttributeName: ID, KeyType: HASH}]\n",
        )
        .unwrap();
        let err = bad_key.table().unwrap_err().to_string();
        assert!(err.contains("resource T") && err.contains("ID"), "{err}");

        assert!(Template::parse(": : not yaml [").is_err());
        assert!(Template::parse("Foo: 1").unwrap_err().to_string().contains("Resources"));
    }
}
