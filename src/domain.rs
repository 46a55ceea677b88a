//! Trading vocabulary shared by every layer: `Action`, the id newtypes, and the `CancelAndBracket` request
//! with the one parser and validator that webhooks (via templates), the seed HTTP API and WebSocket RPC all use.
//!
//! A request is validated completely *before* anything is cancelled: a bad template or a typo must never
//! strip a position of its protection.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::contracts::ContractError;
use crate::instruments::{on_tick_grid, Instruments};

pub use crate::gate::{describe_position, PositionGate, RelayFields, RELAY_FIELDS};
pub(crate) use crate::request_fields::{
    bad, instrument_field, number, positive_int, positive_int_number, present, price_field,
    string_field,
};

/// The side of the position a bracket protects (`Buy` protects a long, so its exit orders are `Sell`s);
/// for a single order, the order's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(alias = "buy", alias = "BUY")]
    Buy,
    #[serde(alias = "sell", alias = "SELL")]
    Sell,
}

impl Action {
    /// Strict parse used by the API: exactly `Buy` or `Sell`.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "Buy" => Some(Action::Buy),
            "Sell" => Some(Action::Sell),
            _ => None,
        }
    }

    /// What a template may render: `Buy`/`Sell` in any case, spaces around allowed.
    pub fn parse_any_case(s: &str) -> Option<Action> {
        match s.trim().to_ascii_lowercase().as_str() {
            "buy" => Some(Action::Buy),
            "sell" => Some(Action::Sell),
            _ => None,
        }
    }

    /// Loose parse used by templates: also `long`/`short` (any case).
    pub fn parse_loose(s: &str) -> Option<Action> {
        match s.trim().to_ascii_lowercase().as_str() {
            "buy" | "long" => Some(Action::Buy),
            "sell" | "short" => Some(Action::Sell),
            _ => None,
        }
    }

    pub fn opposite(self) -> Action {
        match self {
            Action::Buy => Action::Sell,
            Action::Sell => Action::Buy,
        }
    }

    /// +1 for Buy, -1 for Sell: the sign of the position this side adds to.
    pub fn sign(self) -> i64 {
        match self {
            Action::Buy => 1,
            Action::Sell => -1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "Buy",
            Action::Sell => "Sell",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broker order id: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub String);

impl OrderId {
    pub fn generate() -> OrderId {
        OrderId(random_hex32())
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id shared by the two legs of a bracket: a fill of one cancels the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OcoId(pub String);

impl OcoId {
    pub fn generate() -> OcoId {
        OcoId(random_hex32())
    }
}

impl fmt::Display for OcoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 128 random bits as 32 lowercase hex characters.
pub fn random_hex32() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Longest accepted OCO id; CrossTrade/NinjaTrader accept free text, we keep it to a sane, printable size.
const MAX_OCO_LEN: usize = 64;
/// Largest per-request cancel delay override, in milliseconds.
pub const MAX_CANCEL_DELAY_MS: u64 = 10_000;

/// The exact message CrossTrade returns when a required field is missing.
pub const MISSING_REQUIRED: &str =
    "Missing required fields (account, instrument, action, quantity)";

/// A validated CancelAndBracket request. Only [`BracketRequest::from_args`] builds one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BracketRequest {
    pub account: String,
    pub instrument: String,
    pub action: Action,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    /// Per-request override of the cancel → place delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_delay_ms: Option<u64>,
    /// The relay's own fields (never sent to the broker): the position gate, the entry flag, a quantity
    /// that follows the position, the alert's price.
    #[serde(flatten)]
    pub relay: RelayFields,
}

/// Why a CancelAndBracket request was refused. Each message names the field and what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("{MISSING_REQUIRED}")]
    MissingRequired,
    #[error("{field}: required by {command}")]
    Missing {
        field: &'static str,
        command: &'static str,
    },
    #[error("{field} must be {expected}, got {got}")]
    BadField {
        field: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("instrument: unknown instrument '{0}'; add it under [instruments] in the config")]
    UnknownInstrument(String),
    /// An explicit contract that does not exist or has expired.
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error("takeProfit/stopLoss: at least one of takeProfit and stopLoss is required")]
    NoExit,
    #[error("{field}: price {price} is not on the tick grid of {instrument} (tick size {tick})")]
    OffTick {
        field: &'static str,
        price: f64,
        instrument: String,
        tick: f64,
    },
    #[error("takeProfit/stopLoss: protecting a {side} needs takeProfit {cmp} stopLoss, got takeProfit {tp} and stopLoss {sl}")]
    WrongSides {
        side: &'static str,
        cmp: &'static str,
        tp: f64,
        sl: f64,
    },
}

