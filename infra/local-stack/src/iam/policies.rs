//! The statements each function's role gets from template.yaml, as SAM and CloudFormation build the
//! role: the function's `Policies` (inline policy documents, `!Ref` to an `AWS::IAM::ManagedPolicy`
//! of the template, SAM policy templates expanded as SAM expands them), or the statements of the
//! `AWS::IAM::Role` its `Role` names, plus the template's managed and inline policies attached to
//! that role through their `Roles`. Intrinsic functions are resolved to the local values (`!GetAtt
//! ChatTable.Arn` is the local table's ARN).
//!
//! What cannot be known locally (an AWS managed policy by name, a statement whose values the local
//! stack cannot resolve) grants nothing and is reported, so it is seen rather than silently allowed.

use parley_template::{FunctionDefinition, Intrinsic, Template};
use serde_json::{json, Value as Json};
use serde_yaml_ng::Value as Yaml;

use super::{Role, Statement};
use crate::ids::{ACCOUNT_ID, REGION};
use crate::resolve::Resolver;

/// Every function's role, and remarks about what was left out of them.
pub fn roles(template: &Template, functions: &[FunctionDefinition], resolver: &Resolver) -> (Vec<Role>, Vec<String>) {
    let mut remarks = Vec::new();
    let roles = functions
        .iter()
        .map(|function| {
            let mut reader = Reader {
                template,
                resolver,
                owner: &function.logical_id,
                remarks: &mut remarks,
            };
            Role {
                function: function.logical_id.clone(),
                statements: reader.function_statements(),
            }
        })
        .collect();
    (roles, remarks)
}

struct Reader<'a> {
    template: &'a Template,
    resolver: &'a Resolver,
    owner: &'a str,
    remarks: &'a mut Vec<String>,
}

fn properties<'t>(template: &'t Template, id: &str) -> Option<&'t Yaml> {
    template.resource(id).and_then(|r| r.get("Properties"))
}

/// `!Ref X` / `{Ref: X}`: X.
fn reference(value: &Yaml) -> Option<&str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Yaml::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Yaml::as_str),
        _ => None,
    }
}

