//! The HTTP API's two routes on one function, dispatched on the request path:
//!
//! * `POST /webhook`: Stripe webhooks ([`crate::handle_webhook`], `Stripe-Signature`);
//! * `POST /erp/customers`: ERP-side customer changes (`erp_customer_changed.v1`, verified with
//!   their own signing secrets in `X-Ledgerbridge-Signature`, queued on the ERP events queue for
//!   the erp-sync function; see `ledgerbridge_pipeline::to_stripe::sync::handle_erp_event`).
//!
//! The ERP route is optional: without its settings it answers `404` and the Stripe route works
//! as before.

use crate::{handle_webhook, to_http, Deps, RotatingVerifier};
use ledgerbridge_core::config::{ConfigError, Env, SecretLocation, PREFIX};
use ledgerbridge_core::ports::{EventQueue, IdempotencyStore};
use ledgerbridge_core::telemetry::IntakeFailed;
use ledgerbridge_core::Clock;
use ledgerbridge_pipeline::to_stripe::sync::{handle_erp_event, SIGNATURE_HEADER};

/// Path of the ERP events route.
pub const ERP_CUSTOMERS_PATH: &str = "/erp/customers";

/// Environment variable of the ERP signing secrets in local mode (comma-separated or a JSON
/// array), used when no Secrets Manager id is configured.
pub const ERP_SECRETS_ENV: &str = "LEDGERBRIDGE_ERP_EVENT_SECRETS";

/// Which handler a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    StripeWebhook,
    ErpCustomers,
}

/// The route of a request: from API Gateway's route key (`POST /erp/customers`) when there is
/// one, else from the path (without stage prefix). Everything that is not the ERP path is the
/// Stripe webhook, as before the ERP route existed (API Gateway only forwards the two routes).
pub fn route(route_key: Option<&str>, path: &str) -> Route {
    let from_key = route_key
        .and_then(|k| k.split_once(' '))
        .map(|(_, p)| p.trim());
    let p = from_key.unwrap_or(path);
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    if p == ERP_CUSTOMERS_PATH {
        Route::ErpCustomers
    } else {
        Route::StripeWebhook
    }
}

/// Settings of the ERP route (`None` from [`ErpRouteConfig::from_env`] when not configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpRouteConfig {
    /// `LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL`: where accepted ERP events go.
    pub queue_url: String,
    /// `LEDGERBRIDGE_ERP_EVENT_SECRET_ID` (Secrets Manager), or `LEDGERBRIDGE_ERP_EVENT_SECRETS`
    /// (local mode).
    pub secrets: SecretLocation,
}

impl ErpRouteConfig {
    /// Both the queue and the secrets, or neither (the route is then off). One without the other
    /// is a configuration error.
    pub fn from_env(mut env: Env) -> Result<Option<Self>, ConfigError> {
        let queue_url = env.optional("ERP_EVENTS_QUEUE_URL");
        let secrets = match env.optional("ERP_EVENT_SECRET_ID") {
            Some(id) => Some(SecretLocation::SecretsManager(id)),
            None if env.optional("ERP_EVENT_SECRETS").is_some() => {
                Some(SecretLocation::Environment)
            }
            None => None,
        };
        let cfg = match (queue_url, secrets) {
            (Some(queue_url), Some(secrets)) => Some(ErpRouteConfig { queue_url, secrets }),
            (None, None) => None,
            (Some(_), None) => {
                env.problem(format!(
                    "{PREFIX}ERP_EVENT_SECRET_ID (Secrets Manager id of the ERP event signing secrets) or {PREFIX}ERP_EVENT_SECRETS (local mode) must be set when {PREFIX}ERP_EVENTS_QUEUE_URL is"
                ));
                None
            }
            (None, Some(_)) => {
                env.problem(format!(
                    "{PREFIX}ERP_EVENTS_QUEUE_URL is missing (the ERP route has signing secrets but no queue)"
                ));
                None
            }
        };
        env.finish(cfg)
    }
}

/// The ERP events route: its own signing secrets (several accepted while one is rolled) and its
/// own queue.
pub struct ErpRoute<Q> {
    pub queue: Q,
    pub verifier: RotatingVerifier,
}

