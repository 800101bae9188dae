//! Lambda's event filtering (`FilterCriteria`): the patterns an event source mapping applies to each
//! record before batching, so a record that matches none of them never reaches the function.
//!
//! A pattern is a JSON object whose fields the record must all have (nested objects go down into the
//! record's objects); each leaf is a list of matchers, any one of which must match. Matchers: exact
//! strings, numbers (compared as numbers), booleans and `null`; `{"prefix": "..."}`, `{"suffix": "..."}`,
//! `{"equals-ignore-case": "..."}`, `{"exists": true|false}`, `{"anything-but": value | [values] |
//! {"prefix": "..."}}` and `{"numeric": [">", 1, "<=", 5]}`. When the record holds a list where the
//! pattern expects a value, any element may match. Other operators (`wildcard`, `cidr`, ...) are refused
//! when the stack starts rather than matched wrongly.

use serde_json::{Map, Value};

/// One `FilterCriteria.Filters[].Pattern`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPattern {
    fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Object(Vec<(String, Node)>),
    AnyOf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exactly(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    Exists(bool),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    Numeric(Vec<(Comparison, f64)>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl FilterPattern {
    /// Reads a pattern's JSON text, or says what Lambda (or this emulation) would not take.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("the pattern is not valid JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err("the pattern must be a JSON object".to_owned());
        };
        Ok(FilterPattern {
            fields: object(&fields, "")?,
        })
    }

    pub fn matches(&self, record: &Value) -> bool {
        fields_match(&self.fields, Some(record))
    }
}

/// Whether a record passes a mapping's filters: any of them, or no filters at all.
pub fn passes(filters: &[FilterPattern], record: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(record))
}

fn object(fields: &Map<String, Value>, path: &str) -> Result<Vec<(String, Node)>, String> {
    if fields.is_empty() {
        return Err(format!(
            "{} is an empty object, which matches nothing",
            if path.is_empty() { "the pattern" } else { path }
        ));
    }
    fields
        .iter()
        .map(|(key, value)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let node = match value {
                Value::Object(inner) => Node::Object(object(inner, &path)?),
                Value::Array(items) if !items.is_empty() => {
                    Node::AnyOf(items.iter().map(|m| matcher(m, &path)).collect::<Result<_, _>>()?)
                }
                _ => {
                    return Err(format!(
                        "{path}: a pattern's values must be objects or non-empty lists of matchers"
                    ))
                }
            };
            Ok((key.clone(), node))
        })
        .collect()
}

fn matcher(value: &Value, path: &str) -> Result<Matcher, String> {
    let Value::Object(operator) = value else {
        return Ok(Matcher::Exactly(value.clone()));
    };
    let [(name, argument)] = operator.iter().collect::<Vec<_>>()[..] else {
        return Err(format!("{path}: a matcher object has exactly one operator"));
    };
    let text = |what: &str| -> Result<String, String> {
        argument
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{path}: {what} takes a string"))
    };
    Ok(match name.as_str() {
        "prefix" => Matcher::Prefix(text("prefix")?),
        "suffix" => Matcher::Suffix(text("suffix")?),
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(text("equals-ignore-case")?),
        "exists" => Matcher::Exists(
            argument
                .as_bool()
                .ok_or_else(|| format!("{path}: exists takes true or false"))?,
        ),
        "anything-but" => match argument {
            Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![argument.clone()]),
            Value::Array(values) if !values.is_empty() && values.iter().all(|v| v.is_string() || v.is_number()) => {
                Matcher::AnythingBut(values.clone())
            }
            Value::Object(inner) if inner.len() == 1 && inner.get("prefix").is_some_and(Value::is_string) => {
                Matcher::AnythingButPrefix(inner["prefix"].as_str().unwrap_or_default().to_owned())
            }
            _ => {
                return Err(format!(
                    "{path}: anything-but takes a string, a number, a list of them, or {{\"prefix\": ...}} \
                     (other forms are not supported by the local stack)"
                ))
            }
        },
        "numeric" => Matcher::Numeric(numeric(argument, path)?),
        other => {
            return Err(format!(
                "{path}: the {other:?} operator is not supported by the local stack's event filtering"
            ))
        }
    })
}

