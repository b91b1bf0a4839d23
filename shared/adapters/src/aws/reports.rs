//! Payout discrepancy reports in the DynamoDB state table.

use aws_sdk_dynamodb::types::AttributeValue;
use ledgerbridge_core::ports::StoreError;
use ledgerbridge_recon::report_store::{ReportRecord, ReportStore};

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

/// Reports in the DynamoDB state table (partition key `pk`): `status`, `payout`, `updated_at`
/// and `report` (the record as JSON) and `csv` attributes.
#[derive(Clone, Debug)]
pub struct DynamoReportStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoReportStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoReportStore {
            client,
            table: table.into(),
        }
    }
}

fn dynamo_error<E: std::fmt::Debug>(e: E) -> StoreError {
    // The SDK's Display is terse ("service error"); the Debug form carries the code.
    let text = format!("{e:?}");
    if text.contains("Throttl") || text.contains("ProvisionedThroughputExceeded") {
        StoreError::Throttled("DynamoDB throttled".into())
    } else {
        StoreError::Unavailable(text.chars().take(300).collect())
    }
}

impl ReportStore for DynamoReportStore {
    async fn put_report(&self, record: &ReportRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| corrupt(&record.key, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(record.key.clone()))
            .item("payout", AttributeValue::S(record.payout.clone()))
            .item(
                "status",
                AttributeValue::S(
                    serde_json::to_value(record.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ),
            )
            .item(
                "updated_at",
                AttributeValue::N(record.updated_at_ms.to_string()),
            )
            .item("report", AttributeValue::S(json))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    async fn get_report(&self, key: &str) -> Result<Option<ReportRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let json = item
            .get("report")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt(key, "no report attribute"))?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| corrupt(key, e))
    }
}
