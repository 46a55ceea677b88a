//! In-process counters and latency histograms, rendered in Prometheus text format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (source, status) → alerts that reached that status.
    alerts: Mutex<BTreeMap<(String, String), u64>>,
    /// reason → rejected requests (including those never journaled: 401, 403...).
    rejections: Mutex<BTreeMap<String, u64>>,
    ack: Histogram,
    execution: Histogram,
    limiter_wait: Histogram,
}

impl Metrics {
    pub fn alert_status(&self, source: &str, status: &str) {
        *self
            .alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((source.to_string(), status.to_string()))
            .or_default() += 1;
    }

    pub fn rejected(&self, reason: &str) {
        *self
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason.to_string())
            .or_default() += 1;
    }

    pub fn acknowledged(&self, d: Duration) {
        self.ack.observe(d);
    }

    pub fn execution_done(&self, end_to_end: Duration) {
        self.execution.observe(end_to_end);
    }

    pub fn limiter_wait(&self, us: u64) {
        self.limiter_wait.observe(Duration::from_micros(us));
    }

    /// Prometheus text exposition; `extra` lines (gauges known to the caller) are appended.
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        out.push_str("# HELP alert_relay_alerts_total Alerts by source and status reached.\n# TYPE alert_relay_alerts_total counter\n");
        for ((source, status), n) in self.alerts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "alert_relay_alerts_total{{source=\"{source}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP alert_relay_rejections_total Webhook requests (POST /hooks/{source}) refused, by reason; the API's records count in alert_relay_alerts_total by status.\n# TYPE alert_relay_rejections_total counter\n");
        for (reason, n) in self
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "alert_relay_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        self.ack.render(
            &mut out,
            "alert_relay_ack_latency_seconds",
            "Receipt to durable acknowledgement.",
        );
        self.execution.render(
            &mut out,
            "alert_relay_execution_latency_seconds",
            "Receipt to execution finished (bracket live or failed).",
        );
        self.limiter_wait.render(
            &mut out,
            "alert_relay_limiter_wait_seconds",
            "Time executions waited for the outbound budget.",
        );
        out.push_str(extra);
        out
    }
}