fn numeric(argument: &Value, path: &str) -> Result<Vec<(Comparison, f64)>, String> {
    let bad = || format!("{path}: numeric takes a list of operator and number pairs, e.g. [\">\", 0, \"<=\", 5]");
    let items = argument
        .as_array()
        .filter(|i| !i.is_empty() && i.len() % 2 == 0)
        .ok_or_else(bad)?;
    items
        .chunks(2)
        .map(|pair| {
            let comparison = match pair[0].as_str() {
                Some("=") => Comparison::Equal,
                Some("<") => Comparison::Less,
                Some("<=") => Comparison::LessOrEqual,
                Some(">") => Comparison::Greater,
                Some(">=") => Comparison::GreaterOrEqual,
                _ => return Err(bad()),
            };
            Ok((comparison, pair[1].as_f64().ok_or_else(bad)?))
        })
        .collect()
}

fn fields_match(fields: &[(String, Node)], value: Option<&Value>) -> bool {
    fields.iter().all(|(key, node)| {
        let field = match value {
            Some(Value::Object(object)) => object.get(key),
            _ => None,
        };
        node_matches(node, field)
    })
}

fn node_matches(node: &Node, field: Option<&Value>) -> bool {
    match node {
        Node::Object(fields) => match field {
            Some(Value::Array(items)) => items.iter().any(|item| fields_match(fields, Some(item))),
            other => fields_match(fields, other),
        },
        Node::AnyOf(matchers) => matchers.iter().any(|m| matcher_matches(m, field)),
    }
}

fn matcher_matches(matcher: &Matcher, field: Option<&Value>) -> bool {
    match (matcher, field) {
        (Matcher::Exists(wanted), field) => field.is_some() == *wanted,
        (_, None) => false,
        (_, Some(Value::Array(items))) => items.iter().any(|item| value_matches(matcher, item)),
        (_, Some(value)) => value_matches(matcher, value),
    }
}

