//! The one trait every execution backend implements: the embedded paper broker and the CrossTrade live
//! client. The pipeline only ever talks to `dyn Executor`.
//!
//! One call is one *attempt*. Whether and when to try again is the engine's decision, made from the error
//! kind: the engine keeps every attempt in the record and bounds retries by the alert's age.

use std::time::Duration;

use async_trait::async_trait;

use crate::command::{CloseRequest, Command, OrderRequest};
use crate::domain::{BracketOutcome, BracketRequest, OcoId, OrderId};

/// Why an attempt did not succeed, split by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The broker refused the request (HTTP 400); nothing to retry. The message is the broker's, verbatim.
    #[error("{0}")]
    Rejected(String),
    /// The broker refused our credentials (HTTP 401/403).
    #[error("broker refused the token: {0}")]
    Unauthorized(String),
    /// CrossTrade's 408: the NinjaTrader add-on is not connected.
    #[error("NinjaTrader add-on not connected")]
    NotConnected,
    /// Throttled (HTTP 429): nothing was done; retry after the given delay (or a backoff when absent).
    #[error("throttled by the broker")]
    Throttled { retry_after: Option<Duration> },
    /// The request never reached the broker (connection refused, not connected yet): safe to retry.
    #[error("broker not reachable: {0}")]
    Transient(String),
    /// The request may or may not have been carried out (timeout, 5xx, connection lost after sending).
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

impl ExecError {
    /// May the engine try again (within the alert's age limit)? CancelAndBracket converges — it cancels
    /// everything on the instrument and places one bracket with the same OCO id — so even an unknown
    /// outcome may be retried while the alert is young.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ExecError::Throttled { .. } | ExecError::Transient(_) | ExecError::Unknown(_)
        )
    }

    /// Short label for records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecError::Rejected(_) => "rejected",
            ExecError::Unauthorized(_) => "unauthorized",
            ExecError::NotConnected => "not_connected",
            ExecError::Throttled { .. } => "throttled",
            ExecError::Transient(_) => "transient",
            ExecError::Unknown(_) => "unknown",
        }
    }
}

/// One order as a broker lists it: what settling needs (id, OCO id, state), and what the dashboard shows
/// when the listing has it (instrument, side, type, size, prices).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerOrder {
    pub order_id: OrderId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    /// The broker's word for its state (`Working`, `Filled`, `Cancelled`, ...), kept for the record.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// The broker's word for the side (`Buy`, `Sell`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The broker's word for the type (`Limit`, `StopMarket`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
}

/// Order states (lower case) after which an order never works again, in NinjaTrader's and CrossTrade's words.
const FINISHED_STATES: [&str; 5] = ["filled", "cancelled", "canceled", "rejected", "expired"];

impl BrokerOrder {
    /// An order known by its id, OCO id and state only.
    pub fn new(order_id: OrderId, oco_id: Option<OcoId>, state: impl Into<String>) -> BrokerOrder {
        BrokerOrder {
            order_id,
            oco_id,
            state: state.into(),
            instrument: None,
            action: None,
            order_type: None,
            quantity: None,
            limit_price: None,
            stop_price: None,
        }
    }

    /// Still working at the broker: its state is not one that ends an order (an unknown or missing state
    /// counts as working, so an order is never hidden for a word the relay does not know).
    pub fn is_working(&self) -> bool {
        let state = self.state.to_ascii_lowercase();
        !FINISHED_STATES.contains(&state.as_str())
    }

    /// From one order of a CrossTrade-style listing: `orderId`, the OCO id as `ocoId` or `oco`, the state as
    /// `orderState` or `state`; when present, `instrument`, `action`, `orderType` (or `type`), `quantity`,
    /// `limitPrice` and `stopPrice`. `None` without an order id.
    pub fn from_json(v: &serde_json::Value) -> Option<BrokerOrder> {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        // 0 means "no price" in NinjaTrader's listings (a limit order's stop price, say).
        let price = |key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_f64)
                .filter(|p| *p != 0.0)
        };
        let quantity = v.get("quantity").and_then(|q| {
            q.as_u64()
                .or_else(|| {
                    q.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .and_then(|q| u32::try_from(q).ok())
        });
        Some(BrokerOrder {
            instrument: text(&["instrument"]),
            action: text(&["action"]),
            order_type: text(&["orderType", "type"]),
            quantity,
            limit_price: price("limitPrice"),
            stop_price: price("stopPrice"),
            ..BrokerOrder::new(
                OrderId(text(&["orderId", "id"])?),
                text(&["ocoId", "oco"]).map(OcoId),
                text(&["orderState", "state"]).unwrap_or_default(),
            )
        })
    }

    /// The orders of a listing answer: a JSON array, or an object holding one under `orders` (or `data`).
    pub fn list_from_json(v: &serde_json::Value) -> Option<Vec<BrokerOrder>> {
        let list = listing(v, "orders")?;
        Some(list.iter().filter_map(BrokerOrder::from_json).collect())
    }
}

