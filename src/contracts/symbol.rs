//! The spellings of an explicit contract: NinjaTrader's `ES 03-27`, TradingView's `ESH2027`, CME's `ESH27`
//! and `ESH7` (an exchange prefix like `CME_MINI:` is ignored). Anything else is not a contract spelling and
//! is left to the symbol table (`ES1!`, `ES`).

use super::rules::{month_of_code, ContractMonth};

/// An explicit contract as written, before the root's months and expiry are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explicit {
    pub root: String,
    /// 1–12 for a real month; NinjaTrader's form can name another number (`ES 13-26`), refused later.
    pub month: u32,
    pub year: i32,
}

impl Explicit {
    pub fn contract_month(&self) -> Option<ContractMonth> {
        (1..=12).contains(&self.month).then_some(ContractMonth {
            year: self.year,
            month: self.month,
        })
    }
}

/// The symbol without exchange prefix, trimmed and upper-cased.
pub fn normalize(sym: &str) -> String {
    let sym = sym.trim();
    let sym = sym.rsplit_once(':').map_or(sym, |(_, s)| s);
    sym.trim().to_ascii_uppercase()
}

/// Parses an explicit contract; `this_year` decides the decade of a one-digit year (`ESH7`): the first
/// year ending in that digit from last year on.
pub fn parse(raw: &str, this_year: i32) -> Option<Explicit> {
    let s = normalize(raw);
    if let Some((root, mm_yy)) = s.split_once(' ') {
        let (month, year) = ContractMonth::parse_nt(mm_yy.trim())?;
        return valid_root(root).then(|| Explicit {
            root: root.to_string(),
            month,
            year,
        });
    }
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, year_digits) = s.split_at(s.len() - digits);
    let year = match year_digits.len() {
        4 => year_digits.parse().ok()?,
        2 => 2000 + year_digits.parse::<i32>().ok()?,
        1 => {
            let d: i32 = year_digits.parse().ok()?;
            (this_year - 1..this_year + 9).find(|y| y.rem_euclid(10) == d)?
        }
        _ => return None,
    };
    let code = head.chars().last()?;
    let root = &head[..head.len() - code.len_utf8()];
    let month = month_of_code(code)?;
    valid_root(root).then(|| Explicit {
        root: root.to_string(),
        month,
        year,
    })
}

fn valid_root(root: &str) -> bool {
    !root.is_empty() && root.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(root: &str, month: u32, year: i32) -> Option<Explicit> {
        Some(Explicit {
            root: root.into(),
            month,
            year,
        })
    }

    #[test]
    fn the_three_spellings() {
        for s in [
            "ES 03-27",
            "ESH2027",
            "ESH27",
            "ESH7",
            "CME_MINI:ESH2027",
            " esh27 ",
        ] {
            assert_eq!(parse(s, 2026), ex("ES", 3, 2027), "{s}");
        }
        assert_eq!(parse("MNQZ26", 2026), ex("MNQ", 12, 2026));
        assert_eq!(parse("GCG7", 2026), ex("GC", 2, 2027));
        // A one-digit year is the first year ending in it from last year on.
        assert_eq!(parse("ESZ5", 2026), ex("ES", 12, 2025));
        assert_eq!(parse("ESZ4", 2026), ex("ES", 12, 2034));
    }

    #[test]
    fn impossible_months_still_parse_so_they_can_be_refused() {
        assert_eq!(parse("ES 13-26", 2026), ex("ES", 13, 2026));
        assert_eq!(parse("ESX27", 2026), ex("ES", 11, 2027));
        assert_eq!(ex("ES", 13, 2026).unwrap().contract_month(), None);
    }

    #[test]
    fn symbols_are_not_contracts() {
        for s in [
            "ES1!",
            "ES",
            "CME_MINI:ES1!",
            "ESA27",
            "ES 1-27",
            "ES 03-2027",
            "27",
            "H27",
            "",
        ] {
            assert_eq!(parse(s, 2026), None, "{s}");
        }
    }
}
