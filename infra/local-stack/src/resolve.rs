//! Resolves the intrinsic functions of a function's environment to local values: `!Ref` to a parameter
//! or a resource's local name (a queue's local URL), `!GetAtt X.Arn` to a local ARN, `!Sub` by both.

use std::collections::BTreeMap;

use parley_template::{sub_references, Intrinsic, Template};

use crate::ids::{ACCOUNT_ID, REGION};

pub struct Resolver {
    parameters: BTreeMap<String, String>,
    resource_types: BTreeMap<String, String>,
    /// Queue logical id -> queue name.
    queue_names: BTreeMap<String, String>,
    /// Where the local SQS API is served (`http://127.0.0.1:port`), which queue URLs start with.
    sqs_endpoint: String,
    /// Table logical id -> the label of its stream on DynamoDB Local.
    stream_labels: BTreeMap<String, String>,
}

impl Resolver {
    /// `given` values win over the template's `Default`s.
    pub fn new(template: &Template, given: BTreeMap<String, String>) -> Self {
        let mut parameters: BTreeMap<String, String> = template
            .parameters()
            .into_iter()
            .filter_map(|p| p.default.map(|d| (p.name, d)))
            .collect();
        parameters.extend(given);
        let resource_types = template
            .resource_ids()
            .into_iter()
            .map(|id| {
                let kind = template.resource_type(&id).unwrap_or_default().to_owned();
                (id, kind)
            })
            .collect();
        // A broken queue definition is reported by the stack's start, which reads the queues first.
        let queue_names = template
            .queues()
            .unwrap_or_default()
            .into_iter()
            .map(|q| (q.logical_id.clone(), q.name()))
            .collect();
        Resolver {
            parameters,
            resource_types,
            queue_names,
            sqs_endpoint: "http://127.0.0.1".to_owned(),
            stream_labels: BTreeMap::new(),
        }
    }

    /// `!GetAtt Table.StreamArn` names the stream DynamoDB Local runs, as the stream mappings' events do.
    pub fn with_stream_label(mut self, table: &str, label: &str) -> Self {
        self.stream_labels.insert(table.to_owned(), label.to_owned());
        self
    }

    /// Queue URLs point at the local SQS API served here.
    pub fn with_sqs_endpoint(mut self, endpoint: String) -> Self {
        self.sqs_endpoint = endpoint;
        self
    }

    fn queue_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.queue_names.get(id).map(String::as_str).unwrap_or(id)
    }

    pub fn resolve(&self, value: &Intrinsic) -> Result<String, String> {
        match value {
            Intrinsic::Literal(text) => Ok(text.clone()),
            Intrinsic::Ref(name) => self.reference(name),
            Intrinsic::GetAtt(path) => self.attribute(path),
            Intrinsic::Sub(text) => {
                let mut out = text.clone();
                for name in sub_references(text) {
                    let value = if name.contains('.') {
                        self.attribute(&name)?
                    } else {
                        self.reference(&name)?
                    };
                    out = out.replace(&format!("${{{name}}}"), &value);
                }
                Ok(out.replace("${!", "${"))
            }
            Intrinsic::Other(function) => Err(format!("the local stack cannot evaluate Fn::{function}")),
        }
    }

    fn reference(&self, name: &str) -> Result<String, String> {
        match name {
            "AWS::Region" => return Ok(REGION.to_owned()),
            "AWS::AccountId" => return Ok(ACCOUNT_ID.to_owned()),
            "AWS::StackName" => return Ok("parley-local".to_owned()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        match self.resource_types.get(name).map(String::as_str) {
            Some("AWS::SQS::Queue") => Ok(crate::ids::queue_url(&self.sqs_endpoint, self.queue_name(name))),
            // Locally, a resource's physical name is its logical id (the local table is named so).
            Some(_) => Ok(name.to_owned()),
            None => Err(format!(
                "{name} is neither a resource nor a parameter with a value (pass --parameter {name}=VALUE)"
            )),
        }
    }

    fn attribute(&self, path: &str) -> Result<String, String> {
        let (id, attribute) = path
            .split_once('.')
            .ok_or_else(|| format!("GetAtt {path} names no attribute"))?;
        let kind = self
            .resource_types
            .get(id)
            .ok_or_else(|| format!("GetAtt {path}: no resource {id}"))?;
        match (kind.as_str(), attribute) {
            ("AWS::DynamoDB::Table", "Arn") => Ok(format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{id}")),
            ("AWS::DynamoDB::Table", "StreamArn") => Ok(crate::ids::stream_arn(
                id,
                self.stream_labels.get(id).map_or("local", String::as_str),
            )),
            ("AWS::Serverless::Function", "Arn") => Ok(crate::ids::function_arn(id)),
            ("AWS::SNS::Topic", "TopicArn") => Ok(format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{id}")),
            ("AWS::SQS::Queue", "Arn") => Ok(crate::ids::queue_arn(self.queue_name(id))),
            ("AWS::SQS::Queue", "QueueName") => Ok(self.queue_name(id).to_owned()),
            ("AWS::SQS::Queue", "QueueUrl") => Ok(crate::ids::queue_url(&self.sqs_endpoint, self.queue_name(id))),
            _ => Err(format!("the local stack has no value for GetAtt {path}")),
        }
    }
}
