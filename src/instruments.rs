//! The instrument table: futures roots (`ES`) with their tick size, point value, contract months and roll
//! rule, and the TradingView symbols (`ES1!`) that map to them. A continuous symbol resolves to the front
//! month at a given time (see [`crate::contracts`]); an explicit contract (`ES 03-27`, `ESH27`) resolves to
//! itself. Loaded from `[instruments]` in the config.
//!
//! The old per-month form (`[instruments."ES 12-26"]`) still loads: such an entry is one fixed contract,
//! and [`Instruments::deprecations`] says which root table to write instead.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::contracts::{
    self, calendar, contract_name, parse_contract_name, rules::month_of_code, symbol,
    ContractError, ContractMonth, Dates, Resolved, Rule, Schedule,
};

/// One tradable instrument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSpec {
    /// Minimum price increment, e.g. 0.25 for ES.
    pub tick_size: f64,
    /// Currency value of one point for one contract, e.g. 50 for ES.
    pub point_value: f64,
    /// TradingView symbols (with or without exchange prefix) that map to this instrument.
    #[serde(default)]
    pub symbols: Vec<String>,
}

/// One `[instruments.NAME]` table: a root (`[instruments.ES]`, with `rule`) or, deprecated, one contract
/// month (`[instruments."ES 12-26"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    pub tick_size: f64,
    pub point_value: f64,
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Month codes traded, e.g. `HMUZ`; the rule's usual months when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<String>,
    /// `equity-quarterly`, `cl` or `gc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// Roll this many calendar days before expiry instead of the rule's roll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll_days_before: Option<u32>,
    /// Explicit roll dates by month, `"03-27" = "2027-03-11"`; they override the rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roll_dates: BTreeMap<String, String>,
}

/// All instruments known to the relay, keyed by their configured name (a root, or a deprecated per-month
/// name).
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    specs: BTreeMap<String, InstrumentSpec>,
    /// The roots configured with a rule: they resolve by contract month.
    schedules: BTreeMap<String, Schedule>,
    /// Upper-cased TradingView symbol (exchange prefix removed) → configured name.
    symbols: HashMap<String, String>,
}

/// An `[instruments]` table that cannot be used; each message names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstrumentError {
    #[error("instruments.\"{name}\".tick_size must be a positive number, got {value}")]
    TickSize { name: String, value: f64 },
    #[error("instruments.\"{name}\".point_value must be a positive number, got {value}")]
    PointValue { name: String, value: f64 },
    /// Two instruments claim the same TradingView symbol (compared without exchange prefix and case).
    #[error("instruments.\"{name}\".symbols: symbol '{symbol}' is already mapped to '{other}'")]
    DuplicateSymbol {
        name: String,
        symbol: String,
        other: String,
    },
    /// A per-month table whose name is not a contract (`ES 13-26`).
    #[error("instruments.\"{name}\": {problem}")]
    Name { name: String, problem: String },
    /// A contract-month key that cannot be used (`months`, `rule`, `roll_days_before`, `roll_dates`).
    #[error("instruments.\"{name}\".{key}: {problem}")]
    Contract {
        name: String,
        key: &'static str,
        problem: String,
    },
}

/// Relative tolerance for "is this price on the tick grid": prices arrive as f64 and `4500.25 / 0.25`
/// is not always an exact integer in binary floating point.
const GRID_EPSILON: f64 = 1e-6;

/// The rule and months a well-known root follows, for the deprecation message and for checking the expiry
/// of an old per-month entry.
pub fn known_rule(root: &str) -> Option<(Rule, &'static str)> {
    match root {
        "ES" | "MES" | "NQ" | "MNQ" | "RTY" | "M2K" | "YM" | "MYM" => {
            Some((Rule::EquityQuarterly, "HMUZ"))
        }
        "CL" | "MCL" => Some((Rule::Cl, "FGHJKMNQUVXZ")),
        "GC" | "MGC" => Some((Rule::Gc, "GJMQVZ")),
        _ => None,
    }
}

/// The months a rule's roots usually trade.
fn default_months(rule: Rule) -> &'static str {
    match rule {
        Rule::EquityQuarterly => "HMUZ",
        Rule::Cl => "FGHJKMNQUVXZ",
        Rule::Gc => "GJMQVZ",
    }
}

