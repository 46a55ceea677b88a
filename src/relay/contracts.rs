//! Contract months at run time: the start-up lines (front months, near rolls, deprecated per-month
//! entries), and positions and working orders left in a month that has rolled, reported (a WARN at start-up
//! and daily, a `/healthz` problem) and never moved or closed by the relay.
//!
//! Both are also notified (`contracts.roll`, `contracts.old_month`) at the same moments as the WARN lines,
//! never from `/healthz`: a roll once per root and roll date, an account's holdings in one old contract
//! once per exchange day. What was told is kept in the journal's meta tree, so a restart does not repeat it.
//!
//! Paper accounts are read on every `/healthz` (local, cheap) and reported at start-up. Live accounts are
//! asked for their positions a minute after start-up and then daily, and `/healthz` shows the last answer:
//! a health probe must not spend the broker's request budget, and the minute keeps the first request out of
//! the way of the start-up work (recovery, settling unknown outcomes) that the broker answers first.

use super::*;

use std::collections::BTreeMap;

use crate::contracts::holdings::{old_months, HoldingKind, OldMonthHolding};
use crate::contracts::report::{front_months, startup_lines, FrontMonth};
use crate::contracts::{calendar, ROLL_WARNING_DAYS};

/// How often live accounts are checked for old-month positions (and the WARN repeated).
const HOLDINGS_EVERY: Duration = Duration::from_secs(86_400);
/// When live accounts are first asked, after start-up.
const LIVE_FIRST_CHECK: Duration = Duration::from_secs(60);
/// Journal meta key prefix: `<prefix><root>` holds the roll date last notified for the root.
const ROLL_TOLD_PREFIX: &str = "notified.contracts.roll.";
/// Journal meta key: JSON `{"<account>|<contract>": "<exchange date>"}` of the old-month holdings notified,
/// rewritten with only the ones still held, so it never grows past what is held.
const OLD_MONTH_TOLD: &str = "notified.contracts.old_month";

/// Something an account holds in a contract: (account, contract, kind, detail), as [`old_months`] reads it.
type Held = (String, String, HoldingKind, String);

/// [`old_months`] of owned items.
fn old_months_of(instruments: &Instruments, at: Timestamp, items: &[Held]) -> Vec<OldMonthHolding> {
    old_months(
        instruments,
        at,
        items
            .iter()
            .map(|(a, i, k, d)| (a.as_str(), i.as_str(), *k, d.clone())),
    )
}

/// Positions and working orders of the paper `accounts` in a month that has rolled by `at`: what
/// `/healthz` and the start-up report show, and what `alert-relay check` lists from a stopped relay's book.
pub fn old_months_on_paper<'a>(
    paper: &PaperBroker,
    accounts: impl IntoIterator<Item = &'a String>,
    instruments: &Instruments,
    at: Timestamp,
) -> Vec<OldMonthHolding> {
    let mut items: Vec<Held> = Vec::new();
    for account in accounts {
        for p in paper.positions(account).unwrap_or_default() {
            if p.quantity != 0 {
                items.push((
                    account.clone(),
                    p.instrument,
                    HoldingKind::Position,
                    format!("{:+}", p.quantity),
                ));
            }
        }
        for o in paper.orders(account).unwrap_or_default() {
            if o.state.is_live() {
                items.push((
                    account.clone(),
                    o.instrument,
                    HoldingKind::WorkingOrder,
                    o.order_id.to_string(),
                ));
            }
        }
    }
    old_months_of(instruments, at, &items)
}

impl Relay {
    /// The start-up lines about contract months (see [`startup_lines`]).
    pub fn contract_lines(&self) -> Vec<String> {
        let lines = startup_lines(&self.instruments, self.contracts_now());
        for warning in lines.iter().filter_map(|l| l.strip_prefix("WARNING: ")) {
            tracing::warn!("{warning}");
        }
        lines
    }

    /// Positions and working orders of the paper accounts in a month that has rolled.
    pub fn paper_old_months(&self) -> Vec<OldMonthHolding> {
        let accounts = self.paper.accounts().iter();
        old_months_on_paper(
            &self.paper,
            accounts.filter(|a| self.paper_executes(a)),
            &self.instruments,
            self.contracts_now(),
        )
    }

