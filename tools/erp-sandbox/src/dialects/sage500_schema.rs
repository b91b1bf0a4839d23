//! The real Sage 500 staging schemas, from the contract facts (`contracts/sage500/staging.json`,
//! source TYL): a staging row the sandbox accepts has only columns the table has, values that
//! fit their `varchar(n)` width, and no `CompanyID` (no staging table has one). Violations are
//! answered with SQL Server's own errors (207 invalid column, 2628 truncation).

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const STAGING_JSON: &str = include_str!("../../contracts/sage500/staging.json");

/// A SQL Server error: number and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub number: i32,
    pub message: String,
}

impl SqlError {
    pub fn new(number: i32, message: impl Into<String>) -> Self {
        SqlError {
            number,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Msg {}: {}", self.number, self.message)
    }
}

/// Column name (as the facts spell it) → `varchar` width, `None` for other types.
type Columns = BTreeMap<String, (String, Option<usize>)>;

fn schemas() -> &'static BTreeMap<String, Columns> {
    static S: OnceLock<BTreeMap<String, Columns>> = OnceLock::new();
    S.get_or_init(|| {
        let v: Value = serde_json::from_str(STAGING_JSON).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        if let Some(tables) = v.get("tables").and_then(Value::as_object) {
            for (t, def) in tables {
                let mut cols = Columns::new();
                if let Some(c) = def.get("columns").and_then(Value::as_object) {
                    for (name, spec) in c {
                        let ty = spec
                            .get("sql_type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_ascii_lowercase();
                        let width = ty
                            .strip_prefix("varchar(")
                            .or_else(|| ty.strip_prefix("nvarchar("))
                            .and_then(|r| r.strip_suffix(')'))
                            .and_then(|n| n.trim().parse().ok());
                        cols.insert(name.to_ascii_lowercase(), (name.clone(), width));
                    }
                }
                out.insert(t.clone(), cols);
            }
        }
        out
    })
}

/// Is this one of the staging tables the facts describe?
pub fn is_known(table: &str) -> bool {
    schemas().contains_key(table)
}

/// A column of a staging table the facts describe: `Some(width)` of a character column
/// (`None` for other types); `None` when the table or column is not in the facts.
pub fn column_width(table: &str, column: &str) -> Option<(String, Option<usize>)> {
    schemas()
        .get(table)
        .and_then(|cols| cols.get(&column.to_ascii_lowercase()))
        .cloned()
}

/// Check one staged row as SQL Server would on `INSERT`. Tables the facts do not describe
/// (a site procedure's own staging) are accepted as they come, except for `CompanyID`.
pub fn check_row(table: &str, columns: &serde_json::Map<String, Value>) -> Result<(), SqlError> {
    let Some(cols) = schemas().get(table) else {
        if columns.keys().any(|c| c.eq_ignore_ascii_case("CompanyID")) {
            return Err(SqlError::new(207, "Invalid column name 'CompanyID'."));
        }
        return Ok(());
    };
    for (c, v) in columns {
        let Some((name, width)) = cols.get(&c.to_ascii_lowercase()) else {
            return Err(SqlError::new(207, format!("Invalid column name '{c}'.")));
        };
        if let (Some(w), Value::String(s)) = (width, v) {
            if s.chars().count() > *w {
                return Err(SqlError::new(
                    2628,
                    format!(
                        "String or binary data would be truncated in table '{table}', column '{name}'."
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn staging_rows_are_checked_against_the_facts() {
        assert!(is_known("StgSalesOrder") && is_known("StgSOLine") && is_known("StgCustomer"));
        let row = |v: Value| v.as_object().cloned().unwrap();
        assert!(check_row("StgSalesOrder", &row(json!({"TranNo": "LB12345678"}))).is_ok());
        assert_eq!(
            check_row("StgSalesOrder", &row(json!({"TranNo": "LB123456789"})))
                .unwrap_err()
                .number,
            2628
        );
        assert_eq!(
            check_row("StgSalesOrder", &row(json!({"CompanyID": "SOA"})))
                .unwrap_err()
                .number,
            207
        );
        assert_eq!(
            check_row("StgSOLine", &row(json!({"LineNo": 1})))
                .unwrap_err()
                .number,
            207
        );
        assert!(check_row("StgCustomer", &row(json!({"UserFld1": "x".repeat(16)}))).is_err());
        assert!(check_row("StgCustomer", &row(json!({"CRMCustID": "x".repeat(32)}))).is_ok());
    }
}
