//! Persistence of the paper venue in one sled tree: a log of operations over a snapshot.
//!
//! - `l` + entry number (8 bytes, big-endian): one [`Entry`] per operation that changed anything: the
//!   orders it created or changed (whole), the orders it pruned, the positions and last prices it moved.
//!   One insert per operation, so a crash never leaves half an operation on disk, and every insert lands
//!   at the end of the tree (no batch, so no global write lock in sled either).
//! - `S`: the snapshot [`Header`]: its generation, the last entry it includes, its chunk count, the
//!   positions and last prices.
//! - `c` + generation (8 bytes) + chunk index (4 bytes): the snapshot's orders, [`CHUNK_ORDERS`] per value,
//!   so no value comes near sled's blob threshold.
//!
//! Every `snapshot_every` entries the venue is written out as a new generation (outside the venue's lock,
//! chunks first, then the header that points at them), and the entries and chunks it replaces are removed.
//! A crash at any point leaves either the old header with all its entries, or the new one; leftovers
//! (entries the snapshot covers, chunks of another generation) are skipped on load and removed by the next
//! snapshot. Opening replays the entries after the snapshot.
//!
//! There is no flush per operation: the tree shares the journal's log (see
//! [`super::PaperBroker::open_beside_journal`]), whose flushes carry it.
//!
//! Trees written before this layout held one key per order (`o/{account}/{id}`), position
//! (`p/{account}/{instrument}`) and last price (`q/{instrument}`). Opening such a tree loads them, writes a
//! snapshot and removes the old keys.
//!
//! Orders, positions and prices of accounts or instruments no longer in the config are kept on disk, not
//! loaded into the book (without an account or a point value they cannot be traded): they are carried
//! from snapshot to snapshot unchanged, and come back when the config names them again.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::OrderId;

use super::book::Book;
use super::error::PaperError;
use super::order::Order;
use super::position::{MarketPosition, Position};

/// Entries between snapshots. Replaying this many on open takes milliseconds; the snapshot itself
/// (every order the venue keeps) costs about as much disk as a hundred entries.
pub(super) const SNAPSHOT_EVERY: u64 = 4096;

/// Orders per snapshot chunk (about 350 bytes each as JSON).
const CHUNK_ORDERS: usize = 128;

const HEADER_KEY: &[u8] = b"S";
const ENTRY_PREFIX: u8 = b'l';
const CHUNK_PREFIX: u8 = b'c';
const LEGACY_PREFIXES: [&str; 3] = ["o/", "p/", "q/"];

