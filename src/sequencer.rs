//! Per-instrument ordering: executions for the same (account, instrument) lane run one at a time, in arrival
//! order (alert ids are ULIDs, so id order is arrival order); lanes run in parallel.
//!
//! Each CancelAndBracket replaces the previous bracket, so when several wait in a lane only the newest needs
//! to run: older waiting jobs are *superseded* by it. A job older than one that already started is
//! superseded too (it would put back a stale bracket). Jobs marked not supersedable (synchronous API calls,
//! whose caller waits for this very call) always run, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

/// (account, instrument)
pub type LaneKey = (String, String);

/// What the sequencer needs to know of a job; the payload is the worker's business.
pub trait Sequenced: Send + 'static {
    fn lane(&self) -> LaneKey;
    /// Arrival order: ULID of the alert.
    fn order_key(&self) -> &str;
    fn supersedable(&self) -> bool;
}

#[async_trait]
pub trait Worker<J: Sequenced>: Send + Sync + 'static {
    async fn run(&self, job: J);
    /// `job` will not run: `by` (an alert id) replaced it.
    async fn superseded(&self, job: J, by: String);
}

struct Lane<J> {
    running: bool,
    last_started: Option<String>,
    waiting: VecDeque<J>,
}

impl<J> Default for Lane<J> {
    fn default() -> Self {
        Lane {
            running: false,
            last_started: None,
            waiting: VecDeque::new(),
        }
    }
}

pub struct Sequencer<J: Sequenced, W: Worker<J>> {
    // Lanes are never removed: their number is bounded by accounts × instruments (both from the config,
    // requests are validated against them), and `last_started` must outlive an idle lane.
    lanes: Mutex<HashMap<LaneKey, Lane<J>>>,
    worker: Arc<W>,
    active: tokio::sync::watch::Sender<usize>,
}

impl<J: Sequenced, W: Worker<J>> Sequencer<J, W> {
    pub fn new(worker: Arc<W>) -> Arc<Self> {
        Arc::new(Sequencer {
            lanes: Mutex::new(HashMap::new()),
            worker,
            active: tokio::sync::watch::channel(0).0,
        })
    }

