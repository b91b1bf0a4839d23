//! One queue message through one stage, independent of how it arrived (SQS event in Lambda, the
//! embedded queue locally). Permanent failures are parked on the parked queue with their reason.

use crate::mapping::Mapping;
use crate::outcome::{park, Outcome};
use crate::posting::{FieldsResult, PostResult, Poster};
use crate::store::StateStore;
use crate::to_erp::{handler_of, transform, Handler};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ports::EventQueue;
use ledgerbridge_core::ports::RecordOutcome;
use ledgerbridge_core::Clock;
use ledgerbridge_erp::ErpConnector;
use ledgerbridge_messages::IntakeMessage;
use ledgerbridge_messages::{CommandMessage, CustomerFieldsV1, ErpCommandV1};
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::StripeError;

pub use crate::outcome::ParkedV1;

/// The transform stage's dependencies.
pub struct TransformStage<Q, R, P, A> {
    pub mapping: Mapping,
    pub stripe: A,
    pub commands: Q,
    /// Payout events go to the reconciliation queue when one is configured.
    pub reconciliation: Option<R>,
    pub parked: P,
}

impl<Q: EventQueue, R: EventQueue, P: EventQueue, A: StripeApi> TransformStage<Q, R, P, A> {
    pub async fn process(&self, body: &str) -> RecordOutcome {
        let event = match IntakeMessage::decode(body) {
            Ok(IntakeMessage::StripeEventV1(m)) => {
                match serde_json::from_str::<Event>(m.event.get()) {
                    Ok(e) => e,
                    Err(e) => {
                        return park(
                            &self.parked,
                            "transform",
                            format!("unreadable event: {e}"),
                            body,
                        )
                        .await
                    }
                }
            }
            Ok(IntakeMessage::StripeEventRefV1(r)) => {
                match self.stripe.retrieve_event(&r.event_id).await {
                    Ok(e) => e,
                    Err(StripeError::Decode { message, .. }) => {
                        return park(
                            &self.parked,
                            "transform",
                            format!("unreadable event: {message}"),
                            body,
                        )
                        .await
                    }
                    Err(e) if e.is_retriable() => return RecordOutcome::Retry(e.to_string()),
                    Err(e) => {
                        return park(
                            &self.parked,
                            "transform",
                            format!("cannot fetch event: {e}"),
                            body,
                        )
                        .await
                    }
                }
            }
            Err(e) => return park(&self.parked, "transform", e.to_string(), body).await,
        };
        if handler_of(&event.event_type) == Some(Handler::Reconciliation) {
            if let Some(recon) = &self.reconciliation {
                return match recon.send(body.to_owned(), None).await {
                    Ok(_) => RecordOutcome::Done,
                    Err(e) => RecordOutcome::Retry(e.to_string()),
                };
            }
        }
        match transform(&self.mapping, &self.stripe, &event).await {
            Ok(Outcome::Commands(cmds)) => {
                // An operator's replay of an event stays one for the commands it makes.
                let replay = ledgerbridge_messages::is_replay(body);
                for cmd in cmds {
                    let msg = CommandMessage::ErpCommandV1(Box::new(cmd));
                    let text = match msg.encode() {
                        Ok(t) if replay => ledgerbridge_messages::mark_replay(&t),
                        Ok(t) => t,
                        Err(e) => {
                            return park(&self.parked, "transform", e.to_string(), body).await
                        }
                    };
                    // Sending is idempotent downstream (references), so a partial send retried
                    // in full creates nothing twice.
                    if let Err(e) = self.commands.send(text, Some(&msg.group())).await {
                        return RecordOutcome::Retry(e.to_string());
                    }
                }
                RecordOutcome::Done
            }
            Ok(Outcome::CustomerFields(f)) => {
                let msg = CommandMessage::CustomerFieldsV1(f);
                let text = match msg.encode() {
                    Ok(t) => t,
                    Err(e) => return park(&self.parked, "transform", e.to_string(), body).await,
                };
                match self.commands.send(text, Some(&msg.group())).await {
                    Ok(_) => RecordOutcome::Done,
                    Err(e) => RecordOutcome::Retry(e.to_string()),
                }
            }
            Ok(Outcome::Skipped(reason)) => {
                tracing::info!(event_id = %event.id, event_type = %event.event_type, reason = %reason, "Event not booked");
                RecordOutcome::Done
            }
            Err(e) => e.settle(&self.parked, "transform", body).await,
        }
    }
}

/// What erp-post did with one message (for the local runner's summary and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Command(Box<ErpCommandV1>, PostResult),
    Fields(Box<CustomerFieldsV1>, FieldsResult),
}

/// The erp-post stage: the poster plus the parked queue.
pub struct PostStage<C, S, A, K, P> {
    pub poster: Poster<C, S, A, K>,
    pub parked: P,
}

impl<C: ErpConnector, S: StateStore, A: StripeApi, K: Clock, P: EventQueue>
    PostStage<C, S, A, K, P>
{
    pub async fn process(&self, body: &str) -> RecordOutcome {
        self.process_detailed(body).await.0
    }

    pub async fn process_detailed(&self, body: &str) -> (RecordOutcome, Option<Posted>) {
        let result = match CommandMessage::decode(body) {
            Ok(CommandMessage::ErpCommandV1(m)) => {
                let replay = ledgerbridge_messages::is_replay(body);
                self.poster
                    .handle_marked(&m, replay)
                    .await
                    .map(|r| Posted::Command(m, r))
            }
            Ok(CommandMessage::CustomerFieldsV1(f)) => self
                .poster
                .handle_fields(&f)
                .await
                .map(|r| Posted::Fields(f, r)),
            Err(e) => {
                return (
                    park(
                        &self.parked,
                        "erp-post",
                        format!("unreadable command: {e}"),
                        body,
                    )
                    .await,
                    None,
                )
            }
        };
        match result {
            Ok(posted) => (RecordOutcome::Done, Some(posted)),
            Err(e) => (e.settle(&self.parked, "erp-post", body).await, None),
        }
    }
}
