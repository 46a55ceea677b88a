//! Contract months at run time: the start-up lines (front months, near rolls, deprecated per-month
//! entries), and positions and working orders left in a month that has rolled, reported (a WARN at start-up
//! and daily, a `/healthz` problem) and never moved or closed by the relay.
//!
//! Paper accounts are read on every `/healthz` (local, cheap) and reported at start-up. Live accounts are
//! asked for their positions a minute after start-up and then daily, and `/healthz` shows the last answer:
//! a health probe must not spend the broker's request budget, and the minute keeps the first request out of
//! the way of the start-up work (recovery, settling unknown outcomes) that the broker answers first.

use super::*;

use crate::contracts::holdings::{old_months, HoldingKind, OldMonthHolding};
use crate::contracts::report::startup_lines;

/// How often live accounts are checked for old-month positions (and the WARN repeated).
const HOLDINGS_EVERY: Duration = Duration::from_secs(86_400);
/// When live accounts are first asked, after start-up.
const LIVE_FIRST_CHECK: Duration = Duration::from_secs(60);

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
        let at = self.contracts_now();
        let mut items: Vec<(String, String, HoldingKind, String)> = Vec::new();
        for account in self.paper.accounts() {
            if !self.paper_executes(account) {
                continue;
            }
            for p in self.paper.positions(account).unwrap_or_default() {
                if p.quantity != 0 {
                    items.push((
                        account.clone(),
                        p.instrument,
                        HoldingKind::Position,
                        format!("{:+}", p.quantity),
                    ));
                }
            }
            for o in self.paper.orders(account).unwrap_or_default() {
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
        old_months(
            &self.instruments,
            at,
            items
                .iter()
                .map(|(a, i, k, d)| (a.as_str(), i.as_str(), *k, d.clone())),
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
        let mut items: Vec<(String, String, HoldingKind, String)> = Vec::new();
        for (account, ex) in accounts {
            match ex.positions(account).await {
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
            match ex.orders(account).await {
                Ok(orders) => items.extend(
                    orders
                        .into_iter()
                        .filter(|o| is_working(&o.state))
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
        old_months(
            &self.instruments,
            at,
            items
                .iter()
                .map(|(a, i, k, d)| (a.as_str(), i.as_str(), *k, d.clone())),
        )
    }

    /// Logs every old-month holding as a WARN; with `live`, asks the live accounts first and keeps their
    /// answer for `/healthz`.
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
        for h in self.paper_old_months().iter().chain(&live) {
            tracing::warn!(account = %h.account, contract = %h.contract, front = %h.front, "held in an old contract month: {h}");
        }
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

    /// Reports old-month holdings: paper at start-up, live a minute later, both daily from then on.
    pub fn spawn_contract_watch(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let has_live = self
            .engine
            .executors
            .keys()
            .any(|a| !self.paper_executes(a));
        tokio::spawn(async move {
            if let Some(relay) = me.upgrade() {
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

/// A broker's state word for an order that can still fill (NinjaTrader's `Working`, `Accepted`, `Submitted`,
/// `CancelPending`...): anything not finished.
fn is_working(state: &str) -> bool {
    !matches!(
        state.to_ascii_lowercase().as_str(),
        "filled" | "cancelled" | "canceled" | "rejected" | "expired" | ""
    )
}
