//! AWS adapters: SQS for queues, DynamoDB for idempotency and cross-references, Secrets Manager
//! for credentials.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey, MessageId, StripeObjectId};
use ledgerbridge_core::keys;
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, EventQueue, IdempotencyRecord, IdempotencyStore, QueueError, RecordStatus,
    StoreError, VersionStore, XrefRecord, XrefStore,
};
use ledgerbridge_core::secrets::{Secret, SecretError, SecretSource};
use std::collections::HashMap;

mod parameters;
#[cfg(feature = "reports")]
mod reports;
pub use parameters::{ParameterError, ParameterRef, ParameterStore, ParameterValue};
#[cfg(feature = "reports")]
pub use reports::DynamoReportStore;

/// Load the SDK configuration once. `endpoint` overrides every service endpoint (moto in tests);
/// in AWS it is left unset. The SDK also honours `AWS_ENDPOINT_URL` on its own.
pub async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Classify an SDK error's code the way Vector's AWS classifier does.
fn store_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError {
    use aws_sdk_dynamodb::error::SdkError;
    let code = err.code().unwrap_or_default().to_owned();
    match &err {
        SdkError::ServiceError(_)
            if code.contains("Throttl")
                || code == "ProvisionedThroughputExceededException"
                || code == "RequestLimitExceeded" =>
        {
            StoreError::Throttled(code)
        }
        _ => StoreError::Unavailable(format!("{code}: {}", err.message().unwrap_or("no message"))),
    }
}

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
    max_bytes: usize,
}

impl SqsQueue {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        max_bytes: usize,
    ) -> Self {
        let queue_url = queue_url.into();
        let fifo = queue_url.ends_with(".fifo");
        SqsQueue {
            client,
            queue_url,
            fifo,
            max_bytes,
        }
    }
}

impl EventQueue for SqsQueue {
    async fn send(&self, body: String, group: Option<&str>) -> Result<MessageId, QueueError> {
        if body.len() > self.max_bytes {
            return Err(QueueError::TooLarge {
                size: body.len(),
                limit: self.max_bytes,
            });
        }
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        if self.fifo {
            req = req.message_group_id(group.unwrap_or("default"));
        }
        match req.send().await {
            Ok(out) => Ok(MessageId::new(out.message_id().unwrap_or_default())),
            Err(err) => {
                use aws_sdk_sqs::error::ProvideErrorMetadata as _;
                let code = err.code().unwrap_or_default().to_owned();
                if matches!(
                    code.as_str(),
                    "InvalidMessageContents" | "InvalidParameterValue"
                ) {
                    Err(QueueError::Rejected(code))
                } else {
                    Err(QueueError::Unavailable(format!(
                        "{code}: {}",
                        err.message().unwrap_or("send failed")
                    )))
                }
            }
        }
    }

    fn max_message_bytes(&self) -> usize {
        self.max_bytes
    }
}

/// DynamoDB table with a string partition key `pk`. Idempotency records live under
/// `idem#<key>`, cross-references under `xref#<stripe id>#<doc kind>`; one table or two.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    /// The `PutItem` of one cross-reference item, every attribute it stores; callers add the
    /// condition.
    fn xref_put(
        &self,
        record: &XrefRecord,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                Self::xref_pk(record.stripe_id.as_str(), &record.doc_kind),
            )
            .item("stripe_id", AttributeValue::S(record.stripe_id.to_string()))
            .item("doc_kind", AttributeValue::S(record.doc_kind.clone()))
            .item("erp", AttributeValue::S(record.erp.clone()))
            .item("erp_id", AttributeValue::S(record.erp_id.to_string()))
            .item(
                "created_at_ms",
                AttributeValue::N(record.created_at_ms.to_string()),
            );
        if let Some(m) = record.posted {
            put = put
                .item("amount_minor", AttributeValue::N(m.minor.to_string()))
                .item("currency", AttributeValue::S(m.currency.code().to_owned()));
        }
        if let Some(c) = &record.command {
            put = put.item("command", AttributeValue::S(c.clone()));
        }
        put
    }

    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    fn idem_pk(key: &IdempotencyKey) -> AttributeValue {
        AttributeValue::S(keys::table::idempotency(key))
    }

    fn xref_pk(stripe_id: &str, doc_kind: &str) -> AttributeValue {
        AttributeValue::S(keys::table::xref(stripe_id, doc_kind))
    }
}

