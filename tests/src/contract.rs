//! The HTTP contract as a machine reads it: `openapi.yaml` at the repository's root (the form of the
//! contract that clients and fuzzers use; docs/API-GUIDE.md explains it), loaded once per test
//! process, and [`check_http_response`], which holds one response to it. [`crate::Stack::call`] and
//! [`crate::TestApp::call`] check every response they get, so every end-to-end and in-process test
//! checks the document (and the code) as it goes.
//!
//! The schemas are JSON Schema 2020-12 (OpenAPI 3.1), validated by the `jsonschema` crate with the
//! whole document registered as one resource under [`OPENAPI_URI`], so `#/components/...` references
//! resolve inside it. Nothing is fetched: a reference to anything else fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Value};

/// Where the document is registered. Another document that refers to it as `./openapi.yaml#/...`
/// (asyncapi.yaml) resolves against it when registered beside it, e.g. as
/// `https://parley.invalid/asyncapi.yaml`, on top of [`registry`].
pub const OPENAPI_URI: &str = "https://parley.invalid/openapi.yaml";

/// How much of a body a failure message shows.
const BODY_SHOWN_CHARS: usize = 2000;

/// The path of `openapi.yaml`.
pub fn openapi_path() -> PathBuf {
    crate::tools::workspace().join("openapi.yaml")
}

/// Reads a YAML document into JSON (what the schema validator works on).
pub fn load_yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{} is not YAML: {e}", path.display()))
}

/// `openapi.yaml`, read once per process.
pub fn openapi() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| load_yaml(&openapi_path()).unwrap_or_else(|e| panic!("the HTTP contract: {e}")))
}

/// A schema registry holding [`openapi`] under [`OPENAPI_URI`] (draft 2020-12). Add more documents on
/// top of it with `registry().add(uri, document)?.prepare()?`.
pub fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::new()
            .draft(Draft::Draft202012)
            .add(OPENAPI_URI, openapi())
            .and_then(|builder| builder.prepare())
            .unwrap_or_else(|e| panic!("openapi.yaml as a schema resource: {e}"))
    })
}

/// A validator for the schema at `pointer` (a JSON pointer into openapi.yaml, such as
/// `/components/schemas/Message`), built once per process.
pub fn schema_at(pointer: &str) -> Arc<Validator> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(Default::default);
    if let Some(validator) = validators.lock().unwrap().get(pointer) {
        return Arc::clone(validator);
    }
    let wrapper = json!({ "$ref": format!("{OPENAPI_URI}#{}", fragment(pointer)) });
    let validator = jsonschema::draft202012::options()
        .with_registry(registry())
        .should_validate_formats(true)
        .build(&wrapper)
        .unwrap_or_else(|e| panic!("openapi.yaml#{pointer} is not a usable schema: {e}"));
    let validator = Arc::new(validator);
    validators
        .lock()
        .unwrap()
        .insert(pointer.to_owned(), Arc::clone(&validator));
    validator
}

/// A JSON pointer as a URI fragment: what a fragment may not hold (`{`, `}`, spaces, ...) percent-encoded.
fn fragment(pointer: &str) -> String {
    pointer
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `instance`'s problems against the schema at `pointer` (empty: valid), each as
/// `at <instance path>: <problem>`.
pub fn schema_errors(pointer: &str, instance: &Value) -> Vec<String> {
    let validator = schema_at(pointer);
    validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", shown_path(e.instance_path().as_str())))
        .collect()
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "(the body)"
    } else {
        path
    }
}

/// The operations of the document: `(METHOD, path template, operation)`, in document order.
pub fn operations() -> Vec<(String, &'static str, &'static Value)> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut found = Vec::new();
    if let Some(paths) = openapi()["paths"].as_object() {
        for (template, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    found.push((method.to_ascii_uppercase(), template.as_str(), operation));
                }
            }
        }
    }
    found
}

