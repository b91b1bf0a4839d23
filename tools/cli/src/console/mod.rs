//! The operator console: a web page over the pipeline's state (records, parked work,
//! payouts, health, audit), served by `ledgerbridge local` and `serve` (`--console ADDR`) or on
//! its own beside them (`ledgerbridge console --data-dir DIR`), or over the AWS deployment
//! (`ledgerbridge console --stack NAME`, [`aws`]). Plain server-rendered HTML,
//! no scripts, nothing fetched from the internet. It binds to loopback unless told otherwise
//! and then requires a token (`LEDGERBRIDGE_CONSOLE_TOKEN`): sent as `Authorization: Bearer`,
//! or once as `/login?token=…`, which sets a same-site cookie. Every form carries a per-process
//! nonce, so another site cannot post to it. Every replay is audited.

pub mod assemble;
pub mod aws;
pub mod embedded;
mod html;
pub mod ledger;
pub mod model;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use ledgerbridge_core::secrets::Secret;
use model::{ConsoleError, ReadModel};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The environment variable holding the console's token.
pub const TOKEN_VAR: &str = "CONSOLE_TOKEN";

/// `--console` for `local` and `serve`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConsoleArgs {
    /// Serve the operator console on this address (e.g. 127.0.0.1:8788). Off when not given.
    /// An address other than loopback needs `LEDGERBRIDGE_CONSOLE_TOKEN`.
    #[arg(long)]
    pub console: Option<SocketAddr>,
}

/// `ledgerbridge console`: the console on its own, over a data directory.
#[derive(clap::Args, Clone, Debug)]
pub struct ConsoleCmdArgs {
    /// The data directory of `ledgerbridge local` or `serve`.
    #[arg(long, default_value = ".local")]
    pub data_dir: PathBuf,
    /// Address to serve on; an address other than loopback needs `LEDGERBRIDGE_CONSOLE_TOKEN`.
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub listen: SocketAddr,
    /// Reconciliation configuration (TOML): names the bank, fee and variance accounts of the
    /// payout view; the shipped example when not given.
    #[arg(long)]
    pub reconciliation: Option<PathBuf>,
    /// The AWS deployment instead of a data directory (`--stack NAME` or `--stack-outputs
    /// FILE`), read with the caller's AWS credentials.
    #[command(flatten)]
    pub stack: crate::parked_aws::StackArgs,
    /// ERP settings (JSON, as for `serve`): the payout view then reads each journal's posting
    /// state in the ERP (this machine must reach the ERP); without them it says "not read".
    #[arg(long)]
    pub erp_settings: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeConsoleError {
    #[error(transparent)]
    Console(#[from] ConsoleError),
    #[error("the console on {0} is not on loopback: set LEDGERBRIDGE_CONSOLE_TOKEN")]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reconciliation configuration: {0}")]
    Reconciliation(#[from] ledgerbridge_recon::service::config::ReconFileError),
}

struct App<M> {
    model: M,
    token: Option<Secret<String>>,
    csrf: String,
}

/// The reconciliation mapping from a TOML text (the bank, fee and variance accounts).
pub fn recon_mapping(
    toml: &str,
) -> Result<ledgerbridge_recon::ReconMapping, ledgerbridge_recon::service::config::ReconFileError> {
    Ok(ledgerbridge_recon::service::config::ReconFile::from_toml(toml)?.mapping)
}

/// Start serving the console on `addr`; returns the bound address.
pub async fn spawn<M: ReadModel>(
    model: M,
    addr: SocketAddr,
) -> Result<SocketAddr, ServeConsoleError> {
    let token = ledgerbridge_core::config::Env::from_process()
        .optional(TOKEN_VAR)
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret::new(t.trim().to_owned()));
    check_bind(addr, token.as_ref())?;
    let app = Arc::new(App {
        model,
        token,
        csrf: uuid::Uuid::new_v4().simple().to_string(),
    });
    let router = router(app);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeConsoleError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeConsoleError::Listen { addr, source })?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "Console server stopped");
        }
    });
    Ok(bound)
}

/// Loopback, or a token.
fn check_bind(addr: SocketAddr, token: Option<&Secret<String>>) -> Result<(), ServeConsoleError> {
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(ServeConsoleError::TokenRequired(addr));
    }
    Ok(())
}

