//! Position gates and the relay's own request fields: what a command asks of the relay beside the broker
//! call (which position it may run against, an entry on purpose, a size that follows the position, the
//! alert's price). None of it is ever sent to the broker.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::RequestError;
use crate::request_fields::{bad, price_field};

/// What a request asks of the relay itself, beside the broker call: never part of the broker's body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayFields {
    /// Which position the command may run against (read from the broker first); none: not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<PositionGate>,
    /// CancelAndBracket only: on a flat account, place the bracket as an entry ("straddle") on purpose.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entry: bool,
    /// CancelAndBracket only: `quantity = "position"`, the bracket takes the size actually held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quantity_from_position: bool,
    /// The market price the alert saw (TradingView's `close`, or the order's price): the paper account
    /// moves its quote there first when `paper.follow_alert_prices` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_price: Option<f64>,
}

impl RelayFields {
    /// `position`, `entry` and `alertPrice` from a request's arguments (all optional).
    pub fn from_args(args: &Map<String, Value>) -> Result<RelayFields, RequestError> {
        let position = match args.get("position") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(v) => Some(v.as_str().and_then(PositionGate::parse).ok_or_else(|| {
                bad(
                    "position",
                    "\"same-side\", \"flat\", \"reduce\" or \"any\"",
                    v,
                )
            })?),
        };
        let entry = match args.get("entry") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.trim() == "true" => true,
            Some(Value::String(s)) if s.trim() == "false" || s.trim().is_empty() => false,
            Some(v) => return Err(bad("entry", "true or false", v)),
        };
        Ok(RelayFields {
            position,
            entry,
            quantity_from_position: false,
            alert_price: price_field(args, "alertPrice")?,
        })
    }
}

/// The relay-side field names, removed from a request's JSON before it goes to the broker.
pub const RELAY_FIELDS: [&str; 5] = [
    "position",
    "entry",
    "quantityFromPosition",
    "alertPrice",
    "command",
];

/// Which position a gated command may run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositionGate {
    /// A position on the side the command protects (`Buy` = long); flat or opposite: skipped.
    SameSide,
    /// Only when flat (entries that must not stack).
    Flat,
    /// PlaceOrder only: against a position on the other side of the order, clamped to its size, so a
    /// strategy that reduces never turns the account over (a stop that already closed the position skips it).
    Reduce,
    /// Whatever the position is (it is still read when the quantity follows it).
    Any,
}

impl PositionGate {
    pub fn parse(s: &str) -> Option<PositionGate> {
        match s.trim().to_ascii_lowercase().as_str() {
            "same-side" | "same_side" => Some(PositionGate::SameSide),
            "flat" => Some(PositionGate::Flat),
            "reduce" => Some(PositionGate::Reduce),
            "any" => Some(PositionGate::Any),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PositionGate::SameSide => "same-side",
            PositionGate::Flat => "flat",
            PositionGate::Reduce => "reduce",
            PositionGate::Any => "any",
        }
    }
}

/// `long 2`, `short 1`, `flat`: a signed position in words.
pub fn describe_position(quantity: i64) -> String {
    match quantity {
        0 => "flat".to_string(),
        q if q > 0 => format!("long {q}"),
        q => format!("short {}", -q),
    }
}