/// The path template of the document that `path` (no query) matches as the gateway routes it (empty
/// segments ignored, `{name}` matching one segment), preferring literal segments (`/users/me` over
/// `/users/{userId}`).
pub fn path_template(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    openapi()["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    continue;
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

/// JSON pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Follows a `$ref` of the document (`#/...`) to its target and pointer.
fn resolve(value: &'static Value, pointer: String) -> (&'static Value, String) {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let target = reference.strip_prefix('#').unwrap_or_else(|| {
                panic!("openapi.yaml{pointer}: only local references are followed, not {reference}")
            });
            let resolved = openapi()
                .pointer(target)
                .unwrap_or_else(|| panic!("openapi.yaml{pointer}: {reference} does not exist"));
            resolve(resolved, target.to_owned())
        }
        None => (value, pointer),
    }
}

/// The `fields=` selection of a query string, if any: its names.
fn selected_fields(query: &str) -> Option<Vec<String>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query(key) == "fields").then(|| {
            decode_query(value)
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect()
        })
    })
}

fn decode_query(text: &str) -> String {
    let text = text.replace('+', " ");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A required field the answer may leave out because `fields=` did not select it: a `required`
/// error on the selected object (the body, or an item of its `items`) for a field not selected.
fn unselected(error: &jsonschema::ValidationError<'_>, fields: &[String], body: &Value) -> bool {
    let ValidationErrorKind::Required { property } = error.kind() else {
        return false;
    };
    let Some(property) = property.as_str() else {
        return false;
    };
    if property == "id" || fields.iter().any(|f| f == property) {
        return false;
    }
    let path = error.instance_path().as_str();
    match body.get("items").and_then(Value::as_array) {
        Some(_) => path
            .strip_prefix("/items/")
            .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit())),
        None => path.is_empty(),
    }
}

fn truncated(body: &Value) -> String {
    let text = body.to_string();
    if text.chars().count() <= BODY_SHOWN_CHARS {
        return text;
    }
    let kept: String = text.chars().take(BODY_SHOWN_CHARS).collect();
    format!("{kept}... ({} characters in all)", text.chars().count())
}

