//! An ERP sandbox: one HTTP server that speaks the dialects of ledgerbridge's three connectors
//! closely enough to catch mapping mistakes.
//!
//! - **Epicor Kinetic REST v2**: `/{instance}/api/v2/odata/{Company}/Erp.BO.{Svc}/{Set}` with
//!   `x-api-key` plus Basic or Bearer auth, OData `$filter`/`$select`/`$top` (`eq` clauses joined
//!   by `and`), decimals as strings (`IEEE754Compatible=true`), Epicor-style error bodies.
//! - **Sage Pro facade** (`/api/v1/{resource}`, API key header), strict to the published facade
//!   contract in `contracts/sagepro/` ([`sagepro_contract`]): search by reference, e-mail or
//!   change time, `{"error":{"code","message"}}` bodies.
//! - **Sage 500**: a facade over emulated staging tables: a batch of staging rows is inserted with
//!   `ProcessStatus` 0 and the named API procedure is emulated: rows end at 1 (processed) or 2
//!   (error) with reasons in a migration log; lookups read the emulated `t…` tables.
//!
//! Everything is persisted in SQLite; every committed document is written to an audit log.
//! Every request is recorded as received (`GET /_admin/requests`), and documents are exported
//! in ERP-neutral form (`GET /_admin/documents`); see docs/erp-connectors.md. The Epicor
//! contract facts the sandbox is built from live in `contracts/epicor/` ([`contract`]).
//! Fault knobs (latency, 5xx before commit, an outage, commit-then-drop by count or by share,
//! 429 + Retry-After by count or from a token bucket, search lag, references refused with a
//! validation error) are set through `POST /_admin/faults` or [`SandboxHandle::set_faults`].

// Handlers return an early `Response` as the error of small helpers; boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod contract;
mod dialects;
mod export;
mod installation;
pub mod sagepro_contract;
mod store;

pub use dialects::sage500::DIM_CUSTOMER_JOB as SAGE500_DIM_CUSTOMER_JOB;
pub use dialects::sage500_schema::SqlError as Sage500SqlError;
pub use dialects::sage500_tsql::{ExecutedBatch, TsqlEmulator as Sage500Tsql};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use export::{DocState, ExportedDocument, ExportedLine, RecordedRequest};
pub use installation::{Installation, NarrowColumn};
pub use store::{AuditEntry, StoreError};

/// Which dialects the server answers: one per [`ErpKind`], re-exported so callers of the sandbox
/// need no second import.
pub use ledgerbridge_erp::ErpKind;

/// Credentials the sandbox accepts (test values, never real ones).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxKeys {
    pub epicor_api_key: String,
    pub epicor_user: String,
    pub epicor_password: String,
    pub epicor_bearer: String,
    pub sagepro_api_key: String,
    pub sage500_api_key: String,
}

impl Default for SandboxKeys {
    fn default() -> Self {
        SandboxKeys {
            epicor_api_key: "sandbox-epicor-key".into(),
            epicor_user: "manager".into(),
            epicor_password: "sandbox-password".into(),
            epicor_bearer: "sandbox-bearer-token".into(),
            sagepro_api_key: "sandbox-sagepro-key".into(),
            sage500_api_key: "sandbox-sage500-key".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub bind: SocketAddr,
    /// SQLite file; `None` keeps everything in memory.
    pub db: Option<PathBuf>,
    /// Dialects served; empty means all three.
    pub erps: Vec<ErpKind>,
    pub keys: SandboxKeys,
    /// The Epicor company (path segment) and Sage 500 company id the sandbox holds.
    pub company: String,
    /// Seed the demo master data (items, GL accounts) on start.
    pub seed_demo: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: None,
            erps: vec![],
            keys: SandboxKeys::default(),
            company: "EPIC06".into(),
            seed_demo: true,
        }
    }
}

