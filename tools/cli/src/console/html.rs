//! Server-rendered pages: plain HTML and one stylesheet inline, a small inline SVG chart; no
//! scripts, nothing fetched from the internet. Every value is escaped. Pages never show
//! secrets or payment payloads: records show ids, kinds, amounts and states; a parked
//! message's body (the ERP command or event reference) is shown only on its own page, for
//! edit-and-retry, and viewing it is audited.

use super::ledger::AuditEntry;
use super::model::*;
use ledgerbridge_core::Money;

/// Append formatted text (writing to a `String` cannot fail).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {
        $dst.push_str(&format!($($arg)*))
    };
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment or query value, percent-encoded.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn money(m: Option<Money>) -> String {
    m.map(|m| m.to_string()).unwrap_or_else(|| "—".into())
}

pub fn when(ms: i64) -> String {
    if ms <= 0 {
        return "—".into();
    }
    let secs = ms.div_euclid(1000);
    let day = ledgerbridge_erp::ErpDate::from_unix(secs)
        .map(|d| d.as_str().to_owned())
        .unwrap_or_default();
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{day} {:02}:{:02}:{:02} UTC",
        in_day / 3600,
        (in_day % 3600) / 60,
        in_day % 60
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1d2733;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.4rem;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
main{padding:1rem 1.2rem;max-width:1280px}table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0 1.2rem}
th,td{border-bottom:1px solid #e3e6ea;padding:.35rem .5rem;text-align:left;font-size:.9rem;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.state{display:inline-block;padding:.05rem .45rem;border-radius:.7rem;font-size:.8rem}
.posted{background:#d9f2e0}.waiting,.in-progress{background:#fff0c2}.parked,.dead-letter{background:#fbd5d5}.ignored{background:#e6e6e6}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}form.filters label{font-size:.8rem;display:flex;flex-direction:column}
.reason{color:#8a1c1c}.muted{color:#66707a}.tie{font-weight:600}.ok{color:#1b6b32}.bad{color:#8a1c1c}
textarea{width:100%;font-family:monospace;font-size:.8rem}button{cursor:pointer}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#fff;padding:.6rem 1rem;border:1px solid #e3e6ea;min-width:10rem}
.card b{display:block;font-size:1.4rem}";

pub fn page(title: &str, active: &str, body: &str) -> String {
    let mut nav = String::new();
    for (href, label) in [
        ("/records", "Records"),
        ("/parked", "Parked work"),
        ("/payouts", "Payouts"),
        ("/health", "Health"),
        ("/audit", "Audit"),
    ] {
        w!(
            nav,
            "<a href=\"{href}\"{}>{label}</a>",
            if label == active { " class=\"on\"" } else { "" }
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · ledgerbridge</title><style>{STYLE}</style></head><body><header><strong>ledgerbridge</strong>{nav}</header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

fn state_badge(s: &DocState) -> String {
    let label = s.label();
    format!(
        "<span class=\"state {}\" data-state=\"{label}\">{label}</span>",
        label.replace(' ', "-")
    )
}

/// The filters of the records page.
#[derive(Debug, Default, Clone)]
pub struct RecordFilter {
    pub state: String,
    pub kind: String,
    pub customer: String,
    pub from: String,
    pub to: String,
    pub min: String,
    pub max: String,
}

impl RecordFilter {
    pub fn from_query(q: &[(String, String)]) -> Self {
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        RecordFilter {
            state: get("state"),
            kind: get("kind"),
            customer: get("customer"),
            from: get("from"),
            to: get("to"),
            min: get("min"),
            max: get("max"),
        }
    }

    pub fn matches(&self, r: &RecordView) -> bool {
        use std::str::FromStr;
        let day = super::html::when(r.at_ms);
        let day = day.get(..10).unwrap_or("");
        let amounts: Vec<rust_decimal::Decimal> = r
            .documents
            .iter()
            .filter_map(|d| d.amount.map(|m| m.to_decimal()))
            .collect();
        let min = rust_decimal::Decimal::from_str(&self.min).ok();
        let max = rust_decimal::Decimal::from_str(&self.max).ok();
        (self.state.is_empty() || r.state().label() == self.state)
            && (self.kind.is_empty() || r.documents.iter().any(|d| d.kind == self.kind))
            && (self.customer.is_empty()
                || r.customer()
                    .is_some_and(|c| c.to_lowercase().contains(&self.customer.to_lowercase())))
            && (self.from.is_empty() || day >= self.from.as_str())
            && (self.to.is_empty() || day <= self.to.as_str())
            && (min.is_none() || amounts.iter().any(|a| Some(*a) >= min))
            && (max.is_none() || amounts.iter().any(|a| Some(*a) <= max))
    }
}

pub fn records(all: &[RecordView], ignored: &[IgnoredEvent], f: &RecordFilter) -> String {
    let mut b = String::new();
    let opt = |name: &str, values: &[&str], cur: &str| {
        let mut s = format!(
            "<label>{name}<select name=\"{}\"><option value=\"\">any</option>",
            name.to_lowercase()
        );
        for v in values {
            w!(
                s,
                "<option{}>{}</option>",
                if *v == cur { " selected" } else { "" },
                esc(v)
            );
        }
        s.push_str("</select></label>");
        s
    };
    w!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/records\">{}{}\
         <label>Customer<input name=\"customer\" value=\"{}\"></label>\
         <label>From<input name=\"from\" placeholder=\"YYYY-MM-DD\" value=\"{}\"></label>\
         <label>To<input name=\"to\" placeholder=\"YYYY-MM-DD\" value=\"{}\"></label>\
         <label>Amount ≥<input name=\"min\" size=\"8\" value=\"{}\"></label>\
         <label>Amount ≤<input name=\"max\" size=\"8\" value=\"{}\"></label><button>Filter</button></form>",
        opt("State", &["posted", "waiting", "in progress", "parked", "dead letter"], &f.state),
        opt(
            "Kind",
            &["customer", "sales_order", "invoice", "cash_receipt", "credit_memo", "journal_entry"],
            &f.kind
        ),
        esc(&f.customer),
        esc(&f.from),
        esc(&f.to),
        esc(&f.min),
        esc(&f.max)
    );
    let shown: Vec<&RecordView> = all.iter().filter(|r| f.matches(r)).collect();
    w!(
        b,
        "<p class=\"muted\">{} of {} Stripe objects. Amounts are the documents' totals as sent to and accepted by the ERP.</p>\
         <table id=\"records\"><tr><th>Stripe object</th><th>Events</th><th>ERP documents</th><th>Customer</th><th>Amount</th><th>State</th><th>Last change</th></tr>",
        shown.len(),
        all.len()
    );
    for r in shown {
        let docs: Vec<String> = r
            .documents
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    esc(&d.kind),
                    d.erp_id.as_deref().map(esc).unwrap_or_else(|| "—".into())
                )
            })
            .collect();
        let amounts: Vec<String> = r
            .documents
            .iter()
            .filter_map(|d| d.amount)
            .map(|m| m.to_string())
            .collect();
        let state = r.state();
        w!(
            b,
            "<tr data-object=\"{id}\"><td><a href=\"/records/{href}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}{}</td><td>{}</td></tr>",
            r.events()
                .iter()
                .map(|(_, t)| esc(t))
                .collect::<Vec<_>>()
                .join("<br>"),
            docs.join("<br>"),
            esc(r.customer().unwrap_or("—")),
            esc(&amounts.join(" / ")),
            state_badge(&state),
            state
                .reason()
                .map(|x| format!("<div class=\"reason\">{}</div>", esc(x)))
                .unwrap_or_default(),
            when(r.at_ms),
            id = esc(&r.stripe_id),
            href = enc(&r.stripe_id),
        );
    }
    b.push_str("</table>");
    if !ignored.is_empty() && f.state.is_empty() {
        w!(
            b,
            "<h2>Events ignored by type</h2><p class=\"muted\">Answered 200 and recorded; their type is not handled.</p><table id=\"ignored\"><tr><th>Event</th><th>State</th></tr>"
        );
        for e in ignored {
            w!(
                b,
                "<tr><td>{}</td><td><span class=\"state ignored\" data-state=\"ignored\">ignored by type</span></td></tr>",
                esc(&e.event_id)
            );
        }
        b.push_str("</table>");
    }
    page("Records", "Records", &b)
}

pub fn record(r: &RecordView) -> String {
    let mut b = String::new();
    let state = r.state();
    w!(
        b,
        "<p>State: {}{}</p><h2>Path</h2><table id=\"path\"><tr><th>Stripe event</th><th>ERP document</th><th>Reference</th><th>ERP</th><th>ERP id</th><th>Amount</th><th>State</th><th>When</th></tr>",
        state_badge(&state),
        state
            .reason()
            .map(|x| format!(" <span class=\"reason\">{}</span>", esc(x)))
            .unwrap_or_default()
    );
    for d in &r.documents {
        w!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}{}</td><td>{}</td></tr>",
            d.event_id
                .clone()
                .zip(d.event_type.clone())
                .into_iter()
                .chain(d.also.iter().cloned())
                .map(|(id, t)| format!("{} <span class=\"muted\">{}</span>", esc(&t), esc(&id)))
                .collect::<Vec<_>>()
                .join("<br>"),
            esc(&d.kind),
            esc(&d.reference),
            esc(d.erp.as_deref().unwrap_or("—")),
            esc(d.erp_id.as_deref().unwrap_or("—")),
            money(d.amount),
            state_badge(&d.state),
            d.state
                .reason()
                .map(|x| format!("<div class=\"reason\">{}</div>", esc(x)))
                .unwrap_or_default(),
            when(d.at_ms)
        );
    }
    b.push_str("</table><h2>Write-back to Stripe</h2>");
    if r.write_backs.is_empty() {
        b.push_str("<p class=\"muted\">None recorded.</p>");
    } else {
        b.push_str("<table id=\"writeback\"><tr><th>Metadata key</th><th>Value</th></tr>");
        for (k, v) in &r.write_backs {
            w!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        b.push_str("</table>");
    }
    page(&r.stripe_id, "Records", &b)
}

pub fn parked(items: &[ParkedView], csrf: &str, notice: Option<&str>) -> String {
    let mut b = String::new();
    if let Some(n) = notice {
        w!(b, "<p class=\"card\" id=\"notice\">{}</p>", esc(n));
    }
    if items.is_empty() {
        b.push_str("<p id=\"empty\">Nothing parked and no dead letters.</p>");
    }
    let mut groups: Vec<(&str, Vec<&ParkedView>)> = Vec::new();
    for p in items {
        match groups.iter_mut().find(|(g, _)| *g == p.group) {
            Some((_, v)) => v.push(p),
            None => groups.push((&p.group, vec![p])),
        }
    }
    b.push_str("<p class=\"muted\">Fix the cause first (mapping, ERP master data, the ERP itself), then replay. Every stage is idempotent: a document already in the ERP is recognised, not created again. Every action is audited.</p>");
    for (g, list) in groups {
        let replayable: Vec<&&ParkedView> = list.iter().filter(|p| p.target.is_some()).collect();
        w!(
            b,
            "<h2>{} <span class=\"muted\">({})</span></h2>",
            esc(g),
            list.len()
        );
        if replayable.len() > 1 {
            w!(
                b,
                "<form method=\"post\" action=\"/parked/replay-group\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"group\" value=\"{}\"><button>Replay all {} of this reason</button></form>",
                esc(csrf),
                esc(g),
                replayable.len()
            );
        }
        b.push_str("<table class=\"parked\"><tr><th>What</th><th>Where</th><th>Reason</th><th>Since</th><th></th></tr>");
        for p in list {
            let action = if p.target.is_some() {
                format!(
                    "<form method=\"post\" action=\"/parked/replay\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\"><button class=\"replay\" data-id=\"{}\">Replay</button></form> <a href=\"/parked/item?id={}\">edit and retry</a>",
                    esc(csrf),
                    esc(&p.id),
                    esc(&p.id),
                    enc(&p.id)
                )
            } else {
                "<span class=\"muted\">reconsidered by the payout sweep</span>".into()
            };
            w!(
                b,
                "<tr data-id=\"{}\"><td>{}</td><td>{} → {}</td><td class=\"reason\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.id),
                esc(&p.subject),
                esc(&p.stage),
                esc(p.target.as_deref().unwrap_or("—")),
                esc(&p.reason),
                when(p.at_ms),
                action
            );
        }
        b.push_str("</table>");
    }
    page("Parked work", "Parked work", &b)
}

pub fn parked_item(p: &ParkedView, csrf: &str) -> String {
    let pretty = p
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .or_else(|| p.body.clone())
        .unwrap_or_default();
    let b = format!(
        "<p><b>{}</b> — {} → {}</p><p class=\"reason\">{}</p>\
         <form method=\"post\" action=\"/parked/replay\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
         <p class=\"muted\">Correct the message where the fix is in it (a mapping value, an account, an item), then send it. It is checked against the queue's message format first.</p>\
         <textarea name=\"body\" rows=\"28\">{}</textarea><p><button>Send the edited message</button></p></form>",
        esc(&p.subject),
        esc(&p.stage),
        esc(p.target.as_deref().unwrap_or("—")),
        esc(&p.reason),
        esc(csrf),
        esc(&p.id),
        esc(&pretty)
    );
    page("Edit and retry", "Parked work", &b)
}

/// One series of the chart: name, colour, value of a day.
type Series = (&'static str, &'static str, fn(&DayTotals) -> i64);

/// A bar chart of the daily (or weekly) totals: volume, fees, refunds, disputes.
pub fn chart(days: &[DayTotals]) -> String {
    if days.is_empty() {
        return "<p class=\"muted\">No amounts yet.</p>".into();
    }
    let series: [Series; 4] = [
        ("volume", "#3b7dd8", |d| d.volume_minor),
        ("fees", "#e0a030", |d| d.fees_minor),
        ("refunds", "#c04848", |d| d.refunds_minor),
        ("disputes", "#7a4cc0", |d| d.disputes_minor),
    ];
    let max = days
        .iter()
        .flat_map(|d| series.iter().map(move |(_, _, f)| f(d).saturating_abs()))
        .max()
        .unwrap_or(1)
        .max(1);
    let group_w = 16 * 4 + 24;
    let width = 60 + group_w * days.len();
    let mut s = format!(
        "<svg id=\"chart\" role=\"img\" aria-label=\"volume, fees, refunds and disputes\" width=\"{width}\" height=\"230\" viewBox=\"0 0 {width} 230\" style=\"background:#fff;border:1px solid #e3e6ea\">"
    );
    for (i, d) in days.iter().enumerate() {
        let x0 = 50 + i * group_w;
        for (j, (name, color, f)) in series.iter().enumerate() {
            let v = f(d).saturating_abs();
            let h = (v.saturating_mul(170) / max).max(if v > 0 { 1 } else { 0 });
            w!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"{h}\" fill=\"{color}\"><title>{} {name} {} minor units ({})</title></rect>",
                x0 + j * 16,
                190 - h,
                esc(&d.day),
                v,
                esc(&d.currency)
            );
        }
        w!(
            s,
            "<text x=\"{x0}\" y=\"206\" font-size=\"10\">{}</text><text x=\"{x0}\" y=\"218\" font-size=\"9\" fill=\"#66707a\">{}</text>",
            esc(&d.day),
            esc(&d.currency)
        );
    }
    for (j, (name, color, _)) in series.iter().enumerate() {
        w!(
            s,
            "<rect x=\"{}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"17\" font-size=\"11\">{name}</text>",
            50 + j * 80,
            64 + j * 80
        );
    }
    s.push_str("</svg>");
    s
}

