//! Persistence of the paper venue in one sled tree: a log of operations over a periodic snapshot, laid
//! out so that after warm-up every write overwrites a key that already exists. Inserting fresh keys and
//! removing old ones makes sled split and merge nodes, and a merge into a node holding large values
//! rewrites all of it; overwriting in place does neither.
//!
//! - `l` + slot (4 bytes, big-endian), `2 × SNAPSHOT_EVERY` slots (the ring): one [`Entry`] per operation
//!   that changed anything, entry `n` in slot `n % ring`, its value the entry number (8 bytes) then the entry as JSON: the orders
//!   the operation created or changed (whole), the orders it pruned, the positions and last prices it
//!   moved. One insert per operation, so a crash never leaves half an operation on disk.
//! - `S`: the snapshot [`Header`]: its generation, the last entry it includes, its chunk count, the
//!   positions and last prices.
//! - `c` + parity (1 byte) + chunk index (4 bytes): the snapshot's orders, [`CHUNK_ORDERS`] per value.
//!   Generation `g` uses parity `g % 2`, so a new snapshot overwrites the one before the current one and a
//!   crash while writing it leaves the current one whole.
//!
//! Every [`SNAPSHOT_EVERY`] entries the venue is written out as the next generation: chunks, then the header
//! that makes them current. Only then may the slots of the entries it includes be overwritten, which is
//! why the ring is twice as long: a snapshot that fails is retried by every later operation, and only
//! once the ring is full does an operation fail rather than overwrite an entry no snapshot includes. Opening reads the snapshot, then replays the entries after it, in order;
//! a gap among them is reported as corruption, never skipped.
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

/// Entries between snapshots by default (`paper.snapshot_every`). Replaying this many on open takes
/// milliseconds; the snapshot itself (every order the venue keeps) costs about as much disk as a few
/// hundred entries.
pub(super) const SNAPSHOT_EVERY: u64 = 4096;

/// Orders per snapshot chunk (about 350 bytes each as JSON). Values stay a few KB, so a node of sixteen
/// of them stays far below sled's blob threshold.
const CHUNK_ORDERS: usize = 8;

const HEADER_KEY: &[u8] = b"S";
const ENTRY_PREFIX: u8 = b'l';
const CHUNK_PREFIX: u8 = b'c';
const LEGACY_PREFIXES: [&str; 3] = ["o/", "p/", "q/"];

fn slot_key(n: u64, ring: u64) -> [u8; 5] {
    let mut k = [ENTRY_PREFIX; 5];
    k[1..].copy_from_slice(&((n % ring) as u32).to_be_bytes());
    k
}

