//! Operating Parley: what runs beside the chat, not for its users.

pub mod alarms;
pub mod metrics_report;
