//! The relay's Prometheus metrics, kept and encoded by `prometheus-client` (OpenMetrics text at
//! `GET /metrics`, label values escaped by the encoder).

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    source: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    source: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    account: String,
    instrument: String,
}

/// What the relay knows only when asked: read at each scrape.
pub struct Snapshot {
    /// Executions waiting per (account, instrument) lane.
    pub queue_depths: Vec<((String, String), usize)>,
    pub journal_records: u64,
    pub journal_bytes: u64,
    /// Executions whose outcome is unknown and not settled yet.
    pub unknown_unsettled: usize,
    pub kill_switch: bool,
}

pub struct Metrics {
    registry: Registry,
    alerts: Family<AlertLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    ack: Histogram,
    execution: Histogram,
    limiter_wait: Histogram,
    queue_depth: Family<LaneLabels, Gauge>,
    journal_records: Gauge,
    journal_bytes: Gauge,
    unknown_unsettled: Gauge,
    kill_switch: Gauge,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let alerts = Family::<AlertLabels, Counter>::default();
        let rejections = Family::<ReasonLabels, Counter>::default();
        let histogram = || Histogram::new(BUCKETS);
        let (ack, execution, limiter_wait) = (histogram(), histogram(), histogram());
        let queue_depth = Family::<LaneLabels, Gauge>::default();
        let (journal_records, journal_bytes) = (Gauge::default(), Gauge::default());
        let (unknown_unsettled, kill_switch) = (Gauge::default(), Gauge::default());
        registry.register(
            "alert_relay_alerts",
            "Alerts by source and status reached",
            alerts.clone(),
        );
        registry.register(
            "alert_relay_rejections",
            "Webhook requests (POST /hooks/{source}) refused, by source (unknown for a source not configured) and reason; the API's records count in alert_relay_alerts_total by status",
            rejections.clone(),
        );
        registry.register(
            "alert_relay_ack_latency_seconds",
            "Receipt to durable acknowledgement",
            ack.clone(),
        );
        registry.register(
            "alert_relay_execution_latency_seconds",
            "Receipt to execution finished (bracket live or failed)",
            execution.clone(),
        );
        registry.register(
            "alert_relay_limiter_wait_seconds",
            "Time executions waited for the outbound budget",
            limiter_wait.clone(),
        );
        registry.register(
            "alert_relay_queue_depth",
            "Executions waiting per lane",
            queue_depth.clone(),
        );
        registry.register(
            "alert_relay_journal_records",
            "Records in the journal",
            journal_records.clone(),
        );
        registry.register(
            "alert_relay_journal_bytes",
            "Journal size on disk",
            journal_bytes.clone(),
        );
        registry.register(
            "alert_relay_unknown_unsettled",
            "Executions whose outcome is unknown and not settled yet (the bracket may be live)",
            unknown_unsettled.clone(),
        );
        registry.register(
            "alert_relay_kill_switch",
            "1 while the kill switch is on (nothing executes)",
            kill_switch.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "alert_relay_notifications",
            "Notifications by channel and outcome: sent, failed (gave up after its attempts), dropped (the channel's queue was full)",
            notifications.clone(),
        );
        Metrics {
            registry,
            unknown_unsettled,
            kill_switch,
            alerts,
            rejections,
            ack,
            execution,
            limiter_wait,
            queue_depth,
            journal_records,
            journal_bytes,
            notifications,
        }
    }
}

impl Metrics {
    pub fn alert_status(&self, source: &str, status: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                source: source.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// A refused webhook of `source` (a configured source, else `unknown`), by reason.
    pub fn rejected(&self, source: &str, reason: &str) {
        self.rejections
            .get_or_create(&ReasonLabels {
                source: source.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A notification on `channel` (its configured name) ended `outcome`: sent, failed or dropped.
    pub fn notification(&self, channel: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn acknowledged(&self, d: Duration) {
        self.ack.observe(d.as_secs_f64());
    }

    pub fn execution_done(&self, end_to_end: Duration) {
        self.execution.observe(end_to_end.as_secs_f64());
    }

    pub fn limiter_wait(&self, us: u64) {
        self.limiter_wait.observe(us as f64 / 1e6);
    }

    /// The exposition, with the gauges set from `now`.
    pub fn render(&self, now: Snapshot) -> String {
        // Lanes come and go: only the current ones are reported.
        self.queue_depth.clear();
        for ((account, instrument), n) in now.queue_depths {
            self.queue_depth
                .get_or_create(&LaneLabels {
                    account,
                    instrument,
                })
                .set(n as i64);
        }
        self.journal_records.set(now.journal_records as i64);
        self.journal_bytes.set(now.journal_bytes as i64);
        self.unknown_unsettled.set(now.unknown_unsettled as i64);
        self.kill_switch.set(i64::from(now.kill_switch));
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(lanes: &[(&str, &str, usize)]) -> Snapshot {
        Snapshot {
            queue_depths: lanes
                .iter()
                .map(|(a, i, n)| ((a.to_string(), i.to_string()), *n))
                .collect(),
            journal_records: 7,
            journal_bytes: 4096,
            unknown_unsettled: 2,
            kill_switch: true,
        }
    }

    #[test]
    fn counters_histograms_and_gauges_render() {
        let m = Metrics::default();
        m.alert_status("tradingview", "executed");
        m.alert_status("tradingview", "executed");
        m.rejected("unknown", "not_found");
        m.acknowledged(Duration::from_micros(700));
        m.notification("phone", "sent");
        let text = m.render(snapshot(&[("Sim101", "ES 12-26", 3)]));
        for line in [
            "alert_relay_alerts_total{source=\"tradingview\",status=\"executed\"} 2",
            "alert_relay_rejections_total{source=\"unknown\",reason=\"not_found\"} 1",
            "alert_relay_ack_latency_seconds_count 1",
            "alert_relay_ack_latency_seconds_bucket{le=\"0.001\"} 1",
            "alert_relay_ack_latency_seconds_bucket{le=\"0.0005\"} 0",
            "alert_relay_queue_depth{account=\"Sim101\",instrument=\"ES 12-26\"} 3",
            "alert_relay_journal_records 7",
            "alert_relay_journal_bytes 4096",
            "alert_relay_unknown_unsettled 2",
            "alert_relay_kill_switch 1",
            "alert_relay_notifications_total{channel=\"phone\",outcome=\"sent\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let text = m.render(snapshot(&[]));
        assert!(!text.contains("alert_relay_queue_depth{"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.alert_status("a\"b\\c\nd", "executed");
        let text = m.render(snapshot(&[]));
        assert!(
            text.contains(r#"alert_relay_alerts_total{source="a\"b\\c\nd",status="executed"} 1"#),
            "{text}"
        );
    }
}