/// The entries of a listing answer: a JSON array, or an object holding one under `key` (or `data`).
fn listing<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a Vec<serde_json::Value>> {
    match v {
        serde_json::Value::Array(a) => Some(a),
        serde_json::Value::Object(m) => m
            .get(key)
            .or_else(|| m.get("data"))
            .and_then(serde_json::Value::as_array),
        _ => None,
    }
}

/// One position as a broker lists it: the instrument and the signed size (long > 0, short < 0).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerPosition {
    pub instrument: String,
    /// Contracts held: long > 0, short < 0, 0 flat.
    pub quantity: i64,
    /// Average entry price; 0 when flat or not reported.
    pub average_price: f64,
}

impl BrokerPosition {
    /// From one position of a CrossTrade/NinjaTrader listing: `instrument`, `marketPosition`
    /// (`Long`/`Short`/`Flat`) with an unsigned `quantity`, or a signed `quantity` alone; `averagePrice`.
    /// `None` without an instrument, a quantity, or with a market position it does not know.
    pub fn from_json(v: &serde_json::Value) -> Option<BrokerPosition> {
        let instrument = v.get("instrument")?.as_str()?.trim().to_string();
        let raw = v.get("quantity")?;
        let quantity = raw
            .as_i64()
            .or_else(|| raw.as_f64().filter(|q| q.fract() == 0.0).map(|q| q as i64))?;
        let quantity = match v.get("marketPosition").and_then(serde_json::Value::as_str) {
            None => quantity,
            Some(m) => match m.to_ascii_lowercase().as_str() {
                "long" => quantity.abs(),
                "short" => -quantity.abs(),
                "flat" => 0,
                _ => return None,
            },
        };
        Some(BrokerPosition {
            instrument,
            quantity,
            average_price: v
                .get("averagePrice")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
        })
    }

    /// The positions of a listing answer: a JSON array, or an object holding one under `positions` (or
    /// `data`). `None` when the answer is not a listing or holds an entry that cannot be read: a position
    /// the relay cannot read must not be taken for flat.
    pub fn list_from_json(v: &serde_json::Value) -> Option<Vec<BrokerPosition>> {
        let list = listing(v, "positions")?;
        list.iter().map(BrokerPosition::from_json).collect()
    }

    /// The signed size held in `instrument` (0 when the listing has no entry for it).
    pub fn held(positions: &[BrokerPosition], instrument: &str) -> i64 {
        positions
            .iter()
            .filter(|p| p.instrument.eq_ignore_ascii_case(instrument))
            .map(|p| p.quantity)
            .sum()
    }
}

/// One attempt at any command on `executor`.
pub async fn execute(executor: &dyn Executor, cmd: &Command) -> Result<BracketOutcome, ExecError> {
    match cmd {
        Command::CancelAndBracket(r) => executor.cancel_and_bracket(r).await,
        Command::PlaceOrder(r) => executor.place_order(r).await,
        Command::ClosePosition(r) => executor.close_position(r).await,
    }
}