/// Start the console of a running `local` or `serve` over its data directory; given the
/// process's ERP connector, the payout pages read each journal's state in the ERP's ledger.
pub async fn start_for(
    args: &ConsoleArgs,
    data_dir: &std::path::Path,
    reconciliation_toml: &str,
    erp: Option<ledgerbridge_erp::AnyConnector>,
) -> Result<Option<SocketAddr>, ServeConsoleError> {
    let Some(addr) = args.console else {
        return Ok(None);
    };
    let mut model = embedded::Embedded::open(data_dir, Some(recon_mapping(reconciliation_toml)?))?;
    if let Some(erp) = erp {
        model = model.with_erp(erp);
    }
    let bound = spawn(model, addr).await?;
    Ok(Some(bound))
}

/// The ERP connector of an ERP settings file.
fn erp_connector(
    path: &std::path::Path,
) -> Result<ledgerbridge_erp::AnyConnector, ServeConsoleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConsoleError::Config(format!("cannot read {}: {e}", path.display())))?;
    let settings = ledgerbridge_erp::ErpSettings::from_json(&Secret::new(text))
        .map_err(|e| ConsoleError::Config(format!("ERP settings {}: {e}", path.display())))?;
    ledgerbridge_erp::AnyConnector::from_settings(settings)
        .map_err(|e| ConsoleError::Config(format!("ERP settings {}: {e}", path.display())).into())
}

/// `ledgerbridge console`.
pub async fn run(args: ConsoleCmdArgs) -> Result<(), ServeConsoleError> {
    let toml = match &args.reconciliation {
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            ledgerbridge_recon::service::config::ReconFileError(format!(
                "cannot read {}: {e}",
                p.display()
            ))
        })?,
        None => ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
    };
    let mapping = recon_mapping(&toml)?;
    let erp = match &args.erp_settings {
        Some(path) => Some(erp_connector(path)?),
        None => None,
    };
    match args.stack.connect().await? {
        Some((sdk, stack)) => {
            let table = stack.state_table.clone().unwrap_or_default();
            let mut model = aws::AwsConsole::new(&sdk, stack, Some(mapping))?;
            if let Some(erp) = erp {
                model = model.with_erp(erp);
            }
            let bound = spawn(model, args.listen).await?;
            println!("ledgerbridge console on http://{bound}/ (stack table: {table})");
        }
        None => {
            let mut model = embedded::Embedded::open(&args.data_dir, Some(mapping))?;
            if let Some(erp) = erp {
                model = model.with_erp(erp);
            }
            let bound = spawn(model, args.listen).await?;
            println!(
                "ledgerbridge console on http://{bound}/ (data: {})",
                args.data_dir.display()
            );
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    Ok(())
}

fn router<M: ReadModel>(app: Arc<App<M>>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/records") }))
        .route("/login", get(login::<M>))
        .route("/records", get(records::<M>))
        .route("/records/{id}", get(record::<M>))
        .route("/parked", get(parked::<M>))
        .route("/parked/item", get(parked_item::<M>))
        .route("/parked/replay", post(replay::<M>))
        .route("/parked/replay-group", post(replay_group::<M>))
        .route("/payouts", get(payouts::<M>))
        .route("/payouts/{key}", get(payout::<M>))
        .route("/payouts/{key}/{file}", get(payout_csv::<M>))
        .route("/health", get(health::<M>))
        .route("/audit", get(audit::<M>))
        .with_state(app)
}

type Q = Query<Vec<(String, String)>>;

fn q<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Constant-time comparison of the presented token.
fn token_ok(expected: &Secret<String>, presented: &str) -> bool {
    let a = expected.expose().as_bytes();
    let b = presented.as_bytes();
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorised<M>(app: &App<M>, headers: &HeaderMap) -> bool {
    let Some(token) = &app.token else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .map(str::trim)
                .find_map(|c| c.strip_prefix("lb_console="))
        });
    [bearer, cookie]
        .into_iter()
        .flatten()
        .any(|p| token_ok(token, p))
}

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn denied() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "a token is required: open /login?token=… or send Authorization: Bearer …",
    )
        .into_response()
}

fn failed(e: &ConsoleError) -> Response {
    tracing::error!(error = %e, "Console page failed");
    let status = match e {
        ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
        ConsoleError::NotReplayable(..) | ConsoleError::InvalidEdit { .. } => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        html(html::page(
            "Error",
            "",
            &format!("<p class=\"reason\">{}</p>", html::esc(&e.to_string())),
        )),
    )
        .into_response()
}

