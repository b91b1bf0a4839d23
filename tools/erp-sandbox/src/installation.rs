//! Installation knobs for `ledgerbridge erp check` tests (`POST /_admin/installation`): make
//! the sandbox look like an installation that lacks something — a Sage 500 procedure removed
//! (`sys.procedures` no longer lists it and calling it fails with SQL Server's 2812), a staging
//! column narrowed (`INFORMATION_SCHEMA` reports the new width and staging a longer value fails
//! with 2628), a GL account dropped (lookups no longer find it and documents naming it are
//! refused), a fiscal period closed (period reads say so and documents dated in it are refused).
//!
//! The discovery routes the check reads: Epicor `Erp.BO.FiscalPerSvc/FiscalPers` (an assumed
//! route, see `ledgerbridge_erp::epicor::check`) and the Sage 500 facade's
//! `POST /sage500/{company}/catalog`, which answers what the T-SQL catalog queries of
//! `ledgerbridge_erp::sage500::tsql::catalog_sql` would on the emulated database.

use crate::dialects::sage500_schema::SqlError;
use crate::store::{epicor_internal, Store, StoreError};
use crate::{ErpKind, Seed};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A staging column made narrower than the contract facts say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NarrowColumn {
    pub table: String,
    pub column: String,
    pub width: usize,
}

/// What to take away from the installation. `erp` limits GL accounts and periods to one ERP
/// (all three when absent); procedures and columns are Sage 500's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Installation {
    pub erp: Option<ErpKind>,
    pub remove_procedures: Vec<String>,
    pub narrow_columns: Vec<NarrowColumn>,
    pub drop_gl_accounts: Vec<String>,
    /// `YYYY-MM`.
    pub close_periods: Vec<String>,
}

/// The knobs in force (procedures and widths; accounts and periods live in the store).
#[derive(Debug, Default)]
pub(crate) struct InstallationState {
    removed_procedures: BTreeSet<String>,
    /// (table, column) lower-cased → width.
    widths: BTreeMap<(String, String), usize>,
}

impl InstallationState {
    pub(crate) fn procedure_removed(&self, name: &str) -> bool {
        self.removed_procedures.contains(&name.to_ascii_lowercase())
    }

    /// The narrowed width of a column, if any.
    pub(crate) fn width(&self, table: &str, column: &str) -> Option<usize> {
        self.widths
            .get(&(table.to_ascii_lowercase(), column.to_ascii_lowercase()))
            .copied()
    }

    /// A staged row checked against the narrowed widths, as SQL Server would on `INSERT`.
    pub(crate) fn check_row(
        &self,
        table: &str,
        columns: &Map<String, Value>,
    ) -> Result<(), SqlError> {
        for (c, v) in columns {
            if let (Some(w), Value::String(s)) = (self.width(table, c), v) {
                if s.chars().count() > w {
                    return Err(SqlError::new(
                        2628,
                        format!("String or binary data would be truncated in table '{table}', column '{c}'."),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Apply the knobs.
pub(crate) fn apply(
    state: &mut InstallationState,
    store: &Store,
    inst: &Installation,
) -> Result<(), StoreError> {
    for p in &inst.remove_procedures {
        state.removed_procedures.insert(p.to_ascii_lowercase());
    }
    for n in &inst.narrow_columns {
        state.widths.insert(
            (n.table.to_ascii_lowercase(), n.column.to_ascii_lowercase()),
            n.width,
        );
    }
    let erps: Vec<ErpKind> = match inst.erp {
        Some(e) => vec![e],
        None => ErpKind::ALL.to_vec(),
    };
    for erp in &erps {
        for a in &inst.drop_gl_accounts {
            store.remove_master(erp.as_str(), "account", a)?;
            if *erp == ErpKind::Epicor {
                store.delete_record(erp.as_str(), "GLAccounts", &epicor_internal(a))?;
            }
        }
    }
    if !inst.close_periods.is_empty() {
        store.seed(&Seed {
            erp: inst.erp,
            closed_periods: inst.close_periods.clone(),
            ..Seed::default()
        })?;
    }
    Ok(())
}

/// The last day of `YYYY-MM`.
pub(crate) fn month_end(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn narrowed_columns_refuse_longer_values() {
        let mut st = InstallationState::default();
        st.widths
            .insert(("stgsalesorder".into(), "trancmnt".into()), 5);
        let row = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(st
            .check_row("StgSalesOrder", &row(json!({"TranCmnt": "12345"})))
            .is_ok());
        assert_eq!(
            st.check_row("StgSalesOrder", &row(json!({"TranCmnt": "123456"})))
                .unwrap_err()
                .number,
            2628
        );
        assert!(st
            .check_row("StgCustomer", &row(json!({"TranCmnt": "123456"})))
            .is_ok());
        assert_eq!(month_end(2024, 2), 29);
        assert_eq!(month_end(2026, 2), 28);
        assert_eq!(month_end(2026, 11), 30);
    }
}
