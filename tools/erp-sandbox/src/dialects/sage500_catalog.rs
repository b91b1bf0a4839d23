//! Sage 500 catalog for `ledgerbridge erp check`: `POST /sage500/{company}/catalog` answers what
//! the catalog queries (`sys.procedures`, `INFORMATION_SCHEMA.COLUMNS`, `tsmCompany`,
//! `tglAccount`, `tglFiscalPeriod`) would on the emulated database, after the installation
//! knobs (`POST /_admin/installation`). Staging widths come from the contract facts
//! (`contracts/sage500/staging.json`); staging tables of site procedures, which the facts do
//! not describe and the emulation accepts as they come, report their columns as
//! `varchar(max)` (`CHARACTER_MAXIMUM_LENGTH` -1) unless narrowed.

use super::error;
use super::sage500::{proc_of, Batch};
use super::sage500_schema::{self as schema, SqlError};
use crate::{AppState, ErpKind, Shared};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledgerbridge_erp::sage500::check::{Catalog, CatalogRequest, ColumnWidth, PeriodInfo};

const ERP: &str = ErpKind::Sage500.as_str();

/// Refuse a batch the installation knobs make impossible: a removed procedure (2812) or a value
/// longer than a narrowed column (2628).
pub(crate) fn check_batch(s: &Shared, b: &Batch) -> Result<(), SqlError> {
    let Ok(inst) = s.installation.lock() else {
        return Ok(());
    };
    if inst.procedure_removed(&b.procedure) {
        return Err(SqlError::new(
            2812,
            format!("Could not find stored procedure '{}'.", b.procedure),
        ));
    }
    for r in &b.rows {
        inst.check_row(&r.table, &r.columns)?;
    }
    Ok(())
}

pub async fn catalog(
    State(s): State<AppState>,
    Path(company): Path<String>,
    h: HeaderMap,
    Json(req): Json<CatalogRequest>,
) -> Response {
    if let Err(r) = super::sage500::authenticate(&s, &h) {
        return r;
    }
    match answer(&s, &company, &req) {
        Ok(c) => Json(c).into_response(),
        Err(m) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "db",
            &m,
        ),
    }
}

fn answer(s: &Shared, company: &str, req: &CatalogRequest) -> Result<Catalog, String> {
    let inst = s.installation.lock().map_err(|e| e.to_string())?;
    let st = s.store.lock().map_err(|e| e.to_string())?;
    // The emulation holds every company id Sage 500 allows (1 to 3 characters), as the
    // facade's batches do.
    let mut out = Catalog {
        company: (1..=3).contains(&company.chars().count()),
        ..Catalog::default()
    };
    out.procedures = req
        .procedures
        .iter()
        .filter(|p| proc_of(p).is_some() && !inst.procedure_removed(p))
        .cloned()
        .collect();
    for c in &req.columns {
        let known = schema::column_width(&c.table, &c.column);
        let site_table = !schema::is_known(&c.table) && c.table.starts_with("Stg");
        let width = match (known.clone(), inst.width(&c.table, &c.column)) {
            (_, Some(w)) => Some(i64::try_from(w).unwrap_or(i64::MAX)),
            (Some((_, w)), None) => w.map(|w| i64::try_from(w).unwrap_or(i64::MAX)),
            (None, None) if site_table => Some(-1),
            (None, None) => continue,
        };
        out.columns.push(ColumnWidth {
            table: c.table.clone(),
            column: known.map(|(n, _)| n).unwrap_or_else(|| c.column.clone()),
            max_len: width,
        });
    }
    for a in &req.accounts {
        if st
            .has_master(ERP, "account", a)
            .map_err(|e| e.to_string())?
        {
            out.accounts.push(a.clone());
        }
    }
    // The sandbox's fiscal calendar: one period per calendar month.
    let year = req.date.get(..4).and_then(|y| y.parse::<i64>().ok());
    let month = req.date.get(5..7).and_then(|m| m.parse::<i64>().ok());
    if let (Some(y), Some(m)) = (year, month) {
        out.period = Some(PeriodInfo {
            fiscal_year: y.to_string(),
            fiscal_period: m,
            closed: st
                .period_closed(ERP, &req.date)
                .map_err(|e| e.to_string())?,
        });
    }
    Ok(out)
}
