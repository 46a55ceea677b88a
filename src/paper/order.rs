//! Orders as the simulated account keeps them, and the `PlaceOrder` request that creates one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::domain::{number, positive_int_number, Action, OcoId, OrderId};
use crate::instruments::{on_tick_grid, round_to_tick, Instruments};

use super::error::PaperError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    Market,
    Limit,
    StopMarket,
}

impl OrderType {
    /// `MARKET`, `LIMIT`, `STOPMARKET` in any case (CrossTrade spells them upper-case).
    pub fn parse(s: &str) -> Option<OrderType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "market" => Some(OrderType::Market),
            "limit" => Some(OrderType::Limit),
            "stopmarket" => Some(OrderType::StopMarket),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    /// Resting at the venue.
    Working,
    /// Cancel requested but not yet confirmed: the order can still fill, which is exactly the race
    /// CancelAndBracket has to survive.
    CancelPending,
    Filled,
    Cancelled,
    /// Kept for parity with NinjaTrader's states; the paper broker refuses bad orders up front with an
    /// error instead of storing them.
    Rejected,
}

impl OrderState {
    /// Filled, Cancelled and Rejected never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderState::Filled | OrderState::Cancelled | OrderState::Rejected
        )
    }

    /// Working and CancelPending orders can still be reached by a quote.
    pub fn is_live(self) -> bool {
        !self.is_terminal()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: OrderId,
    pub account: String,
    pub instrument: String,
    pub action: Action,
    pub order_type: OrderType,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    pub state: OrderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_price: Option<f64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_at: Option<Timestamp>,
    /// Placement order within the broker: order lists are sorted by it and the oldest finished orders
    /// are the first dropped.
    pub sequence: u64,
}

impl Order {
    /// The price this order fills at if the last price is `last`, or `None` if `last` does not reach it.
    /// Limits fill at their limit (the conservative simulation), stops at the quote that triggered them.
    pub fn fill_price_at(&self, last: f64) -> Option<f64> {
        match (self.order_type, self.action) {
            (OrderType::Market, _) => Some(last),
            (OrderType::Limit, Action::Sell) => self.limit_price.filter(|&l| last >= l),
            (OrderType::Limit, Action::Buy) => self.limit_price.filter(|&l| last <= l),
            (OrderType::StopMarket, Action::Sell) => {
                self.stop_price.filter(|&s| last <= s).map(|_| last)
            }
            (OrderType::StopMarket, Action::Buy) => {
                self.stop_price.filter(|&s| last >= s).map(|_| last)
            }
        }
    }

    /// Signed contracts this order adds to the position when it fills.
    pub fn signed_quantity(&self) -> i64 {
        self.action.sign() * i64::from(self.quantity)
    }
}

/// A request to place one order. Build it with [`PlaceOrder::from_args`] from JSON, or directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    /// Instrument name or TradingView symbol.
    pub instrument: String,
    pub action: Action,
    pub quantity: u32,
    pub order_type: OrderType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    /// Caller-chosen id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

/// Longest caller-chosen order or OCO id.
const MAX_ID_LEN: usize = 64;