impl Instruments {
    /// Builds a table of fixed instruments (no contract months), rejecting nonsensical tick sizes and
    /// symbols claimed by two instruments.
    pub fn new(specs: BTreeMap<String, InstrumentSpec>) -> Result<Self, InstrumentError> {
        let mut symbols = HashMap::new();
        for (name, spec) in &specs {
            if !(spec.tick_size.is_finite() && spec.tick_size > 0.0) {
                return Err(InstrumentError::TickSize {
                    name: name.clone(),
                    value: spec.tick_size,
                });
            }
            if !(spec.point_value.is_finite() && spec.point_value > 0.0) {
                return Err(InstrumentError::PointValue {
                    name: name.clone(),
                    value: spec.point_value,
                });
            }
            for sym in &spec.symbols {
                let key = normalize_symbol(sym);
                if let Some(other) = symbols.insert(key.clone(), name.clone()) {
                    return Err(InstrumentError::DuplicateSymbol {
                        name: name.clone(),
                        symbol: sym.clone(),
                        other,
                    });
                }
            }
        }
        Ok(Self {
            specs,
            schedules: BTreeMap::new(),
            symbols,
        })
    }

    /// Builds the table from `[instruments]`: roots with a rule resolve by contract month; every other
    /// entry is one fixed instrument.
    pub fn from_config(
        config: &BTreeMap<String, InstrumentConfig>,
    ) -> Result<Self, InstrumentError> {
        let specs = config
            .iter()
            .map(|(name, c)| {
                let spec = InstrumentSpec {
                    tick_size: c.tick_size,
                    point_value: c.point_value,
                    symbols: c.symbols.clone(),
                };
                (name.clone(), spec)
            })
            .collect();
        let mut table = Self::new(specs)?;
        for (name, c) in config {
            if let Some(schedule) = schedule_of(name, c)? {
                table.schedules.insert(name.clone(), schedule);
            }
        }
        Ok(table)
    }

    /// The spec of a configured name, or of a contract month of a configured root (`ES 03-27` → `ES`).
    pub fn get(&self, name: &str) -> Option<&InstrumentSpec> {
        if let Some(spec) = self.specs.get(name) {
            return Some(spec);
        }
        let (root, _) = parse_contract_name(name)?;
        self.schedules
            .contains_key(root)
            .then(|| self.specs.get(root))?
    }

