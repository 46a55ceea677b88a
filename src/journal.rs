//! The durable journal (sled): one record per authenticated alert, and the idempotency keys that make a
//! repeated delivery return the original record instead of trading twice.
//!
//! Trees: `alerts` (id → record JSON as first stored; ids are ULIDs, so key order is arrival order),
//! `alert_state` (id → the record's changing part, [`RecordState`], once it has changed: an execution step
//! rewrites a few hundred bytes, not the body), `meta` (small settings such as the kill switch).
//! The idempotency keys live in memory ([`Claims`]): each record carries its own source, key, body hash and
//! receipt time, so a claim is on disk exactly when its record is, and admission is one write. Opening
//! rebuilds the claims from the records inside the window.
//! A key is *claimed* (compare-and-swap, in memory) before its record is written, so of fifty identical
//! deliveries racing, exactly one wins; the others find the claim and answer with the winner's record.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;
use ulid::Ulid;

use crate::claims::{ClaimKey, Claims};
/// The wall clock's old path (it lives in [`crate::clock`]), kept for callers outside the journal.
pub use crate::clock::now_ms;
use crate::config::JournalConfig;
use crate::fsync::{self, sync_dir};
use crate::group_commit::GroupCommit;
use crate::record::{AlertRecord, RecordState, Status};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal in {path}: {cause} (is another alert-relay running with this data dir? is the directory writable?)")]
    Open { path: String, cause: String },
    #[error("journal storage error: {0}")]
    Storage(String),
    #[error("journal record {0} is corrupt: {1}")]
    Corrupt(String, String),
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Storage(e.to_string())
    }
}

/// A record's state as a writer last saw it (see [`Journal::update_known`]).
#[derive(Debug, Clone)]
pub struct KnownState {
    /// The bytes stored in `alert_state`; `None` while the record has no state entry yet.
    raw: Option<sled::IVec>,
    state: RecordState,
}

impl KnownState {
    /// The state stored with a record as admitted (`AlertRecord::state`), before any change: records are
    /// never rewritten once stored, so this is what a first change would read back.
    pub fn admitted(state: RecordState) -> KnownState {
        KnownState { raw: None, state }
    }
}

/// What admitting an alert with an idempotency key found.
#[derive(Debug)]
pub enum Admission {
    /// The key was free: the record is stored (not yet durable: call `sync`).
    New(AlertRecord),
    /// The key was taken by an identical body: the original record.
    Duplicate(AlertRecord),
    /// The key was taken by a different body.
    Conflict { existing_id: String },
}

/// Filters for listing records, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub source: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub limit: usize,
}

impl ListFilter {
    /// Whether `rec` passes the status, source and time filters (`limit` aside).
    pub fn matches(&self, rec: &AlertRecord) -> bool {
        self.status.map_or(true, |s| rec.status == s)
            && self.source.as_ref().map_or(true, |s| &rec.source == s)
            && self.since_ms.map_or(true, |s| rec.received_at_ms >= s)
            && self.until_ms.map_or(true, |u| rec.received_at_ms <= u)
    }
}

pub struct Journal {
    db: sled::Db,
    alerts: sled::Tree,
    /// id → [`RecordState`], overriding the state stored in `alerts` once the record has changed.
    state: sled::Tree,
    claims: Claims,
    meta: sled::Tree,
    ids: Mutex<ulid::Generator>,
    /// Number of records, kept here: sled's `len()` walks the whole tree.
    count: AtomicUsize,
    commit: GroupCommit,
    window_ms: u64,
}