/// The entry number stored at the front of a slot's value.
fn entry_number(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

fn chunk_key(generation: u64, index: u32) -> [u8; 6] {
    let mut k = [CHUNK_PREFIX; 6];
    k[1] = (generation % 2) as u8;
    k[2..].copy_from_slice(&index.to_be_bytes());
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
    encode_after(Vec::new(), v)
}

/// `v` as JSON after the bytes already in `buf`.
fn encode_after<T: Serialize>(mut buf: Vec<u8>, v: &T) -> Result<Vec<u8>, PaperError> {
    serde_json::to_writer(&mut buf, v)
        .map_err(|e| PaperError::Storage(format!("cannot encode a record: {e}")))?;
    Ok(buf)
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
    fn put_order(&mut self, order: Order) {
        self.orders
            .insert((order.account.clone(), order.order_id.clone()), order);
    }

    fn put_position(&mut self, p: Position) {
        self.positions
            .insert((p.account.clone(), p.instrument.clone()), p);
    }

    fn apply(&mut self, entry: Entry<'_>) {
        for order in entry.orders {
            self.put_order(order.into_owned());
        }
        for (account, id) in entry.removed {
            self.orders.remove(&(account.into_owned(), id.into_owned()));
        }
        for p in entry.positions {
            self.put_position(p.into_owned());
        }
        for (instrument, price) in entry.quotes {
            self.quotes.insert(instrument.into_owned(), price);
        }
    }

    /// The layout before the log: one key per order, position and last price.
    fn load_legacy(&mut self, tree: &sled::Tree) -> Result<(), PaperError> {
        for item in tree.scan_prefix("o/") {
            let (key, value) = item?;
            self.put_order(decode(&key, &value)?);
        }
        for item in tree.scan_prefix("p/") {
            let (key, value) = item?;
            self.put_position(decode(&key, &value)?);
        }
        for item in tree.scan_prefix("q/") {
            let (key, value) = item?;
            let price: f64 = decode(&key, &value)?;
            let instrument = String::from_utf8_lossy(&key[2..]).into_owned();
            self.quotes.insert(instrument, price);
        }
        Ok(())
    }

    fn load_snapshot(&mut self, tree: &sled::Tree, header: Header) -> Result<(), PaperError> {
        for index in 0..header.chunks {
            let key = chunk_key(header.generation, index);
            let raw = tree.get(key)?.ok_or_else(|| PaperError::CorruptRecord {
                key: format!("snapshot {} chunk {index}", header.generation),
                problem: "missing: the snapshot header names it but it is not stored".to_string(),
            })?;
            let orders: Vec<Order> = decode(&key, &raw)?;
            for order in orders {
                self.put_order(order);
            }
        }
        for p in header.positions {
            self.put_position(p);
        }
        self.quotes.extend(header.quotes);
        self.next_sequence = header.next_sequence;
        Ok(())
    }

    /// Moves what the config still names into `book` and returns the rest.
    fn into_book(self, book: &mut Book) -> Dormant {
        let mut dormant = Dormant::default();
        book.next_sequence = book.next_sequence.max(self.next_sequence);
        for (_, order) in self.orders {
            if book.accounts.contains_key(&order.account)
                && book.instruments.get(&order.instrument).is_some()
            {
                book.insert(order);
            } else {
                dormant.orders.push(order);
            }
        }
        for (_, mut p) in self.positions {
            match book.accounts.get_mut(&p.account) {
                Some(acct) if book.instruments.get(&p.instrument).is_some() => {
                    p.market_position = MarketPosition::of(p.quantity);
                    acct.positions.insert(p.instrument.clone(), p);
                }
                _ => dormant.positions.push(p),
            }
        }
        for (instrument, price) in self.quotes {
            if book.instruments.get(&instrument).is_some() {
                book.quotes.insert(instrument, price);
            } else {
                dormant.quotes.insert(instrument, price);
            }
        }
        // Loading is not a change.
        book.touched = Default::default();
        dormant
    }
}

/// What the book cannot hold: state of accounts or instruments the config no longer names.
#[derive(Debug, Default)]
struct Dormant {
    orders: Vec<Order>,
    positions: Vec<Position>,
    quotes: BTreeMap<String, f64>,
}

/// The log's position, kept under the venue's lock with the book.
pub(super) struct Store {
    tree: sled::Tree,
    /// The last entry written.
    last: u64,
    /// The last entry the current snapshot includes.
    upto: u64,
    /// The current snapshot's generation (0: none yet).
    generation: u64,
    snapshot_every: u64,
    dormant: Dormant,
}

impl Store {
    /// Loads the persisted state into a fresh book (converting the old layout if that is what the tree
    /// holds) and returns the store that continues the log, with a snapshot every `snapshot_every`
    /// entries (at least 1: the config validates it); the ring is twice as long.
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
        // With a header, old-layout keys are leftovers of a conversion that crashed before removing them.
        let convert = legacy && header.is_none();
        let (generation, upto) = match header {
            Some(h) => {
                let at = (h.generation, h.upto);
                stored.load_snapshot(&tree, h)?;
                at
            }
            None if convert => {
                stored.load_legacy(&tree)?;
                (0, 0)
            }
            None => (0, 0),
        };
        // The entries after the snapshot, in order and without a gap.
        let mut entries = Vec::new();
        for item in tree.scan_prefix([ENTRY_PREFIX]) {
            let (key, value) = item?;
            let n = entry_number(&value).ok_or_else(|| PaperError::CorruptRecord {
                key: String::from_utf8_lossy(&key).into_owned(),
                problem: "a log slot without an entry number".to_string(),
            })?;
            if n > upto {
                entries.push((n, key, value));
            }
        }
        entries.sort_by_key(|(n, _, _)| *n);
        let mut last = upto;
        for (n, key, value) in entries {
            if n != last + 1 {
                return Err(PaperError::CorruptRecord {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    problem: format!(
                        "log entry {} is missing (the snapshot includes entries up to {upto}, the next stored one is {n})",
                        last + 1
                    ),
                });
            }
            stored.apply(decode(&key, &value[8..])?);
            last = n;
        }

        let dormant = stored.into_book(book);

        let mut store = Store {
            tree,
            last,
            upto,
            generation,
            snapshot_every,
            dormant,
        };
        if legacy {
            if convert {
                // The snapshot holds everything, then the old keys can go.
                store.snapshot(book)?;
            }
            for prefix in LEGACY_PREFIXES {
                for key in store.tree.scan_prefix(prefix).keys() {
                    store.tree.remove(key?)?;
                }
            }
        }
        Ok(store)
    }

    /// Log slots: the entries since the last snapshot, plus as many again for snapshots that fail.
    fn ring(&self) -> u64 {
        2 * self.snapshot_every
    }

    /// Appends what the last operation touched as one entry and clears the record of it; writes a
    /// snapshot when one is due.
    pub(super) fn commit(&mut self, book: &mut Book) -> Result<(), PaperError> {
        let touched = std::mem::take(&mut book.touched);
        if touched.orders.is_empty() && touched.positions.is_empty() && touched.quotes.is_empty() {
            return Ok(());
        }
        let n = self.last + 1;
        if n > self.upto + self.ring() {
            // Only after snapshots kept failing: the slot still holds an entry no snapshot includes.
            self.snapshot(book)?;
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
        let value = encode_after(n.to_be_bytes().to_vec(), &entry)?;
        self.tree.insert(slot_key(n, self.ring()), value)?;
        self.last = n;
        if self.last - self.upto >= self.snapshot_every {
            // The operation itself is stored: a failed snapshot is retried by the next one, and only
            // fails operations once the ring is full.
            if let Err(e) = self.snapshot(book) {
                tracing::warn!(error = %e, "paper account: cannot write a snapshot; keeping the log");
            }
        }
        Ok(())
    }

    /// Writes the whole venue as of the last entry as the next generation: its chunks (over those of
    /// the generation before the current one), then the header that makes them current.
    fn snapshot(&mut self, book: &Book) -> Result<(), PaperError> {
        let generation = self.generation + 1;
        let orders: Vec<&Order> = book
            .accounts
            .values()
            .flat_map(|a| a.live.values().chain(a.done.values()))
            .chain(&self.dormant.orders)
            .collect();
        let mut chunks = 0u32;
        for chunk in orders.chunks(CHUNK_ORDERS) {
            self.tree
                .insert(chunk_key(generation, chunks), encode(&chunk)?)?;
            chunks += 1;
        }
        // Chunks of this parity beyond the new count belong to an older generation nothing points at.
        let stale = chunk_key(generation, chunks);
        for key in self
            .tree
            .range(stale..=chunk_key(generation, u32::MAX))
            .keys()
        {
            self.tree.remove(key?)?;
        }
        let mut positions: Vec<Position> = book
            .accounts
            .values()
            .flat_map(|a| a.positions.values())
            .cloned()
            .collect();
        positions.extend(self.dormant.positions.iter().cloned());
        let mut quotes = self.dormant.quotes.clone();
        quotes.extend(book.quotes.iter().map(|(k, v)| (k.clone(), *v)));
        let header = Header {
            generation,
            upto: self.last,
            chunks,
            next_sequence: book.next_sequence,
            positions,
            quotes,
        };
        self.tree.insert(HEADER_KEY, encode(&header)?)?;
        self.generation = generation;
        self.upto = self.last;
        Ok(())
    }
}
