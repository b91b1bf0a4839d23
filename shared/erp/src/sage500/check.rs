//! Sage 500 discovery for `ledgerbridge erp check` (read-only): the company (`tsmCompany`), each
//! configured API procedure (`sys.procedures`), the width of each reference column in its
//! staging table (`INFORMATION_SCHEMA.COLUMNS`), the GL accounts the mapping names
//! (`tglAccount`) and the fiscal period of the posting date.
//!
//! Over `transport: "sqlserver"` these are the T-SQL queries of [`super::tsql::catalog_sql`];
//! over the HTTP facade, `POST {base}/sage500/{company}/catalog` with a [`CatalogRequest`]
//! answers a [`Catalog`] computed by the same queries next to the database.
//!
//! **Assumptions** (no contract fact confirms them): GL accounts are `tglAccount.GLAcctNo` as
//! the mapping spells them (no mask applied); fiscal periods are `tglFiscalPeriod` rows
//! (`FiscYear`, `FiscPer`, `StartDate`, `EndDate`, `Status`, 2 = closed).

use super::client::Sage500Connector;
use crate::check::{describe, CheckLine, Expectations, Named};
use crate::commands::DocKind;
use serde::{Deserialize, Serialize};

/// A column whose width is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRef {
    pub table: String,
    pub column: String,
}

/// What the check asks of the company database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRequest {
    pub procedures: Vec<String>,
    pub columns: Vec<ColumnRef>,
    pub accounts: Vec<String>,
    /// `YYYY-MM-DD`: the fiscal period containing it is reported.
    pub date: String,
}

/// A column that exists, with its character width (`None` for non-character types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnWidth {
    pub table: String,
    pub column: String,
    pub max_len: Option<i64>,
}

/// The fiscal period containing the asked date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodInfo {
    pub fiscal_year: String,
    pub fiscal_period: i64,
    pub closed: bool,
}

/// What the company database has of what was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The company is a `tsmCompany` row.
    pub company: bool,
    /// The asked procedures that exist.
    pub procedures: Vec<String>,
    /// The asked columns that exist.
    pub columns: Vec<ColumnWidth>,
    /// The asked accounts that exist in the company.
    pub accounts: Vec<String>,
    /// `None` when no period contains the date.
    pub period: Option<PeriodInfo>,
}

fn kind_key(kind: DocKind) -> &'static str {
    kind.as_str()
}

