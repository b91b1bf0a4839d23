//! Checking an ERP installation before the first document (`ledgerbridge erp check`).
//!
//! [`run`] authenticates, searches every document kind by a recognisable probe reference
//! (through the connector's own search, so exactly the services, fields and widths ledgerbridge
//! will use are exercised), and asks the installation for what the configuration names: GL
//! accounts, the fiscal period of the posting date, and per ERP the services, procedures and
//! column widths. Everything is read-only. The result is a [`CheckReport`]: one [`CheckLine`]
//! per check with what was expected, what was found, a [`Verdict`] and what to do.
//!
//! The vendor-specific discovery lives next to each connector (`epicor/check.rs`,
//! `sage500/check.rs`); Sage Pro has no discovery route beyond its published facade contract,
//! so its check is the search probe of every endpoint.

pub mod cycle;
pub mod recording;

use crate::commands::{DocKind, ErpDate, ExternalRef};
use crate::connector::ErpConnector;
use crate::error::ErpError;
use crate::kind::ErpKind;
use crate::settings::AnyConnector;
use ledgerbridge_core::ids::StripeObjectId;
use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The installation has what ledgerbridge will send.
    Pass,
    /// It does not: documents would be refused or parked. The command exits non-zero.
    Fail,
    /// No read-only route confirms this; a person confirms it by hand (the line says how).
    Manual,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Manual => "MANUAL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    /// What was checked, e.g. `GL account 4000 (payments.revenue_account)`.
    pub check: String,
    pub expected: String,
    pub found: String,
    pub verdict: Verdict,
    /// What to do about a failure (empty when it passed).
    pub action: String,
}

impl CheckLine {
    pub fn pass(
        check: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        CheckLine {
            check: check.into(),
            expected: expected.into(),
            found: found.into(),
            verdict: Verdict::Pass,
            action: String::new(),
        }
    }

    pub fn fail(
        check: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        CheckLine {
            check: check.into(),
            expected: expected.into(),
            found: found.into(),
            verdict: Verdict::Fail,
            action: action.into(),
        }
    }

    pub fn manual(
        check: impl Into<String>,
        expected: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        CheckLine {
            check: check.into(),
            expected: expected.into(),
            found: "not readable without writing".into(),
            verdict: Verdict::Manual,
            action: action.into(),
        }
    }
}

/// Every line of one check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub erp: ErpKind,
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    /// The lines that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckLine> {
        self.lines.iter().filter(|l| l.verdict == Verdict::Fail)
    }

    /// No line failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The report as a plain-text table: check, expected, found, verdict, what to do.
    pub fn table(&self) -> String {
        let head = ["CHECK", "EXPECTED", "FOUND", "VERDICT", "WHAT TO DO"];
        let rows: Vec<[&str; 5]> = self
            .lines
            .iter()
            .map(|l| {
                [
                    l.check.as_str(),
                    l.expected.as_str(),
                    l.found.as_str(),
                    l.verdict.as_str(),
                    l.action.as_str(),
                ]
            })
            .collect();
        let mut width = head.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i == 4 {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    let pad = width[i].saturating_sub(c.chars().count()) + 2;
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s.trim_end().to_owned()
        };
        let mut out = line(head);
        out.push('\n');
        for r in rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        let failed = self.failures().count();
        let manual = self
            .lines
            .iter()
            .filter(|l| l.verdict == Verdict::Manual)
            .count();
        out.push_str(&format!(
            "\n{}: {} check(s), {} failed, {} to confirm by hand\n",
            self.erp,
            self.lines.len(),
            failed,
            manual
        ));
        out
    }
}

/// A configuration value that names something in the ERP, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The configuration key, e.g. `payments.revenue_account`.
    pub origin: String,
    pub value: String,
}

impl Named {
    pub fn new(origin: impl Into<String>, value: impl Into<String>) -> Self {
        Named {
            origin: origin.into(),
            value: value.into(),
        }
    }
}

/// What the deployment's configuration will send, besides the connector settings: collected
/// by the caller from the mapping and reconciliation files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The posting date whose fiscal period must be open (normally today).
    pub posting_date: ErpDate,
    pub gl_accounts: Vec<Named>,
    /// Items / parts.
    pub items: Vec<Named>,
    /// Payment method codes of the mapping.
    pub payment_methods: Vec<Named>,
    pub reason_codes: Vec<Named>,
}

