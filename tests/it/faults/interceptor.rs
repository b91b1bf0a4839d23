//! An AWS SDK interceptor that injects faults into SQS and DynamoDB calls of one client:
//! failures before the request reaches the service (connection refused), error answers after
//! it did (500, throttling), stalls, and — for D5's read path — a conditional-check failure
//! answered without the stored item.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to do to the calls of the operations named in `operations` (empty: all). Rates are
/// per mille and drawn per call (deterministic with `seed`).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Operation names (`PutItem`, `SendMessage`, …) the plan applies to; empty = every one.
    pub operations: Vec<String>,
    /// Never reaches the service: the connection is refused.
    pub refuse_per_mille: u32,
    /// Reaches the service, then the answer is replaced by a 500.
    pub error_500_per_mille: u32,
    /// Reaches the service, then the answer is replaced by a throttling error.
    pub throttle_per_mille: u32,
    /// Blocks the calling thread this long before sending (a stall).
    pub stall: Option<(u32, Duration)>,
    /// DynamoDB: requests lose `ReturnValuesOnConditionCheckFailure`, so a failed condition
    /// is answered without the stored item (as by an API or emulator that ignores it).
    pub strip_condition_item: bool,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub calls: AtomicUsize,
    pub refused: AtomicUsize,
    pub errors_500: AtomicUsize,
    pub throttled: AtomicUsize,
    pub stalled: AtomicUsize,
    pub stripped: AtomicUsize,
    /// Calls per operation name.
    pub by_operation: Mutex<std::collections::BTreeMap<String, usize>>,
}

impl Counters {
    pub fn of(&self, operation: &str) -> usize {
        self.by_operation
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct FaultInterceptor {
    plan: Arc<Mutex<FaultPlan>>,
    rng: Arc<AtomicU64>,
    pub counters: Arc<Counters>,
}

/// Marks, in the config bag, a call whose answer is to be replaced.
#[derive(Debug, Clone)]
struct Replace(u16, &'static str);
impl aws_smithy_types::config_bag::Storable for Replace {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl FaultInterceptor {
    pub fn new(plan: FaultPlan) -> Self {
        let seed = plan.seed.max(1);
        FaultInterceptor {
            plan: Arc::new(Mutex::new(plan)),
            rng: Arc::new(AtomicU64::new(seed)),
            counters: Arc::default(),
        }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.plan.lock().unwrap() = plan;
    }

    fn roll(&self, per_mille: u32) -> bool {
        if per_mille == 0 {
            return false;
        }
        // xorshift64*
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % 1000 < u64::from(per_mille)
    }

    /// A DynamoDB client with this interceptor.
    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// An SQS client with this interceptor (the SDK's own retries kept, with a short
    /// initial backoff so a test does not spend its time sleeping).
    pub fn sqs(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(self.clone())
            .retry_config(
                aws_sdk_sqs::config::retry::RetryConfig::standard()
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }
}

/// `DynamoDB_20120810.PutItem` / `AmazonSQS.SendMessage` → `PutItem` / `SendMessage`.
fn operation(target: Option<&str>) -> String {
    target
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned()
}

impl Intercept for FaultInterceptor {
    fn name(&self) -> &'static str {
        "FaultInterceptor"
    }

    /// D5's read path: the request no longer asks for the stored item on a failed condition,
    /// so the store has to read it.
    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.plan.lock().unwrap().strip_condition_item {
            return Ok(());
        }
        let req = ctx.request_mut();
        let Some(bytes) = req.body().bytes() else {
            return Ok(());
        };
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Ok(());
        };
        let Some(obj) = v.as_object_mut() else {
            return Ok(());
        };
        if obj.remove("ReturnValuesOnConditionCheckFailure").is_some() {
            let body = v.to_string();
            req.headers_mut()
                .insert("content-length", body.len().to_string());
            *req.body_mut() = SdkBody::from(body);
            self.counters.stripped.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(ctx.request().headers().get("x-amz-target"));
        self.counters.calls.fetch_add(1, Ordering::SeqCst);
        *self
            .counters
            .by_operation
            .lock()
            .unwrap()
            .entry(op.clone())
            .or_default() += 1;
        let plan = self.plan.lock().unwrap().clone();
        if !plan.operations.is_empty() && !plan.operations.contains(&op) {
            return Ok(());
        }
        if let Some((per_mille, d)) = plan.stall {
            if self.roll(per_mille) {
                self.counters.stalled.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(d);
            }
        }
        if self.roll(plan.refuse_per_mille) {
            self.counters.refused.fetch_add(1, Ordering::SeqCst);
            // Port 9 (discard) is closed on the loopback: the connection is refused.
            ctx.request_mut().set_uri("http://127.0.0.1:9/")?;
            return Ok(());
        }
        if self.roll(plan.error_500_per_mille) {
            self.counters.errors_500.fetch_add(1, Ordering::SeqCst);
            cfg.interceptor_state()
                .store_put(Replace(500, "InternalServerError"));
        } else if self.roll(plan.throttle_per_mille) {
            self.counters.throttled.fetch_add(1, Ordering::SeqCst);
            let code = if ctx
                .request()
                .headers()
                .get("x-amz-target")
                .is_some_and(|t| t.starts_with("DynamoDB"))
            {
                "ProvisionedThroughputExceededException"
            } else {
                "ThrottlingException"
            };
            cfg.interceptor_state().store_put(Replace(400, code));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Replace(status, code)) = cfg.load::<Replace>().cloned() {
            let resp = ctx.response_mut();
            *resp.status_mut() = status.try_into()?;
            resp.headers_mut().remove("x-amz-crc32");
            *resp.body_mut() = SdkBody::from(format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected fault"}}"#
            ));
            cfg.interceptor_state().unset::<Replace>();
            return Ok(());
        }
        Ok(())
    }
}
