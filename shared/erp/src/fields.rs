//! Customer fields ledgerbridge keeps on an ERP customer besides its master data — the state of
//! the customer's Stripe subscription — written to user-defined fields.
//!
//! Values are named logically (`subscription_status`, …) by the pipeline; each connector's
//! settings say which ERP field holds each one (`customer_fields`) and how long it may be.

use crate::error::ErpError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Logical names of the values the pipeline produces.
pub const SUBSCRIPTION_ID: &str = "subscription_id";
pub const SUBSCRIPTION_STATUS: &str = "subscription_status";
pub const SUBSCRIPTION_PLAN: &str = "subscription_plan";
pub const SUBSCRIPTION_QUANTITY: &str = "subscription_quantity";
pub const SUBSCRIPTION_PERIOD_START: &str = "subscription_period_start";
pub const SUBSCRIPTION_PERIOD_END: &str = "subscription_period_end";
pub const SUBSCRIPTION_CANCEL_AT_PERIOD_END: &str = "subscription_cancel_at_period_end";

/// Every logical name, except `metadata.<key>` (a subscription metadata value).
pub const LOGICAL_FIELDS: [&str; 7] = [
    SUBSCRIPTION_ID,
    SUBSCRIPTION_STATUS,
    SUBSCRIPTION_PLAN,
    SUBSCRIPTION_QUANTITY,
    SUBSCRIPTION_PERIOD_START,
    SUBSCRIPTION_PERIOD_END,
    SUBSCRIPTION_CANCEL_AT_PERIOD_END,
];

/// Whether `name` is a logical field name the pipeline can produce.
pub fn is_logical_field(name: &str) -> bool {
    LOGICAL_FIELDS.contains(&name)
        || name
            .strip_prefix("metadata.")
            .is_some_and(|k| !k.is_empty() && k.len() <= 40)
}

/// The ERP field one logical value is written to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTarget {
    /// ERP column / property name (letters, digits, `_`; a letter or `_` first).
    pub name: String,
    /// Longest value the field holds; a longer value is refused, never cut.
    pub max_len: usize,
}

/// Logical name → ERP field.
pub type CustomerFieldMap = BTreeMap<String, FieldTarget>;

/// `(ERP field, value)` pairs.
pub type FieldValues = Vec<(String, String)>;

/// A map from `(logical, field, max_len)` triples (the connectors' defaults).
pub fn field_map(entries: &[(&str, &str, usize)]) -> CustomerFieldMap {
    entries
        .iter()
        .map(|(l, f, n)| {
            (
                (*l).to_owned(),
                FieldTarget {
                    name: (*f).to_owned(),
                    max_len: *n,
                },
            )
        })
        .collect()
}

/// An ERP field name that can be used as a JSON property or a SQL column without quoting
/// surprises.
pub fn valid_field_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && name.len() <= 128
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Check a connector's field map when its settings are read.
pub fn check_field_map(erp: &'static str, map: &CustomerFieldMap) -> Result<(), ErpError> {
    let mut seen = BTreeMap::new();
    for (logical, target) in map {
        if !is_logical_field(logical) {
            return Err(ErpError::Config {
                erp,
                message: format!(
                    "customer_fields: {logical:?} is not a field ledgerbridge writes (one of {}, or metadata.<key>)",
                    LOGICAL_FIELDS.join(", ")
                ),
            });
        }
        if !valid_field_name(&target.name) || target.max_len == 0 {
            return Err(ErpError::Config {
                erp,
                message: format!(
                    "customer_fields.{logical}: {:?} is not a usable field name (letters, digits, '_') or max_len is 0",
                    target.name
                ),
            });
        }
        if let Some(other) = seen.insert(target.name.to_ascii_lowercase(), logical) {
            return Err(ErpError::Config {
                erp,
                message: format!(
                    "customer_fields: {other} and {logical} both write to {}",
                    target.name
                ),
            });
        }
    }
    Ok(())
}

