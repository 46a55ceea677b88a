//! A burst of GitHub-signed alerts from concurrent senders, for killing a relay in the middle of one: the
//! senders keep every acknowledgement they got, and skip what fails once the relay is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use super::signing::gh_signature;
use super::wait::eventually;

pub struct Burst {
    /// (n, alert id) of every alert the relay acknowledged (202).
    acked: Arc<Mutex<Vec<(usize, String)>>>,
    senders: Vec<JoinHandle<()>>,
}

impl Burst {
    /// Starts `senders` tasks that between them POST `body(n)` for every n below `total`, signed, as JSON, to
    /// `url` (a `github-style` source).
    pub fn start(
        url: String,
        senders: usize,
        total: usize,
        body: impl Fn(usize) -> String + Send + Sync + 'static,
    ) -> Burst {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(body);
        let client = reqwest::Client::new();
        let senders = (0..senders)
            .map(|_| {
                let (acked, next, body, client, url) = (
                    acked.clone(),
                    next.clone(),
                    body.clone(),
                    client.clone(),
                    url.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= total {
                            break;
                        }
                        let body = body(n);
                        let Ok(resp) = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("X-Hub-Signature-256", gh_signature(&body))
                            .body(body)
                            .send()
                            .await
                        else {
                            continue;
                        };
                        if resp.status().as_u16() == 202 {
                            let v: Value = resp.json().await.unwrap_or(Value::Null);
                            if let Some(id) = v["alertId"].as_str() {
                                acked.lock().unwrap().push((n, id.to_string()));
                            }
                        }
                    }
                })
            })
            .collect();
        Burst { acked, senders }
    }

    /// Waits (`within` at most) until at least `n` alerts are acknowledged.
    pub async fn wait_acked(&self, n: usize, within: Duration) {
        let count = || {
            let c = self.acked.lock().unwrap().len();
            async move { c }
        };
        eventually(format!("{n} acknowledged alerts"), within, count, |c| {
            *c >= n
        })
        .await;
    }

    /// Waits for every sender to finish; returns (n, alert id) of each acknowledged alert.
    pub async fn finish(self) -> Vec<(usize, String)> {
        for s in self.senders {
            s.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}
