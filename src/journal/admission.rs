//! Admission: an alert's record is stored under its idempotency key, or the record already holding the
//! key answers for it. The claims ([`Claims`]) are rebuilt from the records when the journal opens.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ulid::Ulid;

use super::codec::{encode, PruneView};
use super::{Journal, JournalError};
use crate::claims::{ClaimKey, Claims};
use crate::clock::now_ms;
use crate::record::AlertRecord;

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

/// How long a duplicate waits for the record of a claim whose writer is mid-way (claim taken, record not
/// yet written): microseconds in practice. Past it, the duplicate is refused as retryable (503).
const CLAIM_WAIT: Duration = Duration::from_secs(5);

impl Journal {
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
        let id =
            canonical_id(&rec.id).ok_or_else(|| JournalError::NotCanonicalId(rec.id.clone()))?;
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
                    return Err(JournalError::ClaimPending {
                        waited_secs: CLAIM_WAIT.as_secs(),
                    })
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
}

/// The claims of the records received inside the window. Record ids are ULIDs (their time part is the
/// receipt time, and their text sorts by it), so the walk starts at the window's beginning instead of at the
/// oldest record; the newest record holding a key keeps it (it took the key over). An unreadable
/// record has no claim to give: it is passed over, and counted in a warning.
pub(super) fn load_claims(alerts: &sled::Tree, window_ms: u64) -> Result<Claims, sled::Error> {
    let cutoff = now_ms().saturating_sub(window_ms);
    let from = Ulid::from_parts(cutoff, 0).to_string();
    let claims = Claims::default();
    let mut unreadable = 0usize;
    for item in alerts.range(from.as_bytes()..) {
        let (k, v) = item?;
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
pub(super) fn canonical_id(s: &str) -> Option<Ulid> {
    Ulid::from_string(s).ok().filter(|id| id.to_string() == s)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::journal::identity::{FORMAT_KEY, OLD_CLAIM_TREES};
    use crate::journal::test_support::{rec, reopen};

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
}
