//! The contract tables of issue 24, each date with its source beside it.
//!
//! Sources:
//! - [ES-EXP] CME Rulebook chapter 358 (E-mini S&P 500 futures), "Termination of Trading": trading
//!   terminates at 9:30 a.m. ET on the third Friday of the contract month (chapter 359, E-mini Nasdaq-100,
//!   and the Micro E-mini chapters say the same).
//! - [ES-ROLL] CME Group, "Equity Index Roll Dates" / roll calendar: the roll date is the Thursday eight
//!   calendar days before the contract's expiry.
//! - [CL-EXP] NYMEX Rulebook chapter 200 (Light Sweet Crude Oil futures), 200.25 "Termination of Trading":
//!   trading terminates three business days before the 25th calendar day of the month before the contract
//!   month; if the 25th is not a business day, three business days before the business day preceding it.
//! - [GC-EXP] COMEX Rulebook chapter 113 (Gold futures), 113.02 / "Termination of Trading": the third-last
//!   business day of the contract month.
//! - [HOL] NYSE/CME holiday calendar 2026–2027 (Juneteenth 2026-06-19 and, observed, 2027-06-18, Christmas 2026-12-25, MLK Day
//!   2027-01-18, Presidents' Day 2027-02-15, Good Friday 2027-03-26, Memorial Day 2027-05-31).
//!
//! Each expected date below was worked out by hand from the rule text and the holiday calendar, not taken
//! from the code.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::instruments::{InstrumentConfig, Instruments};

