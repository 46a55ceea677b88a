//! The async runtime `serve` runs on, sized by `server.workers` (tokio's `TOKIO_WORKER_THREADS` is not read).
//!
//! By default the runtime gets one worker thread per core but one (at least one); "cores" are what
//! `std::thread::available_parallelism` reports, so CPU affinity and cgroup quotas count. The relay does not
//! run on its async workers alone: every acknowledgement waits for the journal's flush thread
//! ([`crate::group_commit`]), and sled writes its log from its own IO threads. With a worker on every core
//! those threads, the workers and anything else on the machine (a reverse proxy, a co-located client)
//! compete for every core, and a request's tasks hop between cores. On the 2-core bench machine one worker
//! instead of two took less CPU per alert and acknowledged more alerts per second (BENCHMARKS.md, decision
//! log).
//!
//! One worker is not one request at a time: requests interleave at every await. Long work stays off the
//! workers: journal pruning and `GET /api/alerts` listings run on the blocking pool. What still runs on a
//! worker is each request's own journal write, which is short except in one case: a record so large that
//! sled stores it as a file of its own (alert bodies averaging several KB; see vendor/sled/PATCHES.md,
//! change 3) syncs that file and its directory before returning, milliseconds during which one worker
//! serves nobody else. With such bodies, `server.workers` at the number of cores keeps other requests
//! moving meanwhile.

use std::io;

/// The most `server.workers` accepts: more threads than this is a typo, not a tuning.
pub const MAX_WORKERS: usize = 1024;

/// The worker threads for a configured `server.workers`: the value itself, or for 0 one per core but one,
/// at least one.
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// A multi-threaded runtime with `worker_count(configured)` workers, IO and timers enabled.
pub fn build(configured: usize) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_count(configured))
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_count_is_used_as_is() {
        assert_eq!(worker_count(1), 1);
        assert_eq!(worker_count(3), 3);
    }

    #[test]
    fn zero_leaves_one_core_to_the_journal_threads() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let auto = worker_count(0);
        assert!(auto >= 1);
        assert_eq!(auto, if cores > 1 { cores - 1 } else { 1 });
    }

    #[test]
    fn the_runtime_runs_tasks_on_the_configured_workers() {
        let rt = build(2).unwrap();
        assert_eq!(rt.metrics().num_workers(), 2);
        assert_eq!(
            rt.block_on(async { tokio::spawn(async { 7 }).await.unwrap() }),
            7
        );
    }
}
