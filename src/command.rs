//! The commands an alert can ask for, each validated completely before anything is sent:
//! `CancelAndBracket` (the seed: protect a position), `PlaceOrder` (enter or add) and `ClosePosition`
//! (flatten one instrument on one account). A template renders one or several (a sequence, run in order in
//! the lane); the record keeps each as one execution.
//!
//! On the wire (records, rendered requests) a command is its CrossTrade body plus `command`; a body without
//! `command` is a CancelAndBracket, so records written before commands existed read back unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::domain::{
    bad, instrument_field, positive_int, present, price_field, string_field, Action,
    BracketRequest, OrderId, PositionGate, RelayFields, RequestError, RELAY_FIELDS,
};
use crate::instruments::{on_tick_grid, Instruments};
use crate::paper::{OrderType, PlaceOrder};

/// One validated command for one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CancelAndBracket(BracketRequest),
    PlaceOrder(OrderRequest),
    ClosePosition(CloseRequest),
}

/// How long a placed order works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    #[serde(rename = "DAY")]
    Day,
    #[serde(rename = "GTC")]
    Gtc,
}

impl TimeInForce {
    fn parse(s: &str) -> Option<TimeInForce> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DAY" => Some(TimeInForce::Day),
            "GTC" => Some(TimeInForce::Gtc),
            _ => None,
        }
    }
}

/// `PlaceOrder`: one order (market, limit or stop market) on one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub account: String,
    pub instrument: String,
    pub action: Action,
    pub quantity: u32,
    pub order_type: OrderType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    pub time_in_force: TimeInForce,
    /// Our id for the order (CrossTrade accepts a caller-chosen `orderId`): generated before the first
    /// attempt, so a retry or a settlement finds the same order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(flatten)]
    pub relay: RelayFields,
}

/// `ClosePosition`: cancel the instrument's working orders and close its position on one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseRequest {
    pub account: String,
    pub instrument: String,
    #[serde(flatten)]
    pub relay: RelayFields,
}

