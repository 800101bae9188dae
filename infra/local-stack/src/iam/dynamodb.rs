//! What a DynamoDB request asks IAM for: one action on one resource (a table or an index) with the
//! partition key values it touches (`dynamodb:LeadingKeys`), or several for the operations AWS checks
//! piece by piece. A transaction is checked item by item with each item's own action (a transaction's
//! Put needs `dynamodb:PutItem` on its table), a batch with the batch's action on each of its tables.
//!
//! It sits on every DynamoDB call of the functions, so it reads only the fields it needs out of the
//! body, borrowing them where it can: the rest (items' other attributes, expressions) is skipped
//! unparsed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use parley_template::TableDefinition;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::ids::{ACCOUNT_ID, REGION};

/// The partition key attribute of each table and index: the name `dynamodb:LeadingKeys` reads.
#[derive(Debug, Clone, Default)]
pub struct KeyNames {
    tables: HashMap<String, TableKeys>,
}

#[derive(Debug, Clone)]
struct TableKeys {
    hash_key: String,
    /// Index name -> its partition key attribute.
    indexes: HashMap<String, String>,
}

fn hash_key_of(schema: &[parley_template::KeyElement]) -> String {
    schema
        .iter()
        .find(|k| k.key_type == "HASH")
        .map(|k| k.attribute.clone())
        .unwrap_or_default()
}

impl KeyNames {
    /// The template's table, named locally by its logical id.
    pub fn new(tables: &[TableDefinition]) -> Self {
        KeyNames {
            tables: tables
                .iter()
                .map(|t| {
                    let keys = TableKeys {
                        hash_key: hash_key_of(&t.key_schema),
                        indexes: t
                            .global_indexes
                            .iter()
                            .map(|i| (i.name.clone(), hash_key_of(&i.key_schema)))
                            .collect(),
                    };
                    (t.logical_id.clone(), keys)
                })
                .collect(),
        }
    }

    fn hash_key(&self, table: &str, index: Option<&str>) -> Option<&str> {
        let keys = self.tables.get(table)?;
        match index {
            Some(index) => keys.indexes.get(index).map(String::as_str),
            None => Some(keys.hash_key.as_str()),
        }
    }
}

/// One check: an action on a resource, with the partition key values of the items it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access<'a> {
    pub action: Cow<'static, str>,
    pub resource: String,
    pub leading_keys: Vec<Cow<'a, str>>,
}

pub fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}")
}

/// A string of the body, borrowed unless it has escapes.
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The scalar forms an attribute value can take as a key; others (maps, lists, sets) are skipped.
#[derive(Debug, Deserialize)]
struct Scalar<'a> {
    #[serde(rename = "S", borrow)]
    s: Option<Text<'a>>,
    #[serde(rename = "N", borrow)]
    n: Option<Text<'a>>,
    #[serde(rename = "B", borrow)]
    b: Option<Text<'a>>,
}

impl<'a> Scalar<'a> {
    fn text(&self) -> Option<&Cow<'a, str>> {
        self.s.as_ref().or(self.n.as_ref()).or(self.b.as_ref()).map(|t| &t.0)
    }
}

/// An attribute map (`Key`, `Item`, `ExpressionAttributeValues`), as name/value pairs.
#[derive(Debug, Default)]
struct Attributes<'a>(Vec<(Text<'a>, Scalar<'a>)>);