/// Totals by ISO week (the Monday's date) instead of by day.
pub fn weekly(days: &[DayTotals]) -> Vec<DayTotals> {
    let mut out: Vec<DayTotals> = Vec::new();
    for d in days {
        let monday = ledgerbridge_erp::ErpDate::parse(&d.day)
            .ok()
            .map(|date| {
                let secs = date.unix_midnight();
                // 1970-01-01 was a Thursday: days since the previous Monday.
                let back = (secs.div_euclid(86_400) + 3).rem_euclid(7);
                ledgerbridge_erp::ErpDate::from_unix(secs - back * 86_400)
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|_| d.day.clone())
            })
            .unwrap_or_else(|| d.day.clone());
        match out
            .iter_mut()
            .find(|w| w.day == monday && w.currency == d.currency)
        {
            Some(w) => {
                w.volume_minor = w.volume_minor.saturating_add(d.volume_minor);
                w.fees_minor = w.fees_minor.saturating_add(d.fees_minor);
                w.refunds_minor = w.refunds_minor.saturating_add(d.refunds_minor);
                w.disputes_minor = w.disputes_minor.saturating_add(d.disputes_minor);
            }
            None => out.push(DayTotals {
                day: monday,
                ..d.clone()
            }),
        }
    }
    out
}

fn journal_state(p: &PayoutView) -> String {
    match &p.journal_state {
        Some(s) => format!(
            "{}{}",
            state_badge(s),
            s.reason()
                .map(|r| format!("<div class=\"reason\">{}</div>", esc(r)))
                .unwrap_or_default()
        ),
        None => "—".into(),
    }
}

