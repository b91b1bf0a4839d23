//! The recorder of `erp check --write`: a reverse proxy on 127.0.0.1 between the connector and
//! the ERP. The connector's base URL points at it; it forwards every request unchanged to the
//! ERP, answers with the ERP's response, and keeps both redacted
//! (`ledgerbridge_erp::check::recording`). Credentials pass through in memory only.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ledgerbridge_erp::check::recording::{
    redact_body, redact_headers, redact_query, Exchange, RecordedHttpRequest, RecordedHttpResponse,
};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Largest body forwarded (ERP answers of one document are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct Upstream {
    origin: String,
    http: reqwest::Client,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

/// A running recorder.
pub struct Recorder {
    /// The proxy's address with the ERP's base path: the connector's new base URL.
    pub base_url: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Start a recorder in front of `upstream_base` (the ERP's base URL).
    pub async fn start(upstream_base: &str) -> Result<Recorder, std::io::Error> {
        let trimmed = upstream_base.trim_end_matches('/');
        let path = ledgerbridge_erp::check::recording::base_path(trimmed);
        let origin = trimmed
            .strip_suffix(path.as_str())
            .unwrap_or(trimmed)
            .to_owned();
        let http = reqwest::Client::builder()
            .build()
            .map_err(std::io::Error::other)?;
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(forward).with_state(Upstream {
            origin,
            http,
            exchanges: exchanges.clone(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                rx.await.ok();
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "recorder stopped");
            }
        });
        Ok(Recorder {
            base_url: format!("http://{addr}{path}"),
            exchanges,
            stop: Some(tx),
            task,
        })
    }

    /// Stop and hand over what was recorded, in the order sent.
    pub async fn finish(mut self) -> Vec<Exchange> {
        if let Some(tx) = self.stop.take() {
            tx.send(()).ok();
        }
        (&mut self.task).await.ok();
        self.exchanges
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let url = match &query {
        Some(q) => format!("{}{path}?{q}", up.origin),
        None => format!("{}{path}", up.origin),
    };
    let Ok(method) = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) else {
        return (StatusCode::METHOD_NOT_ALLOWED, "method").into_response();
    };
    let mut out = up.http.request(method, &url);
    for (name, value) in &parts.headers {
        if name == "host" || name == "content-length" {
            continue;
        }
        out = out.header(name.as_str(), value.as_bytes());
    }
    let request_headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let recorded_request = RecordedHttpRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: query.as_deref().map(redact_query),
        headers: redact_headers(
            request_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        ),
        body: redact_body(&body),
    };
    let answer = match out.body(body.to_vec()).send().await {
        Ok(a) => a,
        Err(e) => {
            // The connector sees a transport failure, as it would without the recorder.
            tracing::warn!(error = %e, "ERP unreachable through the recorder");
            return (StatusCode::BAD_GATEWAY, "ERP unreachable").into_response();
        }
    };
    let status = answer.status().as_u16();
    let response_headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let Ok(bytes) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "ERP answer unreadable").into_response();
    };
    if let Ok(mut ex) = up.exchanges.lock() {
        let seq = ex.len() as u64 + 1;
        ex.push(Exchange {
            seq,
            request: recorded_request,
            response: RecordedHttpResponse {
                status,
                headers: redact_headers(
                    response_headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str())),
                ),
                body: redact_body(&bytes),
            },
        });
    }
    let mut resp = Response::new(Body::from(bytes.to_vec()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (n, v) in &response_headers {
        if n == "content-type" || n == "retry-after" {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    resp
}