impl<'a> Attributes<'a> {
    fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.0
            .iter()
            .find(|(n, _)| n.0 == name)
            .and_then(|(_, v)| v.text().cloned())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Attributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    pairs.push((name, map.next_value::<Scalar<'de>>()?));
                }
                Ok(Attributes(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// `ExpressionAttributeNames`.
#[derive(Debug, Default)]
struct Names<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Names<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute names")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some(placeholder) = map.next_key::<Text<'de>>()? {
                    pairs.push((placeholder, map.next_value::<Text<'de>>()?));
                }
                Ok(Names(pairs))
            }
        }
        deserializer.deserialize_map(NamesVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input<'a> {
    #[serde(borrow)]
    table_name: Option<Text<'a>>,
    #[serde(borrow)]
    index_name: Option<Text<'a>>,
    #[serde(borrow)]
    key: Option<Attributes<'a>>,
    #[serde(borrow)]
    item: Option<Attributes<'a>>,
    #[serde(borrow)]
    key_condition_expression: Option<Text<'a>>,
    #[serde(borrow)]
    expression_attribute_names: Option<Names<'a>>,
    #[serde(borrow)]
    expression_attribute_values: Option<Attributes<'a>>,
    #[serde(borrow)]
    transact_items: Option<Vec<TransactItem<'a>>>,
    #[serde(borrow)]
    request_items: Option<RequestItems<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactItem<'a> {
    #[serde(borrow)]
    put: Option<Target<'a>>,
    #[serde(borrow)]
    update: Option<Target<'a>>,
    #[serde(borrow)]
    delete: Option<Target<'a>>,
    #[serde(borrow)]
    condition_check: Option<Target<'a>>,
    #[serde(borrow)]
    get: Option<Target<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Target<'a> {
    #[serde(borrow)]
    table_name: Text<'a>,
    #[serde(borrow)]
    key: Option<Attributes<'a>>,
    #[serde(borrow)]
    item: Option<Attributes<'a>>,
}

/// `RequestItems` of BatchGetItem (table -> `{Keys: [...]}`) or BatchWriteItem (table -> a list of
/// `PutRequest`/`DeleteRequest`): per table, the keys or items it names.
#[derive(Debug, Default)]
struct RequestItems<'a>(Vec<(Text<'a>, Vec<Attributes<'a>>)>);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteRequest<'a> {
    #[serde(borrow)]
    put_request: Option<ItemOf<'a>>,
    #[serde(borrow)]
    delete_request: Option<KeyOf<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemOf<'a> {
    #[serde(borrow)]
    item: Attributes<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyOf<'a> {
    #[serde(borrow)]
    key: Attributes<'a>,
}

/// One table's entry of `RequestItems`, either shape.
struct BatchEntry<'a>(Vec<Attributes<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for BatchEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = BatchEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a BatchGetItem table entry or a BatchWriteItem request list")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut keys = Vec::new();
                while let Some(field) = map.next_key::<Text<'de>>()? {
                    if field.0 == "Keys" {
                        keys = map.next_value::<Vec<Attributes<'de>>>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(BatchEntry(keys))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut keys = Vec::new();
                while let Some(request) = seq.next_element::<WriteRequest<'de>>()? {
                    keys.extend(request.put_request.map(|p| p.item));
                    keys.extend(request.delete_request.map(|d| d.key));
                }
                Ok(BatchEntry(keys))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestItems<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TablesVisitor;
        impl<'de> Visitor<'de> for TablesVisitor {
            type Value = RequestItems<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of tables")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut tables = Vec::new();
                while let Some(table) = map.next_key::<Text<'de>>()? {
                    tables.push((table, map.next_value::<BatchEntry<'de>>()?.0));
                }
                Ok(RequestItems(tables))
            }
        }
        deserializer.deserialize_map(TablesVisitor)
    }
}

fn action(operation: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 10] = [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
    ];
    match KNOWN.iter().find(|a| &a["dynamodb:".len()..] == operation) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(format!("dynamodb:{operation}")),
    }
}

/// The partition key value a `KeyConditionExpression` fixes: the operand compared with `=` to the
/// partition key attribute (by name or `#placeholder`), looked up in `ExpressionAttributeValues`.
fn partition_value<'a>(
    expression: &str,
    names: Option<&Names<'a>>,
    values: Option<&Attributes<'a>>,
    hash_key: &str,
) -> Option<Cow<'a, str>> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | ':' | '.' | '-');
    let resolve_name = |operand: &str| -> bool {
        match operand.strip_prefix('#') {
            Some(_) => names
                .and_then(|n| n.0.iter().find(|(p, _)| p.0 == operand))
                .is_some_and(|(_, name)| name.0 == hash_key),
            None => operand == hash_key,
        }
    };
    let bytes = expression.as_bytes();
    for (at, _) in expression.match_indices('=') {
        // `<=` and `>=` compare the sort key; only `=` fixes the partition.
        if at > 0 && matches!(bytes[at - 1], b'<' | b'>') {
            continue;
        }
        let left = expression[..at].trim_end();
        let left = &left[left.rfind(|c: char| !token_char(c)).map_or(0, |i| i + 1)..];
        let right = expression[at + 1..].trim_start();
        let right = &right[..right.find(|c: char| !token_char(c)).unwrap_or(right.len())];
        let placeholder = if resolve_name(left) {
            right
        } else if resolve_name(right) {
            left
        } else {
            continue;
        };
        if placeholder.starts_with(':') {
            return values.and_then(|v| v.get(placeholder));
        }
    }
    None
}

