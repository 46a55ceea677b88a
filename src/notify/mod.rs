//! Notifications: telling a person, on the channels of `[notify]`, what needs a look — an execution that
//! failed or whose outcome is unknown, and its settlement; the kill switch; the broker refusing the token or
//! its add-on gone; a burst of refused webhooks; a contract roll and positions left in an old month.
//!
//! Sending never stands in an alert's way: [`Notifier::notify`] only puts the event on each interested
//! channel's bounded queue and returns. Each channel has its own queue and its own task, so a dead channel
//! (refused connections, a server that never answers) delays nothing but its own messages; when its queue
//! is full, new events for it are dropped, counted and logged. Each delivery is logged: INFO when sent, one
//! WARN when given up. A channel is logged by name and kind only, never by URL or token.
//!
//! - `event`: the [`Event`]s, their stable names (what `events = [...]` lists) and their text;
//! - `config`: the `[notify]` section and its validation;
//! - `channel`: a channel with its secrets resolved, its filter, and redaction;
//! - `webhook`, `telegram`, `discord`, `ntfy`: the request each kind makes;
//! - `send`: one delivery, with retries and a bound.

mod channel;
mod config;
mod discord;
mod event;
mod ntfy;
mod send;
mod telegram;
mod webhook;

pub use channel::{Channel, ChannelError, Outgoing, Target};
pub use config::{ChannelConfig, ChannelKind, NotifyConfig, NotifyConfigError};
pub use event::{Event, Notice, EVENT_NAMES};
pub use send::{deliver, Delivery, RetryPolicy};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::executor::ExecError;
use crate::metrics::Metrics;

/// Events waiting per channel; beyond this a channel that cannot keep up loses new ones.
pub const QUEUE_PER_CHANNEL: usize = 64;

/// A channel's end of its queue.
struct Lane {
    name: String,
    kind: ChannelKind,
    wants: Box<dyn Fn(&str) -> bool + Send + Sync>,
    tx: mpsc::Sender<Arc<Notice>>,
}

/// Sends events to the configured channels, in the background.
pub struct Notifier {
    lanes: Vec<Lane>,
    metrics: Arc<Metrics>,
    /// Executors whose last telling answer was a refused token or a missing add-on.
    degraded: Mutex<HashSet<String>>,
}

impl Notifier {
    /// A notifier with no channels: every event is dropped silently.
    pub fn disabled(metrics: Arc<Metrics>) -> Notifier {
        Notifier {
            lanes: Vec::new(),
            metrics,
            degraded: Mutex::default(),
        }
    }

    /// Resolves the channels' secrets and starts one task per channel. Must be called inside the tokio
    /// runtime when `[notify]` has channels.
    pub fn start(cfg: &NotifyConfig, metrics: Arc<Metrics>) -> Result<Notifier, ChannelError> {
        let channels = cfg
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| Channel::from_config(i, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Notifier::with_channels(
            channels,
            RetryPolicy::default(),
            metrics,
        ))
    }

