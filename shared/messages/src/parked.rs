//! `parked.v1`: what every stage writes to its parked queue.

use serde::{Deserialize, Serialize};

/// A message that failed permanently, with the reason and the original body (replayable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "parked.v1")]
pub struct ParkedV1 {
    pub stage: String,
    pub reason: String,
    pub body: String,
}
