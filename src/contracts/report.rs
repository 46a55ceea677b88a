//! What `check`, `serve` and `contracts` say about contract months: each root's front month with its next
//! roll and expiry, a warning when a roll is near, and what to write instead of a deprecated per-month
//! entry.

use chrono::NaiveDate;

use crate::clock::Timestamp;
use crate::instruments::Instruments;

use super::{calendar, contract_name, Dates, ROLL_WARNING_DAYS};

/// One root's contract months at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontMonth {
    pub root: String,
    /// The front month (`ES 12-26`).
    pub contract: String,
    /// Its roll date: from then on the root resolves to `next`.
    pub roll: NaiveDate,
    pub next: String,
    /// The front month's last trading day.
    pub expiry: NaiveDate,
    /// How the roll date was chosen.
    pub why: String,
    /// Calendar days from `at`'s exchange date to the roll.
    pub days_to_roll: i64,
}

impl FrontMonth {
    /// Is the roll less than [`ROLL_WARNING_DAYS`] away (warned about, notified)?
    pub fn roll_soon(&self) -> bool {
        self.days_to_roll < ROLL_WARNING_DAYS
    }

    /// The warning `check` and `serve` print, and the relay logs daily, while [`FrontMonth::roll_soon`].
    pub fn roll_warning(&self) -> String {
        format!(
            "{} rolls in {} day(s), on {}: from then on its symbols resolve to {}; positions and orders in {} stay there until you close them (README, Contract months)",
            self.root, self.days_to_roll, self.roll, self.next, self.contract
        )
    }
}

/// Each root's front month at `at`.
pub fn front_months(instruments: &Instruments, at: Timestamp) -> Vec<FrontMonth> {
    let today = calendar::exchange_date(at);
    instruments
        .front_months(at)
        .into_iter()
        .map(|(resolved, dates)| {
            let next = instruments
                .roots()
                .find(|(r, _)| *r == resolved.root)
                .and_then(|(_, s)| s.front(dates.roll))
                .map_or_else(String::new, |d: Dates| {
                    contract_name(&resolved.root, d.month)
                });
            FrontMonth {
                contract: resolved.contract,
                roll: dates.roll,
                next,
                expiry: dates.expiry,
                why: dates.why,
                days_to_roll: (dates.roll - today).num_days(),
                root: resolved.root,
            }
        })
        .collect()
}

/// One roll: its date, the contract it leaves and the one it goes to.
pub type Roll = (NaiveDate, String, String);

/// The next `n` rolls of every root from `at`, by root.
pub fn next_rolls(instruments: &Instruments, at: Timestamp, n: usize) -> Vec<(String, Vec<Roll>)> {
    instruments
        .roots()
        .map(|(root, schedule)| {
            let mut rolls = Vec::new();
            let mut day = calendar::exchange_date(at);
            while rolls.len() < n {
                let Some(d) = schedule.front(day) else { break };
                let to = schedule
                    .front(d.roll)
                    .map_or_else(String::new, |t| contract_name(root, t.month));
                rolls.push((d.roll, contract_name(root, d.month), to));
                day = d.roll;
            }
            (root.to_string(), rolls)
        })
        .collect()
}

/// The lines `check` and `serve` print: the front months, a warning for each roll less than
/// [`ROLL_WARNING_DAYS`] away, and the deprecated per-month entries with what to write instead.
pub fn startup_lines(instruments: &Instruments, at: Timestamp) -> Vec<String> {
    let fronts = front_months(instruments, at);
    let mut lines = Vec::new();
    if !fronts.is_empty() {
        let list: Vec<String> = fronts
            .iter()
            .map(|f| format!("{} (roll {}, expiry {})", f.contract, f.roll, f.expiry))
            .collect();
        lines.push(format!(
            "front months as of {}: {}",
            calendar::exchange_date(at),
            list.join(", ")
        ));
    }
    for f in fronts.iter().filter(|f| f.roll_soon()) {
        lines.push(format!("WARNING: {}", f.roll_warning()));
    }
    for d in instruments.deprecations(at) {
        lines.push(format!("WARNING: {d}"));
    }
    lines
}

/// The README's table of the next four roll dates, roots with the same dates on one row.
pub fn markdown_roll_table(instruments: &Instruments, at: Timestamp) -> String {
    let rolls = next_rolls(instruments, at, 4);
    // Roots with the same rolls share a row: (roots, dates, (from, to) months).
    type Row = (Vec<String>, Vec<NaiveDate>, Vec<(String, String)>);
    let mut rows: Vec<Row> = Vec::new();
    for (root, list) in rolls {
        let dates: Vec<NaiveDate> = list.iter().map(|(d, _, _)| *d).collect();
        let months: Vec<(String, String)> = list
            .iter()
            .map(|(_, from, to)| (month_of(from), month_of(to)))
            .collect();
        match rows
            .iter_mut()
            .find(|(_, d, m)| *d == dates && *m == months)
        {
            Some((roots, _, _)) => roots.push(root),
            None => rows.push((vec![root], dates, months)),
        }
    }
    let mut out = String::from("| Roots | 1st roll | 2nd roll | 3rd roll | 4th roll |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for (roots, dates, months) in rows {
        let cells: Vec<String> = dates
            .iter()
            .zip(&months)
            .map(|(d, (from, to))| format!("{d} ({from} → {to})"))
            .collect();
        out.push_str(&format!(
            "| {} | {} |\n",
            roots.join(", "),
            cells.join(" | ")
        ));
    }
    out
}

/// `03-27` of `ES 03-27`.
fn month_of(contract: &str) -> String {
    contract
        .split_once(' ')
        .map_or(contract, |(_, m)| m)
        .to_string()
}