impl Command {
    /// The command's CrossTrade name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CancelAndBracket(_) => "CancelAndBracket",
            Command::PlaceOrder(_) => "PlaceOrder",
            Command::ClosePosition(_) => "ClosePosition",
        }
    }

    pub fn account(&self) -> &str {
        match self {
            Command::CancelAndBracket(r) => &r.account,
            Command::PlaceOrder(r) => &r.account,
            Command::ClosePosition(r) => &r.account,
        }
    }

    pub fn instrument(&self) -> &str {
        match self {
            Command::CancelAndBracket(r) => &r.instrument,
            Command::PlaceOrder(r) => &r.instrument,
            Command::ClosePosition(r) => &r.instrument,
        }
    }

    pub fn relay(&self) -> &RelayFields {
        match self {
            Command::CancelAndBracket(r) => &r.relay,
            Command::PlaceOrder(r) => &r.relay,
            Command::ClosePosition(r) => &r.relay,
        }
    }

    pub fn set_account(&mut self, account: String) {
        match self {
            Command::CancelAndBracket(r) => r.account = account,
            Command::PlaceOrder(r) => r.account = account,
            Command::ClosePosition(r) => r.account = account,
        }
    }

    /// The command without the ids the engine generates (OCO id, order id): what a template decided.
    pub fn without_generated_ids(&self) -> Command {
        let mut c = self.clone();
        match &mut c {
            Command::CancelAndBracket(r) => r.oco_id = None,
            Command::PlaceOrder(r) => r.order_id = None,
            Command::ClosePosition(_) => {}
        }
        c
    }

    /// The lane it executes in: one at a time per (account, instrument).
    pub fn lane(&self) -> (String, String) {
        (self.account().to_string(), self.instrument().to_string())
    }

    /// The bracket, when this is a CancelAndBracket.
    pub fn bracket(&self) -> Option<&BracketRequest> {
        match self {
            Command::CancelAndBracket(r) => Some(r),
            _ => None,
        }
    }

    /// May a newer alert's bracket replace this one before it runs? Only a plain bracket: an entry or a
    /// close changes the position, and skipping it would leave the account out of step with the strategy.
    pub fn supersedable(&self) -> bool {
        matches!(self, Command::CancelAndBracket(r) if !r.relay.entry)
    }

    /// Must the account's position be read before this runs? CancelAndBracket with a gate other than
    /// `any`, an entry flag or a quantity that follows the position; PlaceOrder with a gate other than
    /// `any`; ClosePosition always (a flat account has nothing to close).
    pub fn reads_position(&self) -> bool {
        let gated = |r: &RelayFields| r.position.is_some_and(|g| g != PositionGate::Any);
        match self {
            Command::CancelAndBracket(r) => {
                gated(&r.relay) || r.relay.entry || r.relay.quantity_from_position
            }
            Command::PlaceOrder(r) => gated(&r.relay),
            Command::ClosePosition(_) => true,
        }
    }

    /// Checks the command against the position held (`held`: long > 0, short < 0) and fills in what
    /// follows it. `Err` is why the command is skipped, in words (`account Sim101 is flat in ES 03-27`).
    pub fn gate(&mut self, held: i64) -> Result<(), String> {
        let (account, instrument) = (self.account().to_string(), self.instrument().to_string());
        let is = |extra: &str| {
            format!(
                "account {account} is {} in {instrument}{extra}",
                crate::domain::describe_position(held)
            )
        };
        match self {
            Command::ClosePosition(_) => {
                if held == 0 {
                    return Err(is(": nothing to close"));
                }
            }
            Command::PlaceOrder(r) => match r.relay.position {
                Some(PositionGate::Flat) if held != 0 => {
                    return Err(is("; position = \"flat\" places this order only when flat"))
                }
                Some(PositionGate::SameSide) if held.signum() != r.action.sign() => {
                    return Err(is(&format!(
                        "; position = \"same-side\" places this {} only on a {}",
                        r.action,
                        side_word(r.action)
                    )))
                }
                Some(PositionGate::Reduce) => {
                    if held.signum() != -r.action.sign() {
                        return Err(is(&format!(
                            "; position = \"reduce\" places this {} only against a {}",
                            r.action,
                            side_word(r.action.opposite())
                        )));
                    }
                    // Never past flat: what is left of a position a stop already reduced.
                    r.quantity = r
                        .quantity
                        .min(held.unsigned_abs().min(u64::from(u32::MAX)) as u32);
                }
                _ => {}
            },
            Command::CancelAndBracket(r) => {
                let gate = r.relay.position.unwrap_or(PositionGate::Any);
                let same = held.signum() == r.action.sign();
                let ok = match gate {
                    _ if r.relay.entry => held == 0 || same,
                    // `reduce` is refused for a bracket when it is rendered.
                    PositionGate::SameSide | PositionGate::Reduce => same,
                    PositionGate::Flat => held == 0,
                    PositionGate::Any => true,
                };
                if !ok {
                    let why = if r.relay.entry {
                        format!(
                            "; an entry bracket protecting a {} needs it flat or {}",
                            side_word(r.action),
                            side_word(r.action)
                        )
                    } else if gate == PositionGate::SameSide && held != 0 {
                        format!(
                            "; this bracket protects a {} (action {})",
                            side_word(r.action),
                            r.action
                        )
                    } else {
                        String::new()
                    };
                    return Err(is(&why));
                }
                if r.relay.quantity_from_position {
                    if held == 0 {
                        return Err(is("; quantity = \"position\" has no size to follow"));
                    }
                    r.quantity = held.unsigned_abs().min(u64::from(u32::MAX)) as u32;
                }
            }
        }
        Ok(())
    }

    /// The position after this command ran, as far as the relay can tell without another read: a close
    /// leaves it flat, a filled market order moves it; a resting order or a bracket leaves it as it was.
    pub fn position_after(&self, held: i64) -> i64 {
        match self {
            Command::ClosePosition(_) => 0,
            Command::PlaceOrder(r) if r.order_type == OrderType::Market => {
                held + r.action.sign() * i64::from(r.quantity)
            }
            _ => held,
        }
    }

    /// The command as the broker's JSON body: relay-only fields removed, `account` kept (WebSocket RPC
    /// carries it in `args`; HTTP puts it in the path).
    pub fn to_args(&self) -> Map<String, Value> {
        let mut args = match self.to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for field in RELAY_FIELDS {
            args.remove(field);
        }
        if let Command::PlaceOrder(r) = self {
            let t = match r.order_type {
                OrderType::Market => "MARKET",
                OrderType::Limit => "LIMIT",
                OrderType::StopMarket => "STOPMARKET",
            };
            args.insert("orderType".into(), Value::String(t.into()));
        }
        args
    }

    fn to_json(&self) -> Value {
        let inner = match self {
            Command::CancelAndBracket(r) => serde_json::to_value(r),
            Command::PlaceOrder(r) => serde_json::to_value(r),
            Command::ClosePosition(r) => serde_json::to_value(r),
        };
        let mut v = inner.unwrap_or(Value::Null);
        if let (Value::Object(m), false) = (&mut v, matches!(self, Command::CancelAndBracket(_))) {
            m.insert("command".into(), Value::String(self.name().into()));
        }
        v
    }

    /// What a template rendered: `command` (default CancelAndBracket) and that command's fields, as text
    /// or numbers. `gate` is the template's default position gate for a command that names none.
    pub fn from_rendered(
        args: &Map<String, Value>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<Command, RequestError> {
        let name = match args.get("command") {
            None | Some(Value::Null) => "CancelAndBracket",
            Some(Value::String(s)) if s.trim().is_empty() => "CancelAndBracket",
            Some(Value::String(s)) => s.trim(),
            Some(_) => "",
        };
        let cmd = match name {
            "CancelAndBracket" => {
                let mut r = BracketRequest::from_rendered(args, instruments, at)?;
                // A template's bracket protects a position that exists: same-side unless it says otherwise.
                if r.relay.position.is_none() {
                    r.relay.position = Some(PositionGate::SameSide);
                }
                if r.relay.position == Some(PositionGate::Reduce) {
                    return Err(bad(
                        "position",
                        "\"same-side\", \"flat\" or \"any\" (\"reduce\" is for PlaceOrder)",
                        &args["position"],
                    ));
                }
                Command::CancelAndBracket(r)
            }
            "PlaceOrder" => {
                Command::PlaceOrder(OrderRequest::from_rendered(args, instruments, at)?)
            }
            "ClosePosition" => {
                Command::ClosePosition(CloseRequest::from_rendered(args, instruments, at)?)
            }
            // Not a string, or not a command's name.
            _ => {
                return Err(bad(
                    "command",
                    "one of CancelAndBracket, PlaceOrder, ClosePosition",
                    &args["command"],
                ))
            }
        };
        Ok(cmd)
    }
}

