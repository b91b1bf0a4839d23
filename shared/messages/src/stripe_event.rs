//! The intake → transform queue: `stripe_event.v1` and `stripe_event_ref.v1`.

use ledgerbridge_core::ids::StripeEventId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Messages on the intake → transform queue.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum IntakeMessage {
    /// A verified Stripe event with its full snapshot.
    #[serde(rename = "stripe_event.v1")]
    StripeEventV1(StripeEventV1),
    /// A verified Stripe event whose body is not carried (too large for the queue, or a thin
    /// event): the consumer fetches it with `GET /v1/events/{id}`.
    #[serde(rename = "stripe_event_ref.v1")]
    StripeEventRefV1(StripeEventRefV1),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid JSON of a known shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown message type {0:?} (a newer producer?); parked for a newer consumer")]
    UnknownType(String),
}

impl IntakeMessage {
    /// Decode by reading the `type` tag first (serde's internally tagged enums cannot carry a
    /// `RawValue`, which keeps the event bytes untouched).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let tag: Tag<'_> = serde_json::from_str(text)?;
        match tag.kind.as_ref() {
            "stripe_event.v1" => Ok(IntakeMessage::StripeEventV1(serde_json::from_str(text)?)),
            "stripe_event_ref.v1" => {
                Ok(IntakeMessage::StripeEventRefV1(serde_json::from_str(text)?))
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StripeEventV1 {
    pub event_id: StripeEventId,
    pub event_type: String,
    pub created: Option<i64>,
    pub livemode: Option<bool>,
    pub object_id: Option<String>,
    pub received_at_ms: i64,
    /// The event exactly as received (after signature verification).
    pub event: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefReason {
    Oversized,
    ThinEvent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StripeEventRefV1 {
    pub event_id: StripeEventId,
    pub event_type: String,
    pub created: Option<i64>,
    pub object_id: Option<String>,
    pub received_at_ms: i64,
    pub reason: RefReason,
    pub body_bytes: usize,
}

/// Serialise a full-event message without copying the body through a JSON DOM, and without
/// parsing it a second time: `body` must be the bytes `head` was parsed from
/// ([`EnvelopeHead::parse`](ledgerbridge_core::event::EnvelopeHead::parse) has then checked that
/// they are one JSON object with nothing after it), so they are spliced into the message as the
/// `event` field verbatim. Only their UTF-8 is checked here (the parse skips over the contents of
/// strings it does not keep). A body that is not an object falls back to a validating parse.
pub fn encode_event_v1(
    head: &ledgerbridge_core::event::EnvelopeHead<'_>,
    body: &[u8],
    received_at_ms: i64,
) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        event_id: &'a str,
        event_type: &'a str,
        created: Option<i64>,
        livemode: Option<bool>,
        object_id: Option<&'a str>,
        received_at_ms: i64,
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| <serde_json::Error as serde::de::Error>::custom("event is not UTF-8"))?
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if !(text.starts_with('{') && text.ends_with('}')) {
        return encode_event_v1_validating(head, body, received_at_ms);
    }
    let mut out = serde_json::to_string(&Borrowed {
        kind: "stripe_event.v1",
        event_id: &head.id,
        event_type: &head.event_type,
        created: head.created,
        livemode: head.livemode,
        object_id: head.object_id(),
        received_at_ms,
    })?;
    out.reserve(text.len() + 10);
    out.pop(); // the closing brace
    out.push_str(",\"event\":");
    out.push_str(text);
    out.push('}');
    Ok(out)
}

/// The message through a `RawValue` parse of the body: the same bytes as [`encode_event_v1`],
/// for a body that is not a JSON object (then it fails, as the event must be an object).
fn encode_event_v1_validating(
    head: &ledgerbridge_core::event::EnvelopeHead<'_>,
    body: &[u8],
    received_at_ms: i64,
) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        event_id: &'a str,
        event_type: &'a str,
        created: Option<i64>,
        livemode: Option<bool>,
        object_id: Option<&'a str>,
        received_at_ms: i64,
        event: &'a RawValue,
    }
    let raw: &RawValue = serde_json::from_slice(body)?;
    if !raw.get().starts_with('{') {
        return Err(<serde_json::Error as serde::de::Error>::custom(
            "event is not a JSON object",
        ));
    }
    serde_json::to_string(&Borrowed {
        kind: "stripe_event.v1",
        event_id: &head.id,
        event_type: &head.event_type,
        created: head.created,
        livemode: head.livemode,
        object_id: head.object_id(),
        received_at_ms,
        event: raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerbridge_core::event::EnvelopeHead;

    #[test]
    fn the_spliced_message_is_the_one_a_validating_parse_writes() {
        // GIVEN every sample event, compact, pretty-printed with surrounding whitespace, and
        // with non-ASCII text
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/stripe/events"
        );
        let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(bodies.len() >= 10, "{} sample events", bodies.len());
        bodies.push(b"\r\n {\"id\":\"evt_1\",\"type\":\"x.y\",\"data\":{\"object\":{\"id\":\"o_1\",\"name\":\"Zo\xc3\xab \\u00e9\"}}} \n".to_vec());
        for body in &bodies {
            let head = EnvelopeHead::parse(body).unwrap();
            // WHEN both encodings write the message
            let spliced = encode_event_v1(&head, body, 42).unwrap();
            let validated = encode_event_v1_validating(&head, body, 42).unwrap();
            // THEN they are byte for byte the same, and the message decodes
            assert_eq!(spliced, validated);
            assert!(IntakeMessage::decode(&spliced).is_ok());
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_or_not_an_object_is_refused() {
        let bad_utf8 = b"{\"id\":\"evt_1\",\"type\":\"x.y\",\"note\":\"\xff\"}";
        let ok = br#"{"id":"evt_1","type":"x.y"}"#;
        let head = EnvelopeHead::parse(ok).unwrap();
        assert!(encode_event_v1(&head, bad_utf8, 1).is_err());
        assert!(encode_event_v1(&head, b"[1,2]", 1).is_err());
        assert!(encode_event_v1(&head, b"\"text\"", 1).is_err());
    }

    #[test]
    fn round_trip_keeps_the_exact_event_bytes() {
        let body = br#"{"id":"evt_1","object":"event","type":"charge.succeeded","created":5,"data":{"object":{"id":"ch_1","amount":15900}}}"#;
        let head = EnvelopeHead::parse(body).unwrap();
        let text = encode_event_v1(&head, body, 42).unwrap();
        match IntakeMessage::decode(&text).unwrap() {
            IntakeMessage::StripeEventV1(m) => {
                assert_eq!(m.event_id.as_str(), "evt_1");
                assert_eq!(m.object_id.as_deref(), Some("ch_1"));
                assert_eq!(m.event.get().as_bytes(), &body[..]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let unknown = r#"{"type":"stripe_event.v9","x":1}"#;
        assert!(
            matches!(IntakeMessage::decode(unknown), Err(DecodeError::UnknownType(t)) if t == "stripe_event.v9")
        );
    }
}
