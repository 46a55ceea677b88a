//! Why the paper broker refused something. Every message names the field (or the thing) at fault and says
//! what to do about it, because these strings go back verbatim to whoever sent the request.

use crate::domain::{Action, OrderId, RequestError};

use super::order::OrderState;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaperError {
    #[error("account: unknown account '{account}'; configured paper accounts: {configured}")]
    UnknownAccount { account: String, configured: String },

    #[error("instrument: unknown instrument '{0}'; add it under [instruments] in the config")]
    UnknownInstrument(String),

    #[error("orderId: no order '{order_id}' in account '{account}'; list the account's orders to find its id")]
    UnknownOrder { account: String, order_id: OrderId },

    #[error("orderId: order '{order_id}' is already {state:?} and can no longer be cancelled")]
    NotCancellable {
        order_id: OrderId,
        state: OrderState,
    },

    #[error("orderId: an order with id '{0}' already exists; choose another orderId or omit it to get a generated one")]
    DuplicateOrderId(OrderId),

    #[error("instrument '{0}' has no quote yet; set one with POST /paper/quote")]
    NoQuote(String),

    #[error("action: {action} protects a {protects} position, but account '{account}' is {position} {instrument}; send action {wanted} to protect it, or flatten first")]
    DirectionMismatch {
        account: String,
        instrument: String,
        action: Action,
        protects: &'static str,
        /// e.g. `short 2`.
        position: String,
        wanted: Action,
    },

    #[error("{field}: a {side} stop at {stop} is {relation} the last price {last} of {instrument} and would fill at once; place the stop {fix} {last}")]
    StopThroughMarket {
        field: &'static str,
        side: Action,
        stop: f64,
        last: f64,
        instrument: String,
        relation: &'static str,
        fix: &'static str,
    },

    #[error("stopLoss: the {side} stop at {stop} is now {relation} the last price {last} of {instrument}, so nothing was placed and the position ({position}) is UNPROTECTED: its working orders were already cancelled; place a stop {fix} {last} or flatten")]
    Unprotected {
        side: Action,
        stop: f64,
        last: f64,
        instrument: String,
        relation: &'static str,
        fix: &'static str,
        position: String,
    },

    #[error("{0} is required; add it to the request")]
    MissingField(&'static str),

    #[error("{field} must be {expected}, got {got}")]
    InvalidField {
        field: &'static str,
        expected: &'static str,
        got: String,
    },

    /// The shared CancelAndBracket validation (tick grid, sides, at least one exit).
    #[error(transparent)]
    Request(#[from] RequestError),

    #[error("paper.{key}: {problem}")]
    InvalidConfig { key: String, problem: String },

    #[error("storage: paper record '{key}' is unreadable ({problem}); restore the data directory from a backup or delete that key")]
    CorruptRecord { key: String, problem: String },

    #[error("storage: {0}; check that the data directory is writable and not full")]
    Storage(String),
}

impl PaperError {
    /// True for "no such account/order": the HTTP layer answers 404 for these and 400 for the rest.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            PaperError::UnknownAccount { .. } | PaperError::UnknownOrder { .. }
        )
    }

    pub(crate) fn invalid(field: &'static str, expected: &'static str, got: impl ToString) -> Self {
        let mut got = got.to_string();
        if got.len() > 80 {
            let mut cut = 77;
            while !got.is_char_boundary(cut) {
                cut -= 1;
            }
            got.truncate(cut);
            got.push_str("...");
        }
        PaperError::InvalidField {
            field,
            expected,
            got,
        }
    }

    /// A stop that would trigger on arrival: NinjaTrader rejects these rather than filling them.
    pub(crate) fn stop_through(
        field: &'static str,
        side: Action,
        stop: f64,
        last: f64,
        instrument: &str,
    ) -> Self {
        let (relation, fix) = through_words(side);
        PaperError::StopThroughMarket {
            field,
            side,
            stop,
            last,
            instrument: instrument.to_string(),
            relation,
            fix,
        }
    }
}

impl From<sled::Error> for PaperError {
    fn from(e: sled::Error) -> Self {
        PaperError::Storage(e.to_string())
    }
}

/// How a stop on `side` is through the market, and which side of the market it must go instead.
pub(crate) fn through_words(side: Action) -> (&'static str, &'static str) {
    match side {
        Action::Sell => ("at or above", "below"),
        Action::Buy => ("at or below", "above"),
    }
}