/// Fault knobs. Counters are decremented by each request they affect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Delay added before every ERP request is handled.
    pub latency_ms: u64,
    /// The next N ERP requests answer 503 without doing anything.
    pub fail_before_commit: u32,
    /// The next N creating requests commit and then drop the connection without an answer.
    pub drop_after_commit: u32,
    /// The next N ERP requests answer 429 with `Retry-After: retry_after_secs`.
    pub rate_limit: u32,
    pub retry_after_secs: u64,
    /// Documents become visible to searches this long after commit.
    pub search_lag_ms: u64,
    /// This share (per cent) of creating requests, spread evenly, commit and then drop the
    /// connection without an answer (a standing loss rate, unlike the `drop_after_commit`
    /// counter). Every such drop is counted in `dropped`.
    pub drop_after_commit_percent: u8,
    /// Answers dropped after commit (by either knob) since the knobs were set.
    pub dropped: u32,
    /// An outage: while set, every ERP request answers 503 without doing anything.
    pub unavailable: bool,
    /// A token bucket of this many ERP requests per second (burst: one second's worth);
    /// 0 = no limit. A request beyond it answers 429 with `Retry-After` (whole seconds until a
    /// token is free, at least 1) and does nothing. Answers counted in `rate_limited`.
    pub rate_limit_rps: u32,
    /// 429 answers given by the token bucket since the knobs were set.
    pub rate_limited: u32,
    /// Creating requests whose body holds one of these strings (a document reference) are
    /// refused with the dialect's validation error (4xx) before anything is committed, every
    /// time, as an ERP refuses an unknown customer or a closed period. Counted in `rejected`.
    pub reject_references: Vec<String>,
    /// Creating requests refused through `reject_references` since the knobs were set.
    pub rejected: u32,
}

/// What the share and rate knobs of [`Faults`] carry from one request to the next.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    /// Per-cent credit towards the next drop of `drop_after_commit_percent`.
    drop_credit: u32,
    /// Token bucket: when last refilled, and the milli-tokens held then.
    bucket: Option<(std::time::Instant, u64)>,
}

/// Master data to add.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    pub erp: Option<ErpKind>,
    pub items: Vec<String>,
    pub gl_accounts: Vec<String>,
    /// Closed fiscal periods `YYYY-MM`.
    pub closed_periods: Vec<String>,
}

pub(crate) struct Shared {
    pub cfg: SandboxConfig,
    pub store: Mutex<store::Store>,
    pub faults: Mutex<Faults>,
    pub fault_state: Mutex<FaultState>,
    pub keys: Mutex<SandboxKeys>,
    /// Every request outside `/_admin`, as received.
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// The Epicor contract facts the Epicor dialect enforces.
    pub contract: contract::EpicorContract,
    /// Installation knobs in force (`POST /_admin/installation`).
    pub installation: Mutex<installation::InstallationState>,
}

pub(crate) type AppState = Arc<Shared>;

