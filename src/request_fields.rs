//! Reading one field of a request's JSON arguments: numbers given as JSON numbers or numeric strings,
//! positive integers, prices, and the error that names the field and what it must be.

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::domain::RequestError;
use crate::instruments::Instruments;

/// Is `field` given: present, not null, not an empty or blank string?
pub(crate) fn present(args: &Map<String, Value>, field: &str) -> bool {
    match args.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// The `instrument` field resolved, at `at`, to the contract it names (`ES1!` → its front month).
pub(crate) fn instrument_field(
    args: &Map<String, Value>,
    instruments: &Instruments,
    at: Timestamp,
) -> Result<String, RequestError> {
    let raw = string_field(args, "instrument")?;
    Ok(instruments
        .resolve_at(&raw, at)?
        .ok_or(RequestError::UnknownInstrument(raw))?
        .contract)
}

pub(crate) fn bad(field: &'static str, expected: &'static str, got: &Value) -> RequestError {
    let mut got = got.to_string();
    if got.len() > 80 {
        got.truncate(77);
        got.push_str("...");
    }
    RequestError::BadField {
        field,
        expected,
        got,
    }
}

pub(crate) fn string_field(
    args: &Map<String, Value>,
    field: &'static str,
) -> Result<String, RequestError> {
    match &args[field] {
        Value::String(s) => Ok(s.trim().to_string()),
        v => Err(bad(field, "a string", v)),
    }
}

/// A JSON number or a numeric string (`4500.25`, `"4500.25"`): alerts and API callers send both.
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// A positive integer written as a JSON number (the API's `quantity`; `2.0` counts, `"2"` does not).
pub(crate) fn positive_int_number(v: &Value) -> Option<u32> {
    v.is_number().then(|| positive_int(v)).flatten()
}

/// A positive integer given as a JSON number (`2`, `2.0`) or a numeric string (`"2"`).
pub(crate) fn positive_int(v: &Value) -> Option<u32> {
    let f = number(v)?;
    (f.is_finite() && f >= 1.0 && f.fract() == 0.0 && f <= u32::MAX as f64).then_some(f as u32)
}

/// An optional price: a finite, positive JSON number or numeric string; `null`/absent/empty is none.
pub(crate) fn price_field(
    args: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<f64>, RequestError> {
    let v = match args.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(v) => v,
    };
    match number(v) {
        Some(f) if f.is_finite() && f > 0.0 && f < 1e12 => Ok(Some(f)),
        _ => Err(bad(field, "a finite positive price", v)),
    }
}
