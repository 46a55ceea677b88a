//! What the relay tells a person about: one [`Event`] per thing worth a message, each with a short stable
//! name (what a channel's `events` filter lists) and its text.
//!
//! The names are an interface: config files and the receivers of the generic webhook match on them, so a
//! name never changes once released.

use serde::Serialize;

use crate::clock::Timestamp;
use crate::record::Status;

/// Every event name, in the order the README lists them. A channel's `events` lists some of these, or `*`.
pub const EVENT_NAMES: [&str; 9] = [
    "execution.failed",
    "execution.unknown",
    "execution.settled",
    "kill_switch",
    "broker.degraded",
    "broker.recovered",
    "refusals.burst",
    "contracts.roll",
    "contracts.old_month",
];

/// Something that happened. Serialized (camelCase fields, `event` = its name) as the `data` of the generic
/// webhook's body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all_fields = "camelCase")]
pub enum Event {
    /// An execution ended `failed`: nothing was placed (the broker refused it, or it was never sent).
    #[serde(rename = "execution.failed")]
    ExecutionFailed {
        alert_id: String,
        account: String,
        instrument: String,
        reason: String,
    },
    /// An execution ended `unknown`: the bracket may be live; the relay asks the broker.
    #[serde(rename = "execution.unknown")]
    ExecutionUnknown {
        alert_id: String,
        account: String,
        instrument: String,
        reason: String,
    },
    /// An `unknown` execution was settled, by the broker's order list or by an operator.
    #[serde(rename = "execution.settled")]
    ExecutionSettled {
        alert_id: String,
        account: String,
        instrument: String,
        /// `executed` or `failed`.
        status: String,
        /// `broker` or `operator`.
        by: String,
        /// What the broker listed, or the operator's note.
        reason: String,
    },
    /// The kill switch was turned on or off.
    #[serde(rename = "kill_switch")]
    KillSwitch { on: bool },
    /// The broker refused the token or its add-on is not connected: live executions fail until it recovers.
    #[serde(rename = "broker.degraded")]
    BrokerDegraded { executor: String, reason: String },
    /// The first successful execution after [`Event::BrokerDegraded`].
    #[serde(rename = "broker.recovered")]
    BrokerRecovered { executor: String },
    /// More than the burst threshold of webhooks from one source were refused within the burst window.
    #[serde(rename = "refusals.burst")]
    RefusalBurst {
        source: String,
        count: usize,
        window_secs: u64,
        /// The latest refusal's reason.
        reason: String,
    },
    /// A futures contract rolls soon: alerts for `root` trade `to` instead of `from` from `date` on.
    #[serde(rename = "contracts.roll")]
    ContractRoll {
        root: String,
        from: String,
        to: String,
        /// The roll date, `YYYY-MM-DD` (midnight in Chicago).
        date: String,
        /// Calendar days from today (the exchange's date) to the roll.
        days: i64,
        /// The last trading day of `from`, `YYYY-MM-DD`.
        expiry: String,
    },
    /// An account still holds a position or working orders in a contract month that is no longer the
    /// current one.
    #[serde(rename = "contracts.old_month")]
    OldMonthHoldings {
        account: String,
        /// The old contract held, e.g. `ES 12-26`.
        contract: String,
        /// Signed position: positive long, negative short, 0 when only orders are left.
        quantity: i64,
        /// The ids of the working orders left in `contract`.
        orders: Vec<String>,
        /// The current contract of the same root, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        current: Option<String>,
    },
}

impl Event {
    /// The event for execution `e` of alert `alert_id`, settled by `by` (`broker` or `operator`) for `reason`.
    pub fn settled(
        alert_id: &str,
        e: &crate::record::Execution,
        by: &str,
        reason: String,
    ) -> Event {
        Event::ExecutionSettled {
            alert_id: alert_id.to_string(),
            account: e.request.account().to_string(),
            instrument: e.request.instrument().to_string(),
            status: e.status.as_str().to_string(),
            by: by.to_string(),
            reason,
        }
    }

    /// The event for an execution that ended `status` with `reason`: `failed` and `unknown` are told,
    /// nothing else is (`rejected` never reached the broker, and says so in the record).
    pub fn execution_ended(
        status: Status,
        alert_id: &str,
        account: &str,
        instrument: &str,
        reason: &str,
    ) -> Option<Event> {
        let (alert_id, account, instrument, reason) = (
            alert_id.to_string(),
            account.to_string(),
            instrument.to_string(),
            reason.to_string(),
        );
        match status {
            Status::Failed => Some(Event::ExecutionFailed {
                alert_id,
                account,
                instrument,
                reason,
            }),
            Status::Unknown => Some(Event::ExecutionUnknown {
                alert_id,
                account,
                instrument,
                reason,
            }),
            _ => None,
        }
    }