    /// Positions and working orders of the live accounts in a month that has rolled, asked of the broker
    /// now (an order listed without its instrument cannot be placed in a month, and is not reported).
    pub async fn live_old_months(&self) -> Vec<OldMonthHolding> {
        let at = self.contracts_now();
        let mut accounts: Vec<(&String, &Arc<dyn Executor>)> = self
            .engine
            .executors
            .iter()
            .filter(|(a, _)| !self.paper_executes(a))
            .collect();
        accounts.sort_by(|a, b| a.0.cmp(b.0));
        let mut items: Vec<Held> = Vec::new();
        for (account, ex) in accounts {
            // Each read takes its request of the outbound budget, as every call to the broker does.
            let outbound = &self.engine.outbound;
            let positions = match outbound.acquire_read().await {
                Ok(()) => ex.positions(account).await,
                Err(e) => Err(e),
            };
            match positions {
                Ok(positions) => {
                    items.extend(positions.into_iter().filter(|p| p.quantity != 0).map(|p| {
                        (
                            account.clone(),
                            p.instrument,
                            HoldingKind::Position,
                            format!("{:+}", p.quantity),
                        )
                    }))
                }
                Err(e) => {
                    tracing::warn!(account = %account, error = %e, "cannot list positions to check for old contract months")
                }
            }
            let orders = match outbound.acquire_read().await {
                Ok(()) => ex.orders(account).await,
                Err(e) => Err(e),
            };
            match orders {
                Ok(orders) => items.extend(
                    orders
                        .into_iter()
                        .filter(|o| o.is_working() && !o.state.is_empty())
                        .filter_map(|o| {
                            Some((
                                account.clone(),
                                o.instrument?,
                                HoldingKind::WorkingOrder,
                                o.order_id.to_string(),
                            ))
                        }),
                ),
                Err(e) => {
                    tracing::warn!(account = %account, error = %e, "cannot list orders to check for old contract months")
                }
            }
        }
        old_months_of(&self.instruments, at, &items)
    }

    /// Each root's front month now, with its next roll and expiry (`GET /api/contracts`, the dashboard).
    pub fn contracts_view(&self) -> serde_json::Value {
        let at = self.contracts_now();
        let roots: Vec<Value> = front_months(&self.instruments, at)
            .into_iter()
            .map(|f| {
                json!({
                    "root": f.root,
                    "front": f.contract,
                    "roll": f.roll.to_string(),
                    "next": f.next,
                    "expiry": f.expiry.to_string(),
                    "daysToRoll": f.days_to_roll,
                    "rollSoon": f.roll_soon(),
                    "why": f.why,
                })
            })
            .collect();
        json!({
            "atMs": at.as_ms(),
            "exchangeDate": calendar::exchange_date(at).to_string(),
            "warningDays": ROLL_WARNING_DAYS,
            "roots": roots,
        })
    }

    /// The rolls less than [`ROLL_WARNING_DAYS`] away: each notified once per root and roll date, and with
    /// `log` a WARN line (start-up logs them with its lines already).
    pub fn report_rolls(&self, log: bool) {
        let near: Vec<FrontMonth> = front_months(&self.instruments, self.contracts_now())
            .into_iter()
            .filter(FrontMonth::roll_soon)
            .collect();
        for f in near {
            if log {
                tracing::warn!("{}", f.roll_warning());
            }
            let key = format!("{ROLL_TOLD_PREFIX}{}", f.root);
            let roll = f.roll.to_string();
            if self.journal.meta_get(&key).ok().flatten().as_deref() == Some(roll.as_str()) {
                continue;
            }
            if let Err(e) = self.journal.meta_set(&key, &roll) {
                tracing::warn!(error = %e, "cannot keep which roll was notified; it may be told again");
            }
            self.notifier.notify(Event::ContractRoll {
                root: f.root,
                from: f.contract,
                to: f.next,
                date: roll,
                days: f.days_to_roll,
                expiry: f.expiry.to_string(),
            });
        }
    }

