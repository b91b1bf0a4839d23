//! Epicor HTTP client: authentication headers, the customer-number lookup documents need, and
//! the [`ErpConnector`] implementation.

use super::config::{EpicorAuth, EpicorConfig, EpicorCredentials, EpicorPosting, GlAccountResolve};
use super::groups::{self, GroupKind};
use super::mapping::{self, EpicorRequest, Method, ERP};
use super::retry::{classify, reclassify, update_ext_failure};
use crate::commands::{CustomerUpsert, DocKind, ErpCommand, ErpDate, ExternalRef};
use crate::connector::{
    collect_changed, normalize_email, single_email_match, Credentials, ErpConnector,
    ErpCustomerMatch, ErpCustomerRecord,
};
use crate::error::ErpError;
use crate::fields::{self, FieldsOutcome};
use crate::http;
use base64::Engine;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many times a document is moved to a new group when its group was posted (and deleted)
/// by another worker meanwhile.
const GROUP_GONE_ATTEMPTS: u32 = 10;

/// The day group a document is added to: kind, `GroupID` and the row's `SysRowID`.
type UsedGroup = (GroupKind, String, Option<String>);

/// A short, growing pause with jitter before trying a vanished group again, so workers that
/// collide on one group do not collide again in step.
fn group_gone_pause(attempt: u32) -> Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
    Duration::from_millis(10 * u64::from(attempt) + jitter)
}

/// A day's group as [`EpicorConnector::ensure_group`] found it.
enum GroupLookup {
    Usable(Value),
    /// Creating it failed because another worker created it, and it was gone again when looked
    /// up (posted by that worker).
    Vanished(ErpError),
}

