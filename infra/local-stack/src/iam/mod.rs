//! IAM as the deployed functions meet it: each function calls AWS with its own credentials, and each
//! call is allowed only if the statements its role gets from template.yaml allow it. Locally every
//! function gets an access key of its own (`access_key_for`), the services read the caller's key from
//! the SigV4 `Authorization` header, and this module decides with the role's statements. Keys it does
//! not know (tests, tools, the stack itself) are not checked: they stand for an administrator.
//!
//! The evaluation is IAM's for identity-based policies: an explicit Deny wins, otherwise some Allow
//! must apply. Action and resource patterns take `*` and `?` (actions case-insensitively), and the
//! string condition operators with their set qualifiers (`ForAllValues:`, `ForAnyValue:`) and
//! `IfExists` are evaluated; an operator this module does not know is refused when the stack starts,
//! so a policy is never judged by a guess.
//!
//! This module is pure (no I/O): `policies` reads the statements out of the template, `dynamodb` says
//! what a DynamoDB request asks for, and `proxy` is the authorizing HTTP proxy in front of DynamoDB;
//! `s3` and `s3_proxy` are the same for the local S3 server.

pub mod dynamodb;
pub mod policies;
pub mod proxy;
pub mod s3;
pub mod s3_proxy;

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::ACCOUNT_ID;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement of an identity-based policy, its intrinsic functions resolved to local values.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub effect: Effect,
    /// `Action`, or `NotAction` when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    /// `Resource`, or `NotResource` when `not_resource`.
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    /// `Null: {key: "true"}`: the key is absent.
    Null,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Operator::StringNotEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "Null" => Operator::Null,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals | Operator::StringNotEqualsIgnoreCase | Operator::StringNotLike
        )
    }

    /// Whether one request value matches one policy value, before negation.
    fn matches(self, pattern: &str, value: &str) -> bool {
        match self {
            Operator::StringEquals | Operator::StringNotEquals => pattern == value,
            Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase => {
                pattern.eq_ignore_ascii_case(value)
            }
            Operator::StringLike | Operator::StringNotLike => glob(pattern, value, false),
            Operator::Null => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// A single-valued comparison.
    Single,
    /// Every value of the request's key matches (also when it has none).
    ForAllValues,
    /// Some value of the request's key matches.
    ForAnyValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub qualifier: SetQualifier,
    pub if_exists: bool,
    /// Condition keys are case-insensitive: kept lower-case.
    pub key: String,
    /// Any may match.
    pub values: Vec<String>,
}

impl Condition {
    fn holds(&self, request: &Request) -> bool {
        let values = request.context_values(&self.key);
        if self.operator == Operator::Null {
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return values.is_none() == wants_absent;
        }
        // A value satisfies the operator when it matches some policy value (or, negated, none).
        let satisfies = |value: &str| {
            let matched = self.values.iter().any(|pattern| self.operator.matches(pattern, value));
            matched != self.operator.negated()
        };
        match (self.qualifier, values) {
            (SetQualifier::ForAllValues, None) => true,
            (SetQualifier::ForAllValues, Some(values)) => values.iter().all(|v| satisfies(v)),
            (SetQualifier::ForAnyValue, None) => false,
            (SetQualifier::ForAnyValue, Some(values)) => values.iter().any(|v| satisfies(v)),
            // An absent key matches nothing, which a negated operator takes as true.
            (SetQualifier::Single, None) => self.if_exists || self.operator.negated(),
            (SetQualifier::Single, Some(values)) if self.operator.negated() => values.iter().all(|v| satisfies(v)),
            (SetQualifier::Single, Some(values)) => values.iter().any(|v| satisfies(v)),
        }
    }
}

/// What one call asks for: an action on a resource, with the request's condition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// Condition key (lower-case) -> its values; a key with no entry is absent.
    pub context: &'a [(&'a str, &'a [&'a str])],
}

impl Request<'_> {
    fn context_values(&self, key: &str) -> Option<&[&str]> {
        self.context
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, values)| *values)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows it.
    ImplicitDeny,
    /// A Deny statement applies.
    ExplicitDeny,
}

impl Statement {
    fn applies(&self, request: &Request) -> bool {
        let action = self.actions.iter().any(|p| glob(p, request.action, true)) != self.not_action;
        action
            && self.resources.iter().any(|p| glob(p, request.resource, false)) != self.not_resource
            && self.conditions.iter().all(|c| c.holds(request))
    }

