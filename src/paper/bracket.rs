//! CancelAndBracket on the paper venue, in the two synchronous phases the async call is made of:
//! [`Book::bracket_begin`] validates and requests the cancels, [`Book::bracket_finish`] re-reads the
//! position after the cancel window and places the OCO pair. Tests call the phases directly so they can
//! move prices inside the window, which is where the dangerous races live.

use crate::domain::{Action, BracketOutcome, BracketRequest, OcoId, OrderId};

use super::book::Book;
use super::error::{through_words, PaperError};
use super::order::{OrderState, OrderType, PlaceOrder};
use super::position::describe_quantity;

/// What phase 1 did, handed to phase 3.
#[derive(Debug, Clone, PartialEq)]
pub struct BracketTicket {
    request: BracketRequest,
    cancelled: Vec<OrderId>,
    position_before: i64,
}

impl BracketTicket {
    pub fn request(&self) -> &BracketRequest {
        &self.request
    }

    /// Orders phase 1 moved from Working to CancelPending.
    pub fn cancelled_order_ids(&self) -> &[OrderId] {
        &self.cancelled
    }

    /// Signed position when the cancels were sent.
    pub fn position_before(&self) -> i64 {
        self.position_before
    }
}

/// True when a stop for `exit` at `stop` would trigger at once with the market at `last`.
fn stop_through(exit: Action, stop: f64, last: f64) -> bool {
    match exit {
        Action::Sell => stop >= last,
        Action::Buy => stop <= last,
    }
}

fn side_name(action: Action) -> &'static str {
    match action {
        Action::Buy => "long",
        Action::Sell => "short",
    }
}

impl Book {
    /// Phase 1. Every refusal happens before anything is cancelled, so a bad request never strips a
    /// position of its protection.
    pub(super) fn bracket_begin(
        &mut self,
        req: &BracketRequest,
        now: u64,
    ) -> Result<BracketTicket, PaperError> {
        self.account(&req.account)?;
        let instrument = self.instrument(&req.instrument)?;
        if req.quantity == 0 {
            return Err(PaperError::invalid("quantity", "a positive integer", 0));
        }
        let req = BracketRequest {
            instrument,
            ..req.clone()
        };
        req.validate(&self.instruments)?;

        let position = self.position_quantity(&req.account, &req.instrument);
        if position != 0 && position.signum() != req.action.sign() {
            return Err(PaperError::DirectionMismatch {
                account: req.account.clone(),
                instrument: req.instrument.clone(),
                action: req.action,
                protects: side_name(req.action),
                position: describe_quantity(position),
                wanted: req.action.opposite(),
            });
        }
        let exit = req.action.opposite();
        if let (Some(stop), Some(last)) = (req.stop_loss, self.last(&req.instrument)) {
            if stop_through(exit, stop, last) {
                return Err(PaperError::stop_through(
                    "stopLoss",
                    exit,
                    stop,
                    last,
                    &req.instrument,
                ));
            }
        }
        // On a flat account the bracket is an entry: a take-profit limit already through the market would
        // fill at once and open a position with no stop. Refuse it before anything is cancelled.
        if let (0, Some(tp), Some(last)) = (position, req.take_profit, self.last(&req.instrument)) {
            let marketable = match exit {
                Action::Sell => tp <= last,
                Action::Buy => tp >= last,
            };
            if marketable {
                let expected = match exit {
                    Action::Sell => "above the last price for an entry bracket on a flat account (a Sell limit at or below the market fills at once, opening a short with no stop)",
                    Action::Buy => "below the last price for an entry bracket on a flat account (a Buy limit at or above the market fills at once, opening a long with no stop)",
                };
                return Err(PaperError::invalid(
                    "takeProfit",
                    expected,
                    format!("{tp} with the last price at {last}"),
                ));
            }
        }
        let cancelled = self.cancel_working(&req.account, &req.instrument, now);
        Ok(BracketTicket {
            request: req,
            cancelled,
            position_before: position,
        })
    }

