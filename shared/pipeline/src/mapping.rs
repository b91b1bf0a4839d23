//! The mapping configuration: one TOML file a finance or integration person edits without
//! recompiling. Loaded once at start-up; a file that does not parse or does not validate stops
//! the start with a message naming the line.
//!
//! See `docs/mapping.md` and `config/mapping.example.toml`.

use ledgerbridge_erp::CompanyTimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a successful payment is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    /// A cash receipt on account (no order or invoice).
    CashReceipt,
    /// A sales order plus a cash receipt applied to it.
    #[default]
    SalesOrderAndReceipt,
    /// An AR invoice plus a cash receipt applied to it.
    InvoiceAndReceipt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Prefix of customer codes ledgerbridge creates (`S` + part of the Stripe customer id).
    #[serde(default = "default_prefix")]
    pub customer_code_prefix: String,
    /// Longest customer code the ERP accepts.
    #[serde(default = "default_code_len")]
    pub customer_code_max_len: usize,
    /// Name used when a Stripe customer has none.
    #[serde(default = "default_name")]
    pub customer_name: String,
    /// Currency for customers that have none in Stripe.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// ERP customer code for payments that have no Stripe customer (guest checkout). Without
    /// it such payments are parked with that reason.
    #[serde(default)]
    pub guest_customer: Option<String>,
    /// Minutes after an event during which a refund that Stripe's refund list does not show yet
    /// (`charge.refunded` with an empty or short list) is retried; after that the event is
    /// parked with the reason. Keep it well below the events queue's redelivery window (the
    /// time of its last redelivery: 4 × 180 s in the template, 9 × 120 s with the local runner's
    /// defaults), so the park, not the dead-letter queue, ends it.
    #[serde(default = "default_refund_wait_minutes")]
    pub refund_wait_minutes: u32,
    /// Minutes the posting stage lets a document wait for a document it depends on (a receipt
    /// for its sales order or invoice, a credit memo for the refunded payment's receipt) that
    /// is not in the ERP yet; after that the message is parked, naming what is missing and what
    /// to do. Counted from the first time it waited. Keep it below the commands queue's
    /// redelivery window (4 × 360 s in the template), so the park, not the dead-letter queue,
    /// ends the wait.
    #[serde(default = "default_parent_wait_minutes")]
    pub parent_wait_minutes: u32,
    /// The company's time zone (IANA name, e.g. `America/Chicago`): every booking date is the
    /// company-local day of the Stripe time. Default `UTC`; an unknown name stops the start.
    #[serde(default)]
    pub time_zone: CompanyTimeZone,
}

fn default_refund_wait_minutes() -> u32 {
    5
}

fn default_parent_wait_minutes() -> u32 {
    15
}

fn default_true() -> bool {
    true
}

fn default_prefix() -> String {
    "S".into()
}
fn default_code_len() -> usize {
    10
}
fn default_name() -> String {
    "Stripe customer".into()
}
fn default_currency() -> String {
    "usd".into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            customer_code_prefix: default_prefix(),
            customer_code_max_len: default_code_len(),
            customer_name: default_name(),
            currency: default_currency(),
            guest_customer: None,
            refund_wait_minutes: default_refund_wait_minutes(),
            parent_wait_minutes: default_parent_wait_minutes(),
            time_zone: CompanyTimeZone::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payments {
    #[serde(default)]
    pub mode: PaymentMode,
    /// ERP item / part for the order or invoice line of a payment without product detail.
    pub item: String,
    /// Revenue account for that line, where the ERP takes one on the line.
    #[serde(default)]
    pub revenue_account: Option<String>,
    /// ERP payment type when the payment method type is not in `methods`.
    pub default_method: String,
    /// Stripe payment method type (`card`, `us_bank_account`, `sepa_debit`, …) → ERP payment type.
    #[serde(default)]
    pub methods: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refunds {
    /// ERP item / part on credit memo lines.
    pub item: String,
    /// ERP reason code when the Stripe refund reason is not in `reasons`.
    pub default_reason: String,
    /// Stripe refund reason (`duplicate`, `fraudulent`, `requested_by_customer`, …) → ERP reason code.
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
    /// A credit memo waits until the refunded payment's cash receipt is in the ERP (the
    /// receipt ledgerbridge books for the PaymentIntent, else the charge), as other documents
    /// wait for their parents; after `defaults.parent_wait_minutes` it is parked naming the
    /// payment. Default `true`. `false` books a refund's credit memo whether or not its
    /// payment was booked (for refunds of payments taken before ledgerbridge, which it never
    /// books).
    #[serde(default = "default_true")]
    pub wait_for_payment: bool,
}

/// A condition on an event (all given fields must match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Event type, e.g. `charge.succeeded`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Lower-case currency code.
    #[serde(default)]
    pub currency: Option<String>,
    /// `metadata.<key>` of the Stripe object must equal `equals`.
    #[serde(default)]
    pub metadata_key: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
}

/// What a matching rule changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Then {
    #[serde(default)]
    pub payment_mode: Option<PaymentMode>,
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Do not book the event at all (recorded as skipped).
    #[serde(default)]
    pub skip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub when: When,
    pub then: Then,
}

