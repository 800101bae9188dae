//! Reports (`domain::reports`): `CONV#<conversation>` / `REPORT#<id>`, newest last in the partition
//! (ids are ULIDs), and on GSI1 under `REPORTS` with the sort key `<status>#<id>`, so the platform's
//! admins list every conversation's reports by state, newest first, in one Query.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use serde::{Deserialize, Serialize};

use super::{item_with_key, key, keys, records, s, Store};
use crate::error::ApiError;
use crate::kinds::ReportStatus;

/// The most a listing answers.
pub const MAX_LISTED_REPORTS: usize = 100;

/// A report, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRecord {
    pub id: String,
    pub conversation_id: String,
    pub reporter_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Whom the report is about (named, or the reported message's sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: ReportStatus,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_at: Option<String>,
    #[serde(rename = "GSI1PK")]
    pub gsi1_pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1_sk: String,
}

/// A report's GSI1 sort key: its state, then its id (newest last).
pub fn report_index_key(status: ReportStatus, id: &str) -> String {
    format!("{status}#{id}")
}

impl Store {
    pub async fn put_report(&self, report: &ReportRecord) -> Result<(), ApiError> {
        let item = item_with_key(
            keys::conversation(&report.conversation_id),
            &keys::report(&report.id),
            report,
        )?;
        self.put_if(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)"),
        )
        .await?;
        Ok(())
    }

    pub async fn get_report(&self, conversation_id: &str, id: &str) -> Result<Option<ReportRecord>, ApiError> {
        self.get_record(keys::conversation(conversation_id), keys::report(id))
            .await
    }

    /// A conversation's reports, newest first (at most [`MAX_LISTED_REPORTS`] after `keep`).
    pub async fn reports_of(
        &self,
        conversation_id: &str,
        keep: impl Fn(&ReportRecord) -> bool,
    ) -> Result<Vec<ReportRecord>, ApiError> {
        let mut found = Vec::new();
        self.query_prefix(
            keys::conversation(conversation_id),
            keys::REPORT_PREFIX,
            true,
            None,
            |items| {
                found.extend(records::<ReportRecord>(items)?.into_iter().filter(|r| keep(r)));
                Ok(found.len() < MAX_LISTED_REPORTS)
            },
        )
        .await?;
        found.truncate(MAX_LISTED_REPORTS);
        Ok(found)
    }

    /// Every conversation's reports (in one state, or all), newest first, at most
    /// [`MAX_LISTED_REPORTS`]. The index orders by state first, so all states are one Query each,
    /// merged.
    pub async fn all_reports(&self, status: Option<ReportStatus>) -> Result<Vec<ReportRecord>, ApiError> {
        let states: Vec<ReportStatus> = match status {
            Some(status) => vec![status],
            None => ReportStatus::ALL.to_vec(),
        };
        let mut found = Vec::new();
        for state in states {
            found.extend(self.reports_in(state).await?);
        }
        found.sort_by(|a, b| b.id.cmp(&a.id));
        found.truncate(MAX_LISTED_REPORTS);
        Ok(found)
    }

    async fn reports_in(&self, status: ReportStatus) -> Result<Vec<ReportRecord>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .expression_attribute_values(":pk", s(keys::REPORTS))
            .scan_index_forward(false)
            .limit(MAX_LISTED_REPORTS as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :status)")
            .expression_attribute_values(":status", s(format!("{status}#")))
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        records(out.items.unwrap_or_default())
    }

    /// Closes an open or reopened report; the report as it now is, or `None` when there is none.
    pub async fn set_report_status(
        &self,
        conversation_id: &str,
        id: &str,
        status: ReportStatus,
        handled_by: &str,
        handled_at: &str,
    ) -> Result<Option<ReportRecord>, ApiError> {
        self.conditional_update(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::conversation(conversation_id), keys::report(id))))
                .update_expression("SET #status = :status, GSI1SK = :index, handledBy = :by, handledAt = :at")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":index", s(report_index_key(status, id)))
                .expression_attribute_values(":by", s(handled_by))
                .expression_attribute_values(":at", s(handled_at)),
        )
        .await
    }
}