impl BracketRequest {
    /// Parses and validates the JSON arguments of a CancelAndBracket call (the API: `action` exactly
    /// `Buy` or `Sell`, `quantity` a JSON number). `account` may come from the URL path instead of the
    /// body (`path_account`), which then wins. A continuous symbol resolves to the front month at `at`.
    pub fn from_args(
        args: &Map<String, Value>,
        path_account: Option<&str>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<BracketRequest, RequestError> {
        Self::parse_args(args, path_account, instruments, true, at)
    }

    /// Like [`from_args`](Self::from_args), for what a template rendered: rendered values are text, so
    /// `quantity` may be a numeric string and `action` `Buy`/`Sell` in any case.
    pub fn from_rendered(
        args: &Map<String, Value>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<BracketRequest, RequestError> {
        Self::parse_args(args, None, instruments, false, at)
    }

    fn parse_args(
        args: &Map<String, Value>,
        path_account: Option<&str>,
        instruments: &Instruments,
        strict: bool,
        at: Timestamp,
    ) -> Result<BracketRequest, RequestError> {
        let present = |k: &str| present(args, k);
        let account_present =
            path_account.is_some_and(|a| !a.trim().is_empty()) || present("account");
        if !(account_present && present("instrument") && present("action") && present("quantity")) {
            return Err(RequestError::MissingRequired);
        }
        let account = match path_account {
            Some(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ => string_field(args, "account")?,
        };
        let instrument = instrument_field(args, instruments, at)?;
        let action = match &args["action"] {
            Value::String(s) if strict => Action::parse(s),
            Value::String(s) => Action::parse_any_case(s),
            _ => None,
        }
        .ok_or_else(|| bad("action", "\"Buy\" or \"Sell\"", &args["action"]))?;
        let from_position = matches!(&args["quantity"], Value::String(s) if s.trim() == "position");
        let quantity = if from_position {
            Some(0)
        } else if strict {
            positive_int_number(&args["quantity"])
        } else {
            positive_int(&args["quantity"])
        }
        .ok_or_else(|| bad("quantity", "a positive integer", &args["quantity"]))?;
        let mut relay = RelayFields::from_args(args)?;
        relay.quantity_from_position = from_position;
        let take_profit = price_field(args, "takeProfit")?;
        let stop_loss = price_field(args, "stopLoss")?;
        let oco_id = match args.get("ocoId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s))
                if s.len() <= MAX_OCO_LEN
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) =>
            {
                Some(OcoId(s.clone()))
            }
            Some(v) => {
                return Err(bad(
                    "ocoId",
                    "up to 64 characters of letters, digits, '-', '_', '.' or ':'",
                    v,
                ))
            }
        };
        let cancel_delay_ms = match args.get("cancelDelayMs") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|ms| *ms <= MAX_CANCEL_DELAY_MS)
                    .ok_or_else(|| bad("cancelDelayMs", "an integer from 0 to 10000", v))?,
            ),
        };
        let req = BracketRequest {
            account,
            instrument,
            action,
            quantity,
            take_profit,
            stop_loss,
            oco_id,
            cancel_delay_ms,
            relay,
        };
        req.validate(instruments)?;
        Ok(req)
    }

    /// Checks the prices against the instrument: at least one exit, on the tick grid, on the right sides.
    pub fn validate(&self, instruments: &Instruments) -> Result<(), RequestError> {
        let spec = instruments
            .get(&self.instrument)
            .ok_or_else(|| RequestError::UnknownInstrument(self.instrument.clone()))?;
        if self.take_profit.is_none() && self.stop_loss.is_none() {
            return Err(RequestError::NoExit);
        }
        for (field, price) in [
            ("takeProfit", self.take_profit),
            ("stopLoss", self.stop_loss),
        ] {
            if let Some(price) = price {
                if !on_tick_grid(price, spec.tick_size) {
                    return Err(RequestError::OffTick {
                        field,
                        price,
                        instrument: self.instrument.clone(),
                        tick: spec.tick_size,
                    });
                }
            }
        }
        if let (Some(tp), Some(sl)) = (self.take_profit, self.stop_loss) {
            let ok = match self.action {
                Action::Buy => tp > sl,
                Action::Sell => tp < sl,
            };
            if !ok {
                let (side, cmp) = match self.action {
                    Action::Buy => ("long (action Buy)", ">"),
                    Action::Sell => ("short (action Sell)", "<"),
                };
                return Err(RequestError::WrongSides { side, cmp, tp, sl });
            }
        }
        Ok(())
    }
}