    /// Notifies each account's holdings in each old contract, once per exchange day.
    fn notify_old_months(&self, holdings: &[&OldMonthHolding]) {
        let today = calendar::exchange_date(self.contracts_now()).to_string();
        let told: BTreeMap<String, String> = self
            .journal
            .meta_get(OLD_MONTH_TOLD)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let mut now_told = BTreeMap::new();
        for (key, event) in group_holdings(holdings) {
            if told.get(&key) != Some(&today) {
                self.notifier.notify(event);
            }
            now_told.insert(key, today.clone());
        }
        if now_told != told {
            let text = serde_json::to_string(&now_told).unwrap_or_default();
            if let Err(e) = self.journal.meta_set(OLD_MONTH_TOLD, &text) {
                tracing::warn!(error = %e, "cannot keep which old-month holdings were notified; they may be told again");
            }
        }
    }

    /// Logs every old-month holding as a WARN and notifies them (once a day); with `live`, asks the live
    /// accounts first and keeps their answer for `/healthz`.
    pub async fn report_old_months(&self, live: bool) {
        if live {
            let found = self.live_old_months().await;
            *self
                .live_old_months
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = found;
        }
        let live = self
            .live_old_months
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let paper = self.paper_old_months();
        let all: Vec<&OldMonthHolding> = paper.iter().chain(&live).collect();
        for h in &all {
            tracing::warn!(account = %h.account, contract = %h.contract, front = %h.front, "held in an old contract month: {h}");
        }
        self.notify_old_months(&all);
    }

    /// The `/healthz` problems: paper holdings now, live ones as last checked.
    pub(super) fn old_month_problems(&self) -> Vec<String> {
        let live = self
            .live_old_months
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.paper_old_months()
            .iter()
            .chain(&live)
            .map(|h| format!("old contract month: {h}"))
            .collect()
    }

    /// Reports near rolls and old-month holdings: rolls and paper at start-up, live a minute later, all
    /// daily from then on.
    pub fn spawn_contract_watch(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let has_live = self
            .engine
            .executors
            .keys()
            .any(|a| !self.paper_executes(a));
        tokio::spawn(async move {
            if let Some(relay) = me.upgrade() {
                relay.report_rolls(false);
                relay.report_old_months(false).await;
            }
            if has_live {
                tokio::time::sleep(LIVE_FIRST_CHECK).await;
            }
            let mut tick = tokio::time::interval(HOLDINGS_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            if !has_live {
                tick.tick().await;
            }
            loop {
                tick.tick().await;
                let Some(relay) = me.upgrade() else { break };
                relay.report_rolls(true);
                relay.report_old_months(has_live).await;
            }
        });
    }

    /// Is `account` executed by the paper broker (not live)?
    fn paper_executes(&self, account: &str) -> bool {
        self.engine
            .executors
            .get(account)
            .is_some_and(|ex| ex.name() == "paper")
    }
}

/// One event per account and old contract (its position, if any, and its working orders, in the order
/// found), keyed `<account>|<contract>`.
fn group_holdings(holdings: &[&OldMonthHolding]) -> Vec<(String, Event)> {
    let mut groups: Vec<(String, Event)> = Vec::new();
    for h in holdings {
        let key = format!("{}|{}", h.account, h.contract);
        let i = match groups.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                groups.push((
                    key,
                    Event::OldMonthHoldings {
                        account: h.account.clone(),
                        contract: h.contract.clone(),
                        quantity: 0,
                        orders: Vec::new(),
                        current: Some(h.front.clone()),
                    },
                ));
                groups.len() - 1
            }
        };
        if let (
            _,
            Event::OldMonthHoldings {
                quantity, orders, ..
            },
        ) = &mut groups[i]
        {
            match h.kind {
                HoldingKind::Position => *quantity += h.detail.parse::<i64>().unwrap_or(0),
                HoldingKind::WorkingOrder => orders.push(h.detail.clone()),
            }
        }
    }
    groups
}
