//! Every configured account as the dashboard shows it (`GET /api/accounts`): its executor, open positions,
//! working orders, and the brackets among them (the orders sharing an OCO id, shown as one pair).
//!
//! Paper accounts are read from the embedded book, for free. A live account is read from the broker, one
//! request of the shared outbound budget per listing (positions, then orders), so a refresh of a live
//! account costs two and the page polls this at most every 10 s. A broker that cannot be read is reported
//! on its account (`error`), never as a failed answer: the other accounts still show.

use serde::Serialize;

use super::*;
use crate::executor::{BrokerOrder, BrokerPosition, ExecError};

/// One account's view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account: String,
    /// The executor's name (`paper`, `crosstrade-http`, `crosstrade-websocket`).
    pub executor: String,
    /// Traded through a live broker (not the embedded paper account).
    pub live: bool,
    /// Open positions (flat ones left out).
    pub positions: Vec<BrokerPosition>,
    /// Working orders, in the broker's order.
    pub orders: Vec<BrokerOrder>,
    /// Working orders grouped by OCO id: a bracket's take-profit and stop-loss, one entry per OCO id.
    pub oco_pairs: Vec<OcoPair>,
    /// Why the broker could not be read (positions and orders are then empty, not flat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The working orders sharing one OCO id: a fill of one cancels the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OcoPair {
    pub oco_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// The orders' ids, in the broker's order.
    pub order_ids: Vec<String>,
}

impl Relay {
    /// Every configured account, by name, each read from its executor.
    pub async fn accounts(&self) -> Vec<AccountView> {
        let mut out = Vec::new();
        for account in self.account_names() {
            let Some(executor) = self.engine.executors.get(&account).cloned() else {
                continue;
            };
            let live = !self.paper.has_account(&account);
            let read = async {
                let positions = self.read_one(live, executor.positions(&account)).await?;
                let orders = self.read_one(live, executor.orders(&account)).await?;
                Ok::<_, ExecError>((positions, orders))
            };
            out.push(match read.await {
                Ok((positions, orders)) => {
                    view(&account, executor.name(), live, &positions, &orders)
                }
                Err(e) => AccountView {
                    account: account.clone(),
                    executor: executor.name().to_string(),
                    live,
                    positions: Vec::new(),
                    orders: Vec::new(),
                    oco_pairs: Vec::new(),
                    error: Some(e.to_string()),
                },
            });
        }
        out
    }

    /// One listing: a live one first takes a request of the outbound budget, as every call to the broker.
    async fn read_one<T>(
        &self,
        live: bool,
        read: impl std::future::Future<Output = Result<T, ExecError>>,
    ) -> Result<T, ExecError> {
        if live {
            self.engine.outbound.acquire_read().await?;
        }
        read.await
    }
}

/// The view of one account read without error: open positions, working orders and their OCO pairs.
fn view(
    account: &str,
    executor: &str,
    live: bool,
    positions: &[BrokerPosition],
    orders: &[BrokerOrder],
) -> AccountView {
    let working: Vec<&BrokerOrder> = orders.iter().filter(|o| o.is_working()).collect();
    AccountView {
        account: account.to_string(),
        executor: executor.to_string(),
        live,
        positions: positions
            .iter()
            .filter(|p| p.quantity != 0)
            .cloned()
            .collect(),
        orders: working.iter().map(|&o| o.clone()).collect(),
        oco_pairs: oco_pairs(&working),
        error: None,
    }
}

/// Working orders grouped by OCO id, in the order each id first appears; orders without one are left out.
fn oco_pairs(working: &[&BrokerOrder]) -> Vec<OcoPair> {
    let mut pairs: Vec<OcoPair> = Vec::new();
    for o in working {
        let Some(oco) = &o.oco_id else { continue };
        match pairs.iter_mut().find(|p| p.oco_id == oco.0) {
            Some(p) => p.order_ids.push(o.order_id.0.clone()),
            None => pairs.push(OcoPair {
                oco_id: oco.0.clone(),
                instrument: o.instrument.clone(),
                order_ids: vec![o.order_id.0.clone()],
            }),
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OcoId, OrderId};

    fn order(id: &str, oco: Option<&str>, state: &str) -> BrokerOrder {
        BrokerOrder {
            instrument: Some("ES 03-27".into()),
            ..BrokerOrder::new(OrderId(id.into()), oco.map(|o| OcoId(o.into())), state)
        }
    }

    #[test]
    fn working_orders_grouped_by_oco_id_finished_ones_left_out() {
        let orders = [
            order("tp1", Some("oco-1"), "Working"),
            order("lone", None, "Working"),
            order("tp0", Some("oco-0"), "Filled"),
            order("sl1", Some("oco-1"), "Accepted"),
            order("sl0", Some("oco-0"), "Cancelled"),
            order("x2", Some("oco-2"), "Working"),
        ];
        let positions = [
            BrokerPosition {
                instrument: "ES 03-27".into(),
                quantity: 2,
                average_price: 6000.0,
            },
            BrokerPosition {
                instrument: "NQ 03-27".into(),
                quantity: 0,
                average_price: 0.0,
            },
        ];
        let v = view("Sim101", "paper", false, &positions, &orders);
        let ids: Vec<&str> = v.orders.iter().map(|o| o.order_id.0.as_str()).collect();
        assert_eq!(ids, ["tp1", "lone", "sl1", "x2"]);
        assert_eq!(
            v.oco_pairs,
            [
                OcoPair {
                    oco_id: "oco-1".into(),
                    instrument: Some("ES 03-27".into()),
                    order_ids: vec!["tp1".into(), "sl1".into()],
                },
                OcoPair {
                    oco_id: "oco-2".into(),
                    instrument: Some("ES 03-27".into()),
                    order_ids: vec!["x2".into()],
                },
            ]
        );
        assert_eq!(v.positions.len(), 1, "flat positions are left out");
        assert_eq!(v.positions[0].quantity, 2);
        assert!(v.error.is_none());
    }
}
