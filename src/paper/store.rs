//! Persistence of the paper venue in one sled tree: a JSON value per order (`o/{account}/{orderId}`),
//! position (`p/{account}/{instrument}`) and last price (`q/{instrument}`). Each operation writes what it
//! touched as one `sled::Batch`, so a crash never leaves half an operation on disk. There is no flush per
//! operation: sled flushes in the background, and losing the last moments of a simulated account is an
//! acceptable price for not paying an fsync per quote.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::book::Book;
use super::error::PaperError;
use super::order::Order;
use super::position::{MarketPosition, Position};

fn order_key(account: &str, id: &str) -> String {
    format!("o/{account}/{id}")
}

fn position_key(account: &str, instrument: &str) -> String {
    format!("p/{account}/{instrument}")
}

fn quote_key(instrument: &str) -> String {
    format!("q/{instrument}")
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, PaperError> {
    serde_json::to_vec(v).map_err(|e| PaperError::Storage(format!("cannot encode a record: {e}")))
}

/// Writes everything the last operation touched, in one batch, and clears the record of it.
pub(super) fn commit(tree: &sled::Tree, book: &mut Book) -> Result<(), PaperError> {
    let touched = std::mem::take(&mut book.touched);
    if touched.orders.is_empty() && touched.positions.is_empty() && touched.quotes.is_empty() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for (account, id) in &touched.orders {
        let key = order_key(account, &id.0);
        match book.accounts.get(account).and_then(|a| a.get(id)) {
            Some(order) => batch.insert(key.as_bytes(), encode(order)?),
            None => batch.remove(key.as_bytes()),
        }
    }
    for (account, instrument) in &touched.positions {
        if let Some(p) = book
            .accounts
            .get(account)
            .and_then(|a| a.positions.get(instrument))
        {
            batch.insert(position_key(account, instrument).as_bytes(), encode(p)?);
        }
    }
    for instrument in &touched.quotes {
        if let Some(price) = book.quotes.get(instrument) {
            batch.insert(quote_key(instrument).as_bytes(), encode(price)?);
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

fn scan<T: DeserializeOwned>(tree: &sled::Tree, prefix: &str) -> Result<Vec<T>, PaperError> {
    let mut out = Vec::new();
    for item in tree.scan_prefix(prefix.as_bytes()) {
        let (key, value) = item?;
        let record = serde_json::from_slice(&value).map_err(|e| PaperError::CorruptRecord {
            key: String::from_utf8_lossy(&key).into_owned(),
            problem: e.to_string(),
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Loads the persisted state into a fresh book. Records of accounts or instruments no longer in the
/// config are left on disk but not loaded: without a point value or an account they cannot be traded.
pub(super) fn load(tree: &sled::Tree, book: &mut Book) -> Result<(), PaperError> {
    for order in scan::<Order>(tree, "o/")? {
        if book.accounts.contains_key(&order.account)
            && book.instruments.get(&order.instrument).is_some()
        {
            book.insert(order);
        }
    }
    for mut p in scan::<Position>(tree, "p/")? {
        if book.instruments.get(&p.instrument).is_none() {
            continue;
        }
        if let Some(acct) = book.accounts.get_mut(&p.account) {
            p.market_position = MarketPosition::of(p.quantity);
            acct.positions.insert(p.instrument.clone(), p);
        }
    }
    for item in tree.scan_prefix(b"q/") {
        let (key, value) = item?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let price: f64 = serde_json::from_slice(&value).map_err(|e| PaperError::CorruptRecord {
            key: key.clone(),
            problem: e.to_string(),
        })?;
        let instrument = &key[2..];
        if book.instruments.get(instrument).is_some() {
            book.quotes.insert(instrument.to_string(), price);
        }
    }
    // Loading is not a change.
    book.touched = Default::default();
    Ok(())
}