fn tie(p: &PayoutView) -> String {
    match p.variance {
        Some(v) if v.minor == 0 => {
            "<span class=\"ok tie\" data-tie=\"yes\">ties to the bank</span>".into()
        }
        Some(v) => format!("<span class=\"bad tie\" data-tie=\"no\">differs by {v}</span>"),
        None => "<span class=\"muted\">—</span>".into(),
    }
}

pub fn payouts(list: &[PayoutView], days: &[DayTotals], weekly_view: bool) -> String {
    let mut b = String::from(
        "<table id=\"payouts\"><tr><th>Payout</th><th>Bank deposit</th><th>Journal</th><th>ERP journal id</th><th>Journal state</th><th>Bank line</th><th>Variance</th><th>Discrepancies</th><th>In the ERP's ledger</th></tr>",
    );
    for p in list {
        w!(
            b,
            "<tr data-payout=\"{}\"><td><a href=\"/payouts/{}\">{}</a>{}</td><td class=\"num deposit\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&p.payout),
            enc(&p.report_key),
            esc(&p.payout),
            if p.report_key.ends_with("#failed") { " <span class=\"muted\">(failed payout)</span>" } else { "" },
            money(p.deposit),
            esc(p.journal_reference.as_deref().unwrap_or(&p.reconciliation)),
            esc(p.journal_erp_id.as_deref().unwrap_or("—")),
            journal_state(p),
            money(p.bank_line),
            tie(p),
            p.discrepancies.len() as u64 + p.omitted,
            esc(p.journal_ledger.as_deref().unwrap_or("—"))
        );
    }
    b.push_str("</table>");
    w!(
        b,
        "<h2>{} volume, fees, refunds and disputes</h2><p><a href=\"/payouts\">daily</a> · <a href=\"/payouts?by=week\">weekly</a></p>{}",
        if weekly_view { "Weekly" } else { "Daily" },
        chart(&if weekly_view { weekly(days) } else { days.to_vec() })
    );
    b.push_str("<p class=\"muted\">Volume: cash receipts; refunds: credit memos; disputes: dispute journals (as posted to the ERP); fees: the payout journals' fee lines.</p>");
    page("Payouts", "Payouts", &b)
}

