//! The `AWS::LanguageExtensions` transform's `Fn::ForEach`, expanded the way CloudFormation (and
//! `sam build`/`sam validate`) expand it, so the local tools see the same resources a deployment gets.
//!
//! A loop is a key `Fn::ForEach::<LoopName>` at the top of `Resources`, `Conditions` or `Outputs`,
//! whose value is `[Identifier, Collection, {OutputKey: OutputValue, ...}]`. For each item of the
//! collection, every `${Identifier}` in a string of the fragment (keys included) becomes the item,
//! every `&{Identifier}` the item without its non-alphanumeric characters, and a `Ref` to the
//! identifier the item itself. Fragments may hold loops of their own.

use serde_yaml_ng::{Mapping, Value};

use crate::TemplateError;

const FOR_EACH: &str = "Fn::ForEach::";
const TRANSFORM: &str = "AWS::LanguageExtensions";
/// The sections CloudFormation expands loops in (resource properties aside: see [`expand`]).
const SECTIONS: [&str; 3] = ["Resources", "Conditions", "Outputs"];
/// CloudFormation's limit on nested loops.
const MAX_DEPTH: usize = 5;

/// Expands every loop of the template in place. A loop without the transform declared, a loop
/// inside a resource's properties (which this reader does not expand), a collection that is not a
/// literal list or a `Ref` to a `CommaDelimitedList` parameter with a default, and two outputs with
/// one key are errors.
pub fn expand(root: &mut Value) -> Result<(), TemplateError> {
    let declared = transforms(root).iter().any(|t| t == TRANSFORM);
    let defaults = list_parameter_defaults(root);
    let Some(root) = root.as_mapping_mut() else {
        return Ok(());
    };
    for section in SECTIONS {
        let Some(Value::Mapping(entries)) = root.get(section) else {
            continue;
        };
        if !entries.keys().any(is_loop_key) {
            nested_loop(entries, section)?;
            continue;
        }
        if !declared {
            return Err(TemplateError::Shape(format!(
                "{section} uses Fn::ForEach, which needs `Transform: [{TRANSFORM}, ...]`"
            )));
        }
        let expanded = expand_mapping(entries, &defaults, 0)?;
        nested_loop(&expanded, section)?;
        root.insert(Value::from(section), Value::Mapping(expanded));
    }
    Ok(())
}

fn transforms(root: &Value) -> Vec<String> {
    match root.get("Transform") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Sequence(many)) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// `CommaDelimitedList` parameters' defaults, for collections given as `!Ref Parameter`.
fn list_parameter_defaults(root: &Value) -> Vec<(String, Vec<String>)> {
    let Some(Value::Mapping(parameters)) = root.get("Parameters") else {
        return Vec::new();
    };
    parameters
        .iter()
        .filter(|(_, spec)| spec.get("Type").and_then(Value::as_str) == Some("CommaDelimitedList"))
        .filter_map(|(name, spec)| {
            let default = spec.get("Default")?.as_str()?;
            Some((
                name.as_str()?.to_owned(),
                default.split(',').map(|item| item.trim().to_owned()).collect(),
            ))
        })
        .collect()
}

fn is_loop_key(key: &Value) -> bool {
    key.as_str().is_some_and(|k| k.starts_with(FOR_EACH))
}

fn expand_mapping(
    entries: &Mapping,
    defaults: &[(String, Vec<String>)],
    depth: usize,
) -> Result<Mapping, TemplateError> {
    if depth > MAX_DEPTH {
        return Err(TemplateError::Shape(format!(
            "Fn::ForEach loops are nested more than {MAX_DEPTH} deep"
        )));
    }
    let mut out = Mapping::new();
    for (key, value) in entries {
        if !is_loop_key(key) {
            insert_unique(&mut out, key.clone(), value.clone())?;
            continue;
        }
        let name = key.as_str().unwrap_or_default();
        let shape_error = |problem: &str| TemplateError::Shape(format!("{name}: {problem}"));
        let Some([identifier, collection, fragment]) = value.as_sequence().map(Vec::as_slice) else {
            return Err(shape_error(
                "must be [Identifier, Collection, {OutputKey: OutputValue}]",
            ));
        };
        let identifier = identifier
            .as_str()
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .ok_or_else(|| shape_error("its identifier must be an alphanumeric string"))?;
        let items = collection_items(collection, defaults).map_err(|problem| shape_error(&problem))?;
        let Value::Mapping(fragment) = fragment else {
            return Err(shape_error(
                "its fragment must be a mapping of OutputKey to OutputValue",
            ));
        };
        for item in &items {
            // A fragment that is only `{Ref: Identifier}` becomes the item itself: no outputs at all.
            let Value::Mapping(copy) = substitute(&Value::Mapping(fragment.clone()), identifier, item) else {
                return Err(shape_error("its fragment must map output keys to values, not be a Ref"));
            };
            for (output_key, output_value) in expand_mapping(&copy, defaults, depth + 1)? {
                insert_unique(&mut out, output_key, output_value)?;
            }
        }
    }
    Ok(out)
}