macro_rules! guard {
    ($app:expr, $headers:expr) => {
        if !authorised(&$app, &$headers) {
            return denied();
        }
    };
}

async fn login<M: ReadModel>(State(app): State<Arc<App<M>>>, Query(query): Q) -> Response {
    match (&app.token, q(&query, "token")) {
        (Some(t), Some(p)) if token_ok(t, p) => (
            [(
                header::SET_COOKIE,
                format!("lb_console={p}; HttpOnly; SameSite=Strict; Path=/"),
            )],
            Redirect::to("/records"),
        )
            .into_response(),
        (None, _) => Redirect::to("/records").into_response(),
        _ => denied(),
    }
}

async fn records<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    guard!(app, headers);
    let filter = html::RecordFilter::from_query(&query);
    match (app.model.records().await, app.model.ignored().await) {
        (Ok(r), Ok(i)) => html(html::records(&r, &i, &filter)),
        (Err(e), _) | (_, Err(e)) => failed(&e),
    }
}

async fn record<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(app, headers);
    match app.model.records().await {
        Ok(all) => match all.iter().find(|r| r.stripe_id == id) {
            Some(r) => html(html::record(r)),
            None => failed(&ConsoleError::NotFound(id)),
        },
        Err(e) => failed(&e),
    }
}

async fn parked<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    guard!(app, headers);
    match app.model.parked().await {
        Ok(p) => html(html::parked(&p, &app.csrf, q(&query, "notice"))),
        Err(e) => failed(&e),
    }
}

fn who(headers: &HeaderMap, fields: &[(String, String)]) -> String {
    let operator = q(fields, "operator").filter(|s| !s.trim().is_empty());
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|a| a.split_whitespace().next().unwrap_or(a).to_owned())
        .unwrap_or_default();
    match operator {
        Some(o) => format!("console: {o}"),
        None => format!("console ({agent})"),
    }
}

async fn parked_item<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    guard!(app, headers);
    let id = q(&query, "id").unwrap_or("").to_owned();
    match app.model.parked().await {
        Ok(all) => match all.iter().find(|p| p.id == id) {
            Some(p) => {
                if let Err(e) = app
                    .model
                    .audit(&who(&headers, &[]), "view message", &id)
                    .await
                {
                    return failed(&e);
                }
                html(html::parked_item(p, &app.csrf))
            }
            None => failed(&ConsoleError::NotFound(id)),
        },
        Err(e) => failed(&e),
    }
}

fn form(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn back(notice: &str) -> Response {
    Redirect::to(&format!("/parked?notice={}", html::enc(notice))).into_response()
}

async fn replay<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(app, headers);
    let fields = form(&body);
    if q(&fields, "csrf") != Some(app.csrf.as_str()) {
        return (StatusCode::FORBIDDEN, "stale or foreign form").into_response();
    }
    let id = q(&fields, "id").unwrap_or("").to_owned();
    let edited = q(&fields, "body").map(str::to_owned);
    match app.model.replay(&id, edited, &who(&headers, &fields)).await {
        Ok(r) => back(&format!(
            "{} sent back to the {} queue{}",
            r.id,
            r.queue,
            if r.edited { " (edited)" } else { "" }
        )),
        Err(e) => failed(&e),
    }
}

async fn replay_group<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(app, headers);
    let fields = form(&body);
    if q(&fields, "csrf") != Some(app.csrf.as_str()) {
        return (StatusCode::FORBIDDEN, "stale or foreign form").into_response();
    }
    let group = q(&fields, "group").unwrap_or("").to_owned();
    let items = match app.model.parked().await {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let who = who(&headers, &fields);
    let (mut sent, mut errors) = (0, Vec::new());
    for p in items
        .iter()
        .filter(|p| p.group == group && p.target.is_some())
    {
        match app.model.replay(&p.id, None, &who).await {
            Ok(_) => sent += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    back(&format!(
        "{sent} message(s) of \"{group}\" sent back{}",
        if errors.is_empty() {
            String::new()
        } else {
            format!("; {} failed: {}", errors.len(), errors.join("; "))
        }
    ))
}

async fn payouts<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    guard!(app, headers);
    match (app.model.payouts().await, app.model.daily().await) {
        (Ok(p), Ok(d)) => html(html::payouts(&p, &d, q(&query, "by") == Some("week"))),
        (Err(e), _) | (_, Err(e)) => failed(&e),
    }
}

async fn payout<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    guard!(app, headers);
    match app.model.payouts().await {
        Ok(all) => match all.iter().find(|p| p.report_key == key || p.payout == key) {
            Some(p) => html(html::payout(p)),
            None => failed(&ConsoleError::NotFound(key)),
        },
        Err(e) => failed(&e),
    }
}

