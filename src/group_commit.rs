//! Group commit: many writers share one `fsync`.
//!
//! A writer inserts its record, then calls [`GroupCommit::sync`]. A dedicated thread takes every waiter
//! queued so far, flushes the database once, and wakes them all. A waiter queued while a flush is running
//! is served by the next flush, which starts after its insert: so when `sync` returns, that writer's record is
//! on disk. Under load, one flush covers many records; idle, a lone writer pays one flush.
//!
//! A write nobody waits for (an execution's final state when no caller is waiting) asks for a flush
//! *within* a short delay instead ([`GroupCommit::flush_within`]): it rides along with the next
//! acknowledgement's flush, or gets its own when the delay runs out, so it costs no flush of its own under
//! load.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Time added between flush starts per waiter the previous flush served, up to [`MAX_SPACING`].
const SPACING_PER_WAITER: Duration = Duration::from_micros(50);
const MAX_SPACING: Duration = Duration::from_millis(2);

/// How long after the previous flush started the next one may start. A flush that served few writers
/// means light load: the next one starts almost at once. A flush that served many means the disk is the
/// queue: spacing flushes lets each one carry more writers, which costs less CPU (every flush hands sled's
/// IO pool a log buffer to write, and waits for it) for the same durability.
///
/// The spacing is also a ceiling on throughput, because writers wait for it: `n` writers each waiting
/// for their flush are served at most `n` per spacing. Up to [`MAX_SPACING`], a flush that served `b`
/// writers spaces the next by `b × SPACING_PER_WAITER`, so any number of concurrent writers can get up to
/// `1 / SPACING_PER_WAITER` = 20,000 acknowledgements/s before the spacing holds them back, and at
/// [`MAX_SPACING`] `c` writers can get `c / MAX_SPACING` (32,000/s for 64). Larger values cap the relay
/// with CPU to spare (BENCHMARKS.md, decision log).
fn spacing(previous_batch: usize) -> Duration {
    (SPACING_PER_WAITER * previous_batch.min(1_000) as u32).min(MAX_SPACING)
}

/// Why a write could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The database flush failed (the disk's error, as text: every waiter of the flush gets a copy).
    #[error("journal flush failed: {0}")]
    Flush(String),
    /// The flusher thread is gone (the journal is shutting down, or the thread died).
    #[error("journal flusher has stopped")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<(), CommitError>>;

/// A request to the flusher: a writer waiting now, or a flush wanted by a deadline with nobody waiting.
enum Request {
    Now(Waiter),
    By(Instant),
}

