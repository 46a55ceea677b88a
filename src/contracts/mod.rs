//! Contract months: which month of a futures root (`ES`) a continuous symbol (`ES1!`) means at a given
//! time, which explicit contracts (`ES 03-27`, `ESH2027`, `ESH27`, `ESH7`) exist and have not expired, and
//! the roll and expiry dates behind both. The relay never rolls a position: it only decides where new
//! orders go and reports what is left in an old month ([`holdings`]).
//!
//! - [`calendar`]: the exchange date (America/Chicago), business days and US exchange holidays.
//! - [`rules`]: expiry and roll rules (`equity-quarterly`, `cl`, `gc`, `roll_days_before`, explicit dates).
//! - [`symbol`]: parsing the explicit contract spellings.
//! - [`holdings`]: positions and working orders left in a month that is no longer the front month.
//! - [`report`]: the front months, roll warnings and deprecation notes that `check`, `serve` and
//!   `contracts` print, and the README's roll table.
//!
//! Resolution takes the time as a parameter: the alert's receipt time for webhooks and replays, now for
//! API calls. The table of roots lives in [`crate::instruments`].

pub mod calendar;
pub mod holdings;
pub mod report;
pub mod rules;
pub mod symbol;
#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use serde::Serialize;

use crate::clock::Timestamp;
pub use rules::{ContractMonth, Dates, Rule, Schedule};

/// Days before a roll from which `check` and `serve` warn about it.
pub const ROLL_WARNING_DAYS: i64 = 5;

/// What a symbol resolved to, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    /// The NinjaTrader instrument name (`ES 03-27`).
    pub contract: String,
    pub root: String,
    /// The rule that chose the contract, with its dates.
    pub rule: String,
}

/// An explicit contract that cannot be traded; the message says why and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("instrument: {raw} is not a contract: {why}")]
    Impossible { raw: String, why: String },
    #[error("instrument: {contract} expired on {expiry}; the front month is {front}")]
    Expired {
        contract: String,
        expiry: NaiveDate,
        front: String,
    },
}

/// NinjaTrader's name of a contract: `ES 03-27`.
pub fn contract_name(root: &str, cm: ContractMonth) -> String {
    format!("{root} {}", cm.nt())
}

/// Splits a NinjaTrader contract name (`ES 03-27`) into root and month; `None` for anything else.
pub fn parse_contract_name(name: &str) -> Option<(&str, ContractMonth)> {
    let (root, mm_yy) = name.trim().split_once(' ')?;
    let (month, year) = ContractMonth::parse_nt(mm_yy)?;
    (1..=12)
        .contains(&month)
        .then_some((root, ContractMonth { year, month }))
}

/// The front month of `root` at `at`.
pub fn front(root: &str, schedule: &Schedule, at: Timestamp) -> Option<(Resolved, Dates)> {
    let dates = schedule.front(calendar::exchange_date(at))?;
    let resolved = Resolved {
        contract: contract_name(root, dates.month),
        root: root.to_string(),
        rule: schedule.describe(&dates),
    };
    Some((resolved, dates))
}

/// An explicit contract of `root`: itself, when the root trades that month and it has not expired at `at`.
pub fn explicit(
    raw: &str,
    root: &str,
    schedule: &Schedule,
    spelled: &symbol::Explicit,
    at: Timestamp,
) -> Result<Resolved, ContractError> {
    let impossible = |why: String| ContractError::Impossible {
        raw: raw.trim().to_string(),
        why,
    };
    let cm = spelled.contract_month().ok_or_else(|| {
        impossible(format!(
            "month {} does not exist (months are 01 to 12)",
            spelled.month
        ))
    })?;
    if !schedule.trades(cm.month) {
        let traded: Vec<String> = schedule
            .months
            .iter()
            .map(|&m| format!("{} ({m:02})", rules::MONTH_CODES[m as usize - 1]))
            .collect();
        return Err(impossible(format!(
            "{root} trades only the months {}",
            traded.join(", ")
        )));
    }
    let dates = schedule.dates(cm);
    let today = calendar::exchange_date(at);
    if today > dates.expiry {
        let front = front(root, schedule, at).map_or_else(String::new, |(r, _)| r.contract);
        return Err(ContractError::Expired {
            contract: contract_name(root, cm),
            expiry: dates.expiry,
            front,
        });
    }
    Ok(Resolved {
        contract: contract_name(root, cm),
        root: root.to_string(),
        rule: format!("explicit contract (expiry {})", dates.expiry),
    })
}

/// The front month of a configured root of `instruments` at `at`, with its dates.
fn contracts_front_of(
    instruments: &crate::instruments::Instruments,
    root: &str,
    at: Timestamp,
) -> Option<(String, Dates)> {
    let (_, schedule) = instruments.roots().find(|(r, _)| *r == root)?;
    front(root, schedule, at).map(|(r, d)| (r.contract, d))
}