impl PlaceOrder {
    /// Parses and validates the JSON arguments of a PlaceOrder call (`instrument`, `action`, `quantity`,
    /// `orderType`, `limitPrice`, `stopPrice`, `ocoId`, `orderId`). A continuous symbol resolves to the
    /// front month at `at`.
    pub fn from_args(
        args: &Map<String, Value>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<PlaceOrder, PaperError> {
        let instrument = match required(args, "instrument")? {
            Value::String(s) => s.trim().to_string(),
            v => return Err(PaperError::invalid("instrument", "a string", v)),
        };
        let action_v = required(args, "action")?;
        let action = action_v
            .as_str()
            .and_then(Action::parse)
            .ok_or_else(|| PaperError::invalid("action", "\"Buy\" or \"Sell\"", action_v))?;
        let qty_v = required(args, "quantity")?;
        let quantity = positive_int_number(qty_v)
            .ok_or_else(|| PaperError::invalid("quantity", "a positive integer", qty_v))?;
        let type_v = required(args, "orderType")?;
        let order_type = type_v.as_str().and_then(OrderType::parse).ok_or_else(|| {
            PaperError::invalid(
                "orderType",
                "\"MARKET\", \"LIMIT\" or \"STOPMARKET\"",
                type_v,
            )
        })?;
        let oco_id = optional_string(args, "ocoId")?.map(OcoId);
        let order_id = optional_string(args, "orderId")?.map(OrderId);
        let order = PlaceOrder {
            instrument,
            action,
            quantity,
            order_type,
            limit_price: price(args, "limitPrice")?,
            stop_price: price(args, "stopPrice")?,
            oco_id,
            order_id,
        };
        order.validated(instruments, at)
    }

    /// Checks the order against the instrument table and returns it normalized: the instrument resolved
    /// to its name, prices rounded onto the grid, and prices the order type does not use dropped
    /// (NinjaTrader ignores a limit price on a market order, so we do too).
    pub fn validated(
        &self,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<PlaceOrder, PaperError> {
        let name = instruments
            .resolve_at(&self.instrument, at)
            .map_err(|e| PaperError::Request(e.into()))?
            .ok_or_else(|| PaperError::UnknownInstrument(self.instrument.clone()))?
            .contract;
        let name = name.as_str();
        let tick = instruments.get(name).map_or(0.0, |s| s.tick_size);
        if self.quantity == 0 {
            return Err(PaperError::invalid("quantity", "a positive integer", 0));
        }
        let check = |field: &'static str, p: Option<f64>| -> Result<Option<f64>, PaperError> {
            match p {
                None => Err(PaperError::MissingField(field)),
                Some(p) if !(p.is_finite() && p > 0.0 && p < 1e12) => {
                    Err(PaperError::invalid(field, "a finite positive price", p))
                }
                Some(p) if !on_tick_grid(p, tick) => Err(PaperError::InvalidField {
                    field,
                    expected: "a price on the instrument's tick grid",
                    got: format!("{p} (tick size of {name} is {tick})"),
                }),
                Some(p) => Ok(Some(round_to_tick(p, tick))),
            }
        };
        let (limit_price, stop_price) = match self.order_type {
            OrderType::Market => (None, None),
            OrderType::Limit => (check("limitPrice", self.limit_price)?, None),
            OrderType::StopMarket => (None, check("stopPrice", self.stop_price)?),
        };
        if let Some(oco) = &self.oco_id {
            if !valid_id(&oco.0, "-_.:") {
                return Err(PaperError::invalid(
                    "ocoId",
                    "1 to 64 characters of letters, digits, '-', '_', '.' or ':'",
                    &oco.0,
                ));
            }
        }
        if let Some(id) = &self.order_id {
            if !valid_id(&id.0, "-_") {
                return Err(PaperError::invalid(
                    "orderId",
                    "1 to 64 characters of letters, digits, '-' or '_'",
                    &id.0,
                ));
            }
        }
        Ok(PlaceOrder {
            instrument: name.to_string(),
            limit_price,
            stop_price,
            ..self.clone()
        })
    }
}

fn valid_id(s: &str, extra: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn present(v: Option<&Value>) -> Option<&Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some(v),
    }
}

fn required<'a>(
    args: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, PaperError> {
    present(args.get(field)).ok_or(PaperError::MissingField(field))
}

fn optional_string(
    args: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, PaperError> {
    match present(args.get(field)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(v) => Err(PaperError::invalid(field, "a string", v)),
    }
}

/// A positive integer given as a JSON number (`2`, `2.0`) or a numeric string (`"2"`).
/// An optional price as a JSON number or numeric string; range and grid are checked in `validated`.
fn price(args: &Map<String, Value>, field: &'static str) -> Result<Option<f64>, PaperError> {
    let Some(v) = present(args.get(field)) else {
        return Ok(None);
    };
    number(v)
        .map(Some)
        .ok_or_else(|| PaperError::invalid(field, "a finite positive price", v))
}