fn entry_key(n: u64) -> [u8; 9] {
    let mut k = [ENTRY_PREFIX; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn entry_number(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

fn chunk_key(generation: u64, index: u32) -> [u8; 13] {
    let mut k = [CHUNK_PREFIX; 13];
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

/// What one operation changed.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry<'a> {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    orders: Vec<Cow<'a, Order>>,
    /// Orders pruned from the book: (account, order id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    removed: Vec<(Cow<'a, str>, Cow<'a, OrderId>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    positions: Vec<Cow<'a, Position>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quotes: Vec<(Cow<'a, str>, f64)>,
}

/// The snapshot's small part; its orders are in `chunks` values of generation `generation`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    generation: u64,
    /// The last entry the snapshot includes.
    upto: u64,
    chunks: u32,
    next_sequence: u64,
    positions: Vec<Position>,
    quotes: BTreeMap<String, f64>,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, PaperError> {
    serde_json::to_vec(v).map_err(|e| PaperError::Storage(format!("cannot encode a record: {e}")))
}

fn decode<T: DeserializeOwned>(key: &[u8], raw: &[u8]) -> Result<T, PaperError> {
    serde_json::from_slice(raw).map_err(|e| PaperError::CorruptRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        problem: e.to_string(),
    })
}

/// Everything stored, as plain maps: what loading builds before the book takes its part.
#[derive(Debug, Default)]
struct Stored {
    orders: BTreeMap<(String, OrderId), Order>,
    positions: BTreeMap<(String, String), Position>,
    quotes: BTreeMap<String, f64>,
    next_sequence: u64,
}

impl Stored {
    fn apply(&mut self, entry: Entry<'_>) {
        for order in entry.orders {
            let order = order.into_owned();
            self.orders
                .insert((order.account.clone(), order.order_id.clone()), order);
        }
        for (account, id) in entry.removed {
            self.orders.remove(&(account.into_owned(), id.into_owned()));
        }
        for p in entry.positions {
            let p = p.into_owned();
            self.positions
                .insert((p.account.clone(), p.instrument.clone()), p);
        }
        for (instrument, price) in entry.quotes {
            self.quotes.insert(instrument.into_owned(), price);
        }
    }

    /// The layout before the log: one key per order, position and last price.
    fn load_legacy(&mut self, tree: &sled::Tree) -> Result<(), PaperError> {
        for item in tree.scan_prefix("o/") {
            let (key, value) = item?;
            let order: Order = decode(&key, &value)?;
            self.orders
                .insert((order.account.clone(), order.order_id.clone()), order);
        }
        for item in tree.scan_prefix("p/") {
            let (key, value) = item?;
            let p: Position = decode(&key, &value)?;
            self.positions
                .insert((p.account.clone(), p.instrument.clone()), p);
        }
        for item in tree.scan_prefix("q/") {
            let (key, value) = item?;
            let price: f64 = decode(&key, &value)?;
            let instrument = String::from_utf8_lossy(&key[2..]).into_owned();
            self.quotes.insert(instrument, price);
        }
        Ok(())
    }

    fn load_snapshot(&mut self, tree: &sled::Tree, header: &Header) -> Result<(), PaperError> {
        for index in 0..header.chunks {
            let key = chunk_key(header.generation, index);
            let raw = tree.get(key)?.ok_or_else(|| PaperError::CorruptRecord {
                key: format!("snapshot {} chunk {index}", header.generation),
                problem: "missing: the snapshot header names it but it is not stored".to_string(),
            })?;
            let orders: Vec<Order> = decode(&key, &raw)?;
            self.apply(Entry {
                orders: orders.into_iter().map(Cow::Owned).collect(),
                ..Entry::default()
            });
        }
        for p in &header.positions {
            self.positions
                .insert((p.account.clone(), p.instrument.clone()), p.clone());
        }
        self.quotes.extend(header.quotes.clone());
        self.next_sequence = header.next_sequence;
        Ok(())
    }
}

/// What the book cannot hold: state of accounts or instruments the config no longer names.
#[derive(Debug, Default)]
struct Dormant {
    orders: Vec<Order>,
    positions: Vec<Position>,
    quotes: BTreeMap<String, f64>,
}

/// The log's position and the snapshot in progress, kept under the venue's lock with the book.
pub(super) struct Store {
    tree: sled::Tree,
    /// The last entry written.
    last: u64,
    /// The last entry the newest snapshot includes.
    upto: u64,
    generation: u64,
    snapshot_every: u64,
    snapshotting: bool,
    dormant: Dormant,
}

/// A snapshot taken under the lock, written after it is released.
pub(super) struct Snapshot {
    tree: sled::Tree,
    header: Header,
    orders: Vec<Order>,
}

impl Store {
    /// Loads the persisted state into a fresh book (converting the old layout if that is what the tree
    /// holds) and returns the store that continues the log.
    pub(super) fn open(
        tree: sled::Tree,
        book: &mut Book,
        snapshot_every: u64,
    ) -> Result<Store, PaperError> {
        let mut stored = Stored::default();
        let header: Option<Header> = match tree.get(HEADER_KEY)? {
            Some(raw) => Some(decode(HEADER_KEY, &raw)?),
            None => None,
        };
        let legacy = LEGACY_PREFIXES
            .iter()
            .any(|p| tree.scan_prefix(p).next().is_some());
        let (generation, upto) = match &header {
            Some(h) => {
                stored.load_snapshot(&tree, h)?;
                (h.generation, h.upto)
            }
            None => {
                if legacy {
                    stored.load_legacy(&tree)?;
                }
                (0, 0)
            }
        };
        let mut last = upto;
        for item in tree.scan_prefix([ENTRY_PREFIX]) {
            let (key, value) = item?;
            let n = entry_number(&key).ok_or_else(|| PaperError::CorruptRecord {
                key: String::from_utf8_lossy(&key).into_owned(),
                problem: "not a log entry key".to_string(),
            })?;
            if n <= upto {
                continue;
            }
            stored.apply(decode(&key, &value)?);
            last = n;
        }

        let mut dormant = Dormant::default();
        book.next_sequence = book.next_sequence.max(stored.next_sequence);
        for (_, order) in stored.orders {
            if book.accounts.contains_key(&order.account)
                && book.instruments.get(&order.instrument).is_some()
            {
                book.insert(order);
            } else {
                dormant.orders.push(order);
            }
        }
        for (_, mut p) in stored.positions {
            match book.accounts.get_mut(&p.account) {
                Some(acct) if book.instruments.get(&p.instrument).is_some() => {
                    p.market_position = MarketPosition::of(p.quantity);
                    acct.positions.insert(p.instrument.clone(), p);
                }
                _ => dormant.positions.push(p),
            }
        }
        for (instrument, price) in stored.quotes {
            if book.instruments.get(&instrument).is_some() {
                book.quotes.insert(instrument, price);
            } else {
                dormant.quotes.insert(instrument, price);
            }
        }
        // Loading is not a change.
        book.touched = Default::default();

        let mut store = Store {
            tree,
            last,
            upto,
            generation,
            snapshot_every: snapshot_every.max(1),
            snapshotting: false,
            dormant,
        };
        if legacy {
            if header.is_none() {
                // Convert: the snapshot holds everything, then the old keys can go.
                store.take_snapshot(book).write()?;
                store.upto = store.last;
                store.generation += 1;
            }
            for prefix in LEGACY_PREFIXES {
                for key in store.tree.scan_prefix(prefix).keys() {
                    store.tree.remove(key?)?;
                }
            }
        }
        Ok(store)
    }

    /// Appends what the last operation touched as one entry and clears the record of it. Returns a
    /// snapshot to write (after releasing the lock) when one is due.
    pub(super) fn commit(&mut self, book: &mut Book) -> Result<Option<Snapshot>, PaperError> {
        let touched = std::mem::take(&mut book.touched);
        if touched.orders.is_empty() && touched.positions.is_empty() && touched.quotes.is_empty() {
            return Ok(None);
        }
        let mut entry = Entry::default();
        for (account, id) in &touched.orders {
            match book.accounts.get(account).and_then(|a| a.get(id)) {
                Some(order) => entry.orders.push(Cow::Borrowed(order)),
                None => entry
                    .removed
                    .push((Cow::Borrowed(account.as_str()), Cow::Borrowed(id))),
            }
        }
        for (account, instrument) in &touched.positions {
            if let Some(p) = book
                .accounts
                .get(account)
                .and_then(|a| a.positions.get(instrument))
            {
                entry.positions.push(Cow::Borrowed(p));
            }
        }
        for instrument in &touched.quotes {
            if let Some(price) = book.quotes.get(instrument) {
                entry
                    .quotes
                    .push((Cow::Borrowed(instrument.as_str()), *price));
            }
        }
        let n = self.last + 1;
        self.tree.insert(entry_key(n), encode(&entry)?)?;
        self.last = n;
        if self.snapshotting || self.last - self.upto < self.snapshot_every {
            return Ok(None);
        }
        self.snapshotting = true;
        Ok(Some(self.take_snapshot(book)))
    }

    /// The whole venue as of the last entry, for a new generation.
    fn take_snapshot(&self, book: &Book) -> Snapshot {
        let mut orders: Vec<Order> = book
            .accounts
            .values()
            .flat_map(|a| a.live.values().chain(a.done.values()))
            .cloned()
            .collect();
        orders.extend(self.dormant.orders.iter().cloned());
        let mut positions: Vec<Position> = book
            .accounts
            .values()
            .flat_map(|a| a.positions.values())
            .cloned()
            .collect();
        positions.extend(self.dormant.positions.iter().cloned());
        let mut quotes = self.dormant.quotes.clone();
        quotes.extend(book.quotes.iter().map(|(k, v)| (k.clone(), *v)));
        Snapshot {
            tree: self.tree.clone(),
            header: Header {
                generation: self.generation + 1,
                upto: self.last,
                chunks: orders.len().div_ceil(CHUNK_ORDERS) as u32,
                next_sequence: book.next_sequence,
                positions,
                quotes,
            },
            orders,
        }
    }

    /// Records how writing the snapshot `commit` handed out went.
    pub(super) fn snapshot_written(&mut self, written: &Result<(u64, u64), PaperError>) {
        self.snapshotting = false;
        if let Ok((generation, upto)) = written {
            self.generation = *generation;
            self.upto = *upto;
        }
    }
}

impl Snapshot {
    /// Writes the chunks, then the header that makes them current, then removes what they replace.
    /// Returns the new generation and the last entry it includes.
    pub(super) fn write(self) -> Result<(u64, u64), PaperError> {
        let Header {
            generation, upto, ..
        } = self.header;
        for (index, chunk) in self.orders.chunks(CHUNK_ORDERS).enumerate() {
            self.tree
                .insert(chunk_key(generation, index as u32), encode(&chunk)?)?;
        }
        self.tree.insert(HEADER_KEY, encode(&self.header)?)?;
        for key in self.tree.range(entry_key(0)..=entry_key(upto)).keys() {
            self.tree.remove(key?)?;
        }
        for key in self.tree.scan_prefix([CHUNK_PREFIX]).keys() {
            let key = key?;
            if key.get(1..9) != Some(&generation.to_be_bytes()[..]) {
                self.tree.remove(key)?;
            }
        }
        Ok((generation, upto))
    }
}
