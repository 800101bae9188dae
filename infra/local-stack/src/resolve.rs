//! Resolves the intrinsic functions of a function's environment to local values: `!Ref` to a parameter
//! or a resource's local name (a queue's local URL), `!GetAtt X.Arn` to a local ARN, `!Sub` by both;
//! and Secrets Manager dynamic references (`{{resolve:secretsmanager:Secret:SecretString:key}}`) to
//! the local values of the template's secrets.

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
    /// `<Secret logical id>.<JSON key>` -> its local value: the given ones, then the literal keys
    /// of each `AWS::SecretsManager::Secret`'s `GenerateSecretString.SecretStringTemplate`.
    secrets: BTreeMap<String, String>,
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
        let resource_types = template.resource_types();
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
            secrets: template_secret_keys(template),
        }
    }

    /// Local values of secrets' keys (`TokenSigningSecret.current` -> value), over the template's.
    pub fn with_secrets(mut self, secrets: &BTreeMap<String, String>) -> Self {
        self.secrets.extend(secrets.clone());
        self
    }

    /// The local values of one secret's keys (`current` -> value), by the secret's logical id.
    pub fn secret_keys(&self, secret: &str) -> BTreeMap<String, String> {
        let prefix = format!("{secret}.");
        self.secrets
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix(&prefix)?.to_owned(), value.clone())))
            .collect()
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
        let text = self.evaluate(value)?;
        self.dynamic_references(&text)
    }

    fn evaluate(&self, value: &Intrinsic) -> Result<String, String> {
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

    /// Replaces each `{{resolve:secretsmanager:<secret>:SecretString:<key>[:<stage>:<version>]}}`
    /// with the secret key's local value (stages and versions are one locally). Other services'
    /// references (`ssm`, `ssm-secure`) have no local store and are refused by name.
    fn dynamic_references(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{resolve:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "{{resolve:".len()..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unterminated dynamic reference in {text:?}"))?;
            let reference = &after[..end];
            let secret_key = reference
                .strip_prefix("secretsmanager:")
                .and_then(|r| r.split_once(":SecretString:"))
                .map(|(secret, key)| (secret, key.split(':').next().unwrap_or_default()));
            match secret_key {
                Some((secret, key)) if !key.is_empty() => {
                    // A Ref is the secret's ARN (its name, then `-` and 6 random characters).
                    let secret = crate::ids::secret_name(secret);
                    let secret = secret.rsplit(':').next().unwrap_or(secret);
                    let name = format!("{secret}.{key}");
                    let value = self.secrets.get(&name).ok_or_else(|| {
                        format!("the secret key {name} has no local value (pass --secret {name}=VALUE)")
                    })?;
                    out.push_str(value);
                }
                _ => {
                    let service = reference.split(':').next().unwrap_or_default();
                    return Err(format!(
                        "the local stack resolves secretsmanager SecretString keys only, not {{{{resolve:{service}:...}}}}"
                    ));
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
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
            // As deployed, a secret's Ref is its ARN, which the local Secrets Manager answers to.
            Some("AWS::SecretsManager::Secret") => Ok(crate::ids::secret_arn(name)),
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
            // Locally the bucket is named by its logical id, as `!Ref` gives it.
            ("AWS::S3::Bucket", "Arn") => Ok(format!("arn:aws:s3:::{id}")),
            ("AWS::SNS::Topic", "TopicArn") => Ok(format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{id}")),
            ("AWS::SQS::Queue", "Arn") => Ok(crate::ids::queue_arn(self.queue_name(id))),
            ("AWS::SQS::Queue", "QueueName") => Ok(self.queue_name(id).to_owned()),
            ("AWS::SQS::Queue", "QueueUrl") => Ok(crate::ids::queue_url(&self.sqs_endpoint, self.queue_name(id))),
            _ => Err(format!("the local stack has no value for GetAtt {path}")),
        }
    }
}

/// The literal keys of each secret's `GenerateSecretString.SecretStringTemplate` (the generated key
/// has no value until one is given).
fn template_secret_keys(template: &Template) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for id in template.resource_ids() {
        if template.resource_type(&id) != Some("AWS::SecretsManager::Secret") {
            continue;
        }
        let literal = template
            .resource(&id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("GenerateSecretString"))
            .and_then(|g| g.get("SecretStringTemplate"))
            .and_then(|t| t.as_str())
            .and_then(|t| serde_json::from_str::<BTreeMap<String, serde_json::Value>>(t).ok())
            .unwrap_or_default();
        for (key, value) in literal {
            if let Some(value) = value.as_str() {
                keys.insert(format!("{id}.{key}"), value.to_owned());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  TokenSigningSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"previous": "none"}'
        GenerateStringKey: current
"#;

    fn resolver() -> Resolver {
        let template = Template::parse(TEMPLATE).unwrap();
        Resolver::new(&template, BTreeMap::new()).with_secrets(&BTreeMap::from([(
            "TokenSigningSecret.current".to_owned(),
            "local-secret".to_owned(),
        )]))
    }

    fn sub(text: &str) -> Result<String, String> {
        resolver().resolve(&Intrinsic::Sub(text.to_owned()))
    }

    #[test]
    fn secrets_manager_references_become_the_local_values() {
        assert_eq!(
            sub("{{resolve:secretsmanager:${TokenSigningSecret}:SecretString:current}}").unwrap(),
            "local-secret"
        );
        // The template's literal keys are their own local values; stage and version parts are ignored.
        assert_eq!(
            sub("{{resolve:secretsmanager:TokenSigningSecret:SecretString:previous:AWSCURRENT:}}").unwrap(),
            "none"
        );
        assert_eq!(
            sub("${Stage}-{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:TokenSigningSecret:SecretString:current}}!").unwrap(),
            "dev-local-secret!"
        );
    }

    #[test]
    fn references_without_a_local_value_are_refused_by_name() {
        let error = sub("{{resolve:secretsmanager:Other:SecretString:current}}").unwrap_err();
        assert!(error.contains("--secret Other.current=VALUE"), "{error}");
        let error = sub("{{resolve:ssm-secure:/parley/token}}").unwrap_err();
        assert!(error.contains("not {{resolve:ssm-secure"), "{error}");
        let error = sub("{{resolve:secretsmanager:TokenSigningSecret:SecretString:current").unwrap_err();
        assert!(error.contains("unterminated"), "{error}");
    }
}