async fn payout_csv<M: ReadModel>(
    State(app): State<Arc<App<M>>>,
    headers: HeaderMap,
    Path((key, file)): Path<(String, String)>,
) -> Response {
    guard!(app, headers);
    let all = match app.model.payouts().await {
        Ok(a) => a,
        Err(e) => return failed(&e),
    };
    let Some(p) = all.iter().find(|p| p.report_key == key || p.payout == key) else {
        return failed(&ConsoleError::NotFound(key));
    };
    let text = match file.as_str() {
        "lines.csv" => html::lines_csv(p),
        "discrepancies.csv" => p.csv.clone(),
        _ => return failed(&ConsoleError::NotFound(file)),
    };
    if let Err(e) = app
        .model
        .audit(&who(&headers, &[]), "export", &format!("{key}/{file}"))
        .await
    {
        return failed(&e);
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-{file}\"", p.payout),
            ),
        ],
        text,
    )
        .into_response()
}

async fn health<M: ReadModel>(State(app): State<Arc<App<M>>>, headers: HeaderMap) -> Response {
    guard!(app, headers);
    match app.model.health().await {
        Ok(h) => html(html::health(&h)),
        Err(e) => failed(&e),
    }
}

async fn audit<M: ReadModel>(State(app): State<Arc<App<M>>>, headers: HeaderMap) -> Response {
    guard!(app, headers);
    match app.model.audit_log().await {
        Ok(a) => html(html::audit(&a)),
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn app(token: Option<&str>) -> App<()> {
        App {
            model: (),
            token: token.map(|t| Secret::new(t.to_owned())),
            csrf: "n".into(),
        }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_a_token_loopback_is_open_and_with_one_only_the_token_passes() {
        assert!(authorised(&app(None), &HeaderMap::new()));
        let a = app(Some("s3cret"));
        assert!(!authorised(&a, &HeaderMap::new()));
        assert!(authorised(
            &a,
            &headers(&[(header::AUTHORIZATION, "Bearer s3cret")])
        ));
        assert!(!authorised(
            &a,
            &headers(&[(header::AUTHORIZATION, "Bearer s3cre")])
        ));
        assert!(authorised(
            &a,
            &headers(&[(header::COOKIE, "x=1; lb_console=s3cret")])
        ));
        assert!(!authorised(
            &a,
            &headers(&[(header::COOKIE, "lb_console=wrong")])
        ));
    }

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ConsoleCmdArgs,
    }

    #[test]
    fn the_console_takes_a_stack_by_name_or_by_its_saved_outputs_not_both() {
        use clap::Parser;
        let c = Cmd::try_parse_from(["console", "--stack", "prod", "--region", "eu-west-1"])
            .unwrap()
            .args;
        assert_eq!(c.stack.stack.as_deref(), Some("prod"));
        assert_eq!(c.stack.region.as_deref(), Some("eu-west-1"));
        assert!(c.erp_settings.is_none());
        let c = Cmd::try_parse_from(["console", "--stack-outputs", "out.json"])
            .unwrap()
            .args;
        assert!(c.stack.stack.is_none() && c.stack.stack_outputs.is_some());
        assert!(Cmd::try_parse_from(["console", "--stack", "a", "--stack-outputs", "b"]).is_err());
        // Without either, the data directory.
        let c = Cmd::try_parse_from(["console"]).unwrap().args;
        assert!(c.stack.stack.is_none() && c.stack.stack_outputs.is_none());
    }

    #[test]
    fn a_console_off_loopback_needs_a_token() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = check_bind(addr, None).unwrap_err();
        assert!(matches!(err, ServeConsoleError::TokenRequired(_)));
        assert!(check_bind("127.0.0.1:0".parse().unwrap(), None).is_ok());
        assert!(check_bind(addr, Some(&Secret::new("t".to_owned()))).is_ok());
    }
}