/// How long a duplicate waits for the record of a claim whose writer is mid-way (claim taken, record not
/// yet written): microseconds in practice. Past it, the duplicate is refused as retryable (503).
const CLAIM_WAIT: Duration = Duration::from_secs(5);

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
        let open_err = |cause: String| JournalError::Open {
            path: dir.display().to_string(),
            cause,
        };
        fsync::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let db_dir = dir.join("journal");
        let db = sled::Config::new()
            .path(&db_dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_mb.max(1) * 1024 * 1024)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        // What sled has just created (its directory, log file and config) is found after a power loss only
        // once the directory entries are on disk: synced once here, before anything is acknowledged. (sled
        // syncs its log's contents; a config file found empty is written again.)
        for d in [db_dir.as_path(), dir] {
            sync_dir(d)
                .map_err(|e| open_err(format!("cannot sync the directory {}: {e}", d.display())))?;
        }
        let alerts = db
            .open_tree("alerts")
            .map_err(|e| open_err(e.to_string()))?;
        let state = db
            .open_tree("alert_state")
            .map_err(|e| open_err(e.to_string()))?;
        let meta = db.open_tree("meta").map_err(|e| open_err(e.to_string()))?;
        check_identity(dir, &meta).map_err(open_err)?;
        check_format(&meta).map_err(open_err)?;
        // Journals of format 2 and before kept the claims in trees of their own; the records hold all they
        // said. (`drop_tree` does nothing when there is no such tree.)
        for old in OLD_CLAIM_TREES {
            db.drop_tree(old).map_err(|e| open_err(e.to_string()))?;
        }
        let window_ms = idempotency_window.as_millis() as u64;
        let started = std::time::Instant::now();
        let claims = load_claims(&alerts, window_ms).map_err(open_err)?;
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
        self.commit.sync().await.map_err(JournalError::Storage)
    }

    /// Asks for everything written so far to be on disk within `delay`, without waiting: for writes nobody
    /// is waiting on. Under load it rides along with the next acknowledgement's flush.
    pub fn flush_within(&self, delay: Duration) {
        self.commit.flush_within(delay);
    }

    /// Stores a record as it is, outside admission: one without a key (rejections, skips without key...),
    /// or one imported from an export. An imported record inside the window holds its key as the next
    /// start-up's rebuild would give it: unless a newer record holds it.
    pub fn insert(&self, rec: &AlertRecord) -> Result<(), JournalError> {
        self.store(rec)?;
        let Some(key) = rec.idempotency_key.as_deref() else {
            return Ok(());
        };
        if let Some(id) = canonical_id(&rec.id).filter(|id| self.is_live(*id)) {
            let cutoff = now_ms().saturating_sub(self.window_ms);
            self.claims
                .offer(ClaimKey::new(&rec.source, key), id, cutoff);
        }
        Ok(())
    }

    fn store(&self, rec: &AlertRecord) -> Result<(), JournalError> {
        if self
            .alerts
            .insert(rec.id.as_bytes(), encode(rec)?)?
            .is_none()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Looks up a live claim on `key` for `source`, without taking it: the original record, or a conflict
    /// when the claim was made with another body.
    pub fn find_key(
        &self,
        source: &str,
        key: &str,
        body_sha: &str,
    ) -> Result<Option<Admission>, JournalError> {
        match self.claims.get(ClaimKey::new(source, key)) {
            Some(holder) if self.is_live(holder) => self.resolve_claim(holder, body_sha),
            _ => Ok(None),
        }
    }

    /// Claims `rec.idempotency_key` (if any) and stores `rec`; or reports the record already holding the key.
    pub async fn admit(&self, rec: AlertRecord) -> Result<Admission, JournalError> {
        let Some(key) = rec.idempotency_key.as_deref() else {
            self.store(&rec)?;
            return Ok(Admission::New(rec));
        };
        let k = ClaimKey::new(&rec.source, key);
        let id = canonical_id(&rec.id).ok_or_else(|| {
            JournalError::Storage(format!("record id '{}' is not a canonical ULID", rec.id))
        })?;
        let mut expected: Option<Ulid> = None;
        let started = std::time::Instant::now();
        loop {
            let current = match self.claims.swap(k, expected, id) {
                Ok(()) => {
                    if let Err(e) = self.store(&rec) {
                        self.claims.release(k, id);
                        return Err(e);
                    }
                    return Ok(Admission::New(rec));
                }
                Err(None) => {
                    expected = None;
                    continue;
                }
                Err(Some(current)) => current,
            };
            if !self.is_live(current) {
                // Expired: take it over.
                expected = Some(current);
                continue;
            }
            match self.resolve_claim(current, &rec.body_sha256)? {
                Some(found) => return Ok(found),
                // The winner has claimed but not yet written its record (microseconds, unless the disk
                // stalls). A live claim is never taken over: its writer may still succeed, and both would
                // execute. (Retention gives a key back before it removes the record, so a live claim
                // always has a writer.)
                None if started.elapsed() < CLAIM_WAIT => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    expected = None;
                }
                None => {
                    return Err(JournalError::Storage(format!(
                        "the first delivery with this idempotency key is still being written after {} s; nothing was recorded for this one: retry",
                        CLAIM_WAIT.as_secs()
                    )))
                }
            }
        }
    }

    /// Turns a live claim (the id of the record holding the key) into the admission it means; `None` when
    /// the record is not (or no longer) there.
    fn resolve_claim(
        &self,
        holder: Ulid,
        body_sha: &str,
    ) -> Result<Option<Admission>, JournalError> {
        let existing_id = holder.to_string();
        Ok(match self.get(&existing_id)? {
            Some(rec) if rec.body_sha256 != body_sha => Some(Admission::Conflict { existing_id }),
            Some(rec) => Some(Admission::Duplicate(rec)),
            None => None,
        })
    }

    /// Whether a claim by record `holder` is still inside the window (its age is its record's: the time
    /// part of the id).
    fn is_live(&self, holder: Ulid) -> bool {
        now_ms().saturating_sub(holder.timestamp_ms()) <= self.window_ms
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

    /// Atomically applies `f` to the state of record `id` (the closure may run more than once under
    /// contention), refreshes its status, and returns the new state; `None` when there is no such record.
    /// Only the state is rewritten: the body and the rest of the record stay as first stored.
    pub fn update(
        &self,
        id: &str,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<RecordState>, JournalError> {
        Ok(self.update_read(id, f)?.map(|(_, st)| st))
    }

    /// Like [`update`](Self::update), starting from the state the caller last saw (`known`) without
    /// reading it back: one compare-and-swap against the bytes it expects. If another writer got there
    /// first, the stored state is read and `f` applied to it instead. `known` is left holding the new
    /// state. An execution keeps one of these from its alert's admission to its end.
    pub fn update_known(
        &self,
        id: &str,
        known: &mut Option<KnownState>,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<RecordState>, JournalError> {
        if let Some(k) = known.take() {
            let mut st = k.state;
            f(&mut st);
            st.refresh_status();
            let v = sled::IVec::from(encode_state(&st)?);
            if self
                .state
                .compare_and_swap(id.as_bytes(), k.raw, Some(v.clone()))?
                .is_ok()
            {
                *known = Some(KnownState {
                    raw: Some(v),
                    state: st.clone(),
                });
                return Ok(Some(st));
            }
        }
        let out = self.update_read(id, f)?;
        *known = out.clone().map(|(raw, state)| KnownState {
            raw: Some(raw),
            state,
        });
        Ok(out.map(|(_, st)| st))
    }

    /// `update`, also returning the bytes stored.
    fn update_read(
        &self,
        id: &str,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<(sled::IVec, RecordState)>, JournalError> {
        let mut failure: Option<JournalError> = None;
        // The state as last produced by the closure (sled may retry it): returned without decoding the
        // stored bytes a second time.
        let mut produced: Option<RecordState> = None;
        let out = self.state.update_and_fetch(id.as_bytes(), |old| {
            failure = None;
            let current = match old {
                Some(raw) => decode_state(id, raw),
                // First change: the state is read out of the record itself (the body is skipped).
                None => match self.alerts.get(id.as_bytes()) {
                    Ok(Some(raw)) => decode_state(id, &raw),
                    Ok(None) => return None,
                    Err(e) => Err(e.into()),
                },
            };
            let result = current.and_then(|mut st| {
                f(&mut st);
                st.refresh_status();
                let v = encode_state(&st)?;
                produced = Some(st);
                Ok(v)
            });
            match result {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    old.map(<[u8]>::to_vec)
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(out.zip(produced))
    }

    /// Records newest first, filtered.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<AlertRecord>, JournalError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let mut out = Vec::new();
        for item in self.alerts.iter().rev() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).to_string();
            let Some(rec) = self.merged(&id, &v)? else {
                continue;
            };
            // Newest first: past `since`, nothing older can match.
            if filter.since_ms.is_some_and(|s| rec.received_at_ms < s) {
                break;
            }
            if !filter.matches(&rec) {
                continue;
            }
            out.push(rec);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Visits every record, oldest first, without holding them all in memory.
    pub fn for_each(&self, mut f: impl FnMut(AlertRecord)) -> Result<(), JournalError> {
        for item in self.alerts.iter() {
            let (k, v) = item?;
            if let Some(rec) = self.merged(&String::from_utf8_lossy(&k), &v)? {
                f(rec);
            }
        }
        Ok(())
    }

    pub fn record_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Disk space used by the database, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Removes the idempotency claims that have outlived the window. Returns how many were removed.
    pub fn prune_keys(&self) -> Result<usize, JournalError> {
        Ok(self.claims.expire(now_ms().saturating_sub(self.window_ms)))
    }

    /// Removes finished records older than `max_age`, and the oldest finished ones beyond `max_records`,
    /// with their idempotency claims. Record ids are ULIDs, so age is read from the key.
    pub fn prune_records(
        &self,
        max_age: Duration,
        max_records: usize,
    ) -> Result<usize, JournalError> {
        let cutoff = now_ms().saturating_sub(max_age.as_millis() as u64);
        let mut excess = self.record_count().saturating_sub(max_records);
        let mut removed = 0;
        let mut within_window = 0usize;
        for item in self.alerts.iter() {
            let (k, v) = item?;
            let ts = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| ulid::Ulid::from_string(s).ok())
                .map(|u| u.timestamp_ms())
                .unwrap_or(0);
            if ts >= cutoff && excess == 0 {
                break;
            }
            let id = String::from_utf8_lossy(&k).to_string();
            let rec = self.prune_view(&id, &v);
            if rec.as_ref().is_some_and(|r| !r.status.is_terminal()) {
                continue;
            }
            // The key goes first: a live key always has its record (see `admit`).
            if let Some(rec) = &rec {
                self.drop_claim_of(&id, &rec.source, rec.idempotency_key.as_deref());
            }
            if self
                .alerts
                .compare_and_swap(&k, Some(&v), None::<&[u8]>)?
                .is_ok()
            {
                self.state.remove(&k)?;
                self.count.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
                excess = excess.saturating_sub(1);
                if let Some(rec) = rec {
                    if now_ms().saturating_sub(rec.received_at_ms) < self.window_ms
                        && rec.idempotency_key.is_some()
                    {
                        within_window += 1;
                    }
                }
            }
        }
        self.sweep_orphan_states()?;
        if within_window > 0 {
            tracing::warn!(
                pruned = within_window,
                "retention removed records younger than the idempotency window: repeats of those alerts are no longer recognised; raise journal.max_records"
            );
        }
        Ok(removed)
    }

    /// What pruning needs of a record, decoded without building the rest (the body is skipped, not
    /// parsed into values); the status is the state's when it has one. `None` when either is unreadable.
    fn prune_view(&self, id: &str, raw: &[u8]) -> Option<PruneView> {
        let mut view: PruneView = serde_json::from_slice(raw).ok()?;
        if let Some(st) = self.state.get(id.as_bytes()).ok()? {
            view.status = serde_json::from_slice::<StatusView>(&st).ok()?.status;
        }
        Some(view)
    }

    /// Removes states left without their record: pruning removes the record first (so a crash in between
    /// can never bring a finished record back as `accepted`), then its state. States older than the oldest
    /// record are the only place such leftovers can be.
    fn sweep_orphan_states(&self) -> Result<(), JournalError> {
        let oldest = self.alerts.first()?.map(|(k, _)| k);
        let orphans = match &oldest {
            Some(k) => self.state.range(..k.clone()),
            None => self.state.range::<&[u8], _>(..),
        };
        for item in orphans {
            let (k, _) = item?;
            if !self.alerts.contains_key(&k)? {
                self.state.remove(&k)?;
            }
        }
        Ok(())
    }

    /// Removes the idempotency claim of record `id` (being pruned), if the claim is still its own: a claim
    /// whose record is gone can no longer answer a repeat.
    fn drop_claim_of(&self, id: &str, source: &str, key: Option<&str>) {
        if let (Some(key), Some(id)) = (key, canonical_id(id)) {
            self.claims.release(ClaimKey::new(source, key), id);
        }
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

/// The journal's layout: 2 = records with their changing part in `alert_state`; 3 = no claim trees (the
/// claims are rebuilt from the records; a version of format 2 would find none, so it must not open this).
/// A journal without the mark was written before (every record whole), which this version reads as it is.
const FORMAT: u32 = 3;
const FORMAT_KEY: &str = "journal_format";

/// Refuses a journal written by a newer layout (reading it would miss what that layout keeps elsewhere),
/// and marks an older or new one with this layout.
fn check_format(meta: &sled::Tree) -> Result<(), String> {
    let found = meta
        .get(FORMAT_KEY)
        .map_err(|e| e.to_string())?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u32>().ok());
    match found {
        Some(f) if f > FORMAT => Err(format!(
            "the journal is in format {f}, written by a newer alert-relay; this version reads format {FORMAT}: run the newer version"
        )),
        Some(f) if f == FORMAT => Ok(()),
        _ => meta
            .insert(FORMAT_KEY, FORMAT.to_string().as_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// File beside the database naming the journal it belongs to.
const IDENTITY_FILE: &str = "journal.id";
const IDENTITY_KEY: &str = "journal_id";

/// Refuses to start over empty: the data dir remembers the id of its journal in `journal.id`, and the journal
/// keeps the same id inside. A journal that opens without its id while the file exists was lost or replaced
/// (corruption sled recovered from by truncating, a deleted database): starting anyway would forget every
/// alert and idempotency key, so that is an error for a human to look at.
fn check_identity(dir: &Path, meta: &sled::Tree) -> Result<(), String> {
    let file = dir.join(IDENTITY_FILE);
    // An empty file is one whose write a power loss cut short: as good as none.
    let on_disk = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let inside = meta
        .get(IDENTITY_KEY)
        .map_err(|e| e.to_string())?
        .map(|v| String::from_utf8_lossy(&v).to_string());
    match (inside, on_disk) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), Some(b)) => Err(format!(
            "the journal's id {a} does not match {} ({b}): this is another data dir's journal",
            file.display()
        )),
        (Some(a), None) => write_synced(&file, &a),
        (None, Some(b)) => Err(format!(
            "the journal lost its contents: {} names journal {b}, but the database opened empty or without it; refusing to start over empty (restore the journal from a backup, or move the data dir away to start fresh)",
            file.display()
        )),
        (None, None) => {
            let id = ulid::Ulid::new().to_string();
            meta.insert(IDENTITY_KEY, id.as_bytes()).map_err(|e| e.to_string())?;
            meta.flush().map_err(|e| e.to_string())?;
            write_synced(&file, &id)
        }
    }
}

/// Writes the identity file, durably (it replaces an empty one).
fn write_synced(file: &Path, id: &str) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    fsync::write_durably(&opts, file, format!("{id}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// The trees of claims that journals of format 2 and before kept (dropped on open): by key, and (before the
/// fifth round) by age.
const OLD_CLAIM_TREES: [&str; 2] = ["idem", "idem_by_time"];

/// The claims of the records received inside the window. Record ids are ULIDs (their time part is the
/// receipt time, and their text sorts by it), so the walk starts at the window's beginning instead of at the
/// oldest record; the newest record holding a key keeps it (it took the key over). An unreadable
/// record has no claim to give: it is passed over, and counted in a warning.
fn load_claims(alerts: &sled::Tree, window_ms: u64) -> Result<Claims, String> {
    let cutoff = now_ms().saturating_sub(window_ms);
    let from = Ulid::from_parts(cutoff, 0).to_string();
    let claims = Claims::default();
    let mut unreadable = 0usize;
    for item in alerts.range(from.as_bytes()..) {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let Ok(view) = serde_json::from_slice::<PruneView>(&v) else {
            unreadable += 1;
            continue;
        };
        let id = std::str::from_utf8(&k).ok().and_then(canonical_id);
        if let (Some(key), Some(id)) = (view.idempotency_key.as_deref(), id) {
            claims.offer(ClaimKey::new(&view.source, key), id, cutoff);
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            unreadable,
            "records inside the idempotency window could not be read: their keys are not held, so a repeat of those alerts would run again"
        );
    }
    Ok(claims)
}

/// The record id `s` as a ULID, if `s` is how that ULID prints: only such an id can be found again from
/// a claim (`resolve_claim` looks the record up by the printed id).
fn canonical_id(s: &str) -> Option<Ulid> {
    Ulid::from_string(s).ok().filter(|id| id.to_string() == s)
}

fn encode(rec: &AlertRecord) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(rec).map_err(|e| JournalError::Storage(e.to_string()))
}

fn encode_state(st: &RecordState) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(st).map_err(|e| JournalError::Storage(e.to_string()))
}

/// The fields of a stored record that pruning reads (see `Journal::prune_view`), and the key rebuild
/// (`load_claims`: source and key).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PruneView {
    source: String,
    received_at_ms: u64,
    #[serde(default)]
    idempotency_key: Option<String>,
    status: Status,
}

/// The status of a stored state, the rest skipped.
#[derive(Deserialize)]
struct StatusView {
    status: Status,
}

fn decode_state(id: &str, raw: &[u8]) -> Result<RecordState, JournalError> {
    serde_json::from_slice(raw).map_err(|e| JournalError::Corrupt(id.to_string(), e.to_string()))
}

/// The record stored as `raw` under `id`, with `state` (from `alert_state`) over the one stored with it.
fn with_state(
    id: &str,
    raw: &[u8],
    state: Option<sled::IVec>,
) -> Result<AlertRecord, JournalError> {
    let mut rec = decode(id, raw)?;
    if let Some(st) = state {
        rec.set_state(decode_state(id, &st)?);
    }
    Ok(rec)
}

fn decode(id: &str, raw: &[u8]) -> Result<AlertRecord, JournalError> {
    serde_json::from_slice(raw).map_err(|e| JournalError::Corrupt(id.to_string(), e.to_string()))
}

/// A time for record filters: unix milliseconds, RFC 3339 (`2026-11-27T18:00:00Z`), or an age (`7d`, `12h`)
/// meaning that long before now. The error says which forms are accepted.
pub fn parse_time(v: &str) -> Result<u64, String> {
    let t = v.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    let parsed = match humantime::parse_rfc3339_weak(t) {
        Ok(at) => at
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        Err(_) => humantime::parse_duration(t)
            .ok()
            .map(|age| now_ms().saturating_sub(age.as_millis() as u64)),
    };
    parsed.ok_or_else(|| {
        format!("'{v}' is not a time; use RFC 3339 (2026-11-27T18:00:00Z), unix milliseconds, or an age (7d, 12h)")
    })
}

/// A record status by name; the error lists the names.
pub fn parse_status(v: &str) -> Result<Status, String> {
    Status::parse(&v.trim().to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "'{v}' is not a status; use one of {}",
            Status::ALL.map(|s| s.as_str()).join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::record::Timings;

    /// Opens the journal in `dir` again after a handle was dropped in this process.
    fn reopen(dir: &Path, window: Duration) -> Result<Journal, JournalError> {
        crate::test_support::retry_while_locked(|| Journal::open(dir, window))
    }

    fn rec(j: &Journal, key: Option<&str>, sha: &str) -> AlertRecord {
        AlertRecord {
            id: j.next_id(),
            source: "tv".into(),
            received_at: String::new(),
            received_at_ms: now_ms(),
            idempotency_key: key.map(str::to_string),
            key_origin: None,
            body_sha256: sha.into(),
            format: None,
            body: json!({}),
            template: None,
            status: Status::Accepted,
            reason: None,
            executions: vec![],
            timings: Timings::default(),
            client_ip: None,
            replay_of: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_admit_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                let r = rec(&j, Some("k1"), "aa");
                let a = j.admit(r).await.unwrap();
                j.sync().await.unwrap();
                a
            }));
        }
        let mut new = 0;
        let mut dup_ids = std::collections::HashSet::new();
        for t in tasks {
            match t.await.unwrap() {
                Admission::New(r) => {
                    new += 1;
                    dup_ids.insert(r.id);
                }
                Admission::Duplicate(r) => {
                    dup_ids.insert(r.id);
                }
                Admission::Conflict { .. } => panic!("same body must not conflict"),
            }
        }
        assert_eq!(new, 1);
        assert_eq!(dup_ids.len(), 1, "every duplicate points at the one record");
        assert_eq!(j.record_count(), 1);
    }

    #[tokio::test]
    async fn same_key_other_body_conflicts_and_expired_keys_are_reusable() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_millis(50)).unwrap();
        assert!(matches!(
            j.admit(rec(&j, Some("k"), "aa")).await.unwrap(),
            Admission::New(_)
        ));
        assert!(matches!(
            j.admit(rec(&j, Some("k"), "bb")).await.unwrap(),
            Admission::Conflict { .. }
        ));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(matches!(
            j.admit(rec(&j, Some("k"), "bb")).await.unwrap(),
            Admission::New(_)
        ));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(j.prune_keys().unwrap(), 1);
    }

    /// A known state gives the same change as reading the record back; when another writer got there
    /// first, the stored state is read and the change applied on top of it.
    #[tokio::test]
    async fn a_known_state_saves_the_read_and_yields_to_other_writers() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
        let mut recs = vec![];
        for key in ["a", "b"] {
            let mut r = rec(&j, Some(key), "aa");
            r.reason = Some("as admitted".into());
            r.timings.ack_us = Some(3);
            recs.push(r.clone());
            j.admit(r).await.unwrap();
        }
        let (a, b) = (recs[0].id.as_str(), recs[1].id.as_str());
        let executed = |st: &mut RecordState| st.status = Status::Executed;
        let read_back = j.update(a, executed).unwrap().unwrap();
        let mut known = Some(KnownState::admitted(recs[1].state()));
        let from_known = j.update_known(b, &mut known, executed).unwrap().unwrap();
        assert_eq!(read_back, from_known);
        assert_eq!(from_known.reason.as_deref(), Some("as admitted"));

        // Another writer changes b: the next change starts from what it wrote.
        j.update(b, |st| st.reason = Some("other writer".into()))
            .unwrap()
            .unwrap();
        let next = j
            .update_known(b, &mut known, |st| st.timings.ack_us = Some(9))
            .unwrap()
            .unwrap();
        assert_eq!(next.reason.as_deref(), Some("other writer"));
        assert_eq!(
            (next.status, next.timings.ack_us),
            (Status::Executed, Some(9))
        );
        // `known` followed: a further change keeps all of it, in the journal too.
        j.update_known(b, &mut known, |st| st.status = Status::Failed)
            .unwrap()
            .unwrap();
        let stored = j.get(b).unwrap().unwrap();
        assert_eq!(stored.reason.as_deref(), Some("other writer"));
        assert_eq!(
            (stored.status, stored.timings.ack_us),
            (Status::Failed, Some(9))
        );

        // A "first" change of a record that already has a state reads that state.
        let mut stale = Some(KnownState::admitted(recs[0].state()));
        let r = j
            .update_known(a, &mut stale, |st| st.timings.ack_us = Some(11))
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.timings.ack_us), (Status::Executed, Some(11)));
    }

    #[tokio::test]
    async fn expired_keys_are_pruned_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_millis(60)).unwrap();
        j.admit(rec(&j, Some("old"), "aa")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(90)).await;
        j.admit(rec(&j, Some("fresh"), "bb")).await.unwrap();
        assert_eq!(j.prune_keys().unwrap(), 1);
        assert!(
            j.find_key("tv", "fresh", "bb").unwrap().is_some(),
            "a live claim stays"
        );
        assert!(j.find_key("tv", "old", "aa").unwrap().is_none());
        assert_eq!(j.claims.len(), 1);
    }

    /// A claim taken over by a newer record stays with it when the older one's expires; the claims come
    /// back from the records when the journal opens again, and the claim trees of older layouts are dropped.
    #[tokio::test]
    async fn claims_follow_the_newest_record_and_are_rebuilt_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let window = Duration::from_millis(80);
        let j = Journal::open(dir.path(), window).unwrap();
        let first = rec(&j, Some("k"), "aa");
        let first_id = first.id.clone();
        j.admit(first).await.unwrap();
        let other = rec(&j, Some("other"), "aa");
        let other_id = other.id.clone();
        j.admit(other).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        // "k" is free again: a new delivery takes its claim over.
        let second = rec(&j, Some("k"), "bb");
        let second_id = second.id.clone();
        assert!(matches!(j.admit(second).await.unwrap(), Admission::New(_)));
        assert_eq!(j.prune_keys().unwrap(), 1, "only 'other' has expired");
        match j.find_key("tv", "k", "bb").unwrap() {
            Some(Admission::Duplicate(r)) => assert_eq!(r.id, second_id),
            other => panic!("the taken-over claim must stay with the newer record: {other:?}"),
        }
        assert!(j.get(&first_id).unwrap().is_some(), "records stay");
        j.sync().await.unwrap();
        drop(j);

        // Reopened with a window that covers every record: each key is claimed by its newest record.
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(j.claims.len(), 2);
        match j.find_key("tv", "k", "bb").unwrap() {
            Some(Admission::Duplicate(r)) => assert_eq!(r.id, second_id),
            other => panic!("rebuilt from the newest record: {other:?}"),
        }
        match j.find_key("tv", "other", "aa").unwrap() {
            Some(Admission::Duplicate(r)) => assert_eq!(r.id, other_id),
            other => panic!("rebuilt: {other:?}"),
        }
        assert!(matches!(
            j.find_key("tv", "k", "aa").unwrap(),
            Some(Admission::Conflict { .. })
        ));
        drop(j);

        // A journal of format 2, with its claim trees: they go, the claims come from the records.
        {
            let db = crate::test_support::retry_while_locked(|| {
                sled::Config::new().path(dir.path().join("journal")).open()
            })
            .unwrap();
            for old in OLD_CLAIM_TREES {
                db.open_tree(old)
                    .unwrap()
                    .insert(b"tv\0k", &b"{}"[..])
                    .unwrap();
            }
            db.open_tree("meta")
                .unwrap()
                .insert(FORMAT_KEY, &b"2"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        for old in OLD_CLAIM_TREES {
            assert!(!j
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == old.as_bytes()));
        }
        assert_eq!(j.meta_get(FORMAT_KEY).unwrap().as_deref(), Some("3"));
        assert_eq!(j.record_count(), 3);
        assert!(j.find_key("tv", "other", "aa").unwrap().is_some());
        drop(j);

        // Reopened once the window has passed: no claim comes back.
        tokio::time::sleep(Duration::from_millis(120)).await;
        let j = reopen(dir.path(), window).unwrap();
        assert!(j.claims.is_empty());
        assert!(matches!(
            j.admit(rec(&j, Some("k"), "cc")).await.unwrap(),
            Admission::New(_)
        ));
    }

    /// An update rewrites only the small state entry: the record as first stored (body included) is left
    /// byte for byte, reads merge the two, the state survives a reopen, and pruning removes both.
    #[tokio::test]
    async fn updates_rewrite_the_state_only_and_reads_merge_it() {
        use crate::domain::{Action, BracketRequest};
        use crate::record::Execution;
        let dir = tempfile::tempdir().unwrap();
        let id;
        let stored;
        {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            let mut r = rec(&j, Some("k"), "aa");
            r.body = json!({"ticker": "ES1!", "pad": "x".repeat(2000)});
            r.executions = vec![Execution::new(BracketRequest {
                account: "Sim101".into(),
                instrument: "ES 12-26".into(),
                action: Action::Buy,
                quantity: 1,
                take_profit: Some(6010.0),
                stop_loss: Some(5990.0),
                oco_id: None,
                cancel_delay_ms: None,
            })];
            id = r.id.clone();
            j.admit(r).await.unwrap();
            stored = j.alerts.get(&id).unwrap().unwrap();
            assert!(
                j.state.get(&id).unwrap().is_none(),
                "no state before a change"
            );

            let st = j
                .update(&id, |st| {
                    st.executions[0].status = Status::Executed;
                    st.timings.ack_us = Some(7);
                })
                .unwrap()
                .unwrap();
            assert_eq!(
                st.status,
                Status::Executed,
                "status refreshed from executions"
            );
            assert_eq!(
                j.alerts.get(&id).unwrap().unwrap(),
                stored,
                "record untouched"
            );
            let small = j.state.get(&id).unwrap().unwrap();
            assert!(small.len() < 400, "state is {} bytes", small.len());
            assert!(j.update("01NOSUCHRECORD", |_| {}).unwrap().is_none());
            assert!(j.state.get("01NOSUCHRECORD").unwrap().is_none());
            j.flush_now().unwrap();
        }
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        let got = j.get(&id).unwrap().unwrap();
        assert_eq!(got.status, Status::Executed);
        assert_eq!(got.executions[0].status, Status::Executed);
        assert_eq!(got.timings.ack_us, Some(7));
        assert_eq!(got.body["ticker"], "ES1!");
        let listed = j.list(&ListFilter::default()).unwrap();
        assert_eq!(listed[0].status, Status::Executed);
        // A state left behind by a crash between the two removals of an earlier pruning goes too.
        j.state
            .insert("00000000000000000000000000", &b"{}"[..])
            .unwrap();
        assert_eq!(j.prune_records(Duration::from_secs(3600), 0).unwrap(), 1);
        assert!(j.alerts.is_empty() && j.state.is_empty());
    }

    /// A record is read from `alerts`, its state from `alert_state`: a reader walking the journal while
    /// retention removes both (record, then state) must never see a finished record without its state,
    /// which would read as first stored: `accepted`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_see_a_record_being_pruned_without_its_state() {
        const N: usize = 3_000;
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        let mut ids = Vec::new();
        for _ in 0..N {
            let r = rec(&j, None, "aa");
            ids.push(r.id.clone());
            j.admit(r).await.unwrap();
        }
        for id in &ids {
            j.update(id, |st| st.status = Status::Executed)
                .unwrap()
                .unwrap();
        }
        // One record at a time, oldest first; the readers hammer the record about to go.
        let pruner = {
            let j = j.clone();
            std::thread::spawn(move || {
                for keep in (1000..N).rev() {
                    j.prune_records(Duration::from_secs(3600), keep).unwrap();
                }
            })
        };
        let walker = {
            let j = j.clone();
            std::thread::spawn(move || {
                let (mut reads, mut open) = (0usize, Vec::new());
                while j.record_count() > 1000 {
                    for item in j.alerts.iter().take(3) {
                        let (k, v) = item.unwrap();
                        let Some(r) = j.merged(&String::from_utf8_lossy(&k), &v).unwrap() else {
                            continue;
                        };
                        reads += 1;
                        if r.status != Status::Executed {
                            open.push(r.id);
                        }
                    }
                }
                (reads, open)
            })
        };
        let mut reads = 0usize;
        let mut seen_open = Vec::new();
        for id in &ids[..N - 1000] {
            while let Some(r) = j.get(id).unwrap() {
                reads += 1;
                if r.status != Status::Executed {
                    seen_open.push(r.id.clone());
                }
            }
        }
        pruner.join().unwrap();
        let (walked, walked_open) = walker.join().unwrap();
        assert!(reads > 0 && walked > 0);
        seen_open.extend(walked_open);
        assert!(
            seen_open.is_empty(),
            "{} of {} reads saw a finished record as not finished (first {:?})",
            seen_open.len(),
            reads + walked,
            seen_open.first()
        );
        assert_eq!(j.record_count(), 1000);
    }

    #[tokio::test]
    async fn retention_prunes_old_and_excess_finished_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
        let mut ids = vec![];
        for i in 0..5 {
            let mut r = rec(&j, Some(&format!("k{i}")), "aa");
            r.status = if i == 0 {
                Status::Accepted
            } else {
                Status::Executed
            };
            ids.push(r.id.clone());
            j.admit(r).await.unwrap();
        }
        // Nothing is old enough and the count is within bounds.
        assert_eq!(j.prune_records(Duration::from_secs(3600), 10).unwrap(), 0);
        // Keep at most 2: the oldest finished ones go, the unfinished first record stays.
        assert_eq!(j.prune_records(Duration::from_secs(3600), 2).unwrap(), 3);
        assert!(j.get(&ids[0]).unwrap().is_some());
        assert!(j.get(&ids[1]).unwrap().is_none());
        assert!(j.get(&ids[4]).unwrap().is_some());
        // The claims of pruned records go with them; the others stay.
        assert!(j.find_key("tv", "k1", "aa").unwrap().is_none());
        assert!(j.claims.get(ClaimKey::new("tv", "k1")).is_none());
        assert!(j.find_key("tv", "k0", "aa").unwrap().is_some());
        assert!(j.find_key("tv", "k4", "aa").unwrap().is_some());
        assert_eq!(j.claims.len(), 2);
        // Age: everything finished is older than 0 s.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(j.prune_records(Duration::ZERO, 1000).unwrap(), 1);
        assert_eq!(j.record_count(), 1);
        // The state decides, not the record as first stored: kept while executing, pruned once final.
        j.update(&ids[0], |st| st.status = Status::Executing)
            .unwrap()
            .unwrap();
        assert_eq!(j.prune_records(Duration::ZERO, 0).unwrap(), 0);
        j.update(&ids[0], |st| st.status = Status::Executed)
            .unwrap()
            .unwrap();
        assert_eq!(j.prune_records(Duration::ZERO, 0).unwrap(), 1);
        assert!(j.find_key("tv", "k0", "aa").unwrap().is_none());
        assert!(j.claims.is_empty());
    }

    /// An imported record (stored outside admission) holds its key as the rebuild at the next start-up
    /// would give it: the newest record inside the window holds a key.
    #[tokio::test]
    async fn an_imported_record_holds_its_key_as_a_restart_would() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
        let older = rec(&j, Some("k"), "aa");
        let held = rec(&j, Some("k"), "aa");
        let held_id = held.id.clone();
        j.admit(held).await.unwrap();
        let import = |j: &Journal, r: AlertRecord| {
            j.insert(&r).unwrap();
            r.id
        };
        let holder = |j: &Journal, key: &str, sha: &str| match j.find_key("tv", key, sha).unwrap() {
            Some(Admission::Duplicate(r)) => r.id,
            other => panic!("{key} must be held: {other:?}"),
        };
        import(&j, older);
        assert_eq!(
            holder(&j, "k", "aa"),
            held_id,
            "an older import takes nothing"
        );
        let newer_id = import(&j, rec(&j, Some("k"), "aa"));
        assert_eq!(
            holder(&j, "k", "aa"),
            newer_id,
            "a newer import holds the key"
        );
        let free_id = import(&j, rec(&j, Some("free"), "bb"));
        assert_eq!(holder(&j, "free", "bb"), free_id);
        j.sync().await.unwrap();
        drop(j);
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(holder(&j, "k", "aa"), newer_id, "the same after a restart");
        assert_eq!(holder(&j, "free", "bb"), free_id);
    }

    /// A repeat that finds a key taken but its record not yet written waits for the record, however long
    /// the write takes (up to `CLAIM_WAIT`), and answers with it: it never takes a live key over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repeat_waits_for_a_slow_first_write_and_never_takes_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        let first = rec(&j, Some("k"), "aa");
        let first_id = Ulid::from_string(&first.id).unwrap();
        // The first writer has taken the key; its record lands 300 ms later.
        j.claims
            .swap(ClaimKey::new("tv", "k"), None, first_id)
            .unwrap();
        let writer = {
            let j = j.clone();
            let first = first.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                j.store(&first).unwrap();
            })
        };
        match j.admit(rec(&j, Some("k"), "aa")).await.unwrap() {
            Admission::Duplicate(r) => assert_eq!(r.id, first.id),
            other => panic!("the repeat must wait for the first record: {other:?}"),
        }
        writer.await.unwrap();
        assert_eq!(j.record_count(), 1);
    }

    #[tokio::test]
    async fn records_survive_reopen_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            let mut ids = vec![];
            for i in 0..3 {
                let r = rec(&j, Some(&format!("k{i}")), "aa");
                ids.push(r.id.clone());
                j.admit(r).await.unwrap();
            }
            j.sync().await.unwrap();
            ids
        };
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        let listed: Vec<String> = j
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut expect = ids.clone();
        expect.reverse();
        assert_eq!(listed, expect);
        let updated = j
            .update(&ids[0], |r| r.reason = Some("x".into()))
            .unwrap()
            .unwrap();
        assert_eq!(updated.reason.as_deref(), Some("x"));
    }

    /// Thousands of records written in id order from several tasks at once (the pattern the vendored sled's
    /// split point is tuned for: leaves and index nodes split near their end, vendor/sled/PATCHES.md),
    /// half of them updated, the oldest two thirds pruned (leaves and index nodes emptied from the left,
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

    #[test]
    fn a_journal_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            assert_eq!(j.meta_get(FORMAT_KEY).unwrap().as_deref(), Some("3"));
            j.meta_set(FORMAT_KEY, "4").unwrap();
            j.flush_now().unwrap();
        }
        let e = reopen(dir.path(), Duration::from_secs(60))
            .err()
            .expect("a newer format must not open")
            .to_string();
        assert!(
            e.contains("format 4, written by a newer alert-relay"),
            "{e}"
        );
    }

    /// A power loss can leave the identity file created but empty: the journal still has its id, so it
    /// opens and the file is written again (not refused as another data dir's journal).
    #[test]
    fn an_empty_identity_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        let file = dir.path().join(IDENTITY_FILE);
        let id = std::fs::read_to_string(&file).unwrap();
        assert_eq!(id.trim().len(), 26, "a ULID: {id:?}");
        std::fs::write(&file, "").unwrap();
        drop(reopen(dir.path(), Duration::from_secs(60)).unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), id);
    }

    #[test]
    fn a_journal_that_lost_its_contents_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        assert!(dir.path().join(IDENTITY_FILE).exists());
        // Opens again fine.
        drop(reopen(dir.path(), Duration::from_secs(60)).unwrap());
        // The database disappears (or sled recovers it to nothing): refuse, don't start over empty.
        std::fs::remove_dir_all(dir.path().join("journal")).unwrap();
        let e = Journal::open(dir.path(), Duration::from_secs(60))
            .err()
            .expect("must refuse");
        assert!(
            e.to_string().contains("refusing to start over empty"),
            "{e}"
        );
    }
}