    /// The configured names: roots and per-month entries.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// The roots that resolve by contract month, with their schedules.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &Schedule)> {
        self.schedules.iter().map(|(r, s)| (r.as_str(), s))
    }

    /// The root of an instrument name: `ES` for `ES 03-27` or `ES`, when `ES` is a configured root.
    pub fn root_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        let root = parse_contract_name(name).map_or(name.trim(), |(r, _)| r);
        self.schedules.contains_key(root).then_some(root)
    }

    /// The configured name a symbol or name maps to, without choosing a month (`ES1!` → `ES`).
    pub fn configured(&self, symbol: &str) -> Option<&str> {
        if let Some((name, _)) = self.specs.get_key_value(symbol.trim()) {
            return Some(name.as_str());
        }
        self.symbols
            .get(&normalize_symbol(symbol))
            .map(String::as_str)
    }

    /// The spec of any spelling, without choosing a month: a configured name or symbol, a contract name, or
    /// an explicit contract of a configured root (`ESH27`). For tick sizes, which do not change with the month.
    pub fn spec_of(&self, raw: &str) -> Option<&InstrumentSpec> {
        if let Some(spec) = self.get(raw.trim()) {
            return Some(spec);
        }
        if let Some(name) = self.configured(raw) {
            return self.get(name);
        }
        let spelled = symbol::parse(raw, 2000)?;
        self.schedules
            .contains_key(&spelled.root)
            .then(|| self.specs.get(&spelled.root))?
    }

    /// The key of a paper starting quote: the configured name a symbol maps to (`ES1!` → `ES`, a root's
    /// quote being the price its months start from), or a contract name of a configured root.
    pub fn quote_key(&self, raw: &str) -> Option<String> {
        if let Some(name) = self.configured(raw) {
            return Some(name.to_string());
        }
        let (root, cm) = parse_contract_name(raw)?;
        self.schedules
            .contains_key(root)
            .then(|| contract_name(root, cm))
    }

    /// Resolves a symbol or contract at `at`: a continuous symbol (`ES1!`, `CME_MINI:ES1!`, `ES`) to the
    /// front month, an explicit contract (`ES 03-27`, `ESH2027`, `ESH27`, `ESH7`) to itself, a fixed
    /// instrument to its name. `Ok(None)`: not an instrument of this table; `Err`: a contract that does not
    /// exist or has expired.
    pub fn resolve_at(&self, raw: &str, at: Timestamp) -> Result<Option<Resolved>, ContractError> {
        if let Some(name) = self.configured(raw) {
            return self.named(name, raw, at).map(Some);
        }
        let this_year = chrono::Datelike::year(&calendar::exchange_date(at));
        let Some(spelled) = symbol::parse(raw, this_year) else {
            return Ok(None);
        };
        if let Some(schedule) = self.schedules.get(&spelled.root) {
            return contracts::explicit(raw, &spelled.root, schedule, &spelled, at).map(Some);
        }
        // A deprecated per-month entry, spelled another way (`ESZ26` for `ES 12-26`).
        match spelled.contract_month() {
            Some(cm) => {
                let name = contract_name(&spelled.root, cm);
                match self.specs.get_key_value(&name) {
                    Some((name, _)) => self.named(name, raw, at).map(Some),
                    None => Ok(None),
                }
            }
            None => Ok(None),
        }
    }

    /// Resolution without a month check, for names already resolved: [`Self::resolve_at`] where it
    /// succeeds, else the contract name as given when its root is configured (a position left in an
    /// expired month can still be looked up and closed).
    pub fn resolve_lenient(&self, raw: &str, at: Timestamp) -> Option<String> {
        match self.resolve_at(raw, at) {
            Ok(Some(r)) => Some(r.contract),
            Ok(None) => None,
            Err(_) => {
                let (root, cm) = parse_contract_name(raw)?;
                self.schedules
                    .contains_key(root)
                    .then(|| contract_name(root, cm))
            }
        }
    }

    /// A configured name at `at`: a root's front month, or a fixed entry (refused once it has expired, when
    /// its root follows a known rule).
    fn named(&self, name: &str, raw: &str, at: Timestamp) -> Result<Resolved, ContractError> {
        if let Some(schedule) = self.schedules.get(name) {
            if let Some((resolved, _)) = contracts::front(name, schedule, at) {
                return Ok(resolved);
            }
        }
        if let Some((root, cm)) = parse_contract_name(name) {
            if let Some((rule, months)) = known_rule(root) {
                let schedule = schedule_for(rule, months);
                let spelled = symbol::Explicit {
                    root: root.to_string(),
                    month: cm.month,
                    year: cm.year,
                };
                if let Err(e) = contracts::explicit(raw, root, &schedule, &spelled, at) {
                    return Err(match e {
                        ContractError::Expired {
                            contract, expiry, ..
                        } => ContractError::Expired {
                            contract,
                            expiry,
                            front: format!(
                                "{} (replace [instruments.\"{name}\"] with an [instruments.{root}] table; see `alert-relay check`)",
                                contracts::front(root, &schedule, at)
                                    .map_or_else(String::new, |(r, _)| r.contract)
                            ),
                        },
                        other => other,
                    });
                }
            }
        }
        Ok(Resolved {
            contract: name.to_string(),
            root: parse_contract_name(name)
                .map_or(name, |(r, _)| r)
                .to_string(),
            rule: if parse_contract_name(name).is_some() {
                format!("fixed per-month entry [instruments.\"{name}\"] (deprecated)")
            } else {
                "fixed instrument".to_string()
            },
        })
    }

    /// Why `contract` is the contract at `at`, for the record: the front-month rule when it is its root's
    /// front month, else an explicit contract and its expiry; `None` for an instrument without months.
    pub fn explain(&self, contract: &str, at: Timestamp) -> Option<String> {
        if let Some((root, cm)) = parse_contract_name(contract) {
            if let Some(schedule) = self.schedules.get(root) {
                if let Some((front, _)) = contracts::front(root, schedule, at) {
                    if front.contract == contract {
                        return Some(front.rule);
                    }
                }
                return Some(format!(
                    "explicit contract (expiry {})",
                    schedule.dates(cm).expiry
                ));
            }
        }
        self.specs
            .contains_key(contract)
            .then(|| parse_contract_name(contract).is_some())
            .filter(|&per_month| per_month)
            .map(|_| format!("fixed per-month entry [instruments.\"{contract}\"] (deprecated)"))
    }

    /// Each root's front month at `at`, with its dates.
    pub fn front_months(&self, at: Timestamp) -> Vec<(Resolved, Dates)> {
        self.schedules
            .iter()
            .filter_map(|(root, s)| contracts::front(root, s, at))
            .collect()
    }

    /// One line per deprecated per-month entry: what to write instead, and whether it has expired.
    pub fn deprecations(&self, at: Timestamp) -> Vec<String> {
        let today = calendar::exchange_date(at);
        let mut out = Vec::new();
        for (name, spec) in &self.specs {
            let Some((root, cm)) = parse_contract_name(name) else {
                continue;
            };
            let (rule, months) = match known_rule(root) {
                Some((rule, months)) => (rule.name().to_string(), months),
                None => (
                    "equity-quarterly\"  # or \"cl\" or \"gc\"".to_string(),
                    "HMUZ",
                ),
            };
            let mut line = format!(
                "instruments.\"{name}\" is a per-month entry (deprecated): it keeps sending orders to {name} after the roll."
            );
            if let Some((r, m)) = known_rule(root) {
                let expiry = r.expiry(cm);
                if today > expiry {
                    let front = contracts::front(root, &schedule_for(r, m), at)
                        .map_or_else(String::new, |(f, _)| f.contract);
                    line.push_str(&format!(
                        " {name} EXPIRED on {expiry}: alerts for it are refused; the front month is {front}."
                    ));
                }
            }
            let symbols: Vec<String> = spec.symbols.iter().map(|s| format!("{s:?}")).collect();
            line.push_str(&format!(
                " Replace it with:\n[instruments.{root}]\ntick_size = {}\npoint_value = {}\nmonths = \"{months}\"\nrule = \"{rule}\"\nsymbols = [{}]",
                spec.tick_size,
                spec.point_value,
                symbols.join(", ")
            ));
            out.push(line);
        }
        out
    }

    /// Rounds a price to the nearest tick of the instrument.
    pub fn round_to_tick(&self, instrument: &str, price: f64) -> Option<f64> {
        let tick = self.get(instrument)?.tick_size;
        Some(round_to_tick(price, tick))
    }
}

