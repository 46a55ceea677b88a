//! Reading records back in bulk: [`ListFilter`] and `list` (newest first), `for_each` (oldest first, one
//! at a time), and the filter values as people type them ([`parse_time`], [`parse_status`]).

use std::time::UNIX_EPOCH;

use super::{Journal, JournalError};
use crate::clock::now_ms;
use crate::record::{AlertRecord, Status};

/// Filters for listing records, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub source: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// An instrument of one of the record's requests: the contract (`ES 03-27`) or its root (`ES`), in any
    /// case.
    pub instrument: Option<String>,
    pub limit: usize,
}

impl ListFilter {
    /// Whether `rec` passes the status, source, time and instrument filters (`limit` aside).
    pub fn matches(&self, rec: &AlertRecord) -> bool {
        self.status.map_or(true, |s| rec.status == s)
            && self.source.as_ref().map_or(true, |s| &rec.source == s)
            && self.since_ms.map_or(true, |s| rec.received_at_ms >= s)
            && self.until_ms.map_or(true, |u| rec.received_at_ms <= u)
            && self.instrument.as_deref().map_or(true, |want| {
                rec.executions
                    .iter()
                    .any(|e| instrument_matches(e.request.instrument(), want))
            })
    }
}

/// `ES 03-27` is matched by itself and by its root `ES` (not `MES`), in any case.
fn instrument_matches(instrument: &str, want: &str) -> bool {
    let want = want.trim();
    instrument.eq_ignore_ascii_case(want)
        || instrument
            .split_whitespace()
            .next()
            .is_some_and(|root| root.eq_ignore_ascii_case(want))
}

impl Journal {
    /// Records newest first, filtered.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<AlertRecord>, JournalError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let mut out = Vec::new();
        for item in self.alerts.iter().rev() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k).to_string();
            let Some(rec) = self.merged(&id, &v)? else {
                continue;
            };
            // Newest first: past `since`, nothing older can match.
            if filter.since_ms.is_some_and(|s| rec.received_at_ms < s) {
                break;
            }
            if !filter.matches(&rec) {
                continue;
            }
            out.push(rec);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Visits every record, oldest first, without holding them all in memory.
    pub fn for_each(&self, mut f: impl FnMut(AlertRecord)) -> Result<(), JournalError> {
        for item in self.alerts.iter() {
            let (k, v) = item?;
            if let Some(rec) = self.merged(&String::from_utf8_lossy(&k), &v)? {
                f(rec);
            }
        }
        Ok(())
    }
}

/// A record filter value as typed (`?since=`, `--status`) that is not one; the message lists what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("'{given}' is not a time; use RFC 3339 (2026-11-27T18:00:00Z), unix milliseconds, or an age (7d, 12h)")]
    NotATime { given: String },
    #[error("'{given}' is not a status; use one of {}", Status::ALL.map(|s| s.as_str()).join(", "))]
    NotAStatus { given: String },
}

/// A time for record filters: unix milliseconds, RFC 3339 (`2026-11-27T18:00:00Z`), or an age (`7d`, `12h`)
/// meaning that long before now. The error says which forms are accepted.
pub fn parse_time(v: &str) -> Result<u64, FilterError> {
    let t = v.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    let parsed = match humantime::parse_rfc3339_weak(t) {
        Ok(at) => at
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        Err(_) => humantime::parse_duration(t)
            .ok()
            .map(|age| now_ms().saturating_sub(age.as_millis() as u64)),
    };
    parsed.ok_or_else(|| FilterError::NotATime {
        given: v.to_string(),
    })
}

/// A record status by name; the error lists the names.
pub fn parse_status(v: &str) -> Result<Status, FilterError> {
    Status::parse(&v.trim().to_ascii_lowercase()).ok_or_else(|| FilterError::NotAStatus {
        given: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::journal::test_support::{rec, reopen};

    #[tokio::test]
    async fn records_survive_reopen_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            let mut ids = vec![];
            for i in 0..3 {
                let r = rec(&j, Some(&format!("k{i}")), "aa");
                ids.push(r.id.clone());
                j.admit(r).await.unwrap();
            }
            j.sync().await.unwrap();
            ids
        };
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        let listed: Vec<String> = j
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut expect = ids.clone();
        expect.reverse();
        assert_eq!(listed, expect);
        let updated = j
            .update(&ids[0], |r| r.reason = Some("x".into()))
            .unwrap()
            .unwrap();
        assert_eq!(updated.reason.as_deref(), Some("x"));
    }

    #[test]
    fn instrument_filter_takes_the_contract_or_its_root() {
        assert!(instrument_matches("ES 03-27", "ES 03-27"));
        assert!(instrument_matches("ES 03-27", "es"));
        assert!(instrument_matches("ES 03-27", " es 03-27 "));
        assert!(!instrument_matches("MES 03-27", "ES"));
        assert!(!instrument_matches("ES 03-27", "ES 06-27"));
        assert!(!instrument_matches("ES 03-27", "E"));
    }

    #[test]
    fn filter_values_as_typed() {
        assert_eq!(parse_time(" 1700000000000 "), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2026-11-27T18:00:00Z"), Ok(1_795_802_400_000));
        let age = parse_time("1h").unwrap();
        let expect = now_ms() - 3_600_000;
        assert!(age.abs_diff(expect) < 60_000, "{age} vs {expect}");
        let e = parse_time("yesterday").unwrap_err();
        assert_eq!(
            e,
            FilterError::NotATime {
                given: "yesterday".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "'yesterday' is not a time; use RFC 3339 (2026-11-27T18:00:00Z), unix milliseconds, or an age (7d, 12h)"
        );

        assert_eq!(parse_status(" Executed "), Ok(Status::Executed));
        let e = parse_status("done").unwrap_err();
        assert_eq!(
            e,
            FilterError::NotAStatus {
                given: "done".into()
            }
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("'done' is not a status; use one of "),
            "{msg}"
        );
        for s in Status::ALL {
            assert!(msg.contains(s.as_str()), "{msg}");
        }
    }
}
