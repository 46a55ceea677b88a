//! The most recent refused webhooks, in memory: what `GET /api/refusals` and `alert-relay refusals` show, so
//! a wrong secret, a broken TradingView message or a blocked address can be found after the fact. Bounded
//! (the oldest are dropped); never the secret or the body.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::{Clock, SystemClock};

/// How many refusals are kept by default.
pub const DEFAULT_KEPT: usize = 1000;
/// More refusals than this from one source within [`BURST_WINDOW`] is a burst: `/healthz` turns degraded,
/// and the refusal that starts it is notified (`refusals.burst`).
pub const BURST_OVER: usize = 10;
pub const BURST_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// One refused webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// When, RFC 3339.
    pub at: String,
    pub at_ms: u64,
    pub source: String,
    /// The client's address as far as it can be believed.
    pub address: String,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// The error message the sender got.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The last `cap` refusals.
pub struct RefusalLog {
    cap: usize,
    kept: Mutex<VecDeque<Refusal>>,
    /// When each source's current burst was first reported (`burst_started`).
    bursts_noted: Mutex<std::collections::HashMap<String, u64>>,
}

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        RefusalLog::new(DEFAULT_KEPT)
    }
}

impl RefusalLog {
    pub fn new(cap: usize) -> RefusalLog {
        RefusalLog {
            cap: cap.max(1),
            kept: Mutex::new(VecDeque::new()),
            bursts_noted: Mutex::default(),
        }
    }

    /// Keeps one refusal, stamped now; the oldest goes when the log is full.
    pub fn push(&self, source: &str, address: &str, status: u16, reason: &str, hint: Option<&str>) {
        let now = SystemClock.now();
        let r = Refusal {
            at: now.to_string(),
            at_ms: now.as_ms(),
            source: source.chars().take(64).collect(),
            address: address.to_string(),
            status,
            reason: reason.to_string(),
            hint: hint.map(str::to_string),
        };
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == self.cap {
            kept.pop_front();
        }
        kept.push_back(r);
    }

    /// Sources with more than `over` refusals since `since_ms`, with their count and latest reason.
    pub fn bursts(&self, since_ms: u64, over: usize) -> Vec<(String, usize, String)> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_source: std::collections::BTreeMap<&str, (usize, &str)> = Default::default();
        for r in kept.iter().filter(|r| r.at_ms >= since_ms) {
            let e = by_source.entry(&r.source).or_insert((0, ""));
            e.0 += 1;
            e.1 = &r.reason;
        }
        by_source
            .into_iter()
            .filter(|(_, (n, _))| *n > over)
            .map(|(s, (n, last))| (s.to_string(), n, last.to_string()))
            .collect()
    }

    /// `Some((count, latest reason))` when `source` has more than `over` refusals since `since_ms` and no
    /// burst of it was reported since then: once per source per window, however many refusals follow.
    pub fn burst_started(
        &self,
        source: &str,
        since_ms: u64,
        over: usize,
    ) -> Option<(usize, String)> {
        let mut noted = self.bursts_noted.lock().unwrap_or_else(|p| p.into_inner());
        if noted.get(source).is_some_and(|at| *at >= since_ms) {
            return None;
        }
        let (count, last) = {
            let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            let mine = kept
                .iter()
                .filter(|r| r.at_ms >= since_ms && r.source == source);
            let (n, last) = mine.fold((0, None), |(n, _), r| (n + 1, Some(r)));
            (n, last.map(|r| r.reason.clone()).unwrap_or_default())
        };
        if count <= over {
            return None;
        }
        noted.insert(source.to_string(), SystemClock.now().as_ms());
        Some((count, last))
    }

    /// Newest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<Refusal> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let log = RefusalLog::new(2);
        log.push("tv", "10.0.0.1", 401, "bad secret", Some("check it"));
        log.push("tv", "10.0.0.1", 400, "unparsable", None);
        log.push("nope", "10.0.0.2", 404, "unknown source", None);
        let r = log.recent(10);
        let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [404, 400], "the oldest dropped, newest first");
        assert_eq!(log.recent(1)[0].source, "nope");
    }

    #[test]
    fn a_burst_is_more_than_the_threshold_from_one_source() {
        let log = RefusalLog::new(100);
        for _ in 0..11 {
            log.push("tv", "10.0.0.1", 400, "unparsable", None);
        }
        for _ in 0..10 {
            log.push("sig", "10.0.0.2", 401, "bad", None);
        }
        let b = log.bursts(0, 10);
        assert_eq!(b, [("tv".to_string(), 11, "unparsable".to_string())]);
        assert!(log.bursts(u64::MAX, 10).is_empty(), "none in the window");
    }

    /// The refusal that takes a source over the threshold starts a burst; later ones in the same window do
    /// not, nor do other sources' refusals.
    #[test]
    fn a_burst_starts_once_per_window() {
        let log = RefusalLog::new(100);
        let mut started = Vec::new();
        for i in 0..25 {
            log.push("tv", "10.0.0.1", 401, &format!("bad secret {i}"), None);
            log.push("sig", "10.0.0.2", 401, "bad", None);
            if let Some(b) = log.burst_started("tv", 0, 10) {
                started.push((i, b));
            }
        }
        assert_eq!(started, [(10, (11, "bad secret 10".to_string()))]);
        assert_eq!(
            log.burst_started("tv", u64::MAX, 10),
            None,
            "none in a later window"
        );
        assert!(
            log.burst_started("sig", 0, 10).is_some(),
            "each source its own"
        );
    }
}
