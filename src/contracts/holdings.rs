//! Holdings left in an old month: after a roll, new orders for `ES1!` go to the new front month, while a
//! position or a working order in the previous month stays where it is. The relay never moves or closes
//! them; it reports them (a WARN at start-up and daily, a `/healthz` problem, a line in `check`), and
//! closing the old contract (`ClosePosition`/`Flatten` on `ES 12-26`) is the trader's explicit choice.

use std::fmt;

use crate::clock::Timestamp;
use crate::instruments::Instruments;

use super::{contracts_front_of, parse_contract_name};

/// What is held: a position or a working order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldingKind {
    Position,
    WorkingOrder,
}

/// A position or working order in a contract month that is no longer the front month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldMonthHolding {
    pub account: String,
    pub contract: String,
    pub kind: HoldingKind,
    /// Signed contracts for a position; the order id for a working order.
    pub detail: String,
    /// The front month that replaced it.
    pub front: String,
}

impl fmt::Display for OldMonthHolding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HoldingKind::Position => write!(
                f,
                "{}: position {} in {}, which rolled to {}; the relay leaves it there (close it with ClosePosition on {} if you mean to)",
                self.account, self.detail, self.contract, self.front, self.contract
            ),
            HoldingKind::WorkingOrder => write!(
                f,
                "{}: working order {} in {}, which rolled to {}; the relay leaves it there (cancel it or close the position on {} if you mean to)",
                self.account, self.detail, self.contract, self.front, self.contract
            ),
        }
    }
}

/// The front month that replaced `contract` at `at`, when `contract` is a month of a root that has rolled
/// past it; `None` for the front month itself, a later month, or an instrument without contract months.
pub fn rolled_past(instruments: &Instruments, contract: &str, at: Timestamp) -> Option<String> {
    let (root, cm) = parse_contract_name(contract)?;
    let (front, dates) = contracts_front_of(instruments, root, at)?;
    (cm < dates.month).then_some(front)
}

/// The old-month holdings among `(account, contract, kind, detail)` items.
pub fn old_months<'a>(
    instruments: &Instruments,
    at: Timestamp,
    items: impl IntoIterator<Item = (&'a str, &'a str, HoldingKind, String)>,
) -> Vec<OldMonthHolding> {
    items
        .into_iter()
        .filter_map(|(account, contract, kind, detail)| {
            let front = rolled_past(instruments, contract, at)?;
            Some(OldMonthHolding {
                account: account.to_string(),
                contract: contract.to_string(),
                kind,
                detail,
                front,
            })
        })
        .collect()
}