fn at(rfc3339: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    Timestamp(t.timestamp_millis() as u64)
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn root(rule: Rule, months: &str, symbols: &[&str]) -> InstrumentConfig {
    InstrumentConfig {
        tick_size: 0.25,
        point_value: 50.0,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        months: Some(months.to_string()),
        rule: Some(rule),
        roll_days_before: None,
        roll_dates: BTreeMap::new(),
    }
}

fn table() -> Instruments {
    let mut c = BTreeMap::new();
    c.insert(
        "ES".to_string(),
        root(Rule::EquityQuarterly, "HMUZ", &["CME_MINI:ES1!"]),
    );
    c.insert("CL".to_string(), root(Rule::Cl, "FGHJKMNQUVXZ", &["CL1!"]));
    c.insert("GC".to_string(), root(Rule::Gc, "GJMQVZ", &["GC1!"]));
    Instruments::from_config(&c).unwrap()
}

fn contract(t: &Instruments, raw: &str, when: &str) -> String {
    t.resolve_at(raw, at(when)).unwrap().unwrap().contract
}

#[test]
fn es1_follows_the_front_month_across_the_rolls() {
    let t = table();
    for (when, expected) in [
        ("2026-12-06T12:00:00Z", "ES 12-26"),
        ("2026-12-09T12:00:00Z", "ES 12-26"),
        // The roll day itself belongs to the new month (from midnight in Chicago).
        ("2026-12-10T06:00:00Z", "ES 03-27"),
        ("2026-12-11T12:00:00Z", "ES 03-27"),
        ("2027-03-10T12:00:00Z", "ES 03-27"),
        ("2027-03-12T12:00:00Z", "ES 06-27"),
    ] {
        assert_eq!(contract(&t, "ES1!", when), expected, "at {when}");
        assert_eq!(contract(&t, "cme_mini:es1!", when), expected, "at {when}");
        assert_eq!(contract(&t, "ES", when), expected, "root name at {when}");
    }
    // 2026-12-10T05:59Z is 23:59 on 2026-12-09 in Chicago: still the old month.
    assert_eq!(contract(&t, "ES1!", "2026-12-10T05:59:00Z"), "ES 12-26");
    let r = t
        .resolve_at("ES1!", at("2026-12-11T12:00:00Z"))
        .unwrap()
        .unwrap();
    assert_eq!(r.root, "ES");
    assert_eq!(
        r.rule,
        "equity-index quarterly: front month until the roll on 2027-03-11 (Thursday 8 days before expiry 2027-03-19)"
    );
}

#[test]
fn es_roll_dates_and_expiries_2026_2027() {
    let t = table();
    let (_, es) = t.roots().find(|(r, _)| *r == "ES").unwrap();
    // (contract month, expiry [ES-EXP], roll [ES-ROLL])
    let expected = [
        ((2026, 3), "2026-03-20", "2026-03-12"),
        // The third Friday, 06-19, is Juneteenth, an exchange holiday [HOL]: expiry the business day
        // before [ES-EXP]; the roll stays 8 days before the third Friday [ES-ROLL].
        ((2026, 6), "2026-06-18", "2026-06-11"),
        ((2026, 9), "2026-09-18", "2026-09-10"),
        ((2026, 12), "2026-12-18", "2026-12-10"),
        ((2027, 3), "2027-03-19", "2027-03-11"),
        // 06-18 is Juneteenth observed (the 19th is a Saturday) [HOL]: the business day before [ES-EXP].
        ((2027, 6), "2027-06-17", "2027-06-10"),
        ((2027, 9), "2027-09-17", "2027-09-09"),
        ((2027, 12), "2027-12-17", "2027-12-09"),
    ];
    for ((year, month), expiry, roll) in expected {
        let dates = es.dates(ContractMonth { year, month });
        assert_eq!(
            (dates.expiry, dates.roll),
            (d(expiry), d(roll)),
            "{year}-{month}"
        );
    }
}

#[test]
fn cl_expiries_for_six_months() {
    let t = table();
    let (_, cl) = t.roots().find(|(r, _)| *r == "CL").unwrap();
    let expected = [
        // 25th is Christmas (a holiday [HOL]): 3 business days before Thu 12-24 [CL-EXP].
        ((2027, 1), "2026-12-21"),
        // Mon 01-25 is a business day: 3 business days before [CL-EXP].
        ((2027, 2), "2027-01-20"),
        // Thu 02-25 [CL-EXP].
        ((2027, 3), "2027-02-22"),
        // Thu 03-25 [CL-EXP].
        ((2027, 4), "2027-03-22"),
        // 04-25 is a Sunday: 3 business days before Fri 04-23 [CL-EXP].
        ((2027, 5), "2027-04-20"),
        // Tue 05-25: Mon 05-24, Fri 05-21, Thu 05-20 [CL-EXP].
        ((2027, 6), "2027-05-20"),
    ];
    for ((year, month), expiry) in expected {
        assert_eq!(
            cl.dates(ContractMonth { year, month }).expiry,
            d(expiry),
            "CL {year}-{month}"
        );
    }
}

#[test]
fn gc_expiries_for_six_months() {
    let t = table();
    let (_, gc) = t.roots().find(|(r, _)| *r == "GC").unwrap();
    let expected = [
        // Thu 12-31, Wed 12-30, Tue 12-29 [GC-EXP].
        ((2026, 12), "2026-12-29"),
        // Last business day Fri 02-26; 02-25, 02-24 [GC-EXP].
        ((2027, 2), "2027-02-24"),
        // Fri 04-30, 04-29, 04-28 [GC-EXP].
        ((2027, 4), "2027-04-28"),
        // Wed 06-30, 06-29, 06-28 [GC-EXP].
        ((2027, 6), "2027-06-28"),
        // Tue 08-31, Mon 08-30, Fri 08-27 [GC-EXP].
        ((2027, 8), "2027-08-27"),
        // Last business day Fri 10-29; 10-28, 10-27 [GC-EXP].
        ((2027, 10), "2027-10-27"),
    ];
    for ((year, month), expiry) in expected {
        assert_eq!(
            gc.dates(ContractMonth { year, month }).expiry,
            d(expiry),
            "GC {year}-{month}"
        );
    }
    // GC rolls before the contract month starts: GC 02-27's first notice day is Fri 2027-01-29.
    let feb = gc.dates(ContractMonth {
        year: 2027,
        month: 2,
    });
    assert_eq!(feb.roll, d("2027-01-28"));
    assert_eq!(contract(&t, "GC1!", "2027-01-27T12:00:00Z"), "GC 02-27");
    assert_eq!(contract(&t, "GC1!", "2027-01-28T12:00:00Z"), "GC 04-27");
}

#[test]
fn explicit_contracts_in_all_three_spellings_resolve_to_themselves() {
    let t = table();
    let when = "2026-12-11T12:00:00Z";
    for raw in [
        "ES 03-27",
        "ESH2027",
        "CME_MINI:ESH2027",
        "ESH27",
        "ESH7",
        "esh7",
    ] {
        let r = t.resolve_at(raw, at(when)).unwrap().unwrap();
        assert_eq!(r.contract, "ES 03-27", "{raw}");
        assert_eq!(r.rule, "explicit contract (expiry 2027-03-19)", "{raw}");
    }
    // After the roll, the old month is still tradable explicitly until it expires.
    for raw in ["ES 12-26", "ESZ2026", "ESZ26", "ESZ6"] {
        assert_eq!(contract(&t, raw, when), "ES 12-26", "{raw}");
    }
    assert_eq!(contract(&t, "CLG27", when), "CL 02-27");
    assert_eq!(contract(&t, "GCJ2027", when), "GC 04-27");
}

#[test]
fn impossible_and_expired_contracts_say_why() {
    let t = table();
    let now = at("2026-12-06T12:00:00Z");
    let err = |raw: &str| t.resolve_at(raw, now).unwrap_err().to_string();
    assert_eq!(
        err("ES 09-26"),
        "instrument: ES 09-26 expired on 2026-09-18; the front month is ES 12-26"
    );
    assert_eq!(
        err("ESU6"),
        "instrument: ES 09-26 expired on 2026-09-18; the front month is ES 12-26"
    );
    assert_eq!(
        err("ES 13-26"),
        "instrument: ES 13-26 is not a contract: month 13 does not exist (months are 01 to 12)"
    );
    assert_eq!(
        err("ESX27"),
        "instrument: ESX27 is not a contract: ES trades only the months H (03), M (06), U (09), Z (12)"
    );
    // Expiry day itself still trades; the day after it does not.
    assert!(t.resolve_at("ES 12-26", at("2026-12-18T15:00:00Z")).is_ok());
    assert!(t
        .resolve_at("ES 12-26", at("2026-12-19T15:00:00Z"))
        .is_err());
    // Not a contract spelling of a known root: unknown, not an error.
    assert_eq!(t.resolve_at("ZZH27", now), Ok(None));
    assert_eq!(t.resolve_at("NQ1!", now), Ok(None));
}

#[test]
fn roll_days_before_and_explicit_roll_dates_override_the_rule() {
    let mut c = BTreeMap::new();
    let mut es = root(Rule::EquityQuarterly, "HMUZ", &["ES1!"]);
    es.roll_days_before = Some(3);
    es.roll_dates
        .insert("03-27".to_string(), "2027-03-04".to_string());
    c.insert("ES".to_string(), es);
    let t = Instruments::from_config(&c).unwrap();
    // 3 days before expiry 2026-12-18: 2026-12-15.
    assert_eq!(contract(&t, "ES1!", "2026-12-14T12:00:00Z"), "ES 12-26");
    assert_eq!(contract(&t, "ES1!", "2026-12-15T12:00:00Z"), "ES 03-27");
    let r = t
        .resolve_at("ES1!", at("2026-12-14T12:00:00Z"))
        .unwrap()
        .unwrap();
    assert!(
        r.rule.contains("3 days before expiry 2026-12-18"),
        "{}",
        r.rule
    );
    // The explicit date wins over both.
    assert_eq!(contract(&t, "ES1!", "2027-03-03T12:00:00Z"), "ES 03-27");
    assert_eq!(contract(&t, "ES1!", "2027-03-04T12:00:00Z"), "ES 06-27");
    let r = t
        .resolve_at("ES1!", at("2027-03-03T12:00:00Z"))
        .unwrap()
        .unwrap();
    assert!(r.rule.contains("explicit roll date"), "{}", r.rule);
}

#[test]
fn bad_root_tables_name_the_key() {
    let problem = |edit: &dyn Fn(&mut InstrumentConfig)| {
        let mut es = root(Rule::EquityQuarterly, "HMUZ", &[]);
        edit(&mut es);
        let mut c = BTreeMap::new();
        c.insert("ES".to_string(), es);
        Instruments::from_config(&c).unwrap_err().to_string()
    };
    assert_eq!(
        problem(&|c| c.months = Some("HMUA".into())),
        "instruments.\"ES\".months: 'A' is not a month code (F G H J K M N Q U V X Z, January to December)"
    );
    assert_eq!(
        problem(&|c| {
            c.roll_dates.insert("04-27".into(), "2027-04-01".into());
        }),
        "instruments.\"ES\".roll_dates: \"04-27\" is not a traded contract month of ES in MM-YY form (e.g. \"03-27\")"
    );
    assert_eq!(
        problem(&|c| {
            c.roll_dates.insert("03-27".into(), "2027-03-20".into());
        }),
        "instruments.\"ES\".roll_dates: \"03-27\" = \"2027-03-20\" is after the contract's expiry 2027-03-19"
    );
    let mut c = BTreeMap::new();
    let mut typo = root(Rule::EquityQuarterly, "HMUZ", &[]);
    typo.rule = None;
    typo.months = None;
    c.insert("ES 13-26".to_string(), typo);
    assert_eq!(
        Instruments::from_config(&c).unwrap_err().to_string(),
        "instruments.\"ES 13-26\": month 13 does not exist (months are 01 to 12); name a root instead, like [instruments.ES] with a rule"
    );
    assert_eq!(
        problem(&|c| {
            c.rule = None;
        }),
        "instruments.\"ES\".months: needs rule = \"equity-quarterly\", \"cl\" or \"gc\" in the same table"
    );
}

#[test]
fn old_per_month_entries_keep_working_and_say_what_to_write() {
    let mut c = BTreeMap::new();
    let mut old = root(Rule::EquityQuarterly, "HMUZ", &["ES1!", "ES"]);
    old.rule = None;
    old.months = None;
    c.insert("ES 12-26".to_string(), old.clone());
    let t = Instruments::from_config(&c).unwrap();
    let now = at("2026-12-06T12:00:00Z");
    let r = t.resolve_at("ES1!", now).unwrap().unwrap();
    assert_eq!(r.contract, "ES 12-26");
    // Still the fixed month after the roll (that is why it is deprecated)...
    assert_eq!(contract(&t, "ES1!", "2026-12-11T12:00:00Z"), "ES 12-26");
    // ...and refused once it has expired.
    let e = t
        .resolve_at("ES1!", at("2026-12-21T12:00:00Z"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("instrument: ES 12-26 expired on 2026-12-18; the front month is ES 03-27"),
        "{e}"
    );
    let notes = t.deprecations(now);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].ends_with(
            "Replace it with:\n[instruments.ES]\ntick_size = 0.25\npoint_value = 50\nmonths = \"HMUZ\"\nrule = \"equity-quarterly\"\nsymbols = [\"ES1!\", \"ES\"]"
        ),
        "{}",
        notes[0]
    );
    // The suggested table parses and resolves.
    let suggested = notes[0].split_once("Replace it with:\n").unwrap().1;
    let cfg: BTreeMap<String, BTreeMap<String, InstrumentConfig>> =
        toml::from_str(suggested).unwrap();
    let t2 = Instruments::from_config(&cfg["instruments"]).unwrap();
    assert_eq!(contract(&t2, "ES1!", "2026-12-11T12:00:00Z"), "ES 03-27");
    let expired = t.deprecations(at("2027-01-04T12:00:00Z"));
    assert!(
        expired[0].contains("ES 12-26 EXPIRED on 2026-12-18"),
        "{}",
        expired[0]
    );
}

