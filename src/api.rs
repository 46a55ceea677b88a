//! The CrossTrade-compatible API, by operation name, independent of transport: HTTP routes and WebSocket
//! RPC frames both call [`call`], so they answer with the same bodies and the same error messages.
//!
//! `CancelAndBracket` goes through the relay pipeline (journal, idempotency, lanes, outbound limit); the
//! other operations act directly on the embedded paper account, as a trader would in NinjaTrader.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::domain::{number, OrderId, RequestError};
use crate::error::RelayError;
use crate::paper::{PaperError, PlaceOrder};
use crate::relay::{CallOutcome, Relay};

/// Every operation callable by name (WebSocket `api` field).
pub const OPERATIONS: [&str; 10] = [
    "CancelAndBracket",
    "PlaceOrder",
    "CancelOrder",
    "ClosePosition",
    "Flatten",
    "GetOrders",
    "GetPositions",
    "GetAccounts",
    "Quote",
    "SetQuote",
];

/// What an operation answered.
#[derive(Debug)]
pub enum Answer {
    /// A broker operation's result, as CrossTrade shapes it.
    Body(Value),
    /// CancelAndBracket's execution, in its final state.
    Execution(Box<CallOutcome>),
}

/// Runs one operation. `args` carries the body fields plus path parameters (`account`, `orderId`).
pub async fn call(
    relay: &Arc<Relay>,
    api: &str,
    args: Map<String, Value>,
    idempotency_key: Option<&str>,
) -> Result<Answer, RelayError> {
    let ok = |body: Value| Ok(Answer::Body(body));
    match api {
        "CancelAndBracket" => relay
            .cancel_and_bracket(None, &args, idempotency_key)
            .await
            .map(|o| Answer::Execution(Box::new(o))),
        "GetAccounts" => ok(json!({
            "accounts": relay.paper.accounts().iter().map(|a| json!({"name": a, "executor": "paper"})).collect::<Vec<_>>(),
            "success": true,
        })),
        "GetOrders" => {
            let account = paper_account(relay, &args)?;
            let orders = relay.paper.orders(&account).map_err(paper_error)?;
            ok(json!({"orders": orders, "success": true}))
        }
        "GetPositions" => {
            let account = paper_account(relay, &args)?;
            let positions = relay.paper.positions(&account).map_err(paper_error)?;
            ok(json!({"positions": positions, "success": true}))
        }
        "PlaceOrder" => {
            let account = paper_account(relay, &args)?;
            let order = PlaceOrder::from_args(&args, &relay.instruments, relay.contracts_now())
                .map_err(paper_error)?;
            let placed = relay
                .paper
                .place_order(&account, &order)
                .map_err(paper_error)?;
            ok(json!({"orderId": placed.order_id, "order": placed, "success": true}))
        }
        "CancelOrder" => {
            let account = paper_account(relay, &args)?;
            let id = match args.get("orderId") {
                Some(Value::String(s)) if !s.is_empty() => OrderId(s.clone()),
                _ => {
                    return Err(RelayError::InvalidRequest(
                        "orderId: the id of the order to cancel is required".into(),
                    ))
                }
            };
            let order = relay
                .paper
                .cancel_order(&account, &id)
                .map_err(paper_error)?;
            ok(json!({"orderId": order.order_id, "order": order, "success": true}))
        }
        "ClosePosition" => {
            let account = paper_account(relay, &args)?;
            let instrument = optional_str(&args, "instrument")?.ok_or_else(|| {
                RelayError::InvalidRequest("instrument: required (the instrument to close)".into())
            })?;
            let before = relay
                .paper
                .position(&account, &instrument)
                .map_err(paper_error)?;
            if before.quantity == 0 {
                return Err(RelayError::InvalidRequest(format!(
                    "No positions found for instrument '{}'",
                    before.instrument
                )));
            }
            let done = relay
                .paper
                .flatten(&account, Some(&instrument))
                .map_err(paper_error)?;
            let mut closed = serde_json::to_value(&before).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut closed {
                m.insert("quantity".into(), json!(before.quantity.abs()));
            }
            ok(json!({
                "closedPositions": [closed],
                "cancelledOrderIds": done.cancelled_order_ids,
                "success": true,
            }))
        }
        "Flatten" => {
            let account = paper_account(relay, &args)?;
            let instrument = optional_str(&args, "instrument")?;
            let done = relay
                .paper
                .flatten(&account, instrument.as_deref())
                .map_err(paper_error)?;
            let mut body = serde_json::to_value(done).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut body {
                m.insert("success".into(), Value::Bool(true));
            }
            ok(body)
        }
        "Quote" => {
            let instrument = optional_str(&args, "instrument")?.ok_or_else(|| {
                RelayError::InvalidRequest(
                    "instrument: required (e.g. ?instrument=ES 12-26)".into(),
                )
            })?;
            let q = relay.paper.quote(&instrument).map_err(paper_error)?;
            ok(serde_json::to_value(q).unwrap_or(Value::Null))
        }
        "SetQuote" => {
            let instrument = optional_str(&args, "instrument")?
                .ok_or_else(|| RelayError::InvalidRequest("instrument: required".into()))?;
            let price = args
                .get("price")
                .and_then(number)
                .filter(|p| p.is_finite() && *p > 0.0)
                .ok_or_else(|| {
                    RelayError::InvalidRequest("price: must be a finite positive number".into())
                })?;
            let update = relay
                .paper
                .set_quote(&instrument, price)
                .map_err(paper_error)?;
            ok(serde_json::to_value(update).unwrap_or(Value::Null))
        }
        other => Err(RelayError::InvalidRequest(format!(
            "api: unknown operation '{}'; use one of {}",
            other.chars().take(64).collect::<String>(),
            OPERATIONS.join(", ")
        ))),
    }
}

/// The account named in `args`, which must be a paper account for direct broker operations.
fn paper_account(relay: &Relay, args: &Map<String, Value>) -> Result<String, RelayError> {
    let account = optional_str(args, "account")?
        .ok_or_else(|| RelayError::InvalidRequest("account: required".into()))?;
    if relay.paper.has_account(&account) {
        Ok(account)
    } else {
        Err(RelayError::NotFound(format!(
            "account: unknown paper account '{account}'; paper accounts: {}",
            relay.paper.accounts().join(", ")
        )))
    }
}

fn optional_str(args: &Map<String, Value>, field: &str) -> Result<Option<String>, RelayError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(RelayError::InvalidRequest(format!(
            "{field}: must be a string"
        ))),
    }
}

fn paper_error(e: PaperError) -> RelayError {
    if let PaperError::Request(RequestError::Contract(c)) = &e {
        return RelayError::Contract(c.to_string());
    }
    if e.is_not_found() {
        RelayError::NotFound(e.to_string())
    } else {
        RelayError::InvalidRequest(e.to_string())
    }
}
