//! Group commit: many writers share one `fsync`.
//!
//! A writer inserts its record, then calls [`GroupCommit::sync`]. A dedicated thread takes every waiter
//! queued so far, flushes the database once, and wakes them all. A waiter queued while a flush is running
//! is served by the next flush, which starts after its insert: so when `sync` returns, that writer's record is
//! on disk. Under load, one flush covers hundreds of records; idle, a lone writer pays one flush.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

pub struct GroupCommit {
    tx: Option<mpsc::Sender<Waiter>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`. Dropping the `GroupCommit` stops the thread and waits for it, so
    /// the database is released (sled locks it per process until every handle is gone).
    pub fn start(db: sled::Db) -> GroupCommit {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = thread::Builder::new()
            .name("journal-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = db
                        .flush()
                        .map(|_| ())
                        .map_err(|e| format!("journal flush failed: {e}"));
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "journal flush failed");
                    }
                    for w in batch {
                        let _ = w.send(result.clone());
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
    pub async fn sync(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| "journal flusher has stopped".to_string())?
            .send(tx)
            .map_err(|_| "journal flusher has stopped".to_string())?;
        rx.await
            .map_err(|_| "journal flusher has stopped".to_string())?
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