/// A running sandbox. Dropping it does not stop the server; call [`SandboxHandle::shutdown`].
pub struct SandboxHandle {
    shared: AppState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// A T-SQL connection factory onto this sandbox's Sage 500 database (see
    /// [`Sage500Tsql`]).
    pub fn sage500_tsql(&self) -> Sage500Tsql {
        Sage500Tsql::new(self.shared.clone())
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn set_faults(&self, f: Faults) {
        if let Ok(mut g) = self.shared.faults.lock() {
            *g = f;
        }
    }
    pub fn faults(&self) -> Faults {
        self.shared
            .faults
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
    /// Replace the accepted credentials (an expired token or a rotated key: old ones get 401).
    pub fn set_keys(&self, k: SandboxKeys) {
        if let Ok(mut g) = self.shared.keys.lock() {
            *g = k;
        }
    }
    pub fn keys(&self) -> SandboxKeys {
        self.shared
            .keys
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
    pub fn seed(&self, seed: &Seed) -> Result<(), StoreError> {
        let store = self.shared.store.lock().map_err(|_| StoreError::Poisoned)?;
        store.seed(seed)
    }
    /// Every committed document, oldest first (optionally of one ERP).
    pub fn audit(&self, erp: Option<ErpKind>) -> Result<Vec<AuditEntry>, StoreError> {
        let store = self.shared.store.lock().map_err(|_| StoreError::Poisoned)?;
        store.audit(erp.map(ErpKind::as_str))
    }
    /// Edit a customer as an ERP user would (the change is audited and listed as changed):
    /// `patch` fields are merged into the customer whose code is `customer_code`.
    pub fn edit_customer(
        &self,
        erp: ErpKind,
        customer_code: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let (entity, field) = match erp {
            ErpKind::Epicor => ("Customers", "CustID"),
            ErpKind::SagePro => ("customers", "customerId"),
            ErpKind::Sage500 => ("tarCustomer", "CustID"),
        };
        let store = self.shared.store.lock().map_err(|_| StoreError::Poisoned)?;
        store.edit_where(erp.as_str(), entity, field, customer_code, patch)
    }
    /// Count of committed documents of an entity (e.g. `SalesOrders`, `salesorders`, `tsoSalesOrder`).
    pub fn count(&self, erp: ErpKind, entity: &str) -> Result<i64, StoreError> {
        let store = self.shared.store.lock().map_err(|_| StoreError::Poisoned)?;
        store.count(erp.as_str(), entity)
    }
    /// Take something away from the installation (as `POST /_admin/installation`).
    pub fn set_installation(&self, inst: &Installation) -> Result<(), String> {
        apply_installation(&self.shared, inst)
    }

    /// Every request received so far (outside `/_admin`), oldest first, optionally of one ERP.
    pub fn requests(&self, erp: Option<ErpKind>) -> Vec<RecordedRequest> {
        requests_of(&self.shared, erp)
    }
    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        if let Ok(mut g) = self.shared.requests.lock() {
            g.clear();
        }
    }
    /// Every document in ERP-neutral form, optionally of one ERP (Epicor only so far).
    pub fn documents(&self, erp: Option<ErpKind>) -> Result<Vec<ExportedDocument>, StoreError> {
        documents_of(&self.shared, erp)
    }
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            // The server may already have stopped; nothing to do then.
            s.send(()).ok();
        }
        if let Some(t) = self.task.take() {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "sandbox task ended abnormally");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot bind: {0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Contract(#[from] contract::ContractError),
}

/// Start the sandbox in this process; returns its address and a handle.
pub async fn spawn(cfg: SandboxConfig) -> Result<(SocketAddr, SandboxHandle), SandboxError> {
    let store = store::Store::open(cfg.db.as_deref())?;
    if cfg.seed_demo {
        for erp in ErpKind::ALL {
            store.seed(&Seed {
                erp: Some(erp),
                items: ["WIDGET-01", "SHIP", "SUBSCR"].map(String::from).to_vec(),
                gl_accounts: ["1010-00", "1015-00", "6150-00", "4100-00", "1200-00"]
                    .map(String::from)
                    .to_vec(),
                closed_periods: vec![],
            })?;
        }
        // Epicor payment methods (PayMethod.PMUID) the connector's default settings use.
        for pmuid in 1..=4 {
            store.add_master(ErpKind::Epicor.as_str(), "paymethod", &pmuid.to_string())?;
        }
    }
    let shared = Arc::new(Shared {
        keys: Mutex::new(cfg.keys.clone()),
        cfg: cfg.clone(),
        store: Mutex::new(store),
        faults: Mutex::new(Faults::default()),
        fault_state: Mutex::new(FaultState::default()),
        requests: Mutex::new(Vec::new()),
        contract: contract::EpicorContract::load()?,
        installation: Mutex::new(installation::InstallationState::default()),
    });
    let app = router(shared.clone());
    let listener = TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            // A dropped sender (handle gone) also stops the server.
            rx.await.ok();
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    tracing::info!(%addr, "ERP sandbox listening");
    Ok((
        addr,
        SandboxHandle {
            shared,
            addr,
            stop: Some(tx),
            task: Some(task),
        },
    ))
}

fn serves(s: &Shared, erp: ErpKind) -> bool {
    s.cfg.erps.is_empty() || s.cfg.erps.contains(&erp)
}

pub(crate) fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/_admin/faults", get(get_faults).post(set_faults))
        .route("/_admin/seed", post(seed))
        .route("/_admin/keys", post(set_keys))
        .route("/_admin/audit", get(audit))
        .route("/_admin/requests", get(requests).delete(clear_requests))
        .route("/_admin/documents", get(documents))
        .route("/_admin/installation", post(set_installation))
        .route("/_admin/documents/edit", post(edit_document))
        .route("/_admin/health", get(|| async { "ok" }));
    if serves(&state, ErpKind::Epicor) {
        r = r.route(
            "/{instance}/api/v2/odata/{company}/{service}/{set}",
            get(dialects::epicor::get)
                .post(dialects::epicor::post)
                .patch(dialects::epicor::patch),
        );
    }
    if serves(&state, ErpKind::SagePro) {
        r = r
            .route(
                "/api/v1/{resource}",
                get(dialects::sagepro::search).post(dialects::sagepro::create),
            )
            .route(
                "/api/v1/{resource}/{id}",
                get(dialects::sagepro::get_one).put(dialects::sagepro::update),
            );
    }
    if serves(&state, ErpKind::Sage500) {
        r = r
            .route("/sage500/{company}/batches", post(dialects::sage500::batch))
            .route("/sage500/{company}/lookup", get(dialects::sage500::lookup))
            .route(
                "/sage500/{company}/customer-email",
                get(dialects::sage500::customer_email),
            )
            .route(
                "/sage500/{company}/customers-changed",
                get(dialects::sage500::customers_changed),
            )
            .route(
                "/sage500/{company}/catalog",
                post(dialects::sage500_catalog::catalog),
            )
            .route(
                "/sage500/{company}/staging",
                get(dialects::sage500::staging),
            );
    }
    r.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        export::record,
    ))
    .with_state(state)
}