/// `!GetAtt X.Arn` / `{Fn::GetAtt: [X, Arn]}`: X.
fn attribute_owner(value: &Yaml) -> Option<String> {
    let path = match value {
        Yaml::Tagged(tagged) if tagged.tag == "GetAtt" => &tagged.value,
        Yaml::Mapping(map) if map.len() == 1 => map.get("Fn::GetAtt")?,
        _ => return None,
    };
    match path {
        Yaml::String(s) => s.split('.').next().map(str::to_owned),
        Yaml::Sequence(items) => items.first().and_then(Yaml::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Reader<'_> {
    fn remark(&mut self, text: String) {
        self.remarks.push(format!("IAM: {}: {text}", self.owner));
    }

    fn function_statements(&mut self) -> Vec<Statement> {
        let mut statements = Vec::new();
        let Some(props) = properties(self.template, self.owner) else {
            return statements;
        };
        // An explicit role replaces the one SAM would generate (and SAM ignores `Policies` then).
        let role_id = match props.get("Role") {
            Some(role) => match attribute_owner(role).or_else(|| reference(role).map(str::to_owned)) {
                Some(id) if self.template.resource_type(&id) == Some("AWS::IAM::Role") => {
                    self.role_statements(&id, &mut statements);
                    id
                }
                _ => {
                    self.remark("its Role is not an AWS::IAM::Role of the template: no statements".to_owned());
                    return statements;
                }
            },
            None => {
                match props.get("Policies") {
                    Some(Yaml::Sequence(items)) => {
                        for item in items {
                            self.policy_item(item, &mut statements);
                        }
                    }
                    Some(item) => self.policy_item(item, &mut statements),
                    None => {}
                }
                format!("{}Role", self.owner)
            }
        };
        self.attached_by_roles(&role_id, &mut statements);
        statements
    }

    /// One entry of a function's `Policies`.
    fn policy_item(&mut self, item: &Yaml, statements: &mut Vec<Statement>) {
        if let Some(name) = reference(item) {
            match self.template.resource_type(name) {
                Some("AWS::IAM::ManagedPolicy") => {
                    let document = properties(self.template, name).and_then(|p| p.get("PolicyDocument"));
                    self.document(document, statements);
                }
                _ => self.remark(format!(
                    "the policy !Ref {name} is not an AWS::IAM::ManagedPolicy of the template: it grants nothing locally"
                )),
            }
            return;
        }
        match item {
            Yaml::String(name) => self.remark(format!(
                "the AWS managed policy {name} is not known locally: it grants nothing locally"
            )),
            Yaml::Mapping(map) if map.contains_key("Statement") => self.document(Some(item), statements),
            Yaml::Mapping(map) if map.len() == 1 => {
                let (name, parameters) = map.iter().next().expect("one entry");
                let name = name.as_str().unwrap_or_default();
                match self.sam_policy_template(name, parameters) {
                    Ok(expanded) => {
                        for statement in expanded {
                            match Statement::parse(&statement) {
                                Ok(statement) => statements.push(statement),
                                Err(problem) => self.remark(format!("{name}: {problem}")),
                            }
                        }
                    }
                    Err(problem) => self.remark(problem),
                }
            }
            _ => self.remark("a Policies entry the local stack does not understand grants nothing".to_owned()),
        }
    }

    /// A policy document's statements, each resolved on its own: one the local stack cannot resolve
    /// is left out (and reported), the others still count.
    fn document(&mut self, document: Option<&Yaml>, statements: &mut Vec<Statement>) {
        let items = match document.and_then(|d| d.get("Statement")) {
            Some(Yaml::Sequence(items)) => items.iter().collect(),
            Some(one) => vec![one],
            None => vec![],
        };
        for item in items {
            match self.json_of(item).and_then(|json| Statement::parse(&json)) {
                Ok(statement) => statements.push(statement),
                Err(problem) => self.remark(format!("a statement is left out: {problem}")),
            }
        }
    }

    /// An `AWS::IAM::Role`'s inline `Policies` and its `ManagedPolicyArns` of the template.
    fn role_statements(&mut self, role: &str, statements: &mut Vec<Statement>) {
        let Some(props) = properties(self.template, role) else {
            return;
        };
        if let Some(Yaml::Sequence(policies)) = props.get("Policies") {
            for policy in policies {
                self.document(policy.get("PolicyDocument"), statements);
            }
        }
        if let Some(Yaml::Sequence(arns)) = props.get("ManagedPolicyArns") {
            for arn in arns {
                self.policy_item(arn, statements);
            }
        }
    }

    /// Managed and inline policies of the template that attach themselves to the role (`Roles`).
    fn attached_by_roles(&mut self, role: &str, statements: &mut Vec<Statement>) {
        for id in self.template.resource_ids() {
            if !matches!(
                self.template.resource_type(&id),
                Some("AWS::IAM::ManagedPolicy" | "AWS::IAM::Policy")
            ) {
                continue;
            }
            let Some(props) = properties(self.template, &id) else {
                continue;
            };
            let attached = props.get("Roles").and_then(Yaml::as_sequence).is_some_and(|roles| {
                roles
                    .iter()
                    .any(|r| reference(r) == Some(role) || r.as_str() == Some(role))
            });
            if attached {
                self.document(props.get("PolicyDocument"), statements);
            }
        }
    }

    /// A SAM policy template, expanded as SAM's policy_templates.json does (the ones Parley may use).
    fn sam_policy_template(&self, name: &str, parameters: &Yaml) -> Result<Vec<Json>, String> {
        let parameter = |key: &str| -> Result<String, String> {
            let value = parameters
                .get(key)
                .ok_or_else(|| format!("the SAM policy template {name} needs {key}"))?;
            match self.json_of(value)? {
                Json::String(s) => Ok(s),
                other => Ok(other.to_string()),
            }
        };
        let table = |name: &str| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}");
        let statement = |actions: &[&str], resources: Vec<String>| json!({"Effect": "Allow", "Action": actions, "Resource": resources});
        Ok(match name {
            "DynamoDBCrudPolicy" => {
                let t = parameter("TableName")?;
                vec![statement(
                    &[
                        "dynamodb:GetItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:PutItem",
                        "dynamodb:Scan",
                        "dynamodb:Query",
                        "dynamodb:UpdateItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:BatchGetItem",
                        "dynamodb:DescribeTable",
                        "dynamodb:ConditionCheckItem",
                    ],
                    vec![table(&t), format!("{}/index/*", table(&t))],
                )]
            }
            "DynamoDBReadPolicy" => {
                let t = parameter("TableName")?;
                vec![statement(
                    &[
                        "dynamodb:GetItem",
                        "dynamodb:Scan",
                        "dynamodb:Query",
                        "dynamodb:BatchGetItem",
                        "dynamodb:DescribeTable",
                    ],
                    vec![table(&t), format!("{}/index/*", table(&t))],
                )]
            }
            "DynamoDBWritePolicy" => {
                let t = parameter("TableName")?;
                vec![statement(
                    &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
                    vec![table(&t), format!("{}/index/*", table(&t))],
                )]
            }
            "SQSSendMessagePolicy" => {
                let q = parameter("QueueName")?;
                vec![statement(
                    &["sqs:SendMessage*"],
                    vec![format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{q}")],
                )]
            }
            "CloudWatchPutMetricPolicy" => vec![statement(&["cloudwatch:PutMetricData"], vec!["*".to_owned()])],
            "AWSSecretsManagerGetSecretValuePolicy" => {
                let arn = parameter("SecretArn")?;
                vec![statement(&["secretsmanager:GetSecretValue"], vec![arn])]
            }
            other => {
                return Err(format!(
                    "the SAM policy template {other} is not expanded locally: it grants nothing locally"
                ))
            }
        })
    }

    /// A template value as JSON, its intrinsic functions resolved to local values.
    fn json_of(&self, value: &Yaml) -> Result<Json, String> {
        Ok(match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(Json::Null),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => Json::Array(items.iter().map(|i| self.json_of(i)).collect::<Result<_, _>>()?),
            Yaml::Tagged(tagged) => {
                let argument = match &tagged.value {
                    Yaml::String(s) => Some(s.clone()),
                    Yaml::Sequence(items) if tagged.tag == "GetAtt" => {
                        Some(items.iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join("."))
                    }
                    _ => None,
                };
                let name = tagged.tag.to_string();
                self.intrinsic(name.trim_start_matches('!'), argument)?
            }
            Yaml::Mapping(map) => {
                if map.len() == 1 {
                    let (key, argument) = map.iter().next().expect("one entry");
                    let function = key.as_str().unwrap_or_default();
                    if function == "Ref" || function.starts_with("Fn::") {
                        let argument = match argument {
                            Yaml::String(s) => Some(s.clone()),
                            Yaml::Sequence(items) if function == "Fn::GetAtt" => {
                                Some(items.iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join("."))
                            }
                            _ => None,
                        };
                        return self.intrinsic(function.trim_start_matches("Fn::"), argument);
                    }
                }
                let mut object = serde_json::Map::new();
                for (key, value) in map {
                    let key = key.as_str().ok_or("a map key is not a string")?;
                    object.insert(key.to_owned(), self.json_of(value)?);
                }
                Json::Object(object)
            }
        })
    }

    fn intrinsic(&self, function: &str, argument: Option<String>) -> Result<Json, String> {
        let argument = argument.ok_or_else(|| format!("the local stack cannot evaluate this Fn::{function}"))?;
        let intrinsic = match function {
            "Ref" => Intrinsic::Ref(argument),
            "GetAtt" => Intrinsic::GetAtt(argument),
            "Sub" => Intrinsic::Sub(argument),
            other => return Err(format!("the local stack cannot evaluate Fn::{other} in a policy")),
        };
        self.resolver.resolve(&intrinsic).map(Json::String)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::iam::{Decision, Request};

    const TEMPLATE: &str = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: PK, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]
  Queue:
    Type: AWS::SQS::Queue
  Shared:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: dynamodb:GetItem
            Resource: !GetAtt Table.Arn
            Condition:
              ForAllValues:StringLike:
                dynamodb:LeadingKeys: ["RATE#*"]
  Attached:
    Type: AWS::IAM::Policy
    Properties:
      Roles: [!Ref OneFunctionRole]
      PolicyDocument:
        Statement:
          - {Effect: Deny, Action: "dynamodb:DeleteItem", Resource: "*"}
  OneFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: one}}
    Properties:
      Policies:
        - !Ref Shared
        - AWSLambdaBasicExecutionRole
        - DynamoDBReadPolicy: {TableName: !Ref Table}
        - Statement:
            - Effect: Allow
              Action: [sqs:SendMessage, "dynamodb:*"]
              Resource: [!GetAtt Queue.Arn, !Sub "${Table.Arn}/index/*"]
            - Effect: Allow
              Action: s3:GetObject
              Resource: !GetAtt Nowhere.Arn
