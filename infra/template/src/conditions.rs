//! The template's `Conditions` and the `!If`s that use them, evaluated for a set of parameter values,
//! as CloudFormation does at deploy time. The local stack needs them for properties whose value depends
//! on a parameter (a function's `ReservedConcurrentExecutions`); only the condition functions the
//! template can use are here (`Equals`, `Not`, `And`, `Or`, `Condition`, with `Ref`s to parameters).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::{resource_error, Template, TemplateError};

impl Template {
    /// Whether the template's condition `name` holds with these parameter values (a parameter not
    /// given takes its `Default`).
    pub fn condition_holds(&self, name: &str, parameters: &BTreeMap<String, String>) -> Result<bool, TemplateError> {
        self.condition_holds_within(name, parameters, 0)
    }

    fn condition_holds_within(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<bool, TemplateError> {
        // Conditions may name one another; CloudFormation refuses cycles, and so does this.
        if depth > 32 {
            return Err(TemplateError::Shape(format!("condition {name} refers to itself")));
        }
        let expression = self
            .conditions
            .get(name)
            .ok_or_else(|| TemplateError::Shape(format!("there is no condition {name}")))?;
        self.evaluate(expression, parameters, depth + 1)
            .map_err(|problem| TemplateError::Shape(format!("condition {name}: {problem}")))
    }

    fn evaluate(
        &self,
        expression: &Value,
        parameters: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<bool, String> {
        let (function, argument) = function_call(expression).ok_or("is not a condition function")?;
        let arguments = || argument.as_sequence().ok_or(format!("{function} takes a list"));
        match function {
            "Equals" => match arguments()?.as_slice() {
                [left, right] => Ok(self.scalar(left, parameters)? == self.scalar(right, parameters)?),
                _ => Err("Equals takes two values".to_owned()),
            },
            "Not" => match arguments()?.as_slice() {
                [inner] => Ok(!self.evaluate(inner, parameters, depth)?),
                _ => Err("Not takes one condition".to_owned()),
            },
            "And" => {
                let mut all = true;
                for inner in arguments()? {
                    all &= self.evaluate(inner, parameters, depth)?;
                }
                Ok(all)
            }
            "Or" => {
                let mut any = false;
                for inner in arguments()? {
                    any |= self.evaluate(inner, parameters, depth)?;
                }
                Ok(any)
            }
            "Condition" => {
                let name = argument.as_str().ok_or("Condition takes a condition's name")?;
                self.condition_holds_within(name, parameters, depth)
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("{other} is not a condition function")),
        }
    }

    /// A literal, or a parameter's value (given, else its default).
    fn scalar(&self, value: &Value, parameters: &BTreeMap<String, String>) -> Result<String, String> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            _ => match function_call(value) {
                Some(("Ref", Value::String(name))) => parameters
                    .get(name)
                    .cloned()
                    .or_else(|| {
                        self.parameters()
                            .into_iter()
                            .find(|p| &p.name == name)
                            .and_then(|p| p.default)
                    })
                    .ok_or_else(|| format!("{name} is not a parameter with a value")),
                _ => Err("only literals and Refs to parameters can be compared".to_owned()),
            },
        }
    }

    /// A function's `ReservedConcurrentExecutions` with these parameter values: a number, or an
    /// `!If [Condition, number, !Ref AWS::NoValue]`; None when it has none (or the `!If` chose none).
    pub fn reserved_concurrency(
        &self,
        function_id: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<Option<u64>, TemplateError> {
        const PROPERTY: &str = "ReservedConcurrentExecutions";
        let value = self
            .resource(function_id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get(PROPERTY))
            .or_else(|| self.globals.get(PROPERTY));
        let Some(mut value) = value else {
            return Ok(None);
        };
        loop {
            if let Some(number) = value.as_u64() {
                return Ok(Some(number));
            }
            match function_call(value) {
                Some(("Ref", Value::String(name))) if name == "AWS::NoValue" => return Ok(None),
                Some(("If", Value::Sequence(branches))) if branches.len() == 3 => {
                    let condition = branches[0].as_str().ok_or_else(|| {
                        resource_error(function_id, format!("{PROPERTY}: !If needs a condition name"))
                    })?;
                    value = match self.condition_holds(condition, parameters)? {
                        true => &branches[1],
                        false => &branches[2],
                    };
                }
                _ => {
                    return Err(resource_error(
                        function_id,
                        format!("{PROPERTY} must be a whole number, or an !If choosing one or AWS::NoValue"),
                    ))
                }
            }
        }
    }
}

/// `!Name argument` or `{"Fn::Name": argument}` (and `{"Ref": name}`, `{"Condition": name}`).
fn function_call(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            // The tag's text lives in `tagged`; match it against the names this module knows.
            ["Equals", "Not", "And", "Or", "Condition", "Ref", "If"]
                .into_iter()
                .find(|known| *known == name)
                .map(|known| (known, &tagged.value))
        }
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (key, argument) = mapping.iter().next()?;
            let key = key.as_str()?;
            let name = key.strip_prefix("Fn::").unwrap_or(key);
            ["Equals", "Not", "And", "Or", "Condition", "Ref", "If"]
                .into_iter()
                .find(|known| *known == name && (key.starts_with("Fn::") || matches!(*known, "Ref" | "Condition")))
                .map(|known| (known, argument))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Budget:
    Type: String
    Default: "on"
  Mode:
    Type: String
    Default: a
Conditions:
  Reserve: !Equals [!Ref Budget, "on"]
  NotReserve: !Not [!Condition Reserve]
  Both:
    Fn::And:
      - Condition: Reserve
      - !Equals [!Ref Mode, a]
  Either: !Or [!Condition NotReserve, !Equals [b, !Ref Mode]]
  Loop: !Not [!Condition Loop]
Resources:
  Fixed:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 7
  Chosen:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: !If [Reserve, 20, !Ref AWS::NoValue]
  Unset:
    Type: AWS::Serverless::Function
    Properties: {}
  Broken:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: !Sub "${Budget}"
"#;

    fn with(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn conditions_follow_the_parameters_and_their_defaults() {
        let template = Template::parse(TEMPLATE).unwrap();
        let defaults = with(&[]);
        assert!(template.condition_holds("Reserve", &defaults).unwrap());
        assert!(!template.condition_holds("NotReserve", &defaults).unwrap());
        assert!(template.condition_holds("Both", &defaults).unwrap());
        assert!(!template.condition_holds("Either", &defaults).unwrap());
        let off = with(&[("Budget", "off"), ("Mode", "b")]);
        assert!(!template.condition_holds("Reserve", &off).unwrap());
        assert!(!template.condition_holds("Both", &off).unwrap());
        assert!(template.condition_holds("Either", &off).unwrap());
        assert!(template.condition_holds("Missing", &defaults).is_err());
        assert!(template.condition_holds("Loop", &defaults).is_err());
    }

    #[test]
    fn reserved_concurrency_is_a_number_an_if_or_nothing() {
        let template = Template::parse(TEMPLATE).unwrap();
        let defaults = with(&[]);
        assert_eq!(template.reserved_concurrency("Fixed", &defaults).unwrap(), Some(7));
        assert_eq!(template.reserved_concurrency("Chosen", &defaults).unwrap(), Some(20));
        assert_eq!(
            template
                .reserved_concurrency("Chosen", &with(&[("Budget", "off")]))
                .unwrap(),
            None
        );
        assert_eq!(template.reserved_concurrency("Unset", &defaults).unwrap(), None);
        assert!(template.reserved_concurrency("Broken", &defaults).is_err());
    }
}