/// What a request of `operation` (the `X-Amz-Target` suffix) with this body asks IAM for.
pub fn accesses<'a>(operation: &str, body: &'a [u8], keys: &KeyNames) -> Result<Vec<Access<'a>>, String> {
    let input: Input<'a> = if body.is_empty() {
        serde_json::from_slice(b"{}")
    } else {
        serde_json::from_slice(body)
    }
    .map_err(|e| e.to_string())?;
    if let Some(items) = input.transact_items {
        let mut accesses = Vec::with_capacity(items.len());
        for item in items {
            let (action, target) = match item {
                TransactItem { put: Some(t), .. } => ("dynamodb:PutItem", t),
                TransactItem { update: Some(t), .. } => ("dynamodb:UpdateItem", t),
                TransactItem { delete: Some(t), .. } => ("dynamodb:DeleteItem", t),
                TransactItem {
                    condition_check: Some(t),
                    ..
                } => ("dynamodb:ConditionCheckItem", t),
                TransactItem { get: Some(t), .. } => ("dynamodb:GetItem", t),
                _ => return Err("a transaction item names no operation".to_owned()),
            };
            let table = target.table_name.0;
            let hash_key = keys.hash_key(&table, None);
            let leading = hash_key
                .and_then(|h| target.key.as_ref().or(target.item.as_ref()).and_then(|a| a.get(h)))
                .into_iter()
                .collect();
            accesses.push(Access {
                action: Cow::Borrowed(action),
                resource: table_arn(&table),
                leading_keys: leading,
            });
        }
        return Ok(accesses);
    }
    if let Some(RequestItems(tables)) = input.request_items {
        return Ok(tables
            .into_iter()
            .map(|(table, items)| {
                let hash_key = keys.hash_key(&table.0, None);
                let mut leading: Vec<Cow<'a, str>> = Vec::with_capacity(items.len());
                for value in hash_key
                    .into_iter()
                    .flat_map(|h| items.iter().filter_map(move |a| a.get(h)))
                {
                    if !leading.contains(&value) {
                        leading.push(value);
                    }
                }
                Access {
                    action: action(operation),
                    resource: table_arn(&table.0),
                    leading_keys: leading,
                }
            })
            .collect());
    }
    let Some(table) = input.table_name.map(|t| t.0) else {
        return Ok(vec![Access {
            action: action(operation),
            resource: "*".to_owned(),
            leading_keys: Vec::new(),
        }]);
    };
    let index = input.index_name.as_ref().map(|i| i.0.as_ref());
    let resource = match index {
        Some(index) => format!("{}/index/{index}", table_arn(&table)),
        None => table_arn(&table),
    };
    let leading = match keys.hash_key(&table, index) {
        Some(hash_key) => match (&input.key, &input.item, &input.key_condition_expression) {
            (Some(key), _, _) => key.get(hash_key),
            (None, Some(item), _) => item.get(hash_key),
            (None, None, Some(expression)) => partition_value(
                &expression.0,
                input.expression_attribute_names.as_ref(),
                input.expression_attribute_values.as_ref(),
                hash_key,
            ),
            _ => None,
        },
        None => None,
    };
    Ok(vec![Access {
        action: action(operation),
        resource,
        leading_keys: leading.into_iter().collect(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_template::{IndexDefinition, KeyElement};

    fn keys() -> KeyNames {
        let element = |attribute: &str, key_type: &str| KeyElement {
            attribute: attribute.to_owned(),
            key_type: key_type.to_owned(),
        };
        KeyNames::new(&[TableDefinition {
            logical_id: "ChatTable".to_owned(),
            attributes: vec![],
            key_schema: vec![element("PK", "HASH"), element("SK", "RANGE")],
            global_indexes: vec![IndexDefinition {
                name: "GSI1".to_owned(),
                key_schema: vec![element("GSI1PK", "HASH"), element("GSI1SK", "RANGE")],
                projection_type: "ALL".to_owned(),
            }],
            ttl_attribute: None,
            stream_view_type: None,
        }])
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/ChatTable";

    fn one(operation: &str, body: &str) -> (String, String, Vec<String>) {
        let accesses = accesses(operation, body.as_bytes(), &keys()).unwrap();
        assert_eq!(accesses.len(), 1, "{accesses:?}");
        let a = &accesses[0];
        (
            a.action.to_string(),
            a.resource.clone(),
            a.leading_keys.iter().map(|k| k.to_string()).collect(),
        )
    }

    #[test]
    fn single_item_operations_name_their_partition() {
        assert_eq!(
            one(
                "GetItem",
                r##"{"TableName":"ChatTable","Key":{"SK":{"S":"PROFILE"},"PK":{"S":"USER#1"}}}"##
            ),
            ("dynamodb:GetItem".into(), TABLE.into(), vec!["USER#1".into()])
        );
        assert_eq!(
            one(
                "PutItem",
                r##"{"Item":{"body":{"M":{"PK":{"S":"nested"}}},"PK":{"S":"CONV#\"x\""},"n":{"N":"1"}},"TableName":"ChatTable","ConditionExpression":"attribute_not_exists(PK)"}"##
            ),
            ("dynamodb:PutItem".into(), TABLE.into(), vec!["CONV#\"x\"".into()])
        );
        assert_eq!(
            one("Scan", r##"{"TableName":"ChatTable"}"##),
            ("dynamodb:Scan".into(), TABLE.into(), vec![])
        );
    }

    #[test]
    fn queries_name_the_partition_of_their_key_condition() {
        assert_eq!(
            one(
                "Query",
                r##"{"TableName":"ChatTable","IndexName":"GSI1","KeyConditionExpression":"#pk = :pk AND begins_with(GSI1SK, :p)",
                   "ExpressionAttributeNames":{"#pk":"GSI1PK"},"ExpressionAttributeValues":{":p":{"S":"CONV#"},":pk":{"S":"USER#7"}}}"##
            ),
            (
                "dynamodb:Query".into(),
                format!("{TABLE}/index/GSI1"),
                vec!["USER#7".into()]
            )
        );
        assert_eq!(
            one(
                "Query",
                r##"{"TableName":"ChatTable","KeyConditionExpression":"SK BETWEEN :a AND :b AND (:v=PK)",
                   "ExpressionAttributeValues":{":a":{"S":"A"},":b":{"S":"B"},":v":{"S":"SRCH#c"}}}"##
            )
            .2,
            vec!["SRCH#c".to_owned()]
        );
        // The sort key's `<=` is not the partition.
        assert_eq!(
            one(
                "Query",
                r##"{"TableName":"ChatTable","KeyConditionExpression":"SK <= :s AND PK=:p","ExpressionAttributeValues":{":s":{"S":"x"},":p":{"S":"USER#2"}}}"##
            )
            .2,
            vec!["USER#2".to_owned()]
        );
    }

    #[test]
    fn transaction_items_are_checked_each_with_its_own_action() {
        let body = r##"{"TransactItems":[
            {"ConditionCheck":{"TableName":"ChatTable","Key":{"PK":{"S":"USER#2"},"SK":{"S":"PROFILE"}},"ConditionExpression":"attribute_exists(PK)"}},
            {"Put":{"TableName":"ChatTable","Item":{"PK":{"S":"USER#1"},"SK":{"S":"BLOCK#2"}}}},
            {"Update":{"TableName":"ChatTable","Key":{"PK":{"S":"CONV#1"},"SK":{"S":"META"}},"UpdateExpression":"SET a = :a","ExpressionAttributeValues":{":a":{"L":[]}}}},
            {"Delete":{"TableName":"Other","Key":{"PK":{"S":"X"}}}}
        ],"ClientRequestToken":"t"}"##;
        let accesses = accesses("TransactWriteItems", body.as_bytes(), &keys()).unwrap();
        let seen: Vec<(&str, &str, Vec<&str>)> = accesses
            .iter()
            .map(|a| {
                (
                    a.action.as_ref(),
                    a.resource.as_str(),
                    a.leading_keys.iter().map(|k| k.as_ref()).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("dynamodb:ConditionCheckItem", TABLE, vec!["USER#2"]),
                ("dynamodb:PutItem", TABLE, vec!["USER#1"]),
                ("dynamodb:UpdateItem", TABLE, vec!["CONV#1"]),
                // A table the template does not define: checked, without leading keys.
                (
                    "dynamodb:DeleteItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/Other",
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn batches_check_their_action_on_each_table_with_every_key() {
        let get = r##"{"RequestItems":{"ChatTable":{"Keys":[{"PK":{"S":"USER#1"},"SK":{"S":"PROFILE"}},{"PK":{"S":"USER#2"},"SK":{"S":"PROFILE"}},{"PK":{"S":"USER#1"},"SK":{"S":"X"}}],"ProjectionExpression":"PK"}}}"##;
        assert_eq!(
            one("BatchGetItem", get),
            (
                "dynamodb:BatchGetItem".into(),
                TABLE.into(),
                vec!["USER#1".into(), "USER#2".into()]
            )
        );
        let write = r##"{"RequestItems":{"ChatTable":[{"PutRequest":{"Item":{"PK":{"S":"SRCH#1"},"w":{"SS":["a"]}}}},{"DeleteRequest":{"Key":{"PK":{"S":"SRCH#2"},"SK":{"S":"x"}}}}]}}"##;
        assert_eq!(
            one("BatchWriteItem", write),
            (
                "dynamodb:BatchWriteItem".into(),
                TABLE.into(),
                vec!["SRCH#1".into(), "SRCH#2".into()]
            )
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(accesses("GetItem", b"not json", &keys()).is_err());
        assert!(accesses("TransactWriteItems", br##"{"TransactItems":[{}]}"##, &keys()).is_err());
    }
}
