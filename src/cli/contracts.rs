//! `contracts`: for each root, the front month, the next roll date and the expiry, as of now or `--at`.

use std::path::Path;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::load_config;
use crate::contracts::report::front_months;

pub(super) fn contracts(path: Option<&Path>, at: Option<&str>) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let instruments = cfg.instruments()?;
    let at = match at {
        Some(s) => parse_at(s, "--at")?,
        None => SystemClock.now(),
    };
    let fronts = front_months(&instruments, at);
    println!(
        "as of {at} ({} in Chicago)",
        crate::contracts::calendar::exchange_date(at)
    );
    println!(
        "{:<6} {:<10} {:<11} {:<10} {:<11} RULE",
        "ROOT", "FRONT", "NEXT ROLL", "THEN", "EXPIRY"
    );
    for f in &fronts {
        println!(
            "{:<6} {:<10} {:<11} {:<10} {:<11} {}",
            f.root,
            f.contract,
            f.roll.to_string(),
            f.next,
            f.expiry.to_string(),
            f.why
        );
    }
    if fronts.is_empty() {
        println!("(no roots with contract months: [instruments.ROOT] tables with a rule)");
    }
    for d in instruments.deprecations(at) {
        println!("WARNING: {d}");
    }
    Ok(())
}

/// An RFC 3339 time (`2026-12-11T14:30:00Z`, `2026-12-11T08:30:00-06:00`).
pub(super) fn parse_at(s: &str, flag: &str) -> anyhow::Result<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
        anyhow::anyhow!("{flag}: '{s}' is not an RFC 3339 time like 2026-12-11T14:30:00Z ({e})")
    })?;
    u64::try_from(t.timestamp_millis())
        .map(Timestamp)
        .map_err(|_| anyhow::anyhow!("{flag}: '{s}' is before 1970"))
}
