//! Unit tests for alert templates, grouped by what they test:
//! - `built_ins.rs`: the shipped templates (tradingview-strategy, signal-service, crosstrade-kv) on
//!   the alerts their senders send.
//! - `functions.rs`: the trading helpers and filters: actions, offsets in ticks, points and percent.
//! - `render.rs`: rendering: fan-out over accounts, keys, the names an expression sees, and errors
//!   pinned to their request or field.
//! - `load.rs`: loading: listing, unknown names, directory overrides, and load errors naming the
//!   file and field.
//! - `routing.rs`: samples (every built-in renders its own) and the accounts a template reaches.
//!
//! This file holds what they share: the instruments, loading with extra files, and a TradingView
//! alert.

mod built_ins;
mod functions;
mod load;
mod render;
mod routing;

use std::collections::BTreeMap;

use serde_json::{json, Map as JsonMap, Value as Json};

use super::*;
use crate::domain::BracketRequest;
use crate::instruments::InstrumentSpec;

fn instruments() -> Arc<Instruments> {
    let mut specs = BTreeMap::new();
    for (name, tick, symbol) in [
        ("ES 12-26", 0.25, "ES1!"),
        ("MES 12-26", 0.25, "MES1!"),
        ("NQ 12-26", 0.25, "NQ1!"),
        ("MNQ 12-26", 0.25, "MNQ1!"),
        ("CL 01-27", 0.01, "CL1!"),
        ("GC 02-27", 0.1, "GC1!"),
    ] {
        specs.insert(
            name.to_string(),
            InstrumentSpec {
                tick_size: tick,
                point_value: 1.0,
                symbols: vec![symbol.to_string()],
            },
        );
    }
    Arc::new(Instruments::new(specs).unwrap())
}

fn built_in() -> Templates {
    Templates::load(None, instruments()).unwrap()
}

fn obj(v: Json) -> JsonMap<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// Loads the built-ins plus the given files from a temporary directory.
fn with_files(files: &[(&str, &str)]) -> Result<Templates, TemplateError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Templates::load(Some(dir.path()), instruments())
}

/// The brackets a render produced (panics on anything else).
fn requests(r: Rendered) -> (Option<String>, Vec<BracketRequest>) {
    let (key, commands) = commands(r);
    let brackets = commands
        .into_iter()
        .map(|c| match c {
            Command::CancelAndBracket(b) => b,
            other => panic!("expected a CancelAndBracket, got {other:?}"),
        })
        .collect();
    (key, brackets)
}

fn commands(r: Rendered) -> (Option<String>, Vec<Command>) {
    match r {
        Rendered::Requests { key, requests } => (key, requests),
        other => panic!("expected requests, got {other:?}"),
    }
}

/// The message the README tells TradingView users to paste, as TradingView fills it in.
fn tv_alert(market_position: &str, size: Json, price: Json) -> JsonMap<String, Json> {
    obj(json!({
        "secret": "s3cret",
        "ticker": "ES1!",
        "timenow": "2026-03-02T14:30:00Z",
        "close": 4500.5,
        "strategy": {
            "action": "buy",
            "contracts": 2,
            "price": price,
            "id": "Long Entry",
            "market_position": market_position,
            "market_position_size": size,
        }
    }))
}