/// Both routes, built once per container.
pub struct App<Q, S, C> {
    /// The Stripe webhook route (its queue, idempotency store, secrets and clock).
    pub intake: Deps<Q, S, C>,
    /// The ERP route; `None` answers `404`.
    pub erp: Option<ErpRoute<Q>>,
}

/// An answer of either route, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

const NOT_FOUND: &str = r#"{"error":"not found"}"#;

/// Handle one ERP event (`X-Ledgerbridge-Signature` and the exact body bytes).
pub async fn handle_erp<Q, C>(
    route: Option<&ErpRoute<Q>>,
    clock: &C,
    signature: Option<&str>,
    body: &[u8],
) -> Answer
where
    Q: EventQueue,
    C: Clock,
{
    let Some(route) = route else {
        return Answer {
            status: 404,
            body: NOT_FOUND.to_owned(),
        };
    };
    let verifier = match route.verifier.verifier().await {
        Ok(v) => v,
        Err(e) => {
            IntakeFailed {
                event_id: "-",
                stage: "load_erp_secrets",
                error: &e,
            }
            .emit();
            return Answer {
                status: 500,
                body: String::new(),
            };
        }
    };
    let out = handle_erp_event(&verifier, &route.queue, signature, body, clock.now_secs()).await;
    Answer {
        status: out.status,
        body: out.body,
    }
}

/// API Gateway HTTP API (payload v2) entry of both routes.
pub async fn handle_request<Q, S, C>(
    app: &App<Q, S, C>,
    req: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, std::convert::Infallible>
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt as _;
    let route_key = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
        _ => None,
    };
    let raw = req.raw_http_path();
    let path = if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    };
    match route(route_key.as_deref(), &path) {
        Route::StripeWebhook => {
            let signature = req
                .headers()
                .get("stripe-signature")
                .and_then(|v| v.to_str().ok());
            let out = handle_webhook(&app.intake, signature, req.body().as_ref()).await;
            Ok(to_http(out))
        }
        Route::ErpCustomers => {
            let signature = req
                .headers()
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok());
            let out = handle_erp(
                app.erp.as_ref(),
                &app.intake.clock,
                signature,
                req.body().as_ref(),
            )
            .await;
            Ok(answer_to_http(out))
        }
    }
}