fn insert_unique(out: &mut Mapping, key: Value, value: Value) -> Result<(), TemplateError> {
    if out.contains_key(&key) {
        return Err(TemplateError::Shape(format!(
            "{} is defined twice (by a Fn::ForEach loop and another entry)",
            key.as_str().unwrap_or("a key")
        )));
    }
    out.insert(key, value);
    Ok(())
}

fn collection_items(collection: &Value, defaults: &[(String, Vec<String>)]) -> Result<Vec<String>, String> {
    let referenced = match collection {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Value::as_str),
        _ => None,
    };
    if let Some(parameter) = referenced {
        return defaults
            .iter()
            .find(|(name, _)| name == parameter)
            .map(|(_, items)| items.clone())
            .ok_or_else(|| {
                format!(
                    "its collection refers to {parameter}, which is not a CommaDelimitedList parameter with a Default"
                )
            });
    }
    let Value::Sequence(items) = collection else {
        return Err("its collection must be a list or a Ref to a CommaDelimitedList parameter".to_owned());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err("its collection's items must be strings".to_owned()),
        })
        .collect()
}

/// The fragment with the identifier replaced by `item`, as CloudFormation replaces it.
fn substitute(value: &Value, identifier: &str, item: &str) -> Value {
    match value {
        Value::String(text) => {
            let stripped: String = item.chars().filter(char::is_ascii_alphanumeric).collect();
            Value::String(
                text.replace(&format!("${{{identifier}}}"), item)
                    .replace(&format!("&{{{identifier}}}"), &stripped),
            )
        }
        Value::Tagged(tagged) if tagged.tag == "Ref" && tagged.value.as_str() == Some(identifier) => {
            Value::String(item.to_owned())
        }
        Value::Tagged(tagged) => {
            let mut copy = (**tagged).clone();
            copy.value = substitute(&tagged.value, identifier, item);
            Value::Tagged(Box::new(copy))
        }
        Value::Mapping(map) if map.len() == 1 && map.get("Ref").and_then(Value::as_str) == Some(identifier) => {
            Value::String(item.to_owned())
        }
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .map(|(k, v)| (substitute(k, identifier, item), substitute(v, identifier, item)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(items.iter().map(|v| substitute(v, identifier, item)).collect()),
        other => other.clone(),
    }
}

/// Loops inside an entry (a resource's properties) are not expanded here: refuse them by name
/// rather than hand the local stack a resource with a `Fn::ForEach::` property.
fn nested_loop(entries: &Mapping, section: &str) -> Result<(), TemplateError> {
    fn find(value: &Value) -> Option<String> {
        match value {
            Value::Mapping(map) => map.iter().find_map(|(k, v)| {
                if is_loop_key(k) {
                    k.as_str().map(str::to_owned)
                } else {
                    find(v)
                }
            }),
            Value::Sequence(items) => items.iter().find_map(find),
            Value::Tagged(tagged) => find(&tagged.value),
            _ => None,
        }
    }
    for (key, value) in entries {
        if let Some(found) = find(value) {
            return Err(TemplateError::Shape(format!(
                "{section}.{}: {found} inside an entry is not supported by this reader (only at the top of {})",
                key.as_str().unwrap_or("?"),
                SECTIONS.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(text: &str) -> Result<Value, TemplateError> {
        let mut root: Value = serde_yaml_ng::from_str(text).unwrap();
        expand(&mut root).map(|()| root)
    }

    const HEADER: &str = "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\n";

    #[test]
    fn a_loop_makes_one_entry_per_item_with_the_identifier_replaced() {
        let root = expanded(&format!(
            "{HEADER}Resources:\n  Table:\n    Type: AWS::DynamoDB::Table\n  Fn::ForEach::Logs:\n    - Fn\n    - [AFunction, BFunction]\n    - ${{Fn}}LogGroup:\n        Type: AWS::Logs::LogGroup\n        Properties:\n          LogGroupName: !Sub \"/aws/lambda/${{${{Fn}}}}\"\n          Tags: [{{Key: name, Value: !Ref Fn}}, {{Key: id, Value: {{Ref: Fn}}}}, {{Key: other, Value: !Ref Table}}]\n"
        ))
        .unwrap();
        let resources = root["Resources"].as_mapping().unwrap();
        let ids: Vec<&str> = resources.keys().filter_map(Value::as_str).collect();
        assert_eq!(ids, ["Table", "AFunctionLogGroup", "BFunctionLogGroup"]);
        let b = &root["Resources"]["BFunctionLogGroup"]["Properties"];
        let Value::Tagged(name) = &b["LogGroupName"] else {
            panic!("still a !Sub: {b:?}")
        };
        assert_eq!(name.value.as_str(), Some("/aws/lambda/${BFunction}"));
        assert_eq!(b["Tags"][0]["Value"].as_str(), Some("BFunction"));
        assert_eq!(b["Tags"][1]["Value"].as_str(), Some("BFunction"));
        let Value::Tagged(other) = &b["Tags"][2]["Value"] else {
            panic!("a Ref to something else stays a Ref")
        };
        assert_eq!(other.value.as_str(), Some("Table"));
    }

    #[test]
    fn ampersand_strips_non_alphanumerics_and_loops_nest() {
        let root = expanded(&format!(
            "{HEADER}Resources:\n  Fn::ForEach::Outer:\n    - Zone\n    - [eu-west-1, us-east-1]\n    - Fn::ForEach::Inner:\n        - Kind\n        - [Errors, Throttles]\n        - Alarm&{{Zone}}${{Kind}}:\n            Type: AWS::CloudWatch::Alarm\n            Properties: {{AlarmDescription: \"${{Kind}} in ${{Zone}}\"}}\n"
        ))
        .unwrap();
        let ids: Vec<&str> = root["Resources"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            ids,
            [
                "Alarmeuwest1Errors",
                "Alarmeuwest1Throttles",
                "Alarmuseast1Errors",
                "Alarmuseast1Throttles"
            ]
        );
        assert_eq!(
            root["Resources"]["Alarmuseast1Throttles"]["Properties"]["AlarmDescription"].as_str(),
            Some("Throttles in us-east-1")
        );
    }

    #[test]
    fn a_collection_may_be_a_list_parameters_default() {
        let root = expanded(&format!(
            "{HEADER}Parameters:\n  Names:\n    Type: CommaDelimitedList\n    Default: \"A, B\"\nResources:\n  Fn::ForEach::Topics:\n    - N\n    - !Ref Names\n    - \"Topic${{N}}\": {{Type: AWS::SNS::Topic}}\n"
        ))
        .unwrap();
        assert!(root["Resources"].get("TopicA").is_some() && root["Resources"].get("TopicB").is_some());
    }

    #[test]
    fn mistakes_are_named() {
        let loop_body =
            "Resources:\n  Fn::ForEach::Topics:\n    - N\n    - [A]\n    - \"Topic${N}\": {Type: AWS::SNS::Topic}\n";
        let error = expanded(loop_body).unwrap_err().to_string();
        assert!(error.contains("AWS::LanguageExtensions"), "{error}");

        let twice = format!("{HEADER}{loop_body}  TopicA: {{Type: AWS::SNS::Topic}}\n");
        let error = expanded(&twice).unwrap_err().to_string();
        assert!(error.contains("TopicA is defined twice"), "{error}");

        let only_a_ref = format!("{HEADER}Resources:\n  Fn::ForEach::Topics: [N, [A], {{Ref: N}}]\n");
        let error = expanded(&only_a_ref).unwrap_err().to_string();
        assert!(error.contains("not be a Ref"), "{error}");

        let shapeless = format!("{HEADER}Resources:\n  Fn::ForEach::Topics: [N, [A]]\n");
        let error = expanded(&shapeless).unwrap_err().to_string();
        assert!(error.contains("Fn::ForEach::Topics: must be"), "{error}");

        let unknown = format!("{HEADER}Resources:\n  Fn::ForEach::Topics: [N, !Ref Nothing, {{\"T${{N}}\": {{}}}}]\n");
        let error = expanded(&unknown).unwrap_err().to_string();
        assert!(error.contains("Nothing"), "{error}");

        let inside = format!(
            "{HEADER}Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      Fn::ForEach::Tags: [N, [A], {{\"Tag${{N}}\": x}}]\n"
        );
        let error = expanded(&inside).unwrap_err().to_string();
        assert!(
            error.contains("Resources.Queue: Fn::ForEach::Tags inside an entry"),
            "{error}"
        );
    }

    #[test]
    fn a_template_without_loops_is_unchanged() {
        let text = "Resources:\n  Queue: {Type: AWS::SQS::Queue}\n";
        assert_eq!(expanded(text).unwrap(), serde_yaml_ng::from_str::<Value>(text).unwrap());
    }
}
