//! The queries of the list calls, below both the port ([`crate::api`]) and the client that
//! turns them into request parameters.

use ledgerbridge_core::ids::PayoutId;

/// Which balance transactions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceTransactionFilter {
    /// The entries of an automatic payout, newest first, including the payout's own entry
    /// (`payout=po_…`).
    Payout(PayoutId),
    /// Entries created in `[from, to)` (Unix seconds), for reconstructing a manual payout,
    /// whose transactions Stripe cannot list by payout (`created[gte]`, `created[lt]`).
    CreatedBetween { from: i64, to: i64 },
}

/// A balance-transaction listing: the filter, and whether to expand each entry's `source`
/// (`expand[]=data.source`: the presentment currency and amount of a foreign-currency charge,
/// needed for FX lines; makes pages larger). Pages hold the client's configured page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceTransactionQuery {
    pub filter: BalanceTransactionFilter,
    pub expand_source: bool,
}

impl BalanceTransactionQuery {
    pub fn payout(payout: PayoutId) -> Self {
        BalanceTransactionQuery {
            filter: BalanceTransactionFilter::Payout(payout),
            expand_source: false,
        }
    }

    pub fn created_between(from: i64, to: i64) -> Self {
        BalanceTransactionQuery {
            filter: BalanceTransactionFilter::CreatedBetween { from, to },
            expand_source: false,
        }
    }

    pub fn expand_source(mut self, yes: bool) -> Self {
        self.expand_source = yes;
        self
    }
}

/// A payout listing (`GET /v1/payouts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutListQuery {
    /// `paid`, `failed`, … (`status=`).
    pub status: Option<String>,
    /// Payouts arriving at or after this Unix time (`arrival_date[gte]=`).
    pub arrival_date_gte: Option<i64>,
    /// Page size, 1–100; the client's configured page size when `None`.
    pub limit: Option<u8>,
}

/// The collections the backfill lists by creation time (`GET /v1/{collection}?created[gte]=…
/// &created[lte]=…&limit=…[&starting_after=…]`). Every one of these list endpoints accepts the
/// `created` range filter and `starting_after` paging, newest first (Stripe API reference:
/// "List all customers / PaymentIntents / refunds / invoices / credit notes / disputes /
/// payouts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CreatedListKind {
    Customers,
    PaymentIntents,
    Refunds,
    Invoices,
    CreditNotes,
    Disputes,
    Payouts,
}

impl CreatedListKind {
    /// Every kind, in the order a backfill reads them (customers before the documents that
    /// name them).
    pub const ALL: [CreatedListKind; 7] = [
        CreatedListKind::Customers,
        CreatedListKind::PaymentIntents,
        CreatedListKind::Refunds,
        CreatedListKind::Invoices,
        CreatedListKind::CreditNotes,
        CreatedListKind::Disputes,
        CreatedListKind::Payouts,
    ];

    /// The API collection (`/v1/{collection}`).
    pub fn collection(&self) -> &'static str {
        match self {
            CreatedListKind::Customers => "customers",
            CreatedListKind::PaymentIntents => "payment_intents",
            CreatedListKind::Refunds => "refunds",
            CreatedListKind::Invoices => "invoices",
            CreatedListKind::CreditNotes => "credit_notes",
            CreatedListKind::Disputes => "disputes",
            CreatedListKind::Payouts => "payouts",
        }
    }
}

/// A listing by creation time: objects created in `[gte, lte]` (Unix seconds, both inclusive,
/// as Stripe's `created[gte]` and `created[lte]`), with optional `expand[]` paths (each one
/// `data.…`). Pages hold the client's configured page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedListQuery {
    pub kind: CreatedListKind,
    pub gte: i64,
    pub lte: i64,
    pub expand: Vec<String>,
}