pub(crate) async fn lines(
    c: &Sage500Connector,
    exp: &Expectations,
    accounts: &[&Named],
) -> Vec<CheckLine> {
    let cfg = c.config();
    let specs: Vec<(DocKind, &super::config::Sage500DocSpec)> = DocKind::ALL
        .into_iter()
        .filter_map(|k| cfg.docs.for_kind(k).map(|s| (k, s)))
        .collect();
    let mut req = CatalogRequest {
        date: exp.posting_date.as_str().to_owned(),
        accounts: accounts.iter().map(|a| a.value.clone()).collect(),
        ..CatalogRequest::default()
    };
    for (_, s) in &specs {
        if !req.procedures.contains(&s.procedure) {
            req.procedures.push(s.procedure.clone());
        }
        let col = ColumnRef {
            table: s.header_table.clone(),
            column: s.reference_column.clone(),
        };
        if !req.columns.contains(&col) {
            req.columns.push(col);
        }
    }
    let catalog = match c.catalog(&req).await {
        Ok(cat) => cat,
        Err(e) => {
            return vec![CheckLine::fail(
                "catalog (sys.procedures, INFORMATION_SCHEMA, tsmCompany, tglAccount)",
                "readable",
                describe(&e),
                "grant the integration login VIEW DEFINITION and SELECT on these views and tables",
            )]
        }
    };
    let mut out = Vec::new();
    out.push(if catalog.company {
        CheckLine::pass(
            format!("company {}", cfg.company),
            "a tsmCompany row",
            "present",
        )
    } else {
        CheckLine::fail(
            format!("company {}", cfg.company),
            "a tsmCompany row",
            "absent",
            "set \"company\" in the Sage 500 settings to the company id",
        )
    });
    let mut seen = Vec::new();
    for (kind, s) in &specs {
        if !seen.contains(&&s.procedure) {
            seen.push(&s.procedure);
            let what = format!("procedure {} (docs.{})", s.procedure, kind_key(*kind));
            out.push(if catalog.procedures.iter().any(|p| p.eq_ignore_ascii_case(&s.procedure)) {
                CheckLine::pass(what, "in sys.procedures", "present")
            } else {
                CheckLine::fail(
                    what,
                    "in sys.procedures",
                    "absent",
                    format!(
                        "install {} in the company database (docs/erp-connectors.md) or correct docs.{}.procedure",
                        s.procedure,
                        kind_key(*kind)
                    ),
                )
            });
        }
        let what = format!(
            "reference column {}.{} (docs.{})",
            s.header_table,
            s.reference_column,
            kind_key(*kind)
        );
        let expected = format!("varchar(≥ {}) (reference_max_len)", cfg.reference_max_len);
        let found = catalog.columns.iter().find(|w| {
            w.table.eq_ignore_ascii_case(&s.header_table)
                && w.column.eq_ignore_ascii_case(&s.reference_column)
        });
        out.push(match found {
            None => CheckLine::fail(
                what,
                expected,
                "no such column",
                format!(
                    "correct docs.{}.header_table / reference_column",
                    kind_key(*kind)
                ),
            ),
            // INFORMATION_SCHEMA reports varchar(max) as -1.
            Some(ColumnWidth { max_len: Some(-1), .. }) => {
                CheckLine::pass(what, expected, "varchar(max)")
            }
            Some(ColumnWidth { max_len: Some(n), .. })
                if usize::try_from(*n).is_ok_and(|n| n >= cfg.reference_max_len) =>
            {
                CheckLine::pass(what, expected, format!("varchar({n})"))
            }
            Some(ColumnWidth { max_len, .. }) => CheckLine::fail(
                what,
                expected,
                match max_len {
                    Some(n) => format!("varchar({n})"),
                    None => "not a character column".to_owned(),
                },
                format!(
                    "point docs.{}.reference_column at a wider column, or lower reference_max_len to its width (references are shortened deterministically)",
                    kind_key(*kind)
                ),
            ),
        });
    }
    for a in accounts {
        let what = format!("GL account {} ({})", a.value, a.origin);
        out.push(if catalog.accounts.iter().any(|x| x == &a.value) {
            CheckLine::pass(what, "a tglAccount row of the company", "present")
        } else {
            CheckLine::fail(
                what,
                "a tglAccount row of the company",
                "absent",
                format!(
                    "create {} in Maintain Accounts or correct {}",
                    a.value, a.origin
                ),
            )
        });
    }
    let what = format!("fiscal period of {}", exp.posting_date.as_str());
    out.push(match &catalog.period {
        None => CheckLine::fail(
            what,
            "open",
            "no fiscal period contains the date",
            "set up the fiscal year in Set Up Fiscal Calendar",
        ),
        Some(p) if p.closed => CheckLine::fail(
            what,
            "open",
            format!("period {}/{} closed", p.fiscal_year, p.fiscal_period),
            "reopen the period, or expect every document dated in it to be parked",
        ),
        Some(p) => CheckLine::pass(
            what,
            "open",
            format!("period {}/{} open", p.fiscal_year, p.fiscal_period),
        ),
    });
    if let Some(job) = cfg.customer_update_dim_job {
        out.push(CheckLine::manual(
            format!("DIM job {job} (customer_update_dim_job)"),
            "column maps allowing the customer columns ledgerbridge updates",
            "confirm in Data Import Manager that the job maps the customer_fields columns",
        ));
    }
    for i in &exp.items {
        out.push(CheckLine::manual(
            format!("item {} ({})", i.value, i.origin),
            "a timItem row",
            "confirm the item exists in the company",
        ));
    }
    for r in &exp.reason_codes {
        out.push(CheckLine::manual(
            format!("reason code {} ({})", r.value, r.origin),
            "a reason code",
            "confirm the reason code exists in the company",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpError;
    use crate::sage500::mapping::SqlValue;
    use crate::sage500::tsql::{catalog_sql, SqlCell, SqlConnect, SqlSession, TsqlDb};
    use std::sync::{Arc, Mutex};

    /// The SQL text and parameters of every batch sent.
    type Sent = Arc<Mutex<Vec<(String, Vec<SqlValue>)>>>;

    /// A database that answers the catalog queries and logs what it was sent.
    #[derive(Clone, Default)]
    struct FakeCatalog {
        sent: Sent,
    }

    impl SqlSession for FakeCatalog {
        async fn execute(
            &mut self,
            sql: &str,
            params: &[SqlValue],
            _after_call: bool,
        ) -> Result<Vec<Vec<SqlCell>>, ErpError> {
            self.sent
                .lock()
                .unwrap()
                .push((sql.to_owned(), params.to_vec()));
            let text = |s: &str| SqlCell::Text(s.to_owned());
            let p = |i: usize| match params.get(i) {
                Some(SqlValue::Text(t)) => t.clone(),
                _ => String::new(),
            };
            let [procs, cols, company, account, period] = catalog_sql();
            Ok(if sql == procs {
                vec![vec![text("spARapiCustomerIns")], vec![text("spOther")]]
            } else if sql == cols && p(0) == "StgSalesOrder" {
                vec![
                    vec![text("TranCmnt"), SqlCell::Int(20)],
                    vec![text("TranNo"), SqlCell::Int(10)],
                ]
            } else if sql == cols && p(0) == "StgCustomer" {
                vec![vec![text("CRMCustID"), SqlCell::Int(32)]]
            } else if sql == company && p(0) == "SOA" {
                vec![vec![text("SOA")]]
            } else if sql == account && p(1) == "1010-00" {
                vec![vec![text("1010-00")]]
            } else if sql == period && p(1) == "2026-03-16" {
                vec![vec![text("2026"), SqlCell::Int(3), SqlCell::Int(2)]]
            } else {
                vec![]
            })
        }
    }

    impl SqlConnect for FakeCatalog {
        type Session = FakeCatalog;
        async fn connect(&self) -> Result<FakeCatalog, ErpError> {
            Ok(self.clone())
        }
    }

    #[tokio::test]
    async fn the_tsql_catalog_reads_procedures_widths_company_accounts_and_period() {
        let fake = FakeCatalog::default();
        let cfg = crate::sage500::Sage500Config::http("http://unused", "SOA");
        let db = TsqlDb::from_config(fake.clone(), &cfg);
        let req = CatalogRequest {
            procedures: vec!["spARapiCustomerIns".into(), "spSOapiSalesOrdIns".into()],
            columns: vec![
                ColumnRef {
                    table: "StgCustomer".into(),
                    column: "CRMCustID".into(),
                },
                ColumnRef {
                    table: "StgSalesOrder".into(),
                    column: "TranCmnt".into(),
                },
            ],
            accounts: vec!["1010-00".into(), "9999".into()],
            date: "2026-03-16".into(),
        };
        let cat = db.catalog(&req).await.unwrap();
        assert!(cat.company);
        assert_eq!(cat.procedures, vec!["spARapiCustomerIns".to_owned()]);
        assert_eq!(
            cat.columns,
            vec![
                ColumnWidth {
                    table: "StgCustomer".into(),
                    column: "CRMCustID".into(),
                    max_len: Some(32)
                },
                ColumnWidth {
                    table: "StgSalesOrder".into(),
                    column: "TranCmnt".into(),
                    max_len: Some(20)
                },
            ]
        );
        assert_eq!(cat.accounts, vec!["1010-00".to_owned()]);
        assert_eq!(
            cat.period,
            Some(PeriodInfo {
                fiscal_year: "2026".into(),
                fiscal_period: 3,
                closed: true
            })
        );
        // Every value travelled as a parameter, never in the SQL text.
        for (sql, _) in fake.sent.lock().unwrap().iter() {
            assert!(
                !sql.contains("SOA") && !sql.contains("1010") && !sql.contains("Stg"),
                "{sql}"
            );
        }
    }
}
