//! A position per (account, instrument) and the arithmetic of applying a fill to it.

use serde::{Deserialize, Serialize};

use crate::domain::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketPosition {
    Long,
    Short,
    Flat,
}

impl MarketPosition {
    pub fn of(quantity: i64) -> MarketPosition {
        match quantity {
            q if q > 0 => MarketPosition::Long,
            q if q < 0 => MarketPosition::Short,
            _ => MarketPosition::Flat,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub account: String,
    pub instrument: String,
    /// Long > 0, short < 0.
    pub quantity: i64,
    /// Average entry price of the open contracts; 0 when flat.
    pub average_price: f64,
    /// Closed profit and loss in currency: points × point value × contracts.
    pub realized_pnl: f64,
    /// Derived from `quantity`; stored for API clients, recomputed on load.
    #[serde(default = "flat")]
    pub market_position: MarketPosition,
}

fn flat() -> MarketPosition {
    MarketPosition::Flat
}

impl Position {
    pub fn flat(account: &str, instrument: &str) -> Position {
        Position {
            account: account.to_string(),
            instrument: instrument.to_string(),
            quantity: 0,
            average_price: 0.0,
            realized_pnl: 0.0,
            market_position: MarketPosition::Flat,
        }
    }

    /// Applies a fill of `quantity` contracts on `action` at `price`: adding averages the entry price,
    /// reducing realizes P&L against it, and crossing zero re-opens the remainder at the fill price.
    pub fn apply_fill(&mut self, action: Action, quantity: u32, price: f64, point_value: f64) {
        let delta = action.sign() * i64::from(quantity);
        let old = self.quantity;
        let new = old + delta;
        if old == 0 || old.signum() == delta.signum() {
            let (a, d) = (old.abs() as f64, delta.abs() as f64);
            self.average_price = (self.average_price * a + price * d) / (a + d);
        } else {
            let closed = old.abs().min(delta.abs()) as f64;
            self.realized_pnl +=
                (price - self.average_price) * closed * old.signum() as f64 * point_value;
            if new == 0 {
                self.average_price = 0.0;
            } else if new.signum() != old.signum() {
                self.average_price = price;
            }
        }
        self.quantity = new;
        self.market_position = MarketPosition::of(new);
    }

    /// `long 2`, `short 1`, `flat`: for messages.
    pub fn describe(&self) -> String {
        describe_quantity(self.quantity)
    }
}

pub(crate) fn describe_quantity(q: i64) -> String {
    match MarketPosition::of(q) {
        MarketPosition::Long => format!("long {q}"),
        MarketPosition::Short => format!("short {}", -q),
        MarketPosition::Flat => "flat".to_string(),
    }
}
