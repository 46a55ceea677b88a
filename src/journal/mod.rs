//! The durable journal (sled): one record per authenticated alert, and the idempotency keys that make a
//! repeated delivery return the original record instead of trading twice.
//!
//! Trees: `alerts` (id → record JSON as first stored; ids are ULIDs, so key order is arrival order),
//! `alert_state` (id → the record's changing part, [`RecordState`], once it has changed: an execution
//! step rewrites a few hundred bytes, not the body), `meta` (small settings such as the kill switch).
//! The idempotency keys live in memory ([`Claims`]): each record carries its own source, key, body hash and
//! receipt time, so a claim is on disk exactly when its record is, and admission is one write. Opening
//! rebuilds the claims from the records inside the window.
//! A key is *claimed* (compare-and-swap, in memory) before its record is written, so of fifty identical
//! deliveries racing, exactly one wins; the others find the claim and answer with the winner's record.
//!
//! Map of the module (each file adds its part of `impl Journal`):
//! - `mod.rs`: the [`Journal`] type and [`JournalError`]; opening, reads by id, the `meta` tree, durability
//!   (`sync`, `flush_within`, `flush_now`).
//! - `admission`: admitting an alert under its idempotency key ([`Admission`]), `find_key`, storing records
//!   outside admission (`insert`), and rebuilding the claims on open.
//! - `state`: changing a stored record's state (`update`, `update_known` with a [`KnownState`]).
//! - `listing`: [`ListFilter`], `list` (newest first), `for_each`, and the filter values
//!   ([`parse_time`], [`parse_status`]).
//! - `pruning`: retention: expired keys, and finished records past their age or beyond the count.
//! - `identity`: which data dir a journal belongs to (`journal.id`) and which on-disk format it is in.
//! - `codec`: records and states as stored (JSON), and the partial views pruning and the rebuild read.
//! - `config`: the `[journal]` settings ([`JournalConfig`]) and their validation.
//!
//! [`RecordState`]: crate::record::RecordState

mod admission;
mod codec;
mod config;
mod identity;
mod listing;
mod pruning;
mod state;
#[cfg(test)]
mod test_support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::claims::Claims;
use crate::fsync::{self, sync_dir};
use crate::group_commit::{CommitError, GroupCommit};
use crate::record::AlertRecord;

pub use admission::Admission;
pub use config::{JournalConfig, JournalConfigError};
pub use listing::{parse_status, parse_time, FilterError, ListFilter};
pub use state::KnownState;

use codec::with_state;
use identity::{check_format, check_identity, OLD_CLAIM_TREES};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal in {path}: {cause} (is another alert-relay running with this data dir? is the directory writable?)")]
    Open { path: String, cause: OpenFailure },
    /// The database failed a read or a write (sled's error, as text), or a record could not be encoded.
    #[error("journal storage error: {0}")]
    Storage(String),
    /// What was written could not be made durable.
    #[error("journal storage error: {0}")]
    Commit(#[from] CommitError),
    /// A repeat found its key claimed by a first delivery whose record was still not written after
    /// `waited_secs`: nothing was recorded for the repeat, and it may be retried.
    #[error("journal storage error: the first delivery with this idempotency key is still being written after {waited_secs} s; nothing was recorded for this one: retry")]
    ClaimPending { waited_secs: u64 },
    /// A record to admit under a key has an id that is not a ULID as printed (a claim could not find it).
    #[error("journal storage error: record id '{0}' is not a canonical ULID")]
    NotCanonicalId(String),
    #[error("journal record {0} is corrupt: {1}")]
    Corrupt(String, String),
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Storage(e.to_string())
    }
}

/// Why the journal did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenFailure {
    /// The data dir or the database could not be created, opened or read (the error, as text).
    #[error("{0}")]
    Storage(String),
    #[error("cannot sync the directory {dir}: {cause}")]
    SyncDir { dir: String, cause: String },
    /// The journal was written by a newer layout than this version reads.
    #[error("the journal is in format {found}, written by a newer alert-relay; this version reads format {}: run the newer version", identity::FORMAT)]
    NewerFormat { found: u32 },
    /// `journal.id` names another journal than the one in the database.
    #[error("the journal's id {inside} does not match {file} ({on_disk}): this is another data dir's journal")]
    ForeignJournal {
        inside: String,
        file: String,
        on_disk: String,
    },
    /// `journal.id` names a journal, and the database opened without it: refused, not started over empty.
    #[error("the journal lost its contents: {file} names journal {id}, but the database opened empty or without it; refusing to start over empty (restore the journal from a backup, or move the data dir away to start fresh)")]
    LostContents { file: String, id: String },
    #[error("cannot write {file}: {cause}")]
    WriteIdentity { file: String, cause: String },
}