/// The whole mapping configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub defaults: Defaults,
    pub payments: Payments,
    pub refunds: Refunds,
    /// Stripe product or price id → ERP item / part number.
    #[serde(default)]
    pub products: BTreeMap<String, String>,
    /// Rules applied in order; later rules override earlier ones.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Stripe invoices and credit notes; without this section they are not booked (and
    /// invoice payments are booked as ordinary payments).
    #[serde(default)]
    pub invoices: Option<Invoices>,
    /// Dispute journals; without this section disputes are not booked.
    #[serde(default)]
    pub disputes: Option<Disputes>,
    /// Subscription state; without this section subscription events are not evaluated.
    #[serde(default)]
    pub subscriptions: Option<Subscriptions>,
}

/// `[invoices]`: how a Stripe invoice becomes an ERP invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoices {
    /// ERP item / part for invoice lines whose price and product are not in `[products]`.
    pub item: String,
    /// Revenue account on product lines, where the ERP takes one on the line.
    #[serde(default)]
    pub revenue_account: Option<String>,
    /// ERP item / part of the sales-tax line (one line per Stripe tax rate).
    pub tax_item: String,
    /// Sales-tax liability account on the tax line.
    #[serde(default)]
    pub tax_account: Option<String>,
    /// ERP reason code of the credit memo that reverses a voided invoice.
    #[serde(default = "default_void_reason")]
    pub void_reason: String,
    /// ERP reason code of credit memos for Stripe credit notes.
    #[serde(default = "default_credit_note_reason")]
    pub credit_note_reason: String,
    /// ERP item / part for writing off an invoice Stripe marks uncollectible. Without it,
    /// `invoice.marked_uncollectible` is not booked (the receivable stays open in the ERP).
    #[serde(default)]
    pub uncollectible_item: Option<String>,
    /// ERP reason code of that write-off credit memo.
    #[serde(default = "default_uncollectible_reason")]
    pub uncollectible_reason: String,
}

fn default_uncollectible_reason() -> String {
    "BADDEBT".into()
}

fn default_void_reason() -> String {
    "VOID".into()
}
fn default_credit_note_reason() -> String {
    "CREDIT".into()
}

/// `[disputes]`: the accounts of dispute journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disputes {
    /// The Stripe balance (clearing) account the disputed money leaves and returns to.
    pub clearing_account: String,
    /// Where the disputed amount goes while it is withdrawn (chargeback receivable or loss).
    pub dispute_loss_account: String,
    /// Expense account of Stripe's dispute fee. Leave it out when the payout reconciliation
    /// books the fees of dispute balance transactions; the journal then carries the amount only.
    #[serde(default)]
    pub dispute_fee_account: Option<String>,
}

/// `[subscriptions]`: what ledgerbridge keeps of a Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriptions {
    /// Stripe subscription status → the value for the ERP (unlisted statuses pass unchanged).
    #[serde(default)]
    pub statuses: BTreeMap<String, String>,
    /// Subscription metadata keys to carry along (e.g. a contract number).
    #[serde(default)]
    pub metadata_keys: Vec<String>,
    /// The values written to the ERP customer's user-defined fields (logical names; the ERP
    /// settings' `customer_fields` say which field holds each). `metadata.<key>` writes a key
    /// of `metadata_keys`. An empty list writes nothing.
    #[serde(default = "default_subscription_fields")]
    pub fields: Vec<String>,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            statuses: BTreeMap::new(),
            metadata_keys: Vec::new(),
            fields: default_subscription_fields(),
        }
    }
}