fn value_matches(matcher: &Matcher, value: &Value) -> bool {
    match matcher {
        Matcher::Exactly(expected) => same(expected, value),
        Matcher::Prefix(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
        Matcher::Suffix(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
        Matcher::EqualsIgnoreCase(text) => value.as_str().is_some_and(|s| s.to_lowercase() == text.to_lowercase()),
        Matcher::Exists(_) => true,
        Matcher::AnythingBut(excluded) => {
            (value.is_string() || value.is_number()) && !excluded.iter().any(|e| same(e, value))
        }
        Matcher::AnythingButPrefix(prefix) => value.as_str().is_some_and(|s| !s.starts_with(prefix.as_str())),
        Matcher::Numeric(bounds) => value.as_f64().is_some_and(|n| {
            bounds.iter().all(|(comparison, bound)| match comparison {
                Comparison::Equal => n == *bound,
                Comparison::Less => n < *bound,
                Comparison::LessOrEqual => n <= *bound,
                Comparison::Greater => n > *bound,
                Comparison::GreaterOrEqual => n >= *bound,
            })
        }),
    }
}

/// Equality as filtering sees it: numbers by value (`5` is `5.0`), everything else exactly.
fn same(expected: &Value, value: &Value) -> bool {
    match (expected, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(pk: &str, sk: &str, event_name: &str) -> Value {
        json!({
            "eventName": event_name,
            "dynamodb": {
                "Keys": { "PK": { "S": pk }, "SK": { "S": sk } },
                "NewImage": { "PK": { "S": pk }, "SK": { "S": sk }, "count": { "N": "5" }, "tags": { "SS": ["a", "b"] } },
            },
            "size": 12,
        })
    }

    fn matches(pattern: &str, record: &Value) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(record)
    }

    #[test]
    fn nested_fields_prefixes_and_exact_values() {
        let meta = record("conv#1", "META", "INSERT");
        let message = record("conv#1", "MSG#1", "MODIFY");
        let prefix = r#"{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "META"}]}}}}"#;
        assert!(matches(prefix, &meta));
        assert!(!matches(prefix, &message));
        let both = r#"{"eventName": ["INSERT", "REMOVE"], "dynamodb": {"Keys": {"PK": {"S": ["conv#1"]}}}}"#;
        assert!(matches(both, &meta));
        assert!(!matches(both, &message), "every field must match");
        assert!(matches(r#"{"size": [12]}"#, &meta));
        assert!(matches(r#"{"size": [12.0]}"#, &meta), "numbers compare as numbers");
        assert!(!matches(r#"{"size": ["12"]}"#, &meta), "a string is not a number");
        assert!(
            matches(r#"{"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}"#, &meta),
            "any list element"
        );
        assert!(!matches(r#"{"missing": ["x"]}"#, &meta));
        assert!(
            !matches(r#"{"eventName": {"deeper": ["x"]}}"#, &meta),
            "a value is not an object"
        );
    }

    #[test]
    fn exists_anything_but_and_the_rest() {
        let meta = record("conv#1", "META", "INSERT");
        assert!(matches(r#"{"dynamodb": {"OldImage": [{"exists": false}]}}"#, &meta));
        assert!(!matches(r#"{"dynamodb": {"OldImage": [{"exists": true}]}}"#, &meta));
        assert!(matches(
            r#"{"dynamodb": {"NewImage": {"count": [{"exists": true}]}}}"#,
            &meta
        ));
        assert!(
            matches(r#"{"nowhere": {"at": [{"exists": false}]}}"#, &meta),
            "a missing parent"
        );
        assert!(matches(
            r#"{"eventName": [{"anything-but": ["REMOVE", "MODIFY"]}]}"#,
            &meta
        ));
        assert!(!matches(r#"{"eventName": [{"anything-but": "INSERT"}]}"#, &meta));
        assert!(
            !matches(r#"{"nowhere": [{"anything-but": "INSERT"}]}"#, &meta),
            "needs the field"
        );
        assert!(matches(
            r#"{"eventName": [{"anything-but": {"prefix": "MOD"}}]}"#,
            &meta
        ));
        assert!(matches(r#"{"eventName": [{"suffix": "SERT"}]}"#, &meta));
        assert!(matches(r#"{"eventName": [{"equals-ignore-case": "insert"}]}"#, &meta));
        assert!(matches(r#"{"size": [{"numeric": [">", 10, "<=", 12]}]}"#, &meta));
        assert!(!matches(r#"{"size": [{"numeric": ["<", 12]}]}"#, &meta));
        assert!(
            matches(r#"{"eventName": ["MODIFY", {"prefix": "INS"}]}"#, &meta),
            "any matcher of the list"
        );
    }

    #[test]
    fn several_filters_are_alternatives_and_none_is_everything() {
        let filters = [
            FilterPattern::parse(r#"{"eventName": ["REMOVE"]}"#).unwrap(),
            FilterPattern::parse(r#"{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "META"}]}}}}"#).unwrap(),
        ];
        assert!(passes(&filters, &record("a", "META", "INSERT")));
        assert!(passes(&filters, &record("a", "MSG", "REMOVE")));
        assert!(!passes(&filters, &record("a", "MSG", "INSERT")));
        assert!(passes(&[], &record("a", "MSG", "INSERT")));
    }

    #[test]
    fn patterns_it_cannot_evaluate_are_refused() {
        for (pattern, expected) in [
            ("nope", "not valid JSON"),
            ("[1]", "JSON object"),
            ("{}", "empty object"),
            (r#"{"a": {}}"#, "a is an empty object"),
            (r#"{"a": "x"}"#, "non-empty lists"),
            (r#"{"a": []}"#, "non-empty lists"),
            (
                r#"{"a": [{"wildcard": "x*"}]}"#,
                "\"wildcard\" operator is not supported",
            ),
            (r#"{"a": [{"prefix": 1}]}"#, "prefix takes a string"),
            (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "exactly one operator"),
            (r#"{"a": [{"exists": "yes"}]}"#, "exists takes true or false"),
            (r#"{"a": [{"anything-but": {"suffix": "x"}}]}"#, "anything-but takes"),
            (r#"{"a": [{"numeric": [">"]}]}"#, "numeric takes"),
            (r#"{"a": {"b": [{"numeric": ["~", 1]}]}}"#, "a.b: numeric takes"),
        ] {
            let error = FilterPattern::parse(pattern).unwrap_err();
            assert!(error.contains(expected), "{pattern}: {error}");
        }
    }
}
