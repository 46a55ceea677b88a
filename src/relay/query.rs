//! Reading the journal for the API: one alert, and filtered listings.

use super::*;

impl Relay {
    pub fn get_alert(&self, id: &str) -> Result<AlertRecord, RelayError> {
        self.journal.get(id)?.ok_or_else(|| {
            RelayError::NotFound(format!(
                "no alert with id '{}'",
                id.chars().take(64).collect::<String>()
            ))
        })
    }

    /// `GET /api/alerts`: the records matching the query, newest first. A filtered listing may decode every
    /// record of the journal, so it runs on the blocking pool (the async workers, one on two cores, keep
    /// taking alerts) and at most `LISTINGS_AT_ONCE` run at once (they do not take every core either).
    pub async fn list_alerts(
        &self,
        q: &BTreeMap<String, String>,
    ) -> Result<Vec<AlertRecord>, RelayError> {
        let filter = list_filter(q)?;
        let turn = self
            .listings
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RelayError::Internal("listings are closed".into()))?;
        let journal = self.journal.clone();
        // The turn goes with the walk, which goes on to its end if the client hangs up meanwhile.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            journal.list(&filter)
        })
        .await
        .map_err(|e| RelayError::Internal(format!("listing failed: {e}")))?
        .map_err(RelayError::from)
    }
}

/// Listings (`GET /api/alerts`) walking the journal at once.
pub(super) const LISTINGS_AT_ONCE: usize = 2;

/// A time filter: RFC 3339, unix milliseconds, or an age (`7d`).
pub(super) fn parse_time(v: &str, field: &str) -> Result<u64, RelayError> {
    crate::journal::parse_time(v).map_err(|e| RelayError::InvalidRequest(format!("{field}: {e}")))
}

/// The journal filter of a `GET /api/alerts` query; unknown or malformed parameters are a 400 naming them.
pub(super) fn list_filter(q: &BTreeMap<String, String>) -> Result<ListFilter, RelayError> {
    let mut f = ListFilter::default();
    for (k, v) in q {
        match k.as_str() {
            "status" => {
                f.status = Some(
                    crate::journal::parse_status(v)
                        .map_err(|e| RelayError::InvalidRequest(format!("status: {e}")))?,
                )
            }
            "source" => f.source = Some(v.clone()),
            "instrument" => f.instrument = Some(v.clone()),
            "since" => f.since_ms = Some(parse_time(v, "since")?),
            "until" => f.until_ms = Some(parse_time(v, "until")?),
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        RelayError::InvalidRequest(format!(
                            "limit: '{v}' must be a whole number from 1 to 1000"
                        ))
                    })?
            }
            other => {
                return Err(RelayError::InvalidRequest(format!(
                    "unknown query parameter '{other}'; use status, source, instrument, since, until, limit"
                )))
            }
        }
    }
    Ok(f)
}