/// The attribute a claim marks its record with (see `claim`).
const CLAIM_TOKEN: &str = "claim_token";

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn record_from(
    key: &IdempotencyKey,
    item: &HashMap<String, AttributeValue>,
) -> Result<IdempotencyRecord, StoreError> {
    let corrupt = |m: &str| StoreError::Corrupt {
        key: key.to_string(),
        message: m.to_owned(),
    };
    let status = s(item, "status")
        .and_then(|v| RecordStatus::parse(&v))
        .ok_or_else(|| corrupt("status"))?;
    Ok(IdempotencyRecord {
        key: key.clone(),
        status,
        payload_hash: s(item, "validation").unwrap_or_default(),
        expiration: n(item, "expiration").ok_or_else(|| corrupt("expiration"))?,
        in_progress_expiration: n(item, "in_progress_expiration").unwrap_or(0),
        result: s(item, "data"),
    })
}

impl IdempotencyStore for DynamoStore {
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let now_secs = req.now_ms.div_euclid(1000);
        // This claim's own mark. The SDK resends the same request after a throttling error or a
        // 500, which DynamoDB may answer after it stored the item: the resend then fails its
        // condition on our own record, and the mark tells it apart from another worker's.
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ours = |item: &HashMap<String, AttributeValue>| {
            s(item, CLAIM_TOKEN).as_deref() == Some(token.as_str())
                && s(item, "status").as_deref() == Some(RecordStatus::InProgress.as_str())
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::idem_pk(&req.key))
            .item("status", AttributeValue::S(RecordStatus::InProgress.as_str().into()))
            .item("validation", AttributeValue::S(req.payload_hash.clone()))
            .item(CLAIM_TOKEN, AttributeValue::S(token.clone()))
            .item("expiration", AttributeValue::N(req.expiration.to_string()))
            .item(
                "in_progress_expiration",
                AttributeValue::N(req.now_ms.saturating_add(req.lease_ms).to_string()),
            )
            // Powertools' three-clause condition (plus: a parked record may be claimed again, which
            // is how a replay works); `expiration` is compared here, never left to TTL.
            .condition_expression(
                "attribute_not_exists(pk) OR #exp < :now OR #st = :parked OR (#st = :inprogress AND attribute_exists(#ipe) AND #ipe < :now_ms)",
            )
            .expression_attribute_names("#exp", "expiration")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ipe", "in_progress_expiration")
            .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(req.now_ms.to_string()))
            .expression_attribute_values(":inprogress", AttributeValue::S("INPROGRESS".into()))
            .expression_attribute_values(":parked", AttributeValue::S("PARKED".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(err) => {
                if let Some(service) = err.as_service_error() {
                    if service.is_conditional_check_failed_exception() {
                        if let aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) = service {
                            if let Some(item) = e.item() {
                                if ours(item) {
                                    return Ok(Claim::Acquired);
                                }
                                return record_from(&req.key, item).map(Claim::Existing);
                            }
                        }
                        // Older emulators may not return the item: read it.
                        let item = self
                            .client
                            .get_item()
                            .table_name(&self.table)
                            .key("pk", Self::idem_pk(&req.key))
                            .consistent_read(true)
                            .send()
                            .await
                            .map_err(store_error)?;
                        return match item.item() {
                            Some(item) if ours(item) => Ok(Claim::Acquired),
                            Some(item) => record_from(&req.key, item).map(Claim::Existing),
                            None => Err(StoreError::Unavailable(
                                "claim lost a race with a delete".into(),
                            )),
                        };
                    }
                }
                Err(store_error(err))
            }
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        status: RecordStatus,
        result: Option<String>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::idem_pk(key))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", AttributeValue::S(status.as_str().into()));
        req = match result {
            Some(r) => req
                .update_expression("SET #st = :st, #d = :d")
                .expression_attribute_names("#d", "data")
                .expression_attribute_values(":d", AttributeValue::S(r)),
            None => req.update_expression("SET #st = :st"),
        };
        req.send().await.map(|_| ()).map_err(store_error)
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Self::idem_pk(key))
            .condition_expression("#st = :inprogress")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":inprogress", AttributeValue::S("INPROGRESS".into()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::idem_pk(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(|item| record_from(key, item)).transpose()
    }
}

impl XrefStore for DynamoStore {
    async fn get_xref(
        &self,
        stripe_id: &StripeObjectId,
        doc_kind: &str,
    ) -> Result<Option<XrefRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::xref_pk(stripe_id.as_str(), doc_kind))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out
            .item()
            .and_then(|item| xref_from(stripe_id, doc_kind, item)))
    }

    async fn put_xref_if_absent(
        &self,
        record: &XrefRecord,
    ) -> Result<Option<XrefRecord>, StoreError> {
        let out = self
            .xref_put(record)
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(None),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                self.get_xref(&record.stripe_id, &record.doc_kind).await
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

impl VersionStore for DynamoStore {
    async fn advance_version(&self, key: &str, version: i64) -> Result<bool, StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(keys::table::version(key)))
            .item("version", AttributeValue::N(version.to_string()))
            .condition_expression("attribute_not_exists(pk) OR #v <= :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn current_version(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::table::version(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out
            .item()
            .and_then(|i| i.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()))
    }
}