fn requests_of(s: &Shared, erp: Option<ErpKind>) -> Vec<RecordedRequest> {
    s.requests
        .lock()
        .map(|g| {
            g.iter()
                .filter(|r| erp.is_none() || r.erp == erp)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn documents_of(s: &Shared, erp: Option<ErpKind>) -> Result<Vec<ExportedDocument>, StoreError> {
    let store = s.store.lock().map_err(|_| StoreError::Poisoned)?;
    let mut out = Vec::new();
    if erp.is_none_or(|e| e == ErpKind::Epicor) {
        out.extend(dialects::epicor::documents(&store)?);
    }
    Ok(out)
}

async fn requests(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    Json(requests_of(&s, q.erp)).into_response()
}

async fn clear_requests(State(s): State<AppState>) -> StatusCode {
    match s.requests.lock() {
        Ok(mut g) => {
            g.clear();
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn documents(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    match documents_of(&s, q.erp) {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A change made by hand in the ERP, for the audit's tests: delete a document, or set fields
/// of it (JSON pointers into the stored row, e.g. `/DocTranAmt` or `/OrderDtls/0/DocUnitPrice`).
#[derive(Debug, Deserialize)]
struct EditDocument {
    erp: ErpKind,
    /// The stored entity (`CashRecs`, `SalesOrders`, `salesorders`, …).
    entity: String,
    /// The document id as the connector returned it.
    id: String,
    #[serde(default)]
    delete: bool,
    #[serde(default)]
    set: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `POST /_admin/documents/edit`: 204 when done, 404 when no such document, 400 for a pointer
/// that names no field of it.
async fn edit_document(State(s): State<AppState>, Json(e): Json<EditDocument>) -> Response {
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let erp = e.erp.as_str();
    let mut doc = match st.get_doc(erp, &e.entity, &e.id) {
        Ok(Some(d)) => d,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let done = if e.delete {
        st.delete_record(erp, &e.entity, &e.id)
    } else {
        for (pointer, value) in &e.set {
            match doc.pointer_mut(pointer) {
                Some(slot) => *slot = value.clone(),
                None => {
                    return (StatusCode::BAD_REQUEST, format!("no field at {pointer}"))
                        .into_response()
                }
            }
        }
        st.update_doc(erp, &e.entity, &e.id, &doc).map(drop)
    };
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn get_faults(State(s): State<AppState>) -> Json<Faults> {
    Json(s.faults.lock().map(|g| g.clone()).unwrap_or_default())
}

async fn set_faults(State(s): State<AppState>, Json(f): Json<Faults>) -> StatusCode {
    match s.faults.lock() {
        Ok(mut g) => {
            *g = f;
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn set_keys(State(s): State<AppState>, Json(k): Json<SandboxKeys>) -> StatusCode {
    match s.keys.lock() {
        Ok(mut g) => {
            *g = k;
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /_admin/installation`: take something away from the installation (see
/// [`Installation`]).
async fn set_installation(State(s): State<AppState>, Json(inst): Json<Installation>) -> Response {
    match apply_installation(&s, &inst) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

fn apply_installation(s: &Shared, inst: &Installation) -> Result<(), String> {
    let mut state = s.installation.lock().map_err(|e| e.to_string())?;
    let store = s.store.lock().map_err(|e| e.to_string())?;
    installation::apply(&mut state, &store, inst).map_err(|e| e.to_string())
}

async fn seed(State(s): State<AppState>, Json(seed): Json<Seed>) -> Response {
    let r = s
        .store
        .lock()
        .map_err(|_| StoreError::Poisoned)
        .and_then(|st| st.seed(&seed));
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    erp: Option<ErpKind>,
}

async fn audit(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    let r = s
        .store
        .lock()
        .map_err(|_| StoreError::Poisoned)
        .and_then(|st| st.audit(q.erp.map(ErpKind::as_str)));
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// What the fault knobs decided for one request.
pub(crate) enum Gate {
    Proceed { drop_after_commit: bool },
    Respond(Response),
}

/// Apply latency, 429 and 5xx knobs. `creating` requests may be chosen to be dropped after
/// commit.
pub(crate) async fn gate(s: &Shared, creating: bool, erp: ErpKind) -> Gate {
    enum Decision {
        RateLimit(u64),
        Fail,
        Go(bool),
    }
    let (latency, decision) = {
        let (Ok(mut f), Ok(mut st)) = (s.faults.lock(), s.fault_state.lock()) else {
            return Gate::Respond(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let d = if f.unavailable {
            Decision::Fail
        } else if let Some(wait) = take_token(&f, &mut st) {
            f.rate_limited = f.rate_limited.saturating_add(1);
            Decision::RateLimit(wait)
        } else if f.rate_limit > 0 {
            f.rate_limit -= 1;
            Decision::RateLimit(f.retry_after_secs)
        } else if f.fail_before_commit > 0 {
            f.fail_before_commit -= 1;
            Decision::Fail
        } else if creating && f.drop_after_commit > 0 {
            f.drop_after_commit -= 1;
            f.dropped = f.dropped.saturating_add(1);
            Decision::Go(true)
        } else if creating && f.drop_after_commit_percent > 0 {
            st.drop_credit += u32::from(f.drop_after_commit_percent.min(100));
            let drop = st.drop_credit >= 100;
            if drop {
                st.drop_credit -= 100;
                f.dropped = f.dropped.saturating_add(1);
            }
            Decision::Go(drop)
        } else {
            Decision::Go(false)
        };
        (f.latency_ms, d)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match decision {
        Decision::Go(drop_after_commit) => Gate::Proceed { drop_after_commit },
        Decision::RateLimit(retry_after) => {
            let mut resp = dialects::error(
                erp,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            );
            if let Ok(v) = retry_after.to_string().parse() {
                resp.headers_mut().insert("Retry-After", v);
            }
            Gate::Respond(resp)
        }
        Decision::Fail => Gate::Respond(dialects::error(
            erp,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is temporarily unavailable.",
        )),
    }
}

/// The token bucket of [`Faults::rate_limit_rps`]: `None` when a token was taken (or there is
/// no limit), else the whole seconds until one is free (at least 1) for `Retry-After`.
fn take_token(f: &Faults, st: &mut FaultState) -> Option<u64> {
    if f.rate_limit_rps == 0 {
        return None;
    }
    let rps = u64::from(f.rate_limit_rps);
    let capacity = rps * 1000;
    let now = std::time::Instant::now();
    let (then, held) = st.bucket.unwrap_or((now, capacity));
    let elapsed_ms = u64::try_from(now.duration_since(then).as_millis()).unwrap_or(u64::MAX);
    let tokens = held
        .saturating_add(elapsed_ms.saturating_mul(rps))
        .min(capacity);
    if tokens >= 1000 {
        st.bucket = Some((now, tokens - 1000));
        None
    } else {
        st.bucket = Some((now, tokens));
        Some(((1000 - tokens) / rps).div_ceil(1000).max(1))
    }
}

/// The validation error of [`Faults::reject_references`] for a creating request whose body
/// holds one of them, if any.
pub(crate) fn refused_reference(s: &Shared, erp: ErpKind, body: &[u8]) -> Option<Response> {
    let mut f = s.faults.lock().ok()?;
    if f.reject_references.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let hit = f
        .reject_references
        .iter()
        .find(|r| text.contains(r.as_str()))?
        .clone();
    f.rejected = f.rejected.saturating_add(1);
    let (status, code) = match erp {
        ErpKind::SagePro => (StatusCode::UNPROCESSABLE_ENTITY, "customer_not_found"),
        ErpKind::Epicor | ErpKind::Sage500 => (StatusCode::BAD_REQUEST, "validation"),
    };
    Some(dialects::error(
        erp,
        status,
        code,
        &format!("Document {hit} refused: the customer does not exist (sandbox fault)"),
    ))
}

/// A response whose body fails immediately: the server closes the connection without a
/// complete answer, so the client sees a transport error although the document is committed.
pub(crate) fn dropped_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: response dropped after commit",
        ))
    });
    Response::new(Body::from_stream(stream))
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