/// Holds one HTTP response to openapi.yaml, and panics, saying what to fix, when it breaks it:
/// - a path that matches no path of the document, or a method the path does not have, is API
///   Gateway's own answer (`404`, a CORS preflight) and is not checked;
/// - the status must be documented for the operation (exactly, else as `4XX`, else `default`);
/// - a response documented without content (`204`, `304`) must have no body (`Value::Null`);
/// - otherwise the body must be JSON of a documented media type and match its schema. With `fields=`
///   in the query, the fields it did not select may be missing (field selection, docs/API-GUIDE.md
///   "Conventions").
///
/// `body` is the decoded JSON (`Null` for no body; a body that is not JSON can be given as a string).
pub fn check_http_response(method: &str, path_and_query: &str, status: u16, content_type: Option<&str>, body: &Value) {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let Some(template) = path_template(path) else {
        return;
    };
    let method_key = method.to_ascii_lowercase();
    let Some(operation) = openapi()["paths"][template].get(&method_key) else {
        return;
    };
    let name = operation["operationId"].as_str().unwrap_or("?");
    let route = format!(
        "{} {template} ({name}), for {method} {path_and_query}",
        method.to_ascii_uppercase()
    );
    let fail = |problem: String| -> ! {
        panic!(
            "openapi.yaml: {route} answered {status}, which the document does not allow: {problem}\n  \
             body: {}\nFix the code where it breaks docs/API-GUIDE.md; else fix openapi.yaml.",
            truncated(body)
        )
    };
    let responses = &operation["responses"];
    let Some((key, response)) = documented_response(responses, status) else {
        let documented: Vec<&String> = responses.as_object().map(|r| r.keys().collect()).unwrap_or_default();
        fail(format!("the status is not documented (documented: {documented:?})"));
    };
    let pointer = format!("/paths/{}/{method_key}/responses/{key}", escape(template));
    let (response, pointer) = resolve(response, pointer);
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        if !body.is_null() {
            fail("the document gives this response no body, but it has one".to_owned());
        }
        return;
    };
    if body.is_null() {
        fail(format!(
            "the document gives this response a body ({:?}), but it has none",
            content.keys().collect::<Vec<_>>()
        ));
    }
    let essence = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(media_type) = content.keys().find(|m| **m == essence) else {
        fail(format!(
            "its Content-Type is {content_type:?}, not one of {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    let schema_pointer = format!("{pointer}/content/{}/schema", escape(media_type));
    let validator = schema_at(&schema_pointer);
    let fields = selected_fields(query);
    let problems: Vec<String> = validator
        .iter_errors(body)
        .filter(|e| !fields.as_deref().is_some_and(|fields| unselected(e, fields, body)))
        .map(|e| format!("at {}: {e}", shown_path(e.instance_path().as_str())))
        .collect();
    if !problems.is_empty() {
        fail(format!(
            "the body does not match openapi.yaml#{schema_pointer}:\n  - {}",
            problems.join("\n  - ")
        ));
    }
}

/// The response an operation documents for `status`: exactly, else its range (`4XX`), else `default`;
/// with the key it is documented under.
fn documented_response(responses: &Value, status: u16) -> Option<(String, &Value)> {
    [status.to_string(), format!("{}XX", status / 100), "default".to_owned()]
        .into_iter()
        .find_map(|key| responses.get(&key).map(|response| (key, response)))
}

/// Holds one response's headers to openapi.yaml: every header the response documents as `required`
/// (an `ETag` on a GET's `200` and `304`, `Retry-After` on `429` and `503`) is there, and every
/// documented header that is there matches its schema. Skips what [`check_http_response`] skips; an
/// undocumented status is that function's to report.
pub fn check_http_headers(method: &str, path_and_query: &str, status: u16, headers: &http::HeaderMap) {
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    let Some(template) = path_template(path) else {
        return;
    };
    let method_key = method.to_ascii_lowercase();
    let Some(operation) = openapi()["paths"][template].get(&method_key) else {
        return;
    };
    let responses = &operation["responses"];
    let Some((key, response)) = documented_response(responses, status) else {
        return;
    };
    let pointer = format!("/paths/{}/{method_key}/responses/{key}", escape(template));
    let (response, pointer) = resolve(response, pointer);
    let Some(documented) = response.get("headers").and_then(Value::as_object) else {
        return;
    };
    let name = operation["operationId"].as_str().unwrap_or("?");
    for (header, definition) in documented {
        let (definition, header_pointer) = resolve(definition, format!("{pointer}/headers/{}", escape(header)));
        let value = headers
            .get(header.as_str())
            .map(|v| v.to_str().unwrap_or("<not text>").to_owned());
        let Some(value) = value else {
            if definition["required"] == json!(true) {
                panic!(
                    "openapi.yaml: {} {template} ({name}), for {method} {path_and_query}, answered {status} without \
                     its required {header} header (headers: {headers:?}). Fix the code where it breaks \
                     docs/API-GUIDE.md; else fix openapi.yaml.",
                    method.to_ascii_uppercase()
                );
            }
            continue;
        };
        let instance = match definition["schema"]["type"].as_str() {
            Some("integer") => value
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(value.clone())),
            _ => Value::String(value.clone()),
        };
        let problems = schema_errors(&format!("{header_pointer}/schema"), &instance);
        assert!(
            problems.is_empty(),
            "openapi.yaml: {} {template} ({name}) answered {status} with {header}: {value:?}, which breaks \
             openapi.yaml#{header_pointer}: {problems:?}",
            method.to_ascii_uppercase()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_most_literal_template() {
        assert_eq!(path_template("/users/me"), Some("/users/me"));
        assert_eq!(
            path_template("/users/01JH3Z7Q2W8E4R6T8Y0V2J4K6P"),
            Some("/users/{userId}")
        );
        assert_eq!(path_template("/users/me/blocks"), Some("/users/me/blocks"));
        assert_eq!(path_template("/nowhere"), None);
        assert_eq!(
            path_template("/users/me/"),
            Some("/users/me"),
            "as the gateway routes it"
        );
        assert_eq!(path_template("/users/me/blocks/x/y"), None);
    }

    #[test]
    fn field_selections_are_read_from_the_query() {
        assert_eq!(
            selected_fields("limit=5&fields=name%2C+type,,"),
            Some(vec!["name".into(), "type".into()])
        );
        assert_eq!(selected_fields("limit=5"), None);
    }
}