fn side_word(action: Action) -> &'static str {
    match action {
        Action::Buy => "long",
        Action::Sell => "short",
    }
}

/// `account` and `instrument` of a rendered command (the instrument resolved to its name).
fn account_and_instrument(
    args: &Map<String, Value>,
    instruments: &Instruments,
    at: Timestamp,
    needs: &'static str,
) -> Result<(String, String), RequestError> {
    if let Some(missing) = ["account", "instrument"]
        .into_iter()
        .find(|k| !present(args, k))
    {
        return Err(RequestError::Missing {
            field: missing,
            command: needs,
        });
    }
    let account = string_field(args, "account")?;
    let instrument = instrument_field(args, instruments, at)?;
    Ok((account, instrument))
}

impl OrderRequest {
    /// A rendered PlaceOrder: `account`, `instrument`, `action`, `quantity`, `orderType` (default MARKET),
    /// `limitPrice`/`stopPrice` as the type needs, `timeInForce` (default DAY), `position` (default any).
    pub fn from_rendered(
        args: &Map<String, Value>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<OrderRequest, RequestError> {
        let (account, instrument) = account_and_instrument(args, instruments, at, "PlaceOrder")?;
        let text = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let action_v = args.get("action").cloned().unwrap_or(Value::Null);
        let action = text("action")
            .and_then(Action::parse_loose)
            .ok_or_else(|| bad("action", "\"Buy\" or \"Sell\"", &action_v))?;
        let qty_v = args.get("quantity").cloned().unwrap_or(Value::Null);
        let quantity =
            positive_int(&qty_v).ok_or_else(|| bad("quantity", "a positive integer", &qty_v))?;
        let order_type = match text("orderType") {
            None => OrderType::Market,
            Some(s) => OrderType::parse(s).ok_or_else(|| {
                bad(
                    "orderType",
                    "\"MARKET\", \"LIMIT\" or \"STOPMARKET\"",
                    &args["orderType"],
                )
            })?,
        };
        let time_in_force = match text("timeInForce") {
            None => TimeInForce::Day,
            Some(s) => TimeInForce::parse(s)
                .ok_or_else(|| bad("timeInForce", "\"DAY\" or \"GTC\"", &args["timeInForce"]))?,
        };
        let tick = instruments.get(&instrument).map_or(0.0, |s| s.tick_size);
        let priced = |field: &'static str| -> Result<Option<f64>, RequestError> {
            let p = price_field(args, field)?.ok_or(RequestError::Missing {
                field,
                command: "PlaceOrder",
            })?;
            if !on_tick_grid(p, tick) {
                return Err(RequestError::OffTick {
                    field,
                    price: p,
                    instrument: instrument.clone(),
                    tick,
                });
            }
            Ok(Some(p))
        };
        let (limit_price, stop_price) = match order_type {
            OrderType::Market => (None, None),
            OrderType::Limit => (priced("limitPrice")?, None),
            OrderType::StopMarket => (None, priced("stopPrice")?),
        };
        Ok(OrderRequest {
            account,
            instrument,
            action,
            quantity,
            order_type,
            limit_price,
            stop_price,
            time_in_force,
            order_id: None,
            relay: RelayFields::from_args(args)?,
        })
    }

    /// The paper broker's form of the order.
    pub fn to_paper(&self) -> PlaceOrder {
        PlaceOrder {
            instrument: self.instrument.clone(),
            action: self.action,
            quantity: self.quantity,
            order_type: self.order_type,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            oco_id: None,
            order_id: self.order_id.clone(),
        }
    }
}

