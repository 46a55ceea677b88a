//! Settling `unknown` executions by asking the broker what became of them.
//!
//! An execution ends `unknown` when a request may have reached the broker and no answer said what it did.
//! Every attempt of one execution carries the same OCO id, so the broker's own order list answers it:
//! - orders with that OCO id (working, filled or cancelled) → the bracket was placed: `executed`, with those
//!   order ids;
//! - none, and the broker answered → it never landed: `failed`, "not found at the broker" — for calls of the
//!   last 6 hours only (`SettlePolicy::orders_kept_for`): a broker keeps finished orders for a while, so an
//!   older call missing from its list is left to a person;
//! - no answer (unreachable, timeout, the outbound budget exhausted) → still `unknown`, asked again with
//!   backoff for `execution.settle_for_secs` (default 600), then left to a person: `alert-relay alerts
//!   resolve` or `POST /api/alerts/{id}/resolve`.
//!
//! The broker is asked right after an execution ends `unknown` and, at start-up, for every `unknown` record,
//! never before the executor's in-flight bound has passed (a call still on its way would otherwise look like
//! one that never arrived). Each read costs one unit of the shared outbound budget. The record keeps how it
//! was settled (`settledBy`, `settledAtMs`, `settledSeen`, `settledNote`); an execution that is no longer
//! `unknown` (an operator was faster) is left as it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::now_ms;
use crate::command::Command;
use crate::domain::{OcoId, OrderId};
use crate::executor::{orders_outcome, BrokerOrder, Executor};
use crate::journal::Journal;
use crate::limits::OutboundLimit;
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::record::{AlertRecord, Execution, SettledBy, Status};

/// The reason recorded when the broker listed no order with the execution's OCO id.
pub const NOT_FOUND_AT_BROKER: &str = "not found at the broker";

/// An `unknown` execution not settled yet: what `/healthz` lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsettled {
    pub alert_id: String,
    /// The execution's index in its alert.
    pub execution: usize,
    pub account: String,
    pub instrument: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oco_id: Option<OcoId>,
    /// A PlaceOrder's own order id (the relay chose it): what the broker's list is searched for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// When the last attempt was made (unix ms): the call may have reached the broker then.
    pub last_attempt_at_ms: u64,
}

impl Unsettled {
    /// The record's execution `index`, if it is `unknown`.
    pub fn of(rec: &AlertRecord, index: usize) -> Option<Unsettled> {
        let e = rec.executions.get(index)?;
        Unsettled::from_execution(&rec.id, index, e, rec.received_at_ms)
    }

    /// Execution `index` of alert `alert_id`, if it is `unknown`; its last attempt's time, else
    /// `fallback_ms`, is when the call may have reached the broker.
    pub fn from_execution(
        alert_id: &str,
        index: usize,
        e: &Execution,
        fallback_ms: u64,
    ) -> Option<Unsettled> {
        (e.status == Status::Unknown).then(|| Unsettled {
            alert_id: alert_id.to_string(),
            execution: index,
            account: e.request.account().to_string(),
            instrument: e.request.instrument().to_string(),
            oco_id: e.request.bracket().and_then(|b| b.oco_id.clone()),
            order_id: match &e.request {
                Command::PlaceOrder(o) => o.order_id.clone(),
                _ => None,
            },
            last_attempt_at_ms: e.attempts.last().map_or(fallback_ms, |a| a.at_ms),
        })
    }

    /// What the broker's order list is searched for: the bracket's OCO id, or the placed order's id; none
    /// for a ClosePosition.
    pub fn trace(&self) -> Option<Trace> {
        match (&self.oco_id, &self.order_id) {
            (Some(oco), _) => Some(Trace::Oco(oco.clone())),
            (None, Some(id)) => Some(Trace::Order(id.clone())),
            (None, None) => None,
        }
    }
}

/// The unsettled `unknown` executions, oldest alert first.
#[derive(Default)]
pub struct UnsettledSet(Mutex<BTreeMap<(String, usize), Unsettled>>);

impl UnsettledSet {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, usize), Unsettled>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, u: Unsettled) {
        self.map().insert((u.alert_id.clone(), u.execution), u);
    }

    /// Forgets one; `true` if it was there.
    pub fn remove(&self, alert_id: &str, index: usize) -> bool {
        self.map().remove(&(alert_id.to_string(), index)).is_some()
    }

    pub fn list(&self) -> Vec<Unsettled> {
        self.map().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    pub fn clear(&self) {
        self.map().clear()
    }
}

/// What settling looks for in the broker's order list: a bracket's OCO id, or a placed order's own id.
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    Oco(OcoId),
    Order(OrderId),
}