impl From<sled::Error> for OpenFailure {
    fn from(e: sled::Error) -> Self {
        OpenFailure::Storage(e.to_string())
    }
}

impl From<std::io::Error> for OpenFailure {
    fn from(e: std::io::Error) -> Self {
        OpenFailure::Storage(e.to_string())
    }
}

pub struct Journal {
    db: sled::Db,
    alerts: sled::Tree,
    /// id → [`RecordState`](crate::record::RecordState), overriding the state stored in `alerts` once the
    /// record has changed.
    state: sled::Tree,
    claims: Claims,
    meta: sled::Tree,
    ids: Mutex<ulid::Generator>,
    /// Number of records, kept here: sled's `len()` walks the whole tree.
    count: AtomicUsize,
    commit: GroupCommit,
    window_ms: u64,
}

impl Journal {
    /// Opens with the default page cache.
    pub fn open(dir: &Path, idempotency_window: Duration) -> Result<Journal, JournalError> {
        Self::open_with_cache(dir, idempotency_window, JournalConfig::default().cache_mb)
    }

    /// Opens with the `[journal]` settings: the idempotency window and the page cache.
    pub fn open_configured(dir: &Path, cfg: &JournalConfig) -> Result<Journal, JournalError> {
        Self::open_with_cache(
            dir,
            Duration::from_secs(cfg.idempotency_window_secs),
            cfg.cache_mb,
        )
    }

    /// Opens with a page cache of `cache_mb` MiB.
    pub fn open_with_cache(
        dir: &Path,
        idempotency_window: Duration,
        cache_mb: u64,
    ) -> Result<Journal, JournalError> {
        Self::try_open(dir, idempotency_window, cache_mb).map_err(|cause| JournalError::Open {
            path: dir.display().to_string(),
            cause,
        })
    }

    fn try_open(
        dir: &Path,
        idempotency_window: Duration,
        cache_mb: u64,
    ) -> Result<Journal, OpenFailure> {
        fsync::create_dir_all(dir)?;
        let db_dir = dir.join("journal");
        let db = sled::Config::new()
            .path(&db_dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_mb.max(1) * 1024 * 1024)
            .open()?;
        // What sled has just created (its directory, log file and config) is found after a power loss only
        // once the directory entries are on disk: synced once here, before anything is acknowledged. (sled
        // syncs its log's contents; a config file found empty is written again.)
        for d in [db_dir.as_path(), dir] {
            sync_dir(d).map_err(|e| OpenFailure::SyncDir {
                dir: d.display().to_string(),
                cause: e.to_string(),
            })?;
        }
        let alerts = db.open_tree("alerts")?;
        let state = db.open_tree("alert_state")?;
        let meta = db.open_tree("meta")?;
        check_identity(dir, &meta)?;
        check_format(&meta)?;
        // Journals of format 2 and before kept the claims in trees of their own; the records hold all they
        // said. (`drop_tree` does nothing when there is no such tree.)
        for old in OLD_CLAIM_TREES {
            db.drop_tree(old)?;
        }
        let window_ms = idempotency_window.as_millis() as u64;
        let started = std::time::Instant::now();
        let claims = admission::load_claims(&alerts, window_ms)?;
        tracing::info!(
            keys = claims.len(),
            ms = started.elapsed().as_millis() as u64,
            "idempotency keys rebuilt from the journal"
        );
        let commit = GroupCommit::start(db.clone());
        // One walk at start-up; kept up to date from here on.
        let count = alerts.len();
        Ok(Journal {
            db,
            alerts,
            state,
            claims,
            meta,
            ids: Mutex::new(ulid::Generator::new()),
            count: AtomicUsize::new(count),
            commit,
            window_ms,
        })
    }

    /// The underlying database, for other components that keep state beside the journal (paper account).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// A new, time-ordered alert id.
    pub fn next_id(&self) -> String {
        let mut g = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        match g.generate() {
            Ok(id) => id.to_string(),
            // The random part overflowed within one millisecond: a fresh ULID is still unique.
            Err(_) => ulid::Ulid::new().to_string(),
        }
    }

    /// Waits until everything written so far is on disk.
    pub async fn sync(&self) -> Result<(), JournalError> {
        Ok(self.commit.sync().await?)
    }

