//! [`ErpKind`]: the one list of the ERPs ledgerbridge speaks to.
//!
//! Every place that needs to tell the ERPs apart (settings, connector selection, the sandbox's
//! dialects, command-line arguments, event validation) matches on this enum exhaustively, so a
//! new variant makes the compiler list everything a new ERP must provide.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An ERP family with a connector. Its lower-case name (`epicor`, `sage500`, `sagepro`) is the
/// one used in settings JSON, queue messages, cross-reference rows and command-line arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErpKind {
    /// Epicor Kinetic (REST v2).
    Epicor,
    /// Sage 500 (staging tables and API procedures).
    Sage500,
    /// Sage Pro (REST).
    SagePro,
}

impl ErpKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErpKind; 3] = [ErpKind::Epicor, ErpKind::Sage500, ErpKind::SagePro];

    /// The lower-case name: `epicor`, `sage500` or `sagepro`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErpKind::Epicor => "epicor",
            ErpKind::Sage500 => "sage500",
            ErpKind::SagePro => "sagepro",
        }
    }

    /// The valid names, comma-separated (for messages and help texts).
    pub fn names() -> String {
        ErpKind::ALL.map(ErpKind::as_str).join(", ")
    }
}

impl fmt::Display for ErpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`ErpKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ERP {given:?}: expected one of {}", ErpKind::names())]
pub struct UnknownErpKind {
    /// The name that was given.
    pub given: String,
}

impl FromStr for ErpKind {
    type Err = UnknownErpKind;

    /// Parses the exact lower-case name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErpKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErpKind {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_display_and_serde() {
        for kind in ErpKind::ALL {
            assert_eq!(kind.as_str().parse::<ErpKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErpKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            ErpKind::ALL.map(ErpKind::as_str),
            ["epicor", "sage500", "sagepro"]
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_list() {
        let err = "oracle".parse::<ErpKind>().unwrap_err();
        assert_eq!(err.given, "oracle");
        assert_eq!(
            err.to_string(),
            "unknown ERP \"oracle\": expected one of epicor, sage500, sagepro"
        );
        // Names are exact: no case folding, no trimming.
        assert!("Epicor".parse::<ErpKind>().is_err());
        assert!(" sagepro".parse::<ErpKind>().is_err());
        assert!(serde_json::from_str::<ErpKind>("\"SAGE500\"").is_err());
    }
}