fn answer_to_http(out: Answer) -> lambda_http::Response<lambda_http::Body> {
    let json = !out.body.is_empty();
    let mut resp = lambda_http::Response::new(lambda_http::Body::from(out.body));
    *resp.status_mut() = lambda_http::http::StatusCode::from_u16(out.status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    if json {
        resp.headers_mut().insert(
            lambda_http::http::header::CONTENT_TYPE,
            lambda_http::http::HeaderValue::from_static("application/json"),
        );
    }
    resp
}

/// Construction on AWS (SQS, DynamoDB, Secrets Manager), shared by `main` and the tests that run
/// against the deployed template.
#[cfg(feature = "aws")]
pub mod aws {
    use super::{App, ErpRoute, ErpRouteConfig, ERP_SECRETS_ENV};
    use crate::{Deps, RotatingVerifier, SecretsBackend};
    use ledgerbridge_adapters::aws::{DynamoStore, SecretsManagerSource, SqsQueue};
    use ledgerbridge_core::config::{IntakeConfig, SecretLocation};
    use ledgerbridge_core::secrets::{CachedSecrets, EnvSecrets};
    use ledgerbridge_core::Clock;

    /// Where one route's signing secrets come from.
    pub fn secrets_backend(
        sdk: &aws_config::SdkConfig,
        location: &SecretLocation,
        env_var: &str,
        ttl: std::time::Duration,
    ) -> SecretsBackend {
        match location {
            SecretLocation::SecretsManager(id) => SecretsBackend::Aws(
                CachedSecrets::new(
                    SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk)),
                    ttl,
                ),
                id.clone(),
            ),
            SecretLocation::Environment => SecretsBackend::Env(
                CachedSecrets::new(EnvSecrets::from_process_env(), ttl),
                env_var.to_owned(),
            ),
        }
    }

    /// Both routes from their configuration.
    pub fn build<C: Clock>(
        sdk: &aws_config::SdkConfig,
        cfg: &IntakeConfig,
        erp: Option<&ErpRouteConfig>,
        clock: C,
    ) -> App<SqsQueue, DynamoStore, C> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let intake = Deps::new(
            SqsQueue::new(sqs.clone(), &cfg.queue_url, cfg.max_message_bytes),
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &cfg.state_table),
            RotatingVerifier::new(
                secrets_backend(
                    sdk,
                    &cfg.webhook_secrets,
                    "LEDGERBRIDGE_WEBHOOK_SECRETS",
                    cfg.secret_ttl,
                ),
                cfg.tolerance_secs,
            ),
            clock,
            cfg,
        );
        let erp = erp.map(|e| ErpRoute {
            queue: SqsQueue::new(sqs.clone(), &e.queue_url, cfg.max_message_bytes),
            verifier: RotatingVerifier::new(
                secrets_backend(sdk, &e.secrets, ERP_SECRETS_ENV, cfg.secret_ttl),
                cfg.tolerance_secs,
            ),
        });
        App { intake, erp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteStore};
    use ledgerbridge_core::config::IntakeConfig;
    use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
    use ledgerbridge_core::webhook::sign_header;
    use ledgerbridge_core::FixedClock;

    const NOW: i64 = 1_786_000_000;
    const STRIPE_SECRET: &str = "whsec_routes_test";
    const ERP_SECRET: &str = "lbsec_routes_test";

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn dispatch_on_route_key_and_path() {
        assert_eq!(
            route(Some("POST /erp/customers"), "/x"),
            Route::ErpCustomers
        );
        assert_eq!(
            route(Some("POST /webhook"), "/erp/customers"),
            Route::StripeWebhook
        );
        assert_eq!(
            route(Some("$default"), "/erp/customers"),
            Route::ErpCustomers
        );
        assert_eq!(route(None, "/erp/customers"), Route::ErpCustomers);
        assert_eq!(route(None, "/erp/customers/"), Route::ErpCustomers);
        assert_eq!(route(None, "/webhook"), Route::StripeWebhook);
        assert_eq!(route(None, "/"), Route::StripeWebhook);
        assert_eq!(route(None, ""), Route::StripeWebhook);
        assert_eq!(route(None, "/erp/customers/x"), Route::StripeWebhook);
        assert_eq!(route(None, "/erp"), Route::StripeWebhook);
    }

    #[test]
    fn erp_route_config_is_both_or_neither() {
        assert_eq!(ErpRouteConfig::from_env(env(&[])).unwrap(), None);
        let cfg = ErpRouteConfig::from_env(env(&[
            ("LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL", "http://q"),
            ("LEDGERBRIDGE_ERP_EVENT_SECRET_ID", "arn:erp"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            cfg.secrets,
            SecretLocation::SecretsManager("arn:erp".into())
        );
        let local = ErpRouteConfig::from_env(env(&[
            ("LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL", "http://q"),
            ("LEDGERBRIDGE_ERP_EVENT_SECRETS", "a,b"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(local.secrets, SecretLocation::Environment);
        let err =
            ErpRouteConfig::from_env(env(&[("LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL", "http://q")]))
                .unwrap_err();
        assert!(err.to_string().contains("ERP_EVENT_SECRET_ID"), "{err}");
        let err = ErpRouteConfig::from_env(env(&[("LEDGERBRIDGE_ERP_EVENT_SECRET_ID", "arn:erp")]))
            .unwrap_err();
        assert!(err.to_string().contains("ERP_EVENTS_QUEUE_URL"), "{err}");
    }

    fn intake_cfg() -> IntakeConfig {
        crate::config_from_env(env(&[
            ("LEDGERBRIDGE_EVENTS_QUEUE_URL", "memory"),
            ("LEDGERBRIDGE_STATE_TABLE", "memory"),
            ("LEDGERBRIDGE_WEBHOOK_SECRETS", STRIPE_SECRET),
        ]))
        .unwrap()
    }

    /// The app with in-memory adapters; `erp_secrets` None leaves the ERP route off.
    fn app(
        erp_secrets: Option<&[&str]>,
    ) -> (
        App<MemoryQueue, SqliteStore, FixedClock>,
        MemoryQueue,
        MemoryQueue,
    ) {
        let events = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
        let erp_events = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
        let intake = Deps::new(
            events.clone(),
            SqliteStore::in_memory().unwrap(),
            RotatingVerifier::fixed(&[STRIPE_SECRET]),
            FixedClock::at_secs(NOW),
            &intake_cfg(),
        );
        let erp = erp_secrets.map(|s| ErpRoute {
            queue: erp_events.clone(),
            verifier: RotatingVerifier::fixed(s),
        });
        (App { intake, erp }, events, erp_events)
    }

    fn request(path: &str, header: (&str, &str), body: &[u8]) -> lambda_http::Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": format!("POST {path}"),
            "rawPath": path,
            "rawQueryString": "",
            "headers": {header.0: header.1, "content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "x", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "test"}, "requestId": "r", "routeKey": format!("POST {path}"),
                "stage": "$default", "time": "24/Nov/2026:12:00:00 +0000", "timeEpoch": 1_785_000_000_000i64
            },
            "body": String::from_utf8_lossy(body),
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    fn erp_change() -> Vec<u8> {
        serde_json::json!({
            "type": "erp_customer_changed.v1", "erp": "epicor", "customer_code": "C042",
            "name": "Northwind Traders", "changed_at": NOW - 5
        })
        .to_string()
        .into_bytes()
    }

    fn stripe_event() -> Vec<u8> {
        serde_json::json!({
            "id": "evt_routes_1", "object": "event", "type": "customer.created", "created": NOW - 5,
            "livemode": false, "api_version": "2024-06-20",
            "data": {"object": {"id": "cus_routes_1", "object": "customer"}}
        })
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn erp_path_goes_to_the_erp_queue_and_webhook_path_to_the_events_queue() {
        let (app, events, erp_events) = app(Some(&["lbsec_new", ERP_SECRET]));
        let body = erp_change();
        let header = sign_header(&[ERP_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request(ERP_CUSTOMERS_PATH, (SIGNATURE_HEADER, &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(erp_events.try_receive(100).len(), 1);
        assert!(events.is_empty());

        let body = stripe_event();
        let header = sign_header(&[STRIPE_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request("/webhook", ("stripe-signature", &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(events.try_receive(100).len(), 1);
        assert!(erp_events.is_empty());
    }

    #[tokio::test]
    async fn each_route_accepts_only_its_own_secret() {
        let (app, events, erp_events) = app(Some(&[ERP_SECRET]));
        // An ERP event signed with the Stripe secret, and a Stripe event signed with the ERP one.
        let body = erp_change();
        let header = sign_header(&[STRIPE_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request(ERP_CUSTOMERS_PATH, (SIGNATURE_HEADER, &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 400);
        let body = stripe_event();
        let header = sign_header(&[ERP_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request("/webhook", ("stripe-signature", &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(events.is_empty() && erp_events.is_empty());
    }

    #[tokio::test]
    async fn erp_route_with_the_placeholder_secret_refuses_everything() {
        // The template creates the secret as `[]`: no call is queued until it is set.
        let (app, _, erp_events) = app(Some(&[]));
        let body = erp_change();
        let header = sign_header(&[ERP_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request(ERP_CUSTOMERS_PATH, (SIGNATURE_HEADER, &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 500);
        assert!(erp_events.is_empty());
    }

    #[tokio::test]
    async fn erp_path_is_not_found_when_the_route_is_off() {
        let (app, events, erp_events) = app(None);
        let body = erp_change();
        let header = sign_header(&[ERP_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request(ERP_CUSTOMERS_PATH, (SIGNATURE_HEADER, &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 404);
        assert!(erp_events.is_empty());
        // The Stripe route still works.
        let body = stripe_event();
        let header = sign_header(&[STRIPE_SECRET], NOW, &body);
        let resp = handle_request(
            &app,
            request("/webhook", ("stripe-signature", &header), &body),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(events.try_receive(100).len(), 1);
    }
}