pub fn payout(p: &PayoutView) -> String {
    let mut b = format!(
        "<table id=\"summary\"><tr><th>Bank deposit</th><td class=\"num\" id=\"deposit\">{}</td></tr>\
         <tr><th>Arrival</th><td>{}</td></tr><tr><th>Reconciliation</th><td>{}</td></tr>\
         <tr><th>ERP journal</th><td>{} → <b id=\"journal-id\">{}</b></td></tr><tr><th>Journal state now</th><td>{}</td></tr><tr><th>Journal in the ERP's ledger</th><td id=\"journal-ledger\">{}</td></tr>\
         <tr><th>Bank line of the journal</th><td class=\"num\">{}</td></tr><tr><th>Deposit − bank line</th><td id=\"variance\">{} {}</td></tr>\
         <tr><th>Booked to the variance account</th><td class=\"num\">{}</td></tr>{}</table>",
        money(p.deposit),
        when(p.arrival_date.saturating_mul(1000)),
        esc(&p.reconciliation),
        esc(p.journal_reference.as_deref().unwrap_or("—")),
        esc(p.journal_erp_id.as_deref().unwrap_or("not in the ERP yet")),
        journal_state(p),
        esc(p.journal_ledger.as_deref().unwrap_or("—")),
        money(p.bank_line),
        money(p.variance),
        tie(p),
        money(p.variance_booked),
        p.error
            .as_deref()
            .map(|e| format!("<tr><th>Error</th><td class=\"reason\">{}</td></tr>", esc(e)))
            .unwrap_or_default()
    );
    w!(
        b,
        "<h2>Journal lines by account</h2><p><a href=\"/payouts/{key}/lines.csv\">lines.csv</a> · <a href=\"/payouts/{key}/discrepancies.csv\">discrepancies.csv</a></p>\
         <table id=\"lines\"><tr><th>Account</th><th>Debit</th><th>Credit</th><th>Memo</th></tr>",
        key = enc(&p.report_key)
    );
    for l in &p.lines {
        w!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&l.account),
            l.debit.map(|m| m.to_string()).unwrap_or_default(),
            l.credit.map(|m| m.to_string()).unwrap_or_default(),
            esc(l.memo.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table><h2>Discrepancy report</h2>");
    if p.discrepancies.is_empty() {
        b.push_str("<p>No discrepancies.</p>");
    } else {
        b.push_str("<table id=\"discrepancies\"><tr><th>Kind</th><th>Balance transaction</th><th>Source</th><th>Amount</th><th>Detail</th></tr>");
        for d in &p.discrepancies {
            let kind = serde_json::to_value(d.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            w!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&kind),
                esc(d.balance_transaction.as_deref().unwrap_or("—")),
                esc(d.source.as_deref().unwrap_or("—")),
                money(d.amount),
                esc(&d.detail)
            );
        }
        b.push_str("</table>");
        if p.omitted > 0 {
            w!(b, "<p class=\"muted\">{} more not listed.</p>", p.omitted);
        }
    }
    page(&p.payout, "Payouts", &b)
}