/// The schedule of a well-known root, for old per-month entries.
fn schedule_for(rule: Rule, months: &str) -> Schedule {
    Schedule {
        rule,
        months: months.chars().filter_map(month_of_code).collect(),
        roll_days_before: None,
        roll_dates: BTreeMap::new(),
    }
}

/// The schedule of a root table; `None` for a fixed instrument (no `rule`).
fn schedule_of(name: &str, c: &InstrumentConfig) -> Result<Option<Schedule>, InstrumentError> {
    let problem = |key: &'static str, problem: String| InstrumentError::Contract {
        name: name.to_string(),
        key,
        problem,
    };
    let Some(rule) = c.rule else {
        // A per-month name whose month cannot exist (`ES 13-26`) is a typo, not an instrument.
        if let Some((_, mm_yy)) = name.split_once(' ') {
            if let Some((month, _)) = ContractMonth::parse_nt(mm_yy.trim()) {
                if !(1..=12).contains(&month) {
                    return Err(InstrumentError::Name {
                        name: name.to_string(),
                        problem: format!("month {month} does not exist (months are 01 to 12); name a root instead, like [instruments.ES] with a rule"),
                    });
                }
            }
        }
        for (key, set) in [
            ("months", c.months.is_some()),
            ("roll_days_before", c.roll_days_before.is_some()),
            ("roll_dates", !c.roll_dates.is_empty()),
        ] {
            if set {
                return Err(problem(
                    key,
                    "needs rule = \"equity-quarterly\", \"cl\" or \"gc\" in the same table".into(),
                ));
            }
        }
        return Ok(None);
    };
    if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(problem(
            "rule",
            format!("a root with a rule is named by its root alone (like [instruments.ES]), not '{name}'"),
        ));
    }
    let codes = c.months.as_deref().unwrap_or(default_months(rule));
    let mut months = Vec::new();
    for ch in codes.trim().chars() {
        let m = month_of_code(ch).ok_or_else(|| {
            problem(
                "months",
                format!(
                    "'{ch}' is not a month code (F G H J K M N Q U V X Z, January to December)"
                ),
            )
        })?;
        if months.contains(&m) {
            return Err(problem("months", format!("'{ch}' is listed twice")));
        }
        months.push(m);
    }
    if months.is_empty() {
        return Err(problem(
            "months",
            "list at least one month code, e.g. \"HMUZ\"".into(),
        ));
    }
    months.sort_unstable();
    if let Some(n) = c.roll_days_before {
        if n > 90 {
            return Err(problem(
                "roll_days_before",
                format!("must be at most 90 days, got {n}"),
            ));
        }
    }
    let mut roll_dates = BTreeMap::new();
    for (month, date) in &c.roll_dates {
        let cm = ContractMonth::parse_nt(month.trim())
            .filter(|(m, _)| months.contains(m))
            .map(|(month, year)| ContractMonth { year, month })
            .ok_or_else(|| {
                problem(
                    "roll_dates",
                    format!("\"{month}\" is not a traded contract month of {name} in MM-YY form (e.g. \"03-27\")"),
                )
            })?;
        let d: NaiveDate = date.trim().parse().map_err(|_| {
            problem(
                "roll_dates",
                format!("\"{month}\" = \"{date}\" is not a date in YYYY-MM-DD form"),
            )
        })?;
        let expiry = rule.expiry(cm);
        if d > expiry {
            return Err(problem(
                "roll_dates",
                format!("\"{month}\" = \"{date}\" is after the contract's expiry {expiry}"),
            ));
        }
        roll_dates.insert(cm, d);
    }
    Ok(Some(Schedule {
        rule,
        months,
        roll_days_before: c.roll_days_before,
        roll_dates,
    }))
}

