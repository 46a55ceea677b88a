//! Retention: idempotency keys are given back once they outlive the window, and finished records go once
//! they are older than the retention age or beyond the record count (oldest first), with their keys.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::admission::canonical_id;
use super::codec::{PruneView, StatusView};
use super::{Journal, JournalError};
use crate::claims::ClaimKey;
use crate::clock::now_ms;

impl Journal {
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::journal::test_support::rec;
    use crate::record::Status;

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
}
