//! Delivering one notice on one channel: a few attempts, each under the channel's timeout, retrying what
//! may pass (a connection that failed or timed out, 5xx, 429 after its `Retry-After` up to a cap) and not
//! what will not (any other 4xx: a wrong token, an unknown chat). The whole delivery is bounded:
//! `attempts × timeout` plus the waits between them.

use std::time::{Duration, SystemTime};

use super::channel::Channel;
use super::event::Notice;

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// Wait before the second attempt; doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        attempts: u32,
    },
    /// `error` is redacted: it never holds the channel's secrets.
    GaveUp {
        attempts: u32,
        error: String,
    },
}

/// How much of an error answer's body goes into the log line.
const BODY_SNIPPET_CHARS: usize = 200;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What one attempt came to.
enum Attempt {
    Sent,
    /// Worth another try, after `after` if the server said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Permanent(String),
}

async fn attempt(client: &reqwest::Client, channel: &Channel, notice: &Notice) -> Attempt {
    let out = channel.request(notice, unix_now());
    let mut req = client
        .post(&out.url)
        .timeout(channel.timeout)
        .body(out.body);
    for (k, v) in &out.headers {
        req = req.header(k, v);
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        // The error's own text names the URL, which may hold a token: only its kind and causes are kept.
        Err(e) => {
            let builder = e.is_builder();
            let error = describe(&e.without_url());
            return if builder {
                Attempt::Permanent(error)
            } else {
                Attempt::Retry { error, after: None }
            };
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Attempt::Sent;
    }
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp.text().await.unwrap_or_default();
    let snippet: String = body.trim().chars().take(BODY_SNIPPET_CHARS).collect();
    let error = if snippet.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {snippet}", status.as_u16())
    };
    if status.as_u16() == 429 || status.is_server_error() {
        Attempt::Retry { error, after }
    } else {
        Attempt::Permanent(error)
    }
}

/// An error and its causes on one line ("timed out", "cannot connect: ... Connection refused").
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut parts = vec![if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    }];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Delivers `notice` on `channel`, trying up to `policy.attempts` times.
pub async fn deliver(
    client: &reqwest::Client,
    channel: &Channel,
    notice: &Notice,
    policy: &RetryPolicy,
) -> Delivery {
    let mut backoff = policy.first_backoff;
    let mut n = 0;
    loop {
        n += 1;
        let error = match attempt(client, channel, notice).await {
            Attempt::Sent => return Delivery::Sent { attempts: n },
            Attempt::Retry { error, after } if n < policy.attempts => {
                let wait = after.map_or(backoff, |a| a.min(policy.max_retry_after));
                tracing::debug!(channel = %channel.name, kind = channel.kind.as_str(), event = notice.event.name(), error = %channel.redact(&error), retry_in_ms = wait.as_millis() as u64, "notification attempt failed; retrying");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(policy.max_backoff);
                continue;
            }
            Attempt::Retry { error, .. } | Attempt::Permanent(error) => error,
        };
        return Delivery::GaveUp {
            attempts: n,
            error: channel.redact(&error),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::tests::notice;
    use crate::notify::channel::Target;
    use crate::notify::config::ChannelKind;
    use crate::notify::ntfy::Ntfy;
    use crate::secret::Secret;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers the `i`-th request with `answers[i]` (the last one repeats) and counts them.
    async fn scripted(answers: Vec<&'static str>) -> (String, Arc<Mutex<usize>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(0usize));
        let h = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let i = {
                    let mut n = h.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let answer = answers[i.min(answers.len() - 1)];
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}"), hits)
    }

    fn channel(server: &str, token: &str) -> Channel {
        Channel::new(
            "watch".into(),
            ChannelKind::Ntfy,
            &["*".to_string()],
            Duration::from_millis(500),
            Target::Ntfy(Ntfy {
                server: server.into(),
                topic: "t".into(),
                token: Some(Secret::new(token)),
            }),
            vec![token.to_string()],
        )
    }

    /// Delivers the test notice to the ntfy server at `url` with `token`, under `policy`.
    async fn deliver_to(url: &str, token: &str, policy: &RetryPolicy) -> Delivery {
        deliver(
            &reqwest::Client::new(),
            &channel(url, token),
            &notice(),
            policy,
        )
        .await
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    const E503: &str =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const E429: &str =
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 3600\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const E401: &str = "HTTP/1.1 401 Unauthorized\r\ncontent-length: 38\r\nconnection: close\r\n\r\n{\"error\":\"bad token tk_secret_value\"}  ";

    #[tokio::test]
    async fn server_errors_are_retried_until_sent() {
        let (url, hits) = scripted(vec![E503, E503, OK]).await;
        let d = deliver_to(&url, "tk", &fast()).await;
        assert_eq!(d, Delivery::Sent { attempts: 3 });
        assert_eq!(*hits.lock().unwrap(), 3);
    }

    /// A `Retry-After` of an hour is cut to the cap: the retry comes within it, not an hour later.
    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_cap() {
        let (url, hits) = scripted(vec![E429, OK]).await;
        let started = std::time::Instant::now();
        let d = deliver_to(&url, "tk", &fast()).await;
        assert_eq!(d, Delivery::Sent { attempts: 2 });
        assert_eq!(*hits.lock().unwrap(), 2);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// A refused token is not retried, and the answer echoing it is redacted.
    #[tokio::test]
    async fn client_errors_give_up_at_once_redacted() {
        let (url, hits) = scripted(vec![E401]).await;
        let d = deliver_to(&url, "tk_secret_value", &fast()).await;
        assert_eq!(
            d,
            Delivery::GaveUp {
                attempts: 1,
                error: "HTTP 401: {\"error\":\"bad token ***\"}".into()
            }
        );
        assert_eq!(*hits.lock().unwrap(), 1);
    }

    /// Nothing listening: every attempt fails fast, and the delivery gives up after the policy's attempts.
    #[tokio::test]
    async fn a_dead_endpoint_gives_up_after_the_attempts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let d = deliver_to(&url, "tk", &fast()).await;
        let Delivery::GaveUp { attempts, error } = d else {
            panic!("{d:?}")
        };
        assert_eq!(attempts, 3);
        assert!(error.starts_with("cannot connect"), "{error}");
    }

    /// A server that accepts and never answers: each attempt ends at the channel's timeout.
    #[tokio::test]
    async fn a_silent_endpoint_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = Arc::new(Mutex::new(Vec::new()));
        let h = held.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                h.lock().unwrap().push(sock);
            }
        });
        let policy = RetryPolicy {
            attempts: 2,
            ..fast()
        };
        let started = std::time::Instant::now();
        let d = deliver_to(&url, "tk", &policy).await;
        let Delivery::GaveUp { attempts, error } = d else {
            panic!("{d:?}")
        };
        assert_eq!((attempts, error.as_str()), (2, "timed out"));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }
}
