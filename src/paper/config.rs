//! The `[paper]` section of the config: which simulated accounts exist and how the simulated venue behaves.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::MAX_CANCEL_DELAY_MS;
use crate::instruments::{on_tick_grid, Instruments};

use super::error::PaperError;

/// The largest `snapshot_every`: the log keeps twice as many entries, replayed on open.
pub const MAX_SNAPSHOT_EVERY: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperConfig {
    /// Simulated accounts, NinjaTrader style (`Sim101`).
    pub accounts: Vec<String>,
    /// Default wait between the cancel and the place phase of CancelAndBracket.
    pub cancel_delay_ms: u64,
    /// How long a cancel takes to be confirmed; a quote inside this window can still fill the order.
    pub cancel_latency_ms: u64,
    /// Finished (filled/cancelled/rejected) orders kept per account; older ones are dropped so days of
    /// alerts do not grow memory and disk without bound.
    pub max_terminal_orders: usize,
    /// Operations between two snapshots of the whole account on disk (each operation is one log entry;
    /// opening replays the entries after the last snapshot).
    pub snapshot_every: u64,
    /// Last prices to start from, by instrument name or TradingView symbol; used only for instruments
    /// that have never been quoted.
    pub initial_quotes: BTreeMap<String, f64>,
    /// An alert that carries a price for its instrument (TradingView's `close`, or its order's price)
    /// moves the paper quote there before its command runs, so market entries fill at the alert's price.
    pub follow_alert_prices: bool,
}

impl Default for PaperConfig {
    fn default() -> Self {
        PaperConfig {
            accounts: vec!["Sim101".to_string()],
            cancel_delay_ms: 100,
            cancel_latency_ms: 50,
            max_terminal_orders: 1000,
            snapshot_every: super::store::SNAPSHOT_EVERY,
            initial_quotes: BTreeMap::new(),
            follow_alert_prices: true,
        }
    }
}

impl PaperConfig {
    /// Checks the section against the instrument table; returns the initial quotes keyed by instrument name.
    pub(crate) fn validate(
        &self,
        instruments: &Instruments,
    ) -> Result<BTreeMap<String, f64>, PaperError> {
        let bad = |key: &str, problem: String| PaperError::InvalidConfig {
            key: key.to_string(),
            problem,
        };
        if self.accounts.is_empty() {
            return Err(bad(
                "accounts",
                "list at least one account, e.g. accounts = [\"Sim101\"]".into(),
            ));
        }
        for (i, a) in self.accounts.iter().enumerate() {
            // Account names are a path segment of the API (`/v1/api/accounts/{account}/...`), hence no '/'.
            if a.trim().is_empty() || a.trim() != a || a.contains('/') {
                return Err(bad(
                    "accounts",
                    format!(
                        "account name {a:?} must be non-empty, without surrounding spaces or '/'"
                    ),
                ));
            }
            if self.accounts[..i].contains(a) {
                return Err(bad("accounts", format!("account '{a}' is listed twice")));
            }
        }
        if self.cancel_delay_ms > MAX_CANCEL_DELAY_MS {
            return Err(bad(
                "cancel_delay_ms",
                format!(
                    "must be at most {MAX_CANCEL_DELAY_MS}, got {}",
                    self.cancel_delay_ms
                ),
            ));
        }
        if !(1..=MAX_SNAPSHOT_EVERY).contains(&self.snapshot_every) {
            return Err(bad(
                "snapshot_every",
                format!(
                    "must be between 1 and {MAX_SNAPSHOT_EVERY} operations, got {}",
                    self.snapshot_every
                ),
            ));
        }
        let mut quotes = BTreeMap::new();
        for (sym, &price) in &self.initial_quotes {
            let key = format!("initial_quotes.\"{sym}\"");
            let name = instruments.quote_key(sym).ok_or_else(|| {
                bad(
                    &key,
                    "unknown instrument; add it under [instruments] first".into(),
                )
            })?;
            let tick = instruments.get(&name).map_or(0.0, |s| s.tick_size);
            if !(price.is_finite() && price > 0.0 && on_tick_grid(price, tick)) {
                return Err(bad(
                    &key,
                    format!(
                        "must be a positive price on the tick grid (tick size {tick}), got {price}"
                    ),
                ));
            }
            quotes.insert(name, price);
        }
        Ok(quotes)
    }
}