pub struct GroupCommit {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`. Dropping the `GroupCommit` stops the thread and waits for it, so
    /// the database is released (sled locks it per process until every handle is gone).
    pub fn start(db: sled::Db) -> GroupCommit {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = thread::Builder::new()
            .name("journal-flush".into())
            .spawn(move || {
                let mut last_start = Instant::now();
                let mut last_batch = 0usize;
                let mut waiters: Vec<Waiter> = Vec::new();
                // The earliest deadline of the deferred requests taken so far.
                let mut due: Option<Instant> = None;
                loop {
                    let next = match due {
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                    };
                    let stopping = match next {
                        Ok(r) => {
                            take(r, &mut waiters, &mut due);
                            false
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => false,
                        Err(mpsc::RecvTimeoutError::Disconnected) => true,
                    };
                    for r in rx.try_iter() {
                        take(r, &mut waiters, &mut due);
                    }
                    if stopping && waiters.is_empty() && due.is_none() {
                        break;
                    }
                    // Only deferred requests, not yet due: keep collecting.
                    if !stopping && waiters.is_empty() && due.is_some_and(|d| d > Instant::now()) {
                        continue;
                    }
                    let gap = spacing(last_batch);
                    let since = last_start.elapsed();
                    if since < gap && !stopping {
                        thread::sleep(gap - since);
                        // Writers that arrived during the pause wrote before the flush starts.
                        for r in rx.try_iter() {
                            take(r, &mut waiters, &mut due);
                        }
                    }
                    last_start = Instant::now();
                    last_batch = waiters.len().max(1);
                    due = None;
                    let result = db
                        .flush()
                        .map(|_| ())
                        .map_err(|e| CommitError::Flush(e.to_string()));
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "journal flush failed");
                    }
                    for w in waiters.drain(..) {
                        let _ = w.send(result.clone());
                    }
                    if stopping {
                        break;
                    }
                }
            })
            .expect("spawn journal flush thread");
        GroupCommit {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Returns once everything written before this call is durable on disk.
    pub async fn sync(&self) -> Result<(), CommitError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(CommitError::Stopped)?
            .send(Request::Now(tx))
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Asks for everything written so far to be on disk within `delay`, without waiting for it. The flush
    /// that serves the next waiting writer serves this too; a failure is logged by the flusher.
    pub fn flush_within(&self, delay: Duration) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Request::By(Instant::now() + delay));
        }
    }
}

/// Files a request: a waiter joins the next flush, a deadline moves the next flush earlier if it is sooner.
fn take(r: Request, waiters: &mut Vec<Waiter>, due: &mut Option<Instant>) {
    match r {
        Request::Now(w) => waiters.push(w),
        Request::By(d) => *due = Some(due.map_or(d, |old| old.min(d))),
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_are_spaced_only_under_load() {
        assert_eq!(spacing(0), Duration::ZERO);
        assert_eq!(spacing(1), SPACING_PER_WAITER);
        assert!(
            spacing(4) <= Duration::from_micros(200),
            "light load adds little"
        );
        assert_eq!(spacing(64), MAX_SPACING);
        assert_eq!(spacing(usize::MAX / 2), MAX_SPACING, "no overflow");
    }

    /// The spacing never holds writers below 20,000 acknowledgements/s, whatever their number: `b`
    /// writers served by one flush wait at most `spacing(b)` for the next, so `b / spacing(b)` is the
    /// most they can get. (The old 250 µs per writer capped any concurrency below 16 at 4,000/s.)
    #[test]
    fn the_spacing_caps_no_concurrency_below_20000_per_second() {
        for writers in 1..=4096usize {
            let gap = spacing(writers).as_secs_f64();
            let ceiling = writers as f64 / gap;
            assert!(
                ceiling >= 20_000.0,
                "{writers} concurrent writers capped at {ceiling:.0}/s by a spacing of {gap:?}s"
            );
        }
    }

    /// Every concurrent waiter is answered, and dropping the `GroupCommit` joins its thread, so the
    /// database can be opened again in this process (sled holds a file lock while any handle lives).
    /// Durability across a real crash is shown by tests/it/crash.rs and tests/it/reliability.rs (SIGKILL).
    #[tokio::test]
    async fn waiters_are_answered_and_drop_releases_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = sled::Config::new().path(&path).open().unwrap();
            let commit = GroupCommit::start(db.clone());
            let mut waits = Vec::new();
            for i in 0..100u32 {
                db.insert(i.to_be_bytes(), &b"v"[..]).unwrap();
                waits.push(commit.sync());
            }
            for w in futures_util::future::join_all(waits).await {
                w.unwrap();
            }
        }
        // The flush thread is joined, so our handles are gone; sled itself releases the file lock from a
        // background thread shortly after.
        let db = crate::test_support::retry_while_locked(|| sled::Config::new().path(&path).open())
            .unwrap();
        assert_eq!(db.len(), 100);
    }

    /// A deferred request gets its flush by the deadline with nobody waiting: afterwards there is nothing
    /// left to flush. The control write, with no request, is still dirty after the same pause.
    #[test]
    fn a_deferred_request_is_flushed_by_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        // No background flushing by sled itself: only the group commit flushes here.
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .flush_every_ms(None)
            .open()
            .unwrap();
        let commit = GroupCommit::start(db.clone());
        db.flush().unwrap();

        db.insert(b"control", &b"v"[..]).unwrap();
        thread::sleep(Duration::from_millis(50));
        assert!(db.flush().unwrap() > 0, "the control write was still dirty");

        db.insert(b"deferred", &b"v"[..]).unwrap();
        commit.flush_within(Duration::from_millis(5));
        thread::sleep(Duration::from_millis(50));
        assert_eq!(db.flush().unwrap(), 0, "the deferred flush did not happen");
    }
}
