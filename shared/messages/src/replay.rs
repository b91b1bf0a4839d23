//! The `replay` envelope attribute: `"replay": true` next to `type` marks a message an operator
//! sent back to its queue (`ledgerbridge parked replay`, the console's replay), as opposed to
//! one Stripe or a stage delivered.
//!
//! It is an optional attribute of `stripe_event.v1`, `stripe_event_ref.v1` and `erp_command.v1`
//! (no new version): a message without it is not a replay, and a consumer that predates it
//! ignores it (none of these messages denies unknown fields). The transform carries it from a
//! replayed event to the commands it makes; erp-post reads it to check, for a replayed command
//! whose document is cross-referenced, that the ERP still has that document (the live path
//! answers from the cross-reference without an ERP call).

use serde::Deserialize;

/// The attribute's name in the message's top-level JSON object.
pub const REPLAY_ATTRIBUTE: &str = "replay";

#[derive(Deserialize)]
struct Mark {
    #[serde(default)]
    replay: Option<serde_json::Value>,
}

/// Whether `body` carries `"replay": true`. A body that is not a JSON object, or whose
/// attribute is not `true`, is not a replay.
pub fn is_replay(body: &str) -> bool {
    // Live messages never carry the attribute: skip the parse for them.
    if !body.contains("\"replay\"") {
        return false;
    }
    serde_json::from_str::<Mark>(body)
        .ok()
        .and_then(|m| m.replay)
        .is_some_and(|v| v == serde_json::Value::Bool(true))
}

/// `body` with `"replay": true` added at the top level. The rest of the text is kept byte for
/// byte (a `stripe_event.v1` carries the event as received), unless the body already has a
/// `replay` attribute of another value, which is then replaced. A body that is not a JSON
/// object is returned unchanged (the consumer parks it as unreadable, as before).
pub fn mark_replay(body: &str) -> String {
    if is_replay(body) {
        return body.to_owned();
    }
    let Ok(Mark { replay }) = serde_json::from_str::<Mark>(body) else {
        return body.to_owned();
    };
    if replay.is_some() {
        // Rare (an edited body with `"replay": false`): rewrite the object.
        return match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body) {
            Ok(mut map) => {
                map.insert(REPLAY_ATTRIBUTE.to_owned(), serde_json::Value::Bool(true));
                serde_json::to_string(&map).unwrap_or_else(|_| body.to_owned())
            }
            Err(_) => body.to_owned(),
        };
    }
    let trimmed = body.trim_start();
    let Some(rest) = trimmed.strip_prefix('{') else {
        return body.to_owned();
    };
    if rest.trim_start().starts_with('}') {
        format!("{{\"{REPLAY_ATTRIBUTE}\":true{rest}")
    } else {
        format!("{{\"{REPLAY_ATTRIBUTE}\":true,{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommandMessage, IntakeMessage};

    const COMMAND: &str = r#"{"type":"customer_fields.v1","customer":{"stripe_customer":"cus_1","erp_customer_no":null,"email":null,"create":null},"object_id":"sub_1","values":{},"version":1,"source":{"event_id":"evt_1","event_type":"customer.subscription.updated","created":1}}"#;
    const EVENT: &str = r#"{"type":"stripe_event.v1","event_id":"evt_1","event_type":"charge.succeeded","created":1,"livemode":false,"object_id":"ch_1","received_at_ms":5,"event":{"id":"evt_1",  "b":[1, 2]}}"#;

    #[test]
    fn a_live_message_is_not_a_replay_and_a_marked_one_is() {
        assert!(!is_replay(COMMAND));
        assert!(!is_replay(EVENT));
        let marked = mark_replay(COMMAND);
        assert!(is_replay(&marked));
        assert!(is_replay(&mark_replay(EVENT)));
        // Marking twice changes nothing.
        assert_eq!(mark_replay(&marked), marked);
    }

    #[test]
    fn marked_messages_still_decode_and_keep_the_event_bytes() {
        let marked = mark_replay(EVENT);
        match IntakeMessage::decode(&marked).unwrap() {
            IntakeMessage::StripeEventV1(m) => {
                assert_eq!(m.event.get(), r#"{"id":"evt_1",  "b":[1, 2]}"#)
            }
            IntakeMessage::StripeEventRefV1(_) => panic!("wrong variant"),
        }
        assert_eq!(
            CommandMessage::decode(&mark_replay(COMMAND)).unwrap(),
            CommandMessage::decode(COMMAND).unwrap()
        );
    }

    #[test]
    fn an_explicit_false_is_replaced_and_non_objects_are_left_alone() {
        let with_false = r#"{"type":"x","replay":false}"#;
        assert!(!is_replay(with_false));
        assert!(is_replay(&mark_replay(with_false)));
        assert_eq!(mark_replay("not json"), "not json");
        assert_eq!(mark_replay("[1]"), "[1]");
        assert!(is_replay(&mark_replay("{}")));
    }
}