impl Expectations {
    pub fn new(posting_date: ErpDate) -> Self {
        Expectations {
            posting_date,
            gl_accounts: Vec::new(),
            items: Vec::new(),
            payment_methods: Vec::new(),
            reason_codes: Vec::new(),
        }
    }
}

/// Is this configured account a placeholder that was never filled in?
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let upper = v.to_ascii_uppercase();
    [
        "TODO",
        "XXXX",
        "CHANGE",
        "PLACEHOLDER",
        "FIXME",
        "<",
        ">",
        "...",
        "…",
    ]
    .iter()
    .any(|p| upper.contains(p))
}

/// What is wrong with the GL accounts a configuration file names, before anything is booked:
/// one problem per empty or placeholder-like value ([`is_placeholder`]), and, unless
/// `allow_example` (a trial run), one problem when every account is still the shipped example's
/// number at the same key (`example`): the example's numbers are placeholders, and a file that
/// changed none of them was copied without being filled in. The same detection serves the
/// functions at start, `ledgerbridge config check` before a deployment and `ledgerbridge erp
/// check` against the installation.
pub fn account_problems(accounts: &[Named], example: &[Named], allow_example: bool) -> Vec<String> {
    let mut problems: Vec<String> = accounts
        .iter()
        .filter(|a| is_placeholder(&a.value))
        .map(|a| {
            if a.value.trim().is_empty() {
                format!(
                    "GL account {} is empty: set the company's account",
                    a.origin
                )
            } else {
                format!(
                    "GL account {} = {:?} is a placeholder: set the company's account",
                    a.origin, a.value
                )
            }
        })
        .collect();
    let example_value = |origin: &str| {
        example
            .iter()
            .find(|e| e.origin == origin)
            .map(|e| e.value.trim())
    };
    let unchanged = !accounts.is_empty()
        && accounts
            .iter()
            .all(|a| example_value(&a.origin) == Some(a.value.trim()));
    if unchanged && !allow_example {
        let list: Vec<String> = accounts
            .iter()
            .map(|a| format!("{} = {:?}", a.origin, a.value))
            .collect();
        problems.push(format!(
            "every GL account is still the shipped example's placeholder number ({}): set the company's accounts",
            list.join(", ")
        ));
    }
    problems
}

/// The probe reference every search uses: recognisable in the ERP's request logs and never a
/// real Stripe object.
pub const PROBE_ID: &str = "lbcheck_probe";

/// The GL accounts with a usable value; a line for each placeholder or empty one.
pub(crate) fn placeholder_lines(exp: &Expectations) -> (Vec<CheckLine>, Vec<&Named>) {
    let mut lines = Vec::new();
    let mut usable = Vec::new();
    for a in &exp.gl_accounts {
        if is_placeholder(&a.value) {
            lines.push(CheckLine::fail(
                format!("GL account {} ({})", a.value, a.origin),
                "an account of the chart",
                if a.value.trim().is_empty() {
                    "empty".to_owned()
                } else {
                    "a placeholder".to_owned()
                },
                format!("set {} to the customer's account", a.origin),
            ));
        } else {
            usable.push(a);
        }
    }
    (lines, usable)
}

