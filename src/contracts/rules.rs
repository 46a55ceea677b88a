//! Expiry and roll rules: when a contract month stops trading, and when the relay moves a continuous
//! symbol (`ES1!`) from it to the next month.
//!
//! - `equity-quarterly` (ES, MES, NQ, MNQ): expiry the third Friday of the contract month (the business day
//!   before it when that Friday is a holiday); roll the Thursday eight days before, CME's roll date.
//! - `cl` (NYMEX crude oil): expiry three business days before the 25th calendar day of the month before the
//!   contract month (before the business day preceding the 25th when the 25th is not a business day); roll
//!   [`CL_ROLL_BUSINESS_DAYS`] business days before expiry.
//! - `gc` (COMEX gold): expiry the third-last business day of the contract month; roll the business day
//!   before first notice day (the last business day of the month before the contract month), so the roll
//!   happens before the month starts.
//!
//! `roll_days_before = N` replaces a rule's roll with "N calendar days before expiry" (on a business day, else
//! the business day before); an explicit roll date for a month overrides both.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::calendar::{business_days_before, last_day_of_month, nth_weekday, on_or_before};

/// Business days between the default CL roll and expiry: liquidity has moved to the next month by then,
/// and a position is still out before the last days of a physically delivered contract.
pub const CL_ROLL_BUSINESS_DAYS: u32 = 5;

/// A contract month: (year, month 1–12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContractMonth {
    pub year: i32,
    pub month: u32,
}

/// The CME month codes, January (F) to December (Z).
pub const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

impl ContractMonth {
    /// The month after this one.
    pub fn next(self) -> ContractMonth {
        if self.month == 12 {
            ContractMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            ContractMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before this one.
    pub fn prev(self) -> ContractMonth {
        if self.month == 1 {
            ContractMonth {
                year: self.year - 1,
                month: 12,
            }
        } else {
            ContractMonth {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month code (`H` for March).
    pub fn code(self) -> char {
        MONTH_CODES[(self.month as usize).clamp(1, 12) - 1]
    }

    /// NinjaTrader's `MM-YY` (`03-27`).
    pub fn nt(self) -> String {
        format!("{:02}-{:02}", self.month, self.year.rem_euclid(100))
    }

    /// Parses NinjaTrader's `MM-YY` (month 1–12 is checked by the caller, who says why).
    pub fn parse_nt(s: &str) -> Option<(u32, i32)> {
        let (m, y) = s.split_once('-')?;
        if m.len() != 2 || y.len() != 2 || !(m.chars().chain(y.chars()).all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        Some((m.parse().ok()?, 2000 + y.parse::<i32>().ok()?))
    }
}

/// The month code's month (1–12).
pub fn month_of_code(c: char) -> Option<u32> {
    MONTH_CODES
        .iter()
        .position(|&m| m == c.to_ascii_uppercase())
        .map(|i| i as u32 + 1)
}

/// Which expiry rule (and default roll) a root follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// CME equity-index quarterlies: third Friday; roll the Thursday 8 days before.
    EquityQuarterly,
    /// NYMEX crude oil.
    Cl,
    /// COMEX gold.
    Gc,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::EquityQuarterly => "equity-quarterly",
            Rule::Cl => "cl",
            Rule::Gc => "gc",
        }
    }

    /// The last trading day of `cm`.
    pub fn expiry(self, cm: ContractMonth) -> NaiveDate {
        match self {
            Rule::EquityQuarterly => on_or_before(third_friday(cm)),
            Rule::Cl => {
                let before = cm.prev();
                let the_25th =
                    NaiveDate::from_ymd_opt(before.year, before.month, 25).unwrap_or_default();
                business_days_before(on_or_before(the_25th), 3)
            }
            Rule::Gc => business_days_before(last_day_of_month(cm.year, cm.month), 2),
        }
    }

    /// The rule's own roll date of `cm` and how it was derived.
    fn default_roll(self, cm: ContractMonth, expiry: NaiveDate) -> (NaiveDate, String) {
        match self {
            Rule::EquityQuarterly => (
                on_or_before(third_friday(cm) - Duration::days(8)),
                format!("Thursday 8 days before expiry {expiry}"),
            ),
            Rule::Cl => (
                business_days_before(expiry, CL_ROLL_BUSINESS_DAYS),
                format!("{CL_ROLL_BUSINESS_DAYS} business days before expiry {expiry}"),
            ),
            Rule::Gc => {
                let before = cm.prev();
                let first_notice = on_or_before(last_day_of_month(before.year, before.month));
                (
                    business_days_before(first_notice, 1),
                    format!("business day before first notice day {first_notice}; expiry {expiry}"),
                )
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            Rule::EquityQuarterly => "equity-index quarterly",
            Rule::Cl => "CL",
            Rule::Gc => "GC",
        }
    }
}

fn third_friday(cm: ContractMonth) -> NaiveDate {
    nth_weekday(cm.year, cm.month, Weekday::Fri, 3).unwrap_or_default()
}

/// The months a root trades and how its contracts expire and roll.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub rule: Rule,
    /// Months traded, 1–12, ascending.
    pub months: Vec<u32>,
    /// When set: roll this many calendar days before expiry instead of the rule's own roll.
    pub roll_days_before: Option<u32>,
    /// Explicit roll dates, by contract month; they override the rule.
    pub roll_dates: BTreeMap<ContractMonth, NaiveDate>,
}

/// One contract month's dates and the words that explain its roll.
#[derive(Debug, Clone, PartialEq)]
pub struct Dates {
    pub month: ContractMonth,
    pub expiry: NaiveDate,
    pub roll: NaiveDate,
    /// How the roll date was chosen, e.g. `Thursday 8 days before expiry 2026-12-18`.
    pub why: String,
}

impl fmt::Display for Dates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "roll {} ({})", self.roll, self.why)
    }
}

impl Schedule {
    /// True when the root trades this month of the year.
    pub fn trades(&self, month: u32) -> bool {
        self.months.contains(&month)
    }

    /// Expiry and roll of one contract month.
    pub fn dates(&self, cm: ContractMonth) -> Dates {
        let expiry = self.rule.expiry(cm);
        let (roll, why) = if let Some(&d) = self.roll_dates.get(&cm) {
            (
                d,
                format!("explicit roll date in roll_dates; expiry {expiry}"),
            )
        } else if let Some(n) = self.roll_days_before {
            (
                on_or_before(expiry - Duration::days(i64::from(n))),
                format!("{n} days before expiry {expiry}"),
            )
        } else {
            self.rule.default_roll(cm, expiry)
        };
        Dates {
            month: cm,
            expiry,
            roll,
            why,
        }
    }

    /// The contracts traded from the month before `date` on, in order (about three years of them).
    pub fn contracts_from(&self, date: NaiveDate) -> impl Iterator<Item = ContractMonth> + '_ {
        let start = ContractMonth {
            year: date.year(),
            month: date.month(),
        }
        .prev();
        std::iter::successors(Some(start), |cm| Some(cm.next()))
            .take(40)
            .filter(|cm| self.trades(cm.month))
    }

    /// The front month on `date`: the first contract whose roll date is after `date` (on the roll date
    /// itself the next month is already the front month).
    pub fn front(&self, date: NaiveDate) -> Option<Dates> {
        self.contracts_from(date)
            .map(|cm| self.dates(cm))
            .find(|d| d.roll > date)
    }

    /// The words for the record: the rule and the dates that made this month the front month.
    pub fn describe(&self, d: &Dates) -> String {
        format!(
            "{}: front month until the roll on {} ({})",
            self.rule.label(),
            d.roll,
            d.why
        )
    }
}
