//! The trading helpers templates call: `instrument`, `action`, `tick_size`, `round_tick`, `ticks`, `points`,
//! `percent` and `offset`. Each is registered both as a function (`ticks(40, instrument)`) and as a filter
//! (`40 | ticks(instrument)`); the filter form still works when an alert field shadows the function's name
//! (a key=value alert with an `instrument` field, for example).
//!
//! TradingView substitutes placeholders inside quotes, so every number argument may also be a numeric string.

use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::render::CONTRACTS_AT_VAR;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::domain::Action;
use crate::instruments::{round_to_tick, Instruments};

/// Registers every helper on `env`, resolving instruments through `instruments`.
pub(super) fn register(env: &mut Environment<'static>, instruments: &Arc<Instruments>) {
    let i = instruments.clone();
    let f = move |state: &State, symbol: Value| {
        instrument(&i, &symbol, contracts_at(state)).map(Value::from)
    };
    env.add_function("instrument", f.clone());
    env.add_filter("instrument", f);

    // `required(x, "what to do")`: x, or the error that says what to do when it is none or undefined.
    env.add_function("required", |v: Value, message: String| {
        if v.is_undefined() || v.is_none() || v.as_str().is_some_and(|s| s.trim().is_empty()) {
            Err(invalid(message))
        } else {
            Ok(v)
        }
    });

    let f = |side: Value| side_of(&side).map(|a| Value::from(a.as_str()));
    env.add_function("action", f);
    env.add_filter("action", f);

    let i = instruments.clone();
    let f = move |inst: Value| tick_of(&i, &inst).map(Value::from);
    env.add_function("tick_size", f.clone());
    env.add_filter("tick_size", f);

    let i = instruments.clone();
    let f = move |price: Value, inst: Value| {
        // An optional price (`alert.tp | default(none)`, an empty `take_profit=`) stays absent.
        if price.is_none() || price.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Ok(Value::from(()));
        }
        let tick = tick_of(&i, &inst)?;
        Ok(Value::from(round_to_tick(number(&price, "price")?, tick)))
    };
    env.add_function("round_tick", f.clone());
    env.add_filter("round_tick", f);

    let i = instruments.clone();
    let f = move |n: Value, inst: Value| {
        Ok::<_, Error>(Value::from(number(&n, "n")? * tick_of(&i, &inst)?))
    };
    env.add_function("ticks", f.clone());
    env.add_filter("ticks", f);

    let f = |n: Value| number(&n, "n").map(Value::from);
    env.add_function("points", f);
    env.add_filter("points", f);

    let f = |price: Value, p: Value| {
        Ok::<_, Error>(Value::from(
            number(&price, "price")? * number(&p, "p")? / 100.0,
        ))
    };
    env.add_function("percent", f);
    env.add_filter("percent", f);

    let i = instruments.clone();
    let f = move |price: Value, side: Value, amount: Value, unit: Value, inst: Value| {
        offset(&i, &price, &side, &amount, &unit, &inst).map(Value::from)
    };
    env.add_function("offset", f.clone());
    env.add_filter("offset", f);
}

/// The time contract months resolve at: the alert's receipt, as the renderer put it in the context.
fn contracts_at(state: &State) -> Timestamp {
    state
        .lookup(CONTRACTS_AT_VAR)
        .and_then(|v| u64::try_from(v).ok())
        .map_or_else(|| SystemClock.now(), Timestamp)
}

/// `instrument(symbol)`: a TradingView symbol or an instrument name → the instrument name; a continuous
/// symbol (`ES1!`) → the front month at the alert's receipt; an explicit contract (`ESH27`) → `ES 03-27`.
fn instrument(instruments: &Instruments, symbol: &Value, at: Timestamp) -> Result<String, Error> {
    let s = text(symbol, "symbol")?;
    match instruments.resolve_at(s, at) {
        Ok(Some(r)) => Ok(r.contract),
        Ok(None) => Err(invalid(format!(
            "unknown symbol '{s}'; map it under [instruments.\"...\"] symbols in the config"
        ))),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// The tick size of an instrument given by name, symbol or contract (the same for every month).
fn tick_of(instruments: &Instruments, inst: &Value) -> Result<f64, Error> {
    let s = text(inst, "instrument")?;
    match instruments.spec_of(s) {
        Some(spec) => Ok(spec.tick_size),
        None => Err(invalid(format!(
            "unknown symbol '{s}'; map it under [instruments.\"...\"] symbols in the config"
        ))),
    }
}

/// `action(x)`: buy/sell/long/short in any case → `Buy`/`Sell`.
fn side_of(v: &Value) -> Result<Action, Error> {
    check_defined(v, "side")?;
    v.as_str().and_then(Action::parse_loose).ok_or_else(|| {
        invalid(format!(
            "expected an action (buy, sell, long or short), got {}",
            describe(v)
        ))
    })
}

/// `offset(price, side, amount, unit, instrument)`: `price` moved by `amount` (`ticks`, `points` or `percent`)
/// in the profit direction of `side` (negative amounts move toward the loss), rounded to the tick grid.
fn offset(
    instruments: &Instruments,
    price: &Value,
    side: &Value,
    amount: &Value,
    unit: &Value,
    inst: &Value,
) -> Result<f64, Error> {
    let price = number(price, "price")?;
    let side = side_of(side)?;
    let amount = number(amount, "amount")?;
    let tick = tick_of(instruments, inst)?;
    let distance = match text(unit, "unit")?.trim().to_ascii_lowercase().as_str() {
        "tick" | "ticks" => amount * tick,
        "point" | "points" => amount,
        "percent" | "%" => price * amount / 100.0,
        other => {
            return Err(invalid(format!(
                "unit must be 'ticks', 'points' or 'percent', got '{other}'"
            )))
        }
    };
    Ok(round_to_tick(price + side.sign() as f64 * distance, tick))
}

/// A finite number, given as a number or a numeric string.
fn number(v: &Value, what: &str) -> Result<f64, Error> {
    check_defined(v, what)?;
    let n = match v.kind() {
        ValueKind::Number => f64::try_from(v.clone()).ok(),
        ValueKind::String => v.as_str().and_then(|s| s.trim().parse::<f64>().ok()),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| invalid(format!("{what} must be a number, got {}", describe(v))))
}

fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, Error> {
    check_defined(v, what)?;
    v.as_str()
        .ok_or_else(|| invalid(format!("{what} must be a string, got {}", describe(v))))
}

fn check_defined(v: &Value, what: &str) -> Result<(), Error> {
    if v.is_undefined() {
        Err(Error::new(
            ErrorKind::UndefinedError,
            format!("{what} is undefined"),
        ))
    } else {
        Ok(())
    }
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// A value as it appears in error messages: strings quoted, everything else as the template would print it.
fn describe(v: &Value) -> String {
    match v.as_str() {
        Some(s) => format!("'{s}'"),
        None if v.is_none() => "none".to_string(),
        None => v.to_string(),
    }
}