impl CloseRequest {
    pub fn from_rendered(
        args: &Map<String, Value>,
        instruments: &Instruments,
        at: Timestamp,
    ) -> Result<CloseRequest, RequestError> {
        let (account, instrument) = account_and_instrument(args, instruments, at, "ClosePosition")?;
        Ok(CloseRequest {
            account,
            instrument,
            relay: RelayFields::from_args(args)?,
        })
    }
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let name = v
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or("CancelAndBracket");
        let cmd = match name {
            "CancelAndBracket" => {
                Command::CancelAndBracket(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            "PlaceOrder" => {
                Command::PlaceOrder(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            "ClosePosition" => {
                Command::ClosePosition(serde_json::from_value(v).map_err(D::Error::custom)?)
            }
            other => return Err(D::Error::custom(format!("unknown command '{other}'"))),
        };
        Ok(cmd)
    }
}

impl From<BracketRequest> for Command {
    fn from(r: BracketRequest) -> Command {
        Command::CancelAndBracket(r)
    }
}

#[cfg(test)]
mod tests {
    //! The gates alone, on every position a strategy's account can hold. Invariants: a `reduce` order never
    //! takes the position past flat; a bracket that follows the position is placed only around a position
    //! of its own side, at exactly its size; a `flat` order runs only on a flat account.

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn order(action: &str, quantity: u32, position: &str) -> Command {
        serde_json::from_value(json!({
            "command": "PlaceOrder", "account": "Sim101", "instrument": "ES 12-26", "action": action,
            "quantity": quantity, "orderType": "Market", "timeInForce": "DAY", "position": position,
        }))
        .unwrap()
    }

    fn bracket_following(action: &str) -> Command {
        serde_json::from_value(json!({
            "account": "Sim101", "instrument": "ES 12-26", "action": action, "quantity": 1,
            "takeProfit": 6010.0, "stopLoss": 5995.0, "position": "same-side", "quantityFromPosition": true,
        }))
        .unwrap()
    }

    #[test]
    fn reduce_runs_only_against_a_position_and_never_past_flat() {
        let cases = [
            (2, "Sell", 1, Ok(1)),
            (1, "Sell", 2, Ok(1)),
            (-3, "Buy", 2, Ok(2)),
            (0, "Sell", 1, Err("account Sim101 is flat in ES 12-26; position = \"reduce\" places this Sell only against a long")),
            (-1, "Sell", 1, Err("account Sim101 is short 1 in ES 12-26; position = \"reduce\" places this Sell only against a long")),
            (2, "Buy", 1, Err("account Sim101 is long 2 in ES 12-26; position = \"reduce\" places this Buy only against a short")),
        ];
        for (held, action, qty, want) in cases {
            let mut c = order(action, qty, "reduce");
            let got = c.gate(held).map(|()| match &c {
                Command::PlaceOrder(r) => r.quantity,
                _ => unreachable!(),
            });
            assert_eq!(
                got,
                want.map_err(String::from),
                "held {held}, {action} {qty}"
            );
        }
    }

    #[test]
    fn a_bracket_cannot_be_gated_reduce() {
        let args = json!({"instrument": "ES 12-26", "account": "Sim101", "action": "Buy", "quantity": 1,
                          "takeProfit": 6010, "stopLoss": 5995, "position": "reduce"});
        let mut specs = std::collections::BTreeMap::new();
        let es = crate::instruments::InstrumentSpec {
            tick_size: 0.25,
            point_value: 50.0,
            symbols: vec!["ES1!".into()],
        };
        specs.insert("ES 12-26".to_string(), es);
        let instruments = Instruments::new(specs).unwrap();
        let err = Command::from_rendered(args.as_object().unwrap(), &instruments, Timestamp(0))
            .unwrap_err();
        assert!(
            err.to_string().contains("\"reduce\" is for PlaceOrder"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn gates_never_turn_a_position_over(held in -5i64..=5, qty in 1u32..=5, buy: bool) {
            let action = if buy { "Buy" } else { "Sell" };
            let mut reduce = order(action, qty, "reduce");
            if reduce.gate(held).is_ok() {
                let after = reduce.position_after(held);
                prop_assert!(after * held >= 0 && after.abs() < held.abs(), "{held} -> {after}");
            }
            let mut entry = order(action, qty, "flat");
            prop_assert_eq!(entry.gate(held).is_ok(), held == 0);
            let sign = if buy { 1 } else { -1 };
            let mut b = bracket_following(action);
            if b.gate(held).is_ok() {
                prop_assert_eq!(held.signum(), sign);
                prop_assert_eq!(b.bracket().map(|r| i64::from(r.quantity)), Some(held.abs()));
                prop_assert_eq!(b.position_after(held), held);
            } else {
                prop_assert_ne!(held.signum(), sign);
            }
        }
    }
}