/// Rounds `price` to the nearest multiple of `tick`, cleaning up binary floating-point noise.
pub fn round_to_tick(price: f64, tick: f64) -> f64 {
    let ticks = (price / tick).round();
    // Re-derive from the tick count and trim to 10 decimals so 0.1-style ticks print cleanly.
    ((ticks * tick) * 1e10).round() / 1e10
}

/// True when `price` is a whole number of ticks.
pub fn on_tick_grid(price: f64, tick: f64) -> bool {
    let ticks = price / tick;
    (ticks - ticks.round()).abs() <= GRID_EPSILON * ticks.abs().max(1.0)
}

fn normalize_symbol(sym: &str) -> String {
    symbol::normalize(sym)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Instruments {
        let mut specs = BTreeMap::new();
        specs.insert(
            "ES 12-26".to_string(),
            InstrumentSpec {
                tick_size: 0.25,
                point_value: 50.0,
                symbols: vec!["ES1!".into()],
            },
        );
        specs.insert(
            "CL 01-27".to_string(),
            InstrumentSpec {
                tick_size: 0.01,
                point_value: 1000.0,
                symbols: vec!["CL1!".into()],
            },
        );
        Instruments::new(specs).unwrap()
    }

    #[test]
    fn resolves_symbols_with_prefix_and_case() {
        let t = table();
        let resolve = |s: &str| t.resolve_at(s, Timestamp(0)).unwrap().map(|r| r.contract);
        assert_eq!(resolve("ES1!").as_deref(), Some("ES 12-26"));
        assert_eq!(resolve("cme_mini:es1!").as_deref(), Some("ES 12-26"));
        assert_eq!(resolve("ES 12-26").as_deref(), Some("ES 12-26"));
        assert_eq!(resolve("NQ1!"), None);
    }

    #[test]
    fn tick_rounding_and_grid() {
        assert_eq!(round_to_tick(4500.13, 0.25), 4500.25);
        assert_eq!(round_to_tick(4500.12, 0.25), 4500.0);
        assert_eq!(round_to_tick(71.234, 0.01), 71.23);
        assert!(on_tick_grid(71.23, 0.01));
        assert!(on_tick_grid(4500.25, 0.25));
        assert!(!on_tick_grid(4500.3, 0.25));
    }

    #[test]
    fn rejects_duplicate_symbols_and_bad_ticks() {
        let mut specs = BTreeMap::new();
        let spec = InstrumentSpec {
            tick_size: 0.25,
            point_value: 50.0,
            symbols: vec!["ES1!".into()],
        };
        specs.insert("A".to_string(), spec.clone());
        specs.insert(
            "B".to_string(),
            InstrumentSpec {
                symbols: vec!["cme_mini:es1!".into()],
                ..spec
            },
        );
        let e = Instruments::new(specs).unwrap_err();
        assert_eq!(
            e,
            InstrumentError::DuplicateSymbol {
                name: "B".into(),
                symbol: "cme_mini:es1!".into(),
                other: "A".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "instruments.\"B\".symbols: symbol 'cme_mini:es1!' is already mapped to 'A'"
        );
        let bad = |tick_size, point_value| {
            let mut specs = BTreeMap::new();
            specs.insert(
                "A".to_string(),
                InstrumentSpec {
                    tick_size,
                    point_value,
                    symbols: vec![],
                },
            );
            Instruments::new(specs).unwrap_err()
        };
        let e = bad(0.0, 1.0);
        assert!(matches!(e, InstrumentError::TickSize { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "instruments.\"A\".tick_size must be a positive number, got 0"
        );
        assert!(matches!(
            bad(f64::NAN, 1.0),
            InstrumentError::TickSize { .. }
        ));
        let e = bad(0.25, -50.0);
        assert!(matches!(e, InstrumentError::PointValue { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "instruments.\"A\".point_value must be a positive number, got -50"
        );
    }
}