/// What an error means for an implementer, in one line.
pub(crate) fn describe(e: &ErpError) -> String {
    let s = e.to_string();
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Search every document kind by the probe reference. Returns the lines and whether the ERP
/// accepted the credentials (when it did not, nothing else can be checked).
async fn probe_lines(connector: &AnyConnector) -> (Vec<CheckLine>, bool) {
    let mut lines = Vec::new();
    let stripe_id = StripeObjectId::new(PROBE_ID);
    for (i, kind) in DocKind::ALL.into_iter().enumerate() {
        let what = format!("search {} by reference", kind.as_str());
        let r = match ExternalRef::new(&stripe_id, kind) {
            Ok(r) => r,
            Err(e) => {
                lines.push(CheckLine::fail(
                    what,
                    "a probe reference",
                    e.to_string(),
                    "report this as a bug",
                ));
                continue;
            }
        };
        match connector.find_by_reference(&r).await {
            Ok(found) => {
                if i == 0 {
                    lines.push(CheckLine::pass(
                        "authentication",
                        "credentials accepted",
                        "accepted",
                    ));
                }
                let found = match found {
                    None => "answered, no match".to_owned(),
                    Some(id) => format!("answered, matches {id}"),
                };
                lines.push(CheckLine::pass(what, "the search answers", found));
            }
            Err(e) if e.is_auth() => {
                lines.push(CheckLine::fail(
                    "authentication",
                    "credentials accepted",
                    describe(&e),
                    "check the credentials in the ERP settings (API key, user, password or token) and the user's access to the company",
                ));
                return (lines, false);
            }
            Err(e) => lines.push(CheckLine::fail(
                what,
                "the search answers",
                describe(&e),
                search_action(connector.kind(), kind),
            )),
        }
    }
    (lines, true)
}

fn search_action(erp: ErpKind, kind: DocKind) -> String {
    match erp {
        ErpKind::Epicor => format!(
            "give the integration user access to the {} service and check ref_fields.{} names a searchable field",
            kind.as_str(),
            kind.as_str()
        ),
        ErpKind::Sage500 => format!(
            "check docs.{}.target_table / reference_column / key_column exist in the company database",
            kind.as_str()
        ),
        ErpKind::SagePro => format!(
            "check the facade publishes the {} endpoint and reference_field",
            kind.as_str()
        ),
    }
}

/// Check the installation the connector reaches against `exp` (read-only).
pub async fn run(connector: &AnyConnector, exp: &Expectations) -> CheckReport {
    let (mut lines, accounts) = placeholder_lines(exp);
    let (probe, authenticated) = probe_lines(connector).await;
    lines.extend(probe);
    if authenticated {
        match connector {
            AnyConnector::Epicor(c) => {
                lines.extend(crate::epicor::check::lines(c, exp, &accounts).await)
            }
            AnyConnector::Sage500(c) => {
                lines.extend(crate::sage500::check::lines(c, exp, &accounts).await)
            }
            AnyConnector::SagePro(_) => {
                for a in accounts {
                    lines.push(CheckLine::manual(
                        format!("GL account {} ({})", a.value, a.origin),
                        "an account of the chart",
                        "the Sage Pro facade publishes no GL account route: confirm in Sage Pro's chart of accounts",
                    ));
                }
                lines.push(CheckLine::manual(
                    format!("fiscal period of {}", exp.posting_date.as_str()),
                    "open",
                    "the Sage Pro facade publishes no period route: confirm the period is open in Sage Pro",
                ));
            }
        }
    }
    CheckReport {
        erp: connector.kind(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for p in ["", "  ", "TODO", "xxxx-00", "<revenue>", "CHANGE-ME", "…"] {
            assert!(is_placeholder(p), "{p:?}");
        }
        for a in ["4000", "1010-00", "1010|00"] {
            assert!(!is_placeholder(a), "{a:?}");
        }
    }

    #[test]
    fn account_problems_list_every_placeholder_and_an_unchanged_example() {
        let example = vec![Named::new("a", "4000"), Named::new("b", "1010")];
        let own = vec![Named::new("a", "4000"), Named::new("b", "1011")];
        assert!(account_problems(&own, &example, false).is_empty());
        let copied = example.clone();
        let p = account_problems(&copied, &example, false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("a = \"4000\", b = \"1010\""), "{p:?}");
        assert!(account_problems(&copied, &example, true).is_empty());
        let unfilled = vec![
            Named::new("a", "TODO"),
            Named::new("b", " "),
            Named::new("c", "7"),
        ];
        let p = account_problems(&unfilled, &example, false);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("a = \"TODO\" is a placeholder"), "{p:?}");
        assert!(p[1].contains("b is empty"), "{p:?}");
        // An empty value stays refused in a trial.
        assert_eq!(account_problems(&unfilled, &example, true).len(), 2);
    }

    #[test]
    fn the_table_has_every_column_and_a_summary() {
        let r = CheckReport {
            erp: ErpKind::Epicor,
            lines: vec![
                CheckLine::pass("authentication", "credentials accepted", "accepted"),
                CheckLine::fail("GL account 9999 (x)", "an account", "not found", "add it"),
            ],
        };
        assert!(!r.passed());
        let t = r.table();
        assert!(t.starts_with("CHECK"), "{t}");
        assert!(t.contains("GL account 9999 (x)  an account"), "{t}");
        assert!(t.contains("FAIL     add it"), "{t}");
        assert!(
            t.contains("epicor: 2 check(s), 1 failed, 0 to confirm by hand"),
            "{t}"
        );
    }
}