    /// One element of a policy document's `Statement`, as JSON.
    pub fn parse(value: &Value) -> Result<Statement, String> {
        let effect = match value.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("Effect must be Allow or Deny, not {other:?}")),
        };
        let (actions, not_action) = either(value, "Action", "NotAction")?;
        let (resources, not_resource) = either(value, "Resource", "NotResource")?;
        let mut conditions = Vec::new();
        if let Some(blocks) = value.get("Condition") {
            let blocks = blocks.as_object().ok_or("Condition must be a map of operators")?;
            for (operator_name, keys) in blocks {
                let (qualifier, rest) = if let Some(rest) = operator_name.strip_prefix("ForAllValues:") {
                    (SetQualifier::ForAllValues, rest)
                } else if let Some(rest) = operator_name.strip_prefix("ForAnyValue:") {
                    (SetQualifier::ForAnyValue, rest)
                } else {
                    (SetQualifier::Single, operator_name.as_str())
                };
                let (base, if_exists) = match rest.strip_suffix("IfExists") {
                    Some(base) => (base, true),
                    None => (rest, false),
                };
                let operator = Operator::parse(base)
                    .ok_or_else(|| format!("the local stack cannot evaluate the condition operator {operator_name}"))?;
                let keys = keys
                    .as_object()
                    .ok_or_else(|| format!("{operator_name} must be a map of condition keys"))?;
                for (key, values) in keys {
                    conditions.push(Condition {
                        operator,
                        qualifier,
                        if_exists,
                        key: key.to_ascii_lowercase(),
                        values: strings(values).ok_or_else(|| format!("{operator_name} {key}: strings expected"))?,
                    });
                }
            }
        }
        Ok(Statement {
            effect,
            actions,
            not_action,
            resources,
            not_resource,
            conditions,
        })
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// `Action` or `NotAction` (exactly one of them): the patterns, and whether it was the `Not` one.
fn either(statement: &Value, name: &str, not_name: &str) -> Result<(Vec<String>, bool), String> {
    match (statement.get(name), statement.get(not_name)) {
        (Some(v), None) => Ok((strings(v).ok_or_else(|| format!("{name}: strings expected"))?, false)),
        (None, Some(v)) => Ok((strings(v).ok_or_else(|| format!("{not_name}: strings expected"))?, true)),
        _ => Err(format!("a statement needs exactly one of {name} and {not_name}")),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let same = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the text its run ends so far: the backtracking point.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && same(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

pub fn evaluate(statements: &[Statement], request: &Request) -> Decision {
    let mut allowed = false;
    for statement in statements.iter().filter(|s| s.applies(request)) {
        match statement.effect {
            Effect::Deny => return Decision::ExplicitDeny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// The access key id of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/<service>/aws4_request, SignedHeaders=..., ...`.
pub fn access_key_id(authorization: &str) -> Option<&str> {
    let credential = authorization.split_once("Credential=")?.1;
    let akid = credential.split('/').next()?;
    (!akid.is_empty()).then_some(akid)
}

/// The access key a function's instances get (`AWS_ACCESS_KEY_ID`): temporary credentials' `ASIA`,
/// then a digest of the function's logical id, so the same function has the same key on every start.
/// s3-local's launcher accepts every `ASIALOCAL` key with the secret `local`.
pub fn access_key_for(function: &str) -> String {
    let digest = Sha256::digest(function.as_bytes());
    let tail: String = digest.iter().take(6).map(|b| format!("{b:02X}")).collect();
    format!("ASIALOCAL{}", &tail[..11])
}

/// A function's role, as the services see its calls.
#[derive(Debug, Clone)]
pub struct Role {
    /// The function's logical id.
    pub function: String,
    pub statements: Vec<Statement>,
}

impl Role {
    /// The caller as AWS names it in a denial: SAM names the role `<Function>Role`, and Lambda's
    /// session is the function.
    pub fn caller_arn(&self) -> String {
        format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{f}Role/{f}", f = self.function)
    }

    pub fn decide(&self, request: &Request) -> Decision {
        evaluate(&self.statements, request)
    }

    /// The denial's message, word for word as AWS words it.
    pub fn denial(&self, action: &str, resource: &str, decision: Decision) -> String {
        let why = match decision {
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_owned(),
            _ => format!("because no identity-based policy allows the {action} action"),
        };
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
            self.caller_arn()
        )
    }
}

/// Every function's role, by its access key.
#[derive(Debug, Default)]
pub struct Iam {
    roles: HashMap<String, Role>,
}

impl Iam {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        Iam {
            roles: roles
                .into_iter()
                .map(|role| (access_key_for(&role.function), role))
                .collect(),
        }
    }

    /// The role of a request's caller; None for a key no function has (not checked).
    pub fn caller<B>(&self, request: &hyper::Request<B>) -> Option<&Role> {
        let authorization = request.headers().get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
        self.role_of_key(access_key_id(authorization)?)
    }

    pub fn role_of_key(&self, access_key_id: &str) -> Option<&Role> {
        self.roles.get(access_key_id)
    }
}

/// A checked call's outcome: None when allowed; otherwise the denial message, and the gateway's log
/// line naming function, action and resource.
pub fn check(role: &Role, action: &str, resource: &str, context: &[(&str, &[&str])]) -> Option<(String, String)> {
    let decision = role.decide(&Request {
        action,
        resource,
        context,
    });
    if decision == Decision::Allow {
        return None;
    }
    let kind = match decision {
        Decision::ExplicitDeny => "explicitly denied",
        _ => "not allowed",
    };
    let keys: Vec<String> = context
        .iter()
        .map(|(key, values)| format!(" {key}={values:?}"))
        .collect();
    let log = format!(
        "IAM: {} denied {action} on {resource}{} ({kind} by its template.yaml Policies)",
        role.function,
        keys.concat()
    );
    Some((role.denial(action, resource, decision), log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable";

    fn statement(value: Value) -> Statement {
        Statement::parse(&value).unwrap()
    }

    fn decide(statements: &[Statement], action: &str, resource: &str, leading: &[&str]) -> Decision {
        let context: &[(&str, &[&str])] = &[("dynamodb:leadingkeys", leading)];
        evaluate(
            statements,
            &Request {
                action,
                resource,
                context: if leading.is_empty() { &[] } else { context },
            },
        )
    }

    #[test]
    fn globs() {
        assert!(glob("dynamodb:*", "dynamodb:PutItem", true));
        assert!(glob("dynamodb:Get*", "dynamodb:GetItem", true));
        assert!(glob("DynamoDB:getitem", "dynamodb:GetItem", true));
        assert!(!glob("dynamodb:Get*", "dynamodb:BatchGetItem", true));
        assert!(glob("RATE#*", "RATE#ip#1", false));
        assert!(!glob("rate#*", "RATE#ip#1", false));
        assert!(glob("a?c*e", "abcdde", false));
        assert!(glob("*", "", false));
        assert!(!glob("a*b", "acbc", false));
        assert!(glob("a*b*c", "aXbYbZc", false));
    }

    #[test]
    fn action_and_resource_wildcards() {
        let statements = [statement(json!({
            "Effect": "Allow",
            "Action": ["dynamodb:Get*", "dynamodb:Query"],
            "Resource": [TABLE, format!("{TABLE}/index/*")],
        }))];
        assert_eq!(decide(&statements, "dynamodb:GetItem", TABLE, &[]), Decision::Allow);
        assert_eq!(
            decide(&statements, "dynamodb:Query", &format!("{TABLE}/index/GSI1"), &[]),
            Decision::Allow
        );
        assert_eq!(
            decide(&statements, "dynamodb:PutItem", TABLE, &[]),
            Decision::ImplicitDeny
        );
        // The table's ARN does not cover its indexes, nor another table.
        let one = [statement(
            json!({"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE}),
        )];
        assert_eq!(
            decide(&one, "dynamodb:Query", &format!("{TABLE}/index/GSI1"), &[]),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&one, "dynamodb:Query", &format!("{TABLE}2"), &[]),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn leading_keys_conditions() {
        let statements = [statement(json!({
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            "Resource": TABLE,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*", "HEALTH"]}},
        }))];
        assert_eq!(
            decide(&statements, "dynamodb:GetItem", TABLE, &["RATE#ip#1"]),
            Decision::Allow
        );
        assert_eq!(
            decide(&statements, "dynamodb:GetItem", TABLE, &["HEALTH"]),
            Decision::Allow
        );
        assert_eq!(
            decide(&statements, "dynamodb:GetItem", TABLE, &["USER#1"]),
            Decision::ImplicitDeny
        );
        // Every key of a batch must match.
        assert_eq!(
            decide(&statements, "dynamodb:BatchGetItem", TABLE, &["HEALTH", "RATE#x"]),
            Decision::Allow
        );
        assert_eq!(
            decide(&statements, "dynamodb:BatchGetItem", TABLE, &["HEALTH", "USER#1"]),
            Decision::ImplicitDeny
        );
        // ForAllValues holds for a request without the key (IAM's well-known trap, kept).
        assert_eq!(decide(&statements, "dynamodb:GetItem", TABLE, &[]), Decision::Allow);

        let any = [statement(json!({
            "Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE,
            "Condition": {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": "USER#1"}},
        }))];
        assert_eq!(
            decide(&any, "dynamodb:Query", TABLE, &["USER#2", "USER#1"]),
            Decision::Allow
        );
        assert_eq!(decide(&any, "dynamodb:Query", TABLE, &[]), Decision::ImplicitDeny);

        let single = [statement(json!({
            "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Parley"}},
        }))];
        let request = |namespace: &'static [&'static str]| {
            let context: Vec<(&str, &[&str])> = if namespace.is_empty() {
                vec![]
            } else {
                vec![("cloudwatch:namespace", namespace)]
            };
            evaluate(
                &single,
                &Request {
                    action: "cloudwatch:PutMetricData",
                    resource: "*",
                    context: &context,
                },
            )
        };
        assert_eq!(request(&["Parley"]), Decision::Allow);
        assert_eq!(request(&["Other"]), Decision::ImplicitDeny);
        assert_eq!(request(&[]), Decision::ImplicitDeny);
    }

    #[test]
    fn negated_operators_and_if_exists() {
        let not_like = [statement(json!({
            "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE,
            "Condition": {"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": "SECRET#*"}},
        }))];
        assert_eq!(
            decide(&not_like, "dynamodb:GetItem", TABLE, &["USER#1"]),
            Decision::Allow
        );
        assert_eq!(
            decide(&not_like, "dynamodb:GetItem", TABLE, &["SECRET#1"]),
            Decision::ImplicitDeny
        );
        let if_exists = [statement(json!({
            "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE,
            "Condition": {"StringLikeIfExists": {"dynamodb:LeadingKeys": "USER#*"}},
        }))];
        assert_eq!(decide(&if_exists, "dynamodb:GetItem", TABLE, &[]), Decision::Allow);
        assert_eq!(
            decide(&if_exists, "dynamodb:GetItem", TABLE, &["CONV#1"]),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn explicit_deny_wins_and_not_action_not_resource() {
        let statements = [
            statement(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})),
            statement(json!({
                "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE,
                "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": "USER#*"}},
            })),
        ];
        assert_eq!(
            decide(&statements, "dynamodb:DeleteItem", TABLE, &["CONV#1"]),
            Decision::Allow
        );
        assert_eq!(
            decide(&statements, "dynamodb:DeleteItem", TABLE, &["USER#1"]),
            Decision::ExplicitDeny
        );
        let not = [statement(json!({
            "Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": format!("{TABLE}/index/*"),
        }))];
        assert_eq!(decide(&not, "dynamodb:PutItem", TABLE, &[]), Decision::Allow);
        assert_eq!(decide(&not, "dynamodb:DeleteItem", TABLE, &[]), Decision::ImplicitDeny);
        assert_eq!(
            decide(&not, "dynamodb:Query", &format!("{TABLE}/index/GSI1"), &[]),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn unknown_operators_and_malformed_statements_are_refused() {
        let error = Statement::parse(&json!({
            "Effect": "Allow", "Action": "s3:*", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }))
        .unwrap_err();
        assert!(error.contains("IpAddress"), "{error}");
        assert!(Statement::parse(&json!({"Effect": "Allow", "Resource": "*"})).is_err());
        assert!(Statement::parse(&json!({"Effect": "Maybe", "Action": "*", "Resource": "*"})).is_err());
    }

    #[test]
    fn callers_are_known_by_their_access_key() {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={}/20261207/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab",
            access_key_for("MessagesSendFunction")
        );
        assert_eq!(
            access_key_id(&header),
            Some(access_key_for("MessagesSendFunction").as_str())
        );
        assert_eq!(access_key_id("Bearer x"), None);
        assert_eq!(access_key_for("A").len(), 20);
        assert_ne!(access_key_for("A"), access_key_for("B"));
        let iam = Iam::new([Role {
            function: "MessagesSendFunction".to_owned(),
            statements: vec![],
        }]);
        let request = hyper::Request::builder()
            .header("authorization", header)
            .body(())
            .unwrap();
        let role = iam.caller(&request).unwrap();
        assert_eq!(
            role.denial("dynamodb:PutItem", TABLE, Decision::ImplicitDeny),
            "User: arn:aws:sts::123456789012:assumed-role/MessagesSendFunctionRole/MessagesSendFunction is not \
             authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable \
             because no identity-based policy allows the dynamodb:PutItem action"
        );
        let unknown = hyper::Request::builder()
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20261207/us-east-1/dynamodb/aws4_request",
            )
            .body(())
            .unwrap();
        assert!(iam.caller(&unknown).is_none());
    }
}