    /// The stable name a channel's `events` filter matches (one of [`EVENT_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Event::ExecutionFailed { .. } => "execution.failed",
            Event::ExecutionUnknown { .. } => "execution.unknown",
            Event::ExecutionSettled { .. } => "execution.settled",
            Event::KillSwitch { .. } => "kill_switch",
            Event::BrokerDegraded { .. } => "broker.degraded",
            Event::BrokerRecovered { .. } => "broker.recovered",
            Event::RefusalBurst { .. } => "refusals.burst",
            Event::ContractRoll { .. } => "contracts.roll",
            Event::OldMonthHoldings { .. } => "contracts.old_month",
        }
    }

    /// Does this need a look soon (money may be at risk, or nothing trades)? Channels that rank messages
    /// (ntfy's priority) raise these.
    pub fn urgent(&self) -> bool {
        matches!(
            self,
            Event::ExecutionFailed { .. }
                | Event::ExecutionUnknown { .. }
                | Event::KillSwitch { on: true }
                | Event::BrokerDegraded { .. }
                | Event::OldMonthHoldings { .. }
        )
    }

    /// One line saying what happened.
    pub fn title(&self) -> String {
        match self {
            Event::ExecutionFailed {
                account,
                instrument,
                ..
            } => format!("Execution failed: {account} {instrument}"),
            Event::ExecutionUnknown {
                account,
                instrument,
                ..
            } => format!("Outcome unknown: {account} {instrument}"),
            Event::ExecutionSettled {
                account,
                instrument,
                status,
                ..
            } => format!("Settled as {status}: {account} {instrument}"),
            Event::KillSwitch { on: true } => "Kill switch ON".into(),
            Event::KillSwitch { on: false } => "Kill switch off".into(),
            Event::BrokerDegraded { executor, .. } => format!("Broker degraded: {executor}"),
            Event::BrokerRecovered { executor } => format!("Broker recovered: {executor}"),
            Event::RefusalBurst { source, count, .. } => {
                format!("{count} webhooks refused: source '{source}'")
            }
            Event::ContractRoll { root, from, to, .. } => {
                format!("Contract roll {root}: {from} → {to}")
            }
            Event::OldMonthHoldings {
                account,
                contract,
                quantity: 0,
                ..
            } => format!("Orders left in {contract} on {account}"),
            Event::OldMonthHoldings {
                account, contract, ..
            } => format!("Position left in {contract} on {account}"),
        }
    }

    /// What it means and what to do, in a sentence or two.
    pub fn message(&self) -> String {
        match self {
            Event::ExecutionFailed {
                alert_id, reason, ..
            } => format!("Alert {alert_id}: {reason}. Nothing was placed."),
            Event::ExecutionUnknown {
                alert_id, reason, ..
            } => format!(
                "Alert {alert_id}: {reason}. The bracket may be live; the relay asks the broker, else check the account and run alert-relay alerts resolve {alert_id} --as executed|failed."
            ),
            Event::ExecutionSettled {
                alert_id,
                status,
                by,
                reason,
                ..
            } => format!("Alert {alert_id} settled as {status} by the {by}: {reason}."),
            Event::KillSwitch { on: true } => {
                "Nothing executes: alerts are recorded as rejected until the switch is turned off (POST /api/kill-switch {\"enabled\": false}).".into()
            }
            Event::KillSwitch { on: false } => "Alerts execute again.".into(),
            Event::BrokerDegraded { reason, .. } => format!(
                "{reason}. Live executions fail until it recovers: check the CrossTrade token and that NinjaTrader with the add-on is running."
            ),
            Event::BrokerRecovered { .. } => "An execution succeeded again.".into(),
            Event::RefusalBurst {
                count,
                window_secs,
                reason,
                ..
            } => format!(
                "{count} webhooks refused in the last {} minutes (last: {reason}); see GET /api/refusals.",
                window_secs / 60
            ),
            Event::ContractRoll {
                root,
                from,
                to,
                date,
                days,
                expiry,
            } => format!(
                "From {date} (in {days} day(s)), alerts for {root} trade {to} instead of {from} (expiry {expiry}). Positions and orders in {from} stay there until you close them: roll them before if you mean to (README, The roll procedure)."
            ),
            Event::OldMonthHoldings {
                account,
                contract,
                quantity,
                orders,
                current,
            } => {
                let side = if *quantity < 0 { "short" } else { "long" };
                let held = match (*quantity, orders.len()) {
                    (0, n) => format!(
                        "{account} has {n} working order(s) ({}) in {contract}",
                        orders.join(", ")
                    ),
                    (q, 0) => format!("{account} is {side} {} {contract}", q.unsigned_abs()),
                    (q, n) => format!(
                        "{account} is {side} {} {contract} with {n} working order(s) ({})",
                        q.unsigned_abs(),
                        orders.join(", ")
                    ),
                };
                let now = current
                    .as_ref()
                    .map(|c| format!(" Alerts for the root trade {c} now."))
                    .unwrap_or_default();
                format!(
                    "{held}, a month alerts no longer trade.{now} The relay leaves them there: close {contract} (ClosePosition or Flatten) if you mean to."
                )
            }
        }
    }
}

/// An event with the time it happened: what a channel sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Unique per event (`msg_<ULID>`), the same on every attempt: receivers can drop a repeat.
    pub id: String,
    pub event: Event,
    pub at: Timestamp,
}