    /// Phase 3: decide from the position as it is now, after the cancel window, and place the bracket.
    pub(super) fn bracket_finish(
        &mut self,
        ticket: BracketTicket,
        now: u64,
    ) -> Result<BracketOutcome, PaperError> {
        let BracketTicket {
            request: req,
            cancelled,
            position_before: before,
        } = ticket;
        let now_pos = self.position_quantity(&req.account, &req.instrument);
        let side = req.action.sign();
        let oco = req.oco_id.clone().unwrap_or_else(OcoId::generate);
        let aborted = |reason: String| BracketOutcome {
            order_ids: cancelled.clone(),
            cancelled_order_ids: cancelled.clone(),
            placed_order_ids: Vec::new(),
            oco_id: Some(oco.clone()),
            quantity: 0,
            aborted: true,
            reason: Some(reason),
            success: true,
        };
        if before != 0 && now_pos == 0 {
            return Ok(aborted(
                "position went flat during the cancel window".to_string(),
            ));
        }
        if before != 0 && now_pos.signum() != before.signum() {
            return Ok(aborted(format!(
                "position reversed from {} to {} during the cancel window",
                describe_quantity(before),
                describe_quantity(now_pos)
            )));
        }
        if before == 0 && now_pos != 0 && now_pos.signum() != side {
            return Ok(aborted(format!(
                "a {} position opened during the cancel window, but the bracket protects a {} (action {})",
                describe_quantity(now_pos),
                side_name(req.action),
                req.action
            )));
        }
        // From here the position is flat (entry bracket) or on the protected side (clamp to it).
        let quantity = if now_pos == 0 {
            req.quantity
        } else {
            let held = u32::try_from(now_pos.unsigned_abs()).unwrap_or(u32::MAX);
            req.quantity.min(held)
        };
        let exit = req.action.opposite();
        let last = self.last(&req.instrument);
        if let (Some(stop), Some(last)) = (req.stop_loss, last) {
            if stop_through(exit, stop, last) {
                let (relation, fix) = through_words(exit);
                return Err(PaperError::Unprotected {
                    side: exit,
                    stop,
                    last,
                    instrument: req.instrument.clone(),
                    relation,
                    fix,
                    position: describe_quantity(now_pos),
                });
            }
        }

        // Still flat: the market may have moved through the entry take-profit during the window.
        if let (0, Some(tp), Some(last)) = (now_pos, req.take_profit, last) {
            let marketable = match exit {
                Action::Sell => tp <= last,
                Action::Buy => tp >= last,
            };
            if marketable {
                return Err(PaperError::invalid(
                    "takeProfit",
                    "not yet reached by the market for an entry bracket (the market moved through it during the cancel window; nothing was placed)",
                    format!("{tp} with the last price at {last}"),
                ));
            }
        }
        let leg = |order_type, limit_price, stop_price| PlaceOrder {
            instrument: req.instrument.clone(),
            action: exit,
            quantity,
            order_type,
            limit_price,
            stop_price,
            oco_id: Some(oco.clone()),
            order_id: None,
        };
        let mut placed = Vec::new();
        let mut reason = None;
        if let Some(tp) = req.take_profit {
            let order = self.place(&req.account, &leg(OrderType::Limit, Some(tp), None), now)?;
            if order.state == OrderState::Filled {
                // The target was already reached: the position is (partly) closed and the OCO group is
                // done, so a stop placed now would be a naked order, not protection.
                reason = Some(format!(
                    "takeProfit {tp} was already reached and filled at once at {}; stopLoss not placed",
                    order.fill_price.unwrap_or(tp)
                ));
            }
            placed.push(order.order_id);
        }
        if let (Some(sl), None) = (req.stop_loss, &reason) {
            let order = self.place(
                &req.account,
                &leg(OrderType::StopMarket, None, Some(sl)),
                now,
            )?;
            placed.push(order.order_id);
        }
        Ok(BracketOutcome {
            order_ids: cancelled.iter().chain(&placed).cloned().collect(),
            cancelled_order_ids: cancelled,
            placed_order_ids: placed,
            oco_id: Some(oco),
            quantity,
            aborted: false,
            reason,
            success: true,
        })
    }
}