/// The values to write, as `(ERP field, value)` pairs, and the logical names the settings do not
/// map (not written). A value longer than its field, or with control characters, is refused
/// (permanent): the message names the field, never the value.
pub fn resolve(
    erp: &'static str,
    map: &CustomerFieldMap,
    values: &BTreeMap<String, String>,
) -> Result<(FieldValues, Vec<String>), ErpError> {
    let mut out = Vec::new();
    let mut unmapped = Vec::new();
    for (logical, value) in values {
        let Some(target) = map.get(logical) else {
            unmapped.push(logical.clone());
            continue;
        };
        if !valid_field_name(&target.name) {
            return Err(ErpError::Config {
                erp,
                message: format!("customer_fields.{logical}: invalid field name"),
            });
        }
        if value.chars().count() > target.max_len {
            return Err(ErpError::permanent(
                erp,
                format!(
                    "{logical} is {} characters, longer than the {} characters of {} (customer_fields in the ERP settings)",
                    value.chars().count(),
                    target.max_len,
                    target.name
                ),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ErpError::permanent(
                erp,
                format!("{logical} contains control characters"),
            ));
        }
        out.push((target.name.clone(), value.clone()));
    }
    Ok((out, unmapped))
}

/// What setting customer fields did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldsOutcome {
    /// ERP fields written.
    pub written: Vec<String>,
    /// Logical values not written because the ERP settings map them to no field.
    pub unmapped: Vec<String>,
}

impl FieldsOutcome {
    /// The outcome of writing `fields` (as [`resolve`] gave them) and not `unmapped`.
    pub fn written(fields: FieldValues, unmapped: Vec<String>) -> Self {
        FieldsOutcome {
            written: fields.into_iter().map(|(k, _)| k).collect(),
            unmapped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_map_to_erp_fields_and_unmapped_ones_are_reported() {
        let map = field_map(&[
            (SUBSCRIPTION_STATUS, "UserFld2", 15),
            (SUBSCRIPTION_QUANTITY, "UserFld3", 15),
        ]);
        let (out, unmapped) = resolve(
            "x",
            &map,
            &values(&[
                (SUBSCRIPTION_STATUS, "active"),
                (SUBSCRIPTION_QUANTITY, "5"),
                (SUBSCRIPTION_PLAN, "SEAT-SUB"),
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                ("UserFld3".to_owned(), "5".to_owned()),
                ("UserFld2".to_owned(), "active".to_owned())
            ]
        );
        assert_eq!(unmapped, vec![SUBSCRIPTION_PLAN.to_owned()]);
    }

    #[test]
    fn long_values_are_refused_not_cut() {
        let map = field_map(&[(SUBSCRIPTION_ID, "UserFld2", 15)]);
        let err = resolve(
            "x",
            &map,
            &values(&[(SUBSCRIPTION_ID, "sub_15gzAzNq7LbKx2Rz4teNGDDf")]),
        )
        .unwrap_err();
        assert!(!err.is_retriable());
        let text = err.to_string();
        assert!(text.contains("UserFld2") && text.contains("15"), "{text}");
        assert!(
            !text.contains("sub_15gz"),
            "the value is not repeated: {text}"
        );
        let exact = "x".repeat(15);
        assert!(resolve("x", &map, &values(&[(SUBSCRIPTION_ID, &exact)])).is_ok());
        assert!(resolve("x", &map, &values(&[(SUBSCRIPTION_ID, "a\nb")])).is_err());
    }

    #[test]
    fn field_maps_are_checked() {
        assert!(check_field_map("x", &field_map(&[(SUBSCRIPTION_STATUS, "LBSub_c", 20)])).is_ok());
        assert!(check_field_map("x", &field_map(&[("metadata.tier", "Tier_c", 20)])).is_ok());
        for bad in [
            field_map(&[("plan", "X", 20)]),
            field_map(&[(SUBSCRIPTION_STATUS, "User Fld", 20)]),
            field_map(&[(SUBSCRIPTION_STATUS, "X]; DROP", 20)]),
            field_map(&[(SUBSCRIPTION_STATUS, "1X", 20)]),
            field_map(&[(SUBSCRIPTION_STATUS, "X", 0)]),
            field_map(&[(SUBSCRIPTION_STATUS, "X", 5), (SUBSCRIPTION_PLAN, "x", 5)]),
        ] {
            assert!(check_field_map("x", &bad).is_err(), "{bad:?}");
        }
    }
}
