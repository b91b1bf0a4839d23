//! The ERP events queue: `erp_customer_changed.v1`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

impl Address {
    /// The address an ERP customer record holds; `None` when it has no address field at all.
    pub fn from_erp(a: &ledgerbridge_erp::Address) -> Option<Self> {
        let address = Address {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        };
        (address != Address::default()).then_some(address)
    }
}

/// A customer changed in the ERP. Absent fields are left as they are in Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErpCustomerChangedV1 {
    /// `epicor`, `sage500` or `sagepro`.
    pub erp: String,
    /// The ERP's customer code (Epicor `CustID`, Sage 500 `CustID`, Sage Pro customer number).
    pub customer_code: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub address: Option<Address>,
    /// When the change was made in the ERP (Unix seconds); orders changes to one customer.
    pub changed_at: i64,
}

/// Messages on the ERP events queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ErpMessage {
    #[serde(rename = "erp_customer_changed.v1")]
    CustomerChangedV1(ErpCustomerChangedV1),
}

impl ErpMessage {
    pub fn decode(text: &str) -> Result<Self, String> {
        let msg: ErpMessage =
            serde_json::from_str(text).map_err(|e| format!("unreadable ERP event: {e}"))?;
        match &msg {
            ErpMessage::CustomerChangedV1(c) => validate(c)?,
        }
        Ok(msg)
    }

    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The message group on a FIFO queue: one ERP customer's changes stay in order.
    pub fn group(&self) -> String {
        match self {
            ErpMessage::CustomerChangedV1(c) => format!("erp_{}_{}", c.erp, c.customer_code),
        }
    }
}

/// Checks an ERP event before anything is queued or sent to Stripe.
pub fn validate(c: &ErpCustomerChangedV1) -> Result<(), String> {
    if c.erp.parse::<ledgerbridge_erp::ErpKind>().is_err() {
        return Err(format!("unknown ERP {:?}", c.erp));
    }
    let code = c.customer_code.trim();
    if code.is_empty() || code.len() > 64 || code != c.customer_code {
        return Err("customer_code must be 1–64 characters without surrounding spaces".into());
    }
    if code.chars().any(char::is_control) {
        return Err("customer_code contains control characters".into());
    }
    if c.changed_at <= 0 {
        return Err("changed_at must be a positive Unix time".into());
    }
    if c.name.is_none() && c.email.is_none() && c.address.is_none() {
        return Err("no customer field to change".into());
    }
    check_text("name", &c.name, 256)?;
    check_text("email", &c.email, 512)?;
    if let Some(e) = &c.email {
        if !e.is_empty() && !e.contains('@') {
            return Err("email is not an e-mail address".into());
        }
    }
    if let Some(a) = &c.address {
        for (what, v) in [
            ("address.line1", &a.line1),
            ("address.line2", &a.line2),
            ("address.city", &a.city),
            ("address.state", &a.state),
            ("address.postal_code", &a.postal_code),
            ("address.country", &a.country),
        ] {
            check_text(what, v, 200)?;
        }
    }
    Ok(())
}

fn check_text(what: &str, v: &Option<String>, max: usize) -> Result<(), String> {
    match v {
        Some(s) if s.chars().count() > max => Err(format!("{what} longer than {max} characters")),
        Some(s) if s.chars().any(char::is_control) => {
            Err(format!("{what} contains control characters"))
        }
        _ => Ok(()),
    }
}
