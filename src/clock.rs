//! The wall clock, in one place: epoch milliseconds ([`now_ms`], [`Clock::now_ms`]) and [`Timestamp`], the
//! point in time records and orders show as RFC 3339. Time rules (the paper broker's cancel latency) take a
//! [`Clock`], so tests inject a [`ManualClock`] and step it instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The current time as a [`Timestamp`].
    fn now(&self) -> Timestamp {
        Timestamp(self.now_ms())
    }
}

/// Milliseconds since the Unix epoch, by the wall clock (0 if the system clock is set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// 2026-01-01T00:00:00Z: a fixed, readable start for tests.
    pub const DEFAULT_START_MS: u64 = 1_767_225_600_000;

    pub fn new(start_ms: u64) -> Self {
        ManualClock(AtomicU64::new(start_ms))
    }

    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(Self::DEFAULT_START_MS)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A point in time kept as epoch milliseconds (so time rules are plain arithmetic) and shown as an RFC 3339
/// string with milliseconds, which is what API clients and the stored JSON see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn as_ms(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)?;
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map_err(serde::de::Error::custom)?
            .as_millis() as u64;
        Ok(Timestamp(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::default();
        assert_eq!(c.now(), Timestamp(ManualClock::DEFAULT_START_MS));
        c.advance(250);
        assert_eq!(c.now_ms(), ManualClock::DEFAULT_START_MS + 250);
        c.set(5);
        assert_eq!(c.now().as_ms(), 5);
    }

    /// Records and orders show times as RFC 3339 with milliseconds, and read them back to the millisecond.
    #[test]
    fn a_timestamp_shows_rfc3339_millis_and_reads_back() {
        let t = Timestamp(ManualClock::DEFAULT_START_MS + 123);
        assert_eq!(t.to_string(), "2026-01-01T00:00:00.123Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        let wall = SystemClock.now_ms();
        assert!(wall > ManualClock::DEFAULT_START_MS && now_ms() >= wall);
    }
}
