//! The WebSocket contract as a check of real frames: asyncapi.yaml (with openapi.yaml, whose shared
//! models it refers to) loaded once, and every server-to-client frame validated against the AsyncAPI
//! message of its `type` with the `jsonschema` crate. The end-to-end helpers of [`crate::realtime`]
//! run [`check_ws_frame`] on every frame they read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Value};

/// The base URI the two documents are registered under, so `./openapi.yaml#/...` resolves as it does
/// beside each other on disk (nothing is ever fetched).
const BASE: &str = "https://parley.invalid/";

/// Characters of a frame shown in a failure.
const SHOWN: usize = 1500;

/// The repository's asyncapi.yaml and openapi.yaml.
pub fn contract_paths() -> (PathBuf, PathBuf) {
    (
        crate::tools::workspace().join("asyncapi.yaml"),
        crate::contract::openapi_path(),
    )
}

/// A YAML file as JSON ([`crate::contract::load_yaml`]; a failure is the test's).
pub fn load_yaml(path: &Path) -> Value {
    crate::contract::load_yaml(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Follows local `$ref`s (`#/...`) within `document` until `value` is not a reference.
pub fn resolve_local<'a>(document: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) if reference.starts_with("#/") => {
                value = document
                    .pointer(&reference[1..])
                    .unwrap_or_else(|| panic!("asyncapi.yaml: {reference} does not exist"));
            }
            _ => return value,
        }
    }
    panic!("asyncapi.yaml: a $ref cycle");
}

/// The `type` values a message's payload admits (`const` or `enum` of its `type` property).
pub fn payload_types(document: &Value, message: &Value) -> Vec<String> {
    let Some(payload) = message.get("payload") else {
        return Vec::new();
    };
    let payload = resolve_local(document, payload);
    let Some(kind) = payload.pointer("/properties/type") else {
        return Vec::new();
    };
    let kind = resolve_local(document, kind);
    let mut types: Vec<String> = kind
        .get("const")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect();
    types.extend(
        kind.get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned),
    );
    types
}

/// The WebSocket contract, compiled.
pub struct WsContract {
    /// asyncapi.yaml as JSON.
    pub asyncapi: Value,
    /// The validators of the messages whose payload admits each `type`, with the messages' ids.
    by_type: BTreeMap<String, Vec<(String, Validator)>>,
    /// API Gateway's own error frame (no `type`), to say what a frame without a `type` is.
    gateway_error: Option<Validator>,
}

/// asyncapi.yaml and openapi.yaml, loaded and compiled once per test process.
pub fn contract() -> &'static WsContract {
    static CONTRACT: OnceLock<WsContract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let (asyncapi_path, _) = contract_paths();
        WsContract::new(load_yaml(&asyncapi_path), crate::contract::openapi().clone())
    })
}

impl WsContract {
    /// Compiles a validator for every server-to-client message of `asyncapi` (the messages whose
    /// payload has a `type`); refs into `./openapi.yaml` go to `openapi`.
    pub fn new(asyncapi: Value, openapi: Value) -> Self {
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(
                format!("{BASE}asyncapi.yaml"),
                Draft::Draft202012.create_resource(asyncapi.clone()),
            )
            .and_then(|r| {
                r.add(
                    format!("{BASE}openapi.yaml"),
                    Draft::Draft202012.create_resource(openapi),
                )
            })
            .and_then(|r| r.prepare())
            .unwrap_or_else(|e| panic!("asyncapi.yaml and openapi.yaml as JSON Schema resources: {e}"));
        let compile = |pointer: &str| -> Validator {
            jsonschema::options()
                .with_draft(Draft::Draft202012)
                .with_registry(&registry)
                .should_validate_formats(true)
                .offline()
                .build(&json!({ "$ref": format!("{BASE}asyncapi.yaml#{pointer}") }))
                .unwrap_or_else(|e| panic!("asyncapi.yaml#{pointer} does not compile: {e}"))
        };
        let messages = asyncapi
            .pointer("/components/messages")
            .and_then(Value::as_object)
            .expect("asyncapi.yaml has components.messages");
        let mut by_type: BTreeMap<String, Vec<(String, Validator)>> = BTreeMap::new();
        for (id, message) in messages {
            for kind in payload_types(&asyncapi, message) {
                let validator = compile(&format!("/components/messages/{id}/payload"));
                by_type.entry(kind).or_default().push((id.clone(), validator));
            }
        }
        let gateway_error = messages
            .contains_key("gatewayError")
            .then(|| compile("/components/messages/gatewayError/payload"));
        WsContract {
            asyncapi,
            by_type,
            gateway_error,
        }
    }

    /// The `type`s of server frames the contract knows.
    pub fn frame_types(&self) -> Vec<&str> {
        self.by_type.keys().map(String::as_str).collect()
    }

    /// What is wrong with a server-to-client `frame` (empty when it validates): a frame is checked
    /// against the message(s) of its `type` (it must validate against one of them); a `batch`'s
    /// events are each checked the same way, and the `batch` frame itself too.
    pub fn problems(&self, frame: &Value) -> Vec<String> {
        let mut problems = self.problems_of(frame, "");
        if frame["type"] == "batch" {
            if let Some(events) = frame["events"].as_array() {
                for (i, event) in events.iter().enumerate() {
                    problems.extend(self.problems_of(event, &format!("/events/{i}")));
                }
            }
        }
        problems
    }

    fn problems_of(&self, frame: &Value, at: &str) -> Vec<String> {
        let Some(kind) = frame.get("type") else {
            let gateway = self.gateway_error.as_ref().is_some_and(|v| v.is_valid(frame));
            let at = if at.is_empty() { "/" } else { at };
            return vec![if gateway {
                format!("{at}: API Gateway's own error frame (a route's function failed), not a Parley frame")
            } else {
                format!("{at}: a frame without a `type`")
            }];
        };
        let Some(candidates) = kind.as_str().and_then(|k| self.by_type.get(k)) else {
            return vec![format!(
                "{at}/type: {kind} is not a frame type of asyncapi.yaml (its types: {})",
                self.frame_types().join(", ")
            )];
        };
        let mut problems = Vec::new();
        for (id, validator) in candidates {
            let errors: Vec<String> = validator
                .iter_errors(frame)
                .map(|e| {
                    let path = format!("{at}{}", e.instance_path());
                    let path = if path.is_empty() { "/" } else { path.as_str() };
                    format!("{path}: {e} [asyncapi.yaml message {id}]")
                })
                .collect();
            if errors.is_empty() {
                return Vec::new();
            }
            problems.extend(errors);
        }
        problems
    }
}

/// `Ok` when `frame` validates against asyncapi.yaml (see [`WsContract::problems`]), else a report.
pub fn ws_frame_problems(frame: &Value) -> Result<(), String> {
    let problems = contract().problems(frame);
    if problems.is_empty() {
        return Ok(());
    }
    let text = frame.to_string();
    let shown = match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text,
    };
    Err(format!(
        "a `{}` frame breaks asyncapi.yaml:\n  {}\nframe: {shown}",
        frame["type"].as_str().unwrap_or("<no type>"),
        problems.join("\n  ")
    ))
}

/// Panics unless the server-to-client `frame` validates against asyncapi.yaml: the message of its
/// `type` (an unknown or missing `type` fails), each event of a `batch` too. The panic shows the frame
/// (truncated), its type and every schema error with its instance path.
pub fn check_ws_frame(frame: &Value) {
    if let Err(report) = ws_frame_problems(frame) {
        panic!("{report}");
    }
}
