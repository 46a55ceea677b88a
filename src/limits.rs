//! Rate limits (governor): the per-source inbound limit, the per-address limit on failed authentication,
//! and the one outbound execution budget that every execution shares, served in arrival order.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

fn quota(per_second: u32, burst: u32) -> Quota {
    let per_second = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

/// Per-source inbound limits. A source's limiter is a direct one: sources are few and fixed by the config.
pub struct InboundLimits {
    per_source: HashMap<String, (DefaultDirectRateLimiter, u32, u32)>,
}

impl InboundLimits {
    pub fn new<'a>(sources: impl IntoIterator<Item = (&'a str, u32, u32)>) -> InboundLimits {
        InboundLimits {
            per_source: sources
                .into_iter()
                .map(|(name, ps, burst)| {
                    (
                        name.to_string(),
                        (RateLimiter::direct(quota(ps, burst)), ps, burst),
                    )
                })
                .collect(),
        }
    }

    /// Takes one unit of `source`'s budget, or says how long to wait and what the limit is.
    pub fn check(&self, source: &str) -> Result<(), InboundLimited> {
        let Some((limiter, ps, burst)) = self.per_source.get(source) else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| InboundLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            per_second: *ps,
            burst: *burst,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct InboundLimited {
    pub retry_after: Duration,
    pub per_second: u32,
    pub burst: u32,
}

impl InboundLimited {
    /// Whole seconds for `Retry-After`, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// Limits failed authentication attempts per client address, so a token cannot be guessed at line rate.
/// Keyed by address; `retain_recent` runs periodically so memory stays bounded under a scan.
pub struct AuthFailureLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl AuthFailureLimit {
    pub fn new(per_minute: u32) -> AuthFailureLimit {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        AuthFailureLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// Records a failed attempt; returns the wait when this address is now over its budget (the caller then
    /// answers 429 instead of 401, so guessing costs time; a correct secret is never blocked).
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        self.limiter
            .check_key(&ip)
            .err()
            .map(|nu| nu.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses that have been quiet long enough to be back at full budget.
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// The outbound execution budget, shared by every execution whatever its executor. Waiters are served in
/// arrival order (tokio's mutex is fair) and give up after `max_wait`.
pub struct OutboundLimit {
    limiter: DefaultDirectRateLimiter,
    queue: tokio::sync::Mutex<()>,
    max_wait: Duration,
    pub per_second: u32,
    pub burst: u32,
}

impl OutboundLimit {
    pub fn new(per_second: u32, burst: u32, max_wait: Duration) -> OutboundLimit {
        OutboundLimit {
            limiter: RateLimiter::direct(quota(per_second, burst)),
            queue: tokio::sync::Mutex::new(()),
            max_wait,
            per_second,
            burst,
        }
    }

    /// Waits for one unit of budget. `Ok(waited)`, or `Err(waited)` when `max_wait` ran out first.
    pub async fn acquire(&self) -> Result<Duration, Duration> {
        let start = Instant::now();
        let wait = async {
            let _turn = self.queue.lock().await;
            self.limiter.until_ready().await;
        };
        match tokio::time::timeout(self.max_wait, wait).await {
            Ok(()) => Ok(start.elapsed()),
            Err(_) => Err(start.elapsed()),
        }
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Takes one request's room for a read at the broker (its orders, its positions): every call to the
    /// broker counts against its per-user limit. No room within the maximum wait is a transient error:
    /// nothing was sent.
    pub async fn acquire_read(&self) -> Result<(), crate::executor::ExecError> {
        self.acquire().await.map(|_| ()).map_err(|_| {
            crate::executor::ExecError::Transient(
                "the outbound budget had no room for the read".into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_limit_reports_retry_after() {
        let l = InboundLimits::new([("tv", 1, 2)]);
        assert!(l.check("tv").is_ok());
        assert!(l.check("tv").is_ok());
        let e = l.check("tv").unwrap_err();
        assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_secs(1));
        assert_eq!(e.retry_after_secs(), 1);
        assert!(
            l.check("other").is_ok(),
            "unknown sources are not limited here"
        );
    }

    #[test]
    fn auth_failures_block_one_address_only() {
        let l = AuthFailureLimit::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.failed(a).is_none());
        assert!(l.failed(a).is_none());
        assert!(l.failed(a).is_some());
        assert!(l.failed(b).is_none());
        assert_eq!(l.tracked(), 2);
    }

    #[tokio::test]
    async fn outbound_waits_then_gives_up() {
        let l = OutboundLimit::new(1, 1, Duration::from_millis(100));
        assert!(l.acquire().await.is_ok());
        // The next unit is a second away: more than max_wait.
        let e = l.acquire().await.unwrap_err();
        assert!(e >= Duration::from_millis(100));
    }
}