    pub fn submit(self: &Arc<Self>, job: J) {
        let key = job.lane();
        let mut superseded: Vec<(J, String)> = Vec::new();
        let start = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            let lane = lanes.entry(key.clone()).or_default();
            let stale_by = lane
                .last_started
                .as_ref()
                .filter(|s| job.supersedable() && s.as_str() > job.order_key())
                .cloned();
            let newer_waiting = lane
                .waiting
                .iter()
                .filter(|w| w.order_key() > job.order_key())
                .map(|w| w.order_key().to_string())
                .max();
            if let Some(by) = stale_by.or(newer_waiting.filter(|_| job.supersedable())) {
                superseded.push((job, by));
            } else {
                let by = job.order_key().to_string();
                let mut kept = VecDeque::with_capacity(lane.waiting.len() + 1);
                for w in lane.waiting.drain(..) {
                    if w.supersedable() && w.order_key() < by.as_str() {
                        superseded.push((w, by.clone()));
                    } else {
                        kept.push_back(w);
                    }
                }
                let pos = kept
                    .iter()
                    .position(|w| w.order_key() > job.order_key())
                    .unwrap_or(kept.len());
                kept.insert(pos, job);
                lane.waiting = kept;
            }
            let start = !lane.running && !lane.waiting.is_empty();
            if start {
                lane.running = true;
            }
            start
        };
        for (job, by) in superseded {
            // Counted as active until recorded, so `idle` (shutdown) waits for the mark too.
            self.active.send_modify(|n| *n += 1);
            let me = self.clone();
            tokio::spawn(async move {
                me.worker.superseded(job, by).await;
                me.active.send_modify(|n| *n -= 1);
            });
        }
        if start {
            self.active.send_modify(|n| *n += 1);
            let me = self.clone();
            tokio::spawn(async move { me.drive(key).await });
        }
    }

    async fn drive(self: Arc<Self>, key: LaneKey) {
        loop {
            let job = {
                let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
                let lane = lanes.entry(key.clone()).or_default();
                match lane.waiting.pop_front() {
                    Some(j) => {
                        lane.last_started = Some(j.order_key().to_string());
                        j
                    }
                    None => {
                        lane.running = false;
                        break;
                    }
                }
            };
            self.worker.run(job).await;
        }
        self.active.send_modify(|n| *n -= 1);
    }

    /// Jobs waiting (not yet started) per lane.
    pub fn depths(&self) -> Vec<(LaneKey, usize)> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .iter()
            .map(|(k, l)| (k.clone(), l.waiting.len()))
            .collect()
    }

    /// Waits until no lane is running and every superseded mark is recorded (shutdown).
    pub async fn idle(&self) {
        let mut rx = self.active.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct J {
        id: String,
        lane: &'static str,
        sup: bool,
    }

    impl Sequenced for J {
        fn lane(&self) -> LaneKey {
            ("A".into(), self.lane.into())
        }
        fn order_key(&self) -> &str {
            &self.id
        }
        fn supersedable(&self) -> bool {
            self.sup
        }
    }

    struct Log {
        events: Mutex<Vec<String>>,
        gate: tokio::sync::Semaphore,
    }

    impl Default for Log {
        fn default() -> Self {
            Log {
                events: Mutex::new(Vec::new()),
                gate: tokio::sync::Semaphore::new(0),
            }
        }
    }

    #[async_trait]
    impl Worker<J> for Log {
        async fn run(&self, job: J) {
            self.events
                .lock()
                .unwrap()
                .push(format!("start {}", job.id));
            // Hold the lane until the test releases a permit.
            self.gate.acquire().await.unwrap().forget();
            self.events.lock().unwrap().push(format!("end {}", job.id));
        }
        async fn superseded(&self, job: J, by: String) {
            self.events
                .lock()
                .unwrap()
                .push(format!("superseded {} by {by}", job.id));
        }
    }

    fn job(id: &str, lane: &'static str, sup: bool) -> J {
        J {
            id: id.into(),
            lane,
            sup,
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    #[tokio::test]
    async fn newest_waiting_job_supersedes_older_ones_and_lanes_are_independent() {
        let log = Arc::new(Log::default());
        let seq = Sequencer::new(log.clone());
        seq.submit(job("01", "ES", true));
        settle().await;
        seq.submit(job("02", "ES", true));
        seq.submit(job("03", "ES", true));
        seq.submit(job("04", "NQ", true));
        settle().await;
        {
            let ev = log.events.lock().unwrap().clone();
            assert!(ev.contains(&"start 01".to_string()));
            assert!(ev.contains(&"superseded 02 by 03".to_string()), "{ev:?}");
            assert!(
                ev.contains(&"start 04".to_string()),
                "other lane runs in parallel: {ev:?}"
            );
            assert!(
                !ev.contains(&"start 03".to_string()),
                "one at a time per lane: {ev:?}"
            );
        }
        log.gate.add_permits(10);
        seq.idle().await;
        let ev = log.events.lock().unwrap().clone();
        let pos = |s: &str| ev.iter().position(|e| e == s).unwrap();
        assert!(pos("end 01") < pos("start 03"));
    }

    /// A worker whose superseded marks take a while: `idle` must wait for them as well as for the lanes.
    struct SlowMarks(Mutex<Vec<String>>);

    #[async_trait]
    impl Worker<J> for SlowMarks {
        async fn run(&self, job: J) {
            self.0.lock().unwrap().push(format!("ran {}", job.id));
        }
        async fn superseded(&self, job: J, _by: String) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.0
                .lock()
                .unwrap()
                .push(format!("superseded {}", job.id));
        }
    }

    #[tokio::test]
    async fn idle_waits_for_superseded_marks() {
        let w = Arc::new(SlowMarks(Mutex::new(Vec::new())));
        let seq = Sequencer::new(w.clone());
        seq.submit(job("09", "ES", true));
        seq.submit(job("08", "ES", true)); // older than the one queued: superseded at once
        seq.idle().await;
        let ev = w.0.lock().unwrap().clone();
        assert!(ev.contains(&"superseded 08".to_string()), "{ev:?}");
        assert!(ev.contains(&"ran 09".to_string()), "{ev:?}");
    }

    #[tokio::test]
    async fn a_job_older_than_the_running_one_is_stale_and_sync_jobs_always_run() {
        let log = Arc::new(Log::default());
        let seq = Sequencer::new(log.clone());
        seq.submit(job("05", "ES", true));
        settle().await;
        seq.submit(job("03", "ES", true)); // arrived late, older than the running one
        seq.submit(job("06", "ES", false));
        seq.submit(job("07", "ES", false));
        settle().await;
        log.gate.add_permits(10);
        seq.idle().await;
        let ev = log.events.lock().unwrap().clone();
        assert!(ev.contains(&"superseded 03 by 05".to_string()), "{ev:?}");
        let starts: Vec<&String> = ev.iter().filter(|e| e.starts_with("start")).collect();
        assert_eq!(starts, ["start 05", "start 06", "start 07"]);
    }
}
