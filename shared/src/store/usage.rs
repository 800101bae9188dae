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