/// The outcome of a call that placed (or closed with) `placed` and cancelled `cancelled`.
pub fn orders_outcome(
    cancelled: Vec<OrderId>,
    placed: Vec<OrderId>,
    quantity: u32,
) -> BracketOutcome {
    BracketOutcome {
        order_ids: cancelled.iter().chain(&placed).cloned().collect(),
        cancelled_order_ids: cancelled,
        placed_order_ids: placed,
        oco_id: None,
        quantity,
        aborted: false,
        reason: None,
        success: true,
    }
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Short name for logs and records (`paper`, `crosstrade-http`, `crosstrade-websocket`).
    fn name(&self) -> &str;

    /// One attempt at a validated CancelAndBracket request: cancel, wait, place.
    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError>;

    /// One attempt at placing one order (CrossTrade `PlaceOrder`). The outcome lists the order's id.
    async fn place_order(&self, req: &OrderRequest) -> Result<BracketOutcome, ExecError>;

    /// One attempt at closing one instrument's position on one account, its working orders cancelled
    /// (CrossTrade `ClosePosition`).
    async fn close_position(&self, req: &CloseRequest) -> Result<BracketOutcome, ExecError>;

    /// The market price an alert saw for `instrument`: the paper account moves its quote there (when
    /// `paper.follow_alert_prices` is on); a live broker has its own market and ignores it.
    fn observe_price(&self, _instrument: &str, _price: f64) {}

    /// Does the backend keep its state in the relay's own journal database? Its writes then follow the
    /// relay's in the same log, and a crash that loses the `executing` mark loses the call's effects too, so
    /// the engine need not wait for that mark to reach the disk before calling. False for anything remote.
    fn shares_journal_log(&self) -> bool {
        false
    }

    /// The account's orders as the broker reports them, working and finished: what settling an `unknown`
    /// execution asks (an order with the execution's OCO id means its bracket was placed).
    async fn orders(&self, account: &str) -> Result<Vec<BrokerOrder>, ExecError>;

    /// The account's open positions as the broker reports them (flat instruments may be missing).
    async fn positions(&self, account: &str) -> Result<Vec<BrokerPosition>, ExecError>;

    /// The longest one attempt can be in flight (its request timeout): the broker is asked about an
    /// unknown outcome only once this has passed since the attempt began, so a call still on its way is
    /// not mistaken for one that never arrived.
    fn in_flight_bound(&self) -> Duration {
        Duration::ZERO
    }

    /// Is the backend usable right now (for `/readyz`)? `Err` says why not.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listings_in_either_shape_and_either_spelling() {
        let orders = json!([
            {"orderId": "a", "ocoId": "oco-1", "state": "Working"},
            {"orderId": "b", "oco": "oco-1", "orderState": "Cancelled"},
            {"orderId": "c"},
            {"ocoId": "no-id"},
        ]);
        let want = vec![
            BrokerOrder::new(OrderId("a".into()), Some(OcoId("oco-1".into())), "Working"),
            BrokerOrder::new(
                OrderId("b".into()),
                Some(OcoId("oco-1".into())),
                "Cancelled",
            ),
            BrokerOrder::new(OrderId("c".into()), None, ""),
        ];
        assert_eq!(BrokerOrder::list_from_json(&orders).unwrap(), want);
        let wrapped = json!({"orders": orders, "success": true});
        assert_eq!(BrokerOrder::list_from_json(&wrapped).unwrap(), want);
        assert!(BrokerOrder::list_from_json(&json!({"success": true})).is_none());
        assert!(BrokerOrder::list_from_json(&json!("x")).is_none());
    }

    #[test]
    fn order_details_read_when_the_listing_has_them() {
        let listing = json!({"orders": [
            {"orderId": "tp", "ocoId": "oco-9", "orderState": "Working", "instrument": "ES 03-27",
             "action": "Sell", "orderType": "Limit", "quantity": 2, "limitPrice": 6010.25, "stopPrice": 0},
            {"orderId": "sl", "oco": "oco-9", "state": "Accepted", "instrument": "ES 03-27",
             "action": "Sell", "type": "StopMarket", "quantity": 2.0, "stopPrice": 5995.0},
            {"orderId": "old", "state": "Filled", "quantity": -1},
        ]});
        let got = BrokerOrder::list_from_json(&listing).unwrap();
        let tp = &got[0];
        assert_eq!(tp.instrument.as_deref(), Some("ES 03-27"));
        assert_eq!(tp.action.as_deref(), Some("Sell"));
        assert_eq!(tp.order_type.as_deref(), Some("Limit"));
        assert_eq!(tp.quantity, Some(2));
        assert_eq!(tp.limit_price, Some(6010.25));
        assert_eq!(tp.stop_price, None, "0 is no price");
        let sl = &got[1];
        assert_eq!(sl.order_type.as_deref(), Some("StopMarket"));
        assert_eq!(sl.quantity, Some(2));
        assert_eq!(sl.stop_price, Some(5995.0));
        assert_eq!(got[2].quantity, None, "a negative size is not read");
        let working: Vec<bool> = got.iter().map(BrokerOrder::is_working).collect();
        assert_eq!(working, [true, true, false]);
        for finished in ["Filled", "CANCELLED", "Canceled", "Rejected", "Expired"] {
            assert!(!BrokerOrder::new(OrderId("x".into()), None, finished).is_working());
        }
        assert!(BrokerOrder::new(OrderId("x".into()), None, "CancelPending").is_working());
    }

    #[test]
    fn positions_signed_by_market_position() {
        let listing = json!({"positions": [
            {"instrument": "ES 03-27", "marketPosition": "Long", "quantity": 2, "averagePrice": 6012.25},
            {"instrument": "NQ 03-27", "marketPosition": "Short", "quantity": 1},
            {"instrument": "CL 02-27", "marketPosition": "Flat", "quantity": 0},
            {"instrument": "GC 02-27", "quantity": -3},
        ], "success": true});
        let got = BrokerPosition::list_from_json(&listing).unwrap();
        let sizes: Vec<(&str, i64)> = got
            .iter()
            .map(|p| (p.instrument.as_str(), p.quantity))
            .collect();
        assert_eq!(
            sizes,
            [
                ("ES 03-27", 2),
                ("NQ 03-27", -1),
                ("CL 02-27", 0),
                ("GC 02-27", -3)
            ]
        );
        assert_eq!(got[0].average_price, 6012.25);
        assert_eq!(BrokerPosition::held(&got, "es 03-27"), 2);
        assert_eq!(BrokerPosition::held(&got, "MES 03-27"), 0);
        // One entry it cannot read makes the whole listing unreadable: never taken for flat.
        let odd = json!([{"instrument": "ES 03-27", "marketPosition": "Sideways", "quantity": 1}]);
        assert!(BrokerPosition::list_from_json(&odd).is_none());
        assert!(BrokerPosition::list_from_json(&json!([{"instrument": "ES 03-27"}])).is_none());
        assert!(BrokerPosition::list_from_json(&json!({"success": true})).is_none());
    }
}
