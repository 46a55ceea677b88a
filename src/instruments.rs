//! The instrument table: NinjaTrader instrument names (`ES 12-26`), their tick size and point value, and the
//! TradingView symbols (`ES1!`) that map to them. Loaded from `[instruments]` in the config.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

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

/// All instruments known to the relay, keyed by NinjaTrader name.
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    specs: BTreeMap<String, InstrumentSpec>,
    /// Upper-cased TradingView symbol (exchange prefix removed) → NinjaTrader name.
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
}

/// Relative tolerance for "is this price on the tick grid": prices arrive as f64 and `4500.25 / 0.25`
/// is not always an exact integer in binary floating point.
const GRID_EPSILON: f64 = 1e-6;

impl Instruments {
    /// Builds the table, rejecting nonsensical tick sizes and symbols claimed by two instruments.
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
        Ok(Self { specs, symbols })
    }

    pub fn get(&self, name: &str) -> Option<&InstrumentSpec> {
        self.specs.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// Maps a TradingView symbol (`ES1!`, `CME_MINI:ES1!`, any case) or an instrument name to the instrument name.
    pub fn resolve(&self, symbol: &str) -> Option<&str> {
        if let Some((name, _)) = self.specs.get_key_value(symbol.trim()) {
            return Some(name.as_str());
        }
        self.symbols
            .get(&normalize_symbol(symbol))
            .map(String::as_str)
    }

    /// Rounds a price to the nearest tick of the instrument.
    pub fn round_to_tick(&self, instrument: &str, price: f64) -> Option<f64> {
        let tick = self.specs.get(instrument)?.tick_size;
        Some(round_to_tick(price, tick))
    }
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
    let sym = sym.trim();
    let sym = sym.rsplit_once(':').map_or(sym, |(_, s)| s);
    sym.to_ascii_uppercase()
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
        assert_eq!(t.resolve("ES1!"), Some("ES 12-26"));
        assert_eq!(t.resolve("cme_mini:es1!"), Some("ES 12-26"));
        assert_eq!(t.resolve("ES 12-26"), Some("ES 12-26"));
        assert_eq!(t.resolve("NQ1!"), None);
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
