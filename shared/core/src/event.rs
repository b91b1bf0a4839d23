//! The Stripe event envelope, tolerant of API-version drift: unknown fields and unknown event
//! types parse. The type-specific object is parsed only where the project acts on it.

use serde::Deserialize;
use std::borrow::Cow;

/// The few envelope fields the intake needs, borrowed from the raw body (cheap: no DOM).
#[derive(Debug, Deserialize)]
pub struct EnvelopeHead<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub event_type: Cow<'a, str>,
    #[serde(default, borrow)]
    pub object: Option<Cow<'a, str>>,
    /// Unix seconds for snapshot events; v2 thin events send an RFC 3339 string (kept as None).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: Option<bool>,
    #[serde(default, borrow)]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<DataHead<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct DataHead<'a> {
    #[serde(default, borrow)]
    pub object: Option<ObjectHead<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ObjectHead<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub object: Option<Cow<'a, str>>,
}

fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrOther {
        Int(i64),
        Other(serde::de::IgnoredAny),
    }
    Ok(match IntOrOther::deserialize(d)? {
        IntOrOther::Int(v) => Some(v),
        IntOrOther::Other(_) => None,
    })
}

impl<'a> EnvelopeHead<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// A thin event (`v2.core.event`) carries no object snapshot: it must be fetched.
    pub fn is_thin(&self) -> bool {
        self.object.as_deref() == Some("v2.core.event") || self.data.is_none()
    }

    pub fn object_id(&self) -> Option<&str> {
        self.data.as_ref()?.object.as_ref()?.id.as_deref()
    }
}

/// A full snapshot event, owned, with the object kept as JSON for the consumer to interpret.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct EventData {
    pub object: serde_json::Value,
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_types_parse() {
        let body = br#"{"id":"evt_9","object":"event","type":"future.thing_happened","brand_new":{"x":[1,2]},
            "created":1,"data":{"object":{"id":"zz_1","object":"future_thing","weird":true}}}"#;
        let h = EnvelopeHead::parse(body).unwrap();
        assert_eq!(h.event_type, "future.thing_happened");
        assert_eq!(h.object_id(), Some("zz_1"));
        assert!(!h.is_thin());
        let e: Event = serde_json::from_slice(body).unwrap();
        assert_eq!(e.data.object["weird"], true);
    }

    #[test]
    fn thin_events_are_recognised() {
        let body = br#"{"id":"evt_t","object":"v2.core.event","type":"v1.customer.created","created":"2024-10-28T00:00:00Z","related_object":{"id":"cus_1"}}"#;
        // `created` is a string in v2 events: tolerated, kept as None.
        let h = EnvelopeHead::parse(body).unwrap();
        assert!(h.is_thin());
        assert_eq!(h.created, None);
        assert_eq!(h.object_id(), None);
    }
}