impl Notice {
    /// Title and message, for channels that take one text.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.event.title(), self.event.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Event> {
        let exec = || {
            (
                "01ALERT".to_string(),
                "Sim101".to_string(),
                "ES 12-26".to_string(),
            )
        };
        let (a, b, c) = exec();
        vec![
            Event::ExecutionFailed {
                alert_id: a.clone(),
                account: b.clone(),
                instrument: c.clone(),
                reason: "bad stop".into(),
            },
            Event::ExecutionUnknown {
                alert_id: a.clone(),
                account: b.clone(),
                instrument: c.clone(),
                reason: "timeout".into(),
            },
            Event::ExecutionSettled {
                alert_id: a,
                account: b,
                instrument: c,
                status: "executed".into(),
                by: "broker".into(),
                reason: "2 order(s)".into(),
            },
            Event::KillSwitch { on: true },
            Event::BrokerDegraded {
                executor: "crosstrade-http".into(),
                reason: "NinjaTrader add-on not connected".into(),
            },
            Event::BrokerRecovered {
                executor: "crosstrade-http".into(),
            },
            Event::RefusalBurst {
                source: "tradingview".into(),
                count: 11,
                window_secs: 300,
                reason: "bad secret".into(),
            },
            Event::ContractRoll {
                root: "ES".into(),
                from: "ES 12-26".into(),
                to: "ES 03-27".into(),
                date: "2026-12-10".into(),
                days: 4,
                expiry: "2026-12-18".into(),
            },
            Event::OldMonthHoldings {
                account: "Sim101".into(),
                contract: "ES 12-26".into(),
                quantity: -2,
                orders: vec!["o-1".into(), "o-2".into()],
                current: Some("ES 03-27".into()),
            },
        ]
    }

    /// Each variant has its own name, in [`EVENT_NAMES`] order, and serializes under that name.
    #[test]
    fn names_are_the_listed_ones_and_the_serialized_tag() {
        let events = all();
        let names: Vec<&str> = events.iter().map(Event::name).collect();
        assert_eq!(names, EVENT_NAMES);
        for e in &events {
            let v = serde_json::to_value(e).unwrap();
            assert_eq!(v["event"], e.name(), "{v}");
            assert!(!e.title().is_empty() && !e.message().is_empty());
        }
    }

    #[test]
    fn fields_are_camel_case() {
        let v = serde_json::to_value(&all()[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "execution.failed", "alertId": "01ALERT", "account": "Sim101",
                "instrument": "ES 12-26", "reason": "bad stop"})
        );
        let v = serde_json::to_value(&all()[6]).unwrap();
        assert_eq!(v["windowSecs"], 300);
    }

    #[test]
    fn texts_say_what_and_what_to_do() {
        let e = all();
        assert_eq!(e[0].title(), "Execution failed: Sim101 ES 12-26");
        assert_eq!(
            e[0].message(),
            "Alert 01ALERT: bad stop. Nothing was placed."
        );
        assert!(
            e[1].message().contains("alerts resolve 01ALERT"),
            "{}",
            e[1].message()
        );
        assert_eq!(e[3].title(), "Kill switch ON");
        assert_eq!(
            e[6].message(),
            "11 webhooks refused in the last 5 minutes (last: bad secret); see GET /api/refusals."
        );
        assert_eq!(
            e[7].message(),
            "From 2026-12-10 (in 4 day(s)), alerts for ES trade ES 03-27 instead of ES 12-26 (expiry 2026-12-18). Positions and orders in ES 12-26 stay there until you close them: roll them before if you mean to (README, The roll procedure)."
        );
        assert_eq!(e[8].title(), "Position left in ES 12-26 on Sim101");
        assert_eq!(
            e[8].message(),
            "Sim101 is short 2 ES 12-26 with 2 working order(s) (o-1, o-2), a month alerts no longer trade. Alerts for the root trade ES 03-27 now. The relay leaves them there: close ES 12-26 (ClosePosition or Flatten) if you mean to."
        );
        let orders_only = Event::OldMonthHoldings {
            account: "Sim101".into(),
            contract: "ES 12-26".into(),
            quantity: 0,
            orders: vec!["o-3".into()],
            current: None,
        };
        assert_eq!(orders_only.title(), "Orders left in ES 12-26 on Sim101");
        assert_eq!(
            orders_only.message(),
            "Sim101 has 1 working order(s) (o-3) in ES 12-26, a month alerts no longer trade. The relay leaves them there: close ES 12-26 (ClosePosition or Flatten) if you mean to."
        );
        assert!(e[0].urgent() && !e[2].urgent() && !Event::KillSwitch { on: false }.urgent());
    }

    #[test]
    fn only_failed_and_unknown_executions_are_told() {
        let ended = |s| Event::execution_ended(s, "01ALERT", "Sim101", "ES 12-26", "bad stop");
        assert_eq!(ended(Status::Failed), Some(all()[0].clone()));
        assert_eq!(
            ended(Status::Unknown).map(|e| e.name()),
            Some("execution.unknown")
        );
        for s in [
            Status::Executed,
            Status::Rejected,
            Status::Superseded,
            Status::Expired,
        ] {
            assert_eq!(ended(s), None, "{s:?}");
        }
    }
}
