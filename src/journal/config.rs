//! The `[journal]` section of the config file: the idempotency window, retention and the page cache.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// How long an idempotency key blocks a repeat delivery.
    pub idempotency_window_secs: u64,
    /// How often expired idempotency keys and old records are pruned.
    pub prune_interval_secs: u64,
    /// Records older than this are pruned (finished ones only).
    pub retention_days: u64,
    /// At most this many records are kept; the oldest finished ones go first.
    pub max_records: usize,
    /// Memory the database may use as a page cache, in MiB (sled's default, 1 GiB, lets the process grow
    /// with the journal).
    pub cache_mb: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            idempotency_window_secs: 24 * 3600,
            prune_interval_secs: 300,
            retention_days: 30,
            max_records: 100_000,
            cache_mb: 16,
        }
    }
}

/// A `[journal]` setting that cannot work with the others; the message names the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalConfigError {
    /// Records would be pruned while their idempotency key still blocks repeats.
    #[error("journal.retention_days must cover journal.idempotency_window_secs: a repeat delivery must find its original record")]
    RetentionShorterThanWindow,
    #[error("journal.max_records must be at least 1000")]
    TooFewRecords,
}

impl JournalConfig {
    /// Checks the settings together; the message names the keys (`journal.*`) and what to fix.
    pub fn validate(&self) -> Result<(), JournalConfigError> {
        if self.retention_days.saturating_mul(86_400) < self.idempotency_window_secs {
            return Err(JournalConfigError::RetentionShorterThanWindow);
        }
        if self.max_records < 1000 {
            return Err(JournalConfigError::TooFewRecords);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages name the keys as written in the config file; the defaults pass.
    #[test]
    fn validation_names_the_journal_keys() {
        assert_eq!(JournalConfig::default().validate(), Ok(()));
        let short = JournalConfig {
            retention_days: 1,
            idempotency_window_secs: 86_401,
            ..JournalConfig::default()
        };
        let e = short.validate().unwrap_err();
        assert_eq!(e, JournalConfigError::RetentionShorterThanWindow);
        assert_eq!(
            e.to_string(),
            "journal.retention_days must cover journal.idempotency_window_secs: a repeat delivery must find its original record"
        );
        let few = JournalConfig {
            max_records: 999,
            ..JournalConfig::default()
        };
        let e = few.validate().unwrap_err();
        assert_eq!(e, JournalConfigError::TooFewRecords);
        assert_eq!(e.to_string(), "journal.max_records must be at least 1000");
        let e = toml::from_str::<JournalConfig>("max_record = 5000").unwrap_err();
        assert!(e.to_string().contains("max_record"), "{e}");
        let set: JournalConfig = toml::from_str("cache_mb = 64").unwrap();
        assert_eq!((set.cache_mb, set.max_records), (64, 100_000));
    }
}