/// Status, plan, seats and period end.
pub fn default_subscription_fields() -> Vec<String> {
    use ledgerbridge_erp::fields::*;
    [
        SUBSCRIPTION_STATUS,
        SUBSCRIPTION_PLAN,
        SUBSCRIPTION_QUANTITY,
        SUBSCRIPTION_PERIOD_END,
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping configuration: {}", .problems.join("; "))]
pub struct MappingError {
    pub problems: Vec<String>,
}

/// The settings that apply to one event after the rules have run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub payment_mode: PaymentMode,
    pub item: String,
    pub payment_method: Option<String>,
    pub skip: bool,
    pub matched_rules: Vec<String>,
}

impl Mapping {
    /// Parse and validate. Errors name the line (TOML syntax and unknown keys come with line
    /// and column from the parser; semantic errors name the key and the line it is on).
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let mapping: Mapping = toml::from_str(text).map_err(|e| MappingError {
            problems: vec![e.to_string().trim().replace('\n', " ")],
        })?;
        mapping.validate(text)?;
        Ok(mapping)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Self::from_toml(&text)
    }

    fn validate(&self, text: &str) -> Result<(), MappingError> {
        let mut problems = Vec::new();
        let mut need = |key: &str, value: &str| {
            if value.trim().is_empty() {
                problems.push(format!("{key} must not be empty ({})", line_of(text, key)));
            }
        };
        need("payments.item", &self.payments.item);
        need("payments.default_method", &self.payments.default_method);
        need("refunds.item", &self.refunds.item);
        need("refunds.default_reason", &self.refunds.default_reason);
        need(
            "defaults.customer_code_prefix",
            &self.defaults.customer_code_prefix,
        );
        if let Some(inv) = &self.invoices {
            need("invoices.item", &inv.item);
            need("invoices.tax_item", &inv.tax_item);
            need("invoices.void_reason", &inv.void_reason);
            need("invoices.credit_note_reason", &inv.credit_note_reason);
            need("invoices.uncollectible_reason", &inv.uncollectible_reason);
            if let Some(u) = &inv.uncollectible_item {
                need("invoices.uncollectible_item", u);
            }
        }
        if let Some(d) = &self.disputes {
            need("disputes.clearing_account", &d.clearing_account);
            need("disputes.dispute_loss_account", &d.dispute_loss_account);
            if let Some(f) = &d.dispute_fee_account {
                need("disputes.dispute_fee_account", f);
            }
        }
        if let Some(sub) = &self.subscriptions {
            for f in &sub.fields {
                let known = ledgerbridge_erp::fields::is_logical_field(f);
                let meta_ok = f
                    .strip_prefix("metadata.")
                    .is_none_or(|k| sub.metadata_keys.iter().any(|m| m == k));
                if !known || !meta_ok {
                    problems.push(format!(
                        "subscriptions.fields: {f:?} is not one of {} or metadata.<a key of metadata_keys> ({})",
                        ledgerbridge_erp::fields::LOGICAL_FIELDS.join(", "),
                        line_of(text, "fields")
                    ));
                }
            }
        }
        for (k, v) in self
            .payments
            .methods
            .iter()
            .chain(&self.refunds.reasons)
            .chain(&self.products)
        {
            if v.trim().is_empty() {
                problems.push(format!("mapping for {k:?} is empty ({})", line_of(text, k)));
            }
        }
        if ledgerbridge_core::Currency::parse(&self.defaults.currency).is_err() {
            problems.push(format!(
                "defaults.currency {:?} is not a currency code ({})",
                self.defaults.currency,
                line_of(text, "currency")
            ));
        }
        if self.defaults.customer_code_max_len < self.defaults.customer_code_prefix.len() + 6 {
            problems.push(format!(
                "defaults.customer_code_max_len must leave at least 6 characters after the prefix ({})",
                line_of(text, "customer_code_max_len")
            ));
        }
        for rule in &self.rules {
            if rule.when.metadata_key.is_some() != rule.when.equals.is_some() {
                problems.push(format!(
                    "rule {:?}: metadata_key and equals go together ({})",
                    rule.name,
                    line_of(text, &rule.name)
                ));
            }
            if let Some(c) = &rule.when.currency {
                if ledgerbridge_core::Currency::parse(c).is_err() {
                    problems.push(format!(
                        "rule {:?}: currency {c:?} is not a currency code ({})",
                        rule.name,
                        line_of(text, &rule.name)
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError { problems })
        }
    }

    /// Every GL account the mapping names, with its key (`payments.revenue_account`, …).
    pub fn gl_accounts(&self) -> Vec<ledgerbridge_erp::check::Named> {
        use ledgerbridge_erp::check::Named;
        let mut out = Vec::new();
        let mut add = |origin: &str, v: Option<&String>| {
            if let Some(v) = v {
                out.push(Named::new(origin, v));
            }
        };
        add(
            "payments.revenue_account",
            self.payments.revenue_account.as_ref(),
        );
        if let Some(i) = &self.invoices {
            add("invoices.revenue_account", i.revenue_account.as_ref());
            add("invoices.tax_account", i.tax_account.as_ref());
        }
        if let Some(d) = &self.disputes {
            add("disputes.clearing_account", Some(&d.clearing_account));
            add(
                "disputes.dispute_loss_account",
                Some(&d.dispute_loss_account),
            );
            add(
                "disputes.dispute_fee_account",
                d.dispute_fee_account.as_ref(),
            );
        }
        out
    }

    /// GL accounts that would be booked as placeholders: empty or TODO-like values, and (unless
    /// `allow_example`) accounts all left at the example's numbers. See
    /// [`ledgerbridge_erp::check::account_problems`].
    pub fn account_problems(&self, allow_example: bool) -> Vec<String> {
        let example = Mapping::from_toml(EXAMPLE)
            .map(|m| m.gl_accounts())
            .unwrap_or_default();
        ledgerbridge_erp::check::account_problems(&self.gl_accounts(), &example, allow_example)
    }

    /// Apply the rules to an event.
    pub fn effective(
        &self,
        event_type: &str,
        currency: Option<&str>,
        metadata: &serde_json::Value,
    ) -> Effective {
        let mut eff = Effective {
            payment_mode: self.payments.mode,
            item: self.payments.item.clone(),
            payment_method: None,
            skip: false,
            matched_rules: Vec::new(),
        };
        for rule in &self.rules {
            let w = &rule.when;
            let matches = w.event_type.as_deref().is_none_or(|t| t == event_type)
                && w.currency
                    .as_deref()
                    .is_none_or(|c| Some(c.to_ascii_lowercase().as_str()) == currency)
                && match (&w.metadata_key, &w.equals) {
                    (Some(k), Some(v)) => {
                        metadata.get(k).and_then(|x| x.as_str()) == Some(v.as_str())
                    }
                    _ => true,
                };
            if !matches {
                continue;
            }
            eff.matched_rules.push(rule.name.clone());
            if let Some(m) = rule.then.payment_mode {
                eff.payment_mode = m;
            }
            if let Some(i) = &rule.then.item {
                eff.item = i.clone();
            }
            if let Some(p) = &rule.then.payment_method {
                eff.payment_method = Some(p.clone());
            }
            eff.skip |= rule.then.skip;
        }
        eff
    }

    pub fn payment_method(&self, stripe_type: Option<&str>) -> String {
        stripe_type
            .and_then(|t| self.payments.methods.get(t))
            .cloned()
            .unwrap_or_else(|| self.payments.default_method.clone())
    }

    pub fn refund_reason(&self, stripe_reason: Option<&str>) -> String {
        stripe_reason
            .and_then(|r| self.refunds.reasons.get(r))
            .cloned()
            .unwrap_or_else(|| self.refunds.default_reason.clone())
    }

    /// The ERP customer code ledgerbridge gives a Stripe customer it creates: the prefix plus
    /// the end of the Stripe id (upper case), cut to the ERP's limit. Deterministic, so every
    /// retry computes the same code.
    pub fn customer_code(&self, stripe_customer: &str) -> String {
        let tail: String = stripe_customer
            .trim_start_matches("cus_")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let room = self
            .defaults
            .customer_code_max_len
            .saturating_sub(self.defaults.customer_code_prefix.len());
        let start = tail.len().saturating_sub(room);
        format!(
            "{}{}",
            self.defaults.customer_code_prefix,
            tail.get(start..).unwrap_or(&tail).to_ascii_uppercase()
        )
    }
}

fn line_of(text: &str, key: &str) -> String {
    text.lines()
        .position(|l| l.contains(key.rsplit('.').next().unwrap_or(key)))
        .map(|i| format!("line {}", i + 1))
        .unwrap_or_else(|| "not in the file; a default applies".into())
}

/// The example configuration shipped with the project (also used by tests and the local runner).
pub const EXAMPLE: &str = include_str!("../../../config/mapping.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_loads() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        assert_eq!(m.payment_method(Some("card")), "CC");
        assert_eq!(m.payment_method(Some("klarna")), m.payments.default_method);
        assert_eq!(m.refund_reason(Some("requested_by_customer")), "CUSTREQ");
        assert_eq!(m.customer_code("cus_NHQM1cjewvnnbv"), "SCJEWVNNBV");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let bad = EXAMPLE.replacen("[refunds]", "[refunds\n", 1);
        let err = Mapping::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
        let unknown = format!("{EXAMPLE}\n[payments.extra]\nx = 1\n");
        assert!(Mapping::from_toml(&unknown).is_err());
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let bad = EXAMPLE.replacen("item = \"STRIPE-SALE\"", "item = \"\"", 1);
        let err = Mapping::from_toml(&bad).unwrap_err().to_string();
        assert!(
            err.contains("payments.item must not be empty (line "),
            "{err}"
        );
    }

    #[test]
    fn billing_sections_are_optional_and_validated() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        assert!(m.invoices.is_some() && m.disputes.is_some() && m.subscriptions.is_some());
        let cut = EXAMPLE.find("[invoices]").unwrap();
        let without = Mapping::from_toml(&EXAMPLE[..cut]).unwrap();
        assert!(without.invoices.is_none() && without.disputes.is_none());
        let bad = EXAMPLE.replacen("clearing_account = \"1150\"", "clearing_account = \" \"", 1);
        let err = Mapping::from_toml(&bad).unwrap_err().to_string();
        assert!(
            err.contains("disputes.clearing_account must not be empty (line "),
            "{err}"
        );
        let unknown = EXAMPLE.replacen("[disputes]", "[disputes]\nfee = \"1\"", 1);
        assert!(Mapping::from_toml(&unknown).is_err());
    }

    #[test]
    fn rules_override_in_order() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let meta = serde_json::json!({"channel": "wholesale"});
        let eff = m.effective("charge.succeeded", Some("usd"), &meta);
        assert_eq!(eff.payment_mode, PaymentMode::InvoiceAndReceipt);
        assert_eq!(
            eff.matched_rules,
            vec!["wholesale orders are invoiced".to_owned()]
        );
        let eff = m.effective(
            "charge.succeeded",
            Some("usd"),
            &serde_json::json!({"channel": "web"}),
        );
        assert_eq!(eff.payment_mode, m.payments.mode);
    }

    #[test]
    fn subscription_fields_are_validated() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        assert_eq!(m.subscriptions.unwrap().fields.len(), 4);
        let with = |fields: &str| {
            EXAMPLE.replacen(
                "fields = [\"subscription_status\", \"subscription_plan\", \"subscription_quantity\", \"subscription_period_end\"]",
                &format!("fields = {fields}"),
                1,
            )
        };
        assert!(
            Mapping::from_toml(&with("[\"metadata.erp_contract\", \"subscription_id\"]")).is_ok()
        );
        for bad in ["[\"plan\"]", "[\"metadata.not_listed\"]"] {
            let err = Mapping::from_toml(&with(bad)).unwrap_err().to_string();
            assert!(
                err.contains("subscriptions.fields") && err.contains("(line "),
                "{err}"
            );
        }
        // left out: the default four
        let without = EXAMPLE.replacen("fields = [", "# fields = [", 1);
        let m = Mapping::from_toml(&without).unwrap();
        assert_eq!(
            m.subscriptions.unwrap().fields,
            default_subscription_fields()
        );
    }
}