/// The journal lines as CSV (RFC 4180): account, side, amount (decimal), currency, memo.
pub fn lines_csv(p: &PayoutView) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from("payout,account,side,amount,currency,memo\r\n");
    for l in &p.lines {
        let (side, m) = match (l.debit, l.credit) {
            (Some(m), _) => ("debit", m),
            (None, Some(m)) => ("credit", m),
            (None, None) => continue,
        };
        w!(
            out,
            "{},{},{side},{},{},{}\r\n",
            field(&p.payout),
            field(&l.account),
            m.to_decimal(),
            m.currency.code(),
            field(l.memo.as_deref().unwrap_or(""))
        );
    }
    out
}

pub fn health(h: &HealthView) -> String {
    let rate = |r: &ErrorRate| {
        r.permille
            .map(|p| format!("{}.{} %", p / 10, p % 10))
            .unwrap_or_else(|| "—".into())
    };
    let mut b = format!(
        "<div class=\"cards\"><div class=\"card\">Parked<b id=\"parked-count\">{}</b></div>\
         <div class=\"card\">Posted, last hour<b id=\"posted-hour\">{}</b></div><div class=\"card\">Failed, last hour<b id=\"failed-hour\">{}</b></div>\
         <div class=\"card\">Error rate, last hour<b id=\"rate-hour\">{}</b></div>\
         <div class=\"card\">Posted, last day<b id=\"posted-day\">{}</b></div><div class=\"card\">Failed, last day<b id=\"failed-day\">{}</b></div>\
         <div class=\"card\">Error rate, last day<b id=\"rate-day\">{}</b></div></div>\
         <p class=\"muted\">Error rate: parked and dead-lettered messages among all outcomes (documents posted or found posted, messages parked or dead-lettered).</p>\
         <h2>Queues</h2><table id=\"queues\"><tr><th>Queue</th><th>Depth</th><th>Dead letters</th><th>Oldest message</th></tr>",
        h.parked,
        h.last_hour.posted,
        h.last_hour.failed,
        rate(&h.last_hour),
        h.last_day.posted,
        h.last_day.failed,
        rate(&h.last_day),
    );
    for q in &h.queues {
        w!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&q.name),
            q.depth,
            q.dead_letters,
            q.oldest_age_ms
                .map(|ms| format!("{} s", ms / 1000))
                .unwrap_or_else(|| "—".into())
        );
    }
    b.push_str("</table><h2>Last successful post</h2><table id=\"last-post\"><tr><th>ERP</th><th>When</th></tr>");
    for (erp, at) in &h.last_post {
        w!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(erp), when(*at));
    }
    b.push_str("</table>");
    for n in &h.notes {
        w!(b, "<p class=\"muted\">{}</p>", esc(n));
    }
    page("Health", "Health", &b)
}

pub fn audit(entries: &[AuditEntry]) -> String {
    let mut b = String::from(
        "<table id=\"audit\"><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Detail</th></tr>",
    );
    for a in entries {
        w!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(a.at_ms),
            esc(&a.who),
            esc(&a.action),
            esc(&a.target),
            esc(&a.detail)
        );
    }
    b.push_str("</table>");
    page("Audit", "Audit", &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn weeks_start_on_monday() {
        let d = |day: &str, v| DayTotals {
            day: day.into(),
            currency: "USD".into(),
            volume_minor: v,
            ..DayTotals::default()
        };
        // 2026-06-01 is a Monday; 2026-06-07 the Sunday of the same week.
        let w = weekly(&[
            d("2026-06-01", 100),
            d("2026-06-07", 50),
            d("2026-06-08", 7),
        ]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].day, "2026-06-01");
        assert_eq!(w[0].volume_minor, 150);
        assert_eq!(w[1].day, "2026-06-08");
    }
}