/// What a CancelAndBracket call did, in CrossTrade's answer shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BracketOutcome {
    /// Every order the call touched: the cancelled ones, then the placed ones.
    pub order_ids: Vec<OrderId>,
    #[serde(default)]
    pub cancelled_order_ids: Vec<OrderId>,
    #[serde(default)]
    pub placed_order_ids: Vec<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    /// Bracket size after any clamp to the position.
    #[serde(default)]
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aborted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub success: bool,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::instruments::InstrumentSpec;

    fn instruments() -> Instruments {
        let mut specs = BTreeMap::new();
        specs.insert(
            "ES 12-26".to_string(),
            InstrumentSpec {
                tick_size: 0.25,
                point_value: 50.0,
                symbols: vec!["ES1!".into()],
            },
        );
        Instruments::new(specs).unwrap()
    }

    fn parse(v: Value) -> Result<BracketRequest, RequestError> {
        BracketRequest::from_args(v.as_object().unwrap(), None, &instruments(), Timestamp(0))
    }

    #[test]
    fn parses_a_full_request() {
        let r = parse(
            json!({"account":"Sim101","instrument":"ES1!","action":"Buy","quantity":2,
            "takeProfit":4510.25,"stopLoss":"4490","ocoId":"my-oco"}),
        )
        .unwrap();
        assert_eq!(r.instrument, "ES 12-26");
        assert_eq!(r.quantity, 2);
        assert_eq!(r.take_profit, Some(4510.25));
        assert_eq!(r.stop_loss, Some(4490.0));
        assert_eq!(r.oco_id, Some(OcoId("my-oco".into())));
    }

    #[test]
    fn missing_fields_give_the_exact_message() {
        for v in [
            json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"takeProfit":4500}),
            json!({"account":"Sim101","action":"Buy","quantity":1}),
            json!({"account":"Sim101","instrument":"ES 12-26","quantity":1}),
            json!({"account":"Sim101","instrument":"ES 12-26","action":"Buy","quantity":null}),
            json!({"account":"","instrument":"ES 12-26","action":"Buy","quantity":1}),
        ] {
            let e = parse(v).unwrap_err();
            assert_eq!(e.to_string(), MISSING_REQUIRED);
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let base = json!({"account":"Sim101","instrument":"ES 12-26","action":"Buy","quantity":1,
            "takeProfit":4510,"stopLoss":4490});
        let cases: &[(&str, Value, &str)] = &[
            ("action", json!("Hold"), "action"),
            ("quantity", json!(1.5), "quantity"),
            ("quantity", json!(0), "quantity"),
            ("quantity", json!(-2), "quantity"),
            ("instrument", json!("XX"), "instrument"),
            ("takeProfit", json!(4510.1), "takeProfit"),
            ("stopLoss", json!(-1), "stopLoss"),
            ("stopLoss", json!(4520), "takeProfit/stopLoss"),
            ("ocoId", json!("a b"), "ocoId"),
        ];
        for (field, val, needle) in cases {
            let mut v = base.clone();
            v[*field] = val.clone();
            let e = parse(v).unwrap_err().to_string();
            assert!(e.starts_with(needle), "{field}={val}: {e}");
        }
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("takeProfit");
        v.as_object_mut().unwrap().remove("stopLoss");
        assert_eq!(parse(v).unwrap_err(), RequestError::NoExit);
    }

    #[test]
    fn short_side_needs_tp_below_sl() {
        let ok = parse(
            json!({"account":"A","instrument":"ES 12-26","action":"Sell","quantity":1,
            "takeProfit":4490,"stopLoss":4510}),
        );
        assert!(ok.is_ok());
        let bad = parse(
            json!({"account":"A","instrument":"ES 12-26","action":"Sell","quantity":1,
            "takeProfit":4510,"stopLoss":4490}),
        );
        assert!(matches!(bad, Err(RequestError::WrongSides { .. })));
    }

    /// The API takes `action` exactly as `Buy`/`Sell` and `quantity` as a number; what a template rendered
    /// is text, so there `"2"` and `buy` pass.
    #[test]
    fn the_api_is_strict_about_action_and_quantity_and_templates_are_not() {
        let base = json!({"account":"Sim101","instrument":"ES1!","action":"Buy","quantity":2,"stopLoss":4490});
        for (field, value) in [
            ("action", json!("buy")),
            ("action", json!("BUY")),
            ("action", json!(" Buy")),
            ("action", json!("Long")),
            ("quantity", json!("2")),
            ("quantity", json!("1.0")),
            ("quantity", json!(1.5)),
        ] {
            let mut args = base.clone();
            args[field] = value.clone();
            let e = parse(args).expect_err(&format!("{field} = {value} must be refused"));
            assert!(
                e.to_string().starts_with(&format!("{field} must be")),
                "{e}"
            );
        }
        let mut rendered = base.clone();
        rendered["action"] = json!(" buy");
        rendered["quantity"] = json!("2");
        let r = BracketRequest::from_rendered(
            rendered.as_object().unwrap(),
            &instruments(),
            Timestamp(0),
        )
        .unwrap();
        assert_eq!((r.action, r.quantity), (Action::Buy, 2));
        // A whole number written with a fraction part is still a positive integer.
        let mut float = base.clone();
        float["quantity"] = json!(2.0);
        assert_eq!(parse(float).unwrap().quantity, 2);
    }

    #[test]
    fn path_account_wins() {
        let r = BracketRequest::from_args(
            json!({"instrument":"ES 12-26","action":"Sell","quantity":3,"stopLoss":4510})
                .as_object()
                .unwrap(),
            Some("Sim101"),
            &instruments(),
            Timestamp(0),
        )
        .unwrap();
        assert_eq!(r.account, "Sim101");
        assert_eq!(r.action, Action::Sell);
    }
}