"#;

    #[test]
    fn a_functions_role_collects_every_kind_of_policy() {
        let template = Template::parse(TEMPLATE).unwrap();
        let functions = template.functions().unwrap();
        let resolver = Resolver::new(&template, BTreeMap::new());
        let (roles, remarks) = roles(&template, &functions, &resolver);
        let role = &roles[0];
        assert_eq!(role.function, "OneFunction");
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/Table";
        let decide = |action: &str, resource: &str, leading: &[&str]| {
            let context: &[(&str, &[&str])] = &[("dynamodb:leadingkeys", leading)];
            role.decide(&Request {
                action,
                resource,
                context,
            })
        };
        // The managed policy, with its condition.
        assert_eq!(decide("dynamodb:GetItem", table, &["RATE#1"]), Decision::Allow);
        // The SAM template's Query, on the table and its indexes.
        assert_eq!(
            decide("dynamodb:Query", &format!("{table}/index/X"), &["A"]),
            Decision::Allow
        );
        assert_eq!(decide("dynamodb:PutItem", table, &["A"]), Decision::ImplicitDeny);
        assert_eq!(
            decide("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:Queue", &[]),
            Decision::Allow
        );
        // The policy attached through its Roles denies, whatever else allows.
        assert_eq!(
            decide("dynamodb:DeleteItem", &format!("{table}/index/X"), &[]),
            Decision::ExplicitDeny
        );
        assert!(
            remarks.iter().any(|r| r.contains("AWSLambdaBasicExecutionRole")),
            "{remarks:?}"
        );
        assert!(remarks.iter().any(|r| r.contains("Nowhere")), "{remarks:?}");
    }

    #[test]
    fn the_workspace_templates_roles_resolve_whole_and_keep_sign_in_to_its_partitions() {
        let template = Template::load(&crate::workspace_template()).unwrap();
        let functions = template.functions().unwrap();
        let (roles, remarks) = roles(&template, &functions, &Resolver::new(&template, BTreeMap::new()));
        assert!(remarks.is_empty(), "{remarks:#?}");
        let role = |id: &str| roles.iter().find(|r| r.function == id).unwrap();
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable";
        let decide = |function: &str, action: &str, leading: &[&str]| {
            let context: &[(&str, &[&str])] = &[("dynamodb:leadingkeys", leading)];
            role(function).decide(&Request {
                action,
                resource: table,
                context,
            })
        };
        assert_eq!(
            decide("AuthRegisterFunction", "dynamodb:PutItem", &["USERNAME#a"]),
            Decision::Allow
        );
        assert_eq!(
            decide("AuthRegisterFunction", "dynamodb:PutItem", &["CONV#1"]),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide("AuthWalletChallengeFunction", "dynamodb:PutItem", &["SESSION#1"]),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide("AuthLoginFunction", "dynamodb:GetItem", &["RATE#loginfail#a"]),
            Decision::Allow
        );
        assert_eq!(
            decide("AuthLoginFunction", "dynamodb:GetItem", &["CONV#1"]),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide("MessagesSendFunction", "dynamodb:PutItem", &["CONV#1"]),
            Decision::Allow
        );
    }
}