impl Trace {
    fn matches(&self, o: &BrokerOrder) -> bool {
        match self {
            Trace::Oco(oco) => o.oco_id.as_ref() == Some(oco),
            Trace::Order(id) => &o.order_id == id,
        }
    }

    fn oco(&self) -> Option<OcoId> {
        match self {
            Trace::Oco(oco) => Some(oco.clone()),
            Trace::Order(_) => None,
        }
    }
}

impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trace::Oco(oco) => write!(f, "OCO id {}", oco.0),
            Trace::Order(id) => write!(f, "order id {}", id.0),
        }
    }
}

/// What the broker's order list says about one OCO id (or order id).
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Orders carry the OCO id: the bracket was placed.
    Placed(Vec<BrokerOrder>),
    /// The broker listed `listed` orders, none with the OCO id.
    NotFound { listed: usize },
}

impl Finding {
    pub fn from_orders(orders: Vec<BrokerOrder>, trace: &Trace) -> Finding {
        let listed = orders.len();
        let placed: Vec<BrokerOrder> = orders.into_iter().filter(|o| trace.matches(o)).collect();
        if placed.is_empty() {
            Finding::NotFound { listed }
        } else {
            Finding::Placed(placed)
        }
    }

    /// What was seen, in words, for the record.
    pub fn seen(&self, trace: &Trace) -> String {
        match self {
            Finding::Placed(orders) => format!(
                "{} order(s) with {trace}: {}",
                orders.len(),
                orders
                    .iter()
                    .map(|o| format!("{} {}", o.order_id.0, o.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Finding::NotFound { listed } => {
                format!("{listed} order(s) listed, none with {trace}")
            }
        }
    }

    /// Applies the finding to an `unknown` execution.
    pub fn apply(&self, e: &mut Execution, trace: &Trace, at_ms: u64) {
        match self {
            Finding::Placed(orders) => {
                let ids: Vec<OrderId> = orders.iter().map(|o| o.order_id.clone()).collect();
                e.status = Status::Executed;
                e.error = None;
                let quantity = match &e.request {
                    Command::CancelAndBracket(b) => b.quantity,
                    Command::PlaceOrder(o) => o.quantity,
                    Command::ClosePosition(_) => 0,
                };
                let mut outcome = orders_outcome(Vec::new(), ids, quantity);
                outcome.oco_id = trace.oco();
                outcome.reason = Some("settled by asking the broker".into());
                e.outcome = Some(outcome);
            }
            Finding::NotFound { .. } => {
                e.status = Status::Failed;
                e.error = Some(NOT_FOUND_AT_BROKER.into());
            }
        }
        e.settled_by = Some(SettledBy::Broker);
        e.settled_at_ms = Some(at_ms);
        e.settled_seen = Some(self.seen(trace));
    }
}

/// What an operator says became of an alert's `unknown` executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// The bracket was placed (checked at the broker).
    Executed,
    /// Nothing was placed.
    Failed,
}

/// Settles every `unknown` execution in `executions` as `how`, by an operator, with `note`; returns how
/// many it settled. The one rule for both the server (`POST /api/alerts/{id}/resolve`) and the command line
/// on a journal no server holds.
pub fn resolve_by_operator(
    executions: &mut [Execution],
    how: Resolution,
    note: &str,
    at_ms: u64,
) -> usize {
    let mut n = 0;
    for e in executions
        .iter_mut()
        .filter(|e| e.status == Status::Unknown)
    {
        match how {
            Resolution::Executed => {
                e.status = Status::Executed;
                e.error = None;
            }
            Resolution::Failed => {
                e.status = Status::Failed;
                e.error = Some("resolved as failed by an operator".into());
            }
        }
        e.settled_by = Some(SettledBy::Operator);
        e.settled_at_ms = Some(at_ms);
        e.settled_note = Some(note.to_string());
        n += 1;
    }
    n
}

/// How long and how often to ask the broker about one execution.
#[derive(Debug, Clone, Copy)]
pub struct SettlePolicy {
    /// Give up (leave it to a person) after this long without an answer.
    pub give_up_after: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How far back a broker's order list is trusted to be complete. Brokers keep finished orders for a
    /// while only (NinjaTrader: its session; the paper book: its most recent finished orders), so an order
    /// list without the OCO id proves nothing about an older call: that one is left to a person.
    pub orders_kept_for: Duration,
}

impl Default for SettlePolicy {
    fn default() -> SettlePolicy {
        SettlePolicy {
            give_up_after: Duration::from_secs(600),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            orders_kept_for: Duration::from_secs(6 * 3600),
        }
    }
}

impl SettlePolicy {
    /// Can `finding` settle a call whose last attempt was `age` ago? Orders found always can; "none found"
    /// only while the broker's list still holds orders that old.
    pub fn conclusive(&self, finding: &Finding, age: Duration) -> bool {
        match finding {
            Finding::Placed(_) => true,
            Finding::NotFound { .. } => age <= self.orders_kept_for,
        }
    }
}

/// Asks brokers about `unknown` executions. Shares the engine's journal, executors and outbound budget.
pub struct Settler {
    pub journal: Arc<Journal>,
    pub executors: HashMap<String, Arc<dyn Executor>>,
    pub outbound: Arc<OutboundLimit>,
    pub metrics: Arc<Metrics>,
    /// The unsettled `unknown` executions (what `/healthz` lists).
    pub unknown: Arc<UnsettledSet>,
    pub policy: SettlePolicy,
    /// Told about each settlement.
    pub notifier: Arc<Notifier>,
}

impl Settler {
    /// Records execution `index` of alert `alert_id` as unsettled and asks its broker in the background,
    /// after the executor's in-flight bound.
    ///
    /// A call older than the broker's order list reaches back (`policy.orders_kept_for`, e.g. one found
    /// at start-up days later) is listed but not asked about: its orders may have aged out of the list, so
    /// no answer could settle it, and the reads would only take the outbound budget from new alerts.
    pub fn track(self: &Arc<Self>, u: Unsettled) {
        let age = Duration::from_millis(now_ms().saturating_sub(u.last_attempt_at_ms));
        if age > self.policy.orders_kept_for {
            tracing::warn!(alert_id = %u.alert_id, account = %u.account, instrument = %u.instrument, "unknown outcome older than the broker's order list reaches back: check the account's history, then alert-relay alerts resolve ID --as executed|failed");
            self.unknown.insert(u);
            return;
        }
        let delay = self
            .executors
            .get(&u.account)
            .map(|e| e.in_flight_bound())
            .unwrap_or_default();
        let (alert_id, index) = (u.alert_id.clone(), u.execution);
        self.unknown.insert(u);
        let me = self.clone();
        tokio::spawn(async move {
            me.settle(&alert_id, index, delay).await;
        });
    }

    /// Asks the broker about execution `index` of alert `alert_id` until it answers or the policy's time
    /// runs out; starts no earlier than `delay` from now.
    pub async fn settle(&self, alert_id: &str, index: usize, delay: Duration) {
        tokio::time::sleep(delay).await;
        let policy = self.policy;
        let started = tokio::time::Instant::now();
        let mut wait = policy.first_retry;
        loop {
            let rec = match self.journal.get(alert_id) {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    self.unknown.remove(alert_id, index);
                    return;
                }
                Err(e) => return self.left(alert_id, format!("cannot read the record: {e}")),
            };
            let Some(pending) = Unsettled::of(&rec, index) else {
                self.unknown.remove(alert_id, index);
                return;
            };
            let Some(trace) = pending.trace() else {
                return self.left(
                    alert_id,
                    "a ClosePosition leaves no order id to look for: check the position, then resolve it"
                        .into(),
                );
            };
            let Some(executor) = self.executors.get(&pending.account).cloned() else {
                return self.left(
                    alert_id,
                    format!("no executor is configured for account {}", pending.account),
                );
            };
            let answer = match self.outbound.acquire_read().await {
                Ok(()) => executor.orders(&pending.account).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(orders) => {
                    let finding = Finding::from_orders(orders, &trace);
                    let age =
                        Duration::from_millis(now_ms().saturating_sub(pending.last_attempt_at_ms));
                    if !policy.conclusive(&finding, age) {
                        return self.left(
                            alert_id,
                            format!(
                                "{}, but the call is {} old, older than the broker's order list is trusted to reach back ({}): check the account's history",
                                finding.seen(&trace),
                                humantime::format_duration(Duration::from_secs(age.as_secs())),
                                humantime::format_duration(policy.orders_kept_for)
                            ),
                        );
                    }
                    return self.record_settlement(&rec, index, &trace, &finding).await;
                }
                Err(e) => {
                    if started.elapsed() + wait > policy.give_up_after {
                        return self.left(
                            alert_id,
                            format!(
                                "the broker did not answer within {}s (last: {e})",
                                policy.give_up_after.as_secs()
                            ),
                        );
                    }
                    tracing::info!(%alert_id, account = %pending.account, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot read the broker's orders yet to settle an unknown outcome; asking again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(policy.max_retry);
                }
            }
        }
    }

    fn left(&self, alert_id: &str, why: String) {
        tracing::warn!(%alert_id, reason = %why, "unknown outcome left to an operator: check the account, then alert-relay alerts resolve ID --as executed|failed");
    }

    async fn record_settlement(
        &self,
        rec: &AlertRecord,
        index: usize,
        trace: &Trace,
        finding: &Finding,
    ) {
        let at = now_ms();
        let written = self.journal.update(&rec.id, |st| {
            if let Some(e) = st.executions.get_mut(index) {
                if e.status == Status::Unknown {
                    finding.apply(e, trace, at);
                }
            }
        });
        let st = match written {
            Ok(Some(st)) => st,
            Ok(None) => return,
            Err(e) => return self.left(&rec.id, format!("cannot record the settlement: {e}")),
        };
        let Some(e) = st.executions.get(index) else {
            return;
        };
        if e.settled_at_ms != Some(at) {
            self.unknown.remove(&rec.id, index);
            return;
        }
        // Off the list as soon as the record says so, so /healthz and the record never disagree; a crash
        // before the sync loses the settlement, and start-up asks the broker again.
        self.unknown.remove(&rec.id, index);
        if let Err(err) = self.journal.sync().await {
            tracing::error!(alert_id = %rec.id, error = %err, "cannot make a settlement durable");
        }
        self.metrics.alert_status(&rec.source, st.status.as_str());
        tracing::info!(alert_id = %rec.id, account = %e.request.account(), instrument = %e.request.instrument(), status = e.status.as_str(), seen = %finding.seen(trace), "unknown outcome settled by the broker");
        self.notifier
            .notify(Event::settled(&rec.id, e, "broker", finding.seen(trace)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, oco: Option<&str>, state: &str) -> BrokerOrder {
        BrokerOrder::new(OrderId(id.into()), oco.map(|o| OcoId(o.into())), state)
    }

    #[test]
    fn orders_with_the_oco_id_mean_placed_whatever_their_state() {
        let oco = Trace::Oco(OcoId("oco-7".into()));
        let f = Finding::from_orders(
            vec![
                order("a", Some("oco-7"), "Cancelled"),
                order("b", Some("other"), "Working"),
                order("c", Some("oco-7"), "Filled"),
                order("d", None, "Working"),
            ],
            &oco,
        );
        let Finding::Placed(placed) = &f else {
            panic!("{f:?}")
        };
        let ids: Vec<&str> = placed.iter().map(|o| o.order_id.0.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(
            f.seen(&oco),
            "2 order(s) with OCO id oco-7: a Cancelled, c Filled"
        );
    }

    #[test]
    fn no_order_with_the_oco_id_means_not_found() {
        let oco = Trace::Oco(OcoId("oco-7".into()));
        let f = Finding::from_orders(vec![order("b", Some("other"), "Working")], &oco);
        assert_eq!(f, Finding::NotFound { listed: 1 });
        assert_eq!(
            Finding::from_orders(vec![], &oco),
            Finding::NotFound { listed: 0 }
        );
    }

    #[test]
    fn a_placed_order_is_found_by_its_own_id() {
        let id = Trace::Order(OrderId("mine".into()));
        let f = Finding::from_orders(
            vec![
                order("other", Some("oco-7"), "Working"),
                order("mine", None, "Filled"),
            ],
            &id,
        );
        assert_eq!(f.seen(&id), "1 order(s) with order id mine: mine Filled");
        let none = Finding::from_orders(vec![order("other", None, "Working")], &id);
        assert_eq!(none.seen(&id), "1 order(s) listed, none with order id mine");
    }

    #[test]
    fn none_found_settles_only_calls_recent_enough_for_the_order_list() {
        let p = SettlePolicy::default();
        let none = Finding::NotFound { listed: 3 };
        let found = Finding::Placed(vec![order("a", Some("o"), "Filled")]);
        assert!(p.conclusive(&none, Duration::from_secs(60)));
        assert!(p.conclusive(&none, p.orders_kept_for));
        assert!(!p.conclusive(&none, p.orders_kept_for + Duration::from_secs(1)));
        assert!(p.conclusive(&found, Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn the_set_lists_in_alert_order_and_forgets() {
        let s = UnsettledSet::default();
        for (id, i) in [("02", 0), ("01", 1), ("01", 0)] {
            s.insert(Unsettled {
                alert_id: id.into(),
                execution: i,
                account: "Sim101".into(),
                instrument: "ES 12-26".into(),
                oco_id: None,
                order_id: None,
                last_attempt_at_ms: 0,
            });
        }
        let order: Vec<(String, usize)> = s
            .list()
            .into_iter()
            .map(|u| (u.alert_id, u.execution))
            .collect();
        assert_eq!(
            order,
            [("01".into(), 0), ("01".into(), 1), ("02".into(), 0)]
        );
        assert!(s.remove("01", 1));
        assert!(!s.remove("01", 1));
        assert_eq!(s.len(), 2);
    }
}