pub struct EpicorConnector {
    cfg: EpicorConfig,
    creds: Credentials<EpicorCredentials>,
    http: reqwest::Client,
    /// Breaker, `Retry-After` hold and request rate of every request this connector sends.
    gate: crate::gate::Gate,
    root: String,
    /// One lock per day group, held from finding the group to posting it, so this process never
    /// posts (and so deletes) a group another of its tasks is adding a document to.
    group_locks: std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for EpicorConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpicorConnector")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl EpicorConnector {
    pub fn new(cfg: EpicorConfig, creds: Credentials<EpicorCredentials>) -> Result<Self, ErpError> {
        fields::check_field_map(ERP, &cfg.customer_fields)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http::shared_tls(ERP)?)
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .map_err(|e| ErpError::Config {
                erp: ERP,
                message: e.to_string(),
            })?;
        let root = format!(
            "{}/api/v2/odata/{}/",
            cfg.base_url.trim_end_matches('/'),
            cfg.company
        );
        Ok(EpicorConnector {
            gate: crate::gate::Gate::new(ERP, cfg.gate.clone()),
            cfg,
            creds,
            http,
            root,
            group_locks: Default::default(),
        })
    }

    /// The lock of the day group `command` goes into, when groups are posted after each
    /// document (other settings never delete a group behind another task's back).
    async fn group_guard(&self, command: &ErpCommand) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.cfg.posting != EpicorPosting::AfterCreate {
            return None;
        }
        let (kind, date) = mapping::group_of(command)?;
        let id = groups::group_id(&self.cfg, kind, date);
        let lock = {
            let mut locks = self
                .group_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(id).or_default().clone()
        };
        Some(lock.lock_owned().await)
    }

    pub fn config(&self) -> &EpicorConfig {
        &self.cfg
    }

    pub(super) async fn call(&self, req: &EpicorRequest) -> Result<Value, ErpError> {
        let url = format!("{}{}", self.root, req.path);
        let build = |c: &EpicorCredentials| {
            let mut b = match req.method {
                Method::Get => self.http.get(&url),
                Method::Post => self.http.post(&url),
                Method::Patch => self.http.patch(&url),
            };
            b = b
                .header("x-api-key", c.api_key.expose().as_str())
                .header("Accept", "application/json");
            b = match &c.auth {
                EpicorAuth::Basic { user, password } => {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", password.expose()));
                    b.header("Authorization", format!("Basic {token}"))
                }
                EpicorAuth::Bearer(t) => {
                    b.header("Authorization", format!("Bearer {}", t.expose()))
                }
            };
            if !req.query.is_empty() {
                b = b.query(&req.query);
            }
            if let Some(body) = &req.body {
                b = b
                    .header(
                        "Content-Type",
                        "application/json;odata.metadata=minimal;IEEE754Compatible=true",
                    )
                    .body(body.to_string());
            }
            b
        };
        let (_, body) = http::send(ERP, &self.gate, &self.creds, build, classify)
            .await
            .map_err(|e| reclassify(e, &self.cfg.errors.transient_markers))?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ErpError::permanent(ERP, format!("unreadable answer: {e}")))?;
        // UpdateExt reports business errors with HTTP 200.
        match update_ext_failure(&v) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// The user the connector works as (groups locked by someone else are skipped).
    pub(super) fn user(&self) -> Option<String> {
        match &self.creds.current().auth {
            EpicorAuth::Basic { user, .. } => Some(user.clone()),
            EpicorAuth::Bearer(_) => None,
        }
    }

    /// Steps of [`ErpConnector::create`] from the group to the document's `Update`: the error
    /// carries the group the document was being added to.
    async fn create_in_group(
        &self,
        command: &ErpCommand,
        cust: Option<i64>,
    ) -> Result<(Option<UsedGroup>, Value), (ErpError, Option<UsedGroup>)> {
        let group = match mapping::group_of(command) {
            Some((kind, date)) => {
                let row = self.ensure_group(kind, date).await.map_err(|e| (e, None))?;
                let id = row
                    .get("GroupID")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let row_id = row
                    .get("SysRowID")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Some((kind, id, row_id))
            }
            None => None,
        };
        let new_answer = match group
            .as_ref()
            .and_then(|(_, id, _)| mapping::get_new_request(command, id))
        {
            Some(req) => Some(self.call(&req).await.map_err(|e| (e, group.clone()))?),
            None => None,
        };
        let accounts = self
            .internal_accounts(command)
            .await
            .map_err(|e| (e, None))?;
        let req = mapping::create_request(&self.cfg, command, cust, new_answer.as_ref(), &accounts)
            .map_err(|e| (e, None))?;
        let body = self.call(&req).await.map_err(|e| (e, group.clone()))?;
        Ok((group, body))
    }

    /// Whether the day's group `id` is still the row `used` (Epicor deletes a group once it is
    /// posted; one created again under the same id has another `SysRowID`).
    async fn group_still_there(
        &self,
        kind: GroupKind,
        id: &str,
        used: Option<&str>,
    ) -> Result<bool, ErpError> {
        let found = self.call(&groups::find_request(kind, id)).await?;
        Ok(match groups::row_of(kind, &found) {
            None => false,
            Some(row) => match (used, row.get("SysRowID").and_then(Value::as_str)) {
                (Some(used), Some(now)) => used == now,
                _ => true,
            },
        })
    }

    /// The day's group of `kind`: found by id, or created (`GetNew{Grp}` → `Update`). Epicor
    /// fills the fiscal year and period from the group's date.
    async fn ensure_group(&self, kind: GroupKind, date: &ErpDate) -> Result<Value, ErpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.find_or_create_group(kind, date).await? {
                GroupLookup::Usable(row) => return Ok(row),
                // Created by another worker and already posted (so deleted) by it: start over.
                GroupLookup::Vanished(e) if attempt >= GROUP_GONE_ATTEMPTS => return Err(e),
                GroupLookup::Vanished(_) => tokio::time::sleep(group_gone_pause(attempt)).await,
            }
        }
    }

    async fn find_or_create_group(
        &self,
        kind: GroupKind,
        date: &ErpDate,
    ) -> Result<GroupLookup, ErpError> {
        let id = groups::group_id(&self.cfg, kind, date);
        let user = self.user();
        let found = self.call(&groups::find_request(kind, &id)).await?;
        if let Some(row) = groups::row_of(kind, &found) {
            groups::check_usable(kind, &row, user.as_deref())?;
            return Ok(GroupLookup::Usable(row));
        }
        let new = self.call(&groups::get_new_request(kind)).await?;
        let req = groups::update_request(&self.cfg, kind, &id, date, &new)?;
        match self.call(&req).await {
            Ok(answer) => groups::row_of(kind, &answer)
                .map(GroupLookup::Usable)
                .ok_or_else(|| {
                    ErpError::permanent(
                        ERP,
                        format!("{} Update answer lacks the group", kind.table()),
                    )
                }),
            Err(e) => {
                // Created meanwhile by another worker: use it.
                let again = self.call(&groups::find_request(kind, &id)).await?;
                match groups::row_of(kind, &again) {
                    Some(row) => {
                        groups::check_usable(kind, &row, user.as_deref())?;
                        Ok(GroupLookup::Usable(row))
                    }
                    // "Already exists" but gone again: posted by that worker meanwhile.
                    None if e.kind() == crate::error::ErpErrorKind::Permanent => {
                        Ok(GroupLookup::Vanished(e))
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Post the group after a document was created in it (setting `posting = after_create`).
    /// A failed posting leaves the document entered in its group; it is logged, not returned,
    /// because the document itself exists.
    async fn post_group(&self, kind: GroupKind, group_id: &str) {
        let run = async {
            if kind == GroupKind::Journal {
                return self.call(&mapping::journal_posting_request(group_id)).await;
            }
            if kind == GroupKind::Invoice {
                let answer = self
                    .call(&mapping::invoice_posting_request(group_id))
                    .await?;
                return match mapping::posting_error_of(&answer) {
                    Some(m) => Err(ErpError::permanent(ERP, m)),
                    None => Ok(answer),
                };
            }
            let Some(first) = mapping::posting_parameters_request(kind) else {
                return Ok(Value::Null);
            };
            let params = self.call(&first).await?;
            let req = mapping::cash_posting_run_request(group_id, &params)?;
            self.call(&req).await
        };
        if let Err(e) = run.await {
            tracing::warn!(erp = ERP, group = group_id, error = %e, "posting the group failed; the document stays entered");
        }
    }

    /// The internal form of every GL account the command names (display → internal).
    async fn internal_accounts(
        &self,
        command: &ErpCommand,
    ) -> Result<BTreeMap<String, String>, ErpError> {
        let mut out = BTreeMap::new();
        for display in mapping::accounts_of(command) {
            if out.contains_key(display) {
                continue;
            }
            let internal = match self.cfg.gl_accounts.resolve {
                GlAccountResolve::Segments => mapping::internal_account(&self.cfg, display),
                GlAccountResolve::Lookup => {
                    let body = self
                        .call(&mapping::gl_account_lookup_request(display))
                        .await?;
                    mapping::gl_account_of(display, &body)?
                }
            };
            out.insert(display.to_owned(), internal);
        }
        Ok(out)
    }

    /// Apply a posted credit memo to its posted invoice through `ApplyCreditMemoSvc`, in the
    /// day's cash group (which group the service expects is not documented: an assumption).
    /// Like posting, a failure is logged and leaves the memo related to the invoice by
    /// `InvoiceRef` but unapplied.
    async fn apply_credit_memo(
        &self,
        memo: &ErpDocumentId,
        invoice: &ErpDocumentId,
        date: &ErpDate,
    ) {
        let run = async {
            let group = self.ensure_group(GroupKind::Cash, date).await?;
            let group_id = group
                .get("GroupID")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let new = self
                .call(&mapping::apply_memo_new_request(group_id))
                .await?;
            let head = self
                .call(&mapping::apply_memo_document_request(memo, &new)?)
                .await?;
            self.call(&mapping::apply_memo_update_request(
                &self.cfg, invoice, &head,
            )?)
            .await
        };
        if let Err(e) = run.await {
            tracing::warn!(erp = ERP, %memo, %invoice, error = %e, "applying the credit memo failed; it stays related to the invoice, unapplied");
        }
    }

    async fn cust_num(&self, customer_id: &str) -> Result<i64, ErpError> {
        let req = mapping::customer_lookup_request(customer_id)?;
        let body = self.call(&req).await?;
        mapping::cust_num_of(&body).ok_or_else(|| ErpError::Permanent {
            erp: ERP,
            status: None,
            message: format!("Customer {customer_id} not found."),
        })
    }
}

fn customer_of(cmd: &ErpCommand) -> Option<&str> {
    match cmd {
        ErpCommand::UpsertCustomer(_) | ErpCommand::PostJournalEntry(_) => None,
        ErpCommand::CreateSalesOrder(c) => Some(&c.customer_id),
        ErpCommand::CreateInvoice(c) => Some(&c.customer_id),
        ErpCommand::CreateCashReceipt(c) => Some(&c.customer_id),
        ErpCommand::CreateCreditMemo(c) => Some(&c.customer_id),
    }
}

impl ErpConnector for EpicorConnector {
    fn erp(&self) -> &'static str {
        ERP
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        let req = mapping::find_request(&self.cfg, reference)?;
        let body = self.call(&req).await?;
        mapping::first_of_collection(reference.kind(), &body)
    }

    async fn read_back(
        &self,
        reference: &ExternalRef,
        _erp_id: &ErpDocumentId,
    ) -> Result<crate::connector::DocumentReadBack, ErpError> {
        let req = mapping::read_back_request(&self.cfg, reference)?;
        let body = self.call(&req).await?;
        mapping::read_back_of(reference.kind(), &body)
    }

    async fn journal_state(
        &self,
        reference: &ExternalRef,
        _erp_id: &ErpDocumentId,
    ) -> Result<crate::connector::LedgerState, ErpError> {
        let req = mapping::read_back_request(&self.cfg, reference)?;
        let body = self.call(&req).await?;
        mapping::journal_state_of(&body)
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        command.validate()?;
        let cust = match customer_of(command) {
            Some(id) => Some(self.cust_num(id).await?),
            None => None,
        };
        // A day's group can be posted — and so deleted by Epicor — by another worker between our
        // finding it and adding this document to it (`posting = after_create` posts the group after
        // each document). Within this process the group's lock prevents that; another process
        // (a concurrent Lambda) can still do it. Epicor then refuses `GetNew…`/`Update` for the
        // vanished group and writes nothing, so the document is added to a fresh group instead;
        // only a refusal for which the group is confirmed gone is retried this way.
        let _guard = self.group_guard(command).await;
        let mut attempt = 0;
        let (group, body) = loop {
            attempt += 1;
            match self.create_in_group(command, cust).await {
                Ok(done) => break done,
                Err((e, Some((kind, group_id, row_id))))
                    if attempt < GROUP_GONE_ATTEMPTS
                        && e.kind() == crate::error::ErpErrorKind::Permanent
                        && !self
                            .group_still_there(kind, &group_id, row_id.as_deref())
                            .await? =>
                {
                    tracing::info!(
                        group = %group_id,
                        attempt,
                        "the day's group was posted by another worker; adding the document to a new group"
                    );
                    tokio::time::sleep(group_gone_pause(attempt)).await;
                }
                Err((e, _)) => return Err(e),
            }
        };
        let kind: DocKind = command.kind();
        let id = mapping::created_id(kind, &body)?;
        if let (EpicorPosting::AfterCreate, Some((kind, group_id, _))) = (self.cfg.posting, &group)
        {
            self.post_group(*kind, group_id).await;
            if let ErpCommand::CreateCreditMemo(m) = command {
                if let Some(invoice) = &m.applies_to_invoice {
                    self.apply_credit_memo(&id, invoice, &m.memo_date).await;
                }
            }
        }
        Ok(id)
    }

    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        let req = mapping::update_customer_request(&self.cfg, id, customer)?;
        self.call(&req).await.map(drop)
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        let email = normalize_email(ERP, email)?;
        let body = self.call(&mapping::customer_email_request(&email)).await?;
        single_email_match(ERP, mapping::customers_by_email_of(&body, &email)?)
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        let (fields, unmapped) = fields::resolve(ERP, &self.cfg.customer_fields, values)?;
        if !fields.is_empty() {
            // The code is what every link holds; the PATCH needs the internal CustNum.
            let id = ErpDocumentId::new(self.cust_num(customer_id).await?.to_string());
            self.call(&mapping::customer_fields_request(&self.cfg, &id, &fields)?)
                .await?;
        }
        Ok(FieldsOutcome::written(fields, unmapped))
    }
    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        collect_changed(since, limit, |offset, page| async move {
            let req = mapping::changed_customers_request(&self.cfg, since, offset, page)?;
            mapping::changed_customers_of(&self.cfg, &self.call(&req).await?)
        })
        .await
    }
}