fn xref_from(
    stripe_id: &StripeObjectId,
    doc_kind: &str,
    item: &HashMap<String, AttributeValue>,
) -> Option<XrefRecord> {
    Some(XrefRecord {
        stripe_id: stripe_id.clone(),
        doc_kind: doc_kind.to_owned(),
        erp: s(item, "erp")?,
        erp_id: ErpDocumentId::new(s(item, "erp_id")?),
        created_at_ms: n(item, "created_at_ms").unwrap_or(0),
        posted: posted_from(item),
        command: s(item, "command"),
    })
}

/// The posted amount, when the record has one in a currency this build knows (older records
/// have none: the audit reports "amount not recorded").
fn posted_from(item: &HashMap<String, AttributeValue>) -> Option<ledgerbridge_core::Money> {
    let minor = n(item, "amount_minor")?;
    let currency = ledgerbridge_core::Currency::parse(&s(item, "currency")?).ok()?;
    Some(ledgerbridge_core::Money::new(minor, currency))
}

/// Cross-references by posting time: a scan of the table with a filter on the `xref#` key
/// prefix and `created_at_ms`, paged. A scan reads the whole table; at the sizes this
/// integration keeps (one record per document and intent) that is acceptable for a monthly
/// audit. A larger installation would add a GSI on a posting-day attribute instead.
impl ledgerbridge_core::ports::XrefAudit for DynamoStore {
    async fn list_xrefs_posted_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<XrefRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(pk, :p) AND created_at_ms >= :from AND created_at_ms < :to",
                )
                .expression_attribute_values(":p", AttributeValue::S("xref#".into()))
                .expression_attribute_values(":from", AttributeValue::N(from_ms.to_string()))
                .expression_attribute_values(":to", AttributeValue::N(to_ms.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                let (Some(id), Some(kind)) = (s(item, "stripe_id"), s(item, "doc_kind")) else {
                    continue;
                };
                if let Some(x) = xref_from(&StripeObjectId::new(id), &kind, item) {
                    out.push(x);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| {
            (a.created_at_ms, &a.stripe_id, &a.doc_kind).cmp(&(
                b.created_at_ms,
                &b.stripe_id,
                &b.doc_kind,
            ))
        });
        Ok(out)
    }

    async fn replace_xref(
        &self,
        record: &XrefRecord,
        expected_erp_id: &ErpDocumentId,
    ) -> Result<bool, StoreError> {
        let out = self
            .xref_put(record)
            .condition_expression("erp_id = :old")
            .expression_attribute_values(":old", AttributeValue::S(expected_erp_id.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Secrets Manager as a [`SecretSource`]; wrap it in [`ledgerbridge_core::secrets::CachedSecrets`].
#[derive(Clone, Debug)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        SecretsManagerSource { client }
    }
}

impl SecretSource for SecretsManagerSource {
    async fn fetch(&self, name: &str) -> Result<Secret<String>, SecretError> {
        use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => out
                .secret_string()
                .map(|s| Secret::new(s.to_owned()))
                .ok_or_else(|| SecretError::Empty {
                    name: name.to_owned(),
                }),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Err(SecretError::NotFound {
                name: name.to_owned(),
            }),
            Err(e) => Err(SecretError::Backend {
                name: name.to_owned(),
                message: e.code().unwrap_or("unknown").to_owned(),
            }),
        }
    }
}

/// Reverse customer links, kept in the state table as cross-reference items.
impl ledgerbridge_core::ports::ReverseLinkStore for DynamoStore {
    async fn get_reverse_link(
        &self,
        erp: &str,
        customer_code: &str,
    ) -> Result<Option<ledgerbridge_core::ports::ReverseLink>, StoreError> {
        use ledgerbridge_core::ports::{ReverseLink, XrefStore};
        let id = ReverseLink::xref_id(erp, customer_code);
        Ok(self
            .get_xref(&id, ReverseLink::XREF_KIND)
            .await?
            .map(|r| ReverseLink::from_xref(customer_code, r)))
    }

    async fn put_reverse_link_if_absent(
        &self,
        link: &ledgerbridge_core::ports::ReverseLink,
    ) -> Result<Option<ledgerbridge_core::ports::ReverseLink>, StoreError> {
        use ledgerbridge_core::ports::{ReverseLink, XrefStore};
        Ok(self
            .put_xref_if_absent(&link.to_xref())
            .await?
            .map(|r| ReverseLink::from_xref(&link.customer_code, r)))
    }
}
