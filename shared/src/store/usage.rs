//! Counts the DynamoDB calls and capacity units a store has used: what the benchmarks report, and what
//! the metrics will publish.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::ConsumedCapacity;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub calls: u64,
    pub read_units: f64,
    pub write_units: f64,
    /// Time spent waiting on DynamoDB, summed over every attempt.
    pub latency: std::time::Duration,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            calls: self.calls - earlier.calls,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
            latency: self.latency.saturating_sub(earlier.latency),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct UsageMeter(Arc<Mutex<Usage>>);

impl UsageMeter {
    pub fn snapshot(&self) -> Usage {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record_latency(&self, attempt: std::time::Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).latency += attempt;
    }

    /// Records one `TransactWriteItems`: the larger of what DynamoDB reported and what AWS bills for
    /// `writes` ([`transaction_write_units`]; DynamoDB Local under-reports transactions).
    pub(crate) fn record_transaction<'a>(
        &self,
        consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        writes: &[aws_sdk_dynamodb::types::TransactWriteItem],
    ) {
        let reported: f64 = consumed
            .into_iter()
            .map(|c| c.write_capacity_units().or(c.capacity_units()).unwrap_or(0.0))
            .sum();
        let mut usage = self.0.lock().unwrap_or_else(|p| p.into_inner());
        usage.calls += 1;
        usage.write_units += reported.max(transaction_write_units(writes));
    }

    /// Records one call. DynamoDB Local reports only a total for some operations: `writes` says which
    /// side that total belongs to.
    pub(crate) fn record<'a>(&self, writes: bool, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let mut usage = self.0.lock().unwrap_or_else(|p| p.into_inner());
        usage.calls += 1;
        for c in consumed {
            let (read, write) = (
                c.read_capacity_units().unwrap_or(0.0),
                c.write_capacity_units().unwrap_or(0.0),
            );
            if read == 0.0 && write == 0.0 {
                let total = c.capacity_units().unwrap_or(0.0);
                if writes {
                    usage.write_units += total;
                } else {
                    usage.read_units += total;
                }
            } else {
                usage.read_units += read;
                usage.write_units += write;
            }
        }
    }
}

/// An item's size as DynamoDB bills it: attribute names and values in bytes (strings as UTF-8, numbers
/// about one byte per two digits plus one, 3 bytes of overhead per map or list and 1 per element).
pub fn item_size(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let number = |n: &str| n.trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1;
    match value {
        A::S(s) => s.len(),
        A::N(n) => number(n),
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(set) => set.iter().map(String::len).sum(),
        A::Ns(set) => set.iter().map(|n| number(n)).sum(),
        A::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        A::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        A::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// What a `TransactWriteItems` of `writes` costs on AWS: every item twice (prepare and commit), each
/// rounded up to 1 KB on its own; a put by its size, an update, delete or condition check at least
/// 1 KB (their items' sizes are not known here). DynamoDB Local reports one rounded total for the whole
/// transaction instead (two 100-byte puts: 2 units, where AWS bills 4), so the meter takes the larger.
pub fn transaction_write_units(writes: &[aws_sdk_dynamodb::types::TransactWriteItem]) -> f64 {
    writes
        .iter()
        .map(|write| {
            let kb = write.put().map_or(1, |put| item_size(put.item()).div_ceil(1024).max(1));
            2.0 * kb as f64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{AttributeValue as A, Put, TransactWriteItem};

    #[test]
    fn a_transaction_bills_each_item_twice_by_its_own_size() {
        let item = |pad: usize| {
            std::collections::HashMap::from([
                ("PK".to_owned(), A::S("CONV#1".to_owned())),
                ("pad".to_owned(), A::S("x".repeat(pad))),
                ("seq".to_owned(), A::N("12345".to_owned())),
            ])
        };
        assert_eq!(item_size(&item(10)), 2 + 6 + 3 + 10 + 3 + 4);
        let put = |pad| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("t")
                        .set_item(Some(item(pad)))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        assert_eq!(transaction_write_units(&[put(100), put(100)]), 4.0);
        assert_eq!(transaction_write_units(&[put(1500)]), 4.0);
    }
}
