//! What the functions print (JSON logs, metric lines, panics) and what the gateway says, kept in a
//! bounded in-memory book and, when asked, echoed to the terminal with the instance's name in front.
//! The functions' lines also go through the metric store, which keeps the datapoints of the Embedded
//! Metric Format documents among them, as CloudWatch Logs does: metrics outlive the lines they came in.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::ids;
use crate::metrics::MetricStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The function's binary name, or `gateway`.
    pub source: String,
    /// `auth-login#2`, or `gateway`.
    pub instance: String,
    pub text: String,
}

pub struct LogBook {
    lines: Mutex<VecDeque<LogLine>>,
    echo: bool,
    metrics: Arc<MetricStore>,
}

const KEEP_LINES: usize = 20_000;

impl LogBook {
    pub fn new(echo: bool) -> Self {
        LogBook {
            lines: Mutex::new(VecDeque::new()),
            echo,
            metrics: Arc::default(),
        }
    }

    pub fn metrics(&self) -> &Arc<MetricStore> {
        &self.metrics
    }

    pub fn push(&self, source: &str, instance: &str, text: &str) {
        self.append(source, instance, text);
        if source != "gateway" {
            let recorded = self
                .metrics
                .ingest_line(text, ids::epoch_millis(SystemTime::now()) as i64);
            if recorded.first_series_refusal {
                self.gateway(&format!(
                    "metrics: the store holds its limit of {} series; datapoints of new series are dropped \
                     until older ones age out (is a dimension high-cardinality, such as a request id?)",
                    crate::metrics::MAX_SERIES
                ));
            }
        }
    }

    fn append(&self, source: &str, instance: &str, text: &str) {
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{instance:>26} | {text}");
        }
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == KEEP_LINES {
            lines.pop_front();
        }
        lines.push_back(LogLine {
            source: source.to_owned(),
            instance: instance.to_owned(),
            text: text.to_owned(),
        });
    }

    /// The gateway's own remarks.
    pub fn gateway(&self, text: &str) {
        self.push("gateway", "gateway", text);
    }

    pub fn lines(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