    /// Asks for everything written so far to be on disk within `delay`, without waiting: for writes nobody
    /// is waiting on. Under load it rides along with the next acknowledgement's flush.
    pub fn flush_within(&self, delay: Duration) {
        self.commit.flush_within(delay);
    }

    pub fn get(&self, id: &str) -> Result<Option<AlertRecord>, JournalError> {
        // The state first, then the record: retention removes the record, then the state, so a state
        // read as absent before the record was read as present was never removed (see `merged`).
        let state = self.state.get(id.as_bytes())?;
        match self.alerts.get(id.as_bytes())? {
            Some(raw) => Ok(Some(with_state(id, &raw, state)?)),
            None => Ok(None),
        }
    }

    /// The record read as `raw` under `id` (by a walk of `alerts`), with its current state; `None` when
    /// retention removed it meanwhile. Retention removes the record, then its state: a walk that read the
    /// record just before both went would find no state and show the record as first stored, so for a
    /// record stored unfinished (`accepted`) a missing state is confirmed by the record still being there.
    fn merged(&self, id: &str, raw: &[u8]) -> Result<Option<AlertRecord>, JournalError> {
        let state = self.state.get(id.as_bytes())?;
        let no_state = state.is_none();
        let rec = with_state(id, raw, state)?;
        if no_state && !rec.is_final() && !self.alerts.contains_key(id.as_bytes())? {
            return Ok(None);
        }
        Ok(Some(rec))
    }

    pub fn record_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Disk space used by the database, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>, JournalError> {
        Ok(self
            .meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).to_string()))
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<(), JournalError> {
        self.meta.insert(key, value.as_bytes())?;
        Ok(())
    }

    /// Flushes synchronously (shutdown).
    pub fn flush_now(&self) -> Result<(), JournalError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::test_support::{rec, reopen};
    use super::*;
    use crate::record::Status;

    /// Thousands of records written in id order from several tasks at once (the journal's pattern: every
    /// insert lands in the rightmost leaf), half of them updated, the oldest two thirds pruned (leaves and index nodes emptied from the left,
    /// merged): every record left reads back with its state, in order, after a reopen too. It checks the
    /// data, not the shapes: it passes with upstream sled too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_records_in_id_order_survive_splits_merges_and_reopen() {
        const N: usize = 3_000;
        let dir = tempfile::tempdir().unwrap();
        let window = Duration::from_secs(3600);
        let j = Arc::new(Journal::open(dir.path(), window).unwrap());
        let body = json!({ "pad": "x".repeat(600) });
        let mut tasks = vec![];
        for t in 0..4 {
            let (j, body) = (j.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = vec![];
                for i in 0..N / 4 {
                    let mut r = rec(&j, Some(&format!("k{t}-{i}")), "aa");
                    r.body = body.clone();
                    r.status = Status::Executed;
                    ids.push(r.id.clone());
                    j.admit(r).await.unwrap();
                    if i % 2 == 0 {
                        j.update(&ids[i], |st| st.reason = Some(format!("r{t}-{i}")))
                            .unwrap()
                            .unwrap();
                    }
                }
                ids
            }));
        }
        let mut reasons = std::collections::HashMap::new();
        for (t, task) in tasks.into_iter().enumerate() {
            for (i, id) in task.await.unwrap().into_iter().enumerate() {
                reasons.insert(id, (i % 2 == 0).then(|| format!("r{t}-{i}")));
            }
        }
        let mut ids: Vec<String> = reasons.keys().cloned().collect();
        ids.sort();
        assert_eq!(j.prune_records(window, N / 3).unwrap(), N - N / 3);
        let kept = ids.split_off(N - N / 3);
        j.sync().await.unwrap();
        let check = |j: &Journal| {
            assert_eq!(j.record_count(), kept.len());
            let listed: Vec<String> = j
                .list(&ListFilter {
                    limit: N,
                    ..ListFilter::default()
                })
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(listed, kept.iter().rev().cloned().collect::<Vec<_>>());
            for id in &kept {
                let r = j.get(id).unwrap().unwrap();
                assert_eq!(r.reason, reasons[id], "state of {id}");
                assert_eq!(r.body, body);
            }
            for id in &ids {
                assert!(j.get(id).unwrap().is_none(), "{id} was pruned");
            }
        };
        check(&j);
        drop(j);
        check(&reopen(dir.path(), window).unwrap());
    }
}
