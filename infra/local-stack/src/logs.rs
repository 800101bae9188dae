//! What the functions print (JSON logs, metric lines, panics) and what the gateway says, kept in a
//! bounded in-memory book and, when asked, echoed to the terminal with the instance's name in front.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

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
}

const KEEP_LINES: usize = 20_000;

impl LogBook {
    pub fn new(echo: bool) -> Self {
        LogBook {
            lines: Mutex::new(VecDeque::new()),
            echo,
        }
    }

    pub fn push(&self, source: &str, instance: &str, text: &str) {
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