#[test]
fn old_month_holdings_are_found_after_the_roll_only() {
    let t = table();
    let items = || {
        vec![
            (
                "Sim101",
                "ES 12-26",
                holdings::HoldingKind::Position,
                "+2".to_string(),
            ),
            (
                "Sim101",
                "ES 03-27",
                holdings::HoldingKind::Position,
                "+1".to_string(),
            ),
        ]
    };
    assert!(holdings::old_months(&t, at("2026-12-09T12:00:00Z"), items()).is_empty());
    let old = holdings::old_months(&t, at("2026-12-11T12:00:00Z"), items());
    assert_eq!(old.len(), 1);
    assert_eq!(
        old[0].to_string(),
        "Sim101: position +2 in ES 12-26, which rolled to ES 03-27; the relay leaves it there (close it with ClosePosition on ES 12-26 if you mean to)"
    );
}

/// README's table of the next four roll dates is the code's, as of 2026-12-06 with the shipped config: it
/// cannot go stale silently. On a change, paste the table this test prints.
#[test]
fn readme_roll_table_matches_the_code() {
    let cfg: crate::config::Config = toml::from_str(crate::config::EMBEDDED_CONFIG).unwrap();
    let table =
        report::markdown_roll_table(&cfg.instruments().unwrap(), at("2026-12-06T12:00:00Z"));
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&table),
        "README.md's roll table differs from the code; the table is:\n{table}"
    );
}