    /// Starts one task per channel, each delivering under `policy`.
    pub fn with_channels(
        channels: Vec<Channel>,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Notifier {
        let client = reqwest::Client::builder()
            .user_agent(concat!("alert-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mut lanes = Vec::new();
        for channel in channels {
            let (tx, rx) = mpsc::channel(QUEUE_PER_CHANNEL);
            let channel = Arc::new(channel);
            let c = channel.clone();
            lanes.push(Lane {
                name: channel.name.clone(),
                kind: channel.kind,
                wants: Box::new(move |name| c.wants(name)),
                tx,
            });
            tokio::spawn(drain(channel, rx, client.clone(), policy, metrics.clone()));
        }
        Notifier {
            lanes,
            metrics,
            degraded: Mutex::default(),
        }
    }

    /// The channels, as `name (kind)`, for the start-up lines.
    pub fn describe(&self) -> Vec<String> {
        self.lanes
            .iter()
            .map(|l| format!("{} ({})", l.name, l.kind.as_str()))
            .collect()
    }

    /// Queues `event` for every channel that wants it. Never waits and never fails: a full queue drops the
    /// event for that channel (logged, and counted as `dropped`).
    pub fn notify(&self, event: Event) {
        let name = event.name();
        let mut notice = None;
        for lane in self.lanes.iter().filter(|l| (l.wants)(name)) {
            let notice = notice
                .get_or_insert_with(|| {
                    Arc::new(Notice {
                        id: format!("msg_{}", ulid::Ulid::new()),
                        at: SystemClock.now(),
                        event: event.clone(),
                    })
                })
                .clone();
            if lane.tx.try_send(notice).is_err() {
                self.metrics.notification(&lane.name, "dropped");
                tracing::warn!(channel = %lane.name, kind = lane.kind.as_str(), event = name, "notification dropped: the channel's queue is full (it is slow or down)");
            }
        }
    }

    /// Tells the notifier how an attempt on `executor` ended (`None`: it succeeded). A refused token or a
    /// missing add-on makes the executor degraded, notified once; its next success notifies the recovery.
    /// Other errors (a refused order, a timeout) say nothing about the connection and change nothing.
    pub fn broker_answered(&self, executor: &str, error: Option<&ExecError>) {
        let event = {
            let mut degraded = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
            match error {
                Some(e @ (ExecError::Unauthorized(_) | ExecError::NotConnected)) => degraded
                    .insert(executor.to_string())
                    .then(|| Event::BrokerDegraded {
                        executor: executor.to_string(),
                        reason: e.to_string(),
                    }),
                Some(_) => None,
                None => degraded.remove(executor).then(|| Event::BrokerRecovered {
                    executor: executor.to_string(),
                }),
            }
        };
        if let Some(e) = event {
            self.notify(e);
        }
    }
}

/// One channel's task: delivers its notices one after another until the notifier is dropped.
async fn drain(
    channel: Arc<Channel>,
    mut rx: mpsc::Receiver<Arc<Notice>>,
    client: reqwest::Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
) {
    while let Some(notice) = rx.recv().await {
        let (name, kind, event) = (&channel.name, channel.kind.as_str(), notice.event.name());
        match deliver(&client, &channel, &notice, &policy).await {
            Delivery::Sent { attempts } => {
                metrics.notification(name, "sent");
                tracing::info!(channel = %name, kind, event, id = %notice.id, attempts, "notification sent");
            }
            Delivery::GaveUp { attempts, error } => {
                metrics.notification(name, "failed");
                tracing::warn!(channel = %name, kind, event, id = %notice.id, attempts, %error, "notification not delivered: gave up");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake endpoint that records the body of every request and answers 200.
    async fn recorder() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut tmp).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&tmp[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                let _ = tx.send(serde_json::from_str(body).unwrap_or_default());
                                let _ = sock
                                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, rx)
    }

    fn ntfy(name: &str, server: &str, events: &[&str]) -> Channel {
        Channel::new(
            name.into(),
            ChannelKind::Ntfy,
            &events.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            Duration::from_millis(300),
            Target::Ntfy(ntfy::Ntfy {
                server: server.into(),
                topic: name.into(),
                token: None,
            }),
            Vec::new(),
        )
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<serde_json::Value>) -> serde_json::Value {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a notification within 5 s")
            .unwrap()
    }

    /// Each channel gets the events its filter names, and only those.
    #[tokio::test]
    async fn each_channel_gets_what_its_filter_names() {
        let (url, mut got) = recorder().await;
        let metrics = Arc::new(Metrics::default());
        let n = Notifier::with_channels(
            vec![
                ntfy("all", &url, &["*"]),
                ntfy("kill", &url, &["kill_switch"]),
            ],
            RetryPolicy::default(),
            metrics.clone(),
        );
        n.notify(Event::BrokerRecovered {
            executor: "x".into(),
        });
        assert_eq!(next(&mut got).await["topic"], "all");
        n.notify(Event::KillSwitch { on: true });
        let mut topics = [next(&mut got).await, next(&mut got).await];
        topics.sort_by_key(|v| v["topic"].to_string());
        assert_eq!(topics[0]["topic"], "all");
        assert_eq!(topics[1]["topic"], "kill");
        assert_eq!(topics[1]["title"], "Kill switch ON");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), got.recv())
                .await
                .is_err(),
            "nothing more"
        );
    }

    /// A channel whose endpoint never answers fills its own queue; `notify` never waits, and the other
    /// channel still gets every event at once.
    #[tokio::test]
    async fn a_dead_channel_blocks_neither_the_caller_nor_the_others() {
        let (url, mut got) = recorder().await;
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}", silent.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let metrics = Arc::new(Metrics::default());
        let n = Notifier::with_channels(
            vec![ntfy("dead", &dead, &["*"]), ntfy("live", &url, &["*"])],
            RetryPolicy::default(),
            metrics.clone(),
        );
        let events = QUEUE_PER_CHANNEL + 10;
        let mut slowest = Duration::ZERO;
        for _ in 0..events {
            let started = std::time::Instant::now();
            n.notify(Event::KillSwitch { on: false });
            slowest = slowest.max(started.elapsed());
            assert_eq!(next(&mut got).await["topic"], "live");
        }
        assert!(slowest < Duration::from_millis(50), "{slowest:?}");
        let text = metrics.render(crate::metrics::Snapshot {
            queue_depths: Vec::new(),
            journal_records: 0,
            journal_bytes: 0,
            unknown_unsettled: 0,
            kill_switch: false,
        });
        // The dead channel's task holds one notice in delivery; the queue holds the next QUEUE_PER_CHANNEL.
        let dropped = format!(
            "alert_relay_notifications_total{{channel=\"dead\",outcome=\"dropped\"}} {}",
            events - QUEUE_PER_CHANNEL - 1
        );
        assert!(
            text.lines().any(|l| l == dropped),
            "{dropped} missing in\n{text}"
        );
        assert!(
            text.contains("alert_relay_notifications_total{channel=\"live\",outcome=\"sent\"}"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_broker_degrades_once_and_recovers_once() {
        let (url, mut got) = recorder().await;
        let n = Notifier::with_channels(
            vec![ntfy("ops", &url, &["broker.degraded", "broker.recovered"])],
            RetryPolicy::default(),
            Arc::new(Metrics::default()),
        );
        n.broker_answered("crosstrade-http", None);
        n.broker_answered("crosstrade-http", Some(&ExecError::NotConnected));
        n.broker_answered(
            "crosstrade-http",
            Some(&ExecError::Unauthorized("no".into())),
        );
        n.broker_answered("crosstrade-http", Some(&ExecError::Rejected("bad".into())));
        let v = next(&mut got).await;
        assert_eq!(v["title"], "Broker degraded: crosstrade-http");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("NinjaTrader add-on not connected."),
            "{v}"
        );
        n.broker_answered("crosstrade-http", None);
        n.broker_answered("crosstrade-http", None);
        assert_eq!(
            next(&mut got).await["title"],
            "Broker recovered: crosstrade-http"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), got.recv())
                .await
                .is_err(),
            "one degraded, one recovered"
        );
    }
}