/// README's example of moving a roll ("Two ways to move a roll") loads as written, and its explicit date
/// wins over `roll_days_before` for that month while the other months follow `roll_days_before`.
#[test]
fn readme_roll_override_example_moves_the_roll() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme
        .find("Two ways to move a roll")
        .expect("README section")..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let shipped = crate::config::EMBEDDED_CONFIG;
    let (start, end) = (
        shipped.find("[instruments.ES]").unwrap(),
        shipped.find("[instruments.MES]").unwrap(),
    );
    let text = format!("{}{block}\n{}", &shipped[..start], &shipped[end..]);
    let cfg: crate::config::Config = toml::from_str(&text).unwrap();
    let instruments = cfg.instruments().unwrap();
    let es = |t: &str| {
        report::front_months(&instruments, at(t))
            .into_iter()
            .find(|f| f.root == "ES")
            .unwrap()
    };
    let march = es("2026-12-11T15:00:00Z");
    assert_eq!(
        (march.contract.as_str(), march.roll),
        ("ES 03-27", NaiveDate::from_ymd_opt(2027, 3, 4).unwrap())
    );
    // June 2027 expires on Thursday 06-17 (Juneteenth is observed on Friday 06-18); 5 days before is a
    // Saturday, so the roll is the Friday before.
    let june = es("2027-03-05T15:00:00Z");
    assert_eq!(
        (june.contract.as_str(), june.roll, june.expiry),
        (
            "ES 06-27",
            NaiveDate::from_ymd_opt(2027, 6, 11).unwrap(),
            NaiveDate::from_ymd_opt(2027, 6, 17).unwrap()
        )
    );
}
